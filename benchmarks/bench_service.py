"""Seizure log service benchmark: HTTP against PostgreSQL with concurrent clients.

Measures (and prints only what it measured):

* field tests logged per second, each with a 2,048-point raw spectrum, posted by
  concurrent station clients with a device key and an idempotency key, and their
  p50/p99 latency;
* filtered seizure search latency (p50/p95/p99) over the seizures seeded here.

The service runs as ``uvicorn`` in a subprocess on 127.0.0.1, in a fresh PostgreSQL
schema that is dropped afterwards. Every loop is bounded by a count and a time limit.

    .venv/bin/python benchmarks/bench_service.py --seizures 1000000 --seed-seconds 600
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from fieldscan.station.localservice import start_service_process
from service.core.db import make_engine, migrate
from service.seed import seed_seizures
from service.testing import fast_settings as _settings
from service.testing import field_test_payload, isolated_database, seed_world, seizure_payload

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def _summary(seconds: list[float]) -> str:
    p50, p95, p99 = (_percentile(seconds, q) * 1e3 for q in (50, 95, 99))
    return f"p50 {p50:.1f} ms, p95 {p95:.1f} ms, p99 {p99:.1f} ms"


def _start_server(url: str, data_dir: Path, secret: str) -> tuple[subprocess.Popen[bytes], str]:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "FIELDSCAN_DATA_DIR": str(data_dir),
        "FIELDSCAN_SECRET_KEY": secret,
        "FIELDSCAN_ARGON2_TIME_COST": "1",
        "FIELDSCAN_ARGON2_MEMORY_KIB": "8",
    }
    proc, base = start_service_process(env)
    return proc, f"{base}/api/v1"


async def _field_tests(
    bases: list[str], key: str, item_id: str, *, clients: int, total: int, seconds: float
) -> dict[str, Any]:
    template = field_test_payload(2048, seed=1)
    latencies: list[float] = []
    errors: dict[int, int] = {}
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(total):
        queue.put_nowait(n)
    stop_at = time.monotonic() + seconds
    headers = {"X-Device-Key": key, "Content-Type": "application/json"}
    urls = [f"{base}/items/{item_id}/field-tests" for base in bases]
    # Encode once: the client must not be the bottleneck on a 2-core machine.
    encoded = json.dumps({**template, "id": "00000000-0000-4000-8000-000000000000"})

    async def worker(client: httpx.AsyncClient, url: str) -> None:
        while time.monotonic() < stop_at:
            try:
                queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            body = encoded.replace("00000000-0000-4000-8000-000000000000", str(uuid.uuid4()), 1)
            t0 = time.perf_counter()
            r = await client.post(url, content=body, headers=headers)
            latencies.append(time.perf_counter() - t0)
            if r.status_code != 201:
                errors[r.status_code] = errors.get(r.status_code, 0) + 1

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        # Warm up connections and caches outside the measurement.
        for _ in range(min(clients, 10)):
            body = encoded.replace("00000000-0000-4000-8000-000000000000", str(uuid.uuid4()), 1)
            await client.post(urls[0], content=body, headers=headers)
        t0 = time.perf_counter()
        # Clients spread over the instances, as a balancer would.
        await asyncio.gather(*(worker(client, urls[n % len(urls)]) for n in range(clients)))
        elapsed = time.perf_counter() - t0
    return {"count": len(latencies), "elapsed": elapsed, "latencies": latencies, "errors": errors}


def _search(base: str, key: str, *, rounds: int, seconds: float) -> dict[str, list[float]]:
    queries: dict[str, dict[str, str]] = {
        "mode+country": {"transport_mode": "sea", "country": "PE"},
        "date range+status": {
            "date_from": "2023-03-01T00:00:00Z",
            "date_to": "2023-03-31T00:00:00Z",
            "status": "awaiting_lab",
        },
        "substance": {"substance": "heroin"},
        "text": {"q": "reefer"},
        "text+mode": {"q": "banana", "transport_mode": "road"},
    }
    out: dict[str, list[float]] = {name: [] for name in queries}
    stop_at = time.monotonic() + seconds
    with httpx.Client(timeout=30, headers={"X-Device-Key": key}) as client:
        for params in queries.values():  # warm-up
            client.get(f"{base}/seizures", params={**params, "limit": "50"}).raise_for_status()
        for _ in range(rounds):
            if time.monotonic() > stop_at:
                break
            for name, params in queries.items():
                t0 = time.perf_counter()
                client.get(f"{base}/seizures", params={**params, "limit": "50"}).raise_for_status()
                out[name].append(time.perf_counter() - t0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--database-url", default=os.environ.get("FIELDSCAN_TEST_DATABASE_URL", DEFAULT_URL)
    )
    parser.add_argument(
        "--seizures", type=int, default=1_000_000, help="seizures to seed (at most)"
    )
    parser.add_argument("--seed-seconds", type=float, default=300, help="time limit for seeding")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--field-tests", type=int, default=3000)
    parser.add_argument("--seconds", type=float, default=60, help="time limit per phase")
    parser.add_argument(
        "--instances", type=int, default=2, help="service processes (one uvicorn each)"
    )
    parser.add_argument("--search-rounds", type=int, default=100)
    args = parser.parse_args()

    with (
        tempfile.TemporaryDirectory() as tmp,
        isolated_database("postgresql", Path(tmp), base_url=args.database_url) as url,
    ):
        settings = _settings(data_dir=Path(tmp), database_url=url)
        engine = make_engine(url)
        migrate(engine)
        world = seed_world(settings)
        key = world.device_keys["A"]
        t0 = time.perf_counter()
        made = seed_seizures(
            engine=engine, agency_id=world.agencies["A"], count=args.seizures, batch=5000,
            deadline_s=args.seed_seconds,
        )  # fmt: skip
        seed_s = time.perf_counter() - t0
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
        engine.dispose()
        rate = made / seed_s
        print(f"seeded {made} seizures (+{made} items, audited) in {seed_s:.1f} s ({rate:.0f}/s)")

        secret = uuid.uuid4().hex  # shared, as instances behind a balancer would share it
        servers = [_start_server(url, Path(tmp), secret) for _ in range(args.instances)]
        bases = [base for _, base in servers]
        base = bases[0]
        try:
            station = {"X-Device-Key": key}
            seizure = httpx.post(f"{base}/seizures", json=seizure_payload(), headers=station).json()
            item = httpx.post(
                f"{base}/seizures/{seizure['id']}/items",
                json={"description": "bench"},
                headers=station,
            ).json()
            result = asyncio.run(
                _field_tests(
                    bases,
                    key,
                    item["id"],
                    clients=args.clients,
                    total=args.field_tests,
                    seconds=args.seconds,
                )
            )
            count, elapsed = result["count"], result["elapsed"]
            print(
                f"field tests (2048-point spectra, {args.clients} clients, "
                f"{args.instances} instances): {count} in {elapsed:.2f} s "
                f"= {count / elapsed:.0f}/s; "
                f"{_summary(result['latencies'])}; errors {result['errors'] or 'none'}"
            )
            search = _search(base, key, rounds=args.search_rounds, seconds=args.seconds)
            every = [x for values in search.values() for x in values]
            print(f"search over {made} seizures, limit 50 (one client): {len(every)} queries")
            for name, values in [*search.items(), ("all", every)]:
                print(f"  {name:18s} {_summary(values)}")
        finally:
            for proc, _ in servers:
                proc.terminate()
            for proc, _ in servers:
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()


if __name__ == "__main__":
    main()
