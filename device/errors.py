"""The one exception root of :mod:`device`; OS, pyserial and bleak errors become these."""

from __future__ import annotations


class DeviceError(Exception):
    """Root of every error raised by :mod:`device`; ``port`` names the port or address."""

    def __init__(self, message: str, *, port: str | None = None) -> None:
        self.port = port
        super().__init__(f"{port}: {message}" if port else message)


class DeviceNotFoundError(DeviceError):
    """The port or address does not exist (unplugged, mistyped, never there)."""


class DeviceBusyError(DeviceError):
    """The port exists but another process holds it open exclusively."""


class DeviceTimeoutError(DeviceError):
    """The instrument did not answer in time, even after the allowed retries."""


class DeviceDisconnectedError(DeviceError):
    """The port or link went away while in use and did not come back in time."""


class ProtocolError(DeviceError):
    """Bytes that are not a valid frame of the expected protocol (or an unexpected reply)."""


class InstrumentRejectedError(DeviceError):
    """The instrument understood the request and refused it with an error code.

    ``code`` is the instrument's numeric code, ``code_name`` its documented name and
    ``opcode`` the command that was refused (``None`` where the protocol has none).
    """

    def __init__(
        self,
        message: str,
        *,
        code: int,
        code_name: str,
        opcode: int | None = None,
        port: str | None = None,
    ) -> None:
        self.code = code
        self.code_name = code_name
        self.opcode = opcode
        super().__init__(message, port=port)


class TransferError(ProtocolError):
    """A multi-packet transfer arrived damaged: ``kind`` is missing, duplicate or malformed."""

    def __init__(
        self, message: str, *, kind: str, expected: int, got: int, port: str | None = None
    ) -> None:
        self.kind = kind
        self.expected = expected
        self.got = got
        super().__init__(message, port=port)
