"""OBP codec pinned to byte literals written out from the protocol documentation."""

from __future__ import annotations

import hashlib
import struct

import pytest

from device.errors import DeviceError, ProtocolError
from device.obp import codec, messages
from device.obp.codec import ChecksumType, Flags, Frame
from device.obp.errors import (
    DeviceNotReadyError,
    ErrorCode,
    FrameError,
    ObpError,
    UnknownMessageTypeError,
    error_for_code,
)

# "Get serial number" request, no checksum, written byte by byte from the documented layout:
# C1 C0 | 00 11 | flags 00 00 | errno 00 00 | type 00 01 00 00 | regarding 00 00 00 00
# reserved 6×00 | checksum type 00 | immediate length 00 | immediate 16×00
# bytes remaining 14 00 00 00 (20) | checksum 16×00 | footer C5 C4 C3 C2
GET_SERIAL_REQUEST = bytes.fromhex(
    "c1c0" "0011" "0000" "0000" "00010000" "00000000"
    "000000000000" "00" "00" + "00" * 16 + "14000000" + "00" * 16 + "c5c4c3c2"
)  # fmt: skip
# Its reply: flags RESPONSE (01 00), immediate length 6, "S06512" as immediate data.
GET_SERIAL_REPLY = bytes.fromhex(
    "c1c0" "0011" "0100" "0000" "00010000" "00000000"
    "000000000000" "00" "06" + b"S06512".hex() + "00" * 10 + "14000000" + "00" * 16 + "c5c4c3c2"
)  # fmt: skip
# NACK "device not ready" (7) to a raw-spectrum request (0x00101100), regarding 5.
NOT_READY_REPLY = bytes.fromhex(
    "c1c0" "0011" "0900" "0700" "00111000" "05000000"
    "000000000000" "00" "00" + "00" * 16 + "14000000" + "00" * 16 + "c5c4c3c2"
)  # fmt: skip


def test_get_serial_request_bytes_match_the_documented_layout() -> None:
    frame = Frame(messages.MessageType.GET_SERIAL_NUMBER)
    assert len(GET_SERIAL_REQUEST) == 64
    assert codec.encode(frame) == GET_SERIAL_REQUEST
    assert codec.decode(GET_SERIAL_REQUEST) == frame


def test_serial_reply_travels_as_immediate_data() -> None:
    frame = codec.decode(GET_SERIAL_REPLY)
    assert frame.flags == Flags.RESPONSE
    assert messages.unpack_text(frame.payload) == "S06512"
    assert frame.payload == b"S06512"  # only the announced 6 of the 16 immediate bytes
    assert codec.encode(Frame(0x100, b"S06512", Flags.RESPONSE)) == GET_SERIAL_REPLY


def test_nack_literal_decodes_to_not_ready() -> None:
    frame = codec.decode(NOT_READY_REPLY)
    assert frame.is_nack and frame.error_code is ErrorCode.DEVICE_NOT_READY
    assert frame.message_type == 0x00101100 and frame.regarding == 5
    assert frame.flags == Flags.RESPONSE | Flags.NACK


def test_long_payload_goes_after_the_header_with_md5() -> None:
    payload = bytes(range(200)) * 2  # 400 bytes: too long for immediate data
    wire = codec.encode(Frame(0x00101100, payload, Flags.RESPONSE, checksum_type=ChecksumType.MD5))
    header = wire[:44]
    assert header[22] == 1 and header[23] == 0  # MD5, no immediate data
    assert struct.unpack_from("<I", header, 40)[0] == 400 + 20
    assert wire[44:444] == payload
    assert wire[444:460] == hashlib.md5(wire[:444]).digest()
    assert wire[-4:] == b"\xc5\xc4\xc3\xc2"
    assert codec.decode(wire).payload == payload


def test_sixteen_bytes_are_immediate_seventeen_are_not() -> None:
    assert len(codec.encode(Frame(1, b"x" * 16))) == 64
    assert len(codec.encode(Frame(1, b"x" * 17))) == 64 + 17


@pytest.mark.parametrize("flag", list(Flags))
def test_every_flag_round_trips(flag: Flags) -> None:
    frame = Frame(0x00110010, b"\x01\x02", flag, regarding=77)
    wire = codec.encode(frame)
    assert struct.unpack_from("<H", wire, 4)[0] == int(flag)
    assert codec.decode(wire).flags == flag


@pytest.mark.parametrize("code", list(ErrorCode))
def test_every_documented_error_code_maps_to_a_typed_exception(code: ErrorCode) -> None:
    assert code.description
    exc = error_for_code(int(code), 0x100, port="/dev/x")
    assert isinstance(exc, ObpError) and isinstance(exc, DeviceError)
    assert exc.code is code and exc.port == "/dev/x"
    assert str(int(code)) in str(exc)


def test_specific_codes_get_specific_classes_and_unknown_codes_stay_raw() -> None:
    assert isinstance(error_for_code(2, 1), UnknownMessageTypeError)
    assert isinstance(error_for_code(7, 1), DeviceNotReadyError)
    odd = error_for_code(42, 1)
    assert type(odd) is ObpError and odd.code == 42 and "undocumented" in str(odd)


def _mutated(wire: bytes, offset: int, value: bytes) -> bytes:
    return wire[:offset] + value + wire[offset + len(value) :]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (GET_SERIAL_REQUEST + b"\x00", "left over"),
        (GET_SERIAL_REQUEST[:-1], "truncated"),
        (GET_SERIAL_REQUEST[:30], "header needs 44"),
        (_mutated(GET_SERIAL_REQUEST, 0, b"\xc0\xc1"), "start bytes"),
        (_mutated(GET_SERIAL_REQUEST, 2, b"\x00\x10"), "protocol version"),
        (_mutated(GET_SERIAL_REQUEST, 22, b"\x07"), "checksum type"),
        (_mutated(GET_SERIAL_REQUEST, 23, b"\x11"), "immediate length"),
        (_mutated(GET_SERIAL_REQUEST, 40, b"\x13\x00\x00\x00"), "bytes-remaining"),
        (_mutated(GET_SERIAL_REQUEST, 40, b"\xff\xff\xff\x7f"), "bytes-remaining"),
        (_mutated(GET_SERIAL_REQUEST, 60, b"\xc5\xc4\xc3\xc3"), "footer"),
        (_mutated(GET_SERIAL_REPLY, 40, b"\x15\x00\x00\x00") + b"\x00", "both immediate"),
    ],
)
def test_decode_rejects_bad_frames_with_the_reason(data: bytes, reason: str) -> None:
    with pytest.raises(FrameError, match=reason) as info:
        codec.decode(data)
    assert isinstance(info.value, ProtocolError)


def test_md5_mismatch_is_rejected() -> None:
    wire = bytearray(codec.encode(codec.request(0x100, md5=True)))
    assert wire[22] == 1
    wire[30] ^= 1  # inside the immediate data, covered by the checksum
    with pytest.raises(FrameError, match="MD5"):
        codec.decode(bytes(wire))


def test_frame_rejects_values_that_do_not_fit_the_header() -> None:
    with pytest.raises(ValueError, match="32 bits"):
        Frame(1 << 32)
    with pytest.raises(ValueError, match="16 bits"):
        Frame(1, error=70000)
    with pytest.raises(ValueError, match="exceeds"):
        Frame(1, b"\0" * (codec.MAX_PAYLOAD + 1))


def test_request_and_reply_helpers_set_flags_and_echo_regarding() -> None:
    req = codec.request(0x00110010, b"\x10\x27\x00\x00", regarding=9, ack=True, md5=True)
    assert req.flags == Flags.REQUEST_ACK and req.checksum_type is ChecksumType.MD5
    ack = codec.reply(req, ack=True)
    assert ack.flags == Flags.RESPONSE | Flags.ACK and ack.regarding == 9
    nack = codec.reply(req, error=5)
    assert nack.is_nack and nack.error == 5 and not nack.flags & Flags.ACK


def test_message_payload_helpers_and_their_bad_input() -> None:
    mt = messages.MessageType
    assert messages.pack_request(mt.SET_INTEGRATION_TIME_US, 100_000) == b"\xa0\x86\x01\x00"
    assert messages.unpack_reply(mt.GET_WL_COEFF, struct.pack("<f", 1.5)) == (1.5,)
    with pytest.raises(FrameError, match="expected 4"):
        messages.unpack_reply(mt.GET_WL_COEFF, b"\0\0")
    with pytest.raises(ValueError, match="SET_LIGHT_SOURCE_ENABLE"):
        messages.pack_request(mt.SET_LIGHT_SOURCE_ENABLE, 1)
    with pytest.raises(FrameError, match="ASCII"):
        messages.unpack_text(b"\xff\xfe")
    with pytest.raises(ValueError, match="longer"):
        messages.pack_text("x" * 17)
    assert messages.unpack_spectrum(messages.pack_spectrum([0, 1, 65535]), 3).tolist() == [
        0,
        1,
        65535,
    ]
    with pytest.raises(FrameError, match="expected 6"):
        messages.unpack_spectrum(b"\0" * 4, 3)
    with pytest.raises(ValueError, match=r"0\.\.65535"):
        messages.pack_spectrum([70000])
    ranges = ((0, 4), (1020, 1024))
    assert messages.unpack_pixel_ranges(messages.pack_pixel_ranges(ranges)) == ranges
    with pytest.raises(FrameError, match="pairs"):
        messages.unpack_pixel_ranges(b"\0" * 12)
    with pytest.raises(FrameError, match="before it starts"):
        messages.unpack_pixel_ranges(messages.pack_pixel_ranges([(5, 2)]))
