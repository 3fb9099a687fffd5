"""A Raman module that speaks OBP over a serial line, as a :class:`device.base.Spectrometer`.

Every exchange is bounded: a request is retried a fixed number of times on a
timeout, a corrupted reply, or NACK "device not ready"; when the port vanishes
the driver waits a bounded time for it to come back (a USB adapter
re-enumerating keeps its udev path) and restarts the acquisition from the
configuration step, because a power-cycled module forgets its settings.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from device.base import AcquisitionSettings, ClosingSpectrometer, DeviceInfo
from device.calibration import pixel_wavelengths, raman_shift
from device.errors import DeviceDisconnectedError, DeviceError, DeviceTimeoutError
from device.obp import codec
from device.obp.codec import Flags, Frame
from device.obp.deframer import Deframer, Rejected
from device.obp.errors import (
    BadChecksumError,
    DeviceNotReadyError,
    FrameError,
    HardwareExceptionError,
    ProtocolDeprecatedError,
    UnknownMessageTypeError,
    error_for_code,
)
from device.obp.messages import (
    MessageType,
    TriggerMode,
    pack_request,
    unpack_pixel_ranges,
    unpack_reply,
    unpack_spectrum,
    unpack_text,
)
from device.serial_transport import SerialTransport, wait_for_port
from spectra.spectrum import Acquisition, Spectrum, SpectrumKind

FloatArray = npt.NDArray[np.float64]

#: Pixel count assumed when a module does not answer GET_NUMBER_OF_PIXELS (STS class).
DEFAULT_PIXEL_COUNT = 1024
#: Seconds added to every reply timeout for the module's own latency.
DEFAULT_TIMEOUT = 0.5


class _CorruptedReplyError(Exception):
    """Our reply arrived damaged: retry at once rather than wait for the timeout."""


@dataclass(slots=True)
class LinkStats:
    """What the link went through; read by tests, diagnostics and the benchmark."""

    requests: int = 0
    retries: int = 0
    not_ready: int = 0
    corrupted: int = 0
    timeouts: int = 0
    reconnects: int = 0
    bytes_in: int = 0
    last_transfer_s: float = 0.0  # spectrum requests written → replies complete, summed
    last_integration_s: float = 0.0  # of which the module was integrating
    last_payload_bytes: int = 0  # spectrum payload bytes of the last acquisition
    last_processing_s: float = 0.0  # counts → Spectrum


class ObpSpectrometer(ClosingSpectrometer):
    """OBP driver over a :class:`~device.serial_transport.SerialTransport`.

    Parameters
    ----------
    transport : SerialTransport
        The port, opened or not.
    laser_nm : float, default 785.0
        Excitation wavelength (modules do not report it over OBP).
    timeout : float, optional
        Seconds allowed for the module to start answering, on top of integration
        and transfer time (default 0.5).
    retries : int, default 3
        Extra attempts per request after a timeout, corruption or "not ready".
    reconnect_timeout : float, default 5.0
        Seconds to wait for a vanished port to come back.
    correct_nonlinearity : bool, default True
        Linearise counts with the module's non-linearity polynomial when it has one.
    md5 : bool, default True
        Send requests with an MD5 checksum (the module answers in kind).
    laser_power : float, optional
        Laser power as a fraction of full (0–1), set before each laser-on read when
        given; modules without that control keep their own setting.
    """

    def __init__(
        self,
        transport: SerialTransport,
        *,
        laser_nm: float = 785.0,
        timeout: float | None = None,
        retries: int = 3,
        reconnect_timeout: float = 5.0,
        correct_nonlinearity: bool = True,
        md5: bool = True,
        laser_power: float | None = None,
    ) -> None:
        if not (np.isfinite(laser_nm) and laser_nm > 0):
            raise ValueError(f"laser_nm must be positive, got {laser_nm}")
        if timeout is not None and not timeout > 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries}")
        if laser_power is not None and not 0.0 <= laser_power <= 1.0:
            raise ValueError(f"laser_power must lie in [0, 1], got {laser_power}")
        if reconnect_timeout < 0:
            raise ValueError(f"reconnect_timeout must be >= 0, got {reconnect_timeout}")
        self.transport = transport
        self.laser_nm = float(laser_nm)
        self.timeout = DEFAULT_TIMEOUT if timeout is None else float(timeout)
        self.retries = retries
        self.reconnect_timeout = reconnect_timeout
        self.correct_nonlinearity = correct_nonlinearity
        self.md5 = md5
        self.laser_power = laser_power
        self.stats = LinkStats()
        self._deframer = Deframer()
        self._regarding = 0
        self._epoch = 0  # bumped on every reconnect
        self._info: DeviceInfo | None = None
        self._device_averaging: bool | None = None  # None: not yet probed
        self._laser_control: bool | None = None

    @property
    def port(self) -> str:
        """The port path."""
        return self.transport.port

    # -- Spectrometer protocol ------------------------------------------------------

    def close(self) -> None:
        """Close the port; idempotent."""
        self.transport.close()

    def identify(self) -> DeviceInfo:
        """Serial number, model, firmware, pixel count and calibration (cached)."""
        if self._info is None:
            self._info = self._read_identity()
        return self._info

    def acquire(self, settings: AcquisitionSettings) -> Spectrum:
        """Configure, acquire (dark first when asked) and return a Raman spectrum.

        The laser is switched off again before returning, whatever happened.
        """
        info = self.identify()
        self.stats.last_transfer_s = self.stats.last_integration_s = 0.0
        self.stats.last_payload_bytes = 0
        for _ in range(3):  # a reconnect restarts from configuration, at most twice
            epoch = self._epoch
            try:
                raw, dark = self._acquire_raw(settings, info.pixel_count)
            finally:
                self._laser_off_best_effort()
            if self._epoch == epoch:
                break
        else:
            raise DeviceDisconnectedError(
                "port keeps disappearing during acquisition", port=self.port
            )
        start = time.perf_counter()
        spectrum = self._to_spectrum(info, settings, raw, dark)
        self.stats.last_processing_s = time.perf_counter() - start
        return spectrum

    # -- identity ---------------------------------------------------------------------

    def _read_identity(self) -> DeviceInfo:
        serial = unpack_text(self._query(MessageType.GET_SERIAL_NUMBER).payload)
        model = self._optional(
            lambda: unpack_text(self._query(MessageType.GET_DEVICE_STRING).payload)
        )
        fw = self._optional(lambda: self._value(MessageType.GET_FIRMWARE_REVISION))
        pixels = self._optional(lambda: self._query(MessageType.GET_NUMBER_OF_PIXELS).payload)
        pixel_count = _pixel_count(pixels) if pixels is not None else DEFAULT_PIXEL_COUNT
        n_wl = int(self._value(MessageType.GET_WL_COEFF_COUNT))
        wl = tuple(float(self._value(MessageType.GET_WL_COEFF, i)) for i in range(n_wl))
        n_nl = self._optional(lambda: int(self._value(MessageType.GET_NL_COEFF_COUNT)))
        nl = tuple(float(self._value(MessageType.GET_NL_COEFF, i)) for i in range(n_nl or 0))
        ranges = self._optional(
            lambda: unpack_pixel_ranges(
                self._query(MessageType.GET_ELECTRIC_DARK_PIXEL_RANGES).payload
            )
        )
        temperature = self._optional(lambda: float(self._value(MessageType.GET_TE_TEMPERATURE)))
        if not wl or not all(np.isfinite(wl)):
            raise DeviceError(
                f"module reports no usable wavelength calibration: {wl}", port=self.port
            )
        dark_pixels = sorted({p for a, b in (ranges or ()) for p in range(a, b) if p < pixel_count})
        extra: dict[str, Any] = {
            "nonlinearity_coeffs": list(nl),
            "electric_dark_pixels": dark_pixels,
            "baudrate": self.transport.baudrate,
        }
        if temperature is not None:
            extra["te_temperature_c"] = round(temperature, 2)
        return DeviceInfo(
            model=model or "OBP spectrometer",
            serial=serial,
            pixel_count=pixel_count,
            wavelength_coeffs=wl,
            laser_nm=self.laser_nm,
            firmware=None if fw is None else f"0x{int(fw):04X}",
            transport=f"serial:{self.port}",
            extra=extra,
        )

    @staticmethod
    def _optional(read: Any) -> Any:
        """Run ``read``; ``None`` when the module does not implement the message."""
        try:
            return read()
        except UnknownMessageTypeError:
            return None

    # -- acquisition --------------------------------------------------------------------

    def _acquire_raw(
        self, settings: AcquisitionSettings, pixel_count: int
    ) -> tuple[FloatArray, FloatArray | None]:
        itime_us = max(1, round(settings.integration_time_ms * 1000))
        self._command(MessageType.SET_TRIGGER_MODE, int(TriggerMode.NORMAL))
        self._command(MessageType.SET_INTEGRATION_TIME_US, itime_us)
        on_device = self._set_averages(settings.averages)
        per_read = settings.averages if on_device else 1
        reads = 1 if on_device else settings.averages
        dark = None
        if settings.dark_subtract:
            self._set_laser(False)
            dark = self._read_mean(pixel_count, itime_us, per_read, reads)
        self._set_laser(settings.laser)
        if settings.laser and self.laser_power is not None and self._laser_control:
            with contextlib.suppress(UnknownMessageTypeError):  # no power control: keep it
                self._command(MessageType.SET_LIGHT_SOURCE_INTENSITY, 0, 0, self.laser_power)
        raw = self._read_mean(pixel_count, itime_us, per_read, reads)
        return raw, dark

    def _set_averages(self, averages: int) -> bool:
        """Ask the module to average; False when it cannot (the host averages instead)."""
        if self._device_averaging is False:
            return False
        try:
            self._command(MessageType.SET_SCANS_TO_AVERAGE, averages)
        except UnknownMessageTypeError:
            self._device_averaging = False
            return False
        self._device_averaging = True
        return True

    def _set_laser(self, on: bool) -> None:
        if self._laser_control is False:
            return
        try:
            self._command(MessageType.SET_LIGHT_SOURCE_ENABLE, 0, 0, int(on))
        except UnknownMessageTypeError:
            self._laser_control = False  # laser driven outside the module
        else:
            self._laser_control = True

    def _laser_off_best_effort(self) -> None:
        if self._laser_control and self.transport.is_open:
            # Already failing perhaps: the original error (if any) is the one to report.
            with contextlib.suppress(DeviceError):
                self._command(
                    MessageType.SET_LIGHT_SOURCE_ENABLE, 0, 0, 0, retries=0, reconnect=False
                )

    def _read_mean(self, pixel_count: int, itime_us: int, per_read: int, reads: int) -> FloatArray:
        total = np.zeros(pixel_count, dtype=np.float64)
        frame_bytes = codec.MIN_FRAME_SIZE + 2 * pixel_count
        budget = itime_us * 1e-6 * per_read + 1.5 * self.transport.line_time(frame_bytes)
        for _ in range(reads):
            start = time.perf_counter()
            frame = self._query(MessageType.GET_RAW_SPECTRUM_NOW, timeout=self.timeout + budget)
            self.stats.last_transfer_s += time.perf_counter() - start
            self.stats.last_integration_s += itime_us * 1e-6 * per_read
            self.stats.last_payload_bytes += len(frame.payload)
            total += unpack_spectrum(frame.payload, pixel_count)
        return total / reads

    def _to_spectrum(
        self,
        info: DeviceInfo,
        settings: AcquisitionSettings,
        raw: FloatArray,
        dark: FloatArray | None,
    ) -> Spectrum:
        nl = info.extra.get("nonlinearity_coeffs") or []
        counts = _linearise(raw, nl) if self.correct_nonlinearity and nl else raw.copy()
        dark_pixels = np.asarray(info.extra.get("electric_dark_pixels") or [], dtype=np.intp)
        if dark is not None:
            counts -= _linearise(dark, nl) if self.correct_nonlinearity and nl else dark
        elif dark_pixels.size:
            counts -= float(np.mean(counts[dark_pixels]))  # electric dark offset only
        wavelengths = pixel_wavelengths(info.wavelength_coeffs, info.pixel_count)
        keep = wavelengths > self.laser_nm
        keep[dark_pixels] = False
        if np.count_nonzero(keep) < 16:
            raise DeviceError(
                f"calibration puts fewer than 16 pixels above the {self.laser_nm} nm laser line",
                port=self.port,
            )
        shift = raman_shift(wavelengths[keep], self.laser_nm)
        acquisition = Acquisition(
            device_model=info.model,
            device_serial=info.serial,
            firmware=info.firmware,
            laser_nm=self.laser_nm,
            integration_time_ms=settings.integration_time_ms,
            averages=settings.averages,
            timestamp=datetime.now(UTC),
        )
        return Spectrum(
            axis=shift,
            intensities=counts[keep],
            kind=SpectrumKind.RAMAN,
            name=f"{info.model} {info.serial}",
            acquisition=acquisition,
        )

    # -- exchanges ------------------------------------------------------------------------

    def _value(self, mtype: MessageType, *args: int | float) -> int | float:
        payload = pack_request(mtype, *args) if args else b""
        return unpack_reply(mtype, self._query(mtype, payload).payload)[0]

    def _query(
        self, mtype: MessageType, payload: bytes = b"", *, timeout: float | None = None
    ) -> Frame:
        return self._exchange(mtype, payload, ack=False, timeout=timeout)

    def _command(
        self,
        mtype: MessageType,
        *args: int | float,
        retries: int | None = None,
        reconnect: bool = True,
    ) -> None:
        self._exchange(
            mtype, pack_request(mtype, *args), ack=True, retries=retries, reconnect=reconnect
        )

    def _exchange(
        self,
        mtype: MessageType,
        payload: bytes,
        *,
        ack: bool,
        timeout: float | None = None,
        retries: int | None = None,
        reconnect: bool = True,
    ) -> Frame:
        """Send one request and return its reply, retrying within the bounds."""
        wait = self.timeout + self.transport.line_time(2 * codec.MIN_FRAME_SIZE + len(payload))
        wait = max(wait, timeout or 0.0)
        attempts = 1 + (self.retries if retries is None else retries)
        last: DeviceError | None = None
        for attempt in range(attempts):
            if attempt:
                self.stats.retries += 1
            self._regarding = self._regarding % 0xFFFF_FFFF + 1
            req = codec.request(mtype, payload, regarding=self._regarding, ack=ack, md5=self.md5)
            try:
                if not self.transport.is_open:
                    self._reconnect()
                return self._transact(req, wait)
            except DeviceNotReadyError as exc:
                self.stats.not_ready += 1
                last = exc
                time.sleep(min(0.02 * 2**attempt, 0.5))
            except BadChecksumError as exc:  # our request was damaged on the way
                self.stats.corrupted += 1
                last = exc
            except _CorruptedReplyError:
                self.stats.corrupted += 1
                last = DeviceTimeoutError(
                    f"reply to {mtype.name} arrived corrupted", port=self.port
                )
                self._resync()
            except DeviceTimeoutError as exc:
                self.stats.timeouts += 1
                last = exc
                self._resync()
            except DeviceDisconnectedError:
                if not reconnect:
                    raise
                self._reconnect()
                last = DeviceDisconnectedError(f"port lost during {mtype.name}", port=self.port)
        assert last is not None
        if isinstance(last, DeviceTimeoutError) and mtype == MessageType.GET_SERIAL_NUMBER:
            raise DeviceTimeoutError(
                f"no valid OBP reply after {attempts} attempts — is this an OBP device at "
                f"{self.transport.baudrate} baud?",
                port=self.port,
            )
        if isinstance(last, DeviceTimeoutError):
            raise DeviceTimeoutError(
                f"no valid reply to {mtype.name} after {attempts} attempts", port=self.port
            ) from last
        raise last

    def _transact(self, req: Frame, wait: float) -> Frame:
        self.stats.requests += 1
        self.transport.write(codec.encode(req))
        deadline = time.monotonic() + wait
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise DeviceTimeoutError(
                    f"no reply to 0x{req.message_type:08X} within {wait:.2f} s", port=self.port
                )
            chunk = self.transport.read(min(left, 0.25))
            if not chunk:
                continue
            self.stats.bytes_in += len(chunk)
            for event in self._deframer.feed(chunk):
                if isinstance(event, Rejected):
                    h = event.header
                    if h and h.message_type == req.message_type and h.regarding == req.regarding:
                        raise _CorruptedReplyError()
                    continue
                if event.message_type != req.message_type or event.regarding not in (
                    req.regarding,
                    0,  # a module that does not echo "regarding"
                ):
                    continue  # a stale reply to an earlier attempt
                return self._checked(event)

    def _checked(self, frame: Frame) -> Frame:
        if frame.flags & Flags.DEPRECATED:
            raise ProtocolDeprecatedError(
                "module says protocol 0x1100 is deprecated", port=self.port
            )
        if frame.flags & Flags.HW_EXCEPTION:
            raise HardwareExceptionError(frame.error, frame.message_type, port=self.port)
        if frame.is_nack:
            raise error_for_code(frame.error, frame.message_type, port=self.port)
        return frame

    def _resync(self) -> None:
        self._deframer.reset()
        if self.transport.is_open:
            self.transport.reset_input()

    def _reconnect(self) -> None:
        self.transport.close()
        self._deframer.reset()
        self._epoch += 1
        self.stats.reconnects += 1
        deadline = time.monotonic() + self.reconnect_timeout
        if not wait_for_port(self.transport, deadline):
            raise DeviceDisconnectedError(
                f"port vanished and did not come back within {self.reconnect_timeout:g} s",
                port=self.port,
            )


def _pixel_count(payload: bytes) -> int:
    """Pixel count from its reply: documented as uint16, some firmware sends uint32."""
    if len(payload) not in (2, 4):
        raise FrameError(f"GET_NUMBER_OF_PIXELS reply has {len(payload)} bytes, expected 2 or 4")
    count = int.from_bytes(payload, "little")
    if not 16 <= count <= 65536:
        raise FrameError(f"implausible pixel count {count}")
    return count


def _linearise(counts: FloatArray, coeffs: list[float]) -> FloatArray:
    """Counts divided by the non-linearity polynomial evaluated at the counts."""
    factor = np.polynomial.polynomial.polyval(counts, np.asarray(coeffs, dtype=np.float64))
    factor = np.where(np.abs(factor) < 1e-6, 1.0, factor)  # a degenerate polynomial: leave as is
    return np.asarray(counts / factor, dtype=np.float64)


def open_spectrometer(
    port: str,
    *,
    baudrate: int = 115_200,
    timeout: float | None = None,
    **opts: Any,
) -> ObpSpectrometer:
    """Open ``port`` and return the OBP driver (identity is read on first use).

    Parameters
    ----------
    port : str
        Serial device path.
    baudrate : int, default 115200
        Line rate.
    timeout : float, optional
        Module latency allowance per request, seconds (see :class:`ObpSpectrometer`).
    **opts
        ``laser_nm``, ``laser_power``, ``retries``, ``reconnect_timeout``,
        ``correct_nonlinearity``, ``md5`` (see :class:`ObpSpectrometer`).

    Raises
    ------
    DeviceNotFoundError, DeviceBusyError, DeviceError
        When the port cannot be opened.
    """
    transport = SerialTransport(port, baudrate)
    driver = ObpSpectrometer(transport, timeout=timeout, **opts)
    transport.open()
    return driver
