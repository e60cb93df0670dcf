"""When customer support answers (chat.hours): the opening hours of CHAT_SUPPORT_HOURS and
what the chat panel says when no agent is online. Every expected time is worked out by hand
from a calendar (3 November 2026 is a Tuesday; summer time ends on Sunday 25 October 2026)."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from django.utils import translation

from chat.hours import support_hours_parse, support_offline_notice, support_opening

STOCKHOLM = ZoneInfo("Europe/Stockholm")
WEEKDAYS = support_hours_parse("0-4 08:00-17:00")


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=STOCKHOLM)


def notice(now: datetime, channels: list[str], spec: str = "0-4 08:00-17:00") -> str:
    with translation.override("en"):
        return support_offline_notice(now=now, hours=support_hours_parse(spec), channels=channels)


@pytest.mark.parametrize(
    ("now", "opens_at"),
    [
        # Tuesday evening: Wednesday morning
        (at(2026, 11, 3, 19, 30), at(2026, 11, 4, 8, 0)),
        # Tuesday early morning: later the same day
        (at(2026, 11, 3, 6, 30), at(2026, 11, 3, 8, 0)),
        # closing time itself is closed
        (at(2026, 11, 3, 17, 0), at(2026, 11, 4, 8, 0)),
        # Friday evening, Saturday, Sunday evening: Monday morning
        (at(2026, 11, 6, 18, 0), at(2026, 11, 9, 8, 0)),
        (at(2026, 11, 7, 12, 0), at(2026, 11, 9, 8, 0)),
        (at(2026, 11, 8, 23, 59), at(2026, 11, 9, 8, 0)),
    ],
)
def test_outside_the_hours_the_next_opening_is_found(now, opens_at) -> None:
    opening = support_opening(now, WEEKDAYS)
    assert not opening.open_now
    assert opening.opens_at == opens_at


@pytest.mark.parametrize(
    "now", [at(2026, 11, 3, 8, 0), at(2026, 11, 4, 12, 0), at(2026, 11, 6, 16, 59)]
)
def test_within_the_hours_support_is_open(now) -> None:
    assert support_opening(now, WEEKDAYS).open_now


def test_the_hours_are_stockholm_time_whatever_the_zone_of_now() -> None:
    # 06:30 UTC on a Tuesday in November is 07:30 in Stockholm: closed, opens 08:00 = 07:00 UTC
    opening = support_opening(datetime(2026, 11, 3, 6, 30, tzinfo=UTC), WEEKDAYS)
    assert opening.opens_at == datetime(2026, 11, 3, 7, 0, tzinfo=UTC)


def test_over_the_end_of_summer_time_monday_opens_at_eight_winter_time() -> None:
    # Saturday 24 October (summer time, UTC+2); Monday 26 October is winter time (UTC+1)
    opening = support_opening(at(2026, 10, 24, 22, 0), WEEKDAYS)
    assert opening.opens_at == datetime(2026, 10, 26, 7, 0, tzinfo=UTC)


def test_several_segments_saturday_has_its_own_hours() -> None:
    hours = support_hours_parse("0-4 08:00-17:00; 5 10:00-14:00")
    assert support_opening(at(2026, 11, 6, 18, 0), hours).opens_at == at(2026, 11, 7, 10, 0)
    assert support_opening(at(2026, 11, 7, 13, 0), hours).open_now
    assert support_opening(at(2026, 11, 7, 14, 0), hours).opens_at == at(2026, 11, 9, 8, 0)


def test_one_weekday_just_passed_opens_again_a_week_later() -> None:
    hours = support_hours_parse("2 09:00-10:00")  # Wednesdays only
    assert support_opening(at(2026, 11, 4, 11, 0), hours).opens_at == at(2026, 11, 11, 9, 0)


def test_lists_and_ranges_of_weekdays() -> None:
    (segment,) = support_hours_parse("0,2, 4-6 7:30-9:00")
    assert segment.weekdays == frozenset({0, 2, 4, 5, 6})
    assert (segment.opens.hour, segment.opens.minute) == (7, 30)


def test_no_hours_promise_nothing() -> None:
    assert support_hours_parse("") == ()
    assert support_opening(at(2026, 11, 3, 12, 0), ()).opens_at is None


@pytest.mark.parametrize(
    "spec",
    ["mon-fri 8-17", "0-4 17:00-08:00", "4-0 08:00-17:00", "0-4 25:00-26:00", "7 08:00-09:00"],
)
def test_a_bad_setting_is_refused_naming_it(spec) -> None:
    with pytest.raises(ValueError, match="CHAT_SUPPORT_HOURS"):
        support_hours_parse(spec)


# --- what the panel says ------------------------------------------------------------------


def test_evening_notice_names_tomorrow_and_the_customers_channel() -> None:
    assert notice(at(2026, 11, 3, 19, 30), ["sms"]) == (
        "No one in customer support is online right now. We answer from 08:00 tomorrow "
        "(Wednesday), and send the answer to you by SMS too."
    )


def test_weekend_notice_names_monday() -> None:
    assert notice(at(2026, 11, 7, 12, 0), ["email"]) == (
        "No one in customer support is online right now. We answer from 08:00 on Monday, and "
        "send the answer to you by e-mail too."
    )


def test_early_morning_notice_says_today() -> None:
    assert "We answer from 08:00 today, and send the answer to you by e-mail and SMS too." in (
        notice(at(2026, 11, 3, 6, 30), ["email", "sms"])
    )


def test_during_the_hours_the_notice_says_as_soon_as_someone_is_back() -> None:
    assert notice(at(2026, 11, 3, 12, 0), ["sms"]) == (
        "No one in customer support is online right now. We answer as soon as someone is back, "
        "and send the answer to you by SMS too."
    )


def test_a_customer_without_e_mail_or_sms_is_told_to_come_back_to_the_page() -> None:
    assert notice(at(2026, 11, 3, 19, 30), []).endswith(
        "We answer from 08:00 tomorrow (Wednesday). Come back to this page to read the answer."
    )


def test_more_than_a_week_ahead_the_notice_names_the_date() -> None:
    text = notice(at(2026, 11, 4, 11, 0), ["sms"], spec="2 09:00-10:00")
    assert "We answer from 09:00 on 11 November" in text


def test_the_notice_in_swedish() -> None:
    with translation.override("sv"):
        text = support_offline_notice(now=at(2026, 11, 3, 19, 30), hours=WEEKDAYS, channels=["sms"])
    assert text == (
        "Ingen på kundtjänst är tillgänglig just nu. Vi svarar från kl. 08:00 i morgon "
        "(onsdag) och skickar svaret till dig med sms också."
    )


def test_a_bad_setting_fails_the_system_check_and_the_panel_promises_no_hours(settings) -> None:
    from chat.checks import check_support_hours
    from chat.panel import _support_hours

    settings.CHAT_SUPPORT_HOURS = "weekdays 8-17"
    (error,) = check_support_hours()
    assert error.id == "chat.E001"
    assert "'weekdays 8-17'" in error.msg
    assert _support_hours() == ()
    settings.CHAT_SUPPORT_HOURS = "0-4 08:00-17:00"
    assert check_support_hours() == []
