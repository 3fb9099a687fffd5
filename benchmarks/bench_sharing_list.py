"""Seizure list with sharing (issue 8) on PostgreSQL: plans and execution times of a page.

Fills a scratch schema (dropped afterwards) with ``--seizures`` seizures for each of two
agencies, A and B, one item each; of B's, a fraction ``--shared`` is shared with every
agency and the same fraction with A by name. A third agency C owns nothing. Rows are
written with plain SQL (no audit chain: this measures reads only).

For each page the UI runs (first page, a deep keyset page, the agency filter, substance and
text filters) it prints, for A and for C, PostgreSQL's execution time (median of
``--rounds`` EXPLAIN ANALYZE runs), the indexes the plan uses and any sequential scan of
``seizure``; for A also the same page without shared seizures (the list before issue 8).

    .venv/bin/python benchmarks/bench_sharing_list.py --seizures 200000 --shared 0.005
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import tempfile
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.dialects import postgresql
from sqlmodel import Session

from service.core.db import make_engine, migrate
from service.crud import SeizureFilter
from service.principal import Principal
from service.testing import isolated_database
from service.web import queries

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _fill(engine: Any, ids: dict[str, uuid.UUID], per_agency: int, shared: float) -> None:
    every = max(2, round(1 / shared)) if shared > 0 else 0
    with engine.begin() as conn:
        for name, agency in ids.items():
            conn.execute(
                text(
                    "INSERT INTO agency (id, name, country, kind, version, created_at) "
                    "VALUES (:i, :n, 'PE', 'customs', 1, now())"
                ),
                {"i": agency, "n": f"{name} agency {uuid.uuid4().hex[:6]}"},
            )
        for name in ("A", "B"):
            conn.execute(
                text(
                    "INSERT INTO seizure (id, agency_id, seized_at, incident_type, country, "
                    "transit_countries, persons, companies, status, sharing, shared_with, "
                    "version, created_at, updated_at, narrative) "
                    "SELECT gen_random_uuid(), :a, now() - g * interval '7 minutes', "
                    "'seizure', 'PE', '[]', '[]', '[]', 'open', "
                    "CASE WHEN :b AND :every > 0 AND g % :every = 0 THEN 'all' "
                    "WHEN :b AND :every > 0 AND g % :every = 1 THEN 'partners' ELSE 'own' END, "
                    "'[]', 1, now(), now(), 'case ' || g FROM generate_series(1, :n) g"
                ),
                {"a": ids[name], "b": name == "B", "every": every, "n": per_agency},
            )
        conn.execute(
            text(
                "INSERT INTO record_share (entity_type, record_id, agency_id) "
                "SELECT 'seizure', id, :a FROM seizure WHERE sharing = 'partners'"
            ),
            {"a": ids["A"]},
        )
        conn.execute(
            text(
                "INSERT INTO item (id, seizure_id, agency_id, description, substance, version, "
                "created_at, updated_at) SELECT gen_random_uuid(), id, agency_id, 'bag', "
                "CASE WHEN random() < 0.3 THEN 'cocaine' ELSE 'cannabis' END, 1, now(), now() "
                "FROM seizure"
            )
        )
        conn.exec_driver_sql("ANALYZE")


def _page_sql(
    engine: Any, actor: Principal, filters: SeizureFilter, after: Any, shared: bool
) -> str | None:
    """The page query exactly as the UI runs it (its parameters inlined), or None if none."""
    captured: list[str] = []

    class _Capture(Session):
        def scalars(self, statement, *a, **k):  # type: ignore[no-untyped-def, override]
            dialect = postgresql.dialect()
            sql = statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True})
            captured.append(str(sql))
            return super().scalars(statement, *a, **k)

    with _Capture(engine) as session:
        queries.seizure_page(
            session=session, actor=actor, filters=filters, after=after, limit=25, shared=shared
        )
    return captured[-1] if captured else None


def _measure(engine: Any, sql: str, rounds: int) -> tuple[float, list[str], bool]:
    times, plan = [], ""
    with engine.connect() as conn:
        for _ in range(rounds):
            plan = "\n".join(conn.execute(text("EXPLAIN (ANALYZE) " + sql)).scalars())
            found = re.search(r"Execution Time: ([\d.]+) ms", plan)
            times.append(float(found.group(1)) if found else float("nan"))
    indexes = sorted(set(re.findall(r"Index(?: Only)? Scan(?: Backward)? using (\w+)", plan)))
    return statistics.median(times), indexes, "Seq Scan on seizure" in plan


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--database-url", default=os.environ.get("FIELDSCAN_TEST_DATABASE_URL", DEFAULT_URL)
    )
    parser.add_argument("--seizures", type=int, default=200_000, help="seizures per agency")
    parser.add_argument("--shared", type=float, default=0.005, help="fraction of B's shared")
    parser.add_argument("--rounds", type=int, default=5, help="EXPLAIN ANALYZE runs per page")
    args = parser.parse_args()

    with (
        tempfile.TemporaryDirectory() as tmp,
        isolated_database("postgresql", Path(tmp), base_url=args.database_url) as url,
    ):
        engine = make_engine(url)
        migrate(engine)
        ids = {name: uuid.uuid4() for name in "ABC"}
        _fill(engine, ids, args.seizures, args.shared)
        with engine.connect() as conn:
            counts = conn.execute(
                text("SELECT sharing, count(*) FROM seizure GROUP BY sharing ORDER BY 1")
            ).all()
            middle = conn.execute(
                text(
                    "SELECT seized_at, id FROM seizure WHERE agency_id = :a "
                    "ORDER BY seized_at DESC, id DESC OFFSET :n LIMIT 1"
                ),
                {"a": ids["A"], "n": args.seizures // 2},
            ).one()
        print(f"rows by sharing level: {dict((k, int(v)) for k, v in counts)}")
        print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()}")
        pages: dict[str, tuple[SeizureFilter, Any]] = {
            "first page": (SeizureFilter(), None),
            "deep page (middle)": (SeizureFilter(), queries.Cursor(middle[0], middle[1])),
            "agency B only": (SeizureFilter(agency_id=ids["B"]), None),
            "substance (30 %)": (SeizureFilter(substance="cocaine"), None),
            "substance (none)": (SeizureFilter(substance="nitazene"), None),
            "text (rare)": (SeizureFilter(q="case 4242"), None),
        }
        print(f"\nexecution time of one page, median of {args.rounds} (EXPLAIN ANALYZE):")
        for who in ("A", "C"):
            actor = Principal(agency_id=ids[who], role="supervisor")
            for name, (filters, after) in pages.items():
                for shared in (True, False) if who == "A" else (True,):
                    sql = _page_sql(engine, actor, filters, after, shared)
                    label = f"{who} {name}{'' if shared else ' (own only)'}"
                    if sql is None:
                        print(f"  {label:34s} no query (nothing to read)")
                        continue
                    ms, indexes, seq = _measure(engine, sql, args.rounds)
                    print(
                        f"  {label:34s} {ms:8.2f} ms  {', '.join(indexes) or 'no index'}"
                        f"{'  SEQ SCAN on seizure' if seq else ''}"
                    )
        print(f"\nload average after measuring {os.getloadavg()}")
        engine.dispose()


if __name__ == "__main__":
    main()
