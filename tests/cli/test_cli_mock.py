"""``fieldscan mock serial --pty`` as a real subprocess: path on the first line, clean exit."""

from __future__ import annotations

import importlib.util
import os
import selectors
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

# Runs the console entry point with this area's command modules registered (the root
# package may not import them yet).
RUNNER = (
    "import sys, fieldscan.cli.mock, fieldscan.cli.scan, fieldscan.cli.devices;"
    "from fieldscan.cli import main; sys.argv[0] = 'fieldscan'; main()"
)


def fieldscan_cmd(*args: str) -> list[str]:
    return [sys.executable, "-c", RUNNER, *args]


def read_line(proc: subprocess.Popen[str], timeout: float = 30.0) -> str:
    """First stdout line of ``proc``, or fail after ``timeout`` instead of hanging."""
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    if not sel.select(timeout):
        proc.kill()
        pytest.fail("mock printed nothing")
    return proc.stdout.readline().strip()


@contextmanager
def running_mock(*args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    proc = subprocess.Popen(
        fieldscan_cmd("mock", "serial", "--pty", "--seed", "1", *args),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield proc, read_line(proc)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_first_line_is_the_device_path_and_sigterm_exits_cleanly() -> None:
    with running_mock() as (proc, path):
        assert path.startswith("/dev/pts/") and os.path.exists(path)
        import serial  # the path opens like any serial adapter

        with serial.Serial(path, 115200, timeout=0.1):
            pass
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        assert proc.stderr is not None
        assert "Traceback" not in proc.stderr.read()


def test_sigint_also_exits_cleanly() -> None:
    with running_mock() as (proc, _):
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0


def test_control_commands_on_stdin_are_acknowledged() -> None:
    with running_mock("--control-stdin") as (proc, _):
        assert proc.stdin is not None and proc.stderr is not None
        proc.stdin.write("fault notready:2\nnonsense\nquit\n")
        proc.stdin.flush()
        assert proc.wait(timeout=15) == 0
        err = proc.stderr.read()
    assert "ok fault notready:2" in err and "unknown command 'nonsense'" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--pty", "--fault", "explode"], "unknown fault"),
        (["--pty", "--sample", "unobtainium"], "sample 'unobtainium'"),
        (["--pty", "--laser-nm", "-5"], "--laser-nm"),
        ([], "--pty"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import fieldscan.cli.mock  # noqa: F401 - registers the commands
    from fieldscan.cli import app
    from fieldscan.cli._app import fail_cleanly

    assert fail_cleanly(lambda: app(["mock", "serial", *args], prog_name="fieldscan")) == 2
    captured = capsys.readouterr()
    assert message in captured.err and "Traceback" not in captured.err
    assert captured.out == ""


HAVE_BLE_MOCK = importlib.util.find_spec("firmware_mocks.ble") is not None


@pytest.mark.skipif(not HAVE_BLE_MOCK, reason="firmware_mocks.ble not written yet")
def test_mock_ble_runs_the_standalone_session(capsys: pytest.CaptureFixture[str]) -> None:
    import fieldscan.cli.mock  # noqa: F401 - registers the commands
    from fieldscan.cli import app
    from fieldscan.cli._app import fail_cleanly

    args = ["mock", "ble", "--acquisitions", "1", "--integration-ms", "20"]
    assert fail_cleanly(lambda: app(args, prog_name="fieldscan")) == 0
    assert "spectrum 1" in capsys.readouterr().out
    assert fail_cleanly(lambda: app(["mock", "ble", "--mtu", "5"], prog_name="fieldscan")) == 2
    assert "MTU" in capsys.readouterr().err
