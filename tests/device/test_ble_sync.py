"""The blocking BLE API (open_spectrometer, discover) in FIELDSCAN_BLE_BACKEND=mock mode."""

from __future__ import annotations

import threading

import pytest
from bleak.backends.scanner import BaseBleakScanner

from device.base import AcquisitionSettings, Spectrometer
from device.ble import DiscoveredDevice, discover, open_spectrometer
from device.ble.bumble_backend import BumbleBleakClient
from device.ble.sync import BACKEND_ENV, MOCK_ADDRESS
from device.errors import DeviceError


@pytest.fixture
def mock_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BACKEND_ENV, "mock")


def _ble_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("ble-")]


@pytest.mark.usefixtures("mock_env")
def test_open_identify_acquire_close() -> None:
    address = "C0:98:E5:00:00:07"
    with open_spectrometer(address, timeout=3.0) as device:
        assert isinstance(device, Spectrometer)
        info = device.identify()
        assert info.transport == f"ble:{address}" and info.pixel_count == 1024
        spectrum = device.acquire(AcquisitionSettings(integration_time_ms=10, averages=2))
        assert len(spectrum) == 1024 and spectrum.acquisition.averages == 2
        assert device.battery_percent() == pytest.approx(87.5)
    device.close()  # idempotent
    assert not _ble_threads()  # the worker loop is gone


@pytest.mark.usefixtures("mock_env")
def test_discover_finds_the_mock() -> None:
    found = discover(0.3)
    assert found == [DiscoveredDevice(MOCK_ADDRESS, "WP-01234", found[0].rssi)]
    assert found[0].to_dict()["address"] == MOCK_ADDRESS
    assert not _ble_threads()


def test_unknown_backend_setting_is_a_device_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BACKEND_ENV, "carrier-pigeon")
    with pytest.raises(DeviceError, match="carrier-pigeon"):
        open_spectrometer("C0:98:E5:00:00:07", timeout=1.0)
    with pytest.raises(DeviceError, match="carrier-pigeon"):
        discover(0.1)
    assert not _ble_threads()


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        open_spectrometer("  ")
    with pytest.raises(ValueError):
        discover(0)


def test_connect_failure_cleans_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BACKEND_ENV, raising=False)
    # explicit backend, no mock on the air: nothing answers at this address
    with pytest.raises(DeviceError, match="C0:00:00:00:00:99"):
        open_spectrometer("C0:00:00:00:00:99", backend=BumbleBleakClient, timeout=0.5)
    assert not _ble_threads()


class _NoRadioScanner(BaseBleakScanner):
    """A platform scanner on a host without BlueZ: the D-Bus socket is missing."""

    def __init__(self, detection_callback: object, service_uuids: object, *a: object, **k: object):
        super().__init__(None, None)

    async def start(self) -> None:
        raise FileNotFoundError(2, "No such file or directory", "/run/dbus/system_bus_socket")

    async def stop(self) -> None:
        return None


class _NoRadioClient(BumbleBleakClient):
    async def connect(self, pair: bool, **kwargs: object) -> None:
        raise FileNotFoundError(2, "No such file or directory", "/run/dbus/system_bus_socket")


def test_missing_bluetooth_stack_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BACKEND_ENV, raising=False)
    with pytest.raises(DeviceError, match=r"not available on this host.*FIELDSCAN_BLE_BACKEND"):
        discover(0.1, backend=_NoRadioScanner)
    with pytest.raises(DeviceError, match="not available on this host") as info:
        open_spectrometer("C0:98:E5:00:00:07", backend=_NoRadioClient, timeout=1.0)
    assert info.value.port == "C0:98:E5:00:00:07"
    assert not _ble_threads()
