"""Cost bounds of one HTTP request: what a single search, batch or response may cost the server.

The bounds are set per request (`bounded`, by the API's before-request hook in ehr.api.limits):
the CLI (import, demo, reindex) and the job runner (export) run outside any request and are not
bounded, so a bulk job is never cut by a limit meant for one client's request.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Iterator


@dataclass(frozen=True)
class Costs:
    text_words: int = 8  # words of one `:text` search
    string_chars: int = 256  # characters of one string search value
    bundle_entries: int = 10_000  # entries of a batch or transaction (Synthea's largest: 2,382)
    bundle_reads: int = 50  # GET/HEAD entries of one batch or transaction
    includes: int = 1_000  # included resources per search page
    response_bytes: int = 16 * 1024 * 1024  # resources in one answer (a search page, a batch)


UNBOUNDED = Costs(text_words=1 << 30, string_chars=1 << 30, bundle_entries=1 << 30, bundle_reads=1 << 30,
                  includes=1 << 30, response_bytes=1 << 62)
_current: ContextVar[Costs] = ContextVar("ehr_costs", default=UNBOUNDED)


def current() -> Costs:
    return _current.get()


@contextmanager
def bounded(costs: Costs) -> Iterator[None]:
    token = _current.set(costs)
    try:
        yield
    finally:
        _current.reset(token)


def enter(costs: Costs) -> object:
    """Set the bounds until `leave` (for request hooks, which cannot wrap a `with`)."""
    return _current.set(costs)


def leave(token: object) -> None:
    _current.reset(token)  # type: ignore[arg-type]
