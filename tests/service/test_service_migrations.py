"""The migrated schema is the models' schema, on every configured database."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

import service.linking
import service.models  # noqa: F401  (tables on the metadata)
from service.core.db import alembic_config, make_engine, migrate
from service.testing import isolated_database


def _include(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    return not (type_ == "index" and name is not None and name.startswith("ixpg_"))


def test_models_and_migrations_agree(backend: str, tmp_path: Path) -> None:
    with isolated_database(backend, tmp_path) as url:
        engine = make_engine(url)
        try:
            migrate(engine)
            migrate(engine)  # a second start changes nothing
            with engine.connect() as conn:
                context = MigrationContext.configure(
                    conn, opts={"compare_type": True, "include_object": _include}
                )
                diff = compare_metadata(context, SQLModel.metadata)
            assert diff == []
            tables = set(inspect(engine).get_table_names())
            assert {
                "seizure",
                "field_test",
                "audit_event",
                "record_version",
                "alembic_version",
            } <= tables
            if backend == "postgresql":
                indexes = {i["name"] for i in inspect(engine).get_indexes("seizure")}
                assert "ixpg_seizure_narrative_trgm" in indexes
                item_indexes = {i["name"] for i in inspect(engine).get_indexes("item")}
                assert {"ixpg_item_substance_lower", "ixpg_item_description_trgm"} <= item_indexes
            command.downgrade(alembic_config(engine), "base")
            assert "seizure" not in set(inspect(engine).get_table_names())
            migrate(engine)
            assert "seizure" in set(inspect(engine).get_table_names())
        finally:
            engine.dispose()


def test_migrations_ship_inside_the_package() -> None:
    import service

    root = Path(service.__file__).parent / "migrations"
    assert (root / "env.py").is_file() and list((root / "versions").glob("0001_*.py"))
