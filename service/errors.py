"""The one exception root of :mod:`service`; database and crypto errors become these.

Routes turn them into HTTP responses (:mod:`service.api.errors`); the CLI prints them as one line.
"""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """Root of every error raised by :mod:`service`."""


class ConfigError(ServiceError):
    """The service settings or its data directory cannot be used."""


class DatabaseError(ServiceError):
    """The database is unreachable or refused an operation; ``url`` has no password."""

    def __init__(self, reason: str, *, url: str | None = None) -> None:
        self.reason = reason
        self.url = url
        super().__init__(f"database {url}: {reason}" if url else f"database: {reason}")


class NotFoundError(ServiceError):
    """A record does not exist or is not visible to the caller (another agency's)."""

    def __init__(self, entity: str, entity_id: object) -> None:
        self.entity = entity
        self.entity_id = entity_id
        super().__init__(f"{entity} {entity_id} not found")


class AuthenticationError(ServiceError):
    """Credentials are missing, wrong, expired or revoked."""


class PermissionDeniedError(ServiceError):
    """The caller's role may not do this; carries the role and the action."""

    def __init__(self, role: str, action: str) -> None:
        self.role = role
        self.action = action
        super().__init__(f"role {role!r} may not {action}")


class InvalidInputError(ServiceError, ValueError):
    """A request is well-formed but its content is not acceptable; ``field`` names the culprit."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class ConflictError(ServiceError):
    """The request conflicts with the stored state (duplicate name, reused idempotency key...)."""


class PreconditionFailedError(ServiceError):
    """An ``If-Match`` version is stale; carries what the caller expected and what is stored."""

    def __init__(self, entity: str, expected: Any, current: Any) -> None:
        self.entity = entity
        self.expected = expected
        self.current = current
        super().__init__(
            f"{entity} changed: If-Match {expected!r} but current version is {current!r}"
        )


class PreconditionRequiredError(ServiceError):
    """A write that needs ``If-Match`` came without it."""


class ApprovalRequiredError(ServiceError):
    """Raised inside crud when a change needs a second person; never leaves the crud layer."""


class AuditChainError(ServiceError):
    """The audit chain or a signed checkpoint cannot be read or written."""
