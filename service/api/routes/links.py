"""Suggested links between seizures (read, accept, dismiss, correlate on demand) and the
alerts raised when a seizure is linked to another agency's."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlmodel import SQLModel

from service import crud as service_crud
from service.api.common import commit, idempotent_post
from service.api.deps import IdempotencyKeyDep, SessionDep, UserPrincipal
from service.linking import crud
from service.linking.models import (
    AlertPublic,
    LinkAccept,
    LinkDismiss,
    LinkPublic,
    LinkStatus,
    SeizureLink,
)
from service.models import RecordVersionPublic

router = APIRouter(tags=["links"])


class LinksPublic(SQLModel):
    data: list[LinkPublic]
    #: Whether more rows follow ``skip + len(data)``.
    has_more: bool


class CorrelationPublic(SQLModel):
    seizure_id: uuid.UUID
    #: Attribute keys the seizure has in the index.
    keys: int
    #: Other seizures that share at least one reason.
    candidates: int
    created: int
    updated: int
    #: Alerts raised for this correlation's new links to other agencies' seizures.
    alerts: int = 0
    links: list[LinkPublic]


class AlertsPublic(SQLModel):
    data: list[AlertPublic]
    #: Whether more rows follow ``skip + len(data)``.
    has_more: bool
    #: How many of the agency's alerts are unread (all pages).
    unread: int


def _public(link: SeizureLink) -> LinkPublic:
    return LinkPublic.model_validate(link)


@router.get("/seizures/{seizure_id}/links", response_model=list[LinkPublic])
def seizure_links(
    session: SessionDep,
    principal: UserPrincipal,
    seizure_id: uuid.UUID,
    status: LinkStatus | None = None,
) -> Any:
    """Links of one seizure, strongest first, each with its reasons."""
    rows = crud.links_of_seizure(
        session=session, actor=principal, seizure_id=seizure_id, status=status
    )
    return [_public(r) for r in rows]


@router.post("/seizures/{seizure_id}/correlate", response_model=CorrelationPublic)
def correlate_seizure(session: SessionDep, principal: UserPrincipal, seizure_id: uuid.UUID) -> Any:
    """Correlate the seizure now against the agency's indexed seizures (idempotent)."""
    result = crud.correlate(session=session, actor=principal, seizure_id=seizure_id)
    commit(session)
    return CorrelationPublic(
        seizure_id=result.seizure_id,
        keys=result.keys,
        candidates=result.candidates,
        created=result.created,
        updated=result.updated,
        alerts=result.alerts,
        links=[_public(r) for r in result.links],
    )


@router.get("/links", response_model=LinksPublic)
def list_links(
    session: SessionDep,
    principal: UserPrincipal,
    status: LinkStatus | None = None,
    min_strength: Annotated[float, Query(ge=0, le=1)] = 0.0,
    skip: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Any:
    rows, more = crud.list_links(
        session=session,
        actor=principal,
        status=status,
        min_strength=min_strength,
        skip=skip,
        limit=limit,
    )
    return LinksPublic(data=[_public(r) for r in rows], has_more=more)


@router.get("/links/{link_id}", response_model=LinkPublic)
def read_link(session: SessionDep, principal: UserPrincipal, link_id: uuid.UUID) -> Any:
    return _public(crud.get_link(session=session, actor=principal, link_id=link_id))


def _decide(
    request: Request,
    session: SessionDep,
    principal: UserPrincipal,
    link_id: uuid.UUID,
    body: LinkAccept | LinkDismiss,
    key: uuid.UUID | None,
    accept: bool,
) -> Response:
    def action() -> tuple[int, Any, dict[str, str]]:
        link = crud.decide_link(
            session=session, actor=principal, link_id=link_id, accept=accept, reason=body.reason
        )
        return 200, _public(link), {}

    return idempotent_post(
        session=session, principal=principal, request=request, key=key, body=body, action=action
    )


@router.post("/links/{link_id}/accept", response_model=LinkPublic)
def accept_link(
    request: Request,
    session: SessionDep,
    principal: UserPrincipal,
    link_id: uuid.UUID,
    body: LinkAccept,
    key: IdempotencyKeyDep = None,
) -> Response:
    """An investigator, analyst or supervisor confirms the link (audited)."""
    return _decide(request, session, principal, link_id, body, key, accept=True)


@router.post("/links/{link_id}/dismiss", response_model=LinkPublic)
def dismiss_link(
    request: Request,
    session: SessionDep,
    principal: UserPrincipal,
    link_id: uuid.UUID,
    body: LinkDismiss,
    key: IdempotencyKeyDep = None,
) -> Response:
    """An investigator, analyst or supervisor rejects the link, with a reason (audited).

    It stays dismissed until a correlation finds a reason it did not have.
    """
    return _decide(request, session, principal, link_id, body, key, accept=False)


@router.get("/links/{link_id}/history", response_model=list[RecordVersionPublic])
def link_history(session: SessionDep, principal: UserPrincipal, link_id: uuid.UUID) -> Any:
    """Every version of the link: suggested, re-correlated, accepted, dismissed — who and why."""
    crud.get_link(session=session, actor=principal, link_id=link_id)  # 404 unless ours
    rows = service_crud.list_versions(
        session=session, actor=principal, entity_type="seizure_link", entity_id=link_id
    )
    return [RecordVersionPublic.of(r) for r in rows]


# --------------------------------------------------------------------------- alerts


@router.get("/alerts", response_model=AlertsPublic, tags=["alerts"])
def list_alerts(
    session: SessionDep,
    principal: UserPrincipal,
    unread: bool = False,
    skip: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Any:
    """The agency's alerts, newest first: its seizures linked to other agencies' seizures.

    An alert names the other agency and the reasons as this agency may see them; the
    other seizure and the link only when this agency may read that seizure.
    """
    page = crud.list_alerts(
        session=session, actor=principal, unread_only=unread, skip=skip, limit=limit
    )
    return AlertsPublic(data=page.data, has_more=page.has_more, unread=page.unread)


@router.get("/alerts/{alert_id}", response_model=AlertPublic, tags=["alerts"])
def read_alert(session: SessionDep, principal: UserPrincipal, alert_id: uuid.UUID) -> Any:
    return crud.get_alert(session=session, actor=principal, alert_id=alert_id)


@router.post("/alerts/{alert_id}/read", response_model=AlertPublic, tags=["alerts"])
def mark_alert_read(
    request: Request,
    session: SessionDep,
    principal: UserPrincipal,
    alert_id: uuid.UUID,
    key: IdempotencyKeyDep = None,
) -> Response:
    """Mark the alert read for the agency (audited: who and when); again changes nothing."""

    def action() -> tuple[int, Any, dict[str, str]]:
        alert = crud.mark_alert_read(session=session, actor=principal, alert_id=alert_id)
        return 200, alert, {}

    return idempotent_post(
        session=session, principal=principal, request=request, key=key, body={}, action=action
    )


@router.get("/alerts/{alert_id}/history", response_model=list[RecordVersionPublic], tags=["alerts"])
def alert_history(session: SessionDep, principal: UserPrincipal, alert_id: uuid.UUID) -> Any:
    """Every version of the alert: raised, marked read — who and when."""
    crud.get_alert(session=session, actor=principal, alert_id=alert_id)  # 404 unless ours
    rows = service_crud.list_versions(
        session=session, actor=principal, entity_type="link_alert", entity_id=alert_id
    )
    return [RecordVersionPublic.of(r) for r in rows]
