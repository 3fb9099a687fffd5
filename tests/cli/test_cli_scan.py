"""``fieldscan scan`` and ``fieldscan devices`` against the mock, through real subprocesses."""

from __future__ import annotations

import importlib.util
import json
import selectors
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import fieldscan.cli.devices
import fieldscan.cli.mock
import fieldscan.cli.scan  # noqa: F401 - registers the commands on the app
from fieldscan.cli import app
from fieldscan.cli._app import fail_cleanly

from .test_cli_mock import fieldscan_cmd, running_mock

HAVE_IDENTIFY = importlib.util.find_spec("spectra.identify") is not None
HAVE_IO = importlib.util.find_spec("spectra.io") is not None


def run(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(fieldscan_cmd(*args), capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def shared_mock(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """One mock for the module (starting one costs seconds); faults are set through stdin."""
    link = tmp_path_factory.mktemp("pty") / "ttyOBP0"
    args = ("--sample", "paracetamol", "--link", str(link), "--control-stdin")
    with running_mock(*args) as (proc, path):
        assert path == str(link) and link.is_symlink()
        yield proc, path
    assert not link.exists()  # the mock removes its link on exit


def control(proc: subprocess.Popen[str], command: str) -> None:
    """Send a run-time command to the mock and wait for its acknowledgement."""
    assert proc.stdin is not None and proc.stderr is not None
    proc.stdin.write(command + "\n")
    proc.stdin.flush()
    sel = selectors.DefaultSelector()
    sel.register(proc.stderr, selectors.EVENT_READ)
    assert sel.select(30), f"mock did not acknowledge {command!r}"
    assert proc.stderr.readline().strip() == f"mock: ok {command}"


def test_scan_json_against_the_mock_subprocess(
    shared_mock: tuple[subprocess.Popen[str], str], tmp_path: Path
) -> None:
    out = tmp_path / "scan.jdx"
    _, path = shared_mock
    done = run("scan", "--port", path, "--integration-ms", "40", "--json", "--out", str(out))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1  # one JSON object, nothing else on stdout
    obj = json.loads(lines[0])
    assert obj["device"]["serial"] and obj["device"]["model"] and obj["device"]["firmware"]
    assert obj["integration_time_us"] == 40_000
    assert obj["settings"]["integration_time_ms"] == 40
    n = len(obj["counts"])
    assert n == len(obj["axis"]) == len(obj["raman_shift_cm1"]) == len(obj["wavelengths_nm"])
    assert n == 1024 and np.all(np.diff(obj["axis"]) > 0)
    assert np.all(np.array(obj["wavelengths_nm"]) > 785.0)
    if HAVE_IDENTIFY:
        result = obj["result"]
        assert result["verdict"] and result["candidates"]
        assert result["candidates"][0]["name"] == "paracetamol"
    if HAVE_IO:
        from spectra.io import read_spectrum

        saved = read_spectrum(out)
        np.testing.assert_allclose(saved.axis, obj["axis"])
        assert saved.acquisition.device_serial == obj["device"]["serial"]


def test_scan_prints_a_readable_summary(shared_mock: tuple[subprocess.Popen[str], str]) -> None:
    _, path = shared_mock
    args = ("--integration-ms", "20", "--no-dark", "--laser-power", "0.8")
    done = run("scan", "--port", path, *args)
    assert done.returncode == 0, done.stderr
    assert "S06512" in done.stdout and "points" in done.stdout


def test_devices_probes_the_given_port_and_reports_its_identity(
    shared_mock: tuple[subprocess.Popen[str], str],
) -> None:
    _, path = shared_mock
    done = run("devices", "--port", path, "--json", "--timeout", "0.3")
    assert done.returncode == 0, done.stderr
    rows = {row["port"]: row for row in json.loads(done.stdout)}
    assert rows[path]["serial"] == "S06512" and rows[path]["status"] == "OBP spectrometer"


def test_scan_survives_the_mock_vanishing_behind_its_link(
    shared_mock: tuple[subprocess.Popen[str], str],
) -> None:
    proc, path = shared_mock
    control(proc, "fault vanish:0.3")
    done = run("scan", "--port", path, "--integration-ms", "10", "--json")
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["counts"]) == 1024


def test_scan_of_a_dead_mock_is_a_timeout_line_not_a_hang(
    shared_mock: tuple[subprocess.Popen[str], str],
) -> None:
    proc, path = shared_mock
    control(proc, "fault dead")
    try:
        done = run("scan", "--port", path, "--timeout", "0.2", "--json")
    finally:
        control(proc, "clear")
    assert done.returncode == 1 and done.stdout == ""
    assert "is this an OBP device" in done.stderr and "Traceback" not in done.stderr


def _in_process(args: list[str]) -> int:
    return fail_cleanly(lambda: app(args, prog_name="fieldscan"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["scan"], "exactly one of --port"),
        (["scan", "--port", "/dev/x", "--ble", "AA:BB"], "exactly one of --port"),
        (["scan", "--port", "/dev/x", "--out", "a.txt"], "must end in .jdx or .csv"),
        (["scan", "--port", "/dev/x", "--integration-ms", "0"], "integration time"),
        (["scan", "--port", "/dev/x", "--averages", "0"], "averages"),
        (["scan", "--port", "/dev/x", "--baud", "0"], "--baud"),
        (["scan", "--port", "/dev/x", "--laser-power", "2"], "--laser-power"),
        (["scan", "--port", "/dev/x", "--laser-nm", "0"], "--laser-nm"),
        (["scan", "--port", "/dev/x", "--timeout", "-1"], "--timeout"),
        (["devices", "--timeout", "0"], "--timeout"),
    ],
)
def test_user_mistakes_exit_2_with_one_line(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _in_process(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_ble_discovery_and_scan_go_through_device_ble(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIELDSCAN_BLE_BACKEND", "mock")  # device.ble's in-process mock
    listed = run("devices", "--ble", "--timeout", "1", "--json")
    assert listed.returncode == 0, listed.stderr
    (found,) = json.loads(listed.stdout)
    done = run("scan", "--ble", found["address"], "--integration-ms", "20", "--json")
    assert done.returncode == 0, done.stderr
    obj = json.loads(done.stdout)
    assert obj["device"]["transport"] == f"ble:{found['address']}"
    assert len(obj["axis"]) == len(obj["counts"]) == len(obj["wavelengths_nm"])


def test_a_bad_library_path_fails_before_touching_the_port(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["scan", "--port", str(tmp_path / "ttyNOPE"), "--library", str(tmp_path / "none.json")]
    assert _in_process(args) == 1
    err = capsys.readouterr().err
    assert "none.json" in err and "ttyNOPE" not in err and "Traceback" not in err


def test_scan_of_a_missing_port_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _in_process(["scan", "--port", str(tmp_path / "ttyNOPE"), "--json"]) == 1
    captured = capsys.readouterr()
    assert "no such serial port" in captured.err and "Traceback" not in captured.err
    assert len(captured.err.strip().splitlines()) == 1 and captured.out == ""
