"""Calendar arithmetic: days and business days between dates, adding business days.

Business days are Monday to Friday minus any holidays given. Ranges are
half-open, [start, end), so that adding N business days to a business day and
counting the business days between the two dates both give N.
"""

import datetime
import re

ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MAX_BUSINESS_DAYS = 100000


class InvalidDate(ValueError):
    """A date is not a real calendar date written as YYYY-MM-DD."""


class InvalidDays(ValueError):
    """The number of business days is not a whole number within ±100000."""


class DateOutOfRange(ValueError):
    """The result would fall outside the years 1 to 9999."""


def _date(value: object, field: str) -> datetime.date:
    """A parsed ISO date; `field` names the argument in the error message."""
    if not isinstance(value, str) or not ISO_DATE.fullmatch(value.strip()):
        raise InvalidDate(f"{field} must be a date written as YYYY-MM-DD, got {value!r}")
    try:
        return datetime.date.fromisoformat(value.strip())
    except ValueError as exc:
        raise InvalidDate(f"{field} is not a real calendar date: {value!r} ({exc})") from exc


def _holidays(values: object) -> set[datetime.date]:
    if values is None:
        return set()
    if not isinstance(values, list):
        raise InvalidDate(f"holidays must be a list of YYYY-MM-DD dates, got {type(values).__name__}")
    return {_date(v, f"holidays[{i}]") for i, v in enumerate(values)}


def _is_business_day(day: datetime.date, holidays: set[datetime.date]) -> bool:
    return day.weekday() < 5 and day not in holidays


def _business_days(first: datetime.date, last: datetime.date, holidays: set[datetime.date]) -> int:
    """Business days in [first, last) for first <= last, counting whole weeks at once."""
    weeks, rest = divmod((last - first).days, 7)
    count = weeks * 5 + sum((first.weekday() + i) % 7 < 5 for i in range(rest))
    return count - sum(1 for h in holidays if first <= h < last and h.weekday() < 5)


def days_between(start: str, end: str, holidays: list[str] | None = None) -> dict:
    """Calendar days, weeks and business days from start to end (negative when end is earlier)."""
    first, last = _date(start, "start"), _date(end, "end")
    skipped = _holidays(holidays)
    days = (last - first).days
    business = _business_days(first, last, skipped) if days >= 0 else -_business_days(last, first, skipped)
    return {
        "start": first.isoformat(),
        "end": last.isoformat(),
        "days": days,
        "weeks": round(days / 7, 2),
        "business_days": business,
        "start_weekday": WEEKDAYS[first.weekday()],
        "end_weekday": WEEKDAYS[last.weekday()],
    }


def add_business_days(start: str, days: int, holidays: list[str] | None = None) -> dict:
    """The date `days` business days after start (before it when negative), skipping weekends and holidays."""
    day = _date(start, "start")
    if isinstance(days, bool) or not isinstance(days, int) or abs(days) > MAX_BUSINESS_DAYS:
        raise InvalidDays(f"days must be a whole number from -{MAX_BUSINESS_DAYS} to {MAX_BUSINESS_DAYS}, got {days!r}")
    skipped = _holidays(holidays)
    step = datetime.timedelta(days=1 if days >= 0 else -1)
    remaining = abs(days)
    try:
        while remaining:
            day += step
            if _is_business_day(day, skipped):
                remaining -= 1
    except OverflowError as exc:
        raise DateOutOfRange(f"{days} business days from {start} falls outside the years 1 to 9999") from exc
    return {"date": day.isoformat(), "weekday": WEEKDAYS[day.weekday()]}
