"""Async driver for Wasatch-style Raman spectrometers over Bluetooth LE (bleak).

Usage::

    async with WasatchBLE("C0:98:E5:00:12:34") as spectrometer:
        info = await spectrometer.identify()
        spectrum = await spectrometer.acquire(AcquisitionSettings(integration_time_ms=200))

``backend=`` takes a bleak client backend class (tests and the mock mode pass
:class:`device.ble.bumble_backend.BumbleBleakClient`). Every await is bounded by a
timeout; bleak, bumble and OS errors leave this module as :mod:`device.errors`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Iterator
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self, TypeVar

import numpy as np
import numpy.typing as npt
from bleak import BleakClient, BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient
from bleak.backends.device import BLEDevice
from bleak.exc import BleakDeviceNotFoundError, BleakError
from bleak_retry_connector import BleakNotFoundError, establish_connection

from device.base import AcquisitionSettings, DeviceInfo
from device.ble import protocol as p
from device.calibration import pixel_wavelengths, raman_shift
from device.errors import (
    DeviceDisconnectedError,
    DeviceError,
    DeviceNotFoundError,
    DeviceTimeoutError,
    InstrumentRejectedError,
    ProtocolError,
    TransferError,
)
from spectra.spectrum import Acquisition, Spectrum, SpectrumKind

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Battery charge (%) under which :class:`DeviceInfo` flags ``battery_low``.
LOW_BATTERY_PERCENT = 20.0
#: What to say when the host has no usable Bluetooth stack (no BlueZ / D-Bus socket).
NO_RADIO_HINT = (
    "Bluetooth LE is not available on this host "
    "(FIELDSCAN_BLE_BACKEND=mock runs against the built-in mock instead)"
)
#: Quiet time after a damaged transfer before the acquisition is requested again.
SETTLE_S = 0.1


def _eeprom_request(seq: int, *, page: int, offset: int) -> bytes:
    return p.encode_eeprom_request(seq, page, offset)


class WasatchBLE:
    """One Bluetooth LE Raman spectrometer, driven through bleak.

    Parameters
    ----------
    address : str
        Bluetooth address (or platform identifier) of the instrument.
    backend : type, optional
        bleak client backend class; the platform's when omitted.
    timeout : float, default 10.0
        Seconds allowed for connecting and for each request/reply exchange.
    acquire_latency_s : float, default 6.0
        Fixed part of the acquisition timeout (see :func:`protocol.acquisition_timeout_s`).
    max_attempts : int, default 3
        Acquisition attempts when a transfer arrives damaged or the link drops.
    reconnect : bool, default True
        Reconnect once per attempt after a disconnect mid-spectrum (else fail clearly).
    connect_attempts : int, default 2
        Connection attempts (bleak-retry-connector) before the device counts as absent.
    """

    def __init__(
        self,
        address: str,
        *,
        backend: type[BaseBleakClient] | None = None,
        timeout: float = 10.0,
        acquire_latency_s: float = 6.0,
        max_attempts: int = 3,
        reconnect: bool = True,
        connect_attempts: int = 2,
    ) -> None:
        if timeout <= 0 or acquire_latency_s < 0 or max_attempts < 1 or connect_attempts < 1:
            raise ValueError(
                "timeout must be > 0, latency >= 0, max_attempts and connect_attempts >= 1"
            )
        self._connect_attempts = connect_attempts
        self.address = address
        self._backend = backend
        self._timeout = timeout
        self._latency = acquire_latency_s
        self._max_attempts = max_attempts
        self._reconnect = reconnect
        self._client: BleakClient | None = None
        self._chars: dict[p.Char, BleakGATTCharacteristic] = {}
        self._seq = 0
        self._pending: dict[int, asyncio.Future[p.GenericReply]] = {}
        self._generic_lock = asyncio.Lock()
        self._events: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        self._eeprom: p.EepromInfo | None = None
        self._revisions: dict[str, str] = {}
        self._battery: p.BatteryState | None = None
        self._integration_ms: int | None = None
        self._previous_integration_ms = 0
        self._averages: int | None = None
        self._laser: bool | None = None
        self.attempts_last_acquisition = 0

    # --- context ------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def is_connected(self) -> bool:
        """True while the link is up."""
        return self._client is not None and self._client.is_connected

    @property
    def mtu(self) -> int:
        """Negotiated ATT MTU (23 before connecting)."""
        return self._client.mtu_size if self.is_connected and self._client else p.ATT_DEFAULT_MTU

    async def _bounded(self, awaitable: Awaitable[T], what: str, timeout: float | None = None) -> T:
        """Await with a timeout, translating bleak/OS errors at this boundary."""
        try:
            async with asyncio.timeout(self._timeout if timeout is None else timeout):
                return await awaitable
        except TimeoutError:
            raise DeviceTimeoutError(f"{what}: no answer in time", port=self.address) from None
        except (BleakDeviceNotFoundError, BleakNotFoundError):
            raise DeviceNotFoundError(
                "no such Bluetooth LE device in range", port=self.address
            ) from None
        except BleakError as exc:
            if self._client is not None and not self._client.is_connected:
                raise DeviceDisconnectedError(
                    f"{what}: link lost ({exc})", port=self.address
                ) from None
            raise DeviceError(f"{what}: {exc}", port=self.address) from None
        except OSError as exc:
            raise DeviceError(f"{what}: {NO_RADIO_HINT} ({exc})", port=self.address) from None

    # --- connection ---------------------------------------------------------------------

    @contextlib.contextmanager
    def _addressed(self) -> Iterator[None]:
        """Codec errors carry no address; name the device before they leave the driver."""
        try:
            yield
        except ProtocolError as exc:
            if exc.port is not None or type(exc) is not ProtocolError:
                raise
            raise ProtocolError(str(exc), port=self.address) from None

    async def connect(self) -> None:
        """Connect, subscribe to notifications and read identity, EEPROM and battery."""
        await self._open_link()
        try:
            with self._addressed():
                await self._read_identity()
        except BaseException:
            await self.close()
            raise

    async def _open_link(self) -> None:
        kwargs: dict[str, Any] = {"timeout": self._timeout}
        if self._backend is not None:
            kwargs["backend"] = self._backend
            # A custom backend resolves the address itself; no platform scan needed.
            device = BLEDevice(self.address, None, None)
        else:
            device = await self._find_device()
        # bleak-retry-connector: bounded connection attempts with backoff (and BlueZ
        # housekeeping on Linux hosts).
        client = await self._bounded(
            establish_connection(
                BleakClient,
                device,
                self.address,
                disconnected_callback=self._on_disconnect,
                max_attempts=self._connect_attempts,
                **kwargs,
            ),
            "connect",
            self._connect_attempts * (self._timeout + 1.0) + 1.0,
        )
        self._client = client
        self._seq = 0
        service = client.services.get_service(p.SERVICE_UUID)
        if service is None:
            await self.close()
            raise ProtocolError(
                "device does not offer the Wasatch Raman service "
                f"{p.SERVICE_UUID}; is it a supported spectrometer?",
                port=self.address,
            )
        self._chars = {}
        for char in p.Char:
            found = service.get_characteristic(char.uuid)
            if found is None:
                await self.close()
                raise ProtocolError(f"characteristic {char.name} missing", port=self.address)
            self._chars[char] = found
        self._events = asyncio.Queue()
        handlers = {
            p.Char.GENERIC: self._on_generic,
            p.Char.ACQUIRE: lambda _c, data: self._events.put_nowait(("status", bytes(data))),
            p.Char.SPECTRA: lambda _c, data: self._events.put_nowait(("spectra", bytes(data))),
            p.Char.BATTERY_STATE: self._on_battery,
        }
        for char, handler in handlers.items():
            await self._bounded(
                client.start_notify(self._chars[char], handler), f"subscribe {char.name}"
            )
        # Settings are the device's after a (re)connection: send them again when needed.
        self._integration_ms = self._averages = self._laser = None

    async def _find_device(self) -> BLEDevice:
        """Scan for the address with the platform scanner (BlueZ needs to have seen it)."""
        try:
            device = await self._bounded(
                BleakScanner.find_device_by_address(self.address, timeout=self._timeout),
                "scan",
                self._timeout + 2.0,
            )
        except DeviceTimeoutError:
            device = None
        if device is None:
            raise DeviceNotFoundError(
                f"not seen advertising within {self._timeout:.0f} s", port=self.address
            )
        return device

    def _on_disconnect(self, _client: BleakClient) -> None:
        log.warning("%s: Bluetooth LE link lost", self.address)
        self._events.put_nowait(("disconnect", b""))
        for future in self._pending.values():
            if not future.done():
                future.set_exception(
                    DeviceDisconnectedError(
                        "link lost while waiting for a reply", port=self.address
                    )
                )
        self._pending.clear()

    async def close(self) -> None:
        """Disconnect; idempotent."""
        client, self._client = self._client, None
        if client is not None and client.is_connected:
            try:
                async with asyncio.timeout(self._timeout):
                    await client.disconnect()
            except (TimeoutError, BleakError, OSError) as exc:
                log.warning("%s: disconnect failed: %s", self.address, exc)

    def _require_client(self) -> BleakClient:
        if self._client is None or not self._client.is_connected:
            raise DeviceDisconnectedError("not connected", port=self.address)
        return self._client

    # --- identity -----------------------------------------------------------------------

    async def _read_identity(self) -> None:
        client = self._require_client()
        revisions: dict[str, str] = {}
        info = client.services.get_service(p.DEVICE_INFORMATION_SERVICE_UUID)
        if info is not None:
            for key, uuid in (
                ("firmware", p.DIS_FIRMWARE_REVISION),
                ("hardware", p.DIS_HARDWARE_REVISION),
                ("software", p.DIS_SOFTWARE_REVISION),
            ):
                char = info.get_characteristic(uuid)
                if char is not None:
                    raw = await self._bounded(client.read_gatt_char(char), f"read {key} revision")
                    revisions[key] = bytes(raw).decode("utf-8", errors="replace").strip("\x00 ")
        self._revisions = revisions
        pages = [await self.read_eeprom_page(page) for page in range(p.EEPROM_PAGES_USED)]
        self._eeprom = p.parse_eeprom(pages)
        self._battery = await self.read_battery()

    async def read_eeprom_page(self, page: int) -> bytes:
        """One 64-byte EEPROM page, in as many GENERIC exchanges as the MTU needs."""
        buffer = b""
        while len(buffer) < p.EEPROM_PAGE_SIZE:
            offset = len(buffer)
            chunk = await self._generic(
                functools.partial(_eeprom_request, page=page, offset=offset),
                p.EEPROM_DATA.getter,
            )
            if not chunk:
                raise ProtocolError(f"EEPROM page {page} read returned no data", port=self.address)
            buffer += chunk
        return buffer[: p.EEPROM_PAGE_SIZE]

    async def read_battery(self) -> p.BatteryState:
        """Read BATTERY_STATE now."""
        client = self._require_client()
        raw = await self._bounded(
            client.read_gatt_char(self._chars[p.Char.BATTERY_STATE]), "read battery"
        )
        with self._addressed():
            state = p.decode_battery_state(bytes(raw))
        self._battery = state
        if state.percent < LOW_BATTERY_PERCENT:
            log.warning("%s: battery low (%.0f %%)", self.address, state.percent)
        return state

    def _on_battery(self, _char: BleakGATTCharacteristic, data: bytearray) -> None:
        try:
            self._battery = p.decode_battery_state(bytes(data))
        except ProtocolError as exc:
            log.warning("%s: %s", self.address, exc)

    @property
    def eeprom(self) -> p.EepromInfo:
        """The EEPROM read at connection."""
        if self._eeprom is None:
            raise DeviceError("not identified yet (connect first)", port=self.address)
        return self._eeprom

    def identify(self) -> DeviceInfo:
        """Identity, calibration and battery state (read at connection; no I/O)."""
        eeprom = self.eeprom
        extra: dict[str, Any] = {
            "firmware_revisions": dict(self._revisions),
            "eeprom_format": eeprom.format,
            "detector": eeprom.detector,
            "mtu": self.mtu,
        }
        if self._battery is not None:
            extra["battery_percent"] = round(self._battery.percent, 1)
            extra["battery_charging"] = self._battery.charging
            extra["battery_low"] = self._battery.percent < LOW_BATTERY_PERCENT
        return DeviceInfo(
            model=eeprom.model,
            serial=eeprom.serial,
            pixel_count=eeprom.active_pixels_horizontal,
            wavelength_coeffs=eeprom.wavelength_coeffs,
            laser_nm=eeprom.excitation_nm,
            firmware=self._revisions.get("software"),
            transport=f"ble:{self.address}",
            extra=extra,
        )

    # --- GENERIC ------------------------------------------------------------------------

    def _on_generic(self, _char: BleakGATTCharacteristic, data: bytearray) -> None:
        try:
            reply = p.decode_generic_reply(bytes(data))
        except ProtocolError as exc:
            log.warning("%s: %s", self.address, exc)
            return
        future = self._pending.pop(reply.seq, None)
        if future is None or future.done():
            log.debug("%s: GENERIC reply with unknown seq %d", self.address, reply.seq)
            return
        future.set_result(reply)

    async def _generic(self, build: Any, opcode: int | None) -> bytes:
        """Send one GENERIC request built by ``build(seq)``; return the reply payload."""
        client = self._require_client()
        async with self._generic_lock:
            self._seq = self._seq % 255 + 1
            seq = self._seq
            future: asyncio.Future[p.GenericReply] = asyncio.get_running_loop().create_future()
            self._pending[seq] = future
            try:
                await self._bounded(
                    client.write_gatt_char(self._chars[p.Char.GENERIC], build(seq), response=True),
                    "GENERIC write",
                )
                reply = await self._bounded(
                    asyncio.shield(future), f"GENERIC reply to 0x{opcode or 0:02x}"
                )
            finally:
                self._pending.pop(seq, None)
        if reply.error != p.GenericError.OK:
            raise InstrumentRejectedError(
                f"GENERIC opcode 0x{opcode or 0:02x} refused: {reply.error_name} ({reply.error})",
                code=reply.error,
                code_name=reply.error_name,
                opcode=opcode,
                port=self.address,
            )
        return reply.payload

    async def set_generic(self, attr: p.GenericAttribute, value: float) -> None:
        """Set a GENERIC attribute (waits for the device's acknowledgement)."""
        p.encode_generic_set(0, attr, value)  # ValueError up front, before any I/O
        await self._generic(lambda seq: p.encode_generic_set(seq, attr, value), attr.setter)

    async def get_generic(self, attr: p.GenericAttribute) -> float | int | bytes:
        """Read a GENERIC attribute."""
        payload = await self._generic(lambda seq: p.encode_generic_get(seq, attr), attr.getter)
        return attr.decode_value(payload)

    async def set_integration_time_ms(self, ms: float) -> None:
        """Integration time, rounded to whole milliseconds as the firmware takes it."""
        value = round(ms)
        if self._integration_ms == value:
            return
        await self.set_generic(p.INTEGRATION_TIME_MS, value)
        self._previous_integration_ms = self._integration_ms or value
        self._integration_ms = value

    async def set_scans_to_average(self, n: int) -> None:
        """Scans the firmware averages into each spectrum."""
        if self._averages == n:
            return
        await self.set_generic(p.SCANS_TO_AVERAGE, n)
        self._averages = n

    async def set_laser(self, enable: bool) -> None:
        """Enable or disable the laser (LASER_STATE write with response)."""
        if self._laser == enable:
            return
        client = self._require_client()
        await self._bounded(
            client.write_gatt_char(
                self._chars[p.Char.LASER_STATE], p.encode_laser_enable(enable), response=True
            ),
            "LASER_STATE write",
        )
        self._laser = enable

    # --- acquisition --------------------------------------------------------------------

    async def acquire(self, settings: AcquisitionSettings) -> Spectrum:
        """Configure, acquire (dark-subtracted if asked) and return a Raman spectrum."""
        eeprom = self.eeprom
        try:
            if settings.laser and settings.dark_subtract:
                dark = await self.acquire_counts(settings, laser=False)
                raw = await self.acquire_counts(settings, laser=True)
                counts = raw.astype(np.float64) - dark.astype(np.float64)
            else:
                single = await self.acquire_counts(settings, laser=settings.laser)
                counts = single.astype(np.float64)
        finally:
            await self._laser_off_quietly()
        wavelengths = pixel_wavelengths(eeprom.wavelength_coeffs, eeprom.active_pixels_horizontal)
        axis = raman_shift(wavelengths, eeprom.excitation_nm)
        return Spectrum(
            axis,
            counts,
            SpectrumKind.RAMAN,
            name=f"{eeprom.model} {eeprom.serial}",
            acquisition=Acquisition(
                device_model=eeprom.model,
                device_serial=eeprom.serial,
                firmware=self._revisions.get("software"),
                laser_nm=eeprom.excitation_nm,
                integration_time_ms=float(settings.integration_time_ms),
                averages=settings.averages,
                timestamp=datetime.now(UTC),
            ),
        )

    async def _laser_off_quietly(self) -> None:
        """Never leave the laser on, even when the acquisition failed."""
        if not self.is_connected:
            return
        self._laser = None  # unknown after a failure: always send the write
        try:
            await self.set_laser(False)
        except DeviceError as exc:
            log.error("%s: could not switch the laser off: %s", self.address, exc)

    async def acquire_counts(
        self, settings: AcquisitionSettings, *, laser: bool
    ) -> npt.NDArray[np.uint16]:
        """Raw counts of one acquisition, retried within a bound on damage or disconnect."""
        last: DeviceError | None = None
        for attempt in range(1, self._max_attempts + 1):
            self.attempts_last_acquisition = attempt
            try:
                if not self.is_connected:
                    if not self._reconnect:
                        raise DeviceDisconnectedError("link lost", port=self.address)
                    await self._open_link()
                await self.set_integration_time_ms(settings.integration_time_ms)
                await self.set_scans_to_average(settings.averages)
                await self.set_laser(laser)
                return await self._acquire_once(settings)
            except TransferError as exc:
                log.warning("%s: attempt %d damaged: %s", self.address, attempt, exc)
                last = exc
                await self._settle()
            except DeviceDisconnectedError as exc:
                log.warning("%s: attempt %d lost the link: %s", self.address, attempt, exc)
                last = exc
                await self.close()
                if not self._reconnect:
                    raise
        assert last is not None
        message = f"acquisition failed after {self._max_attempts} attempts: {last}"
        if isinstance(last, TransferError):
            raise TransferError(
                message, kind=last.kind, expected=last.expected, got=last.got, port=self.address
            )
        raise DeviceDisconnectedError(message, port=self.address)

    def _drain(self) -> None:
        while not self._events.empty():
            self._events.get_nowait()

    async def _settle(self) -> None:
        """Let the rest of a damaged transfer arrive, then forget it."""
        deadline = asyncio.get_running_loop().time() + 2.0
        while asyncio.get_running_loop().time() < deadline:
            try:
                async with asyncio.timeout(SETTLE_S):
                    kind, _ = await self._events.get()
            except TimeoutError:
                break
            if kind == "disconnect":
                break
        self._drain()

    async def _acquire_once(self, settings: AcquisitionSettings) -> npt.NDArray[np.uint16]:
        client = self._require_client()
        eeprom = self.eeprom
        integration = self._integration_ms or round(settings.integration_time_ms)
        timeout = p.acquisition_timeout_s(
            integration, settings.averages, self._previous_integration_ms, self._latency
        )
        self._drain()
        assembler = p.SpectrumReassembler(eeprom.active_pixels_horizontal)
        await self._bounded(
            client.write_gatt_char(
                self._chars[p.Char.ACQUIRE], bytes([p.ACQUIRE_PLAIN]), response=True
            ),
            "ACQUIRE write",
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            remaining = deadline - loop.time()
            try:
                async with asyncio.timeout(max(remaining, 0.0)):
                    kind, data = await self._events.get()
            except TimeoutError:
                raise DeviceTimeoutError(
                    f"spectrum not complete after {timeout:.2f} s "
                    f"({assembler.received} of {assembler.pixel_count} pixels; "
                    f"integration {integration} ms × {settings.averages})",
                    port=self.address,
                ) from None
            if kind == "disconnect":
                raise DeviceDisconnectedError(
                    f"link lost mid-spectrum ({assembler.received} of "
                    f"{assembler.pixel_count} pixels)",
                    port=self.address,
                )
            if kind == "status":
                with self._addressed():
                    status = p.decode_acquire_status(data)
                if status.is_error:
                    raise InstrumentRejectedError(
                        f"acquisition refused: {status.name} ({status.code})",
                        code=status.code,
                        code_name=status.name,
                        port=self.address,
                    )
                continue
            try:
                if assembler.feed(data):
                    return assembler.counts()
            except TransferError as exc:
                raise TransferError(
                    str(exc), kind=exc.kind, expected=exc.expected, got=exc.got, port=self.address
                ) from None
