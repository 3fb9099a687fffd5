"""OBP message types a Raman module needs, with the layout of their payloads.

Numbers and layouts are those of Ocean Insight's OBP documentation (as also used
by SeaBreeze). Each :class:`Message` names its request and reply payloads as
``struct`` formats; ``None`` marks a variable-length payload handled by the
helpers below. Both the driver and the firmware mock use this one table; the
byte-literal tests pin it to the documentation so they cannot share a mistake.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from device.obp.errors import FrameError


class MessageType(enum.IntEnum):
    """Message type numbers."""

    GET_HARDWARE_REVISION = 0x0000_0080
    GET_FIRMWARE_REVISION = 0x0000_0090
    GET_SERIAL_NUMBER = 0x0000_0100
    GET_SERIAL_NUMBER_LENGTH = 0x0000_0101
    GET_DEVICE_STRING = 0x0000_0E11  # "original device string": the model name
    GET_RAW_SPECTRUM_NOW = 0x0010_1100
    GET_INTEGRATION_TIME_US = 0x0011_0000
    GET_MIN_INTEGRATION_TIME_US = 0x0011_0001
    SET_INTEGRATION_TIME_US = 0x0011_0010
    SET_TRIGGER_MODE = 0x0011_0110
    GET_NUMBER_OF_PIXELS = 0x0011_0220
    GET_ELECTRIC_DARK_PIXEL_RANGES = 0x0011_0223
    SET_SCANS_TO_AVERAGE = 0x0012_0010
    GET_WL_COEFF_COUNT = 0x0018_0100
    GET_WL_COEFF = 0x0018_0101
    GET_NL_COEFF_COUNT = 0x0018_1100
    GET_NL_COEFF = 0x0018_1101
    GET_TE_TEMPERATURE = 0x0042_0004
    GET_LIGHT_SOURCE_ENABLE = 0x0081_0021
    SET_LIGHT_SOURCE_ENABLE = 0x0081_0031
    SET_LIGHT_SOURCE_INTENSITY = 0x0081_0051


@dataclass(frozen=True, slots=True)
class Message:
    """Payload layouts of one message type; ``None`` means variable length."""

    type: MessageType
    request: str | None
    reply: str | None

    @property
    def request_size(self) -> int | None:
        """Bytes the request payload must have (``None``: variable)."""
        return None if self.request is None else struct.calcsize(self.request)


#: Request and reply payload formats. An empty reply format marks a command
#: (the device answers with ACK when asked to).
MESSAGES: dict[MessageType, Message] = {
    m.type: m
    for m in (
        Message(MessageType.GET_HARDWARE_REVISION, "", "<B"),
        Message(MessageType.GET_FIRMWARE_REVISION, "", "<H"),
        Message(MessageType.GET_SERIAL_NUMBER, "", None),  # ASCII, NUL padded
        Message(MessageType.GET_SERIAL_NUMBER_LENGTH, "", "<B"),
        Message(MessageType.GET_DEVICE_STRING, "", None),  # ASCII, NUL padded
        Message(MessageType.GET_RAW_SPECTRUM_NOW, "", None),  # pixel_count × uint16
        Message(MessageType.GET_INTEGRATION_TIME_US, "", "<I"),
        Message(MessageType.GET_MIN_INTEGRATION_TIME_US, "", "<I"),
        Message(MessageType.SET_INTEGRATION_TIME_US, "<I", ""),
        Message(MessageType.SET_TRIGGER_MODE, "<B", ""),
        Message(MessageType.GET_NUMBER_OF_PIXELS, "", "<H"),
        Message(MessageType.GET_ELECTRIC_DARK_PIXEL_RANGES, "", None),  # uint32 pairs
        Message(MessageType.SET_SCANS_TO_AVERAGE, "<H", ""),
        Message(MessageType.GET_WL_COEFF_COUNT, "", "<B"),
        Message(MessageType.GET_WL_COEFF, "<B", "<f"),
        Message(MessageType.GET_NL_COEFF_COUNT, "", "<B"),
        Message(MessageType.GET_NL_COEFF, "<B", "<f"),
        Message(MessageType.GET_TE_TEMPERATURE, "", "<f"),
        Message(MessageType.GET_LIGHT_SOURCE_ENABLE, "<BB", "<B"),  # module, source
        Message(MessageType.SET_LIGHT_SOURCE_ENABLE, "<BBB", ""),  # module, source, on
        Message(MessageType.SET_LIGHT_SOURCE_INTENSITY, "<BBf", ""),  # module, source, 0..1
    )
}


class TriggerMode(enum.IntEnum):
    """Trigger modes of an STS-class module."""

    NORMAL = 0  # free running: a spectrum on request
    SOFTWARE = 1
    EXTERNAL_LEVEL = 2
    EXTERNAL_EDGE = 3


def pack_request(mtype: MessageType, *values: int | float) -> bytes:
    """Request payload of ``mtype`` from its values (raises ValueError on a wrong count)."""
    fmt = MESSAGES[mtype].request
    if fmt is None:
        raise ValueError(f"{mtype.name} has a variable request payload")
    try:
        return struct.pack(fmt, *values)
    except struct.error as exc:
        raise ValueError(f"{mtype.name}: {exc}") from None


def unpack_reply(mtype: MessageType, payload: bytes) -> tuple[int | float, ...]:
    """Values of a fixed-layout reply.

    Raises
    ------
    FrameError
        When the payload length does not match the documented layout.
    """
    fmt = MESSAGES[mtype].reply
    if fmt is None:
        raise ValueError(f"{mtype.name} has a variable reply payload")
    if len(payload) != struct.calcsize(fmt):
        raise FrameError(
            f"{mtype.name} reply has {len(payload)} bytes, expected {struct.calcsize(fmt)}"
        )
    return tuple(struct.unpack(fmt, payload))


def pack_text(text: str, size: int = 16) -> bytes:
    """ASCII text NUL-padded to ``size`` bytes, as devices send strings."""
    raw = text.encode("ascii")
    if len(raw) > size:
        raise ValueError(f"text {text!r} is longer than {size} bytes")
    return raw.ljust(size, b"\x00")


def unpack_text(payload: bytes) -> str:
    """Text up to the first NUL; raises FrameError on non-ASCII bytes."""
    raw = payload.split(b"\x00", 1)[0]
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError:
        raise FrameError(f"string payload is not ASCII: {raw!r}") from None


def pack_spectrum(counts: npt.ArrayLike) -> bytes:
    """Raw spectrum payload: one little-endian uint16 per pixel (values must fit 0..65535)."""
    arr = np.asarray(counts)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError("counts must be a non-empty 1-D array")
    if np.any(arr < 0) or np.any(arr > 0xFFFF):
        raise ValueError("counts must lie in 0..65535")
    return arr.astype("<u2").tobytes()


def unpack_spectrum(payload: bytes, pixel_count: int) -> npt.NDArray[np.uint16]:
    """Counts of a raw spectrum reply; raises FrameError when the length is not 2 × pixels."""
    if len(payload) != 2 * pixel_count:
        raise FrameError(f"spectrum has {len(payload)} bytes, expected {2 * pixel_count}")
    return np.frombuffer(payload, dtype="<u2").astype(np.uint16)


def pack_pixel_ranges(ranges: Sequence[tuple[int, int]]) -> bytes:
    """Pixel ranges as uint32 pairs (first, end) with ``end`` exclusive."""
    flat = [v for pair in ranges for v in pair]
    return struct.pack(f"<{len(flat)}I", *flat)


def unpack_pixel_ranges(payload: bytes) -> tuple[tuple[int, int], ...]:
    """Inverse of :func:`pack_pixel_ranges`; raises FrameError on a ragged payload."""
    if len(payload) % 8:
        raise FrameError(f"pixel ranges payload of {len(payload)} bytes is not uint32 pairs")
    flat = struct.unpack(f"<{len(payload) // 4}I", payload)
    ranges = tuple((flat[i], flat[i + 1]) for i in range(0, len(flat), 2))
    for first, end in ranges:
        if end < first:
            raise FrameError(f"pixel range ({first}, {end}) ends before it starts")
    return ranges
