"""Ocean Binary Protocol frames: pure encode and decode over bytes.

Wire layout (all little-endian), after Ocean Insight's OBP documentation::

    offset size  field
    0      2     start bytes            0xC1 0xC0 (uint16 0xC0C1)
    2      2     protocol version       0x1100
    4      2     flags                  see :class:`Flags`
    6      2     error number           see :class:`~device.obp.errors.ErrorCode`
    8      4     message type
    12     4     regarding              free value the device echoes in its reply
    16     6     reserved               zeros
    22     1     checksum type          0 none, 1 MD5
    23     1     immediate data length  0..16
    24     16    immediate data         payloads of up to 16 bytes travel here
    40     4     bytes remaining        len(payload) + 16 + 4
    44     n     payload                only when longer than 16 bytes
    44+n   16    checksum               MD5 of bytes 0 .. 44+n, or zeros
    60+n   4     footer                 0xC5 0xC4 0xC3 0xC2 (uint32 0xC2C3C4C5)
"""

from __future__ import annotations

import enum
import hashlib
import struct
from dataclasses import dataclass

from device.obp.errors import ErrorCode, FrameError

START_BYTES = 0xC0C1
PROTOCOL_VERSION = 0x1100
FOOTER = 0xC2C3C4C5

HEADER = struct.Struct(
    "<"
    "H"  # start bytes
    "H"  # protocol version
    "H"  # flags
    "H"  # error number
    "I"  # message type
    "I"  # regarding
    "6s"  # reserved
    "B"  # checksum type
    "B"  # immediate data length
    "16s"  # immediate data
    "I"  # bytes remaining: payload + checksum + footer
)
TRAILER = struct.Struct(
    "<"
    "16s"  # checksum
    "I"  # footer
)
HEADER_SIZE = HEADER.size  # 44
TRAILER_SIZE = TRAILER.size  # 20
MIN_FRAME_SIZE = HEADER_SIZE + TRAILER_SIZE  # 64
IMMEDIATE_MAX = 16

START_MARK = struct.pack("<HH", START_BYTES, PROTOCOL_VERSION)  # b"\xc1\xc0\x00\x11"
FOOTER_MARK = struct.pack("<I", FOOTER)  # b"\xc5\xc4\xc3\xc2"

#: Largest payload we accept: a 4096-pixel spectrum of uint32 with room to spare.
#: It bounds what a deframer may buffer while waiting for a frame to complete.
MAX_PAYLOAD = 64 * 1024


class Flags(enum.IntFlag):
    """Header flag bits."""

    NONE = 0
    RESPONSE = 0x0001  # this frame answers a request
    ACK = 0x0002  # the request succeeded
    REQUEST_ACK = 0x0004  # the host asks for an ACK/NACK even when no data comes back
    NACK = 0x0008  # the request failed; the error number says why
    HW_EXCEPTION = 0x0010  # the device hit a hardware fault
    DEPRECATED = 0x0020  # the protocol version of the request is deprecated


class ChecksumType(enum.IntEnum):
    """Checksum type byte."""

    NONE = 0
    MD5 = 1


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded OBP message; ``payload`` is the data whether it travelled immediate or not."""

    message_type: int
    payload: bytes = b""
    flags: Flags = Flags.NONE
    error: int = 0
    regarding: int = 0
    checksum_type: ChecksumType = ChecksumType.NONE

    def __post_init__(self) -> None:
        if not 0 <= self.message_type <= 0xFFFF_FFFF:
            raise ValueError(f"message type must fit 32 bits, got {self.message_type}")
        if not 0 <= self.regarding <= 0xFFFF_FFFF:
            raise ValueError(f"regarding must fit 32 bits, got {self.regarding}")
        if not 0 <= self.error <= 0xFFFF:
            raise ValueError(f"error number must fit 16 bits, got {self.error}")
        if len(self.payload) > MAX_PAYLOAD:
            raise ValueError(f"payload of {len(self.payload)} bytes exceeds {MAX_PAYLOAD}")

    @property
    def is_nack(self) -> bool:
        """True when the device refused the request (NACK or hardware exception)."""
        return bool(self.flags & (Flags.NACK | Flags.HW_EXCEPTION))

    @property
    def error_code(self) -> ErrorCode | int:
        """The error number as an :class:`ErrorCode` when documented."""
        try:
            return ErrorCode(self.error)
        except ValueError:
            return self.error


@dataclass(frozen=True, slots=True)
class Header:
    """The fields of a 44-byte header, validated for plausibility (not yet for checksum)."""

    flags: int
    error: int
    message_type: int
    regarding: int
    checksum_type: int
    immediate_length: int
    immediate: bytes
    bytes_remaining: int

    @property
    def frame_size(self) -> int:
        """Total size of the frame this header announces."""
        return HEADER_SIZE + self.bytes_remaining


def encode(frame: Frame) -> bytes:
    """The bytes of ``frame`` on the wire.

    Parameters
    ----------
    frame : Frame
        The message; payloads of up to 16 bytes are sent as immediate data.

    Returns
    -------
    bytes
        ``64 + len(payload)`` bytes (64 when the payload fits immediate data).
    """
    payload = frame.payload
    if len(payload) <= IMMEDIATE_MAX:
        immediate, body = payload, b""
    else:
        immediate, body = b"", payload
    header = HEADER.pack(
        START_BYTES,
        PROTOCOL_VERSION,
        int(frame.flags),
        frame.error,
        frame.message_type,
        frame.regarding,
        b"",  # struct pads the reserved bytes with zeros
        int(frame.checksum_type),
        len(immediate),
        immediate,
        len(body) + TRAILER_SIZE,
    )
    covered = header + body
    digest = hashlib.md5(covered).digest() if frame.checksum_type == ChecksumType.MD5 else b""
    return covered + TRAILER.pack(digest, FOOTER)


def parse_header(data: bytes, *, max_payload: int = MAX_PAYLOAD) -> Header:
    """Parse and sanity-check the first 44 bytes of a frame.

    Raises
    ------
    FrameError
        On wrong start bytes or version, an unknown checksum type, an immediate
        length over 16, or a remaining-bytes count that is impossible (below 20,
        above ``max_payload + 20``, or carrying a payload besides immediate data).
    """
    if len(data) < HEADER_SIZE:
        raise FrameError(f"header needs {HEADER_SIZE} bytes, got {len(data)}")
    (start, version, flags, error, mtype, regarding, _reserved, ctype, ilen, imm, remaining) = (
        HEADER.unpack_from(data)
    )
    if start != START_BYTES:
        raise FrameError(f"start bytes 0x{start:04X}, expected 0x{START_BYTES:04X}")
    if version != PROTOCOL_VERSION:
        raise FrameError(f"protocol version 0x{version:04X}, expected 0x{PROTOCOL_VERSION:04X}")
    if ctype not in (ChecksumType.NONE, ChecksumType.MD5):
        raise FrameError(f"unknown checksum type {ctype}")
    if ilen > IMMEDIATE_MAX:
        raise FrameError(f"immediate length {ilen} exceeds {IMMEDIATE_MAX}")
    if remaining < TRAILER_SIZE or remaining > max_payload + TRAILER_SIZE:
        raise FrameError(f"impossible bytes-remaining count {remaining}")
    if ilen and remaining != TRAILER_SIZE:
        raise FrameError("frame carries both immediate data and a payload")
    return Header(flags, error, mtype, regarding, ctype, ilen, bytes(imm), remaining)


def decode(data: bytes, *, max_payload: int = MAX_PAYLOAD) -> Frame:
    """Decode exactly one frame; every byte of ``data`` must belong to it.

    Raises
    ------
    FrameError
        When the header is invalid, the length disagrees with the header (bytes
        missing or left over), the footer is wrong, or an MD5 checksum fails.
    """
    data = bytes(data)
    header = parse_header(data, max_payload=max_payload)
    if len(data) != header.frame_size:
        raise FrameError(
            f"header announces {header.frame_size} bytes, got {len(data)}"
            + (" (bytes left over)" if len(data) > header.frame_size else " (truncated)")
        )
    return complete(header, data)


def complete(header: Header, data: bytes) -> Frame:
    """Check footer and checksum of a whole frame of ``header.frame_size`` bytes; decode it.

    Raises
    ------
    FrameError
        On a wrong footer or a failed MD5 checksum.
    """
    end = header.frame_size
    digest, footer = TRAILER.unpack_from(data, end - TRAILER_SIZE)
    if footer != FOOTER:
        raise FrameError(f"footer 0x{footer:08X}, expected 0x{FOOTER:08X}")
    md5 = header.checksum_type == ChecksumType.MD5
    if md5 and hashlib.md5(data[: end - TRAILER_SIZE]).digest() != digest:
        raise FrameError("MD5 checksum mismatch")
    body = data[HEADER_SIZE : end - TRAILER_SIZE]
    payload = header.immediate[: header.immediate_length] if header.immediate_length else body
    return Frame(
        message_type=header.message_type,
        payload=bytes(payload),
        flags=Flags(header.flags),
        error=header.error,
        regarding=header.regarding,
        checksum_type=ChecksumType(header.checksum_type),
    )


def request(
    message_type: int,
    payload: bytes = b"",
    *,
    regarding: int = 0,
    ack: bool = False,
    md5: bool = True,
) -> Frame:
    """A host → device request frame (``ack`` sets REQUEST_ACK, ``md5`` adds a checksum)."""
    return Frame(
        message_type=message_type,
        payload=payload,
        flags=Flags.REQUEST_ACK if ack else Flags.NONE,
        regarding=regarding,
        checksum_type=ChecksumType.MD5 if md5 else ChecksumType.NONE,
    )


def reply(req: Frame, payload: bytes = b"", *, error: int = 0, ack: bool = False) -> Frame:
    """A device → host answer to ``req``: data, ACK, or NACK with ``error``.

    The reply echoes the message type, ``regarding`` and checksum type of the request.
    """
    flags = Flags.RESPONSE
    if error:
        flags |= Flags.NACK
    elif ack:
        flags |= Flags.ACK
    return Frame(
        message_type=req.message_type,
        payload=payload,
        flags=flags,
        error=error,
        regarding=req.regarding,
        checksum_type=req.checksum_type,
    )
