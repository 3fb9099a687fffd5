"""The deframer finds frames in any chunking, survives garbage, and never buffers unboundedly."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from device.obp import codec
from device.obp.codec import ChecksumType, Flags, Frame
from device.obp.deframer import Deframer, Rejected

MIN_FRAME = codec.MIN_FRAME_SIZE

frames = st.builds(
    Frame,
    message_type=st.integers(0, 0xFFFF_FFFF),
    payload=st.binary(max_size=300),
    flags=st.sampled_from(list(Flags)),
    error=st.integers(0, 0xFFFF),
    regarding=st.integers(0, 0xFFFF_FFFF),
    checksum_type=st.sampled_from(list(ChecksumType)),
)


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


def _feed_all(deframer: Deframer, pieces: list[bytes]) -> list[Frame | Rejected]:
    out: list[Frame | Rejected] = []
    for piece in pieces:
        out += deframer.feed(piece)
        assert deframer.buffered <= deframer.max_buffer
    return out


@settings(max_examples=150, deadline=None)
@given(st.lists(frames, min_size=1, max_size=4), st.lists(st.integers(0, 5000), max_size=40))
def test_any_frames_survive_any_chunking(sent: list[Frame], cuts: list[int]) -> None:
    wire = b"".join(codec.encode(f) for f in sent)
    got = _feed_all(Deframer(), _chunks(wire, cuts))
    assert got == sent


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=3000), st.lists(st.integers(0, 3000), max_size=30))
def test_garbage_never_crashes_and_stays_bounded(junk: bytes, cuts: list[int]) -> None:
    deframer = Deframer(max_payload=512)
    for event in _feed_all(deframer, _chunks(junk, cuts)):
        assert isinstance(event, Rejected | Frame)


@settings(max_examples=100, deadline=None)
@given(frames, st.binary(max_size=200), st.lists(st.integers(0, 2000), max_size=20))
def test_a_frame_after_garbage_is_found(frame: Frame, junk: bytes, cuts: list[int]) -> None:
    junk = junk.replace(codec.START_MARK[:2], b"")  # no accidental real header inside
    wire = junk + codec.encode(frame)
    got = [e for e in _feed_all(Deframer(), _chunks(wire, cuts)) if isinstance(e, Frame)]
    assert got == [frame]


@settings(max_examples=100, deadline=None)
@given(frames, frames, st.integers(0, 10_000), st.lists(st.integers(0, 2000), max_size=20))
def test_resynchronises_after_a_truncated_frame(
    first: Frame, second: Frame, cut: int, cuts: list[int]
) -> None:
    broken = codec.encode(first)
    broken = broken[: cut % len(broken)]  # the device vanished or bytes were dropped
    deframer = Deframer(max_payload=1024)
    wire = broken + codec.encode(second)
    got = [e for e in _feed_all(deframer, _chunks(wire, cuts)) if isinstance(e, Frame)]
    # A damaged header may announce a plausible length that swallows what follows; the
    # stream is back in step at the latest once one maximal frame of bytes has passed
    # (the driver also drops its buffer after a timeout).
    for _ in range(3 * (deframer.max_buffer // MIN_FRAME + 2)):
        if second in got:
            break
        got += [e for e in deframer.feed(codec.encode(second)) if isinstance(e, Frame)]
    assert second in got


def test_corrupted_md5_is_reported_with_its_header_then_the_next_frame_decodes() -> None:
    req = codec.request(0x100, b"abc", regarding=3, md5=True)
    bad = bytearray(codec.encode(req))
    bad[25] ^= 0xFF
    good = codec.encode(codec.request(0x101, regarding=4))
    events = Deframer().feed(bytes(bad) + good)
    assert isinstance(events[0], Rejected) and "MD5" in events[0].reason
    assert events[0].header is not None and events[0].header.regarding == 3
    assert events[-1] == codec.decode(good)


def test_impossible_length_is_rejected_without_waiting() -> None:
    wire = bytearray(codec.encode(Frame(0x100)))
    wire[40:44] = (10**9).to_bytes(4, "little")
    deframer = Deframer()
    events = deframer.feed(bytes(wire))
    assert isinstance(events[0], Rejected) and "bytes-remaining" in events[0].reason
    assert deframer.buffered < 4  # nothing held waiting for a gigabyte


def test_reset_drops_a_partial_frame() -> None:
    deframer = Deframer()
    assert deframer.feed(codec.encode(Frame(1))[:50]) == []
    assert deframer.buffered == 50
    deframer.reset()
    assert deframer.buffered == 0
    assert deframer.feed(codec.encode(Frame(2))) == [Frame(2)]


def test_negative_max_payload_is_refused() -> None:
    with pytest.raises(ValueError, match="max_payload"):
        Deframer(max_payload=-1)
