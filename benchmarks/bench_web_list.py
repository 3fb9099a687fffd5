"""Web UI seizure list benchmark: the real app over HTTP on a large PostgreSQL table.

Seeds as many synthetic, audited seizures as fit in the time given (``service.seed``, the
machinery behind ``fieldscan admin seed``) into a scratch schema that is dropped afterwards,
starts the service (UI mounted) with ``uvicorn`` on 127.0.0.1, signs in as a supervisor and
times ``GET /ui/seizures``: the first page, a deep keyset page, and filtered pages. It also
prints PostgreSQL's plan of each list query (EXPLAIN ANALYZE) and whether it uses an index.
The seed makes no field tests, so the verdict filter measures an empty match.

Prints only what it measured, with the row count and the machine's load.

    .venv/bin/python benchmarks/bench_web_list.py --seizures 1000000 --seed-seconds 300
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.dialects import postgresql

from fieldscan.station.localservice import start_service_process, stop_process
from service.core.db import make_engine, migrate
from service.crud import SeizureFilter
from service.models import Verdict
from service.principal import Principal
from service.seed import seed_seizures
from service.testing import fast_settings, isolated_database, seed_world
from service.web import queries

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

#: Filtered pages timed (query parameters of /ui/seizures, as the filter form sends them).
FILTERS: dict[str, dict[str, str]] = {
    "status": {"status": "awaiting_lab"},
    "transport mode + country": {"transport_mode": "sea", "country": "PE"},
    "date range": {"date_from": "2023-03-01", "date_to": "2023-03-31"},
    "substance": {"substance": "heroin"},
    "substance (none match)": {"substance": "nitazene"},
    "verdict": {"verdict": "identified"},
    "text search": {"q": "reefer"},
    "text search (rare)": {"q": "ref 4242"},
}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def _summary(seconds: list[float]) -> str:
    p50, p95 = (_percentile(seconds, q) * 1e3 for q in (50, 95))
    return f"p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  (n={len(seconds)})"


def _start_server(url: str, data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "FIELDSCAN_DATA_DIR": str(data_dir),
        "FIELDSCAN_SECRET_KEY": uuid.uuid4().hex,
        "FIELDSCAN_ARGON2_TIME_COST": "1",
        "FIELDSCAN_ARGON2_MEMORY_KIB": "8",
    }
    return start_service_process(env)


def _time_pages(
    client: httpx.Client, urls: list[str], *, rounds: int, stop_at: float
) -> list[float]:
    for url in urls[:2]:  # warm-up, outside the measurement
        client.get(url).raise_for_status()
    out: list[float] = []
    for n in range(rounds):
        if time.monotonic() > stop_at:
            break
        url = urls[n % len(urls)]
        t0 = time.perf_counter()
        r = client.get(url)
        out.append(time.perf_counter() - t0)
        r.raise_for_status()
    return out


def _next_link(html: str) -> str | None:
    match = re.search(r'href="(/ui/seizures\?[^"]*after=[^"]+)"', html)
    return match.group(1).replace("&amp;", "&") if match else None


def _explain(engine: object, agency_id: uuid.UUID, filters: SeizureFilter, after: object) -> str:
    """EXPLAIN ANALYZE of the exact page query the UI runs (compiled with its parameters)."""
    from sqlmodel import Session

    captured: list[str] = []

    class _Capture(Session):
        def scalars(self, statement, *a, **k):  # type: ignore[no-untyped-def, override]
            sql = statement.compile(
                dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
            )
            captured.append(str(sql))
            return super().scalars(statement, *a, **k)

    actor = Principal(user_id=None, device_id=None, role="supervisor", agency_id=agency_id)
    with _Capture(engine) as session:  # type: ignore[arg-type]
        queries.seizure_page(
            session=session,
            actor=actor,
            filters=filters,
            after=after,
            limit=25,  # type: ignore[arg-type]
        )
        plan = session.execute(text("EXPLAIN (ANALYZE, BUFFERS) " + captured[0])).scalars().all()
    return "\n".join(plan)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--database-url", default=os.environ.get("FIELDSCAN_TEST_DATABASE_URL", DEFAULT_URL)
    )
    parser.add_argument("--seizures", type=int, default=1_000_000, help="seizures to seed (most)")
    parser.add_argument("--seed-seconds", type=float, default=300, help="time limit for seeding")
    parser.add_argument("--rounds", type=int, default=40, help="requests per measured kind")
    parser.add_argument("--seconds", type=float, default=60, help="time limit per kind")
    parser.add_argument("--deep", type=int, default=200, help="keyset pages to walk for 'deep'")
    parser.add_argument("--plans", action="store_true", help="print the full query plans")
    args = parser.parse_args()

    with (
        tempfile.TemporaryDirectory() as tmp,
        isolated_database("postgresql", Path(tmp), base_url=args.database_url) as url,
    ):
        settings = fast_settings(data_dir=Path(tmp), database_url=url)
        engine = make_engine(url)
        migrate(engine)
        world = seed_world(settings)
        agency_id = world.agencies["A"]
        t0 = time.perf_counter()
        made = seed_seizures(
            engine=engine, agency_id=agency_id, count=args.seizures, batch=5000,
            deadline_s=args.seed_seconds,
        )  # fmt: skip
        seed_s = time.perf_counter() - t0
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
            total = conn.execute(text("SELECT count(*) FROM seizure")).scalar_one()
        print(f"rows: {total} seizures ({made} seeded in {seed_s:.0f} s, one item each)")
        print(f"machine: {os.cpu_count()} CPUs, load average before measuring {os.getloadavg()}")

        # Plans of the queries the list page runs.
        print("\nPostgreSQL plans (EXPLAIN ANALYZE of the page query):")
        kinds: dict[str, tuple[SeizureFilter, object]] = {"first page": (SeizureFilter(), None)}
        with engine.connect() as conn:
            row = conn.execute(
                text(
                    "SELECT seized_at, id FROM seizure WHERE agency_id = :a "
                    "ORDER BY seized_at DESC, id DESC OFFSET :n LIMIT 1"
                ),
                {"a": agency_id, "n": min(total - 1, total // 2)},
            ).one()
        kinds["deep page (middle)"] = (SeizureFilter(), queries.Cursor(row[0], row[1]))
        for name, params in FILTERS.items():
            values: dict[str, object] = dict(params)
            if "date_from" in values:  # the page turns days into the first and last instant
                values["date_from"] = datetime.fromisoformat(params["date_from"] + "T00:00+00:00")
                values["date_to"] = datetime.fromisoformat(params["date_to"] + "T23:59:59+00:00")
            if "verdict" in values:
                values["verdict"] = Verdict(params["verdict"])
            filt = SeizureFilter(**values)  # type: ignore[arg-type]
            kinds[name] = (filt, None)
        for name, (filt, after) in kinds.items():
            plan = _explain(engine, agency_id, filt, after)
            index = sorted(set(re.findall(r"Index(?: Only)? Scan(?: Backward)? using (\w+)", plan)))
            ms = re.search(r"Execution Time: ([\d.]+) ms", plan)
            seq = "Seq Scan on seizure" in plan
            print(
                f"  {name:26s} indexes {', '.join(index) or 'NONE'}"
                f"{'  (seq scan on seizure!)' if seq else ''}  exec {ms.group(1) if ms else '?'} ms"
            )
            if args.plans:
                print("    " + plan.replace("\n", "\n    "))
        engine.dispose()

        proc, base = _start_server(url, Path(tmp))
        try:
            with httpx.Client(base_url=base, timeout=60, follow_redirects=False) as client:
                r = client.post(
                    "/ui/login",
                    data={
                        "username": world.users["A"]["supervisor"],
                        "password": world.password,
                        "next": "/ui/seizures",
                    },
                    headers={"Origin": base},
                )
                if r.status_code != 303:
                    raise SystemExit(f"sign-in failed: HTTP {r.status_code}")
                print("\nGET /ui/seizures over HTTP (uvicorn, 1 process), 25 rows a page:")
                stop = lambda: time.monotonic() + args.seconds  # noqa: E731
                first = _time_pages(client, ["/ui/seizures"], rounds=args.rounds, stop_at=stop())
                print(f"  {'first page':26s} {_summary(first)}")
                # Walk the keyset links as a user would, then time the deepest pages reached.
                url_n: str | None = "/ui/seizures"
                deep: list[str] = []
                walk: list[float] = []
                for _ in range(args.deep):
                    t0 = time.perf_counter()
                    page = client.get(url_n)  # type: ignore[arg-type]
                    walk.append(time.perf_counter() - t0)
                    page.raise_for_status()
                    url_n = _next_link(page.text)
                    if url_n is None:
                        break
                    deep.append(url_n)
                print(f"  {f'walk of {len(walk)} pages':26s} {_summary(walk)}")
                if deep:
                    timed = _time_pages(client, deep[-5:], rounds=args.rounds, stop_at=stop())
                    print(f"  {f'page {len(deep)} (keyset)':26s} {_summary(timed)}")
                middle = kinds["deep page (middle)"][1]
                mid_url = "/ui/seizures?after=" + middle.encode()  # type: ignore[attr-defined]
                timed = _time_pages(client, [mid_url], rounds=args.rounds, stop_at=stop())
                print(f"  {f'page at row {total // 2}':26s} {_summary(timed)}")
                for name, params in FILTERS.items():
                    q = "&".join(f"{k}={v}" for k, v in params.items())
                    timed = _time_pages(
                        client, [f"/ui/seizures?{q}"], rounds=args.rounds, stop_at=stop()
                    )
                    print(f"  {name:26s} {_summary(timed)}")
            print(f"\nload average after measuring {os.getloadavg()}")
        finally:
            stop_process(proc, timeout=10)


if __name__ == "__main__":
    main()
