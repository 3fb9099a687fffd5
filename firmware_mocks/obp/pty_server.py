"""Serve an :class:`EmulatedModule` on a pseudo-terminal, paced at the line rate, with faults.

The host opens the slave side (``/dev/pts/N``, or a stable symlink to it) with
pyserial exactly as it would a USB serial adapter. Replies are written at the
baud rate the host configured on the line (read back from the pty's termios),
so transfer times are those of a real UART.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import termios
import threading
import time
import tty
from pathlib import Path
from types import TracebackType
from typing import Self

from device.obp import codec
from device.obp.codec import Frame
from device.obp.deframer import Deframer, Rejected
from firmware_mocks.obp.faults import Faults
from firmware_mocks.obp.instrument import EmulatedModule, Response

_RATES = (9600, 19200, 38400, 57600, 115200, 230400, 460800, 500000, 576000, 921600)
_RATES_FAST = (1000000, 1152000, 1500000, 2000000, 3000000, 4000000)
_BAUD_OF_CODE = {
    getattr(termios, f"B{rate}"): rate
    for rate in (*_RATES, *_RATES_FAST)
    if hasattr(termios, f"B{rate}")
}

GARBAGE = b"\x00\xff\xc1\xc0\x55garbage\xc1"  # includes a false start byte on purpose


class PtyMock:
    """The emulated module behind a pty; a context manager that runs it in a thread.

    Parameters
    ----------
    module : EmulatedModule
        The instrument.
    faults : Faults, optional
        Armed faults (change them at run time through :attr:`faults`).
    link : path, optional
        A symlink kept pointing at the current pty, so that the port keeps its
        name when the device vanishes and reappears (as a udev by-id link does).
    baudrate : int, optional
        Pace replies at this rate; default: the rate the host set on the line.
    pace : bool, default True
        False writes as fast as the kernel takes bytes.
    """

    def __init__(
        self,
        module: EmulatedModule,
        faults: Faults | None = None,
        *,
        link: str | os.PathLike[str] | None = None,
        baudrate: int | None = None,
        pace: bool = True,
    ) -> None:
        self.module = module
        self.faults = faults or Faults()
        self.link = Path(link) if link is not None else None
        self.baudrate = baudrate
        self.pace = pace
        self.slave_path = ""
        self._master = -1
        self._slave = -1
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._deframer = Deframer()
        self.vanished = threading.Event()  # set while the device is gone
        self.replies_sent = 0
        self.appearances = 0  # ptys created: 1 + the reappearances after "vanish"
        self.error: Exception | None = None  # what stopped the server thread, if anything

    @property
    def path(self) -> str:
        """What the host should open: the link when there is one, else the pty."""
        return str(self.link) if self.link is not None else self.slave_path

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> Self:
        """Create the pty and start serving in a daemon thread."""
        self._open_pty()
        self._thread = threading.Thread(target=self._serve, name="obp-pty-mock", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the pty and remove the link; idempotent."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self._close_pty()
        if self.link is not None:
            with contextlib.suppress(FileNotFoundError):
                self.link.unlink()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until stopped (or ``timeout``); True when stopped."""
        return self._stop.wait(timeout)

    def _open_pty(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no line discipline: a byte pipe like a UART
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        self.slave_path = os.ttyname(slave)
        self._deframer.reset()
        if self.link is not None:
            tmp = self.link.with_name(self.link.name + ".tmp")
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            tmp.symlink_to(self.slave_path)
            os.replace(tmp, self.link)  # atomic: the host never sees a missing link
        self.vanished.clear()
        self.appearances += 1

    def _close_pty(self) -> None:
        for fd in (self._master, self._slave):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = -1

    # -- serving ------------------------------------------------------------------------

    def _serve(self) -> None:
        try:
            self._serve_forever()
        except Exception as exc:  # a mock bug must not look like a dead device
            self.error = exc
            self._stop.set()

    def _serve_forever(self) -> None:
        reappear_at: float | None = None
        while not self._stop.is_set():
            if self._master < 0:
                if reappear_at is not None and time.monotonic() >= reappear_at:
                    self._open_pty()
                    reappear_at = None
                else:
                    self._stop.wait(0.02)
                continue
            ready, _, _ = select.select([self._master], [], [], 0.05)
            if not ready:
                continue
            try:
                data = os.read(self._master, 4096)
            except BlockingIOError:
                continue
            except OSError:
                continue  # EIO while no host has the slave open: wait for one
            for event in self._deframer.feed(data):
                received = time.monotonic()
                response = self._respond(event)
                if response is None or response.frame is None:
                    continue
                gone, when = self._send(response, received)
                if gone:
                    reappear_at = None if when is None else time.monotonic() + when
                    break

    def _respond(self, event: Frame | Rejected) -> Response | None:
        if self.faults.take("dead"):
            return None
        if isinstance(event, Rejected):
            return self.module.reject(event.header) if event.header is not None else None
        if self.faults.take("notready"):
            self.module.state.not_ready += 1
        return self.module.handle(event)

    def _send(self, response: Response, received: float) -> tuple[bool, float | None]:
        """Write one reply with faults applied; (True, reappear delay) when the pty vanished.

        The reply is due ``delay`` after the request arrived, on the module's own clock:
        host scheduling jitter in this thread is absorbed, not added to the line time.
        """
        assert response.frame is not None
        ready_at = received + response.delay_s + self.faults.slow_s
        wait = ready_at - time.monotonic()
        if wait > 0 and self._stop.wait(wait):
            return False, None
        wire = bytearray(codec.encode(response.frame))
        if self.faults.take("corrupt"):
            # Inside the payload (or immediate data), covered by the MD5 but not a length.
            pos = codec.HEADER_SIZE + (len(wire) - codec.MIN_FRAME_SIZE) // 2
            if len(wire) == codec.MIN_FRAME_SIZE:
                pos = 24
            wire[pos] ^= 0x5A
        if self.faults.take("badfooter"):
            wire[-1] ^= 0xFF
        if self.faults.take("drop"):
            del wire[len(wire) // 3 : len(wire) // 3 + 3]
        if self.faults.take("garbage"):
            wire[:0] = GARBAGE
        vanish, reappear = self.faults.take_vanish()
        if vanish:
            self._write(bytes(wire[: len(wire) // 2]), ready_at)
            self._close_pty()
            self.vanished.set()
            return True, reappear
        self._write(bytes(wire), ready_at)
        self.replies_sent += 1
        return False, None

    def line_rate(self) -> int | None:
        """Bit rate replies are paced at (None: unpaced)."""
        if not self.pace:
            return None
        if self.baudrate:
            return self.baudrate
        try:
            code = termios.tcgetattr(self._master)[5]  # ospeed, shared by both sides
        except termios.error:
            return None
        return _BAUD_OF_CODE.get(code)

    def _write(self, data: bytes, start: float) -> None:
        """Write ``data`` as if sent from ``start`` at the line rate (1-byte writes: ``chunk1``)."""
        rate = self.line_rate()
        chunk = 1 if self.faults.chunk1 else max(1, (rate or 0) // 10 // 200) if rate else len(data)
        sent = 0
        while sent < len(data) and not self._stop.is_set():
            piece = data[sent : sent + chunk]
            if rate:
                # A byte reaches the host once its last bit is on the line.
                pause = start + (sent + len(piece)) * 10 / rate - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
            if not self._write_all(piece):
                return
            sent += len(piece)

    def _write_all(self, data: bytes) -> bool:
        view = memoryview(data)
        deadline = time.monotonic() + 2.0  # a host that stopped reading: drop, like a UART
        while view:
            try:
                n = os.write(self._master, view)
                view = view[n:]
            except BlockingIOError:
                if time.monotonic() > deadline:
                    return False
                select.select([], [self._master], [], 0.05)
            except OSError as exc:
                if exc.errno in (errno.EIO, errno.EBADF):
                    return False
                raise
        return True
