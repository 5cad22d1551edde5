"""The project's one synthetic-data generator: deterministic Vietnamese patients and their visits.

Used by `flask ehr demo`, the tests and the benchmark. Patient number i depends only on (seed, i),
so any slice of a data set can be regenerated. Every national ID is a well-formed 12-digit CCCD
whose province prefix, century/sex digit and birth year agree with the patient. Each patient comes
as a FHIR transaction Bundle whose entries reference each other by `urn:uuid:`; facilities and
practitioners are shared resources with fixed ids, created first (`facility_resources`).

Default scale per patient: 1 Patient, 5 Encounters, 20 Observations, 3 Conditions,
3 MedicationRequests, 2 AllergyIntolerances, 2 Immunizations = 36 resources.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Iterator

from ehr.fhir import terminology as t
from ehr.identity import codetables
from ehr.identity.systems import IdentifierSystems

FAMILY = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ", "Hồ", "Ngô", "Dương", "Lý", "Đinh", "Trương"]
MIDDLE_M = ["Văn", "Hữu", "Đức", "Minh", "Quang", "Thành", "Công", "Xuân", "Gia", "Hoàng"]
MIDDLE_F = ["Thị", "Ngọc", "Thu", "Thanh", "Hồng", "Kim", "Mỹ", "Phương", "Bảo", "Diệu"]
GIVEN_M = ["An", "Bình", "Cường", "Dũng", "Hải", "Hùng", "Khánh", "Long", "Minh", "Nam", "Phúc", "Quân", "Sơn", "Thắng", "Trung", "Tuấn", "Việt", "Đạt", "Hiếu", "Lộc"]
GIVEN_F = ["Anh", "Chi", "Dung", "Hà", "Hạnh", "Hương", "Lan", "Linh", "Mai", "Nga", "Ngọc", "Oanh", "Phương", "Quỳnh", "Thảo", "Trang", "Vân", "Yến", "Ánh", "Nhung"]
STREETS = ["Lê Lợi", "Trần Hưng Đạo", "Nguyễn Huệ", "Hai Bà Trưng", "Lý Thường Kiệt", "Phan Đình Phùng", "Điện Biên Phủ", "Hoàng Văn Thụ", "Quang Trung", "Võ Thị Sáu"]

# Common outpatient diagnoses: ICD-10 code and Vietnamese name (demo data, not the official table).
DIAGNOSES = [
    ("I10", "Tăng huyết áp vô căn (nguyên phát)"),
    ("E11.9", "Bệnh đái tháo đường không phụ thuộc insulin, không có biến chứng"),
    ("J06.9", "Nhiễm trùng đường hô hấp trên cấp, không đặc hiệu"),
    ("K29.7", "Viêm dạ dày, không đặc hiệu"),
    ("J45.9", "Hen, không đặc hiệu"),
    ("M54.5", "Đau vùng thắt lưng"),
    ("E78.5", "Tăng lipid máu, không đặc hiệu"),
    ("J20.9", "Viêm phế quản cấp, không đặc hiệu"),
    ("K21.9", "Bệnh trào ngược dạ dày - thực quản không có viêm thực quản"),
    ("J02.9", "Viêm họng cấp, không đặc hiệu"),
    ("N39.0", "Nhiễm trùng đường tiết niệu, vị trí không xác định"),
    ("H10.9", "Viêm kết mạc, không đặc hiệu"),
]
MEDICATIONS = [
    ("C08CA01", "Amlodipin 5 mg, viên nén", "Uống 1 viên mỗi sáng"),
    ("A10BA02", "Metformin 500 mg, viên nén", "Uống 1 viên sau ăn sáng và tối"),
    ("N02BE01", "Paracetamol 500 mg, viên nén", "Uống 1 viên khi sốt trên 38,5 °C, cách nhau ít nhất 4 giờ"),
    ("J01CA04", "Amoxicilin 500 mg, viên nang", "Uống 1 viên mỗi 8 giờ trong 7 ngày"),
    ("A02BC01", "Omeprazol 20 mg, viên nang", "Uống 1 viên trước ăn sáng 30 phút"),
    ("C10AA05", "Atorvastatin 10 mg, viên nén", "Uống 1 viên buổi tối"),
    ("C09CA01", "Losartan 50 mg, viên nén", "Uống 1 viên mỗi ngày"),
    ("R06AE07", "Cetirizin 10 mg, viên nén", "Uống 1 viên buổi tối khi ngứa"),
]
ALLERGENS = [
    ("764146007", "Penicillin", "medication"),
    ("44027008", "Hải sản (seafood)", "food"),
    ("387458008", "Aspirin", "medication"),
    ("256349002", "Đậu phộng (peanut)", "food"),
    ("260147004", "Mạt bụi nhà (house dust mite)", "environment"),
]
VACCINES = [
    ("08", "Viêm gan B (Hep B)"),
    ("03", "Sởi - Quai bị - Rubella (MMR)"),
    ("20", "Bạch hầu - Ho gà - Uốn ván (DTaP)"),
    ("88", "Cúm (influenza)"),
    ("208", "COVID-19 (Pfizer-BioNTech)"),
    ("39", "Viêm não Nhật Bản"),
]
REASONS = ["Sốt, ho 3 ngày", "Đau đầu, chóng mặt", "Khám định kỳ tăng huyết áp", "Đau bụng vùng thượng vị", "Tái khám đái tháo đường", "Đau lưng", "Ngứa mắt, đỏ mắt", "Khó thở khi gắng sức"]
TYPE_OF_CARE_SYSTEM = "https://fhir.ehr-vn.org/CodeSystem/ma-loai-kcb"  # QĐ 1804/QĐ-BYT codes
ETHNICITY_EXT = "https://fhir.ehr-vn.org/StructureDefinition/patient-ethnicity"
ETHNICITY_SYSTEM = "https://fhir.ehr-vn.org/CodeSystem/dan-toc-1979"
ADDRESS_COMMUNE_EXT = "https://fhir.ehr-vn.org/StructureDefinition/address-commune-code"
ADDRESS_PROVINCE_EXT = "https://fhir.ehr-vn.org/StructureDefinition/address-province-code"


@dataclass(frozen=True)
class Scale:
    encounters: int = 5
    observations: int = 20
    conditions: int = 3
    medication_requests: int = 3
    allergies: int = 2
    immunizations: int = 2
    coverages: int = 0  # BHYT cards (the demo adds one; the benchmark's 36-resource patient has none)

    @property
    def per_patient(self) -> int:
        return (1 + self.encounters + self.observations + self.conditions + self.medication_requests + self.allergies
                + self.immunizations + self.coverages)


def century_sex_digit(birth_year: int, male: bool) -> int:
    """Digit 4 of a CCCD: 0/1 for 1900s male/female, 2/3 for 2000s, ... (TT 07/2016/TT-BCA)."""
    century = birth_year // 100 - 19
    return century * 2 + (0 if male else 1)


def make_cccd(rng: random.Random, prefix: str, birth_year: int, male: bool) -> str:
    return f"{prefix}{century_sex_digit(birth_year, male)}{birth_year % 100:02d}{rng.randrange(1_000_000):06d}"


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _iso(dt: datetime) -> str:
    return dt.astimezone(timezone(timedelta(hours=7))).isoformat(timespec="seconds")


class Generator:
    def __init__(self, seed: int = 1, anchor: date = date(2026, 6, 30), systems: IdentifierSystems | None = None, facilities: int = 3) -> None:
        self.seed = seed
        self.anchor = anchor
        self.systems = systems or IdentifierSystems()
        self.n_facilities = facilities
        self._provinces = sorted(codetables.provinces().values(), key=lambda p: p.code)
        self._communes_by_province: dict[str, list[codetables.Commune]] = {}
        for commune in sorted(codetables.communes().values(), key=lambda c: c.code):
            self._communes_by_province.setdefault(commune.province_code, []).append(commune)
        self._old_prefixes = sorted(codetables.provinces_pre2025())
        self._ethnic = codetables.ethnic_groups()

    # --- shared resources -----------------------------------------------------------------

    def _fixed_id(self, kind: str, i: int) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"ehr-synthetic/{self.seed}/{kind}/{i}"))

    def facility_resources(self) -> list[dict[str, Any]]:
        """Organizations and Practitioners with fixed ids, to be written (PUT) before patients."""
        rng = random.Random(f"{self.seed}:facilities")
        out: list[dict[str, Any]] = []
        for i in range(self.n_facilities):
            province = self._provinces[(i * 7) % len(self._provinces)]
            code = f"{province.code}{i + 1:03d}"
            out.append(
                {
                    "resourceType": "Organization",
                    "id": self._fixed_id("org", i),
                    "active": True,
                    "identifier": [{"system": self.systems.facility, "value": code}],
                    "type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/organization-type", "code": "prov"}]}],
                    "name": f"Phòng khám Đa khoa {['An Bình', 'Hòa Hảo', 'Thiện Tâm', 'Bình An', 'Phúc Lộc'][i % 5]} {province.name}",
                    "address": [{"state": province.full_name, "country": "VN"}],
                }
            )
            for j in range(2):
                male = rng.random() < 0.5
                family, given = rng.choice(FAMILY), f"{rng.choice(MIDDLE_M if male else MIDDLE_F)} {rng.choice(GIVEN_M if male else GIVEN_F)}"
                out.append(
                    {
                        "resourceType": "Practitioner",
                        "id": self._fixed_id("practitioner", i * 2 + j),
                        "active": True,
                        "identifier": [{"system": self.systems.practitioner_licence, "value": f"{rng.randrange(100000):06d}/BYT-CCHN"}],
                        "name": [{"text": f"{family} {given}", "family": family, "given": given.split()}],
                        "gender": "male" if male else "female",
                        "qualification": [{"code": {"text": "Bác sĩ đa khoa"}}],
                    }
                )
        return out

    def organization_ref(self, i: int) -> str:
        return f"Organization/{self._fixed_id('org', i % self.n_facilities)}"

    def practitioner_ref(self, facility: int, j: int) -> str:
        return f"Practitioner/{self._fixed_id('practitioner', (facility % self.n_facilities) * 2 + j % 2)}"

    # --- patients -------------------------------------------------------------------------

    def patients(self, count: int, start: int = 0, scale: Scale | None = None) -> Iterator[dict[str, Any]]:
        for i in range(start, start + count):
            yield self.patient_bundle(i, scale)

    def patient_bundle(self, index: int, scale: Scale | None = None) -> dict[str, Any]:
        """A transaction Bundle holding one patient and their record, linked by urn:uuid."""
        scale = scale or Scale()
        rng = random.Random(f"{self.seed}:patient:{index}")
        patient, patient_url = self._patient(rng)
        facility = rng.randrange(self.n_facilities)
        entries = [(patient_url, patient)]
        visits: list[tuple[str, datetime]] = []
        start = datetime(self.anchor.year, self.anchor.month, self.anchor.day, 8, tzinfo=timezone(timedelta(hours=7)))
        for k in range(scale.encounters):
            when = start - timedelta(days=rng.randrange(1, 900), minutes=rng.randrange(0, 540))
            url = f"urn:uuid:{_uuid(rng)}"
            entries.append((url, self._encounter(rng, patient_url, facility, when, k)))
            visits.append((url, when))
        visits.sort(key=lambda v: v[1])
        height = rng.randrange(148, 182)
        weight = rng.randrange(42, 88)
        for k in range(scale.observations):
            enc_url, when = visits[k % len(visits)] if visits else (None, start)
            entries.append((f"urn:uuid:{_uuid(rng)}", self._observation(rng, patient_url, enc_url, when, k, height, weight)))
        for k in range(scale.conditions):
            enc_url, when = visits[k % len(visits)] if visits else (None, start)
            entries.append((f"urn:uuid:{_uuid(rng)}", self._condition(rng, patient_url, enc_url, when, k == 0)))
        for k in range(scale.medication_requests):
            enc_url, when = visits[k % len(visits)] if visits else (None, start)
            entries.append((f"urn:uuid:{_uuid(rng)}", self._medication_request(rng, patient_url, enc_url, when, facility)))
        for allergen in rng.sample(ALLERGENS, min(scale.allergies, len(ALLERGENS))):
            entries.append((f"urn:uuid:{_uuid(rng)}", self._allergy(rng, patient_url, allergen)))
        for vaccine in rng.sample(VACCINES, min(scale.immunizations, len(VACCINES))):
            entries.append((f"urn:uuid:{_uuid(rng)}", self._immunization(rng, patient_url, vaccine, facility)))
        for _ in range(scale.coverages):
            entries.append((f"urn:uuid:{_uuid(rng)}", self._coverage(rng, patient_url, facility)))
        return {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {"fullUrl": url, "resource": resource, "request": {"method": "POST", "url": resource["resourceType"]}}
                for url, resource in entries
            ],
        }

    def _patient(self, rng: random.Random) -> tuple[dict[str, Any], str]:
        male = rng.random() < 0.5
        birth = date(rng.randrange(1940, 2024), rng.randrange(1, 13), rng.randrange(1, 29))
        family = rng.choice(FAMILY)
        middle = rng.choice(MIDDLE_M if male else MIDDLE_F)
        given = rng.choice(GIVEN_M if male else GIVEN_F)
        full = f"{family} {middle} {given}"
        prefix = rng.choice(self._old_prefixes)
        province = rng.choice(self._provinces)
        commune = rng.choice(self._communes_by_province[province.code])
        phone = f"0{rng.choice('35789')}{rng.randrange(10**8):08d}"
        ethnic = "01" if rng.random() < 0.85 else rng.choice(sorted(self._ethnic))
        house = f"Số {rng.randrange(1, 300)} đường {rng.choice(STREETS)}"
        patient = {
            "resourceType": "Patient",
            "identifier": [{"use": "official", "system": self.systems.cccd, "value": make_cccd(rng, prefix, birth.year, male)}],
            "active": True,
            "name": [{"use": "official", "text": full, "family": family, "given": [middle, given]}],
            "telecom": [{"system": "phone", "value": phone, "use": "mobile"}],
            "gender": "male" if male else "female",
            "birthDate": birth.isoformat(),
            "address": [
                {
                    "use": "home",
                    "text": f"{house}, {commune.full_name}, {province.full_name}",
                    "line": [house],
                    "city": commune.full_name,
                    "state": province.full_name,
                    "country": "VN",
                    "extension": [
                        {"url": ADDRESS_COMMUNE_EXT, "valueCode": commune.code},
                        {"url": ADDRESS_PROVINCE_EXT, "valueCode": province.code},
                    ],
                }
            ],
            "extension": [{"url": ETHNICITY_EXT, "valueCoding": {"system": ETHNICITY_SYSTEM, "code": ethnic, "display": self._ethnic[ethnic]}}],
            "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "vi"}]}, "preferred": True}],
        }
        return patient, f"urn:uuid:{_uuid(rng)}"

    def _encounter(self, rng: random.Random, patient: str, facility: int, when: datetime, k: int) -> dict[str, Any]:
        return {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"system": t.ACT_CODE, "code": "AMB", "display": "ambulatory"},
            "type": [{"coding": [{"system": TYPE_OF_CARE_SYSTEM, "code": "01", "display": "Khám bệnh"}], "text": "Khám bệnh"}],
            "subject": {"reference": patient},
            "participant": [{"individual": {"reference": self.practitioner_ref(facility, k)}}],
            "period": {"start": _iso(when), "end": _iso(when + timedelta(minutes=rng.randrange(10, 40)))},
            "reasonCode": [{"text": rng.choice(REASONS)}],
            "serviceProvider": {"reference": self.organization_ref(facility)},
        }

    def _observation(self, rng: random.Random, patient: str, encounter: str | None, when: datetime, k: int, height: int, weight: int) -> dict[str, Any]:
        kind = ["bp", "heart_rate", "temperature", "weight", "spo2", "height", "respiratory_rate", "bmi"][k % 8]
        vital = t.VITAL_SIGNS[kind]
        obs: dict[str, Any] = {
            "resourceType": "Observation",
            "status": "final",
            "category": [{"coding": [{"system": t.OBSERVATION_CATEGORY, "code": "vital-signs", "display": "Vital Signs"}]}],
            "code": {"coding": [{"system": t.LOINC, "code": vital.loinc, "display": vital.display}]},
            "subject": {"reference": patient},
            "effectiveDateTime": _iso(when + timedelta(minutes=k)),
        }
        if encounter:
            obs["encounter"] = {"reference": encounter}

        def quantity(value: float | int, unit: str) -> dict[str, Any]:
            return {"value": value, "unit": unit, "system": t.UCUM, "code": unit}

        if kind == "bp":
            sys_v, dia_v = rng.randrange(100, 165), rng.randrange(60, 100)
            obs["component"] = [
                {"code": {"coding": [{"system": t.LOINC, "code": "8480-6", "display": "Systolic blood pressure"}]}, "valueQuantity": quantity(sys_v, "mm[Hg]")},
                {"code": {"coding": [{"system": t.LOINC, "code": "8462-4", "display": "Diastolic blood pressure"}]}, "valueQuantity": quantity(dia_v, "mm[Hg]")},
            ]
        elif kind == "temperature":
            obs["valueQuantity"] = quantity(Decimal(f"{rng.uniform(36.2, 38.9):.1f}"), "Cel")
        elif kind == "weight":
            obs["valueQuantity"] = quantity(weight + rng.randrange(-2, 3), "kg")
        elif kind == "height":
            obs["valueQuantity"] = quantity(height, "cm")
        elif kind == "bmi":
            obs["valueQuantity"] = quantity(Decimal(f"{weight / (height / 100) ** 2:.1f}"), "kg/m2")
        else:
            low, high = {"heart_rate": (58, 110), "spo2": (93, 100), "respiratory_rate": (14, 24)}[kind]
            assert vital.unit is not None
            obs["valueQuantity"] = quantity(rng.randrange(low, high), vital.unit)
        return obs

    def _condition(self, rng: random.Random, patient: str, encounter: str | None, when: datetime, main: bool) -> dict[str, Any]:
        code, name = rng.choice(DIAGNOSES)
        condition: dict[str, Any] = {
            "resourceType": "Condition",
            "clinicalStatus": {"coding": [{"system": t.CONDITION_CLINICAL, "code": "active"}]},
            "verificationStatus": {"coding": [{"system": t.CONDITION_VERIFICATION, "code": "confirmed"}]},
            "category": [{"coding": [{"system": t.CONDITION_CATEGORY, "code": "encounter-diagnosis"}]}],
            "code": {"coding": [{"system": t.ICD10, "code": code, "display": name}], "text": name},
            "subject": {"reference": patient},
            "onsetDateTime": _iso(when),
            "recordedDate": _iso(when),
        }
        if main:
            condition["extension"] = [{"url": "https://fhir.ehr-vn.org/StructureDefinition/main-diagnosis", "valueBoolean": True}]
        if encounter:
            condition["encounter"] = {"reference": encounter}
        return condition

    def _medication_request(self, rng: random.Random, patient: str, encounter: str | None, when: datetime, facility: int) -> dict[str, Any]:
        code, name, instruction = rng.choice(MEDICATIONS)
        days = rng.choice([5, 7, 10, 14, 30])
        request: dict[str, Any] = {
            "resourceType": "MedicationRequest",
            "status": "completed",
            "intent": "order",
            "medicationCodeableConcept": {"coding": [{"system": t.ATC, "code": code}], "text": name},
            "subject": {"reference": patient},
            "authoredOn": _iso(when),
            "requester": {"reference": self.practitioner_ref(facility, 0)},
            "dosageInstruction": [{"text": instruction, "route": {"text": "Đường uống"}}],
            "dispenseRequest": {"quantity": {"value": days * 2, "unit": "viên"}, "expectedSupplyDuration": {"value": days, "unit": "ngày", "system": t.UCUM, "code": "d"}},
        }
        if encounter:
            request["encounter"] = {"reference": encounter}
        return request

    def _allergy(self, rng: random.Random, patient: str, allergen: tuple[str, str, str]) -> dict[str, Any]:
        code, name, category = allergen
        return {
            "resourceType": "AllergyIntolerance",
            "clinicalStatus": {"coding": [{"system": t.ALLERGY_CLINICAL, "code": "active"}]},
            "verificationStatus": {"coding": [{"system": t.ALLERGY_VERIFICATION, "code": "confirmed"}]},
            "category": [category],
            "criticality": rng.choice(["low", "high"]),
            "code": {"coding": [{"system": t.SNOMED, "code": code}], "text": name},
            "patient": {"reference": patient},
            "recordedDate": (self.anchor - timedelta(days=rng.randrange(30, 3000))).isoformat(),
        }

    def _coverage(self, rng: random.Random, patient: str, facility: int) -> dict[str, Any]:
        group, level = rng.choice([("GD", "4"), ("DN", "4"), ("HT", "3"), ("TE", "1"), ("HN", "2")])
        province = rng.choice(self._provinces).code
        bhxh = f"{rng.randrange(10**10):010d}"
        card = f"{group}{level}{province}{bhxh}"
        start = date(self.anchor.year, 1, 1)
        return {
            "resourceType": "Coverage",
            "status": "active",
            "identifier": [{"system": self.systems.bhyt, "value": card}, {"system": self.systems.bhxh, "value": bhxh}],
            "type": {"text": "Bảo hiểm y tế"},
            "beneficiary": {"reference": patient},
            "payor": [{"display": "Bảo hiểm xã hội Việt Nam"}],
            "period": {"start": start.isoformat(), "end": date(self.anchor.year, 12, 31).isoformat()},
            "class": [
                {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/coverage-class", "code": "group"}]}, "value": group, "name": "Mã đối tượng"},
                {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/coverage-class", "code": "class"}]}, "value": level, "name": "Mức hưởng"},
            ],
            "extension": [{"url": "https://fhir.ehr-vn.org/StructureDefinition/coverage-registered-facility", "valueReference": {"reference": self.organization_ref(facility)}}],
        }

    def _immunization(self, rng: random.Random, patient: str, vaccine: tuple[str, str], facility: int) -> dict[str, Any]:
        code, name = vaccine
        given = self.anchor - timedelta(days=rng.randrange(30, 5000))
        return {
            "resourceType": "Immunization",
            "status": "completed",
            "vaccineCode": {"coding": [{"system": t.CVX, "code": code}], "text": name},
            "patient": {"reference": patient},
            "occurrenceDateTime": given.isoformat(),
            "lotNumber": f"L{rng.randrange(10**6):06d}",
            "site": {"text": rng.choice(["Cánh tay trái", "Cánh tay phải", "Đùi trái"])},
            "performer": [{"actor": {"reference": self.organization_ref(facility)}}],
            "protocolApplied": [{"doseNumberPositiveInt": rng.randrange(1, 4)}],
        }
