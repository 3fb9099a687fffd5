"""Seizure log service benchmark: HTTP against PostgreSQL with concurrent clients.

Measures (and prints only what it measured):

* field tests logged per second, each with a 2,048-point raw spectrum, posted by
  concurrent station clients with a device key and an idempotency key, spread over
  ``--items`` items of as many seizures (stations log tests of their own seizures), and
  their p50/p99 latency; CPU seconds per request of the service processes, PostgreSQL
  and the load generator are printed too (all three share this machine's cores);
* batch sync (``POST /sync/batch``) of the same field tests, records/s;
* filtered seizure search latency (p50/p95/p99) over the seizures seeded here.

The service runs as ``uvicorn`` subprocesses on 127.0.0.1. The load generator is a
minimal HTTP/1.1 client on asyncio streams, so that it costs the shared cores little
(httpx costs about 1.7 ms of CPU per request, as much as half of what the service does).

By default the database is a fresh PostgreSQL schema, dropped afterwards; ``--schema``
keeps a named schema instead, seeded once up to ``--seizures`` (a million take a few
minutes) and reused by later runs. ``--stub-correlation`` runs the servers with correlation
on arrival replaced by a no-op, to measure the write path alone. Every loop is bounded by a
count and a time limit.

    .venv/bin/python benchmarks/bench_service.py --seizures 1000000 --seed-seconds 900 \
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/fieldscan_bench1m \
        --schema bench
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import create_engine, func, select
from sqlalchemy.engine import make_url
from sqlmodel import Session, col

from fieldscan.station.localservice import free_port, start_service_process, stop_process
from service import audit, crud
from service.core.db import make_engine, migrate
from service.linking.models import LinkQueue
from service.models import Agency, DeviceCreate, Seizure
from service.principal import SYSTEM
from service.seed import seed_seizures
from service.testing import fast_settings as _settings
from service.testing import field_test_payload, isolated_database, seed_world, seizure_payload

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PLACEHOLDER = "00000000-0000-4000-8000-000000000000"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def _summary(seconds: list[float]) -> str:
    p50, p95, p99 = (_percentile(seconds, q) * 1e3 for q in (50, 95, 99))
    return f"p50 {p50:.1f} ms, p95 {p95:.1f} ms, p99 {p99:.1f} ms"


#: ``--stub-correlation``: the service with correlation on arrival replaced by a no-op, to
#: measure the write path alone (benchmark only; the real service always correlates).
_STUBBED_SERVER = (
    "import sys, uvicorn, service.crud as c; "
    "c.queue_correlation = lambda session, seizure_id: None; "
    "sys.argv[0] = 'uvicorn'; uvicorn.main()"
)


def _start_server(
    url: str, data_dir: Path, secret: str, *, stub_correlation: bool = False
) -> tuple[subprocess.Popen[bytes], str]:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "FIELDSCAN_DATA_DIR": str(data_dir),
        "FIELDSCAN_SECRET_KEY": secret,
        "FIELDSCAN_ARGON2_TIME_COST": "1",
        "FIELDSCAN_ARGON2_MEMORY_KIB": "8",
    }
    if not stub_correlation:
        proc, base = start_service_process(env)
        return proc, f"{base}/api/v1"
    port = free_port()
    command = [
        sys.executable, "-c", _STUBBED_SERVER, "--factory", "service.main:create_app",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    proc = subprocess.Popen(command, env=env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"{base}/api/v1/health", timeout=1).status_code == 200:
                return proc, f"{base}/api/v1"
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the stubbed service did not start")


# --------------------------------------------------------------------------- CPU accounting


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _postgres_cpu_s() -> float:
    """CPU seconds of every postgres process on this machine (server and backends)."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                if Path(f"/proc/{entry}/comm").read_text().strip() == "postgres":
                    total += _cpu_s(int(entry))
    return total


class CpuMeter:
    """CPU seconds spent by the servers, PostgreSQL and this process over a phase."""

    def __init__(self, server_pids: list[int]) -> None:
        self.pids = server_pids
        self.start = self._now()

    def _now(self) -> tuple[float, float, float]:
        mine = os.times()
        return (
            sum(_cpu_s(pid) for pid in self.pids),
            _postgres_cpu_s(),
            mine.user + mine.system,
        )

    def per_request(self, count: int) -> str:
        end = self._now()
        server, pg, client = (
            (b - a) / max(1, count) * 1e3 for a, b in zip(self.start, end, strict=True)
        )
        return (
            f"CPU per request: service {server:.2f} ms, PostgreSQL {pg:.2f} ms, "
            f"load generator {client:.2f} ms"
        )


# --------------------------------------------------------------------------- load generator


class RawHttp:
    """One keep-alive HTTP/1.1 connection on asyncio streams: requests out, status back."""

    def __init__(self, base: str) -> None:
        parts = urlsplit(base)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = [f"POST {path} HTTP/1.1", f"Host: {self.host}", f"Content-Length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        status = int((await self.reader.readline()).split()[1])
        length = 0
        while line := (await self.reader.readline()).strip():
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()


async def _field_tests(
    bases: list[str],
    key: str,
    item_ids: list[str],
    *,
    clients: int,
    total: int,
    seconds: float,
) -> dict[str, Any]:
    # A spectrum of its own per item: tests of different seizures are not one sample.
    templates = [
        json.dumps({**field_test_payload(2048, seed=k), "id": PLACEHOLDER})
        for k in range(len(item_ids))
    ]
    latencies: list[float] = []
    errors: dict[int, int] = {}
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(total):
        queue.put_nowait(n)
    headers = {"X-Device-Key": key, "Content-Type": "application/json"}
    prefixes = [urlsplit(base).path for base in bases]

    async def worker(n: int) -> None:
        base = bases[n % len(bases)]  # clients spread over the instances, as a balancer would
        connection = RawHttp(base)
        try:
            while time.monotonic() < stop_at:
                try:
                    i = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                k = i % len(item_ids)
                body = templates[k].replace(PLACEHOLDER, str(uuid.uuid4()), 1).encode()
                path = f"{prefixes[n % len(bases)]}/items/{item_ids[k]}/field-tests"
                t0 = time.perf_counter()
                status, _ = await connection.post(path, headers, body)
                latencies.append(time.perf_counter() - t0)
                if status != 201:
                    errors[status] = errors.get(status, 0) + 1
        finally:
            await connection.close()

    # Warm up connections and caches outside the measurement.
    warm = RawHttp(bases[0])
    for i in range(min(clients, 10)):
        k = i % len(item_ids)
        body = templates[k].replace(PLACEHOLDER, str(uuid.uuid4()), 1).encode()
        await warm.post(f"{prefixes[0]}/items/{item_ids[k]}/field-tests", headers, body)
    await warm.close()
    stop_at = time.monotonic() + seconds
    t0 = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(clients)))
    elapsed = time.perf_counter() - t0
    return {"count": len(latencies), "elapsed": elapsed, "latencies": latencies, "errors": errors}


async def _batches(
    base: str, key: str, item_ids: list[str], *, total: int, batch: int, seconds: float
) -> dict[str, Any]:
    """Field tests through ``/sync/batch``, ``batch`` per request, one connection."""
    templates = [
        json.dumps({**field_test_payload(2048, seed=1000 + k), "id": PLACEHOLDER})
        for k in range(len(item_ids))
    ]
    headers = {"X-Device-Key": key, "Content-Type": "application/json"}
    path = f"{urlsplit(base).path}/sync/batch"
    connection = RawHttp(base)
    sent, refused, requests = 0, 0, 0
    stop_at = time.monotonic() + seconds
    t0 = time.perf_counter()
    try:
        while sent + refused < total and time.monotonic() < stop_at:
            ops = []
            for n in range(min(batch, total - sent - refused)):
                record = str(uuid.uuid4())
                k = (sent + refused + n) % len(item_ids)
                parent, test = item_ids[k], templates[k].replace(PLACEHOLDER, record, 1)
                ops.append(
                    f'{{"kind":"field_test","key":"{record}","parent_id":"{parent}","body":{test}}}'
                )
            body = ('{"operations":[' + ",".join(ops) + "]}").encode()
            status, answer = await connection.post(path, headers, body)
            requests += 1
            if status != 200:
                raise RuntimeError(f"batch answered {status}: {answer[:300]!r}")
            for result in json.loads(answer)["results"]:
                if result["outcome"] == "created":
                    sent += 1
                else:
                    refused += 1
    finally:
        await connection.close()
    return {
        "sent": sent,
        "refused": refused,
        "requests": requests,
        "elapsed": time.perf_counter() - t0,
    }


def _settle(url: str, limit_s: float = 600.0) -> tuple[int, float]:
    """Wait until the link workers have emptied the queue: (seizures queued, seconds)."""
    engine = make_engine(url)
    try:
        t0 = time.perf_counter()
        with engine.connect() as conn:
            first = conn.execute(select(func.count()).select_from(LinkQueue)).scalar_one()
            left = first
            while left and time.perf_counter() - t0 < limit_s:
                time.sleep(0.02)
                conn.rollback()
                left = conn.execute(select(func.count()).select_from(LinkQueue)).scalar_one()
        return int(first), time.perf_counter() - t0
    finally:
        engine.dispose()


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


# --------------------------------------------------------------------------- databases


@contextlib.contextmanager
def _database(base_url: str, schema: str | None, tmp: Path) -> Iterator[str]:
    """A fresh schema (dropped after), or the named one (kept, for reuse by later runs)."""
    if schema is None:
        with isolated_database("postgresql", tmp, base_url=base_url) as url:
            yield url
        return
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public")
            conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    finally:
        admin.dispose()
    scoped = make_url(base_url).update_query_dict({"options": f"-csearch_path={schema},public"})
    yield scoped.render_as_string(hide_password=False)


def _station(url: str, tmp: Path, tag: str | None) -> tuple[uuid.UUID, str]:
    """Agency A of the benchmark world (made once per schema) and a fresh device key of it."""
    settings = _settings(data_dir=tmp, database_url=url)
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            agency = None
            if tag is not None:
                agency = session.scalars(
                    select(Agency).where(col(Agency.name) == f"A customs {tag}")
                ).first()
            if agency is None:
                world = seed_world(settings, tag=tag)
                return world.agencies["A"], world.device_keys["A"]
            device = crud.create_device(
                session=session,
                actor=SYSTEM,
                agency_id=agency.id,
                device_in=DeviceCreate(model="bench", serial=f"bench-{uuid.uuid4().hex[:8]}"),
            )
            _, key = crud.create_device_key(session=session, actor=SYSTEM, device_id=device.id)
            session.commit()
            audit.chain_pending(session, wait=True)
            session.commit()
            return agency.id, key
    finally:
        engine.dispose()


def _seed(
    url: str, agency_id: uuid.UUID, count: int, seconds: float, *, vacuum: bool
) -> tuple[int, int, float]:
    """Seed the agency up to ``count`` seizures; (seizures now, made here, seconds)."""
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            have = int(
                session.execute(
                    select(func.count())
                    .select_from(Seizure)
                    .where(col(Seizure.agency_id) == agency_id)
                ).scalar_one()
            )
        t0 = time.perf_counter()
        made = 0
        if have < count:
            made = seed_seizures(
                engine=engine, agency_id=agency_id, count=count - have, batch=5000,
                seed=have + 1, deadline_s=seconds,
            )  # fmt: skip
        if made or vacuum:
            # Statistics for the planner, and the visibility map for index-only scans.
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM (ANALYZE)")
        return have + made, made, time.perf_counter() - t0
    finally:
        engine.dispose()


def _targets(base: str, key: str, n: int) -> list[str]:
    """``n`` items, each of its own seizure, made over the API by the station."""
    station = {"X-Device-Key": key}
    items = []
    with httpx.Client(timeout=30, headers=station) as client:
        for k in range(n):
            # Distinct cases: no shared waybill, person or company links them all together.
            body = seizure_payload(
                air_waybill=f"{k:03d}-{uuid.uuid4().int % 10**8:08d}",
                persons=[{"reference": f"bench-{uuid.uuid4().hex[:8]}", "role": "courier"}],
                companies=[],
            )
            seizure = client.post(f"{base}/seizures", json=body).json()
            item = client.post(
                f"{base}/seizures/{seizure['id']}/items", json={"description": "bench"}
            ).json()
            items.append(item["id"])
    return items


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--database-url", default=os.environ.get("FIELDSCAN_TEST_DATABASE_URL", DEFAULT_URL)
    )
    parser.add_argument("--schema", help="keep and reuse this schema (seeded once)")
    parser.add_argument(
        "--seizures", type=int, default=1_000_000, help="seizures to seed (at most)"
    )
    parser.add_argument("--seed-seconds", type=float, default=300, help="time limit for seeding")
    parser.add_argument(
        "--vacuum", action="store_true", help="VACUUM (ANALYZE) a reused schema before measuring"
    )
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--field-tests", type=int, default=3000)
    parser.add_argument("--items", type=int, default=50, help="items the field tests go to")
    parser.add_argument("--batch", type=int, default=100, help="field tests per sync batch")
    parser.add_argument("--seconds", type=float, default=60, help="time limit per phase")
    parser.add_argument(
        "--instances", type=int, default=2, help="service processes (one uvicorn each)"
    )
    parser.add_argument("--search-rounds", type=int, default=100)
    parser.add_argument(
        "--stub-correlation",
        action="store_true",
        help="replace correlation on arrival by a no-op in the servers (the write path alone)",
    )
    parser.add_argument(
        "--skip", action="append", default=[], choices=["writes", "batch", "search"]
    )
    args = parser.parse_args()

    with (
        tempfile.TemporaryDirectory() as tmp,
        _database(args.database_url, args.schema, Path(tmp)) as url,
    ):
        engine = make_engine(url)
        migrate(engine)
        engine.dispose()
        agency_id, key = _station(url, Path(tmp), "bench" if args.schema else None)
        total, made, seed_s = _seed(
            url, agency_id, args.seizures, args.seed_seconds, vacuum=args.vacuum
        )
        rate = f" ({made / seed_s:.0f}/s)" if made else ""
        print(
            f"{total} seizures (+1 item each, audited); seeded {made} now in {seed_s:.1f} s{rate}"
        )

        secret = uuid.uuid4().hex  # shared, as instances behind a balancer would share it
        stub = args.stub_correlation
        servers = [
            _start_server(url, Path(tmp), secret, stub_correlation=stub)
            for _ in range(args.instances)
        ]
        if stub:
            print("correlation on arrival STUBBED OUT: the write path alone, not the service")
        bases = [base for _, base in servers]
        pids = [proc.pid for proc, _ in servers]
        try:
            items = _targets(bases[0], key, args.items)
            queued, waited = _settle(url)  # a backlog of an earlier run must not weigh here
            if queued:
                print(f"waited {waited:.1f} s for the link workers' backlog of {queued} seizures")
            if "writes" not in args.skip:
                meter = CpuMeter(pids)
                result = asyncio.run(
                    _field_tests(
                        bases, key, items, clients=args.clients, total=args.field_tests,
                        seconds=args.seconds,
                    )
                )  # fmt: skip
                count, elapsed = result["count"], result["elapsed"]
                print(
                    f"field tests (2048-point spectra, {args.clients} clients, "
                    f"{args.instances} instances, {len(items)} items): {count} in {elapsed:.2f} s "
                    f"= {count / elapsed:.0f}/s; "
                    f"{_summary(result['latencies'])}; errors {result['errors'] or 'none'}"
                )
                during = meter.per_request(count)
                queued, waited = _settle(url)
                print(
                    f"  during the run: {during}\n  links committed for every write "
                    f"{waited:.2f} s after the last one ({queued} seizures were still queued); "
                    f"with that link work: {meter.per_request(count)}"
                )
            if "batch" not in args.skip:
                meter = CpuMeter(pids)
                batch = asyncio.run(
                    _batches(
                        bases[0], key, items, total=args.field_tests, batch=args.batch,
                        seconds=args.seconds,
                    )
                )  # fmt: skip
                print(
                    f"batch sync ({args.batch} field tests per request, one connection): "
                    f"{batch['sent']} in {batch['elapsed']:.2f} s = "
                    f"{batch['sent'] / batch['elapsed']:.0f}/s in {batch['requests']} requests; "
                    f"refused {batch['refused']}"
                )
                during = meter.per_request(batch["sent"])
                queued, waited = _settle(url)
                print(
                    f"  during the run: {during}\n  links committed for every write "
                    f"{waited:.2f} s after the last one ({queued} seizures were still queued); "
                    f"with that link work: {meter.per_request(batch['sent'])}"
                )
            if "search" not in args.skip:
                search = _search(bases[0], key, rounds=args.search_rounds, seconds=args.seconds)
                every = [x for values in search.values() for x in values]
                print(f"search over {total} seizures, limit 50 (one client): {len(every)} queries")
                for name, values in [*search.items(), ("all", every)]:
                    print(f"  {name:18s} {_summary(values)}")
        finally:
            for proc, _ in servers:
                stop_process(proc, timeout=15)


if __name__ == "__main__":
    main()
