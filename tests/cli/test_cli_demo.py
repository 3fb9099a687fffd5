"""``fieldscan demo`` as a user runs it: a subprocess, its output, exit code and clean-up."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

FIELDSCAN = str(Path(sys.executable).with_name("fieldscan"))
ENV = {**os.environ, "COLUMNS": "200", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}


def _demo(*args: str, timeout: float = 150) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FIELDSCAN, "demo", *args], capture_output=True, text=True, timeout=timeout, env=ENV
    )


def test_the_demo_scans_logs_syncs_verifies_and_cleans_up() -> None:
    done = _demo()
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "Traceback" not in out + done.stderr
    assert "DEMONSTRATION library" in out
    # The bundled example files: pure, cut and unknown, each with its verdict.
    examples = out[out.index("Bundled example files") : out.index("emulated OBP module")]
    verdicts = {
        name: next(line for line in examples.splitlines() if name in line)
        for name in ("cocaine-hcl-field", "cocaine-hcl-cut-levamisole", "unknown-ibuprofen")
    }
    assert "identified" in verdicts["cocaine-hcl-field"]
    assert "mixture" in verdicts["cocaine-hcl-cut-levamisole"]
    assert (
        "no_match" in verdicts["unknown-ibuprofen"]
        or "inconclusive" in verdicts["unknown-ibuprofen"]
    )
    # Sample A: pure cocaine; B: cut with levamisole; C: absent from the library.
    assert re.search(r"presumptive positive: cocaine hydrochloride *│", out)
    assert "presumptive positive: cocaine hydrochloride with levamisole hydrochloride" in out
    row_c = next(line for line in out.splitlines() if "ibuprofen (not in the library)" in line)
    assert "no_match" in row_c or "inconclusive" in row_c
    assert "seal and send for laboratory confirmation" in out
    synced = re.search(r"synced (\d+) record\(s\)", out)
    assert synced and int(synced.group(1)) == 13  # 1 seizure, 3 items, 3 tests, 6 custody
    assert "byte-identical (SHA-256): 3/3" in out
    assert re.search(r"audit chain verified: \d+ events", out)
    url = re.search(r"service URL: (http://127\.0\.0\.1:\d+)/api/v1/docs", out)
    assert url
    outbox = re.search(r"field station outbox (\S+)", out)
    assert outbox and not Path(outbox.group(1)).parent.parent.exists()  # temp dir removed
    try:
        httpx.get(url.group(1) + "/api/v1/health", timeout=1)
        raise AssertionError("the service is still running after the demo")
    except httpx.ConnectError:
        pass


def test_a_bad_language_is_one_clear_line() -> None:
    done = _demo("--lang", "de", timeout=60)
    assert done.returncode == 2
    assert "language 'de' is not available" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_ctrl_c_mid_demo_stops_everything_and_removes_the_temp_dir() -> None:
    proc = subprocess.Popen(
        [FIELDSCAN, "demo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("field station outbox"):
                break
        assert lines and lines[-1].startswith("field station outbox"), "".join(lines)
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = "".join(lines) + rest
    assert proc.returncode == 130, text + err
    assert "Traceback" not in err
    url = re.search(r"seizure-log service on (http://127\.0\.0\.1:\d+)", text)
    outbox = re.search(r"field station outbox (\S+)", text)
    assert url and outbox
    assert not Path(outbox.group(1)).parent.parent.exists()
    try:
        httpx.get(url.group(1) + "/api/v1/health", timeout=1)
        raise AssertionError("the service survived Ctrl-C")
    except httpx.ConnectError:
        pass
