"""Errors the Ocean Binary Protocol reports, one class per error code the driver acts on."""

from __future__ import annotations

import enum

from device.errors import DeviceError, ProtocolError


class ErrorCode(enum.IntEnum):
    """Error numbers of the OBP header (Ocean Insight's OBP documentation, table of errors)."""

    SUCCESS = 0
    INVALID_PROTOCOL = 1
    UNKNOWN_MESSAGE_TYPE = 2
    BAD_CHECKSUM = 3
    MESSAGE_TOO_LARGE = 4
    PAYLOAD_LENGTH_MISMATCH = 5
    PAYLOAD_INVALID = 6
    DEVICE_NOT_READY = 7
    UNKNOWN_CHECKSUM_TYPE = 8
    DEVICE_RESET = 9
    TOO_MANY_BUSES = 10
    OUT_OF_MEMORY = 11
    INFORMATION_DOES_NOT_EXIST = 12
    INTERNAL_DEVICE_ERROR = 13
    DECRYPT_FAILED = 100
    FIRMWARE_LAYOUT_INVALID = 101
    DATA_PACKET_WRONG_SIZE = 102
    HARDWARE_REVISION_INCOMPATIBLE = 103
    FLASH_MAP_INCOMPATIBLE = 104
    DEFERRED = 255

    @property
    def description(self) -> str:
        """The documented meaning, as a short phrase."""
        return _DESCRIPTIONS[self]


_DESCRIPTIONS: dict[ErrorCode, str] = {
    ErrorCode.SUCCESS: "success",
    ErrorCode.INVALID_PROTOCOL: "invalid or unsupported protocol",
    ErrorCode.UNKNOWN_MESSAGE_TYPE: "unknown message type",
    ErrorCode.BAD_CHECKSUM: "bad checksum",
    ErrorCode.MESSAGE_TOO_LARGE: "message too large",
    ErrorCode.PAYLOAD_LENGTH_MISMATCH: "payload length does not match message type",
    ErrorCode.PAYLOAD_INVALID: "payload data invalid",
    ErrorCode.DEVICE_NOT_READY: "device not ready for this message type",
    ErrorCode.UNKNOWN_CHECKSUM_TYPE: "unknown checksum type",
    ErrorCode.DEVICE_RESET: "device reset unexpectedly",
    ErrorCode.TOO_MANY_BUSES: "commands came from too many bus interfaces",
    ErrorCode.OUT_OF_MEMORY: "device out of memory",
    ErrorCode.INFORMATION_DOES_NOT_EXIST: "command valid but the information does not exist",
    ErrorCode.INTERNAL_DEVICE_ERROR: "internal device error, may be unrecoverable",
    ErrorCode.DECRYPT_FAILED: "could not decrypt",
    ErrorCode.FIRMWARE_LAYOUT_INVALID: "firmware layout invalid",
    ErrorCode.DATA_PACKET_WRONG_SIZE: "data packet was the wrong size",
    ErrorCode.HARDWARE_REVISION_INCOMPATIBLE: "hardware revision not compatible with firmware",
    ErrorCode.FLASH_MAP_INCOMPATIBLE: "existing flash map not compatible with firmware",
    ErrorCode.DEFERRED: "operation deferred",
}


class FrameError(ProtocolError):
    """Bytes that do not decode as one OBP frame; ``reason`` says which rule failed."""

    def __init__(self, reason: str, *, port: str | None = None) -> None:
        self.reason = reason
        super().__init__(f"not a valid OBP frame: {reason}", port=port)


class ObpError(DeviceError):
    """The instrument answered with NACK or a hardware exception; carries the error ``code``.

    ``code`` is an :class:`ErrorCode` for documented numbers, else the raw int.
    """

    def __init__(self, code: int, message_type: int, *, port: str | None = None) -> None:
        self.code: ErrorCode | int = ErrorCode(code) if code in _CODES else code
        self.message_type = message_type
        meaning = self.code.description if isinstance(self.code, ErrorCode) else "undocumented"
        super().__init__(
            f"device refused message 0x{message_type:08X}: error {int(code)} ({meaning})",
            port=port,
        )


class UnknownMessageTypeError(ObpError):
    """Error 2: the instrument does not implement this message (an optional feature)."""


class BadChecksumError(ObpError):
    """Error 3: the instrument saw a corrupted request."""


class PayloadLengthMismatchError(ObpError):
    """Error 5: the request's payload has the wrong length for its message type."""


class PayloadInvalidError(ObpError):
    """Error 6: the request's payload is out of range."""


class DeviceNotReadyError(ObpError):
    """Error 7: the instrument is busy; the same request may succeed a moment later."""


class HardwareExceptionError(ObpError):
    """The reply carries the hardware-exception flag: the module hit a fault of its own."""


class ProtocolDeprecatedError(ProtocolError):
    """The instrument flags the protocol version we speak as deprecated."""


_CODES = {int(c) for c in ErrorCode}

_CLASS_FOR_CODE: dict[int, type[ObpError]] = {
    ErrorCode.UNKNOWN_MESSAGE_TYPE: UnknownMessageTypeError,
    ErrorCode.BAD_CHECKSUM: BadChecksumError,
    ErrorCode.PAYLOAD_LENGTH_MISMATCH: PayloadLengthMismatchError,
    ErrorCode.PAYLOAD_INVALID: PayloadInvalidError,
    ErrorCode.DEVICE_NOT_READY: DeviceNotReadyError,
}


def error_for_code(code: int, message_type: int, *, port: str | None = None) -> ObpError:
    """The typed exception for an OBP error number (:class:`ObpError` when no subclass)."""
    cls = _CLASS_FOR_CODE.get(code, ObpError)
    return cls(code, message_type, port=port)
