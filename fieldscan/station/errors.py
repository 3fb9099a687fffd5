"""Errors of the station; each says what happened to the officer's data (it is kept)."""

from __future__ import annotations


class StationError(Exception):
    """Root of the station's errors."""


class OutboxFullError(StationError):
    """The disk is full: the new record was not written; what was recorded is untouched."""


class UnknownRecordError(StationError, KeyError):
    """No outbox record has this UUID."""

    def __init__(self, uuid: str) -> None:
        self.uuid = uuid
        super().__init__(f"no outbox record {uuid}")


class DeviceKeyRejectedError(StationError):
    """The service refused this station's API key (revoked or wrong); records stay queued."""
