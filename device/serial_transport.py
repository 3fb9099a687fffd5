"""A serial port that moves bytes, with pyserial and OS errors turned into :mod:`device.errors`.

Knows nothing of any protocol. Opens exclusively (a second process on the same
adapter would interleave frames), bounds every write and read by a timeout,
and says how long a number of bytes takes on the line (for sizing timeouts).
"""

from __future__ import annotations

import contextlib
import errno
import select
import termios
import time
from types import TracebackType
from typing import Self

import serial

from device.errors import DeviceBusyError, DeviceDisconnectedError, DeviceError, DeviceNotFoundError

#: Bits per byte on an 8N1 line: start bit, 8 data bits, stop bit.
BITS_PER_BYTE = 10

#: What a vanished port raises from pyserial, the OS, or termios ioctls.
_IO_ERRORS = (serial.SerialException, OSError, termios.error, ValueError)

_NOT_FOUND = {errno.ENOENT, errno.ENODEV, errno.ENXIO}
_BUSY = {errno.EBUSY, errno.EAGAIN, errno.EWOULDBLOCK}


class SerialTransport:
    """One open serial port (8N1, no flow control).

    Parameters
    ----------
    port : str
        Device path (``/dev/ttyUSB0``, ``/dev/pts/7``, a udev symlink) or pyserial URL.
    baudrate : int, default 115200
        Line rate in bit/s.
    write_timeout : float, default 2.0
        Seconds a write may block before the port is declared gone.
    exclusive : bool, default True
        Refuse to share the port with another process.
    """

    def __init__(
        self,
        port: str,
        baudrate: int = 115_200,
        *,
        write_timeout: float = 2.0,
        exclusive: bool = True,
    ) -> None:
        if baudrate <= 0:
            raise ValueError(f"baudrate must be positive, got {baudrate}")
        if write_timeout <= 0:
            raise ValueError(f"write_timeout must be positive, got {write_timeout}")
        self.port = port
        self.baudrate = baudrate
        self.write_timeout = write_timeout
        self.exclusive = exclusive
        self._serial: serial.Serial | None = None

    # -- lifecycle ---------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        """Whether the port is open."""
        return self._serial is not None

    def open(self) -> None:
        """Open the port and drop whatever a previous user left unread.

        Raises
        ------
        DeviceNotFoundError
            The path does not exist (or is not a serial device any more).
        DeviceBusyError
            Another process holds the port.
        DeviceError
            Any other failure to open or configure it.
        """
        if self._serial is not None:
            return
        try:
            ser = serial.Serial(
                self.port,
                self.baudrate,
                timeout=0,
                write_timeout=self.write_timeout,
                exclusive=self.exclusive,
            )
            ser.reset_input_buffer()
        except serial.SerialException as exc:
            raise _translate_open(exc, self.port) from None
        except (OSError, ValueError, termios.error) as exc:
            raise DeviceError(f"cannot open serial port: {exc}", port=self.port) from None
        self._serial = ser

    def close(self) -> None:
        """Close the port; idempotent and silent if the port already vanished."""
        ser, self._serial = self._serial, None
        if ser is not None:
            # A port that is gone already has nothing left to release.
            with contextlib.suppress(*_IO_ERRORS):
                ser.close()

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- bytes ---------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Write all of ``data`` (blocking at most ``write_timeout``)."""
        ser = self._require_open()
        try:
            ser.write(data)
            ser.flush()
        except serial.SerialTimeoutException:
            raise DeviceDisconnectedError(
                f"write of {len(data)} bytes did not complete in {self.write_timeout} s",
                port=self.port,
            ) from None
        except _IO_ERRORS as exc:
            raise DeviceDisconnectedError(f"write failed: {exc}", port=self.port) from None

    def read(self, timeout: float, max_bytes: int = 65536) -> bytes:
        """Bytes that arrive within ``timeout`` seconds: returns as soon as any are there.

        Returns ``b""`` on timeout. Raises :class:`DeviceDisconnectedError` when the port vanished.
        """
        ser = self._require_open()
        try:
            waiting = ser.in_waiting
            if not waiting:
                # Wait with select rather than pyserial's timeout: changing that
                # attribute reconfigures the port (termios calls) every time.
                ready, _, _ = select.select([ser.fileno()], [], [], max(timeout, 0.0))
                if not ready:
                    return b""
                waiting = ser.in_waiting
            # Readable with nothing waiting means the device went away: read() says so.
            return bytes(ser.read(min(max(waiting, 1), max_bytes)))
        except _IO_ERRORS as exc:
            raise DeviceDisconnectedError(f"read failed: {exc}", port=self.port) from None

    def reset_input(self) -> None:
        """Discard unread input (stale replies after a timeout)."""
        ser = self._require_open()
        try:
            ser.reset_input_buffer()
        except _IO_ERRORS as exc:
            raise DeviceDisconnectedError(f"port lost: {exc}", port=self.port) from None

    def line_time(self, n_bytes: int) -> float:
        """Seconds ``n_bytes`` take on the line at the current baud rate."""
        return n_bytes * BITS_PER_BYTE / self.baudrate

    def _require_open(self) -> serial.Serial:
        if self._serial is None:
            raise DeviceDisconnectedError("port is not open", port=self.port)
        return self._serial


def _translate_open(exc: serial.SerialException, port: str) -> DeviceError:
    code = getattr(exc, "errno", None)
    text = str(exc)
    if code in _NOT_FOUND:
        return DeviceNotFoundError("no such serial port", port=port)
    if code in _BUSY or "exclusively lock" in text:
        return DeviceBusyError("serial port is in use by another process", port=port)
    return DeviceError(f"cannot open serial port: {text}", port=port)


def wait_for_port(transport: SerialTransport, deadline: float, poll: float = 0.05) -> bool:
    """Try to (re)open ``transport`` until ``deadline`` (``time.monotonic()``); True on success.

    Any failure to open (missing, busy, not yet configured) is retried until the deadline.
    """
    while True:
        try:
            transport.open()
            return True
        except DeviceError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(poll)
