"""Bulk seeding writes audited records that search finds and verification accepts."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session

from service import audit
from service.core.db import make_engine, migrate
from service.seed import seed_seizures
from service.testing import fast_settings, seed_world


def test_seeded_records_verify_and_search(fresh_settings: object, tmp_path: Path) -> None:
    settings = fresh_settings
    engine = make_engine(settings.sqlalchemy_url)  # type: ignore[attr-defined]
    try:
        migrate(engine)
        world = seed_world(settings)  # type: ignore[arg-type]
        made = seed_seizures(
            engine=engine, agency_id=world.agencies["A"], count=450, batch=200, seed=7
        )
        assert made == 450
        with Session(engine) as session:
            report = audit.verify(session)
            assert report.ok, report.problems[:3]
            assert report.rows_checked >= 900
            from service import crud
            from service.principal import Principal

            actor = Principal(agency_id=world.agencies["A"], role="investigator")
            rows, more = crud.list_seizures(
                session=session,
                actor=actor,
                filters=crud.SeizureFilter(transport_mode="sea"),
                limit=500,
            )
            assert rows and not more and all(r.transport_mode == "sea" for r in rows)
            rows, _ = crud.list_seizures(
                session=session, actor=actor, filters=crud.SeizureFilter(q="CONTAINER"), limit=500
            )
            assert rows
            for row in rows:  # in the narrative, or in an item's description
                texts = [row.narrative or ""] + [
                    i.description
                    for i in crud.list_items(session=session, actor=actor, seizure_id=row.id)
                ]
                assert any("container" in t.lower() for t in texts)
    finally:
        engine.dispose()


def test_seed_rejects_bad_arguments(tmp_path: Path) -> None:
    settings = fast_settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'x.sqlite3'}")
    engine = make_engine(settings.sqlalchemy_url)
    try:
        with pytest.raises(ValueError, match="count"):
            seed_seizures(engine=engine, agency_id=None, count=-1)  # type: ignore[arg-type]
    finally:
        engine.dispose()
