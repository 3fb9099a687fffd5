"""Four-eyes approvals, record history and the audit chain."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from sqlmodel import col, select

from service import audit, crud
from service.api.common import idempotent_post
from service.api.deps import (
    CurrentPrincipal,
    IdempotencyKeyDep,
    SessionDep,
    StateDep,
    UserPrincipal,
)
from service.models import (
    VERSIONED,
    ApprovalDecision,
    ApprovalPublic,
    ApprovalStatus,
    AuditCheckpoint,
    AuditCheckpointPublic,
    AuditEvent,
    AuditEventPublic,
    AuditVerifyReport,
    RecordVersionPublic,
)
from service.principal import AUDITORS

router = APIRouter(tags=["oversight"])

_ENTITY = Annotated[str, Path(pattern="^(" + "|".join(VERSIONED) + ")$")]


@router.get("/approvals", response_model=list[ApprovalPublic])
def list_approvals(
    session: SessionDep, principal: UserPrincipal, status: ApprovalStatus | None = None
) -> Any:
    return crud.list_approvals(session=session, actor=principal, status=status)


@router.get("/approvals/{approval_id}", response_model=ApprovalPublic)
def read_approval(session: SessionDep, principal: UserPrincipal, approval_id: uuid.UUID) -> Any:
    return crud.get_approval(session=session, actor=principal, approval_id=approval_id)


@router.post("/approvals/{approval_id}/decision", response_model=ApprovalPublic)
def decide_approval(
    request: Request,
    session: SessionDep,
    principal: UserPrincipal,
    approval_id: uuid.UUID,
    body: ApprovalDecision,
    key: IdempotencyKeyDep = None,
) -> JSONResponse:
    """A supervisor other than the requester approves (the change is applied) or rejects."""

    def action() -> tuple[int, Any, dict[str, str]]:
        approval = crud.decide_approval(
            session=session, actor=principal, approval_id=approval_id, decision=body
        )
        return 200, ApprovalPublic.model_validate(approval), {}

    return idempotent_post(
        session=session, principal=principal, request=request, key=key, body=body, action=action
    )


@router.get("/history/{entity_type}/{entity_id}", response_model=list[RecordVersionPublic])
def record_history(
    session: SessionDep, principal: CurrentPrincipal, entity_type: _ENTITY, entity_id: uuid.UUID
) -> Any:
    """Every version of a record with who made it, when and why."""
    rows = crud.list_versions(
        session=session, actor=principal, entity_type=entity_type, entity_id=entity_id
    )
    return [RecordVersionPublic.of(r) for r in rows]


@router.get("/audit/events", response_model=list[AuditEventPublic])
def list_audit_events(
    session: SessionDep,
    principal: UserPrincipal,
    after_seq: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Any:
    """The agency's audit events in chain order (other agencies' links are not shown)."""
    principal.require(AUDITORS, "read the audit log")
    query = (
        select(AuditEvent)
        .where(AuditEvent.agency_id == principal.scope, AuditEvent.seq > after_seq)
        .order_by(col(AuditEvent.seq))
        .limit(limit)
    )
    return session.exec(query).all()


@router.get("/audit/verify", response_model=AuditVerifyReport)
def verify_audit(session: SessionDep, state: StateDep, principal: UserPrincipal) -> Any:
    """Re-derive the chain, checkpoints, versions and current rows; report any tampering."""
    principal.require(AUDITORS, "verify the audit chain")
    audit.chain_pending(session, wait=True)  # link what is committed, then check all
    session.commit()
    trusted = [state.signer.public_key_hex, *state.settings.trusted_checkpoint_keys]
    return audit.verify(session, trusted_public_keys=trusted)


@router.get("/audit/checkpoints", response_model=list[AuditCheckpointPublic])
def list_checkpoints(
    session: SessionDep, principal: UserPrincipal, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> Any:
    principal.require(AUDITORS, "read checkpoints")
    return session.exec(
        select(AuditCheckpoint).order_by(col(AuditCheckpoint.seq).desc()).limit(limit)
    ).all()


@router.post("/audit/checkpoints", status_code=201, response_model=AuditCheckpointPublic)
def create_checkpoint(
    request: Request,
    session: SessionDep,
    state: StateDep,
    principal: UserPrincipal,
    key: IdempotencyKeyDep = None,
) -> JSONResponse:
    """Sign the chain head now (checkpoints are also made every ``checkpoint_every`` events)."""
    principal.require(AUDITORS, "sign checkpoints")

    def action() -> tuple[int, Any, dict[str, str]]:
        checkpoint = audit.make_checkpoint(session=session, signer=state.signer)
        return 201, AuditCheckpointPublic.model_validate(checkpoint), {}

    return idempotent_post(
        session=session,
        principal=principal,
        request=request,
        key=key,
        body={"checkpoint": True},
        action=action,
    )
