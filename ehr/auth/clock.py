"""The web login's notion of "now", replaceable in tests.

Session timeouts, the login throttle and TOTP steps read the time here. Tests put a callable
returning microseconds since the epoch into `app.config["EHR_CLOCK"]` and move it forward,
instead of sleeping through a 15-minute idle timeout.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from flask import current_app

from ehr.store.keys import now_us


def now(config: Mapping[str, Any] | None = None) -> int:
    clock: Callable[[], int] | None = (config if config is not None else current_app.config).get("EHR_CLOCK")
    return int(clock()) if clock is not None else now_us()
