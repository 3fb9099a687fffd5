"""The async BLE driver against the bumble firmware mock, through bleak and a real ATT stack."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import numpy as np
import pytest
from bumble.profiles.device_information_service import DeviceInformationService

from device.base import AcquisitionSettings
from device.ble import WasatchBLE
from device.ble import protocol as p
from device.ble.bumble_backend import BumbleBleakClient, air_for_running_loop
from device.calibration import pixel_wavelengths, raman_shift
from device.errors import (
    DeviceDisconnectedError,
    DeviceNotFoundError,
    DeviceTimeoutError,
    InstrumentRejectedError,
    ProtocolError,
    TransferError,
)
from firmware_mocks.ble import BleFaults, MockRamanSpectrometer
from spectra.spectrum import SpectrumKind

FAST = AcquisitionSettings(integration_time_ms=10, averages=1, dark_subtract=False)
PIXELS = 1024


@asynccontextmanager
async def rig(
    faults: BleFaults | None = None, **driver_kwargs: object
) -> AsyncIterator[tuple[MockRamanSpectrometer, WasatchBLE]]:
    """A mock on the running loop's virtual air and a connected driver; 20 s at most."""
    async with asyncio.timeout(20):
        mock = MockRamanSpectrometer(faults=faults)
        await mock.start()
        kwargs: dict[str, object] = {"timeout": 3.0, "acquire_latency_s": 1.0}
        kwargs.update(driver_kwargs)
        driver = WasatchBLE(mock.address, backend=BumbleBleakClient, **kwargs)  # type: ignore[arg-type]
        try:
            await driver.connect()
            yield mock, driver
        finally:
            await driver.close()
            await mock.stop()


async def test_identify_reads_eeprom_device_info_and_battery() -> None:
    async with rig() as (mock, driver):
        info = driver.identify()
    assert (info.model, info.serial) == (mock.eeprom.model, mock.eeprom.serial)
    assert info.pixel_count == PIXELS and info.laser_nm == 785.0
    assert info.wavelength_coeffs == pytest.approx(mock.eeprom.wavelength_coeffs, rel=1e-6)
    assert info.firmware == "4.10.7"
    assert info.transport == f"ble:{mock.address}"
    assert info.extra["battery_percent"] == 87.5 and info.extra["battery_low"] is False
    assert info.extra["firmware_revisions"]["hardware"] == "FPGA 1.0.4"


async def test_acquire_returns_raman_spectrum_with_metadata() -> None:
    settings = AcquisitionSettings(integration_time_ms=40, averages=2, dark_subtract=True)
    async with rig() as (mock, driver):
        spectrum = await driver.acquire(settings)
        assert mock.integration_time_ms == 40 and mock.scans_to_average == 2
        assert mock.laser_enabled is False  # switched off again after the spectrum
    wavelengths = pixel_wavelengths(mock.eeprom.wavelength_coeffs, PIXELS)
    expected_axis = np.sort(raman_shift(wavelengths, 785.0))
    assert spectrum.kind is SpectrumKind.RAMAN
    np.testing.assert_allclose(spectrum.axis, expected_axis, rtol=1e-6)
    # dark-subtracted: the strongest paracetamol band (857 cm⁻¹) stands out
    assert abs(spectrum.axis[int(np.argmax(spectrum.intensities))] - 857) < 15
    meta = spectrum.acquisition
    assert (meta.device_model, meta.device_serial, meta.firmware) == (
        "WP-785XS",
        "WP-01234",
        "4.10.7",
    )
    assert (meta.laser_nm, meta.integration_time_ms, meta.averages) == (785.0, 40.0, 2)
    assert meta.timestamp is not None


async def test_integration_time_scales_signal() -> None:
    async with rig() as (_mock, driver):
        short = await driver.acquire(AcquisitionSettings(integration_time_ms=20))
        long = await driver.acquire(AcquisitionSettings(integration_time_ms=80))
    ratio = long.intensities.max() / short.intensities.max()
    assert 3.0 < ratio < 5.0


@pytest.mark.parametrize("mtu", [23, 247])
async def test_transfer_chunking_follows_negotiated_mtu(mtu: int) -> None:
    async with rig(BleFaults(max_mtu=mtu)) as (mock, driver):
        assert driver.mtu == mtu
        spectrum = await driver.acquire(FAST)
    assert len(spectrum) == PIXELS
    assert mock.packets_sent == p.packet_count(PIXELS, mtu)
    assert driver.attempts_last_acquisition == 1


async def test_packets_larger_than_mtu_are_truncated_and_detected() -> None:
    # The mock ignores the MTU (100 pixels a packet); the ATT layer cuts each
    # notification to MTU − 3 bytes, so pixels vanish and the driver must notice.
    faults = BleFaults(max_mtu=23, ignore_mtu_pixels=100, faulty_acquisitions=-1)
    async with rig(faults, max_attempts=2) as (mock, driver):
        with pytest.raises(TransferError) as info:
            await driver.acquire(FAST)
        assert mock.acquisitions == 2
    assert info.value.kind == "missing" and info.value.expected == 9 and info.value.got == 100
    assert "after 2 attempts" in str(info.value) and mock.address in str(info.value)


@pytest.mark.parametrize(
    "faults",
    [
        BleFaults(drop_packets=frozenset({3})),
        BleFaults(duplicate_packets=frozenset({2})),
        BleFaults(swap_packets=(4, 5)),
    ],
    ids=["dropped", "duplicated", "reordered"],
)
async def test_damaged_transfer_is_retried(faults: BleFaults) -> None:
    async with rig(faults) as (mock, driver):
        spectrum = await driver.acquire(FAST)
        assert driver.attempts_last_acquisition == 2
        assert mock.acquisitions == 2
    assert len(spectrum) == PIXELS


@pytest.mark.parametrize(
    ("faults", "kind"),
    [
        (BleFaults(drop_packets=frozenset({3}), faulty_acquisitions=-1), "missing"),
        (BleFaults(duplicate_packets=frozenset({2}), faulty_acquisitions=-1), "duplicate"),
        (BleFaults(swap_packets=(4, 5), faulty_acquisitions=-1), "missing"),
    ],
    ids=["dropped", "duplicated", "reordered"],
)
async def test_persistent_damage_fails_within_bound(faults: BleFaults, kind: str) -> None:
    async with rig(faults, max_attempts=3) as (mock, driver):
        with pytest.raises(TransferError) as info:
            await driver.acquire(FAST)
        assert mock.acquisitions == 3
    assert info.value.kind == kind


async def test_disconnect_mid_spectrum_reconnects_and_retries() -> None:
    async with rig(BleFaults(disconnect_after_packets=4)) as (mock, driver):
        spectrum = await driver.acquire(FAST)
        assert driver.attempts_last_acquisition == 2
        assert driver.is_connected and mock.connected
    assert len(spectrum) == PIXELS


async def test_disconnect_mid_spectrum_without_reconnect_is_a_clear_error() -> None:
    async with rig(BleFaults(disconnect_after_packets=4), reconnect=False) as (_mock, driver):
        with pytest.raises(DeviceDisconnectedError, match="mid-spectrum"):
            await driver.acquire(FAST)
        assert not driver.is_connected


async def test_generic_error_reply_is_raised_with_code() -> None:
    faults = BleFaults(generic_errors={0xB2: p.GenericError.INVALID_PARAMETER})
    async with rig(faults) as (mock, driver):
        with pytest.raises(InstrumentRejectedError) as info:
            await driver.acquire(FAST)
        assert mock.acquisitions == 0  # refused before acquiring
    error = info.value
    assert (error.code, error.code_name, error.opcode) == (3, "INVALID_PARAMETER", 0xB2)
    assert error.port == mock.address


async def test_out_of_range_setting_is_refused_by_the_device() -> None:
    async with rig() as (_mock, driver):
        with pytest.raises(InstrumentRejectedError, match="INVALID_PARAMETER"):
            await driver.set_integration_time_ms(0)
        assert await driver.get_generic(p.AMBIENT_TEMPERATURE_DEG_C) == 23


async def test_acquisition_that_never_finishes_times_out_from_settings() -> None:
    async with rig(BleFaults(never_finish=True), acquire_latency_s=0.3) as (mock, driver):
        # the message states the timeout derived from the settings: 4 × 10 ms + 0.3 s
        with pytest.raises(DeviceTimeoutError, match=r"after 0\.34 s .*0 of 1024 pixels"):
            await driver.acquire(FAST)
        assert mock.acquisitions == 1  # a timeout is not retried
        assert mock.laser_enabled is False


async def test_low_battery_is_reported() -> None:
    async with rig(BleFaults(battery_percent=12.0)) as (_mock, driver):
        info = driver.identify()
        assert info.extra["battery_percent"] == 12.0 and info.extra["battery_low"] is True
        assert (await driver.read_battery()).percent == 12.0


async def test_battery_notifications_update_the_report() -> None:
    async with rig() as (mock, driver):
        await mock.set_battery(9.5, charging=True)
        for _ in range(100):  # the notification crosses the link asynchronously
            if driver.identify().extra["battery_percent"] == 9.5:
                break
            await asyncio.sleep(0.01)
        extra = driver.identify().extra
    assert extra["battery_percent"] == 9.5 and extra["battery_charging"] is True
    assert extra["battery_low"] is True


async def test_flat_battery_refuses_laser_acquisition() -> None:
    async with rig(BleFaults(battery_percent=3.0)) as (mock, driver):
        with pytest.raises(InstrumentRejectedError) as info:
            await driver.acquire(FAST)
        assert mock.laser_enabled is False  # the driver switched it off after the refusal
    assert (info.value.code, info.value.code_name) == (2, "ERR_BATT_SOC_TOO_LOW")


async def test_absent_device_is_not_found() -> None:
    async with asyncio.timeout(10):
        driver = WasatchBLE("C0:00:00:00:00:42", backend=BumbleBleakClient, timeout=0.5)
        with pytest.raises(DeviceNotFoundError, match="C0:00:00:00:00:42"):
            await driver.connect()
        await driver.close()


def test_driver_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError):
        WasatchBLE("C0:00:00:00:00:42", timeout=0)
    with pytest.raises(ValueError):
        WasatchBLE("C0:00:00:00:00:42", max_attempts=0)


async def test_blank_eeprom_is_a_protocol_error_naming_the_device() -> None:
    async with asyncio.timeout(20):
        mock = MockRamanSpectrometer()
        mock.pages = [b"\xff" * 64] * 8  # an erased EEPROM
        await mock.start()
        try:
            driver = WasatchBLE(mock.address, backend=BumbleBleakClient, timeout=3.0)
            with pytest.raises(ProtocolError, match="EEPROM format 255") as info:
                await driver.connect()
            assert info.value.port == mock.address
            assert not driver.is_connected  # nothing left half-open
        finally:
            await mock.stop()


async def test_device_without_the_raman_service_is_refused() -> None:
    async with asyncio.timeout(20):
        air = air_for_running_loop()
        other = air.attach("heart-rate", "C0:11:22:33:44:55")
        other.add_service(DeviceInformationService(model_number="HR-1"))
        await other.power_on()
        await other.start_advertising(auto_restart=True)
        driver = WasatchBLE("C0:11:22:33:44:55", backend=BumbleBleakClient, timeout=3.0)
        try:
            with pytest.raises(ProtocolError, match="Wasatch Raman service"):
                await driver.connect()
            assert not driver.is_connected
        finally:
            await other.stop_advertising()
            air.detach(other)
