"""The bumble BLE firmware mock: its simulated detector and its GATT behaviour on the wire."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from bleak import BleakClient, BleakScanner

from device.ble import protocol as p
from device.ble.bumble_backend import BumbleBleakClient, BumbleBleakScanner
from device.calibration import pixel_wavelengths, raman_shift
from firmware_mocks.ble import (
    BleFaults,
    MockRamanSpectrometer,
    default_sample,
    run_standalone,
    synthetic_sample,
)
from spectra.spectrum import Spectrum

# --- simulated detector (no radio) ----------------------------------------------------------


def _mock(**kwargs: object) -> MockRamanSpectrometer:
    return MockRamanSpectrometer(**kwargs)  # type: ignore[arg-type]


def test_render_scales_with_integration_time_and_laser() -> None:
    mock = _mock()
    mock.laser_enabled = True
    mock.integration_time_ms = 50
    short = mock.render().astype(float) - 800
    mock.integration_time_ms = 200
    long = mock.render().astype(float) - 800
    assert long.max() / short.max() == pytest.approx(4.0, rel=0.1)
    dark = mock.render(laser_on=False).astype(float)
    assert abs(dark.mean() - 800 - 0.05 * 200) < 5  # offset + dark current only


def test_render_saturates_at_16_bits() -> None:
    mock = _mock()
    mock.laser_enabled = True
    mock.integration_time_ms = 60_000
    counts = mock.render()
    assert counts.dtype == np.uint16 and counts.max() == 65535


def test_averaging_reduces_noise() -> None:
    mock = _mock()
    mock.integration_time_ms = 100
    single = np.std(np.diff(mock.render(laser_on=False).astype(float)))
    mock.scans_to_average = 16
    averaged = np.std(np.diff(mock.render(laser_on=False).astype(float)))
    assert averaged < single / 2.5


def test_sample_is_placed_at_its_raman_shift() -> None:
    axis = np.linspace(100, 3000, 2901)
    peak = np.exp(-(((axis - 1000.0) / 5.0) ** 2))
    mock = _mock(sample=Spectrum(axis, peak), seed=1)
    mock.laser_enabled = True
    counts = mock.render().astype(float) - mock.render(laser_on=False).astype(float)
    shifts = raman_shift(pixel_wavelengths(mock.eeprom.wavelength_coeffs, 1024), 785.0)
    assert abs(shifts[int(np.argmax(counts))] - 1000.0) < 5


def test_default_sample_and_unknown_name() -> None:
    sample = default_sample()
    assert len(sample) >= 16 and sample.intensities.max() == pytest.approx(1.0)
    assert synthetic_sample().name == "paracetamol"
    with pytest.raises((ValueError, KeyError)):
        default_sample("no-such-compound-xyz")


# --- on the virtual air ---------------------------------------------------------------------


async def _generic(client: BleakClient, replies: asyncio.Queue[bytes], request: bytes) -> bytes:
    await client.write_gatt_char(p.Char.GENERIC.uuid, request, response=True)
    async with asyncio.timeout(2):
        return await replies.get()


@pytest.mark.parametrize(("mtu", "chunk"), [(23, 18), (247, 64)])
async def test_gatt_profile_and_generic_replies(mtu: int, chunk: int) -> None:
    async with asyncio.timeout(20):
        mock = MockRamanSpectrometer(faults=BleFaults(max_mtu=mtu))
        await mock.start()
        try:
            found = await BleakScanner.discover(
                0.3, return_adv=True, service_uuids=[p.SERVICE_UUID], backend=BumbleBleakScanner
            )
            assert found[mock.address][1].local_name == "WP-01234"
            async with BleakClient(mock.address, backend=BumbleBleakClient, timeout=3) as client:
                assert client.mtu_size == mtu
                service = client.services.get_service(p.SERVICE_UUID)
                assert service is not None
                props = {c.uuid: set(c.properties) for c in service.characteristics}
                assert props[p.Char.GENERIC.uuid] >= {"write", "notify"}
                assert props[p.Char.SPECTRA.uuid] >= {"notify"}
                replies: asyncio.Queue[bytes] = asyncio.Queue()
                await client.start_notify(
                    p.Char.GENERIC.uuid, lambda _c, d: replies.put_nowait(bytes(d))
                )
                # EEPROM chunks follow the MTU: MTU − 3 bytes of notification, 2 of header
                reply = await _generic(client, replies, bytes.fromhex("11ff01000000"))
                assert reply[:2] == b"\x11\x00" and reply[2:] == mock.pages[0][:chunk]
                # integration time set then read back, 3-byte big-endian
                assert await _generic(client, replies, bytes.fromhex("12b2000096")) == b"\x12\x00"
                assert await _generic(client, replies, b"\x13\xbf") == bytes.fromhex("1300000096")
                # out-of-range, unknown opcode, bad EEPROM page
                assert await _generic(client, replies, bytes.fromhex("14b2ffffff")) == b"\x14\x03"
                assert await _generic(client, replies, b"\x15\x42") == b"\x15\x04"
                assert await _generic(client, replies, bytes.fromhex("16ff01000900")) == b"\x16\x03"
                # battery characteristic
                battery = await client.read_gatt_char(p.Char.BATTERY_STATE.uuid)
                assert bytes(battery) == bytes.fromhex("005780181a")  # 87.5 %, 24 °C, 26 °C
        finally:
            await mock.stop()


async def test_spectra_notifications_fit_the_mtu() -> None:
    async with asyncio.timeout(20):
        mock = MockRamanSpectrometer(faults=BleFaults(max_mtu=23))
        await mock.start()
        try:
            async with BleakClient(mock.address, backend=BumbleBleakClient, timeout=3) as client:
                packets: asyncio.Queue[bytes] = asyncio.Queue()
                await client.start_notify(
                    p.Char.SPECTRA.uuid, lambda _c, d: packets.put_nowait(bytes(d))
                )
                await client.write_gatt_char(p.Char.ACQUIRE.uuid, b"\x00", response=True)
                received = []
                for _ in range(p.packet_count(1024, 23)):
                    async with asyncio.timeout(3):
                        received.append(await packets.get())
        finally:
            await mock.stop()
    assert all(len(x) <= 20 for x in received)
    starts = [int.from_bytes(x[:2], "big") for x in received]
    assert starts == list(range(0, 1024, 9))


def test_run_standalone_prints_a_session() -> None:
    lines: list[str] = []
    assert run_standalone(integration_time_ms=10, mtu=23, out=lines.append, timeout_s=30) == 0
    text = "\n".join(lines)
    assert "scan: C0:98:E5:00:12:34 WP-01234" in text
    assert "MTU 23" in text and "spectrum 1: 1024 points" in text


@pytest.mark.parametrize("kwargs", [{"mtu": 22}, {"acquisitions": -1}, {"integration_time_ms": 0}])
def test_run_standalone_rejects_bad_arguments(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        run_standalone(out=lambda _s: None, **kwargs)  # type: ignore[arg-type]
