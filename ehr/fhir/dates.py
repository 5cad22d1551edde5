"""FHIR date, dateTime and instant values as ranges, and the search prefixes over them.

A value stands for the whole interval its precision implies (R4 search.html#date): `2020` is
[2020-01-01, 2021-01-01), `2020-05-14T10:00` is one minute. Ranges are half-open, in microseconds
since the epoch, UTC. Values without a time zone are read in the server's zone (Vietnam, +07:00,
unless configured). Parsing of full dates and times is `datetime.fromisoformat`; year and
year-month values are the only forms it does not read, and their fields are plain integers.

Birth dates are personal data, so they are never indexed as plain dates: each value becomes blind
"bucket" tokens (`bucket_tokens`) and a date search is expanded into the buckets that satisfy it
(`bucket_query`), which the service hashes before it asks the index.
"""

from __future__ import annotations

import calendar
import os
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Callable
from zoneinfo import ZoneInfo

MIN_US = -(2**62)
MAX_US = 2**62
PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
# Every time a person sees, and every date without a zone, is in this zone: Vietnam time unless
# EHR_TIMEZONE (read from the environment at start-up, one zone per deployment) says otherwise.
DEFAULT_ZONE = ZoneInfo(os.environ.get("EHR_TIMEZONE") or "Asia/Ho_Chi_Minh")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_YEAR = re.compile(r"^(\d{4})$", re.ASCII)
_YEAR_MONTH = re.compile(r"^(\d{4})-(\d{2})$", re.ASCII)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$", re.ASCII)
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?$", re.ASCII)


class DateFormatError(ValueError):
    """Not a FHIR date, dateTime or instant."""


def _us(dt: datetime) -> int:
    return (dt - _EPOCH) // timedelta(microseconds=1)


def _next_month(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


def _end_us(make: Callable[[], datetime]) -> int:
    """The open end of a range; the last instant of year 9999 has no successor in `datetime`,
    so a range reaching past it ends at MAX_US (a valid value must still index and search)."""
    try:
        return _us(make())
    except (OverflowError, ValueError):
        return MAX_US


def value_range(text: str, zone: tzinfo = DEFAULT_ZONE) -> tuple[int, int]:
    """[low, high) in microseconds for a FHIR date/dateTime/instant string."""
    try:
        if m := _YEAR.match(text):
            y = int(m.group(1))
            return _us(datetime(y, 1, 1, tzinfo=zone)), _end_us(lambda: datetime(y + 1, 1, 1, tzinfo=zone))
        if m := _YEAR_MONTH.match(text):
            y, mo = int(m.group(1)), int(m.group(2))
            ny, nm = _next_month(y, mo)
            return _us(datetime(y, mo, 1, tzinfo=zone)), _end_us(lambda: datetime(ny, nm, 1, tzinfo=zone))
        if _DATE.match(text):
            day = date.fromisoformat(text)
            start = datetime(day.year, day.month, day.day, tzinfo=zone)
            return _us(start), _end_us(lambda: start + timedelta(days=1))
        if _DATETIME.match(text):
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=zone)
            clock = text[11:].split("+")[0].split("Z")[0]
            clock = clock[:8] if "-" not in clock else clock.split("-")[0]
            if len(clock) == 5:
                width = timedelta(minutes=1)
            elif "." in text[11:]:
                digits = len(re.search(r"\.([0-9]+)", text).group(1))  # type: ignore[union-attr]
                width = timedelta(microseconds=max(1, 10 ** (6 - min(digits, 6))))
            else:
                width = timedelta(seconds=1)
            return _us(parsed), _end_us(lambda: parsed + width)
    except ValueError:
        pass
    raise DateFormatError(text)


def period_range(period: dict[str, object], zone: tzinfo = DEFAULT_ZONE) -> tuple[int, int] | None:
    start, end = period.get("start"), period.get("end")
    if not isinstance(start, str) and not isinstance(end, str):
        return None
    low = value_range(start, zone)[0] if isinstance(start, str) else MIN_US
    high = value_range(end, zone)[1] if isinstance(end, str) else MAX_US
    return low, high


def split_prefix(value: str) -> tuple[str, str]:
    """'ge2020' -> ('ge', '2020'); no prefix -> 'eq'."""
    if len(value) > 2 and value[:2] in PREFIXES and (value[2].isdigit() or value[2] in "-."):
        return value[:2], value[2:]
    return "eq", value


@dataclass(frozen=True)
class RangeSearch:
    prefix: str
    low: int
    high: int


def approx_widen(low: int, high: int, now_us: int) -> tuple[int, int]:
    """`ap`: widen by 10% of the distance to now, at least a day (R4 leaves the amount open)."""
    gap = max(abs(now_us - low), abs(now_us - high)) // 10
    gap = max(gap, 86_400 * 1_000_000)
    return low - gap, high + gap


def matches(prefix: str, s_low: int, s_high: int, r_low: int, r_high: int) -> bool:
    """Reference semantics of a date prefix for a search range against a resource range."""
    contained = s_low <= r_low and r_high <= s_high
    return {
        "eq": contained,
        "ne": not contained,
        "gt": r_high > s_high,
        "lt": r_low < s_low,
        "ge": r_high > s_high or contained,
        "le": r_low < s_low or contained,
        "sa": r_low >= s_high,
        "eb": r_high <= s_low,
        "ap": r_low < s_high and r_high > s_low,  # the caller widens the search range first
    }[prefix]


# --- blind buckets for birth dates --------------------------------------------------------------


def _day_number(year: int, month: int, day: int) -> int:
    # the day after 9999-12-31 is still a valid end of a half-open range
    return date.max.toordinal() + 1 if year > date.max.year else date(year, month, day).toordinal()


def _calendar_range(year: int, month: int | None = None, day: int | None = None) -> tuple[int, int]:
    """Birth dates are calendar dates: compare them as day numbers, no time zone."""
    if day is not None and month is not None:
        start = date(year, month, day).toordinal()
        return start, start + 1
    if month is not None:
        ny, nm = _next_month(year, month)
        return date(year, month, 1).toordinal(), _day_number(ny, nm, 1)
    return date(year, 1, 1).toordinal(), _day_number(year + 1, 1, 1)


def parse_calendar(text: str) -> tuple[int, int | None, int | None]:
    if m := _YEAR.match(text):
        if int(m.group(1)) < date.min.year:  # FHIR has no year 0000
            raise DateFormatError(text)
        return int(m.group(1)), None, None
    if m := _YEAR_MONTH.match(text):
        if int(m.group(1)) < date.min.year or not 1 <= int(m.group(2)) <= 12:
            raise DateFormatError(text)
        return int(m.group(1)), int(m.group(2)), None
    head = text[:10]
    if _DATE.match(head):
        try:
            d = date.fromisoformat(head)
        except ValueError:
            raise DateFormatError(text) from None
        return d.year, d.month, d.day
    raise DateFormatError(text)


def bucket_tokens(birth_date: str) -> list[str]:
    """Tokens stored for a birth date: its exact-precision bucket plus the year/month it lies in."""
    y, m, d = parse_calendar(birth_date)
    if d is not None:
        return [f"D:{y:04d}-{m:02d}-{d:02d}", f"M~{y:04d}-{m:02d}", f"Y~{y:04d}"]
    if m is not None:
        return [f"M:{y:04d}-{m:02d}", f"M~{y:04d}-{m:02d}", f"Y~{y:04d}"]
    return [f"Y:{y:04d}", f"Y~{y:04d}"]


def bucket_query(prefix: str, value: str, today: date, first_year: int = 1850) -> list[str]:
    """The bucket tokens whose values satisfy `prefix value` (R4 date semantics on day numbers).

    Years that contain neither end of the search range are uniform (every value inside them
    answers the same), so one `Y~` token covers them; only the boundary years and months are
    split into month and day buckets. Years outside [first_year, today+1] are not searched.
    """
    y, m, d = parse_calendar(value)
    s_low, s_high = _calendar_range(y, m, d)
    if prefix == "ap":
        widen = max(1, abs(today.toordinal() - s_low) // 10)
        s_low, s_high, prefix = s_low - widen, s_high + widen, "ap"
    test: Callable[[int, int], bool] = lambda lo, hi: matches(prefix, s_low, s_high, lo, hi)  # noqa: E731
    boundaries = {s_low, s_high}
    last_year = max(today.year + 1, y)
    tokens: list[str] = []

    def holds_inside(lo: int, hi: int) -> bool:
        return not any(lo < b < hi for b in boundaries)

    for year in range(min(first_year, y), last_year + 1):
        lo, hi = _calendar_range(year)
        if holds_inside(lo, hi):
            if test(lo, hi):
                tokens.append(f"Y~{year:04d}")
            continue
        if test(lo, hi):
            tokens.append(f"Y:{year:04d}")
        for month in range(1, 13):
            mlo, mhi = _calendar_range(year, month)
            if holds_inside(mlo, mhi):
                if test(mlo, mhi):
                    tokens.append(f"M~{year:04d}-{month:02d}")
                continue
            if test(mlo, mhi):
                tokens.append(f"M:{year:04d}-{month:02d}")
            for day in range(1, calendar.monthrange(year, month)[1] + 1):
                dlo, dhi = _calendar_range(year, month, day)
                if test(dlo, dhi):
                    tokens.append(f"D:{year:04d}-{month:02d}-{day:02d}")
    return tokens


# --- numbers and quantities ---------------------------------------------------------------------


def decimal_range(text: str) -> tuple[Decimal, Decimal, Decimal]:
    """(value, low, high): the implicit precision range of a search number (R4 search.html#number)."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(text) from None
    if not value.is_finite():
        raise ValueError(text)
    exponent = value.as_tuple().exponent
    half = Decimal(5).scaleb(int(exponent) - 1)  # type: ignore[arg-type]
    return value, value - half, value + half
