"""When customer support answers: the opening hours of ``CHAT_SUPPORT_HOURS`` and what the
customer's chat panel says about them when no agent is online.

The setting, in Europe/Stockholm time: one or more segments separated by ``;``, each
``<weekdays> <HH:MM>-<HH:MM>``, where weekdays are numbers (Monday = 0 … Sunday = 6) given as
a range ``0-4``, a list ``0,2,4`` or one day ``5``. ``"0-4 08:00-17:00; 5 10:00-14:00"`` is
weekdays 8 to 17 and Saturdays 10 to 14. An empty setting means no hours are promised.

Everything here is pure: ``now`` comes in, nothing is read from the clock or the database.
"""

import functools
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.utils import dateformat
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

STOCKHOLM = ZoneInfo("Europe/Stockholm")

_SEGMENT = re.compile(
    r"^(?P<days>[0-6](?:\s*[-,]\s*[0-6])*)\s+"
    r"(?P<opens>\d{1,2}:\d{2})\s*-\s*(?P<closes>\d{1,2}:\d{2})$"
)


@dataclass(frozen=True)
class OpeningHours:
    """Support answers on ``weekdays`` (Monday = 0) from ``opens`` until ``closes``."""

    weekdays: frozenset[int]
    opens: time
    closes: time


@dataclass(frozen=True)
class SupportOpening:
    """Whether support is within its hours at a moment, and else when it next opens (aware,
    Europe/Stockholm; None when no hours are set)."""

    open_now: bool
    opens_at: datetime | None


def _time(text: str, spec: str) -> time:
    hours, minutes = (int(part) for part in text.split(":"))
    if hours > 23 or minutes > 59:
        raise ValueError(f"CHAT_SUPPORT_HOURS: {text!r} is not a time of day in {spec!r}")
    return time(hours, minutes)


def _weekdays(text: str, spec: str) -> frozenset[int]:
    days: set[int] = set()
    for part in text.replace(" ", "").split(","):
        first, _dash, last = part.partition("-")
        if "-" in last or int(last or first) < int(first):
            raise ValueError(f"CHAT_SUPPORT_HOURS: {part!r} is not a range of weekdays in {spec!r}")
        days.update(range(int(first), int(last or first) + 1))
    return frozenset(days)


@functools.lru_cache(maxsize=8)
def support_hours_parse(spec: str) -> tuple[OpeningHours, ...]:
    """The segments of a ``CHAT_SUPPORT_HOURS`` value; a ValueError names what is wrong."""
    segments = []
    for raw in spec.split(";"):
        segment = raw.strip()
        if not segment:
            continue
        match = _SEGMENT.match(segment)
        if match is None:
            raise ValueError(
                f"CHAT_SUPPORT_HOURS: {segment!r} is not '<weekdays> <HH:MM>-<HH:MM>', "
                "e.g. '0-4 08:00-17:00'"
            )
        opens, closes = _time(match["opens"], spec), _time(match["closes"], spec)
        if closes <= opens:
            raise ValueError(f"CHAT_SUPPORT_HOURS: {segment!r} closes before it opens")
        segments.append(OpeningHours(_weekdays(match["days"], spec), opens, closes))
    return tuple(segments)


def support_opening(now: datetime, hours: tuple[OpeningHours, ...]) -> SupportOpening:
    """Is support within its hours at ``now`` (aware), and if not, when does it next open?"""
    local = now.astimezone(STOCKHOLM)
    candidates: list[datetime] = []
    for offset in range(8):  # a week ahead, and today's next week for a single weekday
        day = local.date() + timedelta(days=offset)
        for segment in hours:
            if day.weekday() not in segment.weekdays:
                continue
            opens = datetime.combine(day, segment.opens, tzinfo=STOCKHOLM)
            closes = datetime.combine(day, segment.closes, tzinfo=STOCKHOLM)
            if opens <= local < closes:
                return SupportOpening(open_now=True, opens_at=None)
            if opens > local:
                candidates.append(opens)
        if candidates:
            break
    return SupportOpening(open_now=False, opens_at=min(candidates) if candidates else None)


def _channel_words(channels: list[str]) -> str:
    """How an answer reaches the customer, from ``delivery_channels``: e-mail, SMS, both."""
    if "email" in channels and "sms" in channels:
        return pgettext("chat channel", "e-mail and SMS")
    if "email" in channels:
        return pgettext("chat channel", "e-mail")
    if "sms" in channels:
        return pgettext("chat channel", "SMS")
    return ""


def _when(opening: SupportOpening, today: date) -> str:
    if opening.open_now:
        return _("We answer as soon as someone is back")
    if opening.opens_at is None:
        return _("We answer as soon as we can")
    opens = opening.opens_at
    day = opens.date()
    params = {
        "time": f"{opens:%H:%M}",
        "weekday": dateformat.format(day, "l"),
        "date": dateformat.format(day, "j F"),
    }
    if day == today:
        return _("We answer from %(time)s today") % params
    if day == today + timedelta(days=1):
        return _("We answer from %(time)s tomorrow (%(weekday)s)") % params
    if day < today + timedelta(days=7):
        return _("We answer from %(time)s on %(weekday)s") % params
    return _("We answer from %(time)s on %(date)s") % params


def support_offline_notice(
    *, now: datetime, hours: tuple[OpeningHours, ...], channels: list[str]
) -> str:
    """What the chat panel says when no agent is online, in the active language: when an
    answer can be expected, and that it also comes by e-mail/SMS (``channels``, from the
    customer's delivery settings) or, for customers without either, on this page."""
    opening = support_opening(now, hours)
    when = _when(opening, now.astimezone(STOCKHOLM).date())
    channel = _channel_words(channels)
    if channel:
        follow = _("%(when)s, and send the answer to you by %(channel)s too.") % {
            "when": when,
            "channel": channel,
        }
    else:
        follow = _("%(when)s. Come back to this page to read the answer.") % {"when": when}
    return f"{_('No one in customer support is online right now.')} {follow}"
