"""Sharing between agencies (issue 8): who besides the owning agency may read a record.

A shareable record (a seizure, a case) carries its level and its named partners as
ordinary columns, so a change of sharing is versioned and audited like any other edit.
:class:`RecordShare` is derived from them (rebuilt on every write, like ``link_key``) and
only exists to answer "which records are shared with agency X" from an index.

Sharing grants reading, never writing: only the owning agency changes its records.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, Index, String, and_, delete, exists, insert, or_, select
from sqlmodel import Field, Session, SQLModel, col

from service.principal import SYSTEM_ROLE, Principal


class SharingLevel(enum.StrEnum):
    #: Only the owning agency (the default).
    OWN = "own"
    #: The owning agency and the partner agencies named in ``shared_with``.
    PARTNERS = "partners"
    #: Every agency participating in this instance (and in exchanges).
    ALL = "all"


class RecordShare(SQLModel, table=True):
    """One (record, partner agency) pair of a record shared at level ``partners``."""

    __tablename__ = "record_share"
    __table_args__ = (Index("ix_record_share_agency", "agency_id", "entity_type", "record_id"),)
    entity_type: str = Field(primary_key=True, sa_type=String(32))
    record_id: uuid.UUID = Field(primary_key=True)
    agency_id: uuid.UUID = Field(primary_key=True, foreign_key="agency.id")


def readable(model: Any, entity_type: str, actor: Principal) -> ColumnElement[bool]:
    """SQL condition: the rows of ``model`` that ``actor`` may read.

    ``model`` has ``agency_id``, ``sharing`` and ``id``. One OR over three kinds of rows:
    right for one record or within one agency's rows; a list over every agency should run
    one branch per kind instead (see :func:`service.crud.seizure_scopes`).
    """
    scope = actor.scope
    return or_(
        model.agency_id == scope,
        model.sharing == SharingLevel.ALL.value,
        and_(
            model.sharing == SharingLevel.PARTNERS.value,
            exists().where(
                col(RecordShare.entity_type) == entity_type,
                RecordShare.record_id == model.id,
                col(RecordShare.agency_id) == scope,
            ),
        ),
    )


def can_read(row: Any, actor: Principal) -> bool:
    """Whether ``actor`` may read ``row`` (a loaded shareable record); no query needed."""
    if actor.role == SYSTEM_ROLE:
        return True
    scope = actor.scope
    if row.agency_id == scope or row.sharing == SharingLevel.ALL:
        return True
    return row.sharing == SharingLevel.PARTNERS and str(scope) in (row.shared_with or [])


def partner_ids(level: SharingLevel, partners: Iterable[uuid.UUID | str]) -> list[str]:
    """The stored form of ``shared_with``: sorted unique ids, empty unless level is partners."""
    if level != SharingLevel.PARTNERS:
        return []
    return sorted({str(uuid.UUID(str(p))) for p in partners})


def sync_shares(
    session: Session, *, entity_type: str, row: Any, partners: list[str] | None = None
) -> None:
    """Rebuild the share index of one record (with ``id``, ``sharing``, ``shared_with``).

    ``partners`` replaces the record's own ``shared_with`` (an import indexes only the
    partners that exist on this instance).
    """
    record_id = row.id
    if partners is None:
        partners = [str(p) for p in row.shared_with or []]
    session.execute(
        delete(RecordShare).where(
            col(RecordShare.entity_type) == entity_type,
            col(RecordShare.record_id) == record_id,
        )
    )
    if row.sharing == SharingLevel.PARTNERS and partners:
        session.execute(
            insert(RecordShare),
            [
                {"entity_type": entity_type, "record_id": record_id, "agency_id": uuid.UUID(p)}
                for p in partners
            ],
        )


def shared_with_agency(entity_type: str, agency_id: uuid.UUID) -> Any:
    """Ids of records of ``entity_type`` named-shared with ``agency_id`` (a subquery)."""
    return select(col(RecordShare.record_id)).where(
        col(RecordShare.entity_type) == entity_type,
        col(RecordShare.agency_id) == agency_id,
    )
