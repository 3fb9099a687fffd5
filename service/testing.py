"""Helpers for tests (ours and other packages'): isolated databases and a seeded world.

``FIELDSCAN_TEST_DATABASE_URL`` names a PostgreSQL server to test against; each
:func:`isolated_database` gets its own schema there, dropped afterwards, so runs never
collide. Without it only SQLite is used.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from service.core.config import Settings

TEST_DATABASE_ENV = "FIELDSCAN_TEST_DATABASE_URL"


def backends() -> list[str]:
    """``["sqlite"]``, plus ``"postgresql"`` when the test database variable is set."""
    return ["sqlite", "postgresql"] if os.environ.get(TEST_DATABASE_ENV) else ["sqlite"]


@contextmanager
def isolated_database(backend: str, tmp_dir: Path, *, base_url: str | None = None) -> Iterator[str]:
    """A URL to an empty database of ``backend``; PostgreSQL gets a fresh schema, dropped after.

    ``base_url`` defaults to ``$FIELDSCAN_TEST_DATABASE_URL``. An unreachable PostgreSQL
    raises (a failure, never a skip).
    """
    if backend == "sqlite":
        yield f"sqlite:///{tmp_dir / f'fs-{uuid.uuid4().hex[:8]}.sqlite3'}"
        return
    base = base_url or os.environ.get(TEST_DATABASE_ENV)
    if not base:
        raise RuntimeError(f"{TEST_DATABASE_ENV} is not set")
    schema = f"fs_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            # In public, once, so every test schema's migration finds it on the search path.
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public")
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        url = make_url(base).update_query_dict({"options": f"-csearch_path={schema},public"})
        yield url.render_as_string(hide_password=False)
    finally:
        try:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            admin.dispose()


def fast_settings(*, data_dir: Path, database_url: str, **overrides: object) -> Settings:
    """Settings for tests: cheap argon2, a fixed JWT secret, checkpoints every 50 events."""
    values: dict[str, object] = {
        "data_dir": data_dir,
        "database_url": database_url,
        "secret_key": "test-secret-" + uuid.uuid4().hex,
        "argon2_time_cost": 1,
        "argon2_memory_kib": 8,
        "checkpoint_every": 50,
        **overrides,
    }
    return Settings.model_validate(values)


@dataclass
class World:
    """Two agencies with one user per role each, and a device with a key in each."""

    password: str = "correct horse battery"
    agencies: dict[str, uuid.UUID] = field(default_factory=dict)
    #: ``users[agency][role]`` → username
    users: dict[str, dict[str, str]] = field(default_factory=dict)
    devices: dict[str, uuid.UUID] = field(default_factory=dict)
    device_keys: dict[str, str] = field(default_factory=dict)


def seed_world(settings: Settings, *, tag: str | None = None) -> World:
    """Agencies ``A`` and ``B`` (names unique by ``tag``), made through crud as the system."""
    from sqlmodel import Session

    from service import audit, crud
    from service.core.db import make_engine
    from service.core.security import password_hasher
    from service.models import AgencyCreate, AgencyKind, DeviceCreate, Role, UserCreate
    from service.principal import SYSTEM

    tag = tag or uuid.uuid4().hex[:8]
    world = World()
    hasher = password_hasher(
        time_cost=settings.argon2_time_cost, memory_kib=settings.argon2_memory_kib
    )
    engine = make_engine(settings.sqlalchemy_url)
    try:
        with Session(engine) as session:
            for label, country in (("A", "PE"), ("B", "CO")):
                agency = crud.create_agency(
                    session=session,
                    actor=SYSTEM,
                    agency_in=AgencyCreate(
                        name=f"{label} customs {tag}", country=country, kind=AgencyKind.CUSTOMS
                    ),
                )
                world.agencies[label] = agency.id
                world.users[label] = {}
                for role in Role:
                    username = f"{label.lower()}_{role.value}_{tag}"
                    crud.create_user(
                        session=session,
                        actor=SYSTEM,
                        agency_id=agency.id,
                        user_in=UserCreate(username=username, role=role, password=world.password),
                        hasher=hasher,
                    )
                    world.users[label][role.value] = username
                world.users[label]["supervisor2"] = f"{label.lower()}_supervisor2_{tag}"
                crud.create_user(
                    session=session,
                    actor=SYSTEM,
                    agency_id=agency.id,
                    user_in=UserCreate(
                        username=world.users[label]["supervisor2"],
                        role=Role.SUPERVISOR,
                        password=world.password,
                    ),
                    hasher=hasher,
                )
                device = crud.create_device(
                    session=session,
                    actor=SYSTEM,
                    agency_id=agency.id,
                    device_in=DeviceCreate(
                        model="TacticID-like", serial=f"SN-{label}-{tag}", firmware="1.0"
                    ),
                )
                world.devices[label] = device.id
                _, key = crud.create_device_key(
                    session=session, actor=SYSTEM, device_id=device.id, label="station"
                )
                world.device_keys[label] = key
            session.commit()
            audit.chain_pending(session, wait=True)
            session.commit()
    finally:
        engine.dispose()
    return world


def seizure_payload(**overrides: object) -> dict[str, object]:
    """A complete seizure body (UNODC/INCB fields filled)."""
    body: dict[str, object] = {
        "seized_at": "2026-03-14T08:30:00+00:00",
        "country": "PE",
        "place": "Jorge Chávez airport",
        "checkpoint": "Cargo terminal 2",
        "latitude": -12.0219,
        "longitude": -77.1143,
        "transport_mode": "air",
        "conveyance": "LA2464",
        "concealment_method": "false bottom of suitcase",
        "origin_country": "PE",
        "departure_country": "PE",
        "transit_countries": ["BR"],
        "destination_country": "ES",
        "air_waybill": "045-12345675",
        "persons": [
            {
                "reference": "P-1",
                "role": "courier",
                "nationality": "PE",
                "sex": "male",
                "age_range": "25-34",
            }
        ],
        "companies": [{"name": "Andes Freight SAC", "role": "shipper", "country": "PE"}],
        "narrative": "Passenger selected by profiling; white powder found in suitcase lining.",
    }
    body.update(overrides)
    return body


def unlinked_seizure_payload(at: datetime, **overrides: object) -> dict[str, object]:
    """A complete seizure body seized ``at`` with nothing to link it by (no consignment
    number, person, company or route) unless ``overrides`` give it."""
    body = seizure_payload(
        seized_at=at.isoformat(),
        air_waybill=None,
        container_number=None,
        tracking_number=None,
        persons=[],
        companies=[],
        origin_country=None,
        departure_country=None,
        destination_country=None,
    )
    body.update(overrides)
    return body


def field_test_payload(
    n_points: int = 2048, *, seed: int = 0, **overrides: object
) -> dict[str, object]:
    """A field test body with an ``n_points`` raw spectrum and a matcher-shaped identification."""
    import numpy as np

    rng = np.random.default_rng(seed)
    axis = np.linspace(200.0, 2000.0, n_points)
    values = rng.normal(1000.0, 50.0, n_points) + 1e-7 * rng.random(n_points)
    body: dict[str, object] = {
        "tested_at": "2026-03-14T08:41:07.123456+00:00",
        "place": "Cargo terminal 2",
        "operator_name": "Officer on duty",
        "spectrum": {"kind": "raman", "axis": axis.tolist(), "intensities": values.tolist()},
        "identification": {
            "file": "scan-0001.spc",
            "verdict": "mixture",
            "candidates": [
                {"name": "cocaine HCl", "score": 0.9312345678901234},
                {"name": "levamisole", "score": 0.71},
                {"name": "lidocaine", "score": 0.42},
                {"name": "procaine", "score": 0.3},
                {"name": "benzocaine", "score": 0.1},
            ],
            "components": [
                {"name": "cocaine HCl", "fraction": 0.6666666666666666},
                {"name": "levamisole", "fraction": 0.3333333333333333},
            ],
            "library_version": "sha256:0123456789abcdef",
        },
    }
    body.update(overrides)
    return body
