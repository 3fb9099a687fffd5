"""Linking benchmark (issue 8): suggestions for a new seizure among 1,000,000 in PostgreSQL.

Seeds (once; reused while its marker matches) the database ``fieldscan_link1m`` with
1,000,000 seizures of four agencies, bulk (COPY), with their items, first versions and
audit chain (as :mod:`service.seed` does), realistic linkable attributes and sharing:

* containers (20 %, from a pool where a few numbers repeat), air waybills (15 %), persons
  (10 %) and companies (10 %) drawn from pools, so references recur across seizures;
* 14 × 14 routes over six years (a route is shared by ~70 seizures in any 30 days) and 12
  substances (precursor windows hold tens of thousands of seizures);
* spectral band keys for 25 % of the seizures, from comparable vectors scattered around
  one template per substance (same-substance spectra collide in many bands: the hard case
  for the index; the seeded seizures have no stored vectors, so they never verify);
* sharing: 70 % own, 20 % with all agencies, 10 % with one or two named partners.

Then it starts the service (uvicorn, one process, its link worker) and times arrivals
through the HTTP API, each related to the seeded population: a new seizure, and a field
test arriving for it (the test's spectrum adds fingerprint keys and re-correlates it).
For each arrival it prints p50/p95/p99 of:

* ``write``: the POST itself (the write path only queues the correlation);
* ``worker``: POST sent → the worker committed its links (queue row gone, polled every 2 ms);
* ``visible``: POST sent → ``GET /seizures/{id}/links`` answered with the suggestions
  (that read correlates anything still queued itself, so it is never stale).

It also prints the PostgreSQL plan of one index lookup statement (which indexes).

    flock /tmp/fieldscan-bench.lock .venv/bin/python benchmarks/bench_linking.py
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import numpy as np
import psycopg
from sqlalchemy import Engine, text
from sqlmodel import Session

from fieldscan.station.localservice import start_service_process, stop_process
from service.core.db import make_engine, migrate
from service.core.types import utcnow
from service.linking import spectral
from service.linking.engine import Key, audiences, explain_lookups, seizure_keys
from service.linking.models import LinkKey, ReasonKind
from service.linking.precursors import library_relations
from service.seed import bulk_insert, insert_seeded, item_row, seizure_row
from service.sharing import RecordShare
from service.testing import World, fast_settings, seed_world
from spectra.synth import Band, synthesise

DEFAULT_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
DATABASE = "fieldscan_link1m"
#: Changing how the database is seeded changes the marker: the next run seeds afresh.
MARKER = f"link1m-v3-{spectral.VERSION}"
SUBSTANCES_WITH_SPECTRA = 12
AXIS = np.linspace(200.0, 2000.0, 1024)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def _summary(seconds: list[float]) -> str:
    if not seconds:
        return "no samples"
    p50, p95, p99 = (_percentile(seconds, q) * 1e3 for q in (50, 95, 99))
    return f"p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  p99 {p99:7.1f} ms  (n={len(seconds)})"


# --------------------------------------------------------------------------- spectra


def _raw_spectrum(substance: int, rng: np.random.Generator) -> np.ndarray:
    """A measured spectrum of one of the substances: its bands, background and noise."""
    bands_rng = np.random.default_rng(1000 + substance)
    bands = [
        Band(float(bands_rng.uniform(320, 1780)), float(bands_rng.uniform(0.1, 1)), 12.0)
        for _ in range(10)
    ]
    values = synthesise(AXIS, bands) * 1000.0
    values += float(rng.uniform(0, 400)) * np.exp(-(((AXIS - 1500.0) / 900.0) ** 2))
    return values + rng.normal(0.0, float(rng.choice([5.0, 15.0, 40.0])), AXIS.size)


def _templates() -> np.ndarray:
    rng = np.random.default_rng(7)
    out = []
    for s in range(SUBSTANCES_WITH_SPECTRA):
        vector = spectral.comparable("raman", AXIS, _raw_spectrum(s, rng))
        assert vector is not None
        out.append(vector)
    return np.array(out)


# --------------------------------------------------------------------------- seeding


def _ensure_database(server: str) -> str:
    with psycopg.connect(
        server.replace("postgresql+psycopg", "postgresql") + "/postgres", autocommit=True
    ) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone()
        if found is None:
            conn.execute(f"CREATE DATABASE {DATABASE}")
    return f"{server}/{DATABASE}"


def _marker(engine: Engine) -> dict[str, Any] | None:
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE IF NOT EXISTS bench_linking_marker (name text PRIMARY KEY, data text)"
        )
        row = conn.execute(
            text("SELECT data FROM bench_linking_marker WHERE name = :n"), {"n": MARKER}
        ).first()
    return json.loads(row[0]) if row else None


def _seed(engine: Engine, url: str, count: int, batch: int) -> dict[str, Any]:
    """Seed ``count`` seizures; returns what the timed phase needs (users, pools)."""
    with engine.begin() as conn:  # a stale seeding (other marker) is replaced entirely
        conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    migrate(engine)
    tmp = Path(tempfile.mkdtemp())
    settings = fast_settings(data_dir=tmp, database_url=url)
    worlds: list[World] = [seed_world(settings), seed_world(settings)]
    agencies = [w.agencies[k] for w in worlds for k in ("A", "B")]
    relations = library_relations()
    templates = _templates()
    rng = random.Random(11)
    nrng = np.random.default_rng(11)
    containers = [f"MSCU{rng.randrange(10**6, 10**7)}" for _ in range(150_000)]
    waybills = [f"{rng.randrange(100, 999)}-{rng.randrange(10**7, 10**8)}" for _ in range(120_000)]
    persons = [f"P-{n:06d}" for n in range(60_000)]
    companies = [f"Company {n} SAC" for n in range(8_000)]
    made = 0
    t0 = time.perf_counter()
    while made < count:
        n = min(batch, count - made)
        now = utcnow()
        seizures, items, keys, shares = [], [], [], []
        for _ in range(n):
            agency = rng.choice(agencies)
            row = seizure_row(rng, agency, now)
            row["container_number"] = rng.choice(containers) if rng.random() < 0.2 else None
            row["air_waybill"] = rng.choice(waybills) if rng.random() < 0.15 else None
            row["persons"] = [{"reference": rng.choice(persons)}] if rng.random() < 0.1 else []
            row["companies"] = [{"name": rng.choice(companies)}] if rng.random() < 0.1 else []
            draw = rng.random()
            if draw < 0.7:
                row["sharing"], row["shared_with"] = "own", []
            elif draw < 0.9:
                row["sharing"], row["shared_with"] = "all", []
            else:
                others = [a for a in agencies if a != agency]
                chosen = sorted(str(a) for a in rng.sample(others, rng.choice((1, 2))))
                row["sharing"], row["shared_with"] = "partners", chosen
                shares += [
                    {"entity_type": "seizure", "record_id": row["id"], "agency_id": uuid.UUID(p)}
                    for p in chosen
                ]
            item = item_row(rng, row, now)
            seizures.append(row)
            items.append(item)
            prints = []
            if rng.random() < 0.25:
                substance = rng.randrange(SUBSTANCES_WITH_SPECTRA)
                vector = templates[substance] + nrng.normal(0, 0.02, spectral.DIM)
                prints.append(spectral.fingerprint_of(vector / np.linalg.norm(vector), "raman"))
            view = SimpleNamespace(**row)
            for key in seizure_keys(
                view,  # type: ignore[arg-type]
                substances=[item["substance"]],
                profiles=[],
                relations=relations,
                spectra=prints,
            ):
                for reader in audiences(view):
                    keys.append(
                        {
                            "seizure_id": row["id"],
                            "agency_id": agency,
                            "audience_id": reader,
                            "kind": key.kind,
                            "key": key.key,
                            "at": row["seized_at"],
                            "detail": key.detail,
                        }
                    )
        with Session(engine) as session:
            insert_seeded(session, seizures=seizures, items=items, now=now)
            if shares:
                bulk_insert(session, RecordShare.__table__, shares)  # type: ignore[attr-defined]
            bulk_insert(session, LinkKey.__table__, keys)  # type: ignore[attr-defined]
            session.commit()
        made += n
        if made % 100_000 == 0 or made == count:
            print(f"  seeded {made:>9,} seizures in {time.perf_counter() - t0:6.0f} s", flush=True)
    with engine.connect() as conn:  # the visibility map too: index-only scans
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
    data = {
        "seizures": made,
        "seed_seconds": round(time.perf_counter() - t0),
        "password": worlds[0].password,
        "officer": worlds[0].users["A"]["officer"],
        "investigator": worlds[0].users["A"]["investigator"],
        "containers": rng.sample(containers, 2000),
        "waybills": rng.sample(waybills, 2000),
        "persons": rng.sample(persons, 2000),
    }
    _marker(engine)  # the table (the schema was replaced)
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO bench_linking_marker (name, data) VALUES (:n, :d)"),
            {"n": MARKER, "d": json.dumps(data)},
        )
    return data


# --------------------------------------------------------------------------- timing


def _plan(engine: Engine, data: dict[str, Any]) -> str:
    """EXPLAIN ANALYZE of the lookup statement the engine sends for four keys (a container,
    a route, a precursor, a spectral band), for a seizure of one agency and for one shared
    with all (one statement, as in a correlation)."""
    seizure = SimpleNamespace(
        id=uuid.uuid4(),
        agency_id=uuid.uuid4(),
        sharing="own",
        shared_with=[],
        seized_at=datetime(2023, 5, 1, tzinfo=UTC),
    )
    container = data["containers"][0]
    keys = [
        Key(ReasonKind.CONTAINER.value, f"container:{container}", container),
        Key(ReasonKind.ROUTE.value, "route:PE>ES", "PE → ES"),
        # Acetic anhydride is a precursor of heroin only: one question, for heroin.
        Key("substance", "substance:acetic anhydride", "acetic anhydride"),
        Key("spectrum_band", spectral.band_key("raman", 0, 12345), "raman"),
    ]
    relations = library_relations()
    out = []
    for sharing in ("own", "all"):
        seizure.sharing = sharing
        with engine.connect() as conn:
            out += explain_lookups(conn, seizure, keys, relations, analyze=True)
    return "\n".join(out)


def _arrival_body(rng: random.Random, data: dict[str, Any]) -> dict[str, Any]:
    countries = ("PE", "CO", "BO", "EC", "BR", "CL", "PA", "MX", "ES", "NL", "BE", "US")
    seized = datetime(2020, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(6 * 365 * 86400))
    return {
        "seized_at": seized.isoformat(),
        "country": rng.choice(countries),
        "transport_mode": "sea",
        "origin_country": rng.choice(countries),
        "departure_country": rng.choice(countries),
        "destination_country": rng.choice(countries),
        "container_number": rng.choice(data["containers"]) if rng.random() < 0.4 else None,
        "air_waybill": rng.choice(data["waybills"]) if rng.random() < 0.3 else None,
        "persons": [{"reference": rng.choice(data["persons"])}] if rng.random() < 0.3 else [],
        "sharing": "all" if rng.random() < 0.2 else "own",
        "narrative": "benchmark arrival",
    }


def _field_test_body(rng: random.Random, nrng: np.random.Generator) -> dict[str, Any]:
    substance = rng.randrange(SUBSTANCES_WITH_SPECTRA)
    values = _raw_spectrum(substance, nrng)
    return {
        "tested_at": "2024-01-01T10:00:00+00:00",
        "spectrum": {"kind": "raman", "axis": AXIS.tolist(), "intensities": values.tolist()},
        "identification": {
            "verdict": "identified",
            "candidates": [{"name": "cocaine HCl", "score": 0.93}],
            "components": [{"name": "cocaine HCl", "fraction": 1.0}],
            "library_version": "sha256:bench",
        },
    }


def _wait_correlated(conn: psycopg.Connection[Any], seizure_id: str, limit_s: float) -> bool:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        row = conn.execute(
            "SELECT 1 FROM link_queue WHERE seizure_id = %s", (uuid.UUID(seizure_id),)
        ).fetchone()
        if row is None:
            return True
        time.sleep(0.002)
    return False


def _time_arrivals(base: str, url: str, data: dict[str, Any], count: int, limit_s: float) -> None:
    rng = random.Random(int(time.time()))
    nrng = np.random.default_rng(rng.randrange(2**32))
    timings: dict[str, dict[str, list[float]]] = {
        kind: {"write": [], "worker": [], "visible": []} for kind in ("seizure", "field test")
    }
    links_found: dict[str, list[int]] = {"seizure": [], "field test": []}
    pg = url.replace("postgresql+psycopg", "postgresql")
    stop = time.monotonic() + limit_s
    with (
        httpx.Client(base_url=base, timeout=60) as client,
        psycopg.connect(pg, autocommit=True) as watch,
    ):

        def token(user: str) -> dict[str, str]:
            r = client.post(
                "/api/v1/login/access-token", data={"username": user, "password": data["password"]}
            )
            r.raise_for_status()
            return {"Authorization": f"Bearer {r.json()['access_token']}"}

        officer, investigator = token(data["officer"]), token(data["investigator"])

        def arrive(kind: str, path: str, body: dict[str, Any], seizure_id: str | None) -> str:
            t0 = time.perf_counter()
            r = client.post(path, json=body, headers=officer)
            t_write = time.perf_counter() - t0
            r.raise_for_status()
            sid = seizure_id or r.json()["id"]
            if not _wait_correlated(watch, sid, 30):
                raise SystemExit(f"seizure {sid} not correlated within 30 s")
            t_worker = time.perf_counter() - t0
            links = client.get(f"/api/v1/seizures/{sid}/links", headers=investigator)
            t_visible = time.perf_counter() - t0
            links.raise_for_status()
            for name, value in (("write", t_write), ("worker", t_worker), ("visible", t_visible)):
                timings[kind][name].append(value)
            links_found[kind].append(len(links.json()))
            return str(sid)

        for n in range(count + 5):
            if time.monotonic() > stop:
                break
            body = _arrival_body(rng, data)
            sid = arrive("seizure", "/api/v1/seizures", body, None)
            item = client.post(
                f"/api/v1/seizures/{sid}/items",
                json={"description": "bag", "substance": rng.choice(("cocaine HCl", "heroin"))},
                headers=officer,
            )
            item.raise_for_status()
            _wait_correlated(watch, sid, 30)
            test = _field_test_body(rng, nrng)
            item_id = item.json()["id"]
            arrive("field test", f"/api/v1/items/{item_id}/field-tests", test, sid)
            if n < 5:  # warm-up: caches, the library, connections
                for by_kind in timings.values():
                    for values in by_kind.values():
                        values.clear()
                for found in links_found.values():
                    found.clear()
    for kind, by_name in timings.items():
        counts = links_found[kind]
        print(
            f"\n{kind} arrivals: links per arrival mean {np.mean(counts):.1f}, "
            f"max {max(counts) if counts else 0}"
        )
        for name, values in by_name.items():
            print(f"  {name:8s} {_summary(values)}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--server", default=DEFAULT_SERVER, help="PostgreSQL server URL")
    parser.add_argument("--seizures", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--arrivals", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=300, help="time limit of the timing")
    parser.add_argument("--plans", action="store_true", help="print the full lookup plan")
    parser.add_argument(
        "--seed-only", action="store_true", help="seed (if needed) and stop: no timing"
    )
    args = parser.parse_args()

    url = _ensure_database(args.server)
    engine = make_engine(url)
    data = _marker(engine)
    if data is None or data["seizures"] != args.seizures:
        print(f"seeding {args.seizures:,} seizures into {DATABASE} (marker {MARKER})")
        data = _seed(engine, url, args.seizures, args.batch)
    else:
        migrate(engine)
        print(f"reusing {DATABASE} (marker {MARKER}, seeded in {data['seed_seconds']} s)")
    with engine.connect() as conn:
        total = conn.execute(text("SELECT count(*) FROM seizure")).scalar_one()
        keys = conn.execute(text("SELECT count(*) FROM link_key")).scalar_one()
    print(f"rows: {total:,} seizures, {keys:,} link keys")
    if args.seed_only:
        engine.dispose()
        return
    plan = _plan(engine, data)
    used = sorted(set(re.findall(r"Index(?: Only)? Scan(?: Backward)? using (\w+)", plan)))
    ms = " + ".join(re.findall(r"Execution Time: ([\d.]+) ms", plan))
    seq = "Seq Scan" in plan
    print(
        f"lookup statements (4 keys; a seizure of one agency, one shared with all): "
        f"indexes {', '.join(used)}"
        f"{'  SEQ SCAN!' if seq else ''}, exec {ms} ms"
    )
    if args.plans:
        print(plan)
    engine.dispose()

    print(f"machine: {os.cpu_count()} CPUs, load average before timing {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "FIELDSCAN_DATA_DIR": tmp,
            "FIELDSCAN_SECRET_KEY": uuid.uuid4().hex,
            "FIELDSCAN_ARGON2_TIME_COST": "1",
            "FIELDSCAN_ARGON2_MEMORY_KIB": "8",
        }
        proc, base = start_service_process(env)
        try:
            _time_arrivals(base, url, data, args.arrivals, args.seconds)
        finally:
            stop_process(proc, timeout=10)
    print(f"\nload average after timing {os.getloadavg()}")


if __name__ == "__main__":
    main()
