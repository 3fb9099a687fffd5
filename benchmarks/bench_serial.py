"""Scan speed over the OBP serial link: transfer vs processing, and link efficiency.

The emulated module runs on a pty in this process and paces its replies at the
baud rate the driver sets (a real UART's byte time: 10 bits per byte, 8N1).
For each rate it runs a number of scans (dark + sample, as ``fieldscan scan``
does) and reports, per scan:

* transfer: wall time of the raw-spectrum exchanges minus the integration time;
* link efficiency: spectrum payload bytes / (line rate in bytes/s × transfer);
* processing: counts → Spectrum in the driver, and identification against the
  demonstration library (goal: ≤ 50 ms together).

The host's 64-byte request is not paced by the pty (the kernel takes it at
once), so the efficiency on a real UART is lower by that request's share; the
ideal bound for both directions is printed next to it.

Run: ``.venv/bin/python benchmarks/bench_serial.py [--scans N] [--integration-ms MS]``
"""

from __future__ import annotations

import argparse
import statistics
import time

from device.base import AcquisitionSettings
from device.obp import open_spectrometer
from device.obp.codec import MIN_FRAME_SIZE
from firmware_mocks.obp import EmulatedModule, PtyMock, resolve_sample

RATES = (115_200, 921_600)


def bench(rate: int, scans: int, integration_ms: float) -> dict[str, float]:
    from spectra.identify import identify
    from spectra.library import load_demo_library

    library = load_demo_library()
    module = EmulatedModule(resolve_sample("paracetamol"), seed=0)
    settings = AcquisitionSettings(integration_time_ms=integration_ms, dark_subtract=True)
    totals, transfers, effs, procs, idents = [], [], [], [], []
    with PtyMock(module) as mock, open_spectrometer(mock.path, baudrate=rate) as dev:
        info = dev.identify()
        assert mock.line_rate() == rate, "mock is not pacing at the driver's rate"
        for _ in range(scans):
            start = time.perf_counter()
            spectrum = dev.acquire(settings)
            total = time.perf_counter() - start
            t0 = time.perf_counter()
            identify(spectrum, library)
            idents.append(time.perf_counter() - t0)
            link = dev.stats.last_transfer_s - dev.stats.last_integration_s
            totals.append(total)
            transfers.append(link)
            effs.append(dev.stats.last_payload_bytes / (rate / 10 * link))
            procs.append(dev.stats.last_processing_s)
    payload = 2 * info.pixel_count
    return {
        "scan_s": statistics.median(totals),
        "transfer_s": statistics.median(transfers),
        "efficiency": statistics.median(effs),
        "ideal_reply_only": payload / (payload + MIN_FRAME_SIZE),
        "ideal_both_ways": payload / (payload + 2 * MIN_FRAME_SIZE),
        "processing_ms": 1000 * statistics.median(procs),
        "identify_ms": 1000 * statistics.median(idents),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scans", type=int, default=10)
    parser.add_argument("--integration-ms", type=float, default=10.0)
    args = parser.parse_args()
    print(
        f"{args.scans} scans per rate, {args.integration_ms:g} ms integration, "
        "dark + sample spectrum per scan (1024 px × uint16 = 2048 B payload each)"
    )
    header = (
        f"{'baud':>8} {'scan':>8} {'transfer':>9} {'effic.':>7} {'bound':>11} "
        f"{'process':>8} {'identify':>9}"
    )
    print(header)
    for rate in RATES:
        r = bench(rate, args.scans, args.integration_ms)
        print(
            f"{rate:>8} {r['scan_s'] * 1000:>6.0f}ms {r['transfer_s'] * 1000:>7.1f}ms "
            f"{r['efficiency']:>7.3f} {r['ideal_reply_only']:.3f}/{r['ideal_both_ways']:.3f} "
            f"{r['processing_ms']:>6.2f}ms {r['identify_ms']:>7.1f}ms"
        )
    print("transfer and efficiency are per scan over both spectra; goal: efficiency ≥ 0.9,")
    print("processing + identification ≤ 50 ms per scan.")


if __name__ == "__main__":
    main()
