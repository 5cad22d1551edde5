"""The web's one clock ("now", replaceable in tests) and its one time zone.

Session timeouts, the login throttle, TOTP steps and every page's "today" and default times read
the time here; `local_now` and `today` are in the deployment's zone (`ehr.fhir.dates.DEFAULT_ZONE`,
Asia/Ho_Chi_Minh unless EHR_TIMEZONE), never the server's. Tests put a callable
returning microseconds since the epoch into `app.config["EHR_CLOCK"]` and move it forward,
instead of sleeping through a 15-minute idle timeout.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Callable, Mapping

from flask import current_app

from ehr.fhir.dates import DEFAULT_ZONE
from ehr.store.keys import now_us


def now(config: Mapping[str, Any] | None = None) -> int:
    clock: Callable[[], int] | None = (config if config is not None else current_app.config).get("EHR_CLOCK")
    return int(clock()) if clock is not None else now_us()


def local(micros: int) -> datetime:
    """A moment (µs since the epoch) in the deployment's time zone."""
    return datetime.fromtimestamp(micros / 1_000_000, tz=DEFAULT_ZONE)


def local_now() -> datetime:
    return local(now())


def today() -> date:
    """Today's date where the clinic is (not the server's UTC date)."""
    return local_now().date()
