"""BLE transfer benchmark: a 1,024-pixel spectrum over the virtual link at MTU 23 and 247.

Runs the real driver (bleak API, bumble backend) against the firmware mock on an
in-process bumble LocalLink, times whole acquisitions at 1 ms integration (the
mock's simulated exposure is subtracted), counts the SPECTRA notifications that
actually crossed the link and compares them with the theoretical packet count
``ceil(pixels / ((MTU − 3 − 2) / 2))``.

    .venv/bin/python benchmarks/bench_ble.py [--repeats N]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from device.base import AcquisitionSettings
from device.ble import protocol as p
from device.ble.bumble_backend import BumbleBleakClient
from device.ble.driver import WasatchBLE
from firmware_mocks.ble import BleFaults, MockRamanSpectrometer

PIXELS = 1024
INTEGRATION_MS = 1.0


async def measure(mtu: int, repeats: int) -> dict[str, float]:
    mock = MockRamanSpectrometer(faults=BleFaults(max_mtu=mtu))
    await mock.start()
    try:
        async with WasatchBLE(mock.address, backend=BumbleBleakClient, timeout=5.0) as driver:
            settings = AcquisitionSettings(integration_time_ms=INTEGRATION_MS, dark_subtract=False)
            await driver.acquire_counts(settings, laser=True)  # warm-up: settings written once
            times = []
            sent_before = mock.packets_sent
            for _ in range(repeats):
                start = time.perf_counter()
                await driver.acquire_counts(settings, laser=True)
                times.append(time.perf_counter() - start - INTEGRATION_MS / 1000.0)
            packets = (mock.packets_sent - sent_before) / repeats
            negotiated = driver.mtu
    finally:
        await mock.stop()
    median = statistics.median(times)
    return {
        "mtu": negotiated,
        "theoretical_packets": p.packet_count(PIXELS, mtu),
        "measured_packets": packets,
        "median_s": median,
        "min_s": min(times),
        "notifications_per_s": packets / median,
        "pixels_per_s": PIXELS / median,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    print(f"{PIXELS}-pixel spectrum over bumble LocalLink, {args.repeats} repeats each")
    print(
        f"{'MTU':>4} {'theory pkts':>11} {'measured':>9} {'median ms':>10} {'min ms':>8} "
        f"{'notif/s':>9} {'pixel/s':>9}"
    )
    for mtu in (23, 247):
        r = asyncio.run(measure(mtu, args.repeats))
        print(
            f"{r['mtu']:>4.0f} {r['theoretical_packets']:>11.0f} {r['measured_packets']:>9.1f} "
            f"{r['median_s'] * 1e3:>10.1f} {r['min_s'] * 1e3:>8.1f} "
            f"{r['notifications_per_s']:>9.0f} {r['pixels_per_s']:>9.0f}"
        )


if __name__ == "__main__":
    main()
