"""Pages and actions of the web UI under ``/ui``; all data access goes through crud.

Authentication is the service's (JWT in a cookie); roles and agency isolation are crud's,
so the UI can never show or change more than the API would allow the same user.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlmodel import Session, col

from service import audit, crud
from service.api.common import commit
from service.api.deps import SessionDep, StateDep
from service.errors import (
    InvalidInputError,
    NotFoundError,
    ServiceError,
)
from service.models import (
    Agency,
    Approval,
    ApprovalDecision,
    ApprovalStatus,
    AuditEvent,
    CustodyEventCreate,
    CustodyKind,
    Device,
    FieldTest,
    Item,
    ItemUpdate,
    LabMethod,
    LabResult,
    LabResultCreate,
    MassUnit,
    SeizureStatus,
    SeizureUpdate,
    TransportMode,
    User,
    Verdict,
)
from service.principal import (
    APPROVERS,
    AUDITORS,
    CUSTODY_WRITERS,
    EDITORS,
    LAB_WRITERS,
    Principal,
)
from service.sharing import SharingLevel
from service.web import exports, geo, labels, oversight, pdf, plots, queries
from service.web.i18n import LANG_COOKIE, LANGUAGES, translations
from service.web.labels import N_
from service.web.pages import (
    PREFIX,
    Ctx,
    done_redirect,
    error_page,
    flash_message,
    invalid_page,
    parse_date,
    render_page,
    safe_next,
    signed_in,
    stored_file,
    user_names,
)
from service.web.render import language_of, render
from service.web.session import end_session, same_origin, start_session

router = APIRouter(prefix=PREFIX, include_in_schema=False)


# --------------------------------------------------------------------------- helpers


#: Confirmations shown after an action, by code: a link cannot put arbitrary text on a page.
FLASH = {
    "review": N_("Review recorded."),
    "lab": N_("Laboratory result recorded."),
    "filed": N_("Change filed for approval by a second supervisor."),
    "changed": N_("Change recorded."),
    "custody": N_("Custody event recorded."),
    "destruction": N_("Destruction filed for approval by a supervisor."),
    "approved": N_("Decision recorded: approved."),
    "sharing": N_("Sharing changed."),
    "rejected": N_("Decision recorded: rejected."),
}


def visible_agencies(ctx: Ctx, session: Session) -> list[Agency]:
    """Agencies the list may be filtered on: the user's own first, then every other one.

    Any participating agency may share seizures with the user's (and partners are chosen
    among them all), so each is a filter choice; crud shows only what is shared.
    """
    others = [a for a in crud.list_agencies(session=session) if a.id != ctx.agency.id]
    return [ctx.agency, *others]


def _agency_filter(value: str | None, allowed: list[Agency]) -> uuid.UUID | None:
    if not value:
        return None
    try:
        wanted = uuid.UUID(value)
    except ValueError:
        raise InvalidInputError("agency", "is not an agency whose records you may see") from None
    if wanted not in {a.id for a in allowed}:
        raise InvalidInputError("agency", "is not an agency whose records you may see")
    return wanted


def _filters(params: dict[str, str], agencies: list[Agency] | None = None) -> crud.SeizureFilter:
    """Filters from query parameters; bad values are a clear 422, never ignored."""

    def enum(name: str, kind: Any) -> Any:
        value = params.get(name) or None
        if value is None:
            return None
        try:
            return kind(value)
        except ValueError:
            raise InvalidInputError(name, f"unknown value {value!r}") from None

    country = (params.get("country") or "").strip().upper() or None
    if country and not (len(country) == 2 and country.isalpha() and country.isascii()):
        raise InvalidInputError("country", "must be a two-letter ISO code")
    q = (params.get("q") or "").strip() or None
    substance = (params.get("substance") or "").strip() or None
    if (q and len(q) > 200) or (substance and len(substance) > 200):
        raise InvalidInputError("q", "is longer than 200 characters")
    return crud.SeizureFilter(
        date_from=parse_date(params.get("date_from"), "date_from"),
        date_to=parse_date(params.get("date_to"), "date_to", end=True),
        substance=substance,
        verdict=enum("verdict", Verdict),
        country=country,
        transport_mode=enum("transport_mode", TransportMode),
        status=enum("status", SeizureStatus),
        q=q,
        agency_id=_agency_filter(params.get("agency"), agencies or []),
    )


FILTER_KEYS = (
    "date_from",
    "date_to",
    "substance",
    "verdict",
    "country",
    "transport_mode",
    "status",
    "q",
    "agency",
)


def _filter_params(request: Request) -> dict[str, str]:
    return {k: request.query_params.get(k, "") for k in FILTER_KEYS if request.query_params.get(k)}


# --------------------------------------------------------------------------- sign in, language


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str | None = None) -> HTMLResponse:
    return render(request, "login.html", next=safe_next(next), error=None, username="")


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    session: SessionDep,
    state: StateDep,
    username: Annotated[str, Form(max_length=100)] = "",
    password: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    if not same_origin(request):
        raise HTTPException(status_code=403, detail="cross-site request refused")
    try:
        user = crud.authenticate(
            session=session, username=username, password=password, hasher=state.hasher
        )
    except ServiceError:
        _ = translations(language_of(request)).gettext
        return render(
            request,
            "login.html",
            401,
            next=safe_next(next),
            error=_("Incorrect username or password."),
            username=username,
        )
    response = RedirectResponse(safe_next(next), status_code=303)
    start_session(response, state, user, secure=request.url.scheme == "https")
    return response


@router.post("/logout")
def logout(request: Request) -> Response:
    response = RedirectResponse(f"{PREFIX}/login", status_code=303)
    end_session(response)
    return response


@router.get("/lang/{code}")
def choose_language(request: Request, code: str, next: str | None = None) -> Response:
    if code not in LANGUAGES:
        raise HTTPException(status_code=404, detail=f"unknown language {code!r}")
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(LANG_COOKIE, code, max_age=365 * 24 * 3600, samesite="lax", path="/")
    return response


@router.get("/")
def home() -> Response:
    return RedirectResponse(f"{PREFIX}/seizures", status_code=303)


# --------------------------------------------------------------------------- seizures


@router.get("/seizures", response_class=HTMLResponse)
def seizure_list(
    request: Request,
    session: SessionDep,
    state: StateDep,
    after: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 25,
) -> HTMLResponse:
    ctx = signed_in(request, session, state)
    params = _filter_params(request)
    agencies = visible_agencies(ctx, session)
    try:
        filters = _filters(params, agencies)
        cursor = queries.Cursor.decode(after) if after else None
        rows, nxt = queries.seizure_page(
            session=session, actor=ctx.principal, filters=filters, after=cursor, limit=limit
        )
    except ServiceError as exc:
        return error_page(ctx, exc)
    ids = [s.id for s in rows]
    tests = queries.tests_of(session, ids)
    items = queries.items_of(session, ids)
    substances = {
        s.id: sorted(
            {
                x
                for x in [
                    *(i.substance for i in items.get(s.id, [])),
                    *(t.main_substance for t in tests.get(s.id, [])),
                ]
                if x
            }
        )
        for s in rows
    }
    verdicts = {s.id: sorted({t.verdict for t in tests.get(s.id, [])}) for s in rows}
    next_url = (
        f"{PREFIX}/seizures?" + urlencode({**params, "after": nxt.encode(), "limit": limit})
        if nxt
        else None
    )
    template = (
        "_seizure_rows.html" if request.headers.get("HX-Request") and after else "seizures.html"
    )
    return render_page(
        ctx,
        template,
        rows=rows,
        substances=substances,
        verdicts=verdicts,
        params=params,
        next_url=next_url,
        query=urlencode(params),
        statuses=list(SeizureStatus),
        modes=list(TransportMode),
        verdict_codes=list(Verdict),
        agencies=agencies,
        # Rows another agency shares with the user's name their agency.
        shared_by={a.id: a.name for a in agencies if a.id != ctx.agency.id},
    )


def _history(
    session: Session, ctx: Ctx, entity_type: str, entity_id: uuid.UUID
) -> list[dict[str, Any]]:
    rows = crud.list_versions(
        session=session, actor=ctx.principal, entity_type=entity_type, entity_id=entity_id
    )
    users = user_names(session, ctx, {r.actor_user_id for r in rows})
    out = []
    previous: dict[str, Any] = {}
    for r in rows:
        data = json.loads(r.data)
        changed = sorted(
            k
            for k in data
            if k not in ("version", "updated_at") and previous and data.get(k) != previous.get(k)
        )
        out.append(
            {
                "version": r.version,
                "at": r.at,
                "reason": r.reason,
                "who": users.get(r.actor_user_id, "—"),
                "changed": changed,
            }
        )
        previous = data
    return out


@router.get("/seizures/{seizure_id}", response_class=HTMLResponse)
def seizure_detail(
    request: Request,
    session: SessionDep,
    state: StateDep,
    seizure_id: uuid.UUID,
) -> HTMLResponse:
    ctx = signed_in(request, session, state)
    try:
        seizure = crud.get_seizure(session=session, actor=ctx.principal, seizure_id=seizure_id)
        items = crud.list_items(session=session, actor=ctx.principal, seizure_id=seizure.id)
        blocks = []
        for item in items:
            tests = crud.list_field_tests(session=session, actor=ctx.principal, item_id=item.id)
            blocks.append(
                {
                    "item": item,
                    "tests": [_test_view(session, ctx, t) for t in tests],
                    "custody": crud.list_custody_events(
                        session=session, actor=ctx.principal, item_id=item.id
                    ),
                    "lab": crud.list_lab_results(
                        session=session, actor=ctx.principal, item_id=item.id
                    ),
                    "discrepancies": crud.item_discrepancies(
                        session=session,
                        actor=ctx.principal,
                        item_id=item.id,
                        tolerance_percent=state.settings.mass_tolerance_percent,
                    ),
                    "attachments": crud.list_attachments(
                        session=session, actor=ctx.principal, item_id=item.id
                    ),
                    "history": _history(session, ctx, "item", item.id),
                }
            )
        history = _history(session, ctx, "seizure", seizure.id)
        approvals = [
            a
            for a in crud.list_approvals(session=session, actor=ctx.principal)
            if a.entity_id in {i.id for i in items}
        ]
    except ServiceError as exc:
        return error_page(ctx, exc)
    users = user_names(
        session,
        ctx,
        {a.requested_by_user_id for a in approvals} | {a.decided_by_user_id for a in approvals},
    )
    # Sharing grants reading only: a partner agency sees the record without any form.
    owner = seizure.agency_id == ctx.agency.id
    agencies = {a.id: a for a in crud.list_agencies(session=session)}
    return render_page(
        ctx,
        "seizure.html",
        seizure=seizure,
        blocks=blocks,
        history=history,
        approvals=approvals,
        users=users,
        flash=flash_message(ctx, FLASH),
        methods=list(LabMethod),
        units=list(MassUnit),
        owner=owner,
        owner_agency=agencies.get(seizure.agency_id),
        partners=[agencies[p] for p in map(_uuid, seizure.shared_with) if p in agencies],
        partner_choices=[a for a in agencies.values() if a.id != seizure.agency_id],
        sharing_levels=list(SharingLevel),
        sharing_labels=labels.SHARING,
        can_share=owner and ctx.can(EDITORS),
        can_review=owner and ctx.can(APPROVERS),
        can_lab=owner and ctx.can(LAB_WRITERS),
        can_edit=owner and ctx.can(EDITORS),
        can_custody=owner and ctx.can(CUSTODY_WRITERS),
        custody_kinds=list(CustodyKind),
    )


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _uuid(value: uuid.UUID | str) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


@router.post("/seizures/{seizure_id}/sharing")
def change_sharing(
    request: Request,
    session: SessionDep,
    state: StateDep,
    seizure_id: uuid.UUID,
    version: Annotated[int, Form(ge=1)],
    sharing: Annotated[str, Form(max_length=16)],
    reason: Annotated[str, Form(max_length=1000)] = "",
    partners: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """Change who may read the seizure: a new version, with the reason, through crud."""
    ctx = signed_in(request, session, state, write=True)
    try:
        try:
            level = SharingLevel(sharing)
        except ValueError:
            raise InvalidInputError("sharing", f"unknown value {sharing!r}") from None
        named = [uuid.UUID(p) for p in partners or [] if p and _is_uuid(p)]
        bad = [p for p in partners or [] if p and not _is_uuid(p)]
        if bad:
            raise InvalidInputError("shared_with", f"no agency {bad[0]!r}")
        if not reason.strip():
            raise InvalidInputError("reason", "changing who may read a seizure needs a reason")
        crud.update_seizure(
            session=session,
            actor=ctx.principal,
            seizure_id=seizure_id,
            # Partners ticked under another level are not kept (the form shows them all).
            seizure_in=SeizureUpdate(
                sharing=level,
                shared_with=named if level == SharingLevel.PARTNERS else [],
                reason=reason.strip(),
            ),
            if_match=version,
        )
        commit(session)
    except ServiceError as exc:
        return error_page(ctx, exc)
    return done_redirect(f"{PREFIX}/seizures/{seizure_id}", "sharing")


def _test_view(session: Session, ctx: Ctx, test: FieldTest) -> dict[str, Any]:
    ident = json.loads(test.identification_json)
    plot = plots.spectrum_plot(test, ctx._("Measured (preprocessed)"))
    svg = plots.spectrum_svg(
        plot,
        x_label=ctx._("Raman shift (cm⁻¹)"),
        y_label=ctx._("Relative intensity"),
        title=ctx._("Measured spectrum overlaid on the matched reference(s)"),
    )
    device = session.get(Device, test.device_id) if test.device_id else None
    operator = (
        user_names(session, ctx, {test.operator_id}).get(test.operator_id)
        if test.operator_id
        else test.operator_name
    )
    return {
        "test": test,
        "ident": ident,
        "svg": svg,
        "plot": plot,
        "device": device,
        "operator": operator,
    }


# --------------------------------------------------------------------------- review actions


REVIEW_ACTIONS: dict[str, tuple[SeizureStatus, str]] = {
    # action: (new status, reason prefix stored with the version)
    "confirm": (SeizureStatus.CLOSED, "Field result confirmed by supervisor"),
    "reject": (SeizureStatus.UNDER_REVIEW, "Field result rejected by supervisor"),
    "request_lab": (SeizureStatus.AWAITING_LAB, "Laboratory confirmation requested"),
}


@router.post("/seizures/{seizure_id}/review")
def review_seizure(
    request: Request,
    session: SessionDep,
    state: StateDep,
    seizure_id: uuid.UUID,
    action: Annotated[str, Form(max_length=20)],
    version: Annotated[int, Form(ge=1)],
    reason: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    """Confirm or reject a field result, or ask a laboratory: a new seizure version + reason."""
    ctx = signed_in(request, session, state, write=True)
    try:
        ctx.principal.require(APPROVERS, "review field results")
        if action not in REVIEW_ACTIONS:
            raise InvalidInputError("action", f"unknown review action {action!r}")
        if action == "reject" and not reason.strip():
            raise InvalidInputError("reason", "rejecting a field result needs a reason")
        status, prefix = REVIEW_ACTIONS[action]
        full = f"{prefix}: {reason.strip()}" if reason.strip() else prefix
        crud.update_seizure(
            session=session,
            actor=ctx.principal,
            seizure_id=seizure_id,
            seizure_in=SeizureUpdate(status=status, reason=full),
            if_match=version,
        )
        commit(session)
    except ServiceError as exc:
        return error_page(ctx, exc)
    return done_redirect(f"{PREFIX}/seizures/{seizure_id}", "review")


def _float(value: str, field: str) -> float | None:
    if not value.strip():
        return None
    try:
        number = float(value.replace(",", "."))
    except ValueError:
        raise InvalidInputError(field, "must be a number") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise InvalidInputError(field, "must be a finite number")
    return number


@router.post("/items/{item_id}/lab-result")
def record_lab_result(
    request: Request,
    session: SessionDep,
    state: StateDep,
    item_id: uuid.UUID,
    method: Annotated[str, Form(max_length=16)],
    substance: Annotated[str, Form(max_length=200)],
    analysed_on: Annotated[str, Form(max_length=10)],
    purity_percent: Annotated[str, Form(max_length=20)] = "",
    net_mass: Annotated[str, Form(max_length=30)] = "",
    mass_unit: Annotated[str, Form(max_length=4)] = "",
    laboratory: Annotated[str, Form(max_length=200)] = "",
    lab_reference: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    ctx = signed_in(request, session, state, write=True)
    try:
        item = crud.get_item(session=session, actor=ctx.principal, item_id=item_id)
        analysed = parse_date(analysed_on, "analysed_on")
        body = LabResultCreate.model_validate(
            {
                "method": method,
                "substance": substance.strip(),
                "purity_percent": _float(purity_percent, "purity_percent"),
                "net_mass": _float(net_mass, "net_mass"),
                "mass_unit": mass_unit or None,
                "laboratory": laboratory or None,
                "lab_reference": lab_reference or None,
                "analysed_at": analysed or datetime.now(UTC),
            }
        )
        crud.create_lab_result(
            session=session, actor=ctx.principal, item_id=item.id, result_in=body
        )
        seizure = crud.get_seizure(session=session, actor=ctx.principal, seizure_id=item.seizure_id)
        # The status follows when the user may edit seizures (crud's rule; analysts may not).
        if seizure.status != SeizureStatus.LAB_CONFIRMED.value and ctx.can(EDITORS):
            crud.update_seizure(
                session=session,
                actor=ctx.principal,
                seizure_id=seizure.id,
                if_match=seizure.version,
                seizure_in=SeizureUpdate(
                    status=SeizureStatus.LAB_CONFIRMED, reason="Laboratory result recorded"
                ),
            )
        commit(session)
    except ServiceError as exc:
        return error_page(ctx, exc)
    except ValueError as exc:  # pydantic validation of the form
        return invalid_page(ctx, exc)
    return done_redirect(f"{PREFIX}/seizures/{item.seizure_id}", "lab")


def _parse_instant(value: str, field: str) -> datetime:
    """A ``datetime-local`` form value, read as UTC (the form says so)."""
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInputError(field, "must be a date (YYYY-MM-DD)") from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


@router.post("/items/{item_id}/custody")
def record_custody_event(
    request: Request,
    session: SessionDep,
    state: StateDep,
    item_id: uuid.UUID,
    kind: Annotated[CustodyKind, Form()],
    occurred_at: Annotated[str, Form(max_length=40)],
    place: Annotated[str, Form(max_length=200)] = "",
    seal_number: Annotated[str, Form(max_length=100)] = "",
    from_party: Annotated[str, Form(max_length=200)] = "",
    to_party: Annotated[str, Form(max_length=200)] = "",
    notes: Annotated[str, Form(max_length=2000)] = "",
    reason: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    """Record a custody event through crud; a destruction is filed for four-eyes approval."""
    ctx = signed_in(request, session, state, write=True)
    try:
        item = crud.get_item(session=session, actor=ctx.principal, item_id=item_id)
        body = CustodyEventCreate.model_validate(
            {
                "kind": kind,
                "occurred_at": _parse_instant(occurred_at, "occurred_at"),
                "place": place.strip() or None,
                "seal_number": seal_number.strip() or None,
                "from_party": from_party.strip() or None,
                "to_party": to_party.strip() or None,
                "notes": notes.strip() or None,
                "reason": reason.strip() or None,
            }
        )
        result = crud.create_custody_event(
            session=session, actor=ctx.principal, item_id=item.id, event_in=body
        )
        commit(session)
    except ServiceError as exc:
        return error_page(ctx, exc)
    except ValueError as exc:  # the model's rules (a seal needs its number...)
        return invalid_page(ctx, exc)
    filed = isinstance(result, Approval)
    return done_redirect(
        f"{PREFIX}/seizures/{item.seizure_id}", "destruction" if filed else "custody"
    )


@router.post("/items/{item_id}/correction")
def request_correction(
    request: Request,
    session: SessionDep,
    state: StateDep,
    item_id: uuid.UUID,
    version: Annotated[int, Form(ge=1)],
    reason: Annotated[str, Form(max_length=1000)],
    substance: Annotated[str, Form(max_length=200)] = "",
    net_mass: Annotated[str, Form(max_length=30)] = "",
    mass_unit: Annotated[str, Form(max_length=4)] = "",
) -> Response:
    """Change an item's substance or mass: filed for a second supervisor (four eyes) by crud."""
    ctx = signed_in(request, session, state, write=True)
    try:
        item = crud.get_item(session=session, actor=ctx.principal, item_id=item_id)
        changes: dict[str, Any] = {"reason": reason.strip()}
        if substance.strip():
            changes["substance"] = substance.strip()
        mass = _float(net_mass, "net_mass")
        if mass is not None:
            changes["net_mass"] = mass
            changes["mass_unit"] = mass_unit or item.mass_unit
        if len(changes) == 1:
            raise InvalidInputError("correction", "give a new substance or a new net mass")
        result = crud.update_item(
            session=session,
            actor=ctx.principal,
            item_id=item.id,
            item_in=ItemUpdate.model_validate(changes),
            if_match=version,
        )
        commit(session)
    except ServiceError as exc:
        return error_page(ctx, exc)
    except ValueError as exc:
        return invalid_page(ctx, exc)
    filed = isinstance(result, Approval)
    return done_redirect(f"{PREFIX}/seizures/{item.seizure_id}", "filed" if filed else "changed")


@router.post("/approvals/{approval_id}")
def decide(
    request: Request,
    session: SessionDep,
    state: StateDep,
    approval_id: uuid.UUID,
    decision: Annotated[str, Form(pattern="^(approve|reject)$")],
    reason: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    ctx = signed_in(request, session, state, write=True)
    try:
        approval = crud.decide_approval(
            session=session,
            actor=ctx.principal,
            approval_id=approval_id,
            decision=ApprovalDecision(approve=decision == "approve", reason=reason.strip() or None),
        )
        commit(session)
    except ServiceError as exc:
        return error_page(ctx, exc)
    return done_redirect(f"{PREFIX}/review", str(approval.status))


@router.get("/review", response_class=HTMLResponse)
def review_queue(request: Request, session: SessionDep, state: StateDep) -> HTMLResponse:
    ctx = signed_in(request, session, state)
    pending = crud.list_approvals(
        session=session, actor=ctx.principal, status=ApprovalStatus.PENDING
    )
    waiting = {}
    for status in (SeizureStatus.OPEN, SeizureStatus.UNDER_REVIEW, SeizureStatus.AWAITING_LAB):
        rows, _nxt = queries.seizure_page(
            session=session,
            actor=ctx.principal,
            filters=crud.SeizureFilter(status=status.value),
            after=None,
            limit=50,
            shared=False,  # only the owning agency reviews its seizures
        )
        waiting[status.value] = rows
    users = user_names(session, ctx, {a.requested_by_user_id for a in pending})
    # Approvals name an item; the link goes to its seizure (the same agency: crud scoped both).
    items = {
        a.entity_id: session.get(Item, a.entity_id) for a in pending if a.entity_type == "item"
    }
    seizure_of = {k: v.seizure_id for k, v in items.items() if v is not None}
    return render_page(
        ctx,
        "review.html",
        pending=pending,
        seizure_of=seizure_of,
        waiting=waiting,
        users=users,
        flash=flash_message(ctx, FLASH),
        can_decide=ctx.can(APPROVERS),
    )


# --------------------------------------------------------------------------- report, exports


@router.get("/field-tests/{test_id}/report.pdf")
def field_test_pdf(
    request: Request, session: SessionDep, state: StateDep, test_id: uuid.UUID
) -> Response:
    ctx = signed_in(request, session, state)
    try:
        data = report_input(
            session=session,
            actor=ctx.principal,
            test_id=test_id,
            measured_label=ctx._("Measured (preprocessed)"),
        )
    except ServiceError as exc:
        return error_page(ctx, exc)
    body = pdf.field_test_report(data, _=ctx._, fmt=ctx.fmt)
    return Response(
        body,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="field-test-{test_id}.pdf"',
            "Cache-Control": "no-store",
        },
    )


def _audit_event(session: Session, test_id: uuid.UUID) -> AuditEvent | None:
    return session.scalars(
        select(AuditEvent)
        .where(col(AuditEvent.entity_type) == "field_test", col(AuditEvent.entity_id) == test_id)
        .order_by(col(AuditEvent.seq).desc())
    ).first()


def report_input(
    *, session: Session, actor: Principal, test_id: uuid.UUID, measured_label: str
) -> pdf.ReportInput:
    """Everything the PDF report of one field test prints, read through crud (isolation applies).

    A partner agency reads the report of a shared test too: the test's agency and device
    are then another agency's, read here as part of the shared record.
    """
    test = crud.get_field_test(session=session, actor=actor, test_id=test_id)
    item = crud.get_item(session=session, actor=actor, item_id=test.item_id)
    seizure = crud.get_seizure(session=session, actor=actor, seizure_id=test.seizure_id)
    agency = session.get(Agency, test.agency_id)
    if agency is None:  # pragma: no cover - a foreign key
        raise NotFoundError("agency", test.agency_id)
    device = session.get(Device, test.device_id) if test.device_id else None
    operator = session.get(User, test.operator_id) if test.operator_id else None
    custody = crud.list_custody_events(session=session, actor=actor, item_id=item.id)
    event = _audit_event(session, test.id)
    if event is None:
        # Its event may still wait to be linked into the chain (linking runs after commits):
        # link what is committed now, as the verify endpoint does, so the report has the hash.
        audit.chain_pending(session, wait=True)
        commit(session)
        event = _audit_event(session, test.id)
    return pdf.ReportInput(
        test=test,
        item=item,
        seizure=seizure,
        agency=agency,
        device=device,
        operator=operator,
        custody=custody,
        plot=plots.spectrum_plot(test, measured_label),
        audit_hash=event.hash if event else None,
        audit_seq=event.seq if event else None,
    )


EXPORT_KINDS = ("csv", "json", "unodc.csv", "incb.json")


@router.get("/seizures.{kind}")
def export_seizures(request: Request, session: SessionDep, state: StateDep, kind: str) -> Response:
    """The filtered list (same filters as the page) as CSV, JSON, UNODC rows or INCB incidents.

    Only the user's agency's own seizures: UNODC and INCB count each seizure once, reported
    by the agency that made it, and a shared seizure is the owning agency's to pass on
    (sharing lets a partner read it here, not export it).
    """
    ctx = signed_in(request, session, state)
    if kind not in EXPORT_KINDS:
        raise HTTPException(
            status_code=404, detail=f"unknown export {kind!r}; one of {', '.join(EXPORT_KINDS)}"
        )
    try:
        rows = queries.all_filtered(
            session=session,
            actor=ctx.principal,
            filters=_filters(_filter_params(request), visible_agencies(ctx, session)),
        )
    except ServiceError as exc:
        return error_page(ctx, exc)
    ids = [s.id for s in rows]
    items, tests = queries.items_of(session, ids), queries.tests_of(session, ids)
    stamp = "seizures"
    if kind == "unodc.csv":
        purity = _purity(session, ctx, [i.id for group in items.values() for i in group])
        text = exports.to_csv(
            exports.unodc_rows(rows, items, tests, ctx.agency, purity), exports.UNODC_COLUMNS
        )
        return _download(text, "text/csv", f"{stamp}-unodc.csv")
    if kind == "incb.json":
        return _download(
            exports.to_json(exports.incb_incidents(rows, items, tests, ctx.agency)),
            "application/json",
            f"{stamp}-incb-pics.json",
        )
    flat = exports.seizure_rows(rows, items, tests)
    if kind == "csv":
        return _download(exports.to_csv(flat, exports.SEIZURE_COLUMNS), "text/csv", f"{stamp}.csv")
    return _download(exports.to_json(flat), "application/json", f"{stamp}.json")


def _purity(session: Session, ctx: Ctx, item_ids: list[uuid.UUID]) -> dict[uuid.UUID, float]:
    if not item_ids:
        return {}
    rows = session.scalars(
        select(LabResult)
        .where(
            col(LabResult.item_id).in_(item_ids),
            col(LabResult.agency_id) == ctx.principal.scope,
        )
        .order_by(col(LabResult.analysed_at))
    ).all()
    return {r.item_id: r.purity_percent for r in rows if r.purity_percent is not None}


def _download(text: str, media: str, filename: str) -> Response:
    return Response(
        text.encode("utf-8"),
        media_type=f"{media}; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


# --------------------------------------------------------------------------- oversight, dashboard


@router.get("/oversight", response_class=HTMLResponse)
def oversight_page(
    request: Request, session: SessionDep, state: StateDep, since: str | None = None
) -> Response:
    ctx = signed_in(request, session, state)
    try:
        ctx.principal.require(AUDITORS, "read the oversight report")
        report = oversight.build_report(
            session=session, state=state, actor=ctx.principal, since=parse_date(since, "since")
        )
    except ServiceError as exc:
        return error_page(ctx, exc)
    fmt = request.query_params.get("format")
    if fmt == "json":
        return _download(
            exports.to_json(oversight_rows(report)), "application/json", "oversight.json"
        )
    if fmt == "csv":
        return _download(
            exports.to_csv(oversight_rows(report), ("finding", "entity", "id", "when", "detail")),
            "text/csv",
            "oversight.csv",
        )
    users = user_names(
        session,
        ctx,
        {e.actor_user_id for e in report.edits}
        | {a.requested_by_user_id for a in report.approvals}
        | {a.decided_by_user_id for a in report.approvals},
    )
    return render_page(ctx, "oversight.html", report=report, users=users, since=since or "")


def oversight_rows(report: oversight.OversightReport) -> list[dict[str, Any]]:
    """The report flattened to one finding per row (for CSV/JSON)."""
    rows: list[dict[str, Any]] = []
    for d in report.discrepancies:
        detail = (
            f"field {d.field_substance} / lab {d.lab_substance}; mass loss {d.mass_loss_percent}"
        )
        rows.append(
            {
                "finding": "discrepancy",
                "entity": "item",
                "id": str(d.item_id),
                "when": "",
                "detail": detail,
            }
        )
    for e in report.edits:
        rows.append(
            {
                "finding": "edit_after_the_fact",
                "entity": e.entity_type,
                "id": str(e.entity_id),
                "when": e.at.isoformat(),
                "detail": f"v{e.version}: {e.reason}",
            }
        )
    for a in report.approvals:
        rows.append(
            {
                "finding": f"approval_{a.status}",
                "entity": a.entity_type,
                "id": str(a.entity_id),
                "when": a.created_at.isoformat(),
                "detail": a.reason,
            }
        )
    for late in report.late_events:
        rows.append(
            {
                "finding": "late_custody_event",
                "entity": "custody_event",
                "id": str(late.event.id),
                "when": late.event.occurred_at.isoformat(),
                "detail": str(late.delay),
            }
        )
    for g in report.gaps:
        rows.append(
            {
                "finding": f"custody_gap_{g.kind}",
                "entity": "item",
                "id": str(g.item_id),
                "when": "",
                "detail": g.detail,
            }
        )
    if report.audit is not None:
        rows.append(
            {
                "finding": "audit_chain",
                "entity": "audit",
                "id": str(report.audit.head_seq),
                "when": "",
                "detail": "ok" if report.audit.ok else f"{len(report.audit.problems)} problem(s)",
            }
        )
    return rows


@router.get("/dashboard", response_class=HTMLResponse)
def dashboard(request: Request, session: SessionDep, state: StateDep) -> HTMLResponse:
    ctx = signed_in(request, session, state)
    params = _filter_params(request)
    try:
        data = queries.dashboard_data(
            session=session,
            actor=ctx.principal,
            filters=_filters(params, visible_agencies(ctx, session)),
        )
    except ServiceError as exc:
        return error_page(ctx, exc)
    by_mode = {
        ctx._(labels.TRANSPORT[code]) if code in labels.TRANSPORT else ctx._("unknown"): counts
        for code, counts in data.by_mode.items()
    }
    points = [(lat, lon, f"{place} {at.date()}") for lat, lon, place, at in data.points]
    return render_page(
        ctx,
        "dashboard.html",
        params=params,
        total=data.total,
        chart_substance=plots.bar_chart_svg(
            data.months, data.by_substance, title=ctx._("Seizures per month by substance")
        ),
        chart_mode=plots.bar_chart_svg(
            data.months, by_mode, title=ctx._("Seizures per month by transport mode")
        ),
        map_svg=geo.map_svg(points, title=ctx._("Seizure locations")),
        routes=[(" → ".join(hops), n) for hops, n in data.routes],
    )


@router.get("/attachments/{attachment_id}")
def attachment(
    request: Request, session: SessionDep, state: StateDep, attachment_id: uuid.UUID
) -> Response:
    """A photo or file of an item; served as a download so no stored content runs in the page."""
    ctx = signed_in(request, session, state)
    try:
        row, data = crud.attachment_content(
            session=session, actor=ctx.principal, attachment_id=attachment_id
        )
    except ServiceError as exc:
        return error_page(ctx, exc)
    return stored_file(data, row.filename, "application/octet-stream")
