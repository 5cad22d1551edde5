"""$validate (create, update and delete modes): the same checks as a write, nothing stored.

Returns the issues instead of raising them: FHIR validation, the server's business rules
(identifier formats), referential integrity and, for Patients, national-ID uniqueness; for
delete mode, whether the resource exists and nothing references it.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from ehr.fhir import references as refs
from ehr.fhir.outcomes import FhirError, Issue, bad_request
from ehr.fhir.resources import R4B_TYPES
from ehr.services import indexing, policy, rules
from ehr.services.common import check_id, check_type
from ehr.services.context import AccessContext
from ehr.services.policy import authorize
from ehr.services.resources import PendingReference, check_references, check_unreferenced, prepare_write
from ehr.store import access, index, repository
from ehr.store.runtime import Store

MODES = ("create", "update", "delete")


def validate(store: Store, ctx: AccessContext, resource_type: str, logical_id: str | None, doc: dict[str, Any] | None, mode: str) -> list[Issue]:
    if resource_type not in R4B_TYPES:  # any R4 type can be validated, stored or not (Parameters...)
        check_type(resource_type)
    authorize(ctx, "read", resource_type)
    if mode not in MODES:
        raise bad_request("mode must be create, update or delete", "mode")
    if logical_id is not None:
        check_id(logical_id)
    if mode == "delete":
        if logical_id is None:
            raise bad_request("delete mode validates an existing resource: POST [type]/[id]/$validate", "mode")
        return _delete_issues(store, ctx, resource_type, logical_id)
    if doc is None:
        raise bad_request("a resource to validate is required", "resource")
    if mode == "update":
        target = logical_id or doc.get("id")
        if not isinstance(target, str) or doc.get("id") != target:
            return [Issue("invalid", "update mode needs the resource's id, equal to the id of the URL", expression=("id",))]
    else:
        target = str(uuid.uuid4())
    try:
        prepared = prepare_write(store, copy.deepcopy(doc), resource_type, target)
    except FhirError as exc:
        return exc.issues
    issues = list(prepared.warnings)
    with store.reading(policy.gate(ctx)) as uow:
        pending = []
        for path, ref in prepared.walked.references:
            parsed = refs.parse(str(ref.get("reference", "")), store.base_urls)
            if parsed.kind == "local" and (parsed.resource_type, parsed.logical_id) != (resource_type, target):
                pending.append(PendingReference("", path, parsed.resource_type, parsed.logical_id, parsed.version))  # type: ignore[arg-type]
        if store.referential_integrity and resource_type != "Bundle":
            try:
                check_references(uow, pending)
            except FhirError as exc:
                issues += exc.issues
        for number in rules.national_ids(prepared.doc, store.systems):
            holders = set(index.token_holders(uow, "Patient", indexing.NATIONAL_ID, indexing.national_id_token(store, number))) - {target}
            if holders:
                issues.append(Issue("conflict", "another active Patient already holds this national ID", expression=("Patient.identifier",)))
    return issues


def _delete_issues(store: Store, ctx: AccessContext, resource_type: str, logical_id: str) -> list[Issue]:
    with store.reading(policy.gate(ctx)) as uow:
        current = repository.current(uow, resource_type, logical_id)
        hidden = current is not None and not access.row_visible(uow, uow.access.restriction, current.compartment, current.created_by_org, resource_type)
        if current is None or current.deleted or hidden:
            return [Issue("not-found", f"{resource_type}/{logical_id} is not there to delete")]
        if store.referential_integrity:
            try:
                check_unreferenced(uow, [(resource_type, logical_id)])
            except FhirError as exc:
                return exc.issues
    return []
