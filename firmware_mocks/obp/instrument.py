"""The emulated STS-class Raman module: its state, its answers, and the light it sees.

:class:`EmulatedModule` is transport-free: a request :class:`~device.obp.codec.Frame`
in, a :class:`Response` (reply frame and how long the module takes) out. It
answers as the protocol says: data or ACK, NACK 2 for an unknown message, 3 for
a request that failed its checksum, 5 for a wrong payload length, 6 for an
out-of-range value, and 7 while "not ready".
"""

from __future__ import annotations

import struct
import threading
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from device.calibration import pixel_wavelengths, raman_shift
from device.obp import codec
from device.obp.codec import Flags, Frame, Header
from device.obp.errors import ErrorCode
from device.obp.messages import (
    MESSAGES,
    MessageType,
    pack_pixel_ranges,
    pack_spectrum,
    pack_text,
)
from spectra.spectrum import Spectrum

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class ModuleSpec:
    """What is burnt into the module: identity, calibration, detector physics."""

    model: str = "STS-R785"
    serial: str = "S06512"
    firmware: int = 0x0105
    hardware: int = 3
    pixel_count: int = 1024
    # About 790–998 nm over 1024 pixels: a 785 nm Raman module out to ~2700 cm⁻¹.
    wavelength_coeffs: tuple[float, ...] = (789.5, 0.2152, -1.05e-5, 1.5e-10)
    # Linearising polynomial in measured counts: corrected = m / (1 − 2e-6·m).
    nonlinearity_coeffs: tuple[float, ...] = (1.0, -2.0e-6)
    electric_dark_ranges: tuple[tuple[int, int], ...] = ()
    max_count: int = 16383  # 14-bit ADC
    min_integration_us: int = 10
    max_integration_us: int = 85_000_000
    laser_nm: float = 785.0
    offset_counts: float = 1500.0  # ADC baseline
    dark_rate: float = 0.8  # dark current, counts per ms
    read_noise: float = 6.0  # counts rms
    raman_rate: float = 60.0  # counts per ms at the sample's tallest band, laser on
    fluorescence_rate: float = 12.0  # counts per ms at the background's peak, laser on
    te_temperature_c: float = -10.0


@dataclass(frozen=True, slots=True)
class Response:
    """A reply frame (``None``: no reply is due) and the module's processing time."""

    frame: Frame | None
    delay_s: float = 0.0


@dataclass
class ModuleState:
    """What the host can change."""

    integration_us: int = 100_000
    scans_to_average: int = 1
    trigger_mode: int = 0
    laser_on: bool = False
    laser_power: float = 1.0
    not_ready: int = 0  # NACK 7 for the next N requests
    extra_state: dict[str, float] = field(default_factory=dict)


class EmulatedModule:
    """An OBP Raman module looking at ``sample``.

    Parameters
    ----------
    sample : Spectrum
        What the module sees, on a Raman-shift axis; rendered onto the pixels
        through the module's wavelength calibration and laser line.
    spec : ModuleSpec, optional
        Identity, calibration and detector physics.
    seed : int, optional
        Seed of the noise generator (repeatable runs).
    """

    def __init__(
        self, sample: Spectrum, spec: ModuleSpec | None = None, *, seed: int | None = None
    ) -> None:
        self.spec = spec or ModuleSpec()
        self.state = ModuleState()
        self._rng = np.random.default_rng(seed)
        self._lock = threading.Lock()
        self.wavelengths = pixel_wavelengths(self.spec.wavelength_coeffs, self.spec.pixel_count)
        # A fixed pixel-to-pixel offset pattern, as every real detector has.
        self._pattern = np.random.default_rng(1234).normal(0.0, 3.0, self.spec.pixel_count)
        self._fluorescence = np.exp(-0.5 * ((self.wavelengths - 900.0) / 120.0) ** 2)
        self.sample = sample
        self.requests_seen = 0

    # -- the sample ------------------------------------------------------------------

    @property
    def sample(self) -> Spectrum:
        """The spectrum in front of the module."""
        return self._sample

    @sample.setter
    def sample(self, spectrum: Spectrum) -> None:
        with self._lock:
            self._sample = spectrum
            self._sample_on_pixels = self._render(spectrum)

    def _render(self, spectrum: Spectrum) -> FloatArray:
        """The sample's intensities at each pixel's Raman shift, tallest point 1, 0 outside."""
        shifts = np.full(self.spec.pixel_count, -1.0)
        above = self.wavelengths > self.spec.laser_nm
        shifts[above] = raman_shift(self.wavelengths[above], self.spec.laser_nm)
        values: FloatArray = np.interp(
            shifts, spectrum.axis, spectrum.intensities, left=0.0, right=0.0
        )
        values = np.clip(values, 0.0, None)
        peak = float(values.max())
        return values / peak if peak > 0 else values

    def expected_counts(self, laser_on: bool | None = None) -> FloatArray:
        """Mean counts per pixel for one read at the current settings, before noise."""
        spec = self.spec
        t_ms = self.state.integration_us / 1000.0
        on = self.state.laser_on if laser_on is None else laser_on
        light = np.zeros(spec.pixel_count)
        if on:
            power = self.state.laser_power
            light = (
                power
                * t_ms
                * (
                    spec.raman_rate * self._sample_on_pixels
                    + spec.fluorescence_rate * self._fluorescence
                )
            )
        return spec.offset_counts + self._pattern + spec.dark_rate * t_ms + light

    def read_spectrum(self) -> npt.NDArray[np.uint16]:
        """One (averaged) raw spectrum: shot and read noise, non-linearity, 14-bit saturation."""
        spec = self.spec
        with self._lock:
            mean = self.expected_counts()
            n = self.state.scans_to_average
            electrons = np.clip(mean - spec.offset_counts - self._pattern, 0.0, None)
            total = np.zeros(spec.pixel_count)
            for _ in range(n):
                noisy = (
                    self._rng.poisson(electrons)
                    + spec.offset_counts
                    + self._pattern
                    + self._rng.normal(0.0, spec.read_noise, spec.pixel_count)
                )
                k = -spec.nonlinearity_coeffs[1] if len(spec.nonlinearity_coeffs) > 1 else 0.0
                measured = noisy / (1.0 + k * np.clip(noisy, 0.0, None))
                total += np.clip(np.rint(measured), 0, spec.max_count)
        return np.rint(total / n).astype(np.uint16)

    # -- the protocol ----------------------------------------------------------------

    def handle(self, req: Frame) -> Response:
        """Answer one decoded request."""
        self.requests_seen += 1
        want_reply = True
        message = MESSAGES.get(req.message_type)  # type: ignore[call-overload]
        if message is None:
            return self._nack(req, ErrorCode.UNKNOWN_MESSAGE_TYPE)
        if message.request_size is not None and len(req.payload) != message.request_size:
            return self._nack(req, ErrorCode.PAYLOAD_LENGTH_MISMATCH)
        if self.state.not_ready > 0:
            self.state.not_ready -= 1
            return self._nack(req, ErrorCode.DEVICE_NOT_READY)
        values = struct.unpack(message.request, req.payload) if message.request else ()
        is_command = message.reply == ""
        want_reply = not is_command or bool(req.flags & Flags.REQUEST_ACK)
        try:
            payload, delay = self._dispatch(MessageType(req.message_type), values)
        except _Invalid:
            return self._nack(req, ErrorCode.PAYLOAD_INVALID)
        if not want_reply:
            return Response(None, delay)
        return Response(codec.reply(req, payload, ack=is_command), delay)

    def reject(self, header: Header) -> Response:
        """Answer a request whose header was sound but whose checksum or footer failed."""
        req = Frame(
            message_type=header.message_type,
            regarding=header.regarding,
            checksum_type=codec.ChecksumType(header.checksum_type),
        )
        return self._nack(req, ErrorCode.BAD_CHECKSUM)

    def _nack(self, req: Frame, code: ErrorCode) -> Response:
        return Response(codec.reply(req, error=int(code)))

    def _dispatch(self, mtype: MessageType, values: tuple[int | float, ...]) -> tuple[bytes, float]:
        spec, state = self.spec, self.state
        match mtype:
            case MessageType.GET_HARDWARE_REVISION:
                return struct.pack("<B", spec.hardware), 0.0
            case MessageType.GET_FIRMWARE_REVISION:
                return struct.pack("<H", spec.firmware), 0.0
            case MessageType.GET_SERIAL_NUMBER:
                return pack_text(spec.serial), 0.0
            case MessageType.GET_SERIAL_NUMBER_LENGTH:
                return struct.pack("<B", len(spec.serial)), 0.0
            case MessageType.GET_DEVICE_STRING:
                return pack_text(spec.model), 0.0
            case MessageType.GET_RAW_SPECTRUM_NOW:
                delay = state.integration_us * 1e-6 * state.scans_to_average
                return pack_spectrum(self.read_spectrum()), delay
            case MessageType.GET_INTEGRATION_TIME_US:
                return struct.pack("<I", state.integration_us), 0.0
            case MessageType.GET_MIN_INTEGRATION_TIME_US:
                return struct.pack("<I", spec.min_integration_us), 0.0
            case MessageType.SET_INTEGRATION_TIME_US:
                us = int(values[0])
                _require(spec.min_integration_us <= us <= spec.max_integration_us)
                state.integration_us = us
            case MessageType.SET_TRIGGER_MODE:
                _require(int(values[0]) in (0, 1, 2, 3))
                state.trigger_mode = int(values[0])
            case MessageType.GET_NUMBER_OF_PIXELS:
                return struct.pack("<H", spec.pixel_count), 0.0
            case MessageType.GET_ELECTRIC_DARK_PIXEL_RANGES:
                return pack_pixel_ranges(spec.electric_dark_ranges), 0.0
            case MessageType.SET_SCANS_TO_AVERAGE:
                _require(1 <= int(values[0]) <= 5000)
                state.scans_to_average = int(values[0])
            case MessageType.GET_WL_COEFF_COUNT:
                return struct.pack("<B", len(spec.wavelength_coeffs)), 0.0
            case MessageType.GET_WL_COEFF:
                _require(int(values[0]) < len(spec.wavelength_coeffs))
                return struct.pack("<f", spec.wavelength_coeffs[int(values[0])]), 0.0
            case MessageType.GET_NL_COEFF_COUNT:
                return struct.pack("<B", len(spec.nonlinearity_coeffs)), 0.0
            case MessageType.GET_NL_COEFF:
                _require(int(values[0]) < len(spec.nonlinearity_coeffs))
                return struct.pack("<f", spec.nonlinearity_coeffs[int(values[0])]), 0.0
            case MessageType.GET_TE_TEMPERATURE:
                return struct.pack("<f", spec.te_temperature_c), 0.0
            case MessageType.GET_LIGHT_SOURCE_ENABLE:
                _require(values[:2] == (0, 0))
                return struct.pack("<B", int(state.laser_on)), 0.0
            case MessageType.SET_LIGHT_SOURCE_ENABLE:
                _require(values[:2] == (0, 0) and values[2] in (0, 1))
                state.laser_on = bool(values[2])
            case MessageType.SET_LIGHT_SOURCE_INTENSITY:
                _require(values[:2] == (0, 0) and 0.0 <= float(values[2]) <= 1.0)
                state.laser_power = float(values[2])
        return b"", 0.0


class _Invalid(Exception):  # noqa: N818 - private signal, never escapes handle()
    """A request value out of range: NACK 6."""


def _require(ok: bool) -> None:
    if not ok:
        raise _Invalid
