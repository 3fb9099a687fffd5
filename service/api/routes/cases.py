"""Investigations: cases, their member seizures, persons and companies, documents, tasks, notes.

Roles and sharing are crud's (:mod:`service.cases.crud`): a case another agency has not
shared is 404; a shared one is read-only for the partner (403 on writes). People only:
field stations' device keys have no access to case files.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile
from sqlmodel import Session, SQLModel

from service.api.common import commit, etag, idempotent_post, parse_if_match
from service.api.deps import IdempotencyKeyDep, IfMatchDep, SessionDep, UserPrincipal
from service.audit import sha256_hex
from service.cases import crud
from service.cases.models import (
    CaseCreate,
    CaseDocumentPublic,
    CaseEntityCreate,
    CaseEntityPublic,
    CasePublic,
    CaseSeizureCreate,
    CaseSeizurePublic,
    CasesPublic,
    CaseStatus,
    CaseUpdate,
    MembersPublic,
    NoteCreate,
    NotePublic,
    NoteUpdate,
    Removal,
    TaskCreate,
    TaskPublic,
    TaskStatus,
    TaskUpdate,
)
from service.models import RecordVersionPublic
from service.principal import Principal

router = APIRouter(tags=["cases"])

Created = tuple[int, Any, dict[str, str]]


def _write_once(
    request: Request,
    session: Session,
    principal: Principal,
    key: uuid.UUID | None,
    body: SQLModel | dict[str, Any],
    *,
    write: Callable[[], Any],
    public: Callable[[Any], Any],
    status: int = 201,
) -> Response:
    """Run one versioned write once per idempotency key; answer its public form and ETag."""

    def action() -> Created:
        row = write()
        return status, public(row), {"ETag": etag(row.version)}

    return idempotent_post(
        session=session, principal=principal, request=request, key=key, body=body, action=action
    )


class GraphNodePublic(SQLModel):
    id: str
    kind: str
    label: str
    seizure_id: str | None
    weight: int
    named: bool


class GraphEdgePublic(SQLModel):
    source: str
    target: str
    kind: str
    strength: float | None
    reasons: list[str]


class CaseGraphPublic(SQLModel):
    nodes: list[GraphNodePublic]
    edges: list[GraphEdgePublic]
    #: Member seizures left out because the caller may not read them.
    hidden_seizures: int


# --------------------------------------------------------------------------- cases


@router.post("/cases", status_code=201, response_model=CasePublic)
def create_case(
    request: Request,
    session: SessionDep,
    principal: UserPrincipal,
    body: CaseCreate,
    key: IdempotencyKeyDep = None,
) -> Response:
    """Open a case (investigators and supervisors); its reference is unique in the agency."""
    return _write_once(
        request,
        session,
        principal,
        key,
        body,
        write=lambda: crud.create_case(session=session, actor=principal, case_in=body),
        public=CasePublic.model_validate,
    )


@router.get("/cases", response_model=CasesPublic)
def list_cases(
    session: SessionDep,
    principal: UserPrincipal,
    status: CaseStatus | None = None,
    q: Annotated[str | None, Query(min_length=2, max_length=200)] = None,
    mine: bool = False,
    skip: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Any:
    """Cases the caller may read (own agency's and shared ones), most recently changed first."""
    rows, more = crud.list_cases(
        session=session, actor=principal, status=status, q=q, mine=mine, skip=skip, limit=limit
    )
    return CasesPublic(data=[CasePublic.model_validate(r) for r in rows], has_more=more)


@router.get("/cases/{case_id}", response_model=CasePublic)
def read_case(
    session: SessionDep, principal: UserPrincipal, case_id: uuid.UUID, response: Response
) -> Any:
    case = crud.get_case(session=session, actor=principal, case_id=case_id)
    response.headers["ETag"] = etag(case.version)
    return case


@router.patch("/cases/{case_id}", response_model=CasePublic)
def update_case(
    session: SessionDep,
    principal: UserPrincipal,
    case_id: uuid.UUID,
    body: CaseUpdate,
    response: Response,
    if_match: IfMatchDep = None,
) -> Any:
    """A new version of the case (status, sharing, lead...) with its reason."""
    case = crud.update_case(
        session=session,
        actor=principal,
        case_id=case_id,
        case_in=body,
        if_match=parse_if_match(if_match),
    )
    commit(session)
    response.headers["ETag"] = etag(case.version)
    return case


@router.get("/cases/{case_id}/history", response_model=list[RecordVersionPublic])
def case_history(session: SessionDep, principal: UserPrincipal, case_id: uuid.UUID) -> Any:
    """Every version of the case and of everything in it: who, when and why."""
    rows = crud.case_history(session=session, actor=principal, case_id=case_id)
    return [RecordVersionPublic.of(r) for r in rows]


@router.get("/cases/{case_id}/graph", response_model=CaseGraphPublic)
def case_graph(session: SessionDep, principal: UserPrincipal, case_id: uuid.UUID) -> Any:
    """Member seizures, the attributes they share and the links between them."""
    graph = crud.case_graph(session=session, actor=principal, case_id=case_id)
    return CaseGraphPublic.model_validate(graph.as_dict())


# --------------------------------------------------------------------------- members


@router.get("/cases/{case_id}/seizures", response_model=MembersPublic)
def list_members(session: SessionDep, principal: UserPrincipal, case_id: uuid.UUID) -> Any:
    """Member seizures the caller may read; ``hidden`` counts the others."""
    rows, hidden = crud.list_members(session=session, actor=principal, case_id=case_id)
    return MembersPublic(data=[CaseSeizurePublic.model_validate(r) for r in rows], hidden=hidden)


@router.post("/cases/{case_id}/seizures", status_code=201, response_model=CaseSeizurePublic)
def add_member(
    request: Request,
    session: SessionDep,
    principal: UserPrincipal,
    case_id: uuid.UUID,
    body: CaseSeizureCreate,
    key: IdempotencyKeyDep = None,
) -> Response:
    """Put a seizure the caller may read (own agency's or shared) in the case."""
    return _write_once(
        request,
        session,
        principal,
        key,
        body,
        write=lambda: crud.add_seizure(
            session=session, actor=principal, case_id=case_id, member_in=body
        ),
        public=CaseSeizurePublic.model_validate,
    )


@router.post("/cases/{case_id}/seizures/{seizure_id}/remove", response_model=CaseSeizurePublic)
def remove_member(
    request: Request,
    session: SessionDep,
    principal: UserPrincipal,
    case_id: uuid.UUID,
    seizure_id: uuid.UUID,
    body: Removal,
    key: IdempotencyKeyDep = None,
) -> Response:
    """Take a seizure off the case, with a reason (the membership stays in the history)."""
    return _write_once(
        request,
        session,
        principal,
        key,
        body,
        write=lambda: crud.remove_seizure(
            session=session,
            actor=principal,
            case_id=case_id,
            seizure_id=seizure_id,
            reason=body.reason,
        ),
        public=CaseSeizurePublic.model_validate,
        status=200,
    )


# --------------------------------------------------------------------------- persons, companies


@router.get("/cases/{case_id}/entities", response_model=list[CaseEntityPublic])
def list_entities(session: SessionDep, principal: UserPrincipal, case_id: uuid.UUID) -> Any:
    return crud.list_entities(session=session, actor=principal, case_id=case_id)


@router.post("/cases/{case_id}/entities", status_code=201, response_model=CaseEntityPublic)
def add_entity(
    request: Request,
    session: SessionDep,
    principal: UserPrincipal,
    case_id: uuid.UUID,
    body: CaseEntityCreate,
    key: IdempotencyKeyDep = None,
) -> Response:
    """Name a person or a company in the case (by reference, as in the seizure log)."""
    return _write_once(
        request,
        session,
        principal,
        key,
        body,
        write=lambda: crud.add_entity(
            session=session, actor=principal, case_id=case_id, entity_in=body
        ),
        public=CaseEntityPublic.model_validate,
    )


@router.post("/cases/{case_id}/entities/{entity_id}/remove", response_model=CaseEntityPublic)
def remove_entity(
    request: Request,
    session: SessionDep,
    principal: UserPrincipal,
    case_id: uuid.UUID,
    entity_id: uuid.UUID,
    body: Removal,
    key: IdempotencyKeyDep = None,
) -> Response:
    return _write_once(
        request,
        session,
        principal,
        key,
        body,
        write=lambda: crud.remove_entity(
            session=session,
            actor=principal,
            case_id=case_id,
            entity_id=entity_id,
            reason=body.reason,
        ),
        public=CaseEntityPublic.model_validate,
        status=200,
    )


# --------------------------------------------------------------------------- documents


@router.get("/cases/{case_id}/documents", response_model=list[CaseDocumentPublic])
def list_documents(session: SessionDep, principal: UserPrincipal, case_id: uuid.UUID) -> Any:
    return crud.list_documents(session=session, actor=principal, case_id=case_id)


@router.post("/cases/{case_id}/documents", status_code=201, response_model=CaseDocumentPublic)
def add_document(
    request: Request,
    session: SessionDep,
    principal: UserPrincipal,
    case_id: uuid.UUID,
    file: Annotated[UploadFile, File(description="The document")],
    description: Annotated[str | None, Form(max_length=2000)] = None,
    document_id: Annotated[uuid.UUID | None, Form(alias="id")] = None,
    key: IdempotencyKeyDep = None,
) -> Response:
    """File a document (a request for assistance, a bank reply...); bytes stored once by SHA-256."""
    data = file.file.read()
    filename = file.filename or "file"
    media_type = file.content_type or "application/octet-stream"
    fingerprint = {
        "case_id": str(case_id),
        "filename": filename,
        "sha256": sha256_hex(data),
        "description": description,
        "id": str(document_id) if document_id else None,
    }

    return _write_once(
        request,
        session,
        principal,
        key or document_id,
        fingerprint,
        write=lambda: crud.add_document(
            session=session,
            actor=principal,
            case_id=case_id,
            filename=filename,
            media_type=media_type,
            data=data,
            description=description,
            document_id=document_id,
        ),
        public=CaseDocumentPublic.model_validate,
    )


@router.get("/case-documents/{document_id}/content", response_class=Response)
def document_content(
    session: SessionDep, principal: UserPrincipal, document_id: uuid.UUID
) -> Response:
    row, data = crud.document_content(session=session, actor=principal, document_id=document_id)
    return Response(
        data,
        media_type=row.media_type,
        headers={"ETag": f'"{row.sha256}"', "Digest": f"sha-256={row.sha256}"},
    )


@router.post("/cases/{case_id}/documents/{document_id}/remove", response_model=CaseDocumentPublic)
def remove_document(
    request: Request,
    session: SessionDep,
    principal: UserPrincipal,
    case_id: uuid.UUID,
    document_id: uuid.UUID,
    body: Removal,
    key: IdempotencyKeyDep = None,
) -> Response:
    return _write_once(
        request,
        session,
        principal,
        key,
        body,
        write=lambda: crud.remove_document(
            session=session,
            actor=principal,
            case_id=case_id,
            document_id=document_id,
            reason=body.reason,
        ),
        public=CaseDocumentPublic.model_validate,
        status=200,
    )


# --------------------------------------------------------------------------- tasks


@router.get("/cases/{case_id}/tasks", response_model=list[TaskPublic])
def list_tasks(
    session: SessionDep,
    principal: UserPrincipal,
    case_id: uuid.UUID,
    status: TaskStatus | None = None,
) -> Any:
    """Open tasks first by due date; ``overdue`` marks open tasks past their due date."""
    today = crud.today_utc()
    rows = crud.list_tasks(session=session, actor=principal, case_id=case_id, status=status)
    return [crud.task_public(t, today) for t in rows]


@router.post("/cases/{case_id}/tasks", status_code=201, response_model=TaskPublic)
def create_task(
    request: Request,
    session: SessionDep,
    principal: UserPrincipal,
    case_id: uuid.UUID,
    body: TaskCreate,
    key: IdempotencyKeyDep = None,
) -> Response:
    """Assign a task (controlled delivery, financial enquiry, MLA request...) to a user."""
    return _write_once(
        request,
        session,
        principal,
        key,
        body,
        write=lambda: crud.create_task(
            session=session, actor=principal, case_id=case_id, task_in=body
        ),
        public=crud.task_public,
    )


@router.get("/case-tasks/{task_id}", response_model=TaskPublic)
def read_task(
    session: SessionDep, principal: UserPrincipal, task_id: uuid.UUID, response: Response
) -> Any:
    task = crud.get_task(session=session, actor=principal, task_id=task_id)
    response.headers["ETag"] = etag(task.version)
    return crud.task_public(task)


@router.patch("/case-tasks/{task_id}", response_model=TaskPublic)
def update_task(
    session: SessionDep,
    principal: UserPrincipal,
    task_id: uuid.UUID,
    body: TaskUpdate,
    response: Response,
    if_match: IfMatchDep = None,
) -> Any:
    """Change a task; its owner may change only its status (done, cancelled, open again)."""
    task = crud.update_task(
        session=session,
        actor=principal,
        task_id=task_id,
        task_in=body,
        if_match=parse_if_match(if_match),
    )
    commit(session)
    response.headers["ETag"] = etag(task.version)
    return crud.task_public(task)


# --------------------------------------------------------------------------- notes


@router.get("/cases/{case_id}/notes", response_model=list[NotePublic])
def list_notes(session: SessionDep, principal: UserPrincipal, case_id: uuid.UUID) -> Any:
    return crud.list_notes(session=session, actor=principal, case_id=case_id)


@router.post("/cases/{case_id}/notes", status_code=201, response_model=NotePublic)
def create_note(
    request: Request,
    session: SessionDep,
    principal: UserPrincipal,
    case_id: uuid.UUID,
    body: NoteCreate,
    key: IdempotencyKeyDep = None,
) -> Response:
    return _write_once(
        request,
        session,
        principal,
        key,
        body,
        write=lambda: crud.create_note(
            session=session, actor=principal, case_id=case_id, note_in=body
        ),
        public=NotePublic.model_validate,
    )


@router.patch("/case-notes/{note_id}", response_model=NotePublic)
def update_note(
    session: SessionDep,
    principal: UserPrincipal,
    note_id: uuid.UUID,
    body: NoteUpdate,
    response: Response,
    if_match: IfMatchDep = None,
) -> Any:
    """The author corrects a note, with a reason; the earlier text stays in its history."""
    note = crud.update_note(
        session=session,
        actor=principal,
        note_id=note_id,
        note_in=body,
        if_match=parse_if_match(if_match),
    )
    commit(session)
    response.headers["ETag"] = etag(note.version)
    return note
