"""Alerts page of the web UI (``/ui/alerts``) and the unread badge in the navigation.

An alert says that one of the agency's seizures was linked to a seizure of another agency.
All data goes through :mod:`service.linking.crud`, so what an alert shows of the other
agency's seizure is exactly what the API shows (nothing the agency may not read).
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from service.api.common import commit
from service.api.deps import SessionDep, StateDep
from service.errors import ServiceError
from service.linking import crud
from service.linking.models import AlertPublic, LinkReason, ReasonKind
from service.web.labels import N_
from service.web.pages import PREFIX, error_page, flash_message, render_page, signed_in
from service.web.render import render

router = APIRouter(prefix=PREFIX, include_in_schema=False)

REASON_KIND = {
    ReasonKind.AIR_WAYBILL.value: N_("Same air waybill"),
    ReasonKind.CONTAINER.value: N_("Same container"),
    ReasonKind.TRACKING_NUMBER.value: N_("Same tracking number"),
    ReasonKind.PERSON.value: N_("Same person"),
    ReasonKind.COMPANY.value: N_("Same company"),
    ReasonKind.ROUTE.value: N_("Same route within 30 days"),
    ReasonKind.CHEMICAL_PROFILE.value: N_("Same chemical profile"),
    ReasonKind.PRECURSOR.value: N_("Precursor and drug"),
    ReasonKind.RAW_SPECTRUM.value: N_("Highly similar raw spectra"),
}
FLASH = {"read": N_("Alert marked read.")}


def reason_value(reason: LinkReason) -> str:
    """The language-neutral part of a reason's detail (a reference, a route, figures).

    The kind is shown translated beside it; the engine's English wording is not shown.
    """
    detail = reason.detail
    if reason.kind == ReasonKind.ROUTE:
        return detail.removeprefix("same route").split(",")[0].strip()
    if reason.kind == ReasonKind.PRECURSOR:
        parts = detail.split(" is a precursor of ")
        return " → ".join(parts) if len(parts) == 2 else ""
    if reason.kind == ReasonKind.RAW_SPECTRUM:
        return detail.rpartition("correlation ")[2] if "correlation " in detail else ""
    return detail.split(": ", 1)[1] if ": " in detail else ""


@router.get("/alerts", response_class=HTMLResponse)
def alerts_page(
    request: Request, session: SessionDep, state: StateDep, unread: bool = False
) -> Response:
    ctx = signed_in(request, session, state)
    try:
        page = crud.list_alerts(session=session, actor=ctx.principal, unread_only=unread, limit=200)
    except ServiceError as exc:
        return error_page(ctx, exc)
    rows: list[dict[str, Any]] = [
        {"alert": a, "reasons": [(r.kind.value, reason_value(r)) for r in a.reasons]}
        for a in page.data
    ]
    return render_page(
        ctx,
        "alerts.html",
        rows=rows,
        unread=page.unread,
        only_unread=unread,
        more=page.has_more,
        kinds={k: ctx._(v) for k, v in REASON_KIND.items()},
        flash=flash_message(ctx, FLASH),
    )


@router.get("/alerts/badge", response_class=HTMLResponse)
def alerts_badge(request: Request, session: SessionDep, state: StateDep) -> Response:
    """The navigation's alert link text with the unread count (loaded by htmx)."""
    ctx = signed_in(request, session, state)
    count = crud.unread_alerts(session=session, actor=ctx.principal)
    return render(request, "alerts_badge.html", count=count)


@router.post("/alerts/{alert_id}/read")
def mark_read(
    request: Request, session: SessionDep, state: StateDep, alert_id: uuid.UUID
) -> Response:
    ctx = signed_in(request, session, state, write=True)
    try:
        alert: AlertPublic = crud.mark_alert_read(
            session=session, actor=ctx.principal, alert_id=alert_id
        )
    except ServiceError as exc:
        return error_page(ctx, exc)
    commit(session)
    return RedirectResponse(f"{PREFIX}/alerts?done=read#alert-{alert.id}", status_code=303)
