"""The clinic workspace (server-rendered pages for staff): today's visits, finding and registering
patients, recording and signing visits, the patient chart. Every read and write goes through the
services the FHIR API uses; no page touches the database."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("clinic", __name__, url_prefix="/clinic")

from ehr.clinic import catalogue, labs, papers, patients, queue, requests, staff, visits  # noqa: E402,F401  (registers the routes)
