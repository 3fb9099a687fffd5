"""The checkpoint workflow's speed: per-scan latency, and sync throughput to PostgreSQL.

1. Per scan: acquire one spectrum from the emulated OBP module on a pty at 115,200 baud
   (the mock paces its bytes at the line rate), identify it against the demonstration
   library, and log it in the station outbox (one SQLite transaction, synchronous=FULL).
   Compared with the line-rate time of the spectrum frame alone: (64 + 2 × pixels) bytes
   × 10 bits / baud. Integration time is 1 ms and there is no dark frame, so the link
   dominates as it does on a real module; a dark-subtracted scan (two frames) is shown too.
2. Sync: the service (uvicorn subprocess) on PostgreSQL in a scratch schema created and
   dropped here; the outbox holds one seizure, 10 items and N field tests with 1024-point
   raw spectra; records/s and field tests/s for 1 and 4 connections.

Only measured figures are printed.

Run: ``.venv/bin/python benchmarks/bench_workflow.py [--scans N] [--tests N]
[--database-url postgresql+psycopg://postgres@127.0.0.1:5432/test]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from device.base import AcquisitionSettings
from device.obp import open_spectrometer
from device.obp.codec import MIN_FRAME_SIZE
from fieldscan.station.capture import Station
from fieldscan.station.localservice import bootstrap, start_service_process, stop_process
from fieldscan.station.outbox import Outbox, RecordStatus
from fieldscan.station.sync import SyncClient
from firmware_mocks.obp import EmulatedModule, PtyMock, resolve_sample
from service.core.config import Settings
from service.testing import TEST_DATABASE_ENV, isolated_database
from spectra.identify import identify
from spectra.library import load_demo_library
from spectra.spectrum import Spectrum

BAUD = 115_200
DEFAULT_DB = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def bench_scan(scans: int, tmp: Path, dark: bool) -> dict[str, float]:
    library = load_demo_library()
    module = EmulatedModule(resolve_sample("cocaine hydrochloride"), seed=0)
    settings = AcquisitionSettings(integration_time_ms=1.0, dark_subtract=dark)
    acquire, ident, log, total = [], [], [], []
    with (
        PtyMock(module) as mock,
        open_spectrometer(mock.path, baudrate=BAUD) as device,
        Outbox(tmp / f"scan-{dark}.db") as box,
    ):
        info = device.identify()
        station = Station(box)
        seizure = station.log_seizure({"country": "PE"}, [{"description": "bench"}])
        identify(device.acquire(settings), library)  # warm caches
        for _ in range(scans):
            t0 = time.perf_counter()
            spectrum = device.acquire(settings)
            t1 = time.perf_counter()
            result = identify(spectrum, library).to_dict()
            t2 = time.perf_counter()
            station.log_field_test(spectrum, result, item_uuid=seizure.items[0])
            t3 = time.perf_counter()
            acquire.append(t1 - t0)
            ident.append(t2 - t1)
            log.append(t3 - t2)
            total.append(t3 - t0)
    frame_bytes = MIN_FRAME_SIZE + 2 * info.pixel_count
    return {
        "line_s": frame_bytes * 10 / BAUD,
        "frames": 2 if dark else 1,
        "acquire_s": statistics.median(acquire),
        "identify_s": statistics.median(ident),
        "log_s": statistics.median(log),
        "total_s": statistics.median(total),
        "total_p95_s": float(np.percentile(total, 95)),
    }


def _fill(box: Outbox, tests: int, seed: int) -> int:
    station = Station(box, operator_name="bench")
    seizure = station.log_seizure({"country": "PE"}, [{"description": f"i{n}"} for n in range(10)])
    # Each run its own noise: the same spectra again would make the second run's seizure a
    # spectral twin of the first's, and the link work for that pair would be measured too.
    rng = np.random.default_rng(seed)
    axis = np.linspace(150.0, 2100.0, 1024)
    ident = {
        "verdict": "identified",
        "candidates": [{"name": "cocaine hydrochloride", "score": 0.96}],
        "components": [{"name": "cocaine hydrochloride", "fraction": 1.0}],
        "library_version": "sha256:bench",
    }
    for n in range(tests):
        spectrum = Spectrum(axis, rng.normal(1500.0, 60.0, 1024))
        station.log_field_test(spectrum, ident, item_uuid=seizure.items[n % 10])
    return 11 + tests


def bench_sync(database_url: str, tests: int, tmp: Path) -> list[tuple[int, int, float]]:
    os.environ[TEST_DATABASE_ENV] = database_url
    out = []
    with isolated_database("postgresql", tmp) as url:
        settings = Settings(data_dir=tmp / "svc", database_url=url, secret_key="b" * 40)
        env = {
            **os.environ,
            "FIELDSCAN_DATA_DIR": str(tmp / "svc"),
            "FIELDSCAN_DATABASE_URL": url,
            "FIELDSCAN_SECRET_KEY": "b" * 40,
        }
        env.pop("DATABASE_URL", None)
        server, base = start_service_process(env)
        try:
            world = bootstrap(settings)
            for workers in (1, 4):
                with Outbox(tmp / f"sync-{workers}.db") as box:
                    records = _fill(box, tests, seed=workers)
                    with SyncClient(box, base, world.device_key, workers=workers) as client:
                        t0 = time.perf_counter()
                        report = client.run(once=True)
                        elapsed = time.perf_counter() - t0
                    assert report.last_error is None and report.refused == 0, report
                    assert box.counts()[RecordStatus.SENT] == records
                out.append((workers, records, elapsed))
        finally:
            stop_process(server, timeout=20)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scans", type=int, default=20)
    parser.add_argument("--tests", type=int, default=500, help="field tests to sync")
    parser.add_argument("--database-url", default=os.environ.get(TEST_DATABASE_ENV) or DEFAULT_DB)
    parser.add_argument("--skip-sync", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-workflow-") as name:
        tmp = Path(name)
        print(f"per scan at {BAUD} baud, 1 ms integration, median of {args.scans}:")
        for dark in (False, True):
            r = bench_scan(args.scans, tmp, dark)
            line = r["line_s"] * r["frames"]
            print(
                f"  {'dark + sample' if dark else 'sample only  '}: "
                f"line-rate transfer {line * 1000:6.1f} ms ({int(r['frames'])} frame(s)); "
                f"acquire {r['acquire_s'] * 1000:6.1f} ms, "
                f"identify {r['identify_s'] * 1000:5.1f} ms, "
                f"log {r['log_s'] * 1000:5.1f} ms; total {r['total_s'] * 1000:6.1f} ms "
                f"(p95 {r['total_p95_s'] * 1000:6.1f}) = {r['total_s'] / line:.2f} × line rate, "
                f"{(r['total_s'] - line) * 1000:+.1f} ms over it; "
                # the goal is one budget: 1.2 × the line-rate time plus 50 ms
                f"budget 1.2 × line + 50 ms = {(1.2 * line + 0.050) * 1000:6.1f} ms"
            )
        if args.skip_sync:
            return
        print(f"sync to the service on PostgreSQL ({args.tests} field tests, 1024 points each):")
        for workers, records, elapsed in bench_sync(args.database_url, args.tests, tmp):
            print(
                f"  {workers} connection(s): {records} records in {elapsed:.2f} s = "
                f"{records / elapsed:7.1f} records/s ({args.tests / elapsed:7.1f} field tests/s)"
            )


if __name__ == "__main__":
    main()
