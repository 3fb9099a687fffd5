"""Who is acting: a user, a field station's device key, or the system (CLI bootstrap)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from service.errors import PermissionDeniedError

DEVICE_ROLE = "device"
SYSTEM_ROLE = "system"


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of a crud function; ``agency_id`` scopes everything it may see."""

    agency_id: uuid.UUID | None
    role: str
    user_id: uuid.UUID | None = None
    device_id: uuid.UUID | None = None

    def require(self, roles: frozenset[str], action: str) -> None:
        """Raise :class:`PermissionDeniedError` unless this principal's role is in ``roles``."""
        if self.role not in roles:
            raise PermissionDeniedError(self.role, action)

    @property
    def scope(self) -> uuid.UUID:
        """The agency every query of this principal is restricted to."""
        if self.agency_id is None:
            raise PermissionDeniedError(self.role, "act without an agency")
        return self.agency_id


SYSTEM = Principal(agency_id=None, role=SYSTEM_ROLE)

# Who may do what (roles of users, plus field stations' device keys).
FIELD_WRITERS = frozenset({"officer", "supervisor", "investigator", DEVICE_ROLE})
LAB_WRITERS = frozenset({"analyst", "supervisor"})
CUSTODY_WRITERS = FIELD_WRITERS | LAB_WRITERS
EDITORS = frozenset({"officer", "supervisor", "investigator"})
APPROVERS = frozenset({"supervisor"})
ADMINS = frozenset({"admin"})
READERS = frozenset({"officer", "supervisor", "investigator", "analyst", "admin", DEVICE_ROLE})
AUDITORS = frozenset({"supervisor", "admin", "investigator"})
