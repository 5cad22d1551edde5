"""Pure FHIR logic: parsing, validation, OperationOutcome, references, bundles, capability.

No Flask and no SQLAlchemy here. `ehr.fhir.resources` is the only module that imports
fhir.resources (release R4B; see its docstring for the R4/R4B choice).
"""
