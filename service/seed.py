"""Synthetic seizures in bulk, for benchmarks and demos, audited like any other record.

Rows, their first versions and the audit chain are written batch by batch with multi-row
inserts (no ORM per row), so a million seizures take minutes, and ``audit verify`` still
passes afterwards.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Engine, insert
from sqlmodel import Session

from service import audit
from service.core.types import utcnow
from service.models import (
    AuditEvent,
    IncidentType,
    Item,
    MassUnit,
    RecordVersion,
    Seizure,
    SeizureStatus,
    TransportMode,
)
from service.sharing import SharingLevel

SUBSTANCES = (
    "cocaine HCl",
    "cocaine base",
    "heroin",
    "methamphetamine",
    "MDMA",
    "cannabis resin",
    "fentanyl",
    "ketamine",
    "tramadol",
    "ephedrine",
    "potassium permanganate",
    "acetic anhydride",
)
COUNTRIES = ("PE", "CO", "BO", "EC", "BR", "CL", "PA", "MX", "ES", "NL", "BE", "US", "NG", "ZA")
WORDS = (
    "suitcase lining",
    "false bottom",
    "banana boxes",
    "reefer container",
    "courier parcel",
    "body packer",
    "vehicle panel",
    "machinery",
    "coffee sacks",
    "postal envelope",
    "tyres",
    "fish consignment",
)


def seizure_row(rng: random.Random, agency_id: uuid.UUID, now: datetime) -> dict[str, Any]:
    """A random seizure of ``agency_id`` (first version, sharing own) as a table row."""
    country = rng.choice(COUNTRIES)
    destination = rng.choice(COUNTRIES)
    seized = datetime(2020, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(0, 6 * 365 * 86400))
    return {
        "id": uuid.UUID(int=rng.getrandbits(128) & ~(0xF000 << 64) | (0x4000 << 64)),
        "agency_id": agency_id,
        "seized_at": seized,
        "incident_type": IncidentType.SEIZURE.value,
        "country": country,
        "place": f"checkpoint {rng.randrange(1, 400)}",
        "checkpoint": None,
        "latitude": round(rng.uniform(-40, 40), 5),
        "longitude": round(rng.uniform(-90, 30), 5),
        "transport_mode": rng.choice(list(TransportMode)).value,
        "conveyance": None,
        "concealment_method": rng.choice(WORDS),
        "origin_country": rng.choice(COUNTRIES),
        "departure_country": country,
        "transit_countries": [],
        "destination_country": destination,
        "air_waybill": None,
        "container_number": f"MSCU{rng.randrange(10**6, 10**7)}" if rng.random() < 0.2 else None,
        "tracking_number": None,
        "persons": [],
        "companies": [],
        "narrative": f"Seized {rng.choice(WORDS)} bound for {destination}; "
        f"ref {rng.randrange(10**8)}",
        "status": rng.choice(list(SeizureStatus)).value,
        "sharing": SharingLevel.OWN.value,
        "shared_with": [],
        "created_by_user_id": None,
        "created_by_device_id": None,
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }


def item_row(rng: random.Random, seizure: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A random item of the ``seizure`` row (one drug, a net mass in kg) as a table row."""
    return {
        "id": uuid.UUID(int=rng.getrandbits(128) & ~(0xF000 << 64) | (0x4000 << 64)),
        "seizure_id": seizure["id"],
        "agency_id": seizure["agency_id"],
        "description": f"{rng.choice(('brick', 'bag', 'tablets', 'liquid', 'powder'))} "
        f"in {rng.choice(WORDS)}",
        "substance": rng.choice(SUBSTANCES),
        "packaging": None,
        "gross_mass": None,
        "net_mass": round(rng.uniform(0.01, 500.0), 3),
        "mass_unit": MassUnit.KG.value,
        "unit_count": None,
        "unit_form": None,
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }


def bulk_insert(session: Session, table: Any, rows: list[dict[str, Any]]) -> None:
    """Insert many rows: COPY on PostgreSQL (ten times faster), executemany elsewhere."""
    if session.get_bind().dialect.name != "postgresql":
        session.execute(insert(table), rows)
        return
    columns = [c.key for c in table.columns if c.key in rows[0]]
    json_columns = {c.key for c in table.columns if isinstance(c.type, JSON)}
    cursor = session.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]
    with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([json.dumps(row[c]) if c in json_columns else row[c] for c in columns])


def insert_seeded(
    session: Session, *, seizures: list[dict[str, Any]], items: list[dict[str, Any]], now: datetime
) -> None:
    """Insert seizure and item rows with their first versions and chained audit events,
    as a write through crud would leave them (the caller commits)."""
    bulk_insert(session, Seizure.__table__, seizures)  # type: ignore[attr-defined]
    bulk_insert(session, Item.__table__, items)  # type: ignore[attr-defined]
    versions: list[dict[str, Any]] = []
    for model, rows in ((Seizure, seizures), (Item, items)):
        table = model.__table__  # type: ignore[union-attr]
        for row in rows:
            text = audit.canonical_json(audit.snapshot_values(table, row))
            versions.append(
                {
                    "entity_type": table.name,
                    "entity_id": row["id"],
                    "agency_id": row["agency_id"],
                    "version": 1,
                    "data": text,
                    "digest": audit.sha256_hex(text),
                    "reason": "seeded",
                    "actor_user_id": None,
                    "actor_device_id": None,
                    "at": now,
                }
            )
    bulk_insert(session, RecordVersion.__table__, versions)  # type: ignore[attr-defined]
    audit.lock_chain(session)
    seq, prev = audit.head(session)
    events = []
    for version in versions:
        seq += 1
        event = {
            "seq": seq,
            "at": now,
            "agency_id": version["agency_id"],
            "actor_user_id": None,
            "actor_device_id": None,
            "entity_type": version["entity_type"],
            "entity_id": version["entity_id"],
            "action": "create",
            "version": 1,
            "before_digest": None,
            "after_digest": version["digest"],
            "prev_hash": prev,
        }
        event["hash"] = prev = audit.event_hash_values(event)
        events.append(event)
    bulk_insert(session, AuditEvent.__table__, events)  # type: ignore[attr-defined]


def seed_seizures(
    *,
    engine: Engine,
    agency_id: uuid.UUID,
    count: int,
    batch: int = 5000,
    seed: int = 0,
    deadline_s: float | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Insert up to ``count`` seizures with one item each; returns how many were made.

    Stops early, after a whole batch, once ``deadline_s`` seconds have passed.
    """
    if count < 0 or batch < 1:
        raise ValueError("count must be >= 0 and batch >= 1")
    rng = random.Random(seed)
    start = time.monotonic()
    made = 0
    while made < count:
        if deadline_s is not None and time.monotonic() - start > deadline_s:
            break
        n = min(batch, count - made)
        now = utcnow()
        seizures = [seizure_row(rng, agency_id, now) for _ in range(n)]
        items = [item_row(rng, s, now) for s in seizures]
        with Session(engine) as session:
            insert_seeded(session, seizures=seizures, items=items, now=now)
            session.commit()
        made += n
        if progress:
            progress(made)
    return made
