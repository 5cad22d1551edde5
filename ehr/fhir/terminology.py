"""Code system URIs and the vital-sign codes (FHIR vital-signs profile: LOINC codes, UCUM units)."""

from __future__ import annotations

from dataclasses import dataclass

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
SNOMED = "http://snomed.info/sct"
CVX = "http://hl7.org/fhir/sid/cvx"
ATC = "http://www.whocc.no/atc"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
ALLERGY_VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"


@dataclass(frozen=True)
class VitalSign:
    key: str
    loinc: str
    display: str
    unit: str | None  # UCUM code; None for the blood-pressure panel
    low: float
    high: float


VITAL_SIGNS = {
    v.key: v
    for v in (
        VitalSign("bp", "85354-9", "Blood pressure panel with all children optional", None, 0, 0),
        VitalSign("systolic", "8480-6", "Systolic blood pressure", "mm[Hg]", 40, 300),
        VitalSign("diastolic", "8462-4", "Diastolic blood pressure", "mm[Hg]", 20, 200),
        VitalSign("heart_rate", "8867-4", "Heart rate", "/min", 20, 250),
        VitalSign("temperature", "8310-5", "Body temperature", "Cel", 30, 45),
        VitalSign("spo2", "59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", "%", 50, 100),
        VitalSign("respiratory_rate", "9279-1", "Respiratory rate", "/min", 4, 80),
        VitalSign("height", "8302-2", "Body height", "cm", 30, 250),
        VitalSign("weight", "29463-7", "Body weight", "kg", 1, 350),
        VitalSign("bmi", "39156-5", "Body mass index (BMI) [Ratio]", "kg/m2", 5, 100),
    )
}
