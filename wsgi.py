"""WSGI entry point: `gunicorn wsgi:app`, `flask --app wsgi ...`."""

from ehr import create_app

app = create_app()
