"""A patient registered at the front desk, as FHIR: Patient, and Coverage for a BHYT card.

Names are kept exactly as printed on the card (NFC, diacritics) in `HumanName.text`; family and
given are a best-effort split. The address follows the 2-level scheme of 2025 (commune and
province, codes in extensions, no district).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from ehr.identity import codetables, rules
from ehr.identity.systems import IdentifierSystems

ETHNICITY_EXT = "https://fhir.ehr-vn.org/StructureDefinition/patient-ethnicity"
ETHNICITY_SYSTEM = "https://fhir.ehr-vn.org/CodeSystem/dan-toc-1979"
OCCUPATION_EXT = "https://fhir.ehr-vn.org/StructureDefinition/patient-occupation"
OCCUPATION_SYSTEM = "https://fhir.ehr-vn.org/CodeSystem/nghe-nghiep-4069"
NATIONALITY_EXT = "http://hl7.org/fhir/StructureDefinition/patient-nationality"
COUNTRY_SYSTEM = "urn:iso:std:iso:3166"
ADDRESS_COMMUNE_EXT = "https://fhir.ehr-vn.org/StructureDefinition/address-commune-code"
ADDRESS_PROVINCE_EXT = "https://fhir.ehr-vn.org/StructureDefinition/address-province-code"
COVERAGE_REGISTERED = "https://fhir.ehr-vn.org/StructureDefinition/coverage-registered-facility"


def _address(line: str | None, province: str | None, commune: str | None) -> dict[str, Any] | None:
    if not (line or province or commune):
        return None
    address: dict[str, Any] = {"use": "home", "country": "VN"}
    parts, extensions = [], []
    if line:
        address["line"] = [line]
        parts.append(line)
    if commune:
        unit = codetables.communes()[commune]
        address["city"] = unit.full_name
        parts.append(unit.full_name)
        extensions.append({"url": ADDRESS_COMMUNE_EXT, "valueCode": commune})
    if province:
        prov = codetables.provinces()[province]
        address["state"] = prov.full_name
        parts.append(prov.full_name)
        extensions.append({"url": ADDRESS_PROVINCE_EXT, "valueCode": province})
    address["text"] = ", ".join(parts)
    if extensions:
        address["extension"] = extensions
    return address


def patient(form: dict[str, Any], systems: IdentifierSystems) -> dict[str, Any]:
    """The Patient of a checked registration form (see ehr.clinic.forms.RegisterSchema)."""
    text, family, given = rules.split_name(form["full_name"])
    name: dict[str, Any] = {"use": "official", "text": text, "family": family}
    if given:
        name["given"] = given
    born: date = form["birth_date"]
    doc: dict[str, Any] = {
        "resourceType": "Patient",
        "identifier": [{"use": "official", "system": systems.cccd, "value": rules.check_cccd(form["cccd"])}],
        "active": True,
        "name": [name],
        "gender": form["gender"],
        "birthDate": born.isoformat(),
        "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "vi"}]}, "preferred": True}],
    }
    if form.get("phone"):
        doc["telecom"] = [{"system": "phone", "value": "".join(form["phone"].split()), "use": "mobile"}]
    address = _address(form.get("address_line"), form.get("province"), form.get("commune"))
    if address:
        doc["address"] = [address]
    extensions = []
    if form.get("ethnicity"):
        code = form["ethnicity"]
        extensions.append({"url": ETHNICITY_EXT, "valueCoding": {"system": ETHNICITY_SYSTEM, "code": code, "display": codetables.ethnic_groups()[code]}})
    if form.get("occupation") and form["occupation"] in codetables.occupations():
        code = form["occupation"]
        extensions.append({"url": OCCUPATION_EXT, "valueCoding": {"system": OCCUPATION_SYSTEM, "code": code, "display": codetables.occupations()[code]}})
    if form.get("nationality"):
        extensions.append({"url": NATIONALITY_EXT, "extension": [
            {"url": "code", "valueCodeableConcept": {"coding": [{"system": COUNTRY_SYSTEM, "code": form["nationality"]}]}}]})
    if extensions:
        doc["extension"] = extensions
    return doc


def coverage(card_code: str, patient_ref: str, systems: IdentifierSystems, classes: list[dict[str, Any]]) -> dict[str, Any]:
    card = rules.parse_bhyt(card_code)
    doc: dict[str, Any] = {
        "resourceType": "Coverage", "status": "active",
        "identifier": [{"system": systems.bhyt, "value": card.number}],
        "type": {"text": "Bảo hiểm y tế"},
        "beneficiary": {"reference": patient_ref},
        "payor": [{"display": "Bảo hiểm xã hội Việt Nam"}],
    }
    if classes:
        doc["class"] = classes
    return doc


def related_person(name: str, relationship: str, phone: str | None, patient_ref: str) -> dict[str, Any]:
    """The legal representative of a child (name, relationship; v3-RoleCode)."""
    doc: dict[str, Any] = {
        "resourceType": "RelatedPerson", "active": True, "patient": {"reference": patient_ref},
        "name": [{"text": name}],
        "relationship": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": relationship}]},
                         {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "GUARD"}], "text": "Người đại diện hợp pháp"}],
    }
    if phone:
        doc["telecom"] = [{"system": "phone", "value": "".join(phone.split())}]
    return doc


# --- corrections at the desk ----------------------------------------------------------------------

# What the registration form writes; everything else a Patient carries (other identifiers, links,
# contacts, other extensions) is kept as it was when the desk corrects the card.
_FORM_ELEMENTS = ("name", "gender", "birthDate", "telecom", "address")
_FORM_EXTENSIONS = (ETHNICITY_EXT, OCCUPATION_EXT, NATIONALITY_EXT)


def corrected_patient(old: dict[str, Any], form: dict[str, Any], systems: IdentifierSystems) -> dict[str, Any]:
    """The Patient after the desk's correction: the form's elements replaced, the rest kept."""
    new = patient(form, systems)
    out = {k: v for k, v in old.items() if k not in ("meta", "text", *_FORM_ELEMENTS)}
    for key in _FORM_ELEMENTS:
        if key in new:
            out[key] = new[key]
    out["identifier"] = [*new["identifier"], *(i for i in old.get("identifier") or [] if i.get("system") != systems.cccd)]
    extensions = [e for e in old.get("extension") or [] if e.get("url") not in _FORM_EXTENSIONS] + list(new.get("extension") or [])
    if extensions:
        out["extension"] = extensions
    else:
        out.pop("extension", None)
    return out


def form_values(doc: dict[str, Any], card: dict[str, Any] | None, representative: dict[str, Any] | None,
                systems: IdentifierSystems) -> dict[str, str]:
    """The registration form's fields for a registered patient (the inverse of `patient`)."""
    name = (doc.get("name") or [{}])[0]
    values: dict[str, str] = {
        "cccd": next((str(i.get("value", "")) for i in doc.get("identifier") or [] if i.get("system") == systems.cccd), ""),
        "full_name": str(name.get("text") or " ".join([name.get("family", ""), *name.get("given", [])]).strip()),
        "gender": str(doc.get("gender") or ""),
        "phone": next((str(t.get("value", "")) for t in doc.get("telecom") or [] if t.get("system") == "phone"), ""),
        "nationality": "",
    }
    if doc.get("birthDate"):
        values["birth_date"] = date.fromisoformat(str(doc["birthDate"])[:10]).strftime("%d/%m/%Y")
    address = (doc.get("address") or [{}])[0]
    values["address_line"] = str((address.get("line") or [""])[0])
    for ext in address.get("extension") or []:
        if ext.get("url") == ADDRESS_COMMUNE_EXT:
            values["commune"] = str(ext.get("valueCode", ""))
        elif ext.get("url") == ADDRESS_PROVINCE_EXT:
            values["province"] = str(ext.get("valueCode", ""))
    for ext in doc.get("extension") or []:
        if ext.get("url") == ETHNICITY_EXT:
            values["ethnicity"] = str((ext.get("valueCoding") or {}).get("code", ""))
        elif ext.get("url") == OCCUPATION_EXT:
            values["occupation"] = str((ext.get("valueCoding") or {}).get("code", ""))
        elif ext.get("url") == NATIONALITY_EXT:
            for inner in ext.get("extension") or []:
                values["nationality"] = str(((inner.get("valueCodeableConcept") or {}).get("coding") or [{}])[0].get("code", ""))
    if card:
        values["bhyt"] = next((str(i.get("value", "")) for i in card.get("identifier") or [] if i.get("system") == systems.bhyt), "")
    if representative:
        values["rep_name"] = str((representative.get("name") or [{}])[0].get("text", ""))
        codes = [c.get("code") for r in representative.get("relationship") or [] for c in r.get("coding") or []]
        values["rep_relationship"] = next((str(c) for c in codes if c in ("MTH", "FTH")), "GUARD" if "GUARD" in codes else "")
        values["rep_phone"] = next((str(t.get("value", "")) for t in representative.get("telecom") or []), "")
    return values
