"""Small helpers shared by the services: type and id checks, instants."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from ehr.fhir.outcomes import bad_request, not_found
from ehr.fhir.resources import SERVED_TYPES, is_valid_id
from ehr.store.keys import now_us

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def check_type(resource_type: str) -> None:
    if resource_type not in SERVED_TYPES:
        raise not_found("this resource type is not served here (see /fhir/metadata)")


def check_id(logical_id: str) -> None:
    if not is_valid_id(logical_id):
        raise bad_request("the id is not a valid FHIR id (1-64 of A-Z a-z 0-9 - .)", "id")


def format_instant(us: int) -> str:
    secs, micros = divmod(us, 1_000_000)
    stamp = datetime.fromtimestamp(secs, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{micros:06d}Z"


def now_instant() -> str:
    return format_instant(now_us())


def parse_instant(value: str, name: str) -> int:
    """Microseconds since the epoch of a FHIR instant/dateTime with a time zone."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise bad_request(f"{name} is not a valid instant (e.g. 2026-01-31T08:00:00Z)", name) from None
    if parsed.tzinfo is None:
        raise bad_request(f"{name} needs a time zone", name)
    return (parsed - _EPOCH) // timedelta(microseconds=1)
