"""The authorization policy: the single place every service call asks "may this context do this?".

Deny by default. This first version grants what a context's SMART-style scopes grant
(`system/*.cruds`, `system/Patient.rs`...); patient-level rules (care relationships, consent,
break-glass) plug in here.
"""

from __future__ import annotations

from ehr.fhir.outcomes import FhirError
from ehr.services.context import AccessContext

# interaction -> SMART v2 permission letter
_LETTER = {"create": "c", "read": "r", "vread": "r", "history": "r", "search": "s", "update": "u", "patch": "u", "delete": "d"}


def _granted(scope: str, resource_type: str, letter: str) -> bool:
    try:
        _context, rest = scope.split("/", 1)
        rtype, perms = rest.split(".", 1)
    except ValueError:
        return False
    if rtype not in ("*", resource_type):
        return False
    if perms in ("read", "*"):  # SMART v1 spellings
        return letter in "rs" if perms == "read" else True
    if perms == "write":
        return letter in "cud"
    return letter in perms


def authorize(ctx: AccessContext, interaction: str, resource_type: str) -> None:
    """Raise 403 unless the context may perform `interaction` on `resource_type`."""
    if ctx.kind == "server":
        return
    letter = _LETTER.get(interaction)
    if letter is None or not any(_granted(s, resource_type, letter) for s in ctx.scopes):
        raise FhirError.one(403, "forbidden", f"not permitted: {interaction} on {resource_type}")
