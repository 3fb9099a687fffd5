"""Case pages of the web UI (``/ui/cases``): list, detail with members, tasks, notes, the graph.

All data goes through :mod:`service.cases.crud`, so roles, agency isolation and sharing
are exactly the API's. The case graph is drawn here as inline SVG from the pure graph
and layout of :mod:`service.cases.graph`: no script, deterministic, readable in print.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup, escape
from sqlalchemy import select
from sqlmodel import Session, col

from service import crud as service_crud
from service.api.common import commit
from service.api.deps import SessionDep, StateDep
from service.cases import crud
from service.cases.graph import ATTRIBUTE_KINDS, CaseGraph, Point, layout
from service.cases.models import (
    Case,
    CaseCreate,
    CaseDocument,
    CaseEntity,
    CaseEntityCreate,
    CaseNote,
    CaseSeizureCreate,
    CaseStatus,
    CaseTask,
    CaseUpdate,
    NoteCreate,
    TaskCreate,
    TaskKind,
    TaskStatus,
    TaskUpdate,
)
from service.errors import InvalidInputError, ServiceError
from service.models import Seizure, User
from service.sharing import SharingLevel
from service.web import labels
from service.web.errortext import ENTITY
from service.web.labels import N_
from service.web.pages import (
    PREFIX,
    Ctx,
    done_redirect,
    error_page,
    flash_message,
    invalid_page,
    render_page,
    signed_in,
    stored_file,
)

router = APIRouter(prefix=PREFIX, include_in_schema=False)

CASE_STATUS = {"open": N_("Open"), "suspended": N_("Suspended"), "closed": N_("Closed")}
TASK_KIND = {
    "controlled_delivery": N_("Controlled delivery"),
    "financial_enquiry": N_("Financial enquiry"),
    "mutual_legal_assistance": N_("Request for mutual legal assistance"),
    "surveillance": N_("Surveillance"),
    "laboratory_request": N_("Laboratory request"),
    "other": N_("Other"),
}
TASK_STATUS = {"open": N_("Open"), "done": N_("Done"), "cancelled": N_("Cancelled")}
NODE_KIND = {
    "seizure": N_("Seizure"),
    "consignment": N_("Consignment reference"),
    "person": N_("Person"),
    "company": N_("Company"),
    "route": N_("Route"),
    "substance": N_("Substance"),
}
EDGE_KIND = {
    "attribute": N_("Has this attribute"),
    "suggested": N_("Suggested link"),
    "accepted": N_("Accepted link"),
}
FLASH = {
    "created": N_("Case opened."),
    "member": N_("Seizure added to the case."),
    "removed": N_("Seizure taken off the case."),
    "task": N_("Task assigned."),
    "task_status": N_("Task updated."),
    "note": N_("Note added."),
    "sharing": N_("Sharing changed."),
    "status": N_("Case status changed."),
    "entity": N_("Person or company named in the case."),
    "document": N_("Document filed."),
    "taken_off": N_("Taken off the case."),
}

#: Okabe–Ito colours (distinguishable with colour-blindness); each kind also has its own shape.
COLOURS = {
    "seizure": "#0072B2",
    "consignment": "#E69F00",
    "person": "#009E73",
    "company": "#CC79A7",
    "route": "#56B4E9",
    "substance": "#D55E00",
}
GRAPH_WIDTH, GRAPH_HEIGHT, LEGEND_WIDTH = 760, 560, 220


def _labels(ctx: Ctx, table: dict[str, str]) -> dict[str, str]:
    return {code: ctx._(text) for code, text in table.items()}


def _names(session: Session, ids: set[uuid.UUID | None]) -> dict[uuid.UUID, str]:
    """Display names of users (any agency: a partner reading a case sees who wrote it)."""
    wanted = [i for i in ids if i is not None]
    if not wanted:
        return {}
    rows = session.scalars(select(User).where(col(User.id).in_(wanted))).all()
    return {u.id: u.full_name or u.username for u in rows}


def _agency_users(session: Session, agency_id: uuid.UUID, roles: frozenset[str]) -> list[User]:
    rows = session.scalars(
        select(User)
        .where(col(User.agency_id) == agency_id, col(User.is_active).is_(True))
        .order_by(col(User.username))
    ).all()
    return [u for u in rows if u.role in roles]


# --------------------------------------------------------------------------- list, create


@router.get("/cases", response_class=HTMLResponse)
def case_list(
    request: Request,
    session: SessionDep,
    state: StateDep,
    status: Annotated[str, Query(max_length=20)] = "",
    q: Annotated[str, Query(max_length=200)] = "",
    mine: Annotated[str, Query(max_length=5)] = "",
) -> HTMLResponse:
    ctx = signed_in(request, session, state)
    try:
        wanted = CaseStatus(status) if status else None
    except ValueError:
        return error_page(ctx, InvalidInputError("status", f"unknown value {status!r}"))
    try:
        rows, more = crud.list_cases(
            session=session,
            actor=ctx.principal,
            status=wanted,
            q=q.strip() or None,
            mine=bool(mine),
            limit=200,
        )
        open_tasks = {
            c.id: [
                t
                for t in crud.list_tasks(session=session, actor=ctx.principal, case_id=c.id)
                if t.status == TaskStatus.OPEN
            ]
            for c in rows
        }
    except ServiceError as exc:
        return error_page(ctx, exc)
    today = crud.today_utc()
    agencies = {a.id: a.name for a in service_crud.list_agencies(session=session)}
    return render_page(
        ctx,
        "cases.html",
        rows=rows,
        more=more,
        open_tasks=open_tasks,
        overdue={cid: sum(crud.is_overdue(t, today) for t in ts) for cid, ts in open_tasks.items()},
        agencies=agencies,
        params={"status": status, "q": q, "mine": mine},
        status_labels=_labels(ctx, CASE_STATUS),
        sharing_labels=_labels(ctx, labels.SHARING),
        can_manage=ctx.can(crud.CASE_MANAGERS),
        leaders=_agency_users(session, ctx.agency.id, crud.LEADERS),
        form_id=uuid.uuid4(),
        flash=flash_message(ctx, FLASH),
    )


@router.post("/cases")
def create_case(
    request: Request,
    session: SessionDep,
    state: StateDep,
    title: Annotated[str, Form(max_length=200)],
    reference: Annotated[str, Form(max_length=50)],
    summary: Annotated[str, Form(max_length=20_000)] = "",
    lead_investigator_id: Annotated[str, Form(max_length=40)] = "",
    form_id: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    """Open a case; ``form_id`` (made when the form was drawn) makes a double submit harmless."""
    ctx = signed_in(request, session, state, write=True)
    try:
        case_id = _uuid(form_id, "form_id") if form_id else None
        existing = session.get(Case, case_id) if case_id is not None else None
        if existing is not None and existing.agency_id == ctx.principal.scope:
            return done_redirect(f"{PREFIX}/cases/{existing.id}", "created")  # the form sent twice
        body = CaseCreate.model_validate(
            {
                "id": case_id,
                "title": title.strip(),
                "reference": reference.strip(),
                "summary": summary.strip() or None,
                "lead_investigator_id": _uuid(lead_investigator_id, "lead_investigator_id")
                if lead_investigator_id
                else None,
            }
        )
        case = crud.create_case(session=session, actor=ctx.principal, case_in=body)
        commit(session)
    except ServiceError as exc:
        return error_page(ctx, exc)
    except ValueError as exc:
        return invalid_page(ctx, exc)
    return done_redirect(f"{PREFIX}/cases/{case.id}", "created")


def _uuid(value: str, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(value.strip())
    except ValueError:
        raise InvalidInputError(field, "is not a valid identifier") from None


# --------------------------------------------------------------------------- detail


@router.get("/cases/{case_id}", response_class=HTMLResponse)
def case_detail(
    request: Request, session: SessionDep, state: StateDep, case_id: uuid.UUID
) -> HTMLResponse:
    ctx = signed_in(request, session, state)
    actor = ctx.principal
    try:
        case = crud.get_case(session=session, actor=actor, case_id=case_id)
        data = crud.graph_input(session=session, actor=actor, case_id=case.id)
        graph = crud.case_graph(session=session, actor=actor, case_id=case.id)
        tasks = crud.list_tasks(session=session, actor=actor, case_id=case.id)
        notes = crud.list_notes(session=session, actor=actor, case_id=case.id)
        entities = crud.list_entities(session=session, actor=actor, case_id=case.id)
        documents = crud.list_documents(session=session, actor=actor, case_id=case.id)
        members, hidden = crud.list_members(session=session, actor=actor, case_id=case.id)
        history = crud.case_history(session=session, actor=actor, case_id=case.id)
    except ServiceError as exc:
        return error_page(ctx, exc)
    owner = case.agency_id == ctx.agency.id
    manage = owner and ctx.can(crud.CASE_MANAGERS) and case.status != CaseStatus.CLOSED
    today = crud.today_utc()
    names = _names(
        session,
        {case.lead_investigator_id}
        | {t.owner_user_id for t in tasks}
        | {n.author_user_id for n in notes}
        | {h.actor_user_id for h in history},
    )
    agencies = service_crud.list_agencies(session=session)
    agency_names = {a.id: a.name for a in agencies}
    seizures = {s.id: s for s in data.seizures}
    member_rows = [{"member": m, "seizure": seizures.get(m.seizure_id)} for m in members]
    candidates: list[Seizure] = []
    if manage:
        page, _more = service_crud.list_seizures(
            session=session, actor=actor, filters=service_crud.SeizureFilter(), limit=100
        )
        candidates = [s for s in page if s.id not in seizures]
    return render_page(
        ctx,
        "case.html",
        case=case,
        owner=owner,
        agency_names=agency_names,
        partners=[a for a in agencies if a.id != case.agency_id],
        member_rows=member_rows,
        hidden=hidden,
        tasks=tasks,
        overdue={t.id for t in tasks if crud.is_overdue(t, today)},
        notes=notes,
        entities=entities,
        documents=documents,
        history=[_history_row(h, names, ctx._) for h in history],
        shared_names=[agency_names.get(uuid.UUID(str(p)), str(p)) for p in case.shared_with],
        shared_ids={str(p) for p in case.shared_with},
        names=names,
        graph=graph,
        svg=graph_svg(graph, ctx._),
        candidates=candidates,
        owners=_agency_users(session, case.agency_id, crud.TASK_OWNERS) if manage else [],
        can_manage=manage,
        can_note=owner and ctx.can(crud.NOTE_WRITERS) and case.status != CaseStatus.CLOSED,
        can_status=owner and ctx.can(crud.CASE_MANAGERS),
        me=ctx.user.id,
        # One fresh id per form: a form sent twice makes one record, not two.
        form_ids={form: uuid.uuid4() for form in ("task", "note", "entity", "document")},
        today=today.isoformat(),
        status_labels=_labels(ctx, CASE_STATUS),
        statuses=list(CaseStatus),
        task_kinds=list(TaskKind),
        kind_labels=_labels(ctx, TASK_KIND),
        task_status_labels=_labels(ctx, TASK_STATUS),
        sharing_levels=list(SharingLevel),
        sharing_labels=_labels(ctx, labels.SHARING),
        flash=flash_message(ctx, FLASH),
    )


def _history_row(
    row: Any, names: dict[uuid.UUID, str], gettext: Callable[[str], str]
) -> dict[str, Any]:
    data = json.loads(row.data)
    return {
        "kind": gettext(ENTITY[row.entity_type]) if row.entity_type in ENTITY else "",
        "version": row.version,
        "at": row.at,
        "who": names.get(row.actor_user_id, "—"),
        "reason": row.reason,
        "text": data.get("title") or data.get("text") or data.get("filename") or "",
    }


# --------------------------------------------------------------------------- actions


def _act(
    request: Request,
    session: Session,
    state: Any,
    case_id: uuid.UUID,
    code: str,
    write: Callable[[Ctx], object],
) -> Response:
    """Run one write for the signed-in user, commit it and go back to the case page."""
    ctx = signed_in(request, session, state, write=True)
    try:
        write(ctx)
        commit(session)
    except ServiceError as exc:
        return error_page(ctx, exc)
    except ValueError as exc:  # the models' own rules (pydantic)
        return invalid_page(ctx, exc)
    return done_redirect(f"{PREFIX}/cases/{case_id}", code)


@router.post("/cases/{case_id}/seizures")
def add_member(
    request: Request,
    session: SessionDep,
    state: StateDep,
    case_id: uuid.UUID,
    seizure_id: Annotated[str, Form(max_length=40)] = "",
    seizure_ref: Annotated[str, Form(max_length=40)] = "",
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Add a seizure picked from the list, or given by its identifier."""

    def write(ctx: Ctx) -> object:
        chosen = seizure_ref.strip() or seizure_id.strip()
        if not chosen:
            raise InvalidInputError("seizure_id", "choose a seizure")
        body = CaseSeizureCreate(seizure_id=_uuid(chosen, "seizure_id"), note=note.strip() or None)
        return crud.add_seizure(
            session=session, actor=ctx.principal, case_id=case_id, member_in=body
        )

    return _act(request, session, state, case_id, "member", write)


@router.post("/cases/{case_id}/seizures/{seizure_id}/remove")
def remove_member(
    request: Request,
    session: SessionDep,
    state: StateDep,
    case_id: uuid.UUID,
    seizure_id: uuid.UUID,
    reason: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    def write(ctx: Ctx) -> object:
        if not reason.strip():
            raise InvalidInputError("reason", "taking a seizure off a case needs a reason")
        return crud.remove_seizure(
            session=session,
            actor=ctx.principal,
            case_id=case_id,
            seizure_id=seizure_id,
            reason=reason.strip(),
        )

    return _act(request, session, state, case_id, "removed", write)


def _due(value: str) -> date | None:
    if not value.strip():
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInputError("due_date", "must be a date (YYYY-MM-DD)") from None


@router.post("/cases/{case_id}/tasks")
def add_task(
    request: Request,
    session: SessionDep,
    state: StateDep,
    case_id: uuid.UUID,
    kind: Annotated[str, Form(max_length=40)],
    title: Annotated[str, Form(max_length=200)],
    owner_user_id: Annotated[str, Form(max_length=40)],
    due_date: Annotated[str, Form(max_length=20)] = "",
    details: Annotated[str, Form(max_length=5000)] = "",
    form_id: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    def write(ctx: Ctx) -> object:
        task_id = _uuid(form_id, "form_id") if form_id else None
        if task_id is not None and session.get(CaseTask, task_id) is not None:
            return None  # the same form sent twice: the task exists already
        body = TaskCreate.model_validate(
            {
                "id": task_id,
                "kind": kind,
                "title": title.strip(),
                "owner_user_id": _uuid(owner_user_id, "owner_user_id"),
                "due_date": _due(due_date),
                "details": details.strip() or None,
            }
        )
        return crud.create_task(session=session, actor=ctx.principal, case_id=case_id, task_in=body)

    return _act(request, session, state, case_id, "task", write)


@router.post("/case-tasks/{task_id}/status")
def task_status(
    request: Request,
    session: SessionDep,
    state: StateDep,
    task_id: uuid.UUID,
    status: Annotated[str, Form(max_length=20)],
    version: Annotated[int, Form(ge=1)],
    reason: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    ctx = signed_in(request, session, state, write=True)
    try:
        task = crud.get_task(session=session, actor=ctx.principal, task_id=task_id)
        try:
            new = TaskStatus(status)
        except ValueError:
            raise InvalidInputError("status", f"unknown value {status!r}") from None
        crud.update_task(
            session=session,
            actor=ctx.principal,
            task_id=task.id,
            task_in=TaskUpdate(status=new, reason=reason.strip() or f"marked {new.value}"),
            if_match=version,
        )
        commit(session)
    except ServiceError as exc:
        return error_page(ctx, exc)
    return done_redirect(f"{PREFIX}/cases/{task.case_id}", "task_status")


@router.post("/cases/{case_id}/notes")
def add_note(
    request: Request,
    session: SessionDep,
    state: StateDep,
    case_id: uuid.UUID,
    text: Annotated[str, Form(max_length=10_000)],
    form_id: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    def write(ctx: Ctx) -> object:
        note_id = _uuid(form_id, "form_id") if form_id else None
        if note_id is not None and session.get(CaseNote, note_id) is not None:
            return None  # the same form sent twice
        body = NoteCreate.model_validate({"id": note_id, "text": text.strip()})
        return crud.create_note(session=session, actor=ctx.principal, case_id=case_id, note_in=body)

    return _act(request, session, state, case_id, "note", write)


@router.post("/cases/{case_id}/sharing")
def set_sharing(
    request: Request,
    session: SessionDep,
    state: StateDep,
    case_id: uuid.UUID,
    sharing: Annotated[str, Form(max_length=20)],
    version: Annotated[int, Form(ge=1)],
    reason: Annotated[str, Form(max_length=1000)],
    partners: Annotated[list[str] | None, Form()] = None,
) -> Response:
    def write(ctx: Ctx) -> object:
        try:
            level = SharingLevel(sharing)
        except ValueError:
            raise InvalidInputError("sharing", f"unknown value {sharing!r}") from None
        named = [_uuid(p, "shared_with") for p in partners or []]
        if level == SharingLevel.PARTNERS and not named:
            raise InvalidInputError("shared_with", "name at least one partner agency")
        body = CaseUpdate(
            sharing=level,
            shared_with=named if level == SharingLevel.PARTNERS else [],
            reason=reason.strip(),
        )
        return crud.update_case(
            session=session, actor=ctx.principal, case_id=case_id, case_in=body, if_match=version
        )

    return _act(request, session, state, case_id, "sharing", write)


@router.post("/cases/{case_id}/status")
def set_status(
    request: Request,
    session: SessionDep,
    state: StateDep,
    case_id: uuid.UUID,
    status: Annotated[str, Form(max_length=20)],
    version: Annotated[int, Form(ge=1)],
    reason: Annotated[str, Form(max_length=1000)],
) -> Response:
    def write(ctx: Ctx) -> object:
        try:
            new = CaseStatus(status)
        except ValueError:
            raise InvalidInputError("status", f"unknown value {status!r}") from None
        body = CaseUpdate(status=new, reason=reason.strip())
        return crud.update_case(
            session=session, actor=ctx.principal, case_id=case_id, case_in=body, if_match=version
        )

    return _act(request, session, state, case_id, "status", write)


@router.post("/cases/{case_id}/entities")
def add_entity(
    request: Request,
    session: SessionDep,
    state: StateDep,
    case_id: uuid.UUID,
    kind: Annotated[str, Form(max_length=20)],
    name: Annotated[str, Form(max_length=200)],
    role: Annotated[str, Form(max_length=50)] = "",
    country: Annotated[str, Form(max_length=2)] = "",
    note: Annotated[str, Form(max_length=2000)] = "",
    form_id: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    """Name a person (by reference) or a company in the case."""

    def write(ctx: Ctx) -> object:
        entity_id = _uuid(form_id, "form_id") if form_id else None
        if entity_id is not None and session.get(CaseEntity, entity_id) is not None:
            return None  # the same form sent twice
        details: dict[str, Any] = {"role": role.strip() or None}
        if country.strip():
            details["country" if kind == "company" else "nationality"] = country.strip().upper()
        details["name" if kind == "company" else "reference"] = name.strip()
        body = CaseEntityCreate.model_validate(
            {"id": entity_id, "kind": kind, kind: details, "note": note.strip() or None}
        )
        return crud.add_entity(
            session=session, actor=ctx.principal, case_id=case_id, entity_in=body
        )

    return _act(request, session, state, case_id, "entity", write)


@router.post("/cases/{case_id}/documents")
def add_document(
    request: Request,
    session: SessionDep,
    state: StateDep,
    case_id: uuid.UUID,
    file: Annotated[UploadFile, File()],
    description: Annotated[str, Form(max_length=2000)] = "",
    form_id: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    """File a document in the case (bytes stored once, by SHA-256)."""
    data = file.file.read()

    def write(ctx: Ctx) -> object:
        document_id = _uuid(form_id, "form_id") if form_id else None
        if document_id is not None and session.get(CaseDocument, document_id) is not None:
            return None  # the same form sent twice
        return crud.add_document(
            session=session,
            actor=ctx.principal,
            case_id=case_id,
            filename=file.filename or "file",
            media_type=file.content_type or "application/octet-stream",
            data=data,
            description=description.strip() or None,
            document_id=document_id,
        )

    return _act(request, session, state, case_id, "document", write)


def _reason(reason: str) -> str:
    if not reason.strip():
        raise InvalidInputError("reason", "taking a record off a case needs a reason")
    return reason.strip()


@router.post("/cases/{case_id}/entities/{entity_id}/remove")
def remove_entity(
    request: Request,
    session: SessionDep,
    state: StateDep,
    case_id: uuid.UUID,
    entity_id: uuid.UUID,
    reason: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    def write(ctx: Ctx) -> object:
        return crud.remove_entity(
            session=session,
            actor=ctx.principal,
            case_id=case_id,
            entity_id=entity_id,
            reason=_reason(reason),
        )

    return _act(request, session, state, case_id, "taken_off", write)


@router.post("/cases/{case_id}/documents/{document_id}/remove")
def remove_document(
    request: Request,
    session: SessionDep,
    state: StateDep,
    case_id: uuid.UUID,
    document_id: uuid.UUID,
    reason: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    def write(ctx: Ctx) -> object:
        return crud.remove_document(
            session=session,
            actor=ctx.principal,
            case_id=case_id,
            document_id=document_id,
            reason=_reason(reason),
        )

    return _act(request, session, state, case_id, "taken_off", write)


@router.get("/case-documents/{document_id}")
def document(
    request: Request, session: SessionDep, state: StateDep, document_id: uuid.UUID
) -> Response:
    ctx = signed_in(request, session, state)
    try:
        row, data = crud.document_content(
            session=session, actor=ctx.principal, document_id=document_id
        )
    except ServiceError as exc:
        return error_page(ctx, exc)
    return stored_file(data, row.filename, row.media_type)


# --------------------------------------------------------------------------- graph drawing


def _short(text: str, size: int = 22) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"


def _shape(kind: str, p: Point, *, big: bool = False) -> str:
    """The node's mark: each kind its own shape as well as its own colour."""
    colour = COLOURS.get(kind, "#6b7280")
    x, y = round(p.x, 1), round(p.y, 1)
    stroke = 'stroke="#111827" stroke-width="1"'
    if kind == "seizure":
        return f'<circle cx="{x}" cy="{y}" r="{15 if big else 8}" fill="{colour}" {stroke}/>'
    r = 11 if big else 7
    if kind == "consignment":
        return (
            f'<rect x="{x - r}" y="{y - r}" width="{2 * r}" height="{2 * r}" '
            f'fill="{colour}" {stroke}/>'
        )
    if kind == "person":
        pts = f"{x},{y - r - 2} {x + r + 2},{y} {x},{y + r + 2} {x - r - 2},{y}"
        return f'<polygon points="{pts}" fill="{colour}" {stroke}/>'
    if kind == "company":
        return (
            f'<rect x="{x - r - 3}" y="{y - r + 2}" width="{2 * r + 6}" height="{2 * r - 4}" '
            f'rx="3" fill="{colour}" {stroke}/>'
        )
    if kind == "route":
        pts = f"{x},{y - r - 2} {x + r + 2},{y + r} {x - r - 2},{y + r}"
        return f'<polygon points="{pts}" fill="{colour}" {stroke}/>'
    pts = " ".join(
        f"{round(x + (r + 1) * c, 1)},{round(y + (r + 1) * s, 1)}"
        for c, s in ((1, 0), (0.5, 0.87), (-0.5, 0.87), (-1, 0), (-0.5, -0.87), (0.5, -0.87))
    )
    return f'<polygon points="{pts}" fill="{colour}" {stroke}/>'


def _edge_style(kind: str) -> str:
    if kind == "accepted":
        return 'stroke="#111827" stroke-width="3"'
    if kind == "suggested":
        return 'stroke="#b45309" stroke-width="2" stroke-dasharray="7 4"'
    return 'stroke="#9ca3af" stroke-width="1"'


def graph_svg(graph: CaseGraph, gettext: Callable[[str], str]) -> Markup:
    """The case graph as an accessible inline SVG (title, description, legend, linked nodes)."""
    _ = gettext
    where = layout(graph, width=GRAPH_WIDTH, height=GRAPH_HEIGHT)
    seizures = [n for n in graph.nodes if n.kind == "seizure"]
    attributes = [n for n in graph.nodes if n.kind != "seizure"]
    links = [e for e in graph.edges if e.kind != "attribute"]
    title = _("Case graph")
    desc = _(
        "%(seizures)d seizures, %(attributes)d shared attributes and %(links)d links "
        "between seizures. Each seizure links to its page."
    ) % {"seizures": len(seizures), "attributes": len(attributes), "links": len(links)}
    width = GRAPH_WIDTH + LEGEND_WIDTH
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="case-graph" role="img" '
        f'viewBox="0 0 {width} {GRAPH_HEIGHT}" width="100%" '
        'aria-labelledby="case-graph-title case-graph-desc" '
        'font-family="sans-serif" font-size="11">',
        f'<title id="case-graph-title">{escape(title)}</title>',
        f'<desc id="case-graph-desc">{escape(desc)}</desc>',
        f'<rect x="0" y="0" width="{width}" height="{GRAPH_HEIGHT}" fill="#ffffff"/>',
        '<g class="edges">',
    ]
    centre = _centre([where[n.id] for n in seizures])
    # Attribute lines first, links on top of them: a link is the stronger statement.
    for edge in sorted(graph.edges, key=lambda e: e.kind != "attribute"):
        a, b = where[edge.source], where[edge.target]
        label = _(EDGE_KIND[edge.kind])
        if edge.strength is not None:
            label += f" ({edge.strength:.2f})"
        if edge.reasons:
            label += ": " + "; ".join(edge.reasons)
        if edge.kind == "attribute":
            shape = f'<line x1="{a.x:.1f}" y1="{a.y:.1f}" x2="{b.x:.1f}" y2="{b.y:.1f}"'
        else:  # an arc bowing away from the centre, clear of the attributes between the two
            c = _bow(a, b, centre)
            path = f"M{a.x:.1f},{a.y:.1f} Q{c.x:.1f},{c.y:.1f} {b.x:.1f},{b.y:.1f}"
            shape = f'<path fill="none" d="{path}"'
        parts.append(
            f'{shape} class="edge edge-{edge.kind}" {_edge_style(edge.kind)}>'
            f"<title>{escape(label)}</title>{'</line>' if edge.kind == 'attribute' else '</path>'}"
        )
    parts.append("</g>")
    parts.append('<g class="nodes">')
    for node in graph.nodes:
        p = where[node.id]
        kind_label = _(NODE_KIND.get(node.kind, node.kind))
        tip = f"{kind_label}: {node.label}"
        text = (
            f'<text x="{p.x:.1f}" y="{p.y + (27 if node.kind == "seizure" else 21):.1f}" '
            f'text-anchor="middle" fill="#111827">{escape(_short(node.label))}</text>'
        )
        if node.kind == "seizure" and node.seizure_id:
            parts.append(
                f'<a class="node node-seizure" href="{PREFIX}/seizures/{escape(node.seizure_id)}" '
                f'data-seizure-id="{escape(node.seizure_id)}">'
                f"<title>{escape(tip)}</title>{_shape(node.kind, p, big=True)}{text}</a>"
            )
        else:
            parts.append(
                f'<g class="node node-{escape(node.kind)}"><title>{escape(tip)}</title>'
                f"{_shape(node.kind, p, big=True)}{text}</g>"
            )
    parts.append("</g>")
    parts.append(_legend(_))
    parts.append("</svg>")
    return Markup("".join(parts))


def _centre(points: list[Point]) -> Point:
    if not points:
        return Point(GRAPH_WIDTH / 2, GRAPH_HEIGHT / 2)
    return Point(sum(p.x for p in points) / len(points), sum(p.y for p in points) / len(points))


def _bow(a: Point, b: Point, centre: Point) -> Point:
    """Control point of a link's arc: the chord's middle pushed away from the centre."""
    mx, my = (a.x + b.x) / 2, (a.y + b.y) / 2
    dx, dy = mx - centre.x, my - centre.y
    norm = math.hypot(dx, dy)
    if norm < 1.0:  # a diameter: bow upwards
        dx, dy, norm = 0.0, -1.0, 1.0
    lift = 0.45 * math.hypot(b.x - a.x, b.y - a.y)
    return Point(mx + dx / norm * lift, my + dy / norm * lift)


def _legend(_: Callable[[str], str]) -> str:
    x0 = GRAPH_WIDTH + 10
    out = [
        f'<g class="legend"><rect x="{x0 - 6}" y="12" width="{LEGEND_WIDTH - 12}" height="250" '
        'fill="#f9fafb" stroke="#d1d5db"/>',
        f'<text x="{x0}" y="32" font-weight="bold">{escape(_("Legend"))}</text>',
    ]
    y = 54
    for kind in ("seizure", *ATTRIBUTE_KINDS):
        out.append(_shape(kind, Point(x0 + 10, y)))
        out.append(f'<text x="{x0 + 26}" y="{y + 4}">{escape(_(NODE_KIND[kind]))}</text>')
        y += 24
    for kind in ("accepted", "suggested", "attribute"):
        out.append(
            f'<line x1="{x0}" y1="{y}" x2="{x0 + 20}" y2="{y}" {_edge_style(kind)}/>'
            f'<text x="{x0 + 26}" y="{y + 4}">{escape(_(EDGE_KIND[kind]))}</text>'
        )
        y += 22
    out.append("</g>")
    return "".join(out)
