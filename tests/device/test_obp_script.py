"""The driver against a scripted peer: every request byte is pinned, no byte may be left over.

The frames are built here from the documented layout by plain byte concatenation
(not by :mod:`device.obp.codec`), so a shared mistake between driver and codec
or between driver and mock shows up.
"""

from __future__ import annotations

import os
import select
import struct
import threading
import time
import tty

import numpy as np
import pytest

from device.base import AcquisitionSettings
from device.errors import DeviceTimeoutError
from device.obp import open_spectrometer
from device.obp.errors import (
    FrameError,
    HardwareExceptionError,
    ObpError,
    ProtocolDeprecatedError,
)

RESPONSE, ACK, REQUEST_ACK, NACK = 0x1, 0x2, 0x4, 0x8


def obp(mtype: int, regarding: int, *, flags: int = 0, err: int = 0, data: bytes = b"") -> bytes:
    """One frame, no checksum, laid out by hand from the OBP documentation."""
    imm, body = (data, b"") if len(data) <= 16 else (b"", data)
    return (
        b"\xc1\xc0"  # start bytes
        + b"\x00\x11"  # protocol version 0x1100
        + flags.to_bytes(2, "little")
        + err.to_bytes(2, "little")
        + mtype.to_bytes(4, "little")
        + regarding.to_bytes(4, "little")
        + bytes(6)  # reserved
        + b"\x00"  # checksum type: none
        + bytes([len(imm)])
        + imm.ljust(16, b"\x00")
        + (len(body) + 20).to_bytes(4, "little")
        + body
        + bytes(16)  # checksum field, unused
        + b"\xc5\xc4\xc3\xc2"  # footer
    )


class ScriptedPeer(threading.Thread):
    """Plays the device side of a pty: expects exact bytes, answers exact bytes."""

    def __init__(self, script: list[tuple[bytes, bytes]]) -> None:
        super().__init__(daemon=True)
        self.master, slave = os.openpty()
        tty.setraw(slave)
        self.path = os.ttyname(slave)
        self._slave = slave
        self.script = script
        self.error: str | None = None
        self.steps_done = 0

    def _read_exactly(self, n: int, timeout: float) -> bytes:
        got = b""
        deadline = time.monotonic() + timeout
        while len(got) < n and time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if ready:
                got += os.read(self.master, n - len(got))
        return got

    def run(self) -> None:
        for i, (expected, reply) in enumerate(self.script):
            got = self._read_exactly(len(expected), 5.0)
            if got != expected:
                self.error = f"step {i}: expected {expected.hex()} got {got.hex()}"
                return
            os.write(self.master, reply)
            self.steps_done += 1
        extra = self._read_exactly(1, 0.3)
        if extra:
            self.error = f"bytes left over after the script: {extra.hex()}"

    def close(self) -> None:
        for fd in (self.master, self._slave):
            os.close(fd)


PIXELS = 32
COUNTS = np.arange(PIXELS, dtype=np.uint16) * 10 + 100  # dark pixels 0 and 1 read 100, 110


def _script() -> list[tuple[bytes, bytes]]:
    f32 = lambda v: struct.pack("<f", v)  # noqa: E731
    ack = RESPONSE | ACK
    nack = RESPONSE | NACK
    return [
        # identify()
        (obp(0x100, 1), obp(0x100, 1, flags=RESPONSE, data=b"S123")),
        (obp(0xE11, 2), obp(0xE11, 2, flags=nack, err=2)),  # no device string: optional
        (obp(0x90, 3), obp(0x90, 3, flags=RESPONSE, data=b"\x05\x01")),
        (obp(0x110220, 4), obp(0x110220, 4, flags=RESPONSE, data=PIXELS.to_bytes(2, "little"))),
        (obp(0x180100, 5), obp(0x180100, 5, flags=RESPONSE, data=b"\x02")),
        (obp(0x180101, 6, data=b"\x00"), obp(0x180101, 6, flags=nack, err=3)),  # bad checksum
        (obp(0x180101, 7, data=b"\x00"), obp(0x180101, 7, flags=RESPONSE, data=f32(790.0))),
        (obp(0x180101, 8, data=b"\x01"), obp(0x180101, 8, flags=RESPONSE, data=f32(2.0))),
        (obp(0x181100, 9), obp(0x181100, 9, flags=nack, err=2)),  # no non-linearity
        (
            obp(0x110223, 10),
            obp(0x110223, 10, flags=RESPONSE, data=struct.pack("<II", 0, 2)),
        ),
        (obp(0x420004, 11), obp(0x420004, 11, flags=RESPONSE, data=f32(-10.0))),
        # acquire(10 ms, no dark)
        (obp(0x110110, 12, flags=REQUEST_ACK, data=b"\x00"), obp(0x110110, 12, flags=ack)),
        (
            obp(0x110010, 13, flags=REQUEST_ACK, data=(10_000).to_bytes(4, "little")),
            obp(0x110010, 13, flags=ack),
        ),
        (
            obp(0x120010, 14, flags=REQUEST_ACK, data=b"\x01\x00"),
            obp(0x120010, 14, flags=nack, err=2),  # host averages instead
        ),
        (
            obp(0x810031, 15, flags=REQUEST_ACK, data=b"\x00\x00\x01"),
            obp(0x810031, 15, flags=ack),
        ),
        (obp(0x101100, 16), obp(0x101100, 16, flags=nack, err=7)),  # not ready: retry
        (obp(0x101100, 17), obp(0x101100, 17, flags=RESPONSE, data=COUNTS.astype("<u2").tobytes())),
        (
            obp(0x810031, 18, flags=REQUEST_ACK, data=b"\x00\x00\x00"),
            obp(0x810031, 18, flags=ack),
        ),
    ]


def test_identify_and_acquire_follow_the_documented_bytes_exactly() -> None:
    peer = ScriptedPeer(_script())
    peer.start()
    try:
        with open_spectrometer(peer.path, timeout=2.0, md5=False) as dev:
            info = dev.identify()
            spectrum = dev.acquire(
                AcquisitionSettings(integration_time_ms=10, laser=True, dark_subtract=False)
            )
        peer.join(timeout=10)
    finally:
        peer.close()
    assert peer.error is None, peer.error
    assert peer.steps_done == len(peer.script)
    assert (info.serial, info.model, info.firmware) == ("S123", "OBP spectrometer", "0x0105")
    assert info.pixel_count == PIXELS and info.wavelength_coeffs == (790.0, 2.0)
    assert info.extra["electric_dark_pixels"] == [0, 1]
    assert dev.stats.not_ready == 1 and dev.stats.corrupted == 1
    # Dark pixels 0 and 1 are dropped and their mean (105) is the electric offset.
    wavelengths = 790.0 + 2.0 * np.arange(2, PIXELS)
    np.testing.assert_allclose(spectrum.axis, 1e7 / 785.0 - 1e7 / wavelengths)
    np.testing.assert_allclose(spectrum.intensities, COUNTS[2:].astype(float) - 105.0)
    assert spectrum.acquisition.device_serial == "S123"
    assert spectrum.acquisition.integration_time_ms == 10


@pytest.mark.parametrize(
    ("reply", "expected"), [(b"\x00\x04", 1024), (b"\x00\x08\x00\x00", 2048), (b"\x04", None)]
)
def test_pixel_count_reply_of_two_or_four_bytes(reply: bytes, expected: int | None) -> None:
    script = [
        (obp(0x100, 1), obp(0x100, 1, flags=RESPONSE, data=b"S1")),
        (obp(0xE11, 2), obp(0xE11, 2, flags=RESPONSE, data=b"STS")),
        (obp(0x90, 3), obp(0x90, 3, flags=RESPONSE, data=b"\x01\x00")),
        (obp(0x110220, 4), obp(0x110220, 4, flags=RESPONSE, data=reply)),
    ]
    if expected is not None:
        script += [
            (obp(0x180100, 5), obp(0x180100, 5, flags=RESPONSE, data=b"\x01")),
            (
                obp(0x180101, 6, data=b"\x00"),
                obp(0x180101, 6, flags=RESPONSE, data=struct.pack("<f", 790.0)),
            ),
            (obp(0x181100, 7), obp(0x181100, 7, flags=RESPONSE | NACK, err=2)),
            (obp(0x110223, 8), obp(0x110223, 8, flags=RESPONSE)),
            (obp(0x420004, 9), obp(0x420004, 9, flags=RESPONSE | NACK, err=2)),
        ]
    peer = ScriptedPeer(script)
    peer.start()
    try:
        with open_spectrometer(peer.path, timeout=2.0, md5=False) as dev:
            if expected is None:
                with pytest.raises(FrameError, match="expected 2 or 4"):
                    dev.identify()
            else:
                info = dev.identify()
                assert info.pixel_count == expected and info.model == "STS"
                assert "te_temperature_c" not in info.extra
        peer.join(timeout=10)
    finally:
        peer.close()
    assert peer.error is None, peer.error


@pytest.mark.parametrize(
    ("flags", "err", "error_type"),
    [
        (RESPONSE | 0x10, 13, HardwareExceptionError),  # hardware exception, no NACK bit
        (RESPONSE | 0x20, 0, ProtocolDeprecatedError),
        (RESPONSE | NACK, 6, ObpError),  # payload invalid: not retried
    ],
)
def test_reply_flags_map_to_typed_errors(flags: int, err: int, error_type: type[Exception]) -> None:
    peer = ScriptedPeer([(obp(0x100, 1), obp(0x100, 1, flags=flags, err=err))])
    peer.start()
    try:
        dev = open_spectrometer(peer.path, timeout=2.0, md5=False)
        with dev, pytest.raises(error_type) as info:
            dev.identify()
        peer.join(timeout=10)
    finally:
        peer.close()
    assert peer.error is None, peer.error  # one request only: no retry of a refusal
    assert getattr(info.value, "code", err) == err


def test_a_port_that_answers_garbage_is_not_an_obp_device() -> None:
    noise = b"\x00\x01 hello, I am a modem \r\n" * 3
    script = [(obp(0x100, r), noise) for r in (1, 2)]
    peer = ScriptedPeer(script)
    peer.start()
    try:
        dev = open_spectrometer(peer.path, timeout=0.2, retries=1, md5=False)
        with dev, pytest.raises(DeviceTimeoutError, match="is this an OBP device"):
            dev.identify()
        peer.join(timeout=5)
    finally:
        peer.close()
    assert peer.error is None, peer.error
