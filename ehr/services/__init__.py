"""Use cases. Each takes an explicit AccessContext, owns its transaction, and is the one code path
for its capability whatever the front door (FHIR API, clinic pages, health book, CLI)."""
