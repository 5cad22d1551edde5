"""The front desk's queue as FHIR R4 Encounters: pure shaping, no I/O.

A patient checked in at the desk gets an Encounter with status `arrived` (class AMB), the facility
as `serviceProvider`, `period.start` the arrival time (with the clinic's UTC offset) and the queue
number as an identifier whose system names the facility and the day:
`{identifier base}/queue/<organization id>/<yyyy-mm-dd>`, value the number (1, 2, 3...).

The queue moves the Encounter through R4 statuses: `arrived` (waiting) -> `triaged` (called to
the room; the clinic shows it as "called") -> `in-progress` -> `finished`, or `cancelled` when the
patient leaves without a visit. Each move appends the state being left to `statusHistory`
(R4 Encounter.statusHistory: status and the period it lasted).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from ehr.fhir.terminology import ACT_CODE

QUEUE_PATH = "queue"
WAITING = ("planned", "arrived")  # waiting to be called
CALLED = "triaged"
OPEN = ("planned", "arrived", "triaged", "in-progress", "onleave")
CLOSED = ("finished", "cancelled", "entered-in-error")
# The page's four groups.
GROUP_OF = {"planned": "waiting", "arrived": "waiting", "triaged": "waiting", "in-progress": "in-progress", "onleave": "in-progress",
            "finished": "finished", "cancelled": "cancelled", "entered-in-error": "cancelled"}
# target status -> the statuses it may be reached from
TRANSITIONS = {
    CALLED: ("planned", "arrived"),
    "in-progress": ("planned", "arrived", "triaged", "onleave"),
    "finished": ("in-progress", "onleave"),
    "cancelled": ("planned", "arrived", "triaged"),
}


class TransitionError(ValueError):
    """The Encounter's current status does not allow the move."""


def system(identifier_base: str, organization_id: str, day: date) -> str:
    """The identifier system of one facility's queue on one (clinic-local) day."""
    return f"{identifier_base.rstrip('/')}/{QUEUE_PATH}/{organization_id}/{day.isoformat()}"


def _instant(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("queue times carry their UTC offset")
    return moment.isoformat(timespec="seconds")


def arrival(patient_id: str, organization_id: str, number: int, arrived: datetime, identifier_base: str) -> dict[str, Any]:
    """The Encounter of a patient who just arrived at the desk and got queue number `number`.

    `arrived` is timezone-aware (the clinic's zone); its date is the queue's day.
    """
    return {
        "resourceType": "Encounter",
        "identifier": [{"use": "secondary", "system": system(identifier_base, organization_id, arrived.date()), "value": str(number)}],
        "status": "arrived",
        "class": {"system": ACT_CODE, "code": "AMB", "display": "ambulatory"},
        "subject": {"reference": f"Patient/{patient_id}"},
        "serviceProvider": {"reference": f"Organization/{organization_id}"},
        "period": {"start": _instant(arrived)},
    }


def number_of(doc: dict[str, Any], identifier_base: str) -> int | None:
    """The queue number of an Encounter, or None (a visit recorded without check-in)."""
    prefix = f"{identifier_base.rstrip('/')}/{QUEUE_PATH}/"
    for ident in doc.get("identifier") or ():
        if isinstance(ident, dict) and str(ident.get("system", "")).startswith(prefix) and str(ident.get("value", "")).isdigit():
            return int(ident["value"])
    return None


def current_since(doc: dict[str, Any]) -> str | None:
    """When the current status began: the end of the last state left, else the Encounter's start."""
    history = [h for h in doc.get("statusHistory") or () if isinstance(h, dict)]
    if history:
        return (history[-1].get("period") or {}).get("end")
    return (doc.get("period") or {}).get("start")


def transition(doc: dict[str, Any], status: str, at: datetime) -> dict[str, Any]:
    """A copy of the Encounter moved to `status` at `at`, the state left appended to statusHistory.

    Finishing and cancelling also end `period`. Raises TransitionError when the move is not allowed
    from the current status.
    """
    current = doc.get("status")
    if current not in TRANSITIONS.get(status, ()):
        raise TransitionError(f"an Encounter with status {current} cannot become {status}")
    when = _instant(at)
    moved = copy.deepcopy(doc)
    left: dict[str, Any] = {"status": current, "period": {"end": when}}
    since = current_since(doc)
    if since:
        left["period"] = {"start": since, "end": when}
    moved.setdefault("statusHistory", []).append(left)
    moved["status"] = status
    if status in CLOSED:
        moved.setdefault("period", {})["end"] = when
    return moved


@dataclass(frozen=True)
class Times:
    """When a queued Encounter arrived, started and ended (FHIR dateTime strings or None)."""

    arrived: str | None
    started: str | None
    ended: str | None


def times(doc: dict[str, Any]) -> Times:
    """Arrival, start of the visit (its first `in-progress` state) and end, from period and
    statusHistory.

    Signing finishes an Encounter without a statusHistory entry, and a visit recorded without
    check-in has no history at all: a finished Encounter that never shows `in-progress` started
    when its current status began.
    """
    history = [h for h in doc.get("statusHistory") or () if isinstance(h, dict)]
    states = [(h.get("status"), (h.get("period") or {}).get("start")) for h in history]
    states.append((doc.get("status"), current_since(doc)))
    started = next((since for status, since in states if status in ("in-progress", "onleave")), None)
    if started is None and doc.get("status") == "finished":
        started = current_since(doc)
    ended = (doc.get("period") or {}).get("end") if doc.get("status") in CLOSED else None
    return Times((doc.get("period") or {}).get("start"), started, ended)
