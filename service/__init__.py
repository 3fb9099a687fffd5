"""fieldscan.service — the seizure log (FastAPI + SQLModel + Alembic)."""
