"""Durability: kill -9 the station, and separately the service, at random points.

Afterwards every record the station kept is on the service exactly once, raw spectra are
byte-identical (SHA-256) and the audit chain verifies. Seeded randomness, bounded time;
``FIELDSCAN_DURABILITY_ROUNDS`` raises the number of kills for a soak run.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from sqlalchemy import create_engine, text

from fieldscan.station.capture import Station, spectrum_sha256
from fieldscan.station.localservice import (
    Bootstrap,
    bootstrap,
    free_port,
    login,
    service_in_thread,
    verify_audit,
)
from fieldscan.station.outbox import Outbox, RecordStatus
from fieldscan.station.sync import Backoff, SyncClient
from service.core.config import Settings
from service.testing import fast_settings
from spectra.spectrum import Spectrum

ROUNDS = int(os.environ.get("FIELDSCAN_DURABILITY_ROUNDS", "0")) or None
TABLES = {
    "seizure": "seizure",
    "item": "item",
    "field_test": "field_test",
    "custody_event": "custody_event",
}
IDENT = {
    "verdict": "identified",
    "candidates": [{"name": "cocaine hydrochloride", "score": 0.96}],
    "components": [{"name": "cocaine hydrochloride", "fraction": 1.0}],
    "library_version": "sha256:demo",
}

# A fork server: imports once, then forks one station process per line read on stdin and
# prints its pid. Each station logs events and pushes after some of them, until killed.
STATION = textwrap.dedent(
    """
    import os, random, signal, sys
    import numpy as np
    import service.models  # noqa: F401  # warm: local checks use the service's models
    from fieldscan.station.capture import Station
    from fieldscan.station.outbox import Outbox
    from fieldscan.station.sync import SyncClient
    from spectra.spectrum import Spectrum

    path, url, key = sys.argv[1], sys.argv[2], sys.argv[3]
    ident = {IDENT!r}

    def work(seed):
        rng = random.Random(seed)
        box = Outbox(path)
        station = Station(box, operator_name="Officer 7")
        client = SyncClient(box, url, key, timeout=2.0)
        items = [r.uuid for r in box.records() if r.kind == "item"]
        for n in range(10_000):
            if not items or rng.random() < 0.15:
                item = {{"description": f"s{{seed}}-{{n}}"}}
                items.append(station.log_seizure({{"country": "PE"}}, [item]).items[0])
            elif rng.random() < 0.7:
                values = np.random.default_rng(seed * 100_000 + n)
                axis = np.linspace(200.0, 2000.0, 512) + values.random(512) * 1e-3
                spectrum = Spectrum(axis, values.normal(1e3, 40.0, 512) + values.random(512) * 1e-9)
                station.log_field_test(spectrum, ident, item_uuid=rng.choice(items))
            else:
                seal = f"S{{seed}}-{{n}}"
                station.log_custody_event(rng.choice(items), "sealed", seal_number=seal)
            if rng.random() < 0.5:
                client.push()

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # killed children are reaped by the kernel
    print("ready", flush=True)
    for line in sys.stdin:
        pid = os.fork()
        if pid == 0:
            try:
                work(int(line))
            finally:
                os._exit(0)
        print(pid, flush=True)
    """
).format(IDENT=IDENT)

# A fork server for the service: one uvicorn process per line on stdin (fast restarts).
SERVICE = textwrap.dedent(
    """
    import os, signal, sys
    import uvicorn
    from service.main import create_app

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    print("ready", flush=True)
    for line in sys.stdin:
        pid = os.fork()
        if pid == 0:
            try:
                port = int(sys.argv[1])
                uvicorn.run(create_app(), host="127.0.0.1", port=port, log_level="error")
            finally:
                os._exit(0)
        print(pid, flush=True)
    """
)


class ForkServer:
    """A subprocess that forks children on request; children die by SIGKILL."""

    def __init__(self, script: str, args: list[str], env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", script, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.proc.stdout is not None and self.proc.stdin is not None
        self.stdin, self.stdout = self.proc.stdin, self.proc.stdout
        assert self.stdout.readline().strip() == "ready"
        self.child: int | None = None

    def spawn(self, line: str) -> int:
        self.stdin.write(line + "\n")
        self.stdin.flush()
        self.child = int(self.stdout.readline())
        return self.child

    def kill_child(self) -> None:
        if self.child is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.child, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(self.child, 0)
            except ProcessLookupError:
                break
            time.sleep(0.01)
        self.child = None

    def close(self) -> None:
        self.kill_child()
        self.stdin.close()
        self.proc.wait(timeout=10)
        self.stdout.close()


def _server_rows(settings: Settings) -> dict[str, dict[str, Any]]:
    """Rows of every record table by id (as UUID text), with the field tests' SHA-256."""
    engine = create_engine(settings.sqlalchemy_url)
    found: dict[str, dict[str, Any]] = {}
    try:
        with engine.connect() as conn:
            for kind, table in TABLES.items():
                rows = conn.execute(text(f"SELECT * FROM {table}")).mappings().all()
                for row in rows:
                    key = str(uuid.UUID(str(row["id"])))
                    assert key not in found, f"{kind} {key} stored twice"
                    found[key] = {**dict(row), "_kind": kind}
    finally:
        engine.dispose()
    return found


def _check_exactly_once(box: Outbox, settings: Settings, url: str, world: Bootstrap) -> int:
    records = box.records()
    assert records and all(r.status is RecordStatus.SENT for r in records)
    server = _server_rows(settings)
    # Exactly once: the service holds precisely the station's records, no more, no fewer.
    assert {r.uuid: r.kind for r in records} == {k: v["_kind"] for k, v in server.items()}
    tests = [r for r in records if r.kind == "field_test"]
    for record in tests:
        assert server[record.uuid]["spectrum_sha256"] == spectrum_sha256(record.payload["spectrum"])
    report = verify_audit(url, login(url, world.supervisor, world.password))
    assert report["ok"], report["problems"][:3]
    return len(tests)


def _settings(tmp: Path) -> Settings:
    # A fixed JWT secret shared by every restart of the service.
    return fast_settings(
        data_dir=tmp,
        database_url=f"sqlite:///{tmp / 'svc.sqlite3'}",
        secret_key="durability-test-secret-0123456789abcdef",
    )


def test_kill_9_the_station_during_capture_and_sync(tmp_path: Path) -> None:
    rng = random.Random(20261123)
    settings = _settings(tmp_path)
    outbox_path = tmp_path / "station" / "outbox.db"
    rounds = ROUNDS or 15
    with service_in_thread(settings) as url:
        world = bootstrap(settings)
        forks = ForkServer(STATION, [str(outbox_path), url, world.device_key])
        try:
            interrupted = 0  # rounds whose kill left records unsent
            for round_ in range(rounds):
                forks.spawn(str(round_))
                time.sleep(rng.uniform(0.05, 0.5))  # mid-append, mid-request, between
                forks.kill_child()
                with Outbox(outbox_path) as box:
                    interrupted += box.counts()[RecordStatus.PENDING] > 0
        finally:
            forks.close()
        with Outbox(outbox_path) as box:
            integrity = box._db.execute("PRAGMA integrity_check").fetchone()[0]
            assert integrity == "ok"
            assert interrupted > 0 and box.counts()[RecordStatus.SENT] > 0
            with SyncClient(box, url, world.device_key) as client:
                report = client.run(once=True)
            assert report.refused == 0 and report.last_error is None
            tests = _check_exactly_once(box, settings, url, world)
    assert tests >= rounds  # the station did real work between kills


class ServiceProcess:
    """The service as uvicorn processes on one SQLite file and port, killed with SIGKILL."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "FIELDSCAN_DATA_DIR": str(settings.data_dir),
            "FIELDSCAN_DATABASE_URL": settings.sqlalchemy_url,
            "FIELDSCAN_SECRET_KEY": settings.secret_key or "",
            "FIELDSCAN_ARGON2_TIME_COST": "1",
            "FIELDSCAN_ARGON2_MEMORY_KIB": "8",
        }
        env.pop("DATABASE_URL", None)
        self.forks = ForkServer(SERVICE, [str(self.port)], env)

    def start(self) -> None:
        self.forks.spawn("go")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=0.5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.02)
        raise AssertionError("the service did not start in 30 s")

    def kill(self) -> None:
        self.forks.kill_child()

    def close(self) -> None:
        self.forks.close()


@pytest.fixture
def service_process(tmp_path: Path) -> Iterator[ServiceProcess]:
    process = ServiceProcess(_settings(tmp_path))
    yield process
    process.close()


def _spectrum(n: int) -> Spectrum:
    values = np.random.default_rng(n)
    axis = np.linspace(200.0, 2000.0, 512) + values.random(512) * 1e-3
    return Spectrum(axis, values.normal(1000.0, 40.0, 512) + values.random(512) * 1e-9)


def test_kill_9_the_service_during_sync(service_process: ServiceProcess, tmp_path: Path) -> None:
    rng = random.Random(7)
    service = service_process
    service.start()  # applies the migrations
    world = bootstrap(service.settings)
    path = tmp_path / "station.db"
    capture_box = Outbox(path)
    station = Station(capture_box, operator_name="Officer 7")
    items: list[str] = []
    counter = iter(range(10_000))

    def capture(n_events: int) -> None:
        for _ in range(n_events):
            n = next(counter)
            if not items or n % 15 == 0:
                items.append(
                    station.log_seizure({"country": "PE"}, [{"description": f"{n}"}]).items[0]
                )
            elif n % 4:
                station.log_field_test(_spectrum(n), IDENT, item_uuid=rng.choice(items))
            else:
                station.log_custody_event(rng.choice(items), "sealed", seal_number=f"S{n}")

    capture(30)
    sync_box = Outbox(path)  # the sync loop has its own connection, as a separate process would
    stop = threading.Event()
    client = SyncClient(
        sync_box,
        service.url,
        world.device_key,
        timeout=2.0,
        backoff=Backoff(0.05, 0.4),
        rng=random.Random(3),
    )
    errors: list[BaseException] = []
    reports: list[Any] = []

    def loop() -> None:
        try:
            reports.append(client.run(stop=stop, poll_s=0.05))
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        for _ in range(ROUNDS or 6):
            time.sleep(rng.uniform(0.05, 0.6))  # mid-sync: requests in flight
            service.kill()
            capture(8)  # the officer keeps working while the service is down
            service.start()
            capture(4)
        deadline = time.monotonic() + 30
        while capture_box.counts()[RecordStatus.PENDING] and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        thread.join(timeout=15)
        client.close()
        sync_box.close()
    assert not errors, errors
    assert reports[0].transient_failures > 0  # the kills did hit the sync loop
    assert capture_box.counts()[RecordStatus.REFUSED] == 0
    assert capture_box.counts()[RecordStatus.PENDING] == 0
    tests = _check_exactly_once(capture_box, service.settings, service.url, world)
    capture_box.close()
    assert tests > 20
