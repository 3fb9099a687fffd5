"""Pure codec for the Wasatch-style Raman Bluetooth LE GATT profile (no I/O).

Facts taken from Wasatch.PY (``wasatch/BLEDevice.py``, ``wasatch/EEPROM.py``):

- one primary service ``d1a7ff00-af78-4449-a34f-4da1afaf51bc``; its characteristics share
  the base UUID with the 16-bit code in the first group (``d1a7ff0a-…`` for GENERIC);
- GENERIC multiplexes low-rate settings: the host writes ``[seq][0xff × tier][opcode][payload]``
  (payload big-endian) and the device answers by notification ``[seq][error][payload]``;
- ACQUIRE takes a one-byte spectrum type; its notifications are status messages
  ``[0xff][0xff][status][payload…]``;
- SPECTRA notifications are ``[first pixel, big-endian u16][pixel counts, little-endian u16 …]``
  and must arrive in order, each starting where the previous one ended;
- BATTERY_STATE is ``[charging][percent][percent/256][battery °C][charger °C]``;
- the EEPROM is read through GENERIC in 64-byte pages; multi-byte fields are little-endian.

Every decoder raises :class:`device.errors.ProtocolError` (or :class:`TransferError`) on bytes
that cannot be a valid message, naming what was wrong.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from device.errors import ProtocolError, TransferError

U16Array = npt.NDArray[np.uint16]

# --- UUIDs ----------------------------------------------------------------------------------

_UUID_TAIL = "-af78-4449-a34f-4da1afaf51bc"


def characteristic_uuid(code: int) -> str:
    """Full lower-case UUID of the profile attribute with 16-bit ``code`` (e.g. ``0xff0a``)."""
    if not 0 <= code <= 0xFFFF:
        raise ValueError(f"characteristic code must be a 16-bit value, got {code}")
    return f"d1a7{code:04x}{_UUID_TAIL}"


class Char(enum.IntEnum):
    """The profile's characteristics, by their 16-bit code."""

    LASER_STATE = 0xFF03
    ACQUIRE = 0xFF04
    BATTERY_STATE = 0xFF09
    GENERIC = 0xFF0A
    SPECTRA = 0xFF0B

    @property
    def uuid(self) -> str:
        """Full lower-case UUID."""
        return characteristic_uuid(self.value)


SERVICE_UUID = characteristic_uuid(0xFF00)
DEVICE_INFORMATION_SERVICE_UUID = "0000180a-0000-1000-8000-00805f9b34fb"
#: Device Information characteristics the driver reads (Bluetooth SIG assigned numbers).
DIS_FIRMWARE_REVISION = "00002a26-0000-1000-8000-00805f9b34fb"
DIS_HARDWARE_REVISION = "00002a27-0000-1000-8000-00805f9b34fb"
DIS_SOFTWARE_REVISION = "00002a28-0000-1000-8000-00805f9b34fb"

#: The ATT minimum MTU; a notification carries at most MTU − 3 bytes of value.
ATT_DEFAULT_MTU = 23
ATT_NOTIFICATION_OVERHEAD = 3

# --- GENERIC --------------------------------------------------------------------------------

NEXT_TIER = 0xFF


class GenericError(enum.IntEnum):
    """Error byte of a GENERIC reply (``Generics.RESPONSE_ERRORS`` in Wasatch.PY)."""

    OK = 0
    NO_RESPONSE_FROM_HOST = 1
    FPGA_READ_FAILURE = 2
    INVALID_PARAMETER = 3
    UNSUPPORTED_COMMAND = 4


class ValueKind(enum.Enum):
    """How a GENERIC attribute's payload is serialised."""

    UINT = "uint"  # big-endian unsigned of ``size`` bytes
    FUNKY_FLOAT = "funky_float"  # [integer part][fraction × 256], as for gain in dB
    RAW = "raw"  # bytes as they come


@dataclass(frozen=True, slots=True)
class GenericAttribute:
    """One setting reachable through GENERIC: tier, set/get opcodes and payload size."""

    name: str
    tier: int
    setter: int | None
    getter: int | None
    size: int
    kind: ValueKind = ValueKind.UINT

    def encode_value(self, value: float | bytes) -> bytes:
        """Payload bytes for ``value``; raises ValueError if it does not fit."""
        if self.kind is ValueKind.RAW:
            if not isinstance(value, bytes | bytearray):
                raise ValueError(f"{self.name} takes raw bytes, got {value!r}")
            return bytes(value)
        if isinstance(value, bytes | bytearray):
            raise ValueError(f"{self.name} takes a number, got bytes")
        if self.kind is ValueKind.FUNKY_FLOAT:
            if not 0 <= value < 256:
                raise ValueError(f"{self.name} must lie in [0, 256), got {value}")
            whole = int(value)
            return bytes([whole, int((value - whole) * 256) & 0xFF])
        number = int(value)
        if number != value or not 0 <= number < 1 << (8 * self.size):
            raise ValueError(
                f"{self.name} must be an integer in [0, {(1 << (8 * self.size)) - 1}], got {value}"
            )
        return number.to_bytes(self.size, "big")

    def decode_value(self, payload: bytes) -> float | int | bytes:
        """Inverse of :meth:`encode_value` for a reply payload."""
        if self.kind is ValueKind.RAW:
            return bytes(payload)
        if self.kind is ValueKind.FUNKY_FLOAT:
            if len(payload) < 2:
                raise ProtocolError(f"{self.name} reply needs 2 bytes, got {payload.hex()}")
            return payload[0] + payload[1] / 256.0
        if not payload:
            raise ProtocolError(f"{self.name} reply carries no value")
        return int.from_bytes(payload, "big")


def _attr(
    name: str,
    tier: int,
    setter: int | None,
    getter: int | None,
    size: int,
    kind: ValueKind = ValueKind.UINT,
) -> GenericAttribute:
    return GenericAttribute(name, tier, setter, getter, size, kind)


#: The GENERIC attributes this driver uses (a subset of Wasatch.PY's table).
INTEGRATION_TIME_MS = _attr("INTEGRATION_TIME_MS", 0, 0xB2, 0xBF, 3)
GAIN_DB = _attr("GAIN_DB", 0, 0xB7, 0xC5, 2, ValueKind.FUNKY_FLOAT)
IMAGE_SENSOR_STATE = _attr("IMAGE_SENSOR_STATE", 0, None, 0x97, 1)
EEPROM_DATA = _attr("EEPROM_DATA", 1, None, 0x01, 64, ValueKind.RAW)
AMBIENT_TEMPERATURE_DEG_C = _attr("AMBIENT_TEMPERATURE_DEG_C", 1, None, 0x2A, 1)
SCANS_TO_AVERAGE = _attr("SCANS_TO_AVERAGE", 1, 0x62, 0x63, 2)

GENERIC_ATTRIBUTES: tuple[GenericAttribute, ...] = (
    INTEGRATION_TIME_MS,
    GAIN_DB,
    IMAGE_SENSOR_STATE,
    EEPROM_DATA,
    AMBIENT_TEMPERATURE_DEG_C,
    SCANS_TO_AVERAGE,
)


def _check_seq(seq: int) -> None:
    if not 0 <= seq <= 0xFF:
        raise ValueError(f"sequence number must be one byte, got {seq}")


def encode_generic_set(seq: int, attr: GenericAttribute, value: float | bytes) -> bytes:
    """GENERIC write that sets ``attr`` to ``value``."""
    _check_seq(seq)
    if attr.setter is None:
        raise ValueError(f"{attr.name} is read-only")
    return bytes([seq, *[NEXT_TIER] * attr.tier, attr.setter]) + attr.encode_value(value)


def encode_generic_get(seq: int, attr: GenericAttribute, args: bytes = b"") -> bytes:
    """GENERIC write that asks for ``attr`` (``args`` are request parameters, e.g. a page)."""
    _check_seq(seq)
    if attr.getter is None:
        raise ValueError(f"{attr.name} is write-only")
    return bytes([seq, *[NEXT_TIER] * attr.tier, attr.getter]) + bytes(args)


def encode_eeprom_request(seq: int, page: int, offset: int) -> bytes:
    """GENERIC read of EEPROM ``page`` (big-endian u16) from byte ``offset``."""
    if not 0 <= page <= 0xFFFF or not 0 <= offset < EEPROM_PAGE_SIZE:
        raise ValueError(f"bad EEPROM page/offset {page}/{offset}")
    return encode_generic_get(seq, EEPROM_DATA, page.to_bytes(2, "big") + bytes([offset]))


@dataclass(frozen=True, slots=True)
class GenericRequest:
    """A decoded GENERIC write, as the device sees it."""

    seq: int
    tier: int
    opcode: int
    payload: bytes


def decode_generic_request(data: bytes) -> GenericRequest:
    """Split a GENERIC write into sequence, tier, opcode and payload."""
    if len(data) < 2:
        raise ProtocolError(f"GENERIC request too short: {bytes(data).hex()}")
    tier = 0
    index = 1
    while index < len(data) and data[index] == NEXT_TIER:
        tier += 1
        index += 1
    if index >= len(data):
        raise ProtocolError(f"GENERIC request has no opcode: {bytes(data).hex()}")
    return GenericRequest(data[0], tier, data[index], bytes(data[index + 1 :]))


def find_generic_attribute(tier: int, opcode: int) -> tuple[GenericAttribute, bool] | None:
    """The attribute at (``tier``, ``opcode``) and whether the opcode is its setter."""
    for attr in GENERIC_ATTRIBUTES:
        if attr.tier != tier:
            continue
        if attr.setter == opcode:
            return attr, True
        if attr.getter == opcode:
            return attr, False
    return None


@dataclass(frozen=True, slots=True)
class GenericReply:
    """A decoded GENERIC notification."""

    seq: int
    error: int
    payload: bytes

    @property
    def error_name(self) -> str:
        """Documented name of the error byte (``UNKNOWN_0x..`` if undocumented)."""
        try:
            return GenericError(self.error).name
        except ValueError:
            return f"UNKNOWN_0x{self.error:02x}"


def encode_generic_reply(seq: int, error: int, payload: bytes = b"") -> bytes:
    """GENERIC notification ``[seq][error][payload]``."""
    _check_seq(seq)
    if not 0 <= error <= 0xFF:
        raise ValueError(f"error must be one byte, got {error}")
    return bytes([seq, error]) + bytes(payload)


def decode_generic_reply(data: bytes) -> GenericReply:
    """Parse a GENERIC notification."""
    if len(data) < 2:
        raise ProtocolError(f"GENERIC reply too short: {bytes(data).hex()}")
    return GenericReply(data[0], data[1], bytes(data[2:]))


# --- ACQUIRE --------------------------------------------------------------------------------

#: Spectrum types written to ACQUIRE (Wasatch.PY: 0 plain, 2 Auto-Raman).
ACQUIRE_PLAIN = 0
ACQUIRE_AUTO_RAMAN = 2
STATUS_MARKER = b"\xff\xff"


class AcquireStatus(enum.IntEnum):
    """Status codes of ACQUIRE notifications (``ACQUIRE_STATUS_CODES`` in Wasatch.PY)."""

    NAK = 0
    ERR_BATT_SOC_INFO_NOT_RCVD = 1
    ERR_BATT_SOC_TOO_LOW = 2
    ERR_LASER_DIS_FLR = 3
    ERR_LASER_ENA_FLR = 4
    ERR_IMG_SNSR_IN_BAD_STATE = 5
    ERR_IMG_SNSR_STATE_TRANS_FLR = 6
    ERR_SPEC_ACQ_SIG_WAIT_TMO = 7
    ERR_INTERLOCK_OPEN = 8
    ERR_RESERVED = 9
    ERR_BAD_MSG_FROM_STM32 = 10
    ERR_AUTO_RAMAN_IN_PROG = 11
    ERR_SEG_TX_FLR = 12
    ERR_FPGA_READ_FLR = 13
    ERR_FPGA_UPDATE_FLR = 14
    AUTO_OPT_TARGET_RATIO = 32
    TAKING_DARK = 33
    LASER_WARNING_DELAY = 34
    LASER_WARMUP = 35
    TAKING_RAMAN = 36


@dataclass(frozen=True, slots=True)
class AcquireStatusMessage:
    """One ACQUIRE notification."""

    code: int
    payload: bytes

    @property
    def name(self) -> str:
        """Documented name of the status code."""
        try:
            return AcquireStatus(self.code).name
        except ValueError:
            return f"UNKNOWN_0x{self.code:02x}"

    @property
    def is_error(self) -> bool:
        """Codes 1–31 abort the acquisition; 0 (not ready) and 32+ (progress) do not."""
        return 1 <= self.code < 32

    @property
    def progress(self) -> tuple[int, int] | None:
        """(current step, total steps) for TAKING_DARK…TAKING_RAMAN, else None."""
        if self.code in (33, 34, 35, 36) and len(self.payload) >= 4:
            return (
                int.from_bytes(self.payload[0:2], "big"),
                int.from_bytes(self.payload[2:4], "big"),
            )
        return None


def encode_acquire_status(code: int, payload: bytes = b"") -> bytes:
    """ACQUIRE notification ``[0xff][0xff][code][payload]``."""
    if not 0 <= code <= 0xFF:
        raise ValueError(f"status code must be one byte, got {code}")
    return STATUS_MARKER + bytes([code]) + bytes(payload)


def decode_acquire_status(data: bytes) -> AcquireStatusMessage:
    """Parse an ACQUIRE notification (3 bytes at least, starting 0xffff)."""
    if len(data) < 3:
        raise ProtocolError(f"ACQUIRE notification too short: {bytes(data).hex()}")
    if bytes(data[:2]) != STATUS_MARKER:
        raise ProtocolError(f"ACQUIRE notification lacks the 0xffff marker: {bytes(data).hex()}")
    return AcquireStatusMessage(data[2], bytes(data[3:]))


def acquisition_timeout_s(
    integration_time_ms: float,
    averages: int,
    previous_integration_time_ms: float = 0.0,
    latency_s: float = 6.0,
) -> float:
    """How long to wait for a whole spectrum, after Wasatch.PY's rule.

    Parameters
    ----------
    integration_time_ms : float
        Integration time of this acquisition, ms; positive.
    averages : int
        Scans the firmware averages; at least 1.
    previous_integration_time_ms : float, default 0.0
        Integration time in force before (the sensor may still finish a frame at it).
    latency_s : float, default 6.0
        Fixed allowance, s (upstream: 4 s of firmware latency and 2 s of margin).

    Returns
    -------
    float
        ``4 × max(integration, previous) × averages / 1000 + latency_s`` seconds.
    """
    if integration_time_ms <= 0 or averages < 1 or latency_s < 0:
        raise ValueError("integration time and averages must be positive, latency >= 0")
    longest = max(integration_time_ms, previous_integration_time_ms)
    return 4.0 * longest * averages / 1000.0 + latency_s


# --- SPECTRA --------------------------------------------------------------------------------

SPECTRA_HEADER = 2
#: A first-pixel of 0xffff marks a status message, never spectral data.
_STATUS_PIXEL = 0xFFFF


def pixels_per_packet(mtu: int) -> int:
    """Pixels that fit in one SPECTRA notification at ATT ``mtu``."""
    if mtu < ATT_DEFAULT_MTU:
        raise ValueError(f"ATT MTU is at least {ATT_DEFAULT_MTU}, got {mtu}")
    return (mtu - ATT_NOTIFICATION_OVERHEAD - SPECTRA_HEADER) // 2


def packet_count(pixel_count: int, mtu: int) -> int:
    """Notifications needed for a ``pixel_count`` spectrum at ``mtu`` (theoretical minimum)."""
    if pixel_count < 1:
        raise ValueError(f"pixel_count must be positive, got {pixel_count}")
    per = pixels_per_packet(mtu)
    return -(-pixel_count // per)


def encode_spectra_packet(first_pixel: int, counts: Sequence[int] | U16Array) -> bytes:
    """One SPECTRA notification: big-endian first pixel, then little-endian u16 counts."""
    if not 0 <= first_pixel < _STATUS_PIXEL:
        raise ValueError(f"first pixel out of range: {first_pixel}")
    values = np.asarray(counts)
    if values.size and (values.min() < 0 or values.max() > 0xFFFF):
        raise ValueError("counts must fit in an unsigned 16-bit integer")
    return first_pixel.to_bytes(2, "big") + values.astype("<u2").tobytes()


def decode_spectra_packet(data: bytes) -> tuple[int, U16Array]:
    """Parse a SPECTRA notification into (first pixel, counts)."""
    if len(data) < SPECTRA_HEADER + 2 or len(data) % 2:
        raise TransferError(
            f"malformed SPECTRA packet of {len(data)} bytes (need an even count >= 4)",
            kind="malformed",
            expected=SPECTRA_HEADER + 2,
            got=len(data),
        )
    first = int.from_bytes(data[:2], "big")
    if first == _STATUS_PIXEL:
        raise TransferError(
            "status message on the SPECTRA characteristic (API6 framing)",
            kind="malformed",
            expected=0,
            got=first,
        )
    counts = np.frombuffer(bytes(data[SPECTRA_HEADER:]), dtype="<u2").astype(np.uint16)
    return first, counts


class SpectrumReassembler:
    """Collects SPECTRA packets into one spectrum, refusing anything out of order.

    Each packet must start at the pixel where the previous one ended: a later start
    means packets went missing, an earlier one a duplicate or reordering.
    """

    def __init__(self, pixel_count: int) -> None:
        if pixel_count < 1:
            raise ValueError(f"pixel_count must be positive, got {pixel_count}")
        self.pixel_count = pixel_count
        self._counts = np.zeros(pixel_count, dtype=np.uint16)
        self._next = 0
        self.packets = 0

    @property
    def received(self) -> int:
        """Pixels received so far."""
        return self._next

    @property
    def complete(self) -> bool:
        """True once every pixel has arrived."""
        return self._next >= self.pixel_count

    def feed(self, data: bytes) -> bool:
        """Add one notification; returns :attr:`complete`. Raises TransferError on a gap."""
        first, counts = decode_spectra_packet(data)
        if self.complete:
            raise TransferError(
                f"extra SPECTRA packet at pixel {first} after a complete spectrum",
                kind="duplicate",
                expected=self.pixel_count,
                got=first,
            )
        if first != self._next:
            kind = "missing" if first > self._next else "duplicate"
            raise TransferError(
                f"SPECTRA packet starts at pixel {first}, expected {self._next} ({kind} packets)",
                kind=kind,
                expected=self._next,
                got=first,
            )
        take = min(counts.size, self.pixel_count - self._next)
        if take < counts.size:
            raise TransferError(
                f"SPECTRA packet overruns the detector: {counts.size} pixels at {first} "
                f"of {self.pixel_count}",
                kind="malformed",
                expected=self.pixel_count - self._next,
                got=int(counts.size),
            )
        self._counts[self._next : self._next + take] = counts
        self._next += take
        self.packets += 1
        return self.complete

    def counts(self) -> U16Array:
        """The whole spectrum; raises TransferError if it is not complete."""
        if not self.complete:
            raise TransferError(
                f"spectrum incomplete: {self._next} of {self.pixel_count} pixels",
                kind="missing",
                expected=self.pixel_count,
                got=self._next,
            )
        return self._counts.copy()


# --- BATTERY_STATE and LASER_STATE ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BatteryState:
    """Decoded BATTERY_STATE."""

    charging: bool
    percent: float
    temperature_c: int
    charger_temperature_c: int


def encode_battery_state(state: BatteryState) -> bytes:
    """Five bytes: charging, percent (integer), fraction × 256, battery °C, charger °C."""
    if not 0 <= state.percent <= 100:
        raise ValueError(f"battery percent must lie in [0, 100], got {state.percent}")
    whole = int(state.percent)
    return bytes(
        [
            1 if state.charging else 0,
            whole,
            round((state.percent - whole) * 256) & 0xFF,
            state.temperature_c & 0xFF,
            state.charger_temperature_c & 0xFF,
        ]
    )


def decode_battery_state(data: bytes) -> BatteryState:
    """Parse BATTERY_STATE (5 bytes at least)."""
    if len(data) < 5:
        raise ProtocolError(f"BATTERY_STATE needs 5 bytes, got {bytes(data).hex()}")
    percent = data[1] + data[2] / 256.0
    if percent > 100.5:
        raise ProtocolError(f"BATTERY_STATE reports {percent:.1f} %")
    return BatteryState(data[0] != 0, percent, data[3], data[4])


#: Byte meaning "leave unchanged" in a LASER_STATE write.
LASER_NO_CHANGE = 0xFF


def encode_laser_enable(enable: bool) -> bytes:
    """LASER_STATE write that only changes the enable flag (as Wasatch.PY sends it)."""
    return bytes(
        [LASER_NO_CHANGE, LASER_NO_CHANGE, 1 if enable else 0, LASER_NO_CHANGE, 0x00, 0x00]
    )


@dataclass(frozen=True, slots=True)
class LaserState:
    """Decoded LASER_STATE read."""

    mode: int
    laser_type: int
    enabled: bool
    watchdog_s: int
    can_fire: bool = False
    is_firing: bool = False
    pwm_percent: int | None = None


def encode_laser_state(state: LaserState) -> bytes:
    """Nine bytes: mode, type, enable, watchdog (BE u16), 2 reserved, flags, PWM %."""
    flags = (1 if state.can_fire else 0) | (2 if state.is_firing else 0)
    return (
        bytes([state.mode & 0xFF, state.laser_type & 0xFF, 1 if state.enabled else 0])
        + state.watchdog_s.to_bytes(2, "big")
        + bytes([0, 0, flags, (state.pwm_percent or 0)])
    )


def decode_laser_state(data: bytes) -> LaserState:
    """Parse LASER_STATE (7 bytes at least; flags and PWM when present)."""
    if len(data) < 7:
        raise ProtocolError(f"LASER_STATE needs 7 bytes, got {bytes(data).hex()}")
    flags = data[7] if len(data) >= 8 else 0
    return LaserState(
        mode=data[0],
        laser_type=data[1],
        enabled=data[2] != 0,
        watchdog_s=int.from_bytes(data[3:5], "big"),
        can_fire=bool(flags & 0x01),
        is_firing=bool(flags & 0x02),
        pwm_percent=data[8] if len(data) >= 9 else None,
    )


# --- EEPROM ---------------------------------------------------------------------------------

EEPROM_PAGE_SIZE = 64
#: Pages this driver reads: identity (0), wavecal (1), detector (2), laser (3).
EEPROM_PAGES_USED = 4
EEPROM_PAGE_COUNT = 8


@dataclass(frozen=True, slots=True)
class EepromInfo:
    """The EEPROM fields this driver needs (offsets as in Wasatch.PY ``EEPROM.read_eeprom``)."""

    model: str
    serial: str
    wavelength_coeffs: tuple[float, ...]  # 5 coefficients, constant term first
    active_pixels_horizontal: int
    excitation_nm: float
    startup_integration_time_ms: int = 100
    min_integration_time_ms: int = 1
    max_integration_time_ms: int = 60_000
    detector: str = ""
    has_battery: bool = True
    has_laser: bool = True
    format: int = 15


# (page, offset, struct format) — little-endian, as the instrument's MCU stores them.
_FIELDS: dict[str, tuple[int, int, str]] = {
    "model": (0, 0, "16s"),
    "serial": (0, 16, "16s"),
    "has_battery": (0, 37, "<?"),
    "has_laser": (0, 38, "<?"),
    "startup_integration_time_ms": (0, 43, "<H"),
    "format": (0, 63, "<B"),
    "coeff0": (1, 0, "<f"),
    "coeff1": (1, 4, "<f"),
    "coeff2": (1, 8, "<f"),
    "coeff3": (1, 12, "<f"),
    "detector": (2, 0, "16s"),
    "active_pixels_horizontal": (2, 16, "<H"),
    "coeff4": (2, 21, "<f"),
    "excitation_nm": (3, 36, "<f"),
    "min_integration_time_ms": (3, 40, "<I"),
    "max_integration_time_ms": (3, 44, "<I"),
}

#: Oldest EEPROM format whose excitation (float) and 5th coefficient sit where we read them.
MIN_EEPROM_FORMAT = 8


def _text(raw: bytes) -> str:
    # Strings are NUL-padded ASCII; upstream stops at the first NUL.
    return raw.split(b"\x00", 1)[0].decode("ascii", errors="replace").strip()


def parse_eeprom(pages: Sequence[bytes]) -> EepromInfo:
    """Decode pages 0–3 of the EEPROM.

    Raises
    ------
    ProtocolError
        When a page is missing or short, the format is too old, or the calibration
        is not usable (no pixels, a non-positive or non-finite excitation or coefficient).
    """
    if len(pages) < EEPROM_PAGES_USED:
        raise ProtocolError(f"EEPROM needs {EEPROM_PAGES_USED} pages, got {len(pages)}")
    for index, page in enumerate(pages[:EEPROM_PAGES_USED]):
        if len(page) < EEPROM_PAGE_SIZE:
            raise ProtocolError(f"EEPROM page {index} has {len(page)} bytes, not 64")

    def number(name: str) -> float:
        page, offset, fmt = _FIELDS[name]
        value: float = struct.unpack_from(fmt, pages[page], offset)[0]
        return value

    def text(name: str) -> str:
        page, offset, fmt = _FIELDS[name]
        raw: bytes = struct.unpack_from(fmt, pages[page], offset)[0]
        return _text(raw)

    fmt_version = int(number("format"))
    if fmt_version < MIN_EEPROM_FORMAT or fmt_version == 0xFF:
        raise ProtocolError(f"EEPROM format {fmt_version} is not supported (need >= 8)")
    coeffs = tuple(float(number(f"coeff{i}")) for i in range(5))
    pixels = int(number("active_pixels_horizontal"))
    excitation = float(number("excitation_nm"))
    if pixels < 1:
        raise ProtocolError("EEPROM reports no active pixels")
    if not np.all(np.isfinite(coeffs)) or coeffs[0] <= 0:
        raise ProtocolError(f"EEPROM wavelength calibration is unusable: {coeffs}")
    if not (np.isfinite(excitation) and excitation > 0):
        raise ProtocolError(f"EEPROM excitation wavelength is unusable: {excitation}")
    return EepromInfo(
        model=text("model"),
        serial=text("serial"),
        wavelength_coeffs=coeffs,
        active_pixels_horizontal=pixels,
        excitation_nm=excitation,
        startup_integration_time_ms=int(number("startup_integration_time_ms")),
        min_integration_time_ms=int(number("min_integration_time_ms")),
        max_integration_time_ms=int(number("max_integration_time_ms")),
        detector=text("detector"),
        has_battery=bool(number("has_battery")),
        has_laser=bool(number("has_laser")),
        format=fmt_version,
    )


def build_eeprom(info: EepromInfo) -> list[bytes]:
    """The eight 64-byte pages that :func:`parse_eeprom` reads back as ``info``."""
    if len(info.wavelength_coeffs) != 5:
        raise ValueError("exactly 5 wavelength coefficients are stored")
    pages = [bytearray(EEPROM_PAGE_SIZE) for _ in range(EEPROM_PAGE_COUNT)]
    values: dict[str, object] = {
        "model": info.model.encode("ascii")[:16],
        "serial": info.serial.encode("ascii")[:16],
        "has_battery": info.has_battery,
        "has_laser": info.has_laser,
        "startup_integration_time_ms": info.startup_integration_time_ms,
        "format": info.format,
        "detector": info.detector.encode("ascii")[:16],
        "active_pixels_horizontal": info.active_pixels_horizontal,
        "excitation_nm": info.excitation_nm,
        "min_integration_time_ms": info.min_integration_time_ms,
        "max_integration_time_ms": info.max_integration_time_ms,
    }
    values.update({f"coeff{i}": c for i, c in enumerate(info.wavelength_coeffs)})
    for name, value in values.items():
        page, offset, fmt = _FIELDS[name]
        struct.pack_into(fmt, pages[page], offset, value)
    return [bytes(p) for p in pages]
