"""Tables of the linking engine: per-seizure attribute keys (the index) and suggested links.

:class:`LinkKey` rows are derived data, rebuilt whenever a seizure is correlated, so they
are not versioned. :class:`SeizureLink` rows carry investigators' decisions: every change
(suggested, reasons updated, accepted, dismissed) is a new audited version.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Float, Index, Integer, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from service.core.types import BigIntPK, UtcDateTime, utcnow


class LinkStatus(enum.StrEnum):
    SUGGESTED = "suggested"
    ACCEPTED = "accepted"
    DISMISSED = "dismissed"
    #: Suggested once, but no reason holds any more (a record was corrected).
    WITHDRAWN = "withdrawn"


class ReasonKind(enum.StrEnum):
    AIR_WAYBILL = "air_waybill"
    CONTAINER = "container"
    TRACKING_NUMBER = "tracking_number"
    PERSON = "person"
    COMPANY = "company"
    ROUTE = "route"
    CHEMICAL_PROFILE = "chemical_profile"
    PRECURSOR = "precursor"


class LinkKey(SQLModel, table=True):
    """One normalised attribute of one seizure, e.g. ``awb:04512345675``.

    ``at`` is the seizure's date, so time-windowed kinds (route, precursor) are answered
    from the same index: ``(agency_id, key, at)``.
    """

    __tablename__ = "link_key"
    __table_args__ = (Index("ix_link_key_lookup", "agency_id", "key", "at"),)
    id: int | None = Field(default=None, primary_key=True, sa_type=BigIntPK)
    seizure_id: uuid.UUID = Field(foreign_key="seizure.id", index=True)
    agency_id: uuid.UUID = Field(foreign_key="agency.id")
    kind: str = Field(sa_type=String(32))
    key: str = Field(sa_type=String(300))
    at: datetime = Field(sa_type=UtcDateTime)
    #: What the key stands for, for reasons (a display value, or a profile's fractions as JSON).
    detail: str | None = Field(default=None, sa_type=Text)


class LinkReason(SQLModel):
    kind: ReasonKind
    detail: str
    #: The normalised key both seizures share; compares reasons across re-correlations.
    key: str


class SeizureLink(SQLModel, table=True):
    """A suggested link between two seizures of one agency; one row per unordered pair.

    ``seizure_a_id`` is the smaller id of the pair, so a pair has exactly one spelling.
    """

    __tablename__ = "seizure_link"
    __table_args__ = (
        UniqueConstraint("seizure_a_id", "seizure_b_id", name="uq_seizure_link_pair"),
        Index("ix_seizure_link_agency_status", "agency_id", "status", "strength"),
    )
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    agency_id: uuid.UUID = Field(foreign_key="agency.id")
    seizure_a_id: uuid.UUID = Field(foreign_key="seizure.id")
    seizure_b_id: uuid.UUID = Field(foreign_key="seizure.id", index=True)
    reasons: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    strength: float = Field(default=0.0, sa_type=Float)
    status: LinkStatus = Field(default=LinkStatus.SUGGESTED, sa_type=String(16))
    decided_by_user_id: uuid.UUID | None = Field(default=None, foreign_key="user.id")
    decided_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    decision_reason: str | None = Field(default=None, sa_type=Text)
    version: int = Field(default=1, sa_type=Integer)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class LinkPublic(SQLModel):
    id: uuid.UUID
    agency_id: uuid.UUID
    seizure_a_id: uuid.UUID
    seizure_b_id: uuid.UUID
    reasons: list[LinkReason]
    strength: float
    status: LinkStatus
    decided_by_user_id: uuid.UUID | None
    decided_at: datetime | None
    decision_reason: str | None
    version: int
    created_at: datetime
    updated_at: datetime


class LinkAccept(SQLModel):
    reason: str | None = Field(default=None, min_length=1, max_length=1000)


class LinkDismiss(SQLModel):
    reason: str = Field(min_length=1, max_length=1000)
