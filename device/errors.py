"""The one exception root of :mod:`device`; OS, pyserial and bleak errors become these."""

from __future__ import annotations


class DeviceError(Exception):
    """Root of every error raised by :mod:`device`; ``port`` names the port or address."""

    def __init__(self, message: str, *, port: str | None = None) -> None:
        self.port = port
        super().__init__(f"{port}: {message}" if port else message)
