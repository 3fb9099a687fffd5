"""``fieldscan mock ble``: the mock and a demo central on one in-process virtual link.

A bumble LocalLink lives inside one process, so "standalone" means: the mock
advertises, a central scans for it, connects with the real driver, prints what it
reads and takes spectra, then everything shuts down. Useful for demos and for
checking an installation without a radio.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import numpy as np

from device.base import AcquisitionSettings
from device.ble import protocol as p
from device.ble.bumble_backend import BumbleBleakClient, BumbleBleakScanner
from device.ble.driver import WasatchBLE
from firmware_mocks.ble.device import DEFAULT_ADDRESS, BleFaults, MockRamanSpectrometer
from firmware_mocks.ble.sample import default_sample


async def _session(
    address: str,
    acquisitions: int,
    integration_time_ms: float,
    mtu: int,
    sample: str | None,
    out: Callable[[str], None],
) -> int:
    from bleak import BleakScanner

    mock = MockRamanSpectrometer(
        address=address,
        faults=BleFaults(max_mtu=mtu),
        sample=default_sample(sample) if sample else None,
    )
    await mock.start()
    try:
        out(f"mock advertising {p.SERVICE_UUID} as {mock.eeprom.serial} at {mock.address}")
        found = await BleakScanner.discover(
            0.5, return_adv=True, service_uuids=[p.SERVICE_UUID], backend=BumbleBleakScanner
        )
        for addr, (_dev, adv) in found.items():
            out(f"scan: {addr} {adv.local_name} rssi {adv.rssi}")
        async with WasatchBLE(address, backend=BumbleBleakClient, timeout=5.0) as driver:
            info = driver.identify()
            out(
                f"connected: {info.model} {info.serial}, {info.pixel_count} px, "
                f"laser {info.laser_nm} nm, firmware {info.firmware}, MTU {driver.mtu}, "
                f"battery {info.extra.get('battery_percent')} %"
            )
            settings = AcquisitionSettings(integration_time_ms=integration_time_ms)
            for n in range(1, acquisitions + 1):
                spectrum = await driver.acquire(settings)
                peak = int(np.argmax(spectrum.intensities))
                out(
                    f"spectrum {n}: {len(spectrum)} points, "
                    f"{spectrum.axis[0]:.0f}–{spectrum.axis[-1]:.0f} cm-1, "
                    f"strongest band at {spectrum.axis[peak]:.0f} cm-1"
                )
        return 0
    finally:
        await mock.stop()


def run_standalone(
    *,
    address: str = DEFAULT_ADDRESS,
    acquisitions: int = 1,
    integration_time_ms: float = 100.0,
    mtu: int = 247,
    sample: str | None = None,
    out: Callable[[str], None] = print,
    timeout_s: float = 60.0,
) -> int:
    """Run the mock and a demo central in this process; returns an exit status (0 = ok).

    Raises ``ValueError`` on bad arguments and :class:`device.errors.DeviceError` when the
    session fails (or exceeds ``timeout_s``).
    """
    if acquisitions < 0:
        raise ValueError(f"acquisitions must be >= 0, got {acquisitions}")
    if not p.ATT_DEFAULT_MTU <= mtu <= 517:
        raise ValueError(f"MTU must lie in [23, 517], got {mtu}")
    AcquisitionSettings(integration_time_ms=integration_time_ms)  # validates

    async def bounded() -> int:
        async with asyncio.timeout(timeout_s):
            return await _session(address, acquisitions, integration_time_ms, mtu, sample, out)

    try:
        return asyncio.run(bounded())
    except TimeoutError:
        from device.errors import DeviceTimeoutError

        raise DeviceTimeoutError(f"mock session did not finish in {timeout_s} s") from None
