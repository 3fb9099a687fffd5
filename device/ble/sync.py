"""Synchronous :class:`device.base.Spectrometer` over the async BLE driver.

The driver runs on a private event loop in a daemon worker thread; every call from
the caller's thread waits for its result with a timeout, so nothing blocks forever.

``FIELDSCAN_BLE_BACKEND=mock`` makes :func:`open_spectrometer` and :func:`discover`
start the firmware mock (:mod:`firmware_mocks.ble`) on the worker loop's virtual air
and use the bumble backend, so the CLI can be exercised end to end without a radio.
``FIELDSCAN_BLE_MOCK_SAMPLE`` names the sample the mock shows (demo library name).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from device.base import AcquisitionSettings, ClosingSpectrometer, DeviceInfo
from device.ble import protocol as p
from device.ble.driver import NO_RADIO_HINT, WasatchBLE
from device.errors import DeviceError, DeviceTimeoutError
from spectra.spectrum import Spectrum

T = TypeVar("T")

BACKEND_ENV = "FIELDSCAN_BLE_BACKEND"
SAMPLE_ENV = "FIELDSCAN_BLE_MOCK_SAMPLE"
#: Address the mock takes in ``discover`` (``open_spectrometer`` uses the one asked for).
MOCK_ADDRESS = "C0:98:E5:00:12:34"


@dataclass(frozen=True, slots=True)
class DiscoveredDevice:
    """A spectrometer seen advertising the Wasatch service."""

    address: str
    name: str | None
    rssi: int | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able mapping, as listed by ``fieldscan devices --ble --json``."""
        return {"address": self.address, "name": self.name, "rssi": self.rssi}


class _LoopThread:
    """An event loop running in a daemon thread, fed coroutines with timeouts."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float, what: str) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise DeviceTimeoutError(f"{what}: no result after {timeout:.1f} s") from None

    def stop(self) -> None:
        if self.loop.is_closed():
            return

        async def _cancel_all() -> None:
            me = asyncio.current_task()
            tasks = [t for t in asyncio.all_tasks() if t is not me]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(concurrent.futures.TimeoutError, RuntimeError):
            asyncio.run_coroutine_threadsafe(_cancel_all(), self.loop).result(5.0)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5.0)
        if not self._thread.is_alive():
            self.loop.close()


def _mock_requested() -> bool:
    value = os.environ.get(BACKEND_ENV, "").strip().lower()
    if value in ("", "bleak", "system"):
        return False
    if value == "mock":
        return True
    raise DeviceError(f"{BACKEND_ENV}={value!r} is not understood (use 'mock' or leave unset)")


async def _start_mock(address: str) -> Any:
    # Lazy, and only in mock mode: device/ must not depend on firmware_mocks/ otherwise.
    from firmware_mocks.ble import MockRamanSpectrometer, default_sample

    sample_name = os.environ.get(SAMPLE_ENV)
    sample = default_sample(sample_name) if sample_name else None
    mock = MockRamanSpectrometer(address=address, sample=sample)
    await mock.start()
    return mock


class BleSpectrometer(ClosingSpectrometer):
    """A connected BLE spectrometer with a blocking API (see :func:`open_spectrometer`)."""

    def __init__(
        self,
        address: str,
        *,
        backend: type | None = None,
        timeout: float = 10.0,
        acquire_latency_s: float = 6.0,
    ) -> None:
        self.address = address
        self._timeout = timeout
        self._latency = acquire_latency_s
        self._runner = _LoopThread(f"ble-{address}")
        self._mock: Any = None
        self._closed = False
        try:
            if backend is None and _mock_requested():
                from device.ble.bumble_backend import BumbleBleakClient

                backend = BumbleBleakClient
                self._mock = self._runner.run(_start_mock(address), timeout, "start BLE mock")
            self._driver = WasatchBLE(
                address,
                backend=backend,
                timeout=timeout,
                acquire_latency_s=acquire_latency_s,
            )
            self._runner.run(self._driver.connect(), self._connect_budget(), "connect")
        except BaseException:
            self.close()
            raise

    def _connect_budget(self) -> float:
        # Connection plus identity: a handful of exchanges, each bounded by ``timeout``.
        return self._timeout * 4 + 5.0

    def identify(self) -> DeviceInfo:
        """Identity and calibration read at connection (battery as last reported)."""
        return self._driver.identify()

    def acquire(self, settings: AcquisitionSettings) -> Spectrum:
        """Configure, acquire and return a Raman spectrum (blocks until done or timed out)."""
        per = p.acquisition_timeout_s(
            settings.integration_time_ms, settings.averages, latency_s=self._latency
        )
        budget = (per + self._timeout * 4) * 2 * 3 + 5.0  # dark + light, bounded retries
        return self._runner.run(self._driver.acquire(settings), budget, "acquire")

    def battery_percent(self) -> float:
        """Battery charge read now, in percent."""
        state = self._runner.run(self._driver.read_battery(), self._timeout + 1.0, "battery")
        return state.percent

    def close(self) -> None:
        """Disconnect and stop the worker loop; idempotent."""
        if self._closed:
            return
        self._closed = True
        driver = getattr(self, "_driver", None)
        try:
            if driver is not None:
                self._runner.run(driver.close(), self._timeout + 1.0, "disconnect")
            if self._mock is not None:
                self._runner.run(self._mock.stop(), 5.0, "stop BLE mock")
        except DeviceError:
            pass
        finally:
            self._runner.stop()


def open_spectrometer(
    address: str, *, backend: type | None = None, timeout: float = 10.0
) -> BleSpectrometer:
    """Connect to the BLE spectrometer at ``address`` and read its identity.

    Raises
    ------
    DeviceError
        (or a subclass: not found, timeout, protocol) when it cannot be opened.
    """
    if not address or not address.strip():
        raise ValueError("a Bluetooth address is required")
    return BleSpectrometer(address.strip(), backend=backend, timeout=timeout)


async def _discover(timeout: float, backend: type | None) -> list[DiscoveredDevice]:
    from bleak import BleakScanner
    from bleak.exc import BleakError

    kwargs: dict[str, Any] = {"service_uuids": [p.SERVICE_UUID]}
    if backend is not None:
        kwargs["backend"] = backend
    try:
        found = await BleakScanner.discover(timeout, return_adv=True, **kwargs)
    except OSError as exc:
        raise DeviceError(f"scan: {NO_RADIO_HINT} ({exc})") from None
    except BleakError as exc:
        raise DeviceError(f"Bluetooth LE scan failed: {exc}") from None
    devices = [
        DiscoveredDevice(address, adv.local_name or ble.name, adv.rssi)
        for address, (ble, adv) in found.items()
    ]
    return sorted(devices, key=lambda d: (-(d.rssi or -999), d.address))


def discover(timeout: float = 5.0, *, backend: type | None = None) -> list[DiscoveredDevice]:
    """Scan ``timeout`` seconds for devices advertising the Wasatch Raman service."""
    if not timeout > 0:
        raise ValueError(f"scan timeout must be positive, got {timeout}")
    runner = _LoopThread("ble-scan")
    mock: Any = None
    try:
        if backend is None and _mock_requested():
            from device.ble.bumble_backend import BumbleBleakScanner

            backend = BumbleBleakScanner
            mock = runner.run(_start_mock(MOCK_ADDRESS), 10.0, "start BLE mock")
        return runner.run(_discover(timeout, backend), timeout + 10.0, "scan")
    finally:
        if mock is not None:
            with contextlib.suppress(DeviceError):
                runner.run(mock.stop(), 5.0, "stop BLE mock")
        runner.stop()
