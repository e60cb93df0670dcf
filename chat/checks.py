"""System checks of the chat's settings (``manage.py check``; registered in ``ChatConfig``)."""

from typing import Any

from django.conf import settings
from django.core.checks import Error

from chat.hours import support_hours_parse


def check_support_hours(**kwargs: Any) -> list[Error]:
    """``CHAT_SUPPORT_HOURS`` must parse: the customer's chat panel says when support answers."""
    try:
        support_hours_parse(settings.CHAT_SUPPORT_HOURS)
    except ValueError as error:
        return [
            Error(
                str(error),
                hint="Weekdays (Monday = 0) and hours in Europe/Stockholm, e.g. '0-4 08:00-17:00'.",
                id="chat.E001",
            )
        ]
    return []
