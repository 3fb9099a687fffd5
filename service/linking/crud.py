"""Keyword-only operations on suggested links and alerts: read, accept, dismiss, mark read.

Like :mod:`service.crud`, these raise :mod:`service.errors`. An agency sees its own link
rows only while it may read both seizures of the pair (sharing can be withdrawn), and its
own alerts; anything else is "not found". Readers call :func:`~.worker.drain` first, so
what they read includes every change committed before.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from service import audit
from service.core.types import utcnow
from service.errors import NotFoundError
from service.linking.engine import CorrelationResult, correlate_seizure, reads, write_link
from service.linking.models import AlertPublic, LinkAlert, LinkStatus, SeizureLink
from service.linking.worker import correlate_queued, drain
from service.models import Agency, Seizure
from service.principal import FIELD_WRITERS, READERS, Principal
from service.sharing import can_read, readable

#: Who may accept or dismiss a suggested link.
DECIDERS = frozenset({"investigator", "analyst", "supervisor"})
#: Who may ask for a seizure to be correlated again (writers trigger it anyway).
CORRELATORS = FIELD_WRITERS | DECIDERS
#: Who sees alerts and marks them read (a field station's device key does not).
ALERT_READERS = READERS - {"device"}


def _readable_seizure(session: Session, actor: Principal, seizure_id: uuid.UUID) -> Seizure:
    seizure = session.get(Seizure, seizure_id)
    if seizure is None or not can_read(seizure, actor):
        raise NotFoundError("seizure", seizure_id)
    return seizure


def _visible(actor: Principal) -> ColumnElement[bool]:
    """The actor's link rows whose two seizures it may (still) read."""
    a = aliased(Seizure)
    b = aliased(Seizure)
    both = and_(
        select(col(a.id))
        .where(col(a.id) == SeizureLink.seizure_a_id, readable(a, "seizure", actor))
        .exists(),
        select(col(b.id))
        .where(col(b.id) == SeizureLink.seizure_b_id, readable(b, "seizure", actor))
        .exists(),
    )
    return and_(col(SeizureLink.agency_id) == actor.scope, both)


def get_link(*, session: Session, actor: Principal, link_id: uuid.UUID) -> SeizureLink:
    drain(session)
    link = session.execute(
        select(SeizureLink).where(col(SeizureLink.id) == link_id, _visible(actor))
    ).scalar_one_or_none()
    if link is None:
        raise NotFoundError("seizure_link", link_id)
    return cast(SeizureLink, link)


def links_of_seizure(
    *,
    session: Session,
    actor: Principal,
    seizure_id: uuid.UUID,
    status: LinkStatus | None = None,
) -> Sequence[SeizureLink]:
    """The links of a seizure the actor may read, strongest first."""
    drain(session)
    _readable_seizure(session, actor, seizure_id)
    query = select(SeizureLink).where(
        _visible(actor),
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
    drain(session)
    query = select(SeizureLink).where(_visible(actor))
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

    Each agency decides on its own row of a pair. Deciding what is already decided the
    same way changes nothing.
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
    """Correlate one of the actor's seizures now (what writes of a seizure queue).

    The result lists only the links the actor may see.
    """
    actor.require(CORRELATORS, "correlate seizures")
    seizure = session.get(Seizure, seizure_id)
    if seizure is None or seizure.agency_id != actor.scope:
        raise NotFoundError("seizure", seizure_id)
    # A queued correlation of this seizure is done now, under the queue row's lock.
    done = correlate_queued(session, only=seizure_id, skip_locked=False, actor=actor)
    result = done[0] if done else correlate_seizure(session, seizure_id, actor=actor)
    result.links = [
        link
        for link in result.links
        if link.agency_id == actor.scope
        and all(
            reads(actor.scope, s)
            for s in (
                session.get(Seizure, link.seizure_a_id),
                session.get(Seizure, link.seizure_b_id),
            )
        )
    ]
    return result


# --------------------------------------------------------------------------- alerts


@dataclass
class AlertPage:
    data: list[AlertPublic]
    has_more: bool
    unread: int


def _alert_public(session: Session, actor: Principal, alert: LinkAlert) -> AlertPublic:
    """The alert as the actor may see it now: the other seizure and the agency's own link
    (with its current reasons) once it may read that seizure, else what was stored."""
    other = session.get(Seizure, alert.other_seizure_id)
    agency = session.get(Agency, alert.other_agency_id)
    see_other = other is not None and can_read(other, actor)
    link: SeizureLink | None = None
    if see_other:
        a, b = sorted((alert.seizure_id, alert.other_seizure_id))
        link = session.execute(
            select(SeizureLink).where(
                col(SeizureLink.seizure_a_id) == a,
                col(SeizureLink.seizure_b_id) == b,
                _visible(actor),
            )
        ).scalar_one_or_none()
    data: dict[str, Any] = {
        **alert.model_dump(exclude={"other_seizure_id", "link_id"}),
        "other_agency_name": agency.name if agency is not None else "",
        "other_seizure_id": alert.other_seizure_id if see_other else None,
        "link_id": link.id if link is not None else None,
    }
    if link is not None and link.reasons:
        data.update(reasons=link.reasons, strength=link.strength)
    return AlertPublic.model_validate(data)


def list_alerts(
    *,
    session: Session,
    actor: Principal,
    unread_only: bool = False,
    skip: int = 0,
    limit: int = 50,
) -> AlertPage:
    """The agency's alerts, newest first, with how many are unread."""
    actor.require(ALERT_READERS, "read alerts")
    drain(session)
    query = select(LinkAlert).where(col(LinkAlert.agency_id) == actor.scope)
    if unread_only:
        query = query.where(col(LinkAlert.read_at).is_(None))
    order = (col(LinkAlert.created_at).desc(), col(LinkAlert.id))
    rows = session.execute(query.order_by(*order).offset(skip).limit(limit + 1)).scalars().all()
    return AlertPage(
        data=[_alert_public(session, actor, r) for r in rows[:limit]],
        has_more=len(rows) > limit,
        unread=unread_alerts(session=session, actor=actor, drained=True),
    )


def unread_alerts(*, session: Session, actor: Principal, drained: bool = False) -> int:
    """How many of the agency's alerts nobody has marked read (the badge)."""
    if actor.role not in ALERT_READERS:
        return 0
    if not drained:
        drain(session)
    count = select(func.count()).where(
        col(LinkAlert.agency_id) == actor.scope, col(LinkAlert.read_at).is_(None)
    )
    return int(session.execute(count).scalar_one())


def get_alert(*, session: Session, actor: Principal, alert_id: uuid.UUID) -> AlertPublic:
    actor.require(ALERT_READERS, "read alerts")
    return _alert_public(session, actor, _own_alert(session, actor, alert_id))


def _own_alert(session: Session, actor: Principal, alert_id: uuid.UUID) -> LinkAlert:
    alert = session.get(LinkAlert, alert_id)
    if alert is None or alert.agency_id != actor.scope:
        raise NotFoundError("link_alert", alert_id)
    return alert


def mark_alert_read(*, session: Session, actor: Principal, alert_id: uuid.UUID) -> AlertPublic:
    """Mark an alert read for the whole agency: a new audited version naming who and when.

    Marking a read alert again changes nothing.
    """
    actor.require(ALERT_READERS, "mark alerts read")
    alert = _own_alert(session, actor, alert_id)
    if alert.read_at is None:
        before = audit.digest_of(alert)
        table = LinkAlert.__table__  # type: ignore[attr-defined]
        now = utcnow()
        # Compare-and-set: of two people marking it at once, the first is recorded.
        marked = session.execute(
            table.update()
            .where(table.c.id == alert.id, table.c.read_at.is_(None))
            .values(
                read_at=now,
                read_by_user_id=actor.user_id,
                version=alert.version + 1,
                updated_at=now,
            )
        )
        session.refresh(alert)
        if marked.rowcount == 1:  # type: ignore[attr-defined]
            audit.record_change(
                session=session, actor=actor, row=alert, action="read", before_digest=before
            )
    return _alert_public(session, actor, alert)
