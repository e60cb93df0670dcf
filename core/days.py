"""Days as the law and the customer count them: Swedish days (Europe/Stockholm), whatever
the server's time zone."""

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

STOCKHOLM = ZoneInfo("Europe/Stockholm")


def swedish_midnight(day: date) -> datetime:
    """The moment ``day`` begins in Sweden: a range of Swedish days over stored times is
    ``>= swedish_midnight(first)`` and ``< swedish_midnight(last + 1 day)``, which an index
    on the stored time serves (a ``__date`` lookup would convert every row)."""
    return datetime.combine(day, time.min, tzinfo=STOCKHOLM)
