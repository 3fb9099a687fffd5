"""``fieldscan scan --ble`` and ``fieldscan devices --ble`` end to end, on the in-process mock.

Runs the real console entry point in a subprocess with ``FIELDSCAN_BLE_BACKEND=mock``;
the scan/devices modules are imported explicitly so the test does not depend on the
order in which the CLI package registers them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("fieldscan.cli.scan")
pytest.importorskip("fieldscan.cli.devices")

ENTRY = (
    "import sys; import fieldscan.cli.scan, fieldscan.cli.devices; "
    "from fieldscan.cli import main; sys.argv[0] = 'fieldscan'; main()"
)


def _fieldscan(*args: str, backend: str = "mock") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FIELDSCAN_BLE_BACKEND": backend}
    return subprocess.run(
        [sys.executable, "-c", ENTRY, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=90,
        check=False,
    )


def test_scan_ble_json_on_the_mock() -> None:
    address = "C0:98:E5:00:00:07"
    result = _fieldscan("scan", "--ble", address, "--integration-ms", "20", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    device = data["device"]
    assert device["transport"] == f"ble:{address}"
    assert (device["model"], device["serial"], device["pixel_count"]) == (
        "WP-785XS",
        "WP-01234",
        1024,
    )
    assert device["laser_nm"] == 785.0 and device["extra"]["battery_percent"] == 87.5
    assert len(data["axis"]) == 1024
    assert data["acquisition"]["integration_time_ms"] == 20.0


def test_devices_ble_lists_the_mock() -> None:
    result = _fieldscan("devices", "--ble", "--timeout", "0.3", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [(r["address"], r["name"]) for r in rows] == [("C0:98:E5:00:12:34", "WP-01234")]
    assert isinstance(rows[0]["rssi"], int)


def test_scan_ble_with_a_bad_backend_setting_fails_cleanly() -> None:
    result = _fieldscan("scan", "--ble", "C0:98:E5:00:00:07", "--json", backend="nonsense")
    assert result.returncode != 0
    assert "FIELDSCAN_BLE_BACKEND" in result.stderr and "nonsense" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
