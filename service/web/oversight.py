"""The integrity (oversight) report: what a supervisor or an auditor must look at.

Discrepancies come from crud (field versus laboratory); the other findings are read from the
agency's records and their version history; the audit chain status from ``audit.verify``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlmodel import Session, col

from service import audit, crud
from service.api.deps import AppState
from service.models import (
    Approval,
    ApprovalStatus,
    AuditVerifyReport,
    CustodyEvent,
    CustodyKind,
    Discrepancy,
    FieldTest,
    Item,
    RecordVersion,
)
from service.principal import Principal

#: A custody event recorded this long after it happened is "late".
LATE_AFTER = timedelta(hours=24)
#: How many of the newest items the custody checks cover.
MAX_ITEMS = 5000
#: Record types whose later versions are edits of evidence.
EVIDENCE_TYPES = ("seizure", "item", "field_test", "custody_event", "lab_result")


@dataclass(frozen=True, slots=True)
class Edit:
    entity_type: str
    entity_id: uuid.UUID
    version: int
    at: datetime
    reason: str | None
    actor_user_id: uuid.UUID | None


@dataclass(frozen=True, slots=True)
class LateEvent:
    event: CustodyEvent
    delay: timedelta


@dataclass(frozen=True, slots=True)
class Gap:
    item_id: uuid.UUID
    seizure_id: uuid.UUID
    #: no_custody, not_sealed_first, party_mismatch, after_destruction
    kind: str
    detail: str


@dataclass
class OversightReport:
    discrepancies: list[Discrepancy] = field(default_factory=list)
    edits: list[Edit] = field(default_factory=list)
    approvals: list[Approval] = field(default_factory=list)
    late_events: list[LateEvent] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    audit: AuditVerifyReport | None = None


def _edits(session: Session, actor: Principal, since: datetime | None) -> list[Edit]:
    query = select(RecordVersion).where(
        col(RecordVersion.agency_id) == actor.scope,
        col(RecordVersion.version) > 1,
        col(RecordVersion.entity_type).in_(EVIDENCE_TYPES),
    )
    if since is not None:
        query = query.where(col(RecordVersion.at) >= since)
    rows = session.scalars(query.order_by(col(RecordVersion.at).desc()).limit(1000)).all()
    return [
        Edit(r.entity_type, r.entity_id, r.version, r.at, r.reason, r.actor_user_id) for r in rows
    ]


def _approvals(session: Session, actor: Principal) -> list[Approval]:
    rows = crud.list_approvals(session=session, actor=actor)
    # Rejected requests, and any decided by the person who asked (must never happen: flagged).
    return [
        a
        for a in rows
        if a.status == ApprovalStatus.REJECTED.value
        or (a.decided_by_user_id is not None and a.decided_by_user_id == a.requested_by_user_id)
    ]


def _custody(session: Session, actor: Principal) -> tuple[list[LateEvent], list[Gap]]:
    # The newest items (a bounded window, so the report stays quick on a large agency).
    items = session.scalars(
        select(Item)
        .where(col(Item.agency_id) == actor.scope)
        .order_by(col(Item.created_at).desc())
        .limit(MAX_ITEMS)
    ).all()
    ids = [i.id for i in items]
    events = session.scalars(
        select(CustodyEvent)
        .where(col(CustodyEvent.item_id).in_(ids))
        .order_by(col(CustodyEvent.occurred_at), col(CustodyEvent.created_at))
    ).all()
    tested = set(
        session.scalars(select(col(FieldTest.item_id)).where(col(FieldTest.item_id).in_(ids))).all()
    )
    by_item: dict[uuid.UUID, list[CustodyEvent]] = {}
    late = []
    for e in events:
        by_item.setdefault(e.item_id, []).append(e)
        delay = e.created_at - e.occurred_at
        if delay > LATE_AFTER:
            late.append(LateEvent(e, delay))
    gaps = []
    for item in items:
        chain = by_item.get(item.id, [])
        if not chain:
            if item.id in tested:
                gaps.append(
                    Gap(item.id, item.seizure_id, "no_custody", "tested but no custody event")
                )
            continue
        if chain[0].kind != CustodyKind.SEALED.value:
            gaps.append(
                Gap(item.id, item.seizure_id, "not_sealed_first", f"first event is {chain[0].kind}")
            )
        holder: str | None = None
        for e in chain:
            if (
                e.from_party
                and holder
                and e.from_party.strip().casefold() != holder.strip().casefold()
            ):
                gaps.append(
                    Gap(item.id, item.seizure_id, "party_mismatch", f"{e.from_party} ≠ {holder}")
                )
            if e.to_party:
                holder = e.to_party
        destroyed = [i for i, e in enumerate(chain) if e.kind == CustodyKind.DESTROYED.value]
        if destroyed and destroyed[0] < len(chain) - 1:
            gaps.append(
                Gap(
                    item.id,
                    item.seizure_id,
                    "after_destruction",
                    f"{len(chain) - 1 - destroyed[0]} event(s)",
                )
            )
    return late, gaps


def build_report(
    *,
    session: Session,
    state: AppState,
    actor: Principal,
    since: datetime | None = None,
    verify_chain: bool = True,
) -> OversightReport:
    """Every finding for the actor's agency (``since`` limits the list of edits)."""
    report = OversightReport()
    report.discrepancies = crud.list_discrepancies(
        session=session, actor=actor, tolerance_percent=state.settings.mass_tolerance_percent
    )
    report.edits = _edits(session, actor, since)
    report.approvals = _approvals(session, actor)
    report.late_events, report.gaps = _custody(session, actor)
    if verify_chain:
        # Link what is committed first (as GET /audit/verify does), then check everything.
        audit.chain_pending(session, wait=True)
        session.commit()
        trusted = [state.signer.public_key_hex, *state.settings.trusted_checkpoint_keys]
        report.audit = audit.verify(session, trusted_public_keys=trusted)
    return report
