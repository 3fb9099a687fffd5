"""Incremental OBP deframer: frames out of a byte stream cut anywhere, with resynchronisation.

A serial line gives no message boundaries. The deframer looks for the start
mark (start bytes + protocol version), trusts the header only after checking
it, waits for the announced length (which the header check bounds), then
verifies footer and MD5. A bad candidate costs one byte: scanning resumes
just after its start mark, so a real frame hidden behind garbage or a
truncated frame is still found.
"""

from __future__ import annotations

from dataclasses import dataclass

from device.obp.codec import (
    HEADER_SIZE,
    MAX_PAYLOAD,
    START_MARK,
    TRAILER_SIZE,
    Frame,
    Header,
    complete,
    parse_header,
)
from device.obp.errors import FrameError


@dataclass(frozen=True, slots=True)
class Rejected:
    """A candidate frame thrown away; ``header`` is set when the header itself was sound.

    A device uses ``header`` to NACK a corrupted request (error 3); a host uses it to
    retry at once instead of waiting for a timeout.
    """

    reason: str
    header: Header | None = None


class Deframer:
    """Feed bytes as they arrive; get whole frames (and rejections) back.

    Buffering is bounded: after :meth:`feed` returns, at most one maximal frame
    (``44 + max_payload + 20`` bytes) is held.
    """

    def __init__(self, *, max_payload: int = MAX_PAYLOAD) -> None:
        if max_payload < 0:
            raise ValueError(f"max_payload must be >= 0, got {max_payload}")
        self.max_payload = max_payload
        self._buf = bytearray()
        self.discarded = 0  # bytes skipped as garbage, for diagnostics

    @property
    def max_buffer(self) -> int:
        """The most bytes held between calls."""
        return HEADER_SIZE + self.max_payload + TRAILER_SIZE

    @property
    def buffered(self) -> int:
        """Bytes held, waiting for the rest of a frame."""
        return len(self._buf)

    def reset(self) -> None:
        """Forget any partial frame (after a timeout or reconnect)."""
        self.discarded += len(self._buf)
        self._buf.clear()

    def feed(self, data: bytes) -> list[Frame | Rejected]:
        """Add ``data`` and return every frame (or rejection) completed by it, in order."""
        self._buf += data
        out: list[Frame | Rejected] = []
        while True:
            start = self._buf.find(START_MARK)
            if start < 0:
                # Keep a tail that could be the beginning of a start mark.
                keep = _partial_mark_length(self._buf)
                self._skip(len(self._buf) - keep)
                return out
            self._skip(start)
            if len(self._buf) < HEADER_SIZE:
                return out
            try:
                header = parse_header(bytes(self._buf[:HEADER_SIZE]), max_payload=self.max_payload)
            except FrameError as exc:
                out.append(Rejected(exc.reason))
                self._skip(1)
                continue
            if len(self._buf) < header.frame_size:
                return out
            try:
                frame = complete(header, bytes(self._buf[: header.frame_size]))
            except FrameError as exc:
                out.append(Rejected(exc.reason, header))
                self._skip(1)
                continue
            del self._buf[: header.frame_size]
            out.append(frame)

    def _skip(self, n: int) -> None:
        if n > 0:
            self.discarded += n
            del self._buf[:n]


def _partial_mark_length(buf: bytearray) -> int:
    """Length of the longest suffix of ``buf`` that is a proper prefix of the start mark."""
    for k in range(min(len(START_MARK) - 1, len(buf)), 0, -1):
        if buf.endswith(START_MARK[:k]):
            return k
    return 0
