"""Tables of the linking engine: per-seizure attribute keys (the index), suggested links,
spectral fingerprints, the durable correlation queue and cross-agency alerts.

:class:`LinkKey`, :class:`LinkSpectrum` and :class:`LinkQueue` rows are derived data,
rebuilt whenever a seizure is correlated, so they are not versioned. :class:`SeizureLink`
rows carry investigators' decisions and :class:`LinkAlert` rows who read them: every
change is a new audited version.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
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
    RAW_SPECTRUM = "raw_spectrum"


#: ``LinkKey.audience_id`` of keys every agency may read (seizures shared with all).
EVERYONE = uuid.UUID(int=0)


class LinkKey(SQLModel, table=True):
    """One normalised attribute of one seizure, e.g. ``awb:04512345675``, for one audience.

    ``audience_id`` is an agency that may read the seizure (its owner, or a partner it is
    shared with), or :data:`EVERYONE` for a seizure shared with all: "keys agency X may
    read" is then ``audience_id IN (X, EVERYONE)``, one index range each. ``at`` is the
    seizure's date, so time-windowed kinds (route, precursor) are answered from the same
    index: ``(audience_id, key, at)``. ``(key, at)`` answers "every seizure with this key"
    for a seizure shared with all agencies.
    """

    __tablename__ = "link_key"
    __table_args__ = (
        # seizure_id included: the lookups are index-only scans on PostgreSQL.
        Index(
            "ix_link_key_audience",
            "audience_id",
            "key",
            "at",
            postgresql_include=["seizure_id"],
        ),
        Index("ix_link_key_key", "key", "at", postgresql_include=["seizure_id"]),
    )
    id: int | None = Field(default=None, primary_key=True, sa_type=BigIntPK)
    seizure_id: uuid.UUID = Field(foreign_key="seizure.id", index=True)
    #: The owning agency of the seizure.
    agency_id: uuid.UUID = Field(foreign_key="agency.id")
    audience_id: uuid.UUID
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
    """A suggested link between two seizures, as one agency sees and decides it.

    One row per (agency, unordered pair): ``agency_id`` owns one of the two seizures and
    may read the other (its own, or shared with it). A pair of two agencies' seizures
    readable by both has two rows, each agency accepting or dismissing on its own.
    ``seizure_a_id`` is the smaller id of the pair, so a pair has exactly one spelling.
    """

    __tablename__ = "seizure_link"
    __table_args__ = (
        UniqueConstraint(
            "agency_id", "seizure_a_id", "seizure_b_id", name="uq_seizure_link_agency_pair"
        ),
        Index("ix_seizure_link_agency_status", "agency_id", "status", "strength"),
    )
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    agency_id: uuid.UUID = Field(foreign_key="agency.id")
    seizure_a_id: uuid.UUID = Field(foreign_key="seizure.id", index=True)
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


class LinkSpectrum(SQLModel, table=True):
    """The spectral fingerprint of one field test (derived; see :mod:`.spectral`).

    ``vector`` (float16) verifies candidates found through the band keys; it is None when
    the spectrum has no comparable form (kind without a grid, too little coverage).
    ``spectrum_sha256`` tells whether the stored fingerprint is still the test's.
    """

    __tablename__ = "link_spectrum"
    field_test_id: uuid.UUID = Field(primary_key=True, foreign_key="field_test.id")
    seizure_id: uuid.UUID = Field(foreign_key="seizure.id", index=True)
    kind: str = Field(sa_type=String(16))
    spectrum_sha256: str = Field(sa_type=String(64))
    vector: bytes | None = Field(default=None, sa_type=LargeBinary)
    #: The band hashes, hexadecimal, comma-separated (the keys are derived from them).
    bands: str = Field(default="", sa_type=String(400))


class LinkQueue(SQLModel, table=True):
    """A seizure waiting to be correlated: written in the same transaction as the change.

    The worker correlates it after the commit and deletes the row in the transaction that
    writes the links, so a crash in between leaves the row for the next worker.
    """

    __tablename__ = "link_queue"
    seizure_id: uuid.UUID = Field(primary_key=True, foreign_key="seizure.id")
    enqueued_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    attempts: int = Field(default=0, sa_type=Integer)
    last_error: str | None = Field(default=None, sa_type=Text)


class LinkAlert(SQLModel, table=True):
    """One agency's alert: its seizure was linked to a seizure of another agency.

    ``reasons`` are stored as the recipient may see them: when it may not read the other
    seizure, only what it already knows (its own values) and the kind of each reason.
    """

    __tablename__ = "link_alert"
    __table_args__ = (
        UniqueConstraint("agency_id", "seizure_id", "other_seizure_id", name="uq_link_alert_pair"),
        Index("ix_link_alert_agency", "agency_id", "read_at", "created_at"),
    )
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    agency_id: uuid.UUID = Field(foreign_key="agency.id")
    seizure_id: uuid.UUID = Field(foreign_key="seizure.id")
    other_agency_id: uuid.UUID = Field(foreign_key="agency.id")
    other_seizure_id: uuid.UUID = Field(foreign_key="seizure.id")
    #: The recipient's own link row, when it may read both seizures.
    link_id: uuid.UUID | None = Field(default=None, foreign_key="seizure_link.id")
    reasons: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    strength: float = Field(default=0.0, sa_type=Float)
    read_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    read_by_user_id: uuid.UUID | None = Field(default=None, foreign_key="user.id")
    version: int = Field(default=1, sa_type=Integer)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class AlertPublic(SQLModel):
    id: uuid.UUID
    seizure_id: uuid.UUID
    other_agency_id: uuid.UUID
    other_agency_name: str
    #: Only when the recipient may read the other seizure (now).
    other_seizure_id: uuid.UUID | None
    #: Only when the recipient may read both seizures (now).
    link_id: uuid.UUID | None
    reasons: list[LinkReason]
    strength: float
    read_at: datetime | None
    read_by_user_id: uuid.UUID | None
    version: int
    created_at: datetime


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
