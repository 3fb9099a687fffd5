"""The emulated OBP module: protocol answers over a raw pty, detector physics, fault parsing."""

from __future__ import annotations

import os
import select
import struct
import termios
import time
import tty
from collections.abc import Iterator

import numpy as np
import pytest

from device.obp import codec
from device.obp.codec import Flags, Frame
from device.obp.deframer import Deframer
from device.obp.errors import ErrorCode
from device.obp.messages import MessageType
from firmware_mocks.obp import EmulatedModule, Faults, ModuleSpec, PtyMock, parse_fault
from firmware_mocks.obp.samples import builtin_sample, mix, resolve_sample

MT = MessageType


class RawHost:
    """The host side of the pty as bare file descriptors: bytes out, frames back."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self.fd)
        self.deframer = Deframer()

    def send(self, data: bytes) -> None:
        os.write(self.fd, data)

    def frames(self, n: int = 1, timeout: float = 3.0) -> list[Frame]:
        got: list[Frame] = []
        deadline = time.monotonic() + timeout
        while len(got) < n and time.monotonic() < deadline:
            ready, _, _ = select.select([self.fd], [], [], 0.05)
            if ready:
                got += [
                    e for e in self.deframer.feed(os.read(self.fd, 4096)) if isinstance(e, Frame)
                ]
        return got

    def silence(self, wait: float = 0.3) -> bytes:
        ready, _, _ = select.select([self.fd], [], [], wait)
        return os.read(self.fd, 4096) if ready else b""

    def close(self) -> None:
        os.close(self.fd)


@pytest.fixture
def served() -> Iterator[tuple[PtyMock, RawHost]]:
    with PtyMock(EmulatedModule(builtin_sample("paracetamol"), seed=1), pace=False) as mock:
        host = RawHost(mock.path)
        yield mock, host
        host.close()


def ask(host: RawHost, frame: Frame) -> Frame:
    host.send(codec.encode(frame))
    got = host.frames()
    assert len(got) == 1, "no reply"
    return got[0]


def test_query_replies_echo_type_regarding_and_checksum(served: tuple[PtyMock, RawHost]) -> None:
    _, host = served
    reply = ask(host, codec.request(MT.GET_SERIAL_NUMBER, regarding=41, md5=True))
    assert reply.flags == Flags.RESPONSE and reply.regarding == 41
    assert reply.checksum_type == codec.ChecksumType.MD5
    assert reply.payload.rstrip(b"\0") == ModuleSpec().serial.encode()


def test_command_acks_only_when_asked(served: tuple[PtyMock, RawHost]) -> None:
    mock, host = served
    payload = struct.pack("<I", 20_000)
    ack = ask(host, codec.request(MT.SET_INTEGRATION_TIME_US, payload, ack=True))
    assert ack.flags == Flags.RESPONSE | Flags.ACK and ack.payload == b""
    host.send(codec.encode(codec.request(MT.SET_INTEGRATION_TIME_US, struct.pack("<I", 30_000))))
    assert host.silence() == b""
    assert mock.module.state.integration_us == 30_000


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (codec.request(0x00DEAD00), ErrorCode.UNKNOWN_MESSAGE_TYPE),
        (
            codec.request(MT.SET_INTEGRATION_TIME_US, b"\x01", ack=True),
            ErrorCode.PAYLOAD_LENGTH_MISMATCH,
        ),
        (codec.request(MT.GET_WL_COEFF, b"\x09"), ErrorCode.PAYLOAD_INVALID),
        (
            codec.request(MT.SET_INTEGRATION_TIME_US, struct.pack("<I", 1), ack=True),
            ErrorCode.PAYLOAD_INVALID,
        ),
    ],
)
def test_errors_are_nacked_with_the_documented_code(
    served: tuple[PtyMock, RawHost], frame: Frame, code: ErrorCode
) -> None:
    _, host = served
    reply = ask(host, frame)
    assert reply.is_nack and reply.error == code and reply.message_type == frame.message_type


def test_a_corrupted_request_gets_nack_3(served: tuple[PtyMock, RawHost]) -> None:
    _, host = served
    wire = bytearray(codec.encode(codec.request(MT.GET_SERIAL_NUMBER, regarding=7, md5=True)))
    wire[30] ^= 0x01
    host.send(bytes(wire))
    (reply,) = host.frames()
    assert reply.is_nack and reply.error == ErrorCode.BAD_CHECKSUM and reply.regarding == 7


def test_not_ready_fault_nacks_7_then_recovers(served: tuple[PtyMock, RawHost]) -> None:
    mock, host = served
    mock.faults.set("notready:2")
    for _ in range(2):
        assert ask(host, codec.request(MT.GET_SERIAL_NUMBER)).error == ErrorCode.DEVICE_NOT_READY
    assert not ask(host, codec.request(MT.GET_SERIAL_NUMBER)).is_nack


def test_garbage_from_the_host_is_ignored(served: tuple[PtyMock, RawHost]) -> None:
    _, host = served
    host.send(b"\xc1\xc0\x00\x11 not a frame at all" * 4)
    assert not ask(host, codec.request(MT.GET_NUMBER_OF_PIXELS)).is_nack


def test_spectrum_reply_is_paced_at_the_line_rate_set_by_the_host() -> None:
    with PtyMock(EmulatedModule(builtin_sample("caffeine"), seed=2)) as mock:
        host = RawHost(mock.path)
        attrs = termios.tcgetattr(host.fd)
        attrs[4] = attrs[5] = termios.B115200
        termios.tcsetattr(host.fd, termios.TCSANOW, attrs)
        assert mock.line_rate() == 115_200
        mock.module.state.integration_us = 1000
        reply = ask(host, codec.request(MT.GET_RAW_SPECTRUM_NOW))
        host.close()
    assert len(reply.payload) == 2048


def test_counts_scale_with_integration_and_saturate_at_14_bits() -> None:
    module = EmulatedModule(builtin_sample("polystyrene"), seed=3)
    module.state.laser_on = True
    module.state.integration_us = 10_000
    short = module.read_spectrum().astype(float)
    module.state.integration_us = 30_000
    long = module.read_spectrum().astype(float)
    offset = module.spec.offset_counts
    peak = int(np.argmax(long))
    assert (long[peak] - offset) / (short[peak] - offset) == pytest.approx(3.0, rel=0.1)
    module.state.integration_us = 2_000_000
    assert module.read_spectrum().max() == module.spec.max_count


def test_shot_noise_grows_with_signal() -> None:
    module = EmulatedModule(builtin_sample("polystyrene"), seed=4)
    module.state.laser_on = True
    module.state.integration_us = 50_000
    reads = np.array([module.read_spectrum() for _ in range(40)], dtype=float)
    mean, var = reads.mean(axis=0), reads.var(axis=0)
    bright, dim = np.argmax(mean), np.argmin(mean)
    assert var[bright] > 5 * var[dim]


def test_laser_off_leaves_only_the_dark_signal() -> None:
    module = EmulatedModule(builtin_sample("polystyrene"), seed=5)
    module.state.laser_on = False
    dark = module.expected_counts()
    assert np.ptp(dark) < 30  # offset pattern only: no bands
    module.state.laser_on = True
    assert np.ptp(module.expected_counts()) > 1000


def test_bands_land_at_their_raman_shift() -> None:
    module = EmulatedModule(builtin_sample("polystyrene"), seed=6)
    light = module.expected_counts(laser_on=True) - module.expected_counts(laser_on=False)
    peak_wl = module.wavelengths[np.argmax(light)]
    assert 1e7 / 785.0 - 1e7 / peak_wl == pytest.approx(1001, abs=3)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("explode", "unknown fault"),
        ("slow", "needs seconds"),
        ("corrupt:x", "needs a number"),
        ("corrupt:1.5", "integer"),
        ("drop:-1", "non-negative"),
        ("chunk1:3", "no argument"),
    ],
)
def test_bad_fault_specs_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_fault(text)


def test_faults_count_down_and_dead_alone_is_forever() -> None:
    faults = Faults([parse_fault("corrupt:2"), parse_fault("dead")])
    assert [faults.take("corrupt") for _ in range(3)] == [True, True, False]
    assert all(faults.take("dead") for _ in range(10))
    faults.clear()
    assert not faults.take("dead")


class _TinyLibrary:
    names = ("talc",)

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def spectrum(self, name: str) -> object:
        return builtin_sample("caffeine").renamed(name)


def test_samples_resolve_and_mix(monkeypatch: pytest.MonkeyPatch) -> None:
    import spectra.library

    monkeypatch.setattr(spectra.library, "load_demo_library", _TinyLibrary)
    base = builtin_sample("paracetamol")
    assert resolve_sample("talc").name == "talc"  # from the library
    assert resolve_sample("paracetamol").name == "paracetamol"  # built in
    cut = mix(base, builtin_sample("caffeine"), 0.5)
    assert cut.intensities.max() <= 1.0 and "caffeine" in cut.name
    with pytest.raises(ValueError, match="unknown sample"):
        resolve_sample("unobtainium")
    with pytest.raises(ValueError, match="cut fraction"):
        mix(base, base, 1.5)


def _hexframe(flags: str, err: str, mtype: str, reg: str, ilen: str, imm: str) -> bytes:
    """A 64-byte frame from hex fields in wire order, laid out as documented."""
    return bytes.fromhex(
        "c1c0" "0011" + flags + err + mtype + reg + "00" * 6 + "00" + ilen
        + imm.ljust(32, "0") + "14000000" + "00" * 16 + "c5c4c3c2"
    )  # fmt: skip


@pytest.mark.parametrize(
    ("request_hex", "reply_hex"),
    [
        # get serial number, regarding 2 → "S06512" NUL-padded to 16 immediate bytes
        (
            ("0000", "0000", "00010000", "02000000", "00", ""),
            ("0100", "0000", "00010000", "02000000", "10", b"S06512".hex()),
        ),
        # set integration time 10 ms with REQUEST_ACK, regarding 3 → RESPONSE|ACK
        (
            ("0400", "0000", "10001100", "03000000", "04", "10270000"),
            ("0300", "0000", "10001100", "03000000", "00", ""),
        ),
        # unknown message 0x00DEAD00, regarding 4 → RESPONSE|NACK, error 2
        (
            ("0000", "0000", "00adde00", "04000000", "00", ""),
            ("0900", "0200", "00adde00", "04000000", "00", ""),
        ),
        # get pixel count (0x00110220) → 1024 as uint16
        (
            ("0000", "0000", "20021100", "05000000", "00", ""),
            ("0100", "0000", "20021100", "05000000", "02", "0004"),
        ),
    ],
)
def test_mock_answers_documented_bytes_exactly(
    served: tuple[PtyMock, RawHost], request_hex: tuple[str, ...], reply_hex: tuple[str, ...]
) -> None:
    _, host = served
    host.send(_hexframe(*request_hex))
    expected = _hexframe(*reply_hex)
    got = b""
    deadline = time.monotonic() + 3.0
    while len(got) < len(expected) and time.monotonic() < deadline:
        got += host.silence(0.1)
    assert got == expected
    assert host.silence(0.2) == b""  # nothing left over


def test_a_damaged_library_falls_back_to_built_in_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    import spectra.library
    from spectra.errors import LibraryError

    def broken() -> None:
        raise LibraryError("content hash does not match", "demo-library.fslib")

    monkeypatch.setattr(spectra.library, "load_demo_library", broken)
    assert resolve_sample(None).name == "cocaine_hcl"
    assert resolve_sample("paracetamol").name == "paracetamol"
    with pytest.raises(ValueError, match="needs the reference library"):
        resolve_sample("mdma hydrochloride")
