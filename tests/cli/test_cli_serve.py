"""``fieldscan serve``: first run makes the data directory, migrates, and answers over HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from fieldscan.station.localservice import free_port, stop_process
from service.testing import backends, isolated_database

# The console script registers modules as the lead wires them; import ours explicitly.
_ENTRY = "import fieldscan.cli.serve, fieldscan.cli.admin; from fieldscan.cli import main; main()"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(FIELDSCAN_ARGON2_TIME_COST="1", FIELDSCAN_ARGON2_MEMORY_KIB="8", **extra)
    return env


@pytest.mark.parametrize("backend", backends())
def test_first_run_creates_and_serves(backend: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "fresh" / "data"
    port = free_port()
    with isolated_database(backend, tmp_path) as url:
        env = _env(DATABASE_URL=url) if backend == "postgresql" else _env()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                _ENTRY,
                "serve",
                "--port",
                str(port),
                "--data-dir",
                str(data_dir),
                "--log-level",
                "warning",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 30
            health = None
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    health = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1).json()
                    break
                except httpx.HTTPError:
                    time.sleep(0.2)
            assert health == {"status": "ok", "database": backend}, (
                proc.stderr.read() if proc.poll() is not None else ""
            )
            assert (data_dir / "checkpoint_ed25519.pem").is_file()
            assert (data_dir / "fieldscan.sqlite3").is_file() == (backend == "sqlite")
            spec = httpx.get(f"http://127.0.0.1:{port}/api/v1/openapi.json", timeout=5).json()
            assert "/api/v1/seizures" in spec["paths"]
        finally:
            stop_process(proc, timeout=10)
    if backend == "sqlite":
        mode = oct((data_dir / "checkpoint_ed25519.pem").stat().st_mode & 0o777)
        assert mode == "0o600"


def test_bad_options_and_unreachable_database(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-c", _ENTRY, "serve", "--port", "0"],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "port" in r.stderr.lower()
    for workers in ("0", "65", "two"):
        r = subprocess.run(
            [sys.executable, "-c", _ENTRY, "serve", "--workers", workers],
            env=_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert r.returncode == 2 and "workers" in r.stderr.lower(), (workers, r.stderr)
    env = _env(DATABASE_URL="postgresql+psycopg://u:hunter2@127.0.0.1:1/x?connect_timeout=2")
    r = subprocess.run(
        [sys.executable, "-c", _ENTRY, "serve", "--data-dir", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 1
    assert "database" in r.stderr and "hunter2" not in r.stderr and "Traceback" not in r.stderr
    env = _env(DATABASE_URL="mysql://x@localhost/db")
    r = subprocess.run(
        [sys.executable, "-c", _ENTRY, "serve", "--data-dir", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 1 and "unsupported database" in r.stderr
