"""A Wasatch-style Raman spectrometer as a bumble GATT server on the virtual air.

It speaks the profile of :mod:`device.ble.protocol` through bumble's real ATT/GATT
server, so the driver under test goes through MTU exchange, service discovery,
writes with response and notifications exactly as with hardware. The detector is
simulated from the EEPROM calibration: a sample spectrum is placed on the pixels'
Raman shifts, with a fluorescence background, a dark offset, shot and read noise,
integration-time scaling, averaging and 16-bit saturation.

Faults (:class:`BleFaults`) exercise the driver's error paths: a small MTU, packets
sent larger than the MTU allows (the stack truncates them), dropped, duplicated and
reordered SPECTRA packets, a disconnect mid-spectrum, GENERIC error replies, an
acquisition that never finishes and a low battery.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from bumble import core
from bumble.device import Connection, Device
from bumble.gatt import Characteristic, CharacteristicValue, Service
from bumble.profiles.device_information_service import DeviceInformationService

from device.ble import protocol as p
from device.ble.bumble_backend import VirtualAir, air_for_running_loop
from device.calibration import pixel_wavelengths, raman_shift
from device.errors import ProtocolError
from firmware_mocks.ble.sample import default_sample
from spectra.spectrum import Spectrum

log = logging.getLogger(__name__)

DEFAULT_ADDRESS = "C0:98:E5:00:12:34"

#: Calibration after a real 785 nm unit's EEPROM published in Wasatch.PY's test data
#: (WP-00887): 1024 active pixels, ~772–952 nm.
DEFAULT_EEPROM = p.EepromInfo(
    model="WP-785XS",
    serial="WP-01234",
    wavelength_coeffs=(772.25, 0.2003918, -1.006051e-06, -2.366295e-08, 0.0),
    active_pixels_horizontal=1024,
    excitation_nm=785.0,
    startup_integration_time_ms=100,
    min_integration_time_ms=1,
    max_integration_time_ms=60_000,
    detector="S16011-1006",
    format=15,
)

#: Below this charge the firmware refuses to fire the laser (ERR_BATT_SOC_TOO_LOW).
REFUSE_BELOW_PERCENT = 5.0


@dataclass
class BleFaults:
    """What the mock should get wrong. Packet faults hit the first ``faulty_acquisitions``.

    Packet indices count SPECTRA notifications of one acquisition from 0.
    ``faulty_acquisitions=-1`` makes every acquisition faulty.
    """

    max_mtu: int = 247
    ignore_mtu_pixels: int | None = None  # send this many pixels per packet whatever the MTU
    drop_packets: frozenset[int] = frozenset()
    duplicate_packets: frozenset[int] = frozenset()
    swap_packets: tuple[int, int] | None = None  # send the second before the first
    disconnect_after_packets: int | None = None
    faulty_acquisitions: int = 1
    generic_errors: dict[int, int] = field(default_factory=dict)  # opcode -> error code
    never_finish: bool = False
    battery_percent: float = 87.5
    battery_charging: bool = False


@dataclass(frozen=True, slots=True)
class Emission:
    """Photon rates of the simulated scene, in counts per millisecond at the detector."""

    raman_peak: float = 45.0
    fluorescence: float = 12.0
    dark_current: float = 0.05
    dark_offset: float = 800.0
    read_noise: float = 6.0


class MockRamanSpectrometer:
    """The firmware mock; ``await start()`` puts it on the air, advertising."""

    def __init__(
        self,
        *,
        address: str = DEFAULT_ADDRESS,
        eeprom: p.EepromInfo = DEFAULT_EEPROM,
        sample: Spectrum | None = None,
        faults: BleFaults | None = None,
        emission: Emission | None = None,
        seed: int | None = 0,
        firmware: str = "4.10.7",
        advertising_interval_ms: float = 20.0,
    ) -> None:
        self.address = address.upper()
        self.eeprom = eeprom
        self.pages = p.build_eeprom(eeprom)
        self.sample = sample if sample is not None else default_sample()
        self.faults = faults or BleFaults()
        self.emission = emission or Emission()
        self.firmware = firmware
        self.advertising_interval_ms = advertising_interval_ms
        self._rng = np.random.default_rng(seed)
        self.integration_time_ms = eeprom.startup_integration_time_ms
        self.scans_to_average = 1
        self.gain_db = 8.0
        self.laser_enabled = False
        self.acquisitions = 0  # ACQUIRE writes received
        self.packets_sent = 0  # SPECTRA notifications sent, all acquisitions
        self.generic_requests: list[p.GenericRequest] = []
        self._profile = self._render_profile()
        self._device: Device | None = None
        self._air: VirtualAir | None = None
        self._connection: Connection | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._acquisition: asyncio.Task[None] | None = None

    # --- simulated optics ---------------------------------------------------------------

    def _render_profile(self) -> npt.NDArray[np.float64]:
        n = self.eeprom.active_pixels_horizontal
        wavelengths = pixel_wavelengths(self.eeprom.wavelength_coeffs, n)
        shifts = raman_shift(wavelengths, self.eeprom.excitation_nm)
        raman = np.interp(shifts, self.sample.axis, self.sample.intensities, left=0.0, right=0.0)
        peak = float(np.max(np.abs(raman))) or 1.0
        self._fluorescence = np.exp(-(((wavelengths - 860.0) / 110.0) ** 2))
        return np.asarray(raman / peak, dtype=np.float64)

    def render(self, laser_on: bool | None = None) -> npt.NDArray[np.uint16]:
        """One averaged read-out at the current settings, as 16-bit counts."""
        laser = self.laser_enabled if laser_on is None else laser_on
        e = self.emission
        t = float(self.integration_time_ms)
        signal = np.full(self._profile.size, e.dark_current * t)
        if laser:
            signal = signal + t * (
                e.raman_peak * self._profile + e.fluorescence * self._fluorescence
            )
        noise_sd = np.sqrt(np.maximum(signal, 0.0) + e.read_noise**2) / np.sqrt(
            self.scans_to_average
        )
        counts = e.dark_offset + signal + self._rng.normal(0.0, 1.0, signal.size) * noise_sd
        clipped: npt.NDArray[np.uint16] = np.clip(np.rint(counts), 0, 0xFFFF).astype(np.uint16)
        return clipped

    # --- life cycle ---------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True while a central is connected."""
        return self._connection is not None

    async def start(self, air: VirtualAir | None = None) -> None:
        """Attach to ``air`` (the running loop's by default), power on and advertise."""
        air = air or air_for_running_loop()
        self._air = air
        device = air.attach(self.eeprom.serial, self.address)
        device.gatt_server.max_mtu = self.faults.max_mtu
        device.add_services(self._services())
        device.on(device.EVENT_CONNECTION, self._on_connection)
        await device.power_on()
        await device.start_advertising(
            auto_restart=True,
            advertising_data=self._advertising_data(),
            advertising_interval_min=self.advertising_interval_ms,
            advertising_interval_max=self.advertising_interval_ms,
        )
        self._device = device

    async def stop(self) -> None:
        """Stop advertising, drop any connection and cancel pending work."""
        for task in list(self._tasks):
            task.cancel()
        device, self._device = self._device, None
        if device is None:
            return
        with contextlib.suppress(core.BaseBumbleError, TimeoutError):
            async with asyncio.timeout(2.0):
                if device.is_advertising:
                    await device.stop_advertising()
                if self._connection is not None:
                    await self._connection.disconnect()
        with contextlib.suppress(core.BaseBumbleError, TimeoutError):
            async with asyncio.timeout(2.0):
                await device.power_off()
        if self._air is not None:
            self._air.detach(device)  # off the air: a later mock may take this address

    def _advertising_data(self) -> bytes:
        from bumble.core import AdvertisingData

        service = core.UUID(p.SERVICE_UUID)
        return bytes(
            AdvertisingData(
                [
                    (AdvertisingData.FLAGS, bytes([0x06])),
                    (
                        AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
                        service.to_bytes(force_128=True),
                    ),
                    (AdvertisingData.COMPLETE_LOCAL_NAME, self.eeprom.serial.encode()),
                ]
            )
        )

    def _on_connection(self, connection: Connection) -> None:
        self._connection = connection
        connection.on(connection.EVENT_DISCONNECTION, lambda *_: self._on_disconnection())

    def _on_disconnection(self) -> None:
        self._connection = None
        if self._acquisition is not None:
            self._acquisition.cancel()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- GATT database ------------------------------------------------------------------

    def _services(self) -> list[Service]:
        props = Characteristic.Properties
        rw = Characteristic.READABLE | Characteristic.WRITEABLE
        self.laser_char: Characteristic[bytes] = Characteristic(
            p.Char.LASER_STATE.uuid,
            props.READ | props.WRITE | props.NOTIFY,
            rw,
            CharacteristicValue[bytes](read=self._read_laser, write=self._write_laser),
        )
        self.acquire_char: Characteristic[bytes] = Characteristic(
            p.Char.ACQUIRE.uuid,
            props.WRITE | props.NOTIFY,
            rw,
            CharacteristicValue[bytes](write=self._write_acquire),
        )
        self.battery_char: Characteristic[bytes] = Characteristic(
            p.Char.BATTERY_STATE.uuid,
            props.READ | props.NOTIFY,
            Characteristic.READABLE,
            CharacteristicValue[bytes](read=self._read_battery),
        )
        self.generic_char: Characteristic[bytes] = Characteristic(
            p.Char.GENERIC.uuid,
            props.WRITE | props.NOTIFY,
            rw,
            CharacteristicValue[bytes](write=self._write_generic),
        )
        self.spectra_char: Characteristic[bytes] = Characteristic(
            p.Char.SPECTRA.uuid, props.NOTIFY, Characteristic.READABLE, b""
        )
        wasatch = Service(
            p.SERVICE_UUID,
            [
                self.laser_char,
                self.acquire_char,
                self.battery_char,
                self.generic_char,
                self.spectra_char,
            ],
        )
        info = DeviceInformationService(
            manufacturer_name="Wasatch Photonics (mock)",
            model_number=self.eeprom.model,
            serial_number=self.eeprom.serial,
            hardware_revision="FPGA 1.0.4",
            firmware_revision="STM32 2.3.9",
            software_revision=self.firmware,
        )
        return [info, wasatch]

    # --- characteristic handlers --------------------------------------------------------

    def _read_battery(self, connection: Connection) -> bytes:
        return p.encode_battery_state(
            p.BatteryState(self.faults.battery_charging, self.faults.battery_percent, 24, 26)
        )

    async def set_battery(self, percent: float, charging: bool = False) -> None:
        """Change the charge and push a BATTERY_STATE notification, as the firmware does."""
        if not 0 <= percent <= 100:
            raise ValueError(f"battery percent must lie in [0, 100], got {percent}")
        self.faults.battery_percent = percent
        self.faults.battery_charging = charging
        connection = self._connection
        if connection is not None:
            await self._notify(connection, self.battery_char, self._read_battery(connection))

    def _read_laser(self, connection: Connection) -> bytes:
        return p.encode_laser_state(
            p.LaserState(0, 0, self.laser_enabled, 10, can_fire=True, is_firing=self.laser_enabled)
        )

    def _write_laser(self, connection: Connection, value: bytes) -> None:
        if len(value) >= 3 and value[2] != p.LASER_NO_CHANGE:
            self.laser_enabled = value[2] != 0

    def _write_generic(self, connection: Connection, value: bytes) -> None:
        try:
            request = p.decode_generic_request(value)
        except ProtocolError:
            log.warning("mock: undecodable GENERIC write %s", bytes(value).hex())
            return
        self.generic_requests.append(request)
        reply = self._answer_generic(request, connection)
        self._spawn(self._notify(connection, self.generic_char, reply))

    def _answer_generic(self, request: p.GenericRequest, connection: Connection) -> bytes:
        seq = request.seq
        forced = self.faults.generic_errors.get(request.opcode)
        if forced is not None:
            return p.encode_generic_reply(seq, forced)
        found = p.find_generic_attribute(request.tier, request.opcode)
        if found is None:
            return p.encode_generic_reply(seq, p.GenericError.UNSUPPORTED_COMMAND)
        attr, is_set = found
        if attr is p.EEPROM_DATA:
            if len(request.payload) < 3:
                return p.encode_generic_reply(seq, p.GenericError.INVALID_PARAMETER)
            page = int.from_bytes(request.payload[:2], "big")
            offset = request.payload[2]
            if page >= len(self.pages) or offset >= p.EEPROM_PAGE_SIZE:
                return p.encode_generic_reply(seq, p.GenericError.INVALID_PARAMETER)
            room = int(connection.att_mtu) - p.ATT_NOTIFICATION_OVERHEAD - 2
            return p.encode_generic_reply(
                seq, p.GenericError.OK, self.pages[page][offset : offset + room]
            )
        if is_set:
            try:
                value = attr.decode_value(request.payload)
            except ProtocolError:
                return p.encode_generic_reply(seq, p.GenericError.INVALID_PARAMETER)
            if not self._apply(attr, value):
                return p.encode_generic_reply(seq, p.GenericError.INVALID_PARAMETER)
            return p.encode_generic_reply(seq, p.GenericError.OK)
        current = self._current(attr)
        if current is None:
            return p.encode_generic_reply(seq, p.GenericError.UNSUPPORTED_COMMAND)
        return p.encode_generic_reply(seq, p.GenericError.OK, attr.encode_value(current))

    def _apply(self, attr: p.GenericAttribute, value: float | int | bytes) -> bool:
        if isinstance(value, bytes):
            return False
        if attr is p.INTEGRATION_TIME_MS:
            lo, hi = self.eeprom.min_integration_time_ms, self.eeprom.max_integration_time_ms
            if not lo <= value <= hi:
                return False
            self.integration_time_ms = int(value)
        elif attr is p.SCANS_TO_AVERAGE:
            if not 1 <= value <= 10_000:
                return False
            self.scans_to_average = int(value)
        elif attr is p.GAIN_DB:
            self.gain_db = float(value)
        else:
            return False
        return True

    def _current(self, attr: p.GenericAttribute) -> float | int | None:
        return {
            p.INTEGRATION_TIME_MS.name: self.integration_time_ms,
            p.SCANS_TO_AVERAGE.name: self.scans_to_average,
            p.GAIN_DB.name: self.gain_db,
            p.IMAGE_SENSOR_STATE.name: 4,  # ACTIVE
            p.AMBIENT_TEMPERATURE_DEG_C.name: 23,
        }.get(attr.name)

    def _write_acquire(self, connection: Connection, value: bytes) -> None:
        self.acquisitions += 1
        if self._acquisition is not None and not self._acquisition.done():
            self._acquisition.cancel()  # a new request restarts the read-out
        task = asyncio.ensure_future(self._acquire(connection, self.acquisitions))
        self._acquisition = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _notify(
        self, connection: Connection, char: Characteristic[bytes], value: bytes
    ) -> None:
        with contextlib.suppress(core.BaseBumbleError):
            device = self._device
            if device is not None and self._connection is connection:
                await device.notify_subscriber(connection, char, value)

    async def _acquire(self, connection: Connection, number: int) -> None:
        faults = self.faults
        if self.laser_enabled and faults.battery_percent < REFUSE_BELOW_PERCENT:
            await self._notify(
                connection,
                self.acquire_char,
                p.encode_acquire_status(p.AcquireStatus.ERR_BATT_SOC_TOO_LOW),
            )
            return
        if faults.never_finish:
            return
        await asyncio.sleep(self.integration_time_ms * self.scans_to_average / 1000.0)
        counts = self.render()
        faulty = faults.faulty_acquisitions < 0 or number <= faults.faulty_acquisitions
        per = faults.ignore_mtu_pixels or p.pixels_per_packet(int(connection.att_mtu))
        packets = [
            p.encode_spectra_packet(start, counts[start : start + per])
            for start in range(0, counts.size, per)
        ]
        order = list(range(len(packets)))
        if faulty:
            if faults.swap_packets is not None:
                i, j = faults.swap_packets
                order[i], order[j] = order[j], order[i]
            order = [k for k in order if k not in faults.drop_packets]
            order = [
                k
                for idx in order
                for k in ([idx, idx] if idx in faults.duplicate_packets else [idx])
            ]
        for sent, index in enumerate(order):
            if faulty and faults.disconnect_after_packets == sent:
                with contextlib.suppress(core.BaseBumbleError):
                    await connection.disconnect()
                return
            await self._notify(connection, self.spectra_char, packets[index])
            self.packets_sent += 1
