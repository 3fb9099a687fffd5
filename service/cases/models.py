"""Investigations (issue 8): cases grouping seizures, persons, companies and documents.

A case belongs to one agency, which alone writes it; like a seizure it carries a sharing
level and named partners (:mod:`service.sharing`), and everything attached to it (member
seizures, persons and companies, documents, tasks, notes) is read under the case's sharing.
Every table here is versioned and audited like the seizure log; nothing is ever deleted:
a member, person, company or document taken off a case keeps its row with ``removed_at``.
"""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from typing import Any

from pydantic import field_validator, model_validator
from sqlalchemy import JSON, BigInteger, Column, Index, Integer, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from service.core.types import UtcDateTime, utcnow
from service.models import VERSIONED, CompanyRef, PersonRef
from service.sharing import SharingLevel

#: ``RecordShare.entity_type`` (and audit entity type) of cases.
CASE_ENTITY = "case"


class CaseStatus(enum.StrEnum):
    OPEN = "open"
    SUSPENDED = "suspended"
    CLOSED = "closed"


class TaskKind(enum.StrEnum):
    CONTROLLED_DELIVERY = "controlled_delivery"
    FINANCIAL_ENQUIRY = "financial_enquiry"
    MUTUAL_LEGAL_ASSISTANCE = "mutual_legal_assistance"
    SURVEILLANCE = "surveillance"
    LABORATORY_REQUEST = "laboratory_request"
    OTHER = "other"


class TaskStatus(enum.StrEnum):
    OPEN = "open"
    DONE = "done"
    CANCELLED = "cancelled"


class EntityKind(enum.StrEnum):
    PERSON = "person"
    COMPANY = "company"


def _id_field() -> Any:
    return Field(default_factory=uuid.uuid4, primary_key=True)


def _ts_field(**kw: Any) -> Any:
    return Field(default_factory=utcnow, sa_type=UtcDateTime, **kw)


# --------------------------------------------------------------------------- case


class CaseBase(SQLModel):
    title: str = Field(min_length=1, max_length=200, sa_type=String(200))
    #: The agency's own file number (e.g. "DIRANDRO-2026-0142"); unique within the agency.
    reference: str = Field(
        min_length=1,
        max_length=50,
        schema_extra={"pattern": r"^[^\s].*$"},
        sa_type=String(50),
    )
    status: CaseStatus = Field(default=CaseStatus.OPEN, sa_type=String(16), index=True)
    summary: str | None = Field(default=None, max_length=20_000, sa_type=Text)
    lead_investigator_id: uuid.UUID | None = Field(default=None, foreign_key="user.id")
    sharing: SharingLevel = Field(default=SharingLevel.OWN, sa_type=String(16))
    shared_with: list[uuid.UUID] = Field(default_factory=list, sa_column=Column(JSON))


class CaseCreate(CaseBase):
    #: Client-generated: the record's id, and the idempotency key when no header is sent.
    id: uuid.UUID | None = None


class CaseUpdate(SQLModel):
    """Fields to change; ``reason`` is kept with the new version."""

    title: str | None = Field(default=None, min_length=1, max_length=200)
    reference: str | None = Field(
        default=None, min_length=1, max_length=50, schema_extra={"pattern": r"^[^\s].*$"}
    )
    status: CaseStatus | None = None
    summary: str | None = Field(default=None, max_length=20_000)
    lead_investigator_id: uuid.UUID | None = None
    sharing: SharingLevel | None = None
    shared_with: list[uuid.UUID] | None = None
    reason: str = Field(min_length=1, max_length=1000)


class Case(CaseBase, table=True):
    __tablename__ = "case"
    __table_args__ = (
        UniqueConstraint("agency_id", "reference", name="uq_case_agency_reference"),
        Index("ix_case_agency_updated", "agency_id", "updated_at"),
    )
    id: uuid.UUID = _id_field()
    agency_id: uuid.UUID = Field(foreign_key="agency.id")
    created_by_user_id: uuid.UUID | None = Field(default=None, foreign_key="user.id")
    version: int = Field(default=1, sa_type=Integer)
    created_at: datetime = _ts_field()
    updated_at: datetime = _ts_field()


class CasePublic(CaseBase):
    id: uuid.UUID
    agency_id: uuid.UUID
    created_by_user_id: uuid.UUID | None
    version: int
    created_at: datetime
    updated_at: datetime


class CasesPublic(SQLModel):
    data: list[CasePublic]
    #: Whether more rows follow ``skip + len(data)``.
    has_more: bool


class Removal(SQLModel):
    """Taking a member, person, company or document off a case: why (kept in the history)."""

    reason: str = Field(min_length=1, max_length=1000)


# --------------------------------------------------------------------------- members


class CaseSeizureCreate(SQLModel):
    id: uuid.UUID | None = None
    seizure_id: uuid.UUID
    #: Why the seizure belongs to the case.
    note: str | None = Field(default=None, max_length=2000)


class CaseSeizure(SQLModel, table=True):
    """A seizure in a case; the seizure may be another agency's, shared with the case's."""

    __tablename__ = "case_seizure"
    __table_args__ = (UniqueConstraint("case_id", "seizure_id", name="uq_case_seizure"),)
    id: uuid.UUID = _id_field()
    case_id: uuid.UUID = Field(foreign_key="case.id")
    seizure_id: uuid.UUID = Field(foreign_key="seizure.id", index=True)
    #: The case's agency (isolation, history); the seizure's agency may differ.
    agency_id: uuid.UUID = Field(foreign_key="agency.id")
    note: str | None = Field(default=None, sa_type=Text)
    added_by_user_id: uuid.UUID | None = Field(default=None, foreign_key="user.id")
    removed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    version: int = Field(default=1, sa_type=Integer)
    created_at: datetime = _ts_field()


class CaseSeizurePublic(SQLModel):
    id: uuid.UUID
    case_id: uuid.UUID
    seizure_id: uuid.UUID
    note: str | None
    added_by_user_id: uuid.UUID | None
    removed_at: datetime | None
    version: int
    created_at: datetime


class MembersPublic(SQLModel):
    data: list[CaseSeizurePublic]
    #: Members whose seizure the caller may not read (another agency's, not shared with them).
    hidden: int


# --------------------------------------------------------------------------- persons, companies


class CaseEntityCreate(SQLModel):
    """A person or a company of the case, by reference (the seizure log's minimal forms)."""

    id: uuid.UUID | None = None
    kind: EntityKind
    person: PersonRef | None = None
    company: CompanyRef | None = None
    note: str | None = Field(default=None, max_length=2000)

    @model_validator(mode="after")
    def _one_of(self) -> CaseEntityCreate:
        given = self.person if self.kind == EntityKind.PERSON else self.company
        other = self.company if self.kind == EntityKind.PERSON else self.person
        if given is None or other is not None:
            kind = self.kind.value
            raise ValueError(f"an entity of kind {kind!r} needs {kind} (and nothing else)")
        return self


class CaseEntity(SQLModel, table=True):
    __tablename__ = "case_entity"
    id: uuid.UUID = _id_field()
    case_id: uuid.UUID = Field(foreign_key="case.id", index=True)
    agency_id: uuid.UUID = Field(foreign_key="agency.id")
    kind: EntityKind = Field(sa_type=String(16))
    #: The :class:`PersonRef` or :class:`CompanyRef` as JSON.
    details: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    note: str | None = Field(default=None, sa_type=Text)
    added_by_user_id: uuid.UUID | None = Field(default=None, foreign_key="user.id")
    removed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    version: int = Field(default=1, sa_type=Integer)
    created_at: datetime = _ts_field()


class CaseEntityPublic(SQLModel):
    id: uuid.UUID
    case_id: uuid.UUID
    kind: EntityKind
    details: dict[str, Any]
    note: str | None
    added_by_user_id: uuid.UUID | None
    removed_at: datetime | None
    version: int
    created_at: datetime


# --------------------------------------------------------------------------- documents


class CaseDocument(SQLModel, table=True):
    """A document of the case; its bytes live once in :class:`service.models.Blob`."""

    __tablename__ = "case_document"
    id: uuid.UUID = _id_field()
    case_id: uuid.UUID = Field(foreign_key="case.id", index=True)
    agency_id: uuid.UUID = Field(foreign_key="agency.id")
    sha256: str = Field(foreign_key="blob.sha256", sa_type=String(64))
    filename: str = Field(sa_type=String(255))
    media_type: str = Field(sa_type=String(100))
    size: int = Field(sa_type=BigInteger)
    description: str | None = Field(default=None, sa_type=Text)
    added_by_user_id: uuid.UUID | None = Field(default=None, foreign_key="user.id")
    removed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    version: int = Field(default=1, sa_type=Integer)
    created_at: datetime = _ts_field()


class CaseDocumentPublic(SQLModel):
    id: uuid.UUID
    case_id: uuid.UUID
    sha256: str
    filename: str
    media_type: str
    size: int
    description: str | None
    added_by_user_id: uuid.UUID | None
    removed_at: datetime | None
    version: int
    created_at: datetime


# --------------------------------------------------------------------------- tasks


class TaskBase(SQLModel):
    kind: TaskKind = Field(sa_type=String(32))
    title: str = Field(min_length=1, max_length=200, sa_type=String(200))
    details: str | None = Field(default=None, max_length=5000, sa_type=Text)
    #: The user who carries the task out (a user of the case's agency).
    owner_user_id: uuid.UUID = Field(foreign_key="user.id", index=True)


class TaskCreate(TaskBase):
    id: uuid.UUID | None = None
    due_date: date | None = None

    @field_validator("due_date")
    @classmethod
    def _plausible(cls, value: date | None) -> date | None:
        if value is not None and not 2000 <= value.year <= 2100:
            raise ValueError("due_date must be between the years 2000 and 2100")
        return value


class TaskUpdate(SQLModel):
    kind: TaskKind | None = None
    title: str | None = Field(default=None, min_length=1, max_length=200)
    details: str | None = Field(default=None, max_length=5000)
    owner_user_id: uuid.UUID | None = None
    due_date: date | None = None
    status: TaskStatus | None = None
    reason: str = Field(min_length=1, max_length=1000)

    @field_validator("due_date")
    @classmethod
    def _plausible(cls, value: date | None) -> date | None:
        return TaskCreate._plausible(value)


class CaseTask(TaskBase, table=True):
    __tablename__ = "case_task"
    id: uuid.UUID = _id_field()
    case_id: uuid.UUID = Field(foreign_key="case.id", index=True)
    agency_id: uuid.UUID = Field(foreign_key="agency.id")
    #: ISO date ``YYYY-MM-DD`` as text: versions are JSON, and text sorts like the date.
    due_date: str | None = Field(default=None, sa_type=String(10))
    status: TaskStatus = Field(default=TaskStatus.OPEN, sa_type=String(16))
    completed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    created_by_user_id: uuid.UUID | None = Field(default=None, foreign_key="user.id")
    version: int = Field(default=1, sa_type=Integer)
    created_at: datetime = _ts_field()
    updated_at: datetime = _ts_field()


class TaskPublic(TaskBase):
    id: uuid.UUID
    case_id: uuid.UUID
    due_date: date | None
    status: TaskStatus
    completed_at: datetime | None
    created_by_user_id: uuid.UUID | None
    version: int
    created_at: datetime
    updated_at: datetime
    #: Open and past its due date (computed when read, in UTC).
    overdue: bool = False


# --------------------------------------------------------------------------- notes


class NoteCreate(SQLModel):
    id: uuid.UUID | None = None
    text: str = Field(min_length=1, max_length=10_000)


class NoteUpdate(SQLModel):
    text: str = Field(min_length=1, max_length=10_000)
    reason: str = Field(min_length=1, max_length=1000)


class CaseNote(SQLModel, table=True):
    """A note in the case file; a correction is a new version (the old text stays in history)."""

    __tablename__ = "case_note"
    id: uuid.UUID = _id_field()
    case_id: uuid.UUID = Field(foreign_key="case.id", index=True)
    agency_id: uuid.UUID = Field(foreign_key="agency.id")
    text: str = Field(sa_type=Text)
    author_user_id: uuid.UUID | None = Field(default=None, foreign_key="user.id")
    version: int = Field(default=1, sa_type=Integer)
    created_at: datetime = _ts_field()
    updated_at: datetime = _ts_field()


class NotePublic(SQLModel):
    id: uuid.UUID
    case_id: uuid.UUID
    text: str
    author_user_id: uuid.UUID | None
    version: int
    created_at: datetime
    updated_at: datetime


#: The versioned, audited tables of this module (verified by :func:`service.audit.verify`).
CASE_TABLES: dict[str, type[SQLModel]] = {
    "case": Case,
    "case_seizure": CaseSeizure,
    "case_entity": CaseEntity,
    "case_document": CaseDocument,
    "case_task": CaseTask,
    "case_note": CaseNote,
}
VERSIONED.update(CASE_TABLES)
