"""The real driver against the emulated module through a real pty, faults included."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from device.base import AcquisitionSettings, Spectrometer
from device.errors import (
    DeviceBusyError,
    DeviceDisconnectedError,
    DeviceError,
    DeviceNotFoundError,
    DeviceTimeoutError,
)
from device.obp import ObpSpectrometer, open_spectrometer
from firmware_mocks.obp import EmulatedModule, PtyMock
from firmware_mocks.obp.samples import builtin_sample
from spectra.spectrum import SpectrumKind

FAST = AcquisitionSettings(integration_time_ms=10, averages=1)
HANG_GUARD_S = 30.0  # a test that needs this long has hung; the driver's bounds are far lower


@pytest.fixture
def mock(tmp_path: Path) -> Iterator[PtyMock]:
    module = EmulatedModule(builtin_sample("polystyrene"), seed=0)
    with PtyMock(module, link=tmp_path / "ttyOBP", pace=False) as m:
        yield m


def _open(mock: PtyMock, **opts: Any) -> ObpSpectrometer:
    opts.setdefault("timeout", 0.3)
    opts.setdefault("reconnect_timeout", 2.0)
    return open_spectrometer(mock.path, **opts)


def _bounded(call: Callable[[], Any]) -> Any:
    """Run ``call`` in a thread; fail (instead of hanging the suite) if it never returns."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = call()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(HANG_GUARD_S)
    assert not thread.is_alive(), "driver call hung"
    if "error" in box:
        raise box["error"]
    return box["value"]


def test_driver_is_a_spectrometer_and_identifies(mock: PtyMock) -> None:
    with _open(mock) as dev:
        assert isinstance(dev, Spectrometer)
        info = dev.identify()
        assert dev.identify() is info  # cached
    spec = mock.module.spec
    assert (info.model, info.serial, info.pixel_count) == (spec.model, spec.serial, 1024)
    np.testing.assert_allclose(info.wavelength_coeffs, spec.wavelength_coeffs, rtol=1e-6)
    assert info.firmware == f"0x{spec.firmware:04X}"
    assert info.transport == f"serial:{mock.path}"
    np.testing.assert_allclose(info.extra["nonlinearity_coeffs"], spec.nonlinearity_coeffs)


def test_acquire_gives_a_raman_spectrum_with_the_samples_bands(mock: PtyMock) -> None:
    with _open(mock) as dev:
        spectrum = dev.acquire(AcquisitionSettings(integration_time_ms=50))
    assert spectrum.kind is SpectrumKind.RAMAN
    assert np.all(np.diff(spectrum.axis) > 0) and spectrum.axis[0] > 0
    assert len(spectrum) == 1024  # every pixel of this module lies above the laser line
    sample = mock.module.sample
    strongest = sample.axis[np.argmax(sample.intensities)]
    assert abs(spectrum.axis[np.argmax(spectrum.intensities)] - strongest) < 8
    acq = spectrum.acquisition
    assert acq.device_serial == mock.module.spec.serial and acq.laser_nm == 785.0
    assert acq.integration_time_ms == 50 and acq.averages == 1 and acq.timestamp is not None
    assert mock.module.state.laser_on is False  # switched off again afterwards


def test_dark_subtraction_removes_the_offset(mock: PtyMock) -> None:
    with _open(mock) as dev:
        with_dark = dev.acquire(AcquisitionSettings(integration_time_ms=20))
        raw = dev.acquire(AcquisitionSettings(integration_time_ms=20, dark_subtract=False))
    offset = float(np.median(raw.intensities - with_dark.intensities))
    expected = mock.module.spec.offset_counts + mock.module.spec.dark_rate * 20
    assert offset == pytest.approx(expected, rel=0.05)


def test_signal_scales_with_integration_time(mock: PtyMock) -> None:
    with _open(mock) as dev:
        short = dev.acquire(AcquisitionSettings(integration_time_ms=20))
        long = dev.acquire(AcquisitionSettings(integration_time_ms=60))
    peak = int(np.argmax(long.intensities))
    assert long.intensities[peak] / short.intensities[peak] == pytest.approx(3.0, rel=0.1)


def test_nonlinearity_correction_recovers_the_true_counts(mock: PtyMock) -> None:
    settings = AcquisitionSettings(integration_time_ms=150, averages=8, dark_subtract=False)
    with _open(mock) as dev:
        corrected = dev.acquire(settings)
    with _open(mock, correct_nonlinearity=False) as dev:
        uncorrected = dev.acquire(settings)
    mock.module.state.integration_us = 150_000
    truth = mock.module.expected_counts(laser_on=True)
    bright = truth > 8000
    assert bright.any()
    err_corrected = np.abs(corrected.intensities[bright] - truth[bright]).mean()
    err_raw = np.abs(uncorrected.intensities[bright] - truth[bright]).mean()
    assert err_corrected < err_raw / 4


def test_averaging_happens_on_the_module_and_lowers_noise(mock: PtyMock) -> None:
    def noise(averages: int) -> float:
        s = AcquisitionSettings(integration_time_ms=10, averages=averages, dark_subtract=False)
        with _open(mock) as dev:
            a, b = dev.acquire(s), dev.acquire(s)
        return float(np.std(a.intensities - b.intensities))

    one, sixteen = noise(1), noise(16)
    assert mock.module.state.scans_to_average == 16
    assert sixteen < one / 2.5


def test_laser_power_is_set_and_scales_the_signal(mock: PtyMock) -> None:
    settings = AcquisitionSettings(integration_time_ms=40)
    with _open(mock) as dev:
        full = dev.acquire(settings)
    with _open(mock, laser_power=0.5) as dev:
        half = dev.acquire(settings)
    assert mock.module.state.laser_power == 0.5
    peak = int(np.argmax(full.intensities))
    assert half.intensities[peak] / full.intensities[peak] == pytest.approx(0.5, rel=0.1)


@pytest.mark.parametrize(
    ("fault", "counter"),
    [
        ("corrupt", "corrupted"),
        ("badfooter", "corrupted"),
        ("drop", "timeouts"),
        ("garbage", None),
        ("chunk1", None),
        ("slow:0.1", None),
        ("notready:2", "not_ready"),
        ("dead:2", "timeouts"),
    ],
)
def test_each_fault_is_survived_by_retrying(mock: PtyMock, fault: str, counter: str | None) -> None:
    with _open(mock) as dev:
        dev.identify()
        mock.faults.set(fault)
        spectrum = _bounded(lambda: dev.acquire(FAST))
    assert len(spectrum) == 1024
    if counter is not None:
        assert getattr(dev.stats, counter) >= 1
    assert mock.faults.pending(fault.split(":")[0]) == 0


def test_a_dead_device_gives_a_timeout_error_not_a_hang(mock: PtyMock) -> None:
    with _open(mock, retries=2) as dev:
        dev.identify()
        mock.faults.set("dead")
        with pytest.raises(DeviceTimeoutError, match="after 3 attempts") as info:
            _bounded(lambda: dev.acquire(FAST))
    assert info.value.port == mock.path


def test_a_device_that_vanishes_and_reappears_is_reconnected(mock: PtyMock) -> None:
    with _open(mock) as dev:
        dev.identify()
        mock.faults.set("vanish:0.3")
        spectrum = _bounded(lambda: dev.acquire(FAST))
    assert dev.stats.reconnects >= 1
    assert mock.appearances == 2  # a new pty behind the same link path
    assert len(spectrum) == 1024


def test_a_device_that_vanishes_for_good_gives_a_disconnect_error(mock: PtyMock) -> None:
    with _open(mock, reconnect_timeout=0.5) as dev:
        dev.identify()
        mock.faults.set("vanish")
        with pytest.raises(DeviceDisconnectedError, match="did not come back"):
            _bounded(lambda: dev.acquire(FAST))


def test_a_missing_port_is_device_not_found(tmp_path: Path) -> None:
    with pytest.raises(DeviceNotFoundError) as info:
        open_spectrometer(str(tmp_path / "no-such-tty"))
    assert info.value.port == str(tmp_path / "no-such-tty")


def test_a_port_held_by_another_driver_is_busy(mock: PtyMock) -> None:
    with _open(mock), pytest.raises(DeviceBusyError):
        _open(mock)


def test_a_file_that_is_not_a_tty_is_a_clear_device_error(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.write_bytes(b"")
    with pytest.raises(DeviceError, match="cannot open serial port"):
        open_spectrometer(str(plain))


def test_bad_driver_options_are_refused_up_front(mock: PtyMock) -> None:
    with pytest.raises(ValueError, match="laser_nm"):
        _open(mock, laser_nm=-1)
    with pytest.raises(ValueError, match="retries"):
        _open(mock, retries=-1)
    with pytest.raises(ValueError, match="laser_power"):
        _open(mock, laser_power=1.5)


def test_close_is_idempotent(mock: PtyMock) -> None:
    dev = _open(mock)
    dev.close()
    dev.close()
    assert not dev.transport.is_open
