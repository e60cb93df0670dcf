from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from core.errors import DomainError
from core.models import OneTimeCode
from core.services import MAX_ATTEMPTS, one_time_code_send, one_time_code_verify

pytestmark = pytest.mark.django_db

PURPOSE = "plan-change:1:2:399.00"


def send(sms_outbox: list, capture) -> str:
    with capture(execute=True):
        one_time_code_send(
            purpose=PURPOSE, channel="sms", destination="+46701234567", text="Din kod: {code}"
        )
    return sms_outbox[-1][1].removeprefix("Din kod: ")


def test_a_code_is_sent_once_and_only_its_hash_is_stored(
    sms_outbox, django_capture_on_commit_callbacks
) -> None:
    code = send(sms_outbox, django_capture_on_commit_callbacks)
    assert len(code) == 6
    assert code.isdigit()
    stored = OneTimeCode.objects.get()
    assert code not in stored.code_hash
    one_time_code_verify(purpose=PURPOSE, code=code)
    with pytest.raises(DomainError) as error:
        one_time_code_verify(purpose=PURPOSE, code=code)
    assert error.value.code == "code_expired"  # single use


def test_a_wrong_code_counts_and_too_many_wrong_codes_end_it(
    sms_outbox, django_capture_on_commit_callbacks
) -> None:
    code = send(sms_outbox, django_capture_on_commit_callbacks)
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(MAX_ATTEMPTS):
        with pytest.raises(DomainError) as error:
            one_time_code_verify(purpose=PURPOSE, code=wrong)
        assert error.value.code == "code_invalid"
    assert OneTimeCode.objects.get().attempts == MAX_ATTEMPTS
    with pytest.raises(DomainError) as error:
        one_time_code_verify(purpose=PURPOSE, code=code)
    assert error.value.code == "code_expired"


def test_a_code_expires_after_ten_minutes(sms_outbox, django_capture_on_commit_callbacks) -> None:
    code = send(sms_outbox, django_capture_on_commit_callbacks)
    with (
        time_machine.travel(timezone.now() + timedelta(minutes=10, seconds=1)),
        pytest.raises(DomainError) as error,
    ):
        one_time_code_verify(purpose=PURPOSE, code=code)
    assert error.value.code == "code_expired"


def test_asking_for_codes_again_and_again_is_limited(
    sms_outbox, django_capture_on_commit_callbacks
) -> None:
    for _ in range(3):
        send(sms_outbox, django_capture_on_commit_callbacks)
    with pytest.raises(DomainError) as error:
        send(sms_outbox, django_capture_on_commit_callbacks)
    assert error.value.code == "code_rate_limited"
    assert len(sms_outbox) == 3


def test_codes_to_one_phone_are_limited_across_purposes(
    sms_outbox, django_capture_on_commit_callbacks
) -> None:
    from core.services import MAX_CODES_PER_DESTINATION

    for n in range(MAX_CODES_PER_DESTINATION):
        with django_capture_on_commit_callbacks(execute=True):
            one_time_code_send(
                purpose=f"plan-change:1:{n}:1",
                channel="sms",
                destination="+46701234567",
                text="{code}",
            )
    with pytest.raises(DomainError) as error:
        one_time_code_send(
            purpose="plan-change:1:99:1", channel="sms", destination="+46701234567", text="{code}"
        )
    assert error.value.code == "code_rate_limited"
