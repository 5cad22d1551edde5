"""Background jobs, run by a process of their own (`python -m ehr.jobs`), never in a request worker."""
