"""Keyword-only operations on suggested links: read them, accept or dismiss them (audited).

Like :mod:`service.crud`, these raise :mod:`service.errors` and only ever see the actor's
agency: another agency's link or seizure is "not found".
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import or_, select
from sqlmodel import Session, col

from service.core.types import utcnow
from service.errors import NotFoundError
from service.linking.engine import CorrelationResult, correlate_seizure, write_link
from service.linking.models import LinkStatus, SeizureLink
from service.models import Seizure
from service.principal import FIELD_WRITERS, Principal

#: Who may accept or dismiss a suggested link.
DECIDERS = frozenset({"investigator", "analyst", "supervisor"})
#: Who may ask for a seizure to be correlated again (writers trigger it anyway).
CORRELATORS = FIELD_WRITERS | DECIDERS


def _seizure(session: Session, actor: Principal, seizure_id: uuid.UUID) -> Seizure:
    seizure = session.get(Seizure, seizure_id)
    if seizure is None or seizure.agency_id != actor.scope:
        raise NotFoundError("seizure", seizure_id)
    return seizure


def get_link(*, session: Session, actor: Principal, link_id: uuid.UUID) -> SeizureLink:
    link = session.get(SeizureLink, link_id)
    if link is None or link.agency_id != actor.scope:
        raise NotFoundError("seizure_link", link_id)
    return link


def links_of_seizure(
    *,
    session: Session,
    actor: Principal,
    seizure_id: uuid.UUID,
    status: LinkStatus | None = None,
) -> Sequence[SeizureLink]:
    """The seizure's links, strongest first."""
    _seizure(session, actor, seizure_id)
    query = select(SeizureLink).where(
        col(SeizureLink.agency_id) == actor.scope,
        or_(
            col(SeizureLink.seizure_a_id) == seizure_id, col(SeizureLink.seizure_b_id) == seizure_id
        ),
    )
    if status is not None:
        query = query.where(col(SeizureLink.status) == status.value)
    order = (col(SeizureLink.strength).desc(), col(SeizureLink.id))
    return session.execute(query.order_by(*order)).scalars().all()


def list_links(
    *,
    session: Session,
    actor: Principal,
    status: LinkStatus | None = None,
    min_strength: float = 0.0,
    skip: int = 0,
    limit: int = 50,
) -> tuple[Sequence[SeizureLink], bool]:
    """The agency's links, strongest first; returns the page and whether more rows follow."""
    query = select(SeizureLink).where(col(SeizureLink.agency_id) == actor.scope)
    if status is not None:
        query = query.where(col(SeizureLink.status) == status.value)
    if min_strength > 0:
        query = query.where(col(SeizureLink.strength) >= min_strength)
    order = (col(SeizureLink.strength).desc(), col(SeizureLink.id))
    rows = session.execute(query.order_by(*order).offset(skip).limit(limit + 1)).scalars().all()
    return rows[:limit], len(rows) > limit


def decide_link(
    *,
    session: Session,
    actor: Principal,
    link_id: uuid.UUID,
    accept: bool,
    reason: str | None,
) -> SeizureLink:
    """Accept or dismiss a link: a new audited version naming who decided, when and why.

    Deciding what is already decided the same way changes nothing.
    """
    actor.require(DECIDERS, "accept or dismiss links")
    link = get_link(session=session, actor=actor, link_id=link_id)
    status = LinkStatus.ACCEPTED if accept else LinkStatus.DISMISSED
    if link.status == status:
        return link
    write_link(
        session,
        link,
        {
            "status": status,
            "decided_by_user_id": actor.user_id,
            "decided_at": utcnow(),
            "decision_reason": reason,
        },
        actor=actor,
        action="accept" if accept else "dismiss",
        reason=reason,
    )
    return link


def correlate(*, session: Session, actor: Principal, seizure_id: uuid.UUID) -> CorrelationResult:
    """Correlate one of the actor's seizures now (what writes of a seizure trigger)."""
    actor.require(CORRELATORS, "correlate seizures")
    _seizure(session, actor, seizure_id)
    return correlate_seizure(session, seizure_id, actor=actor)
