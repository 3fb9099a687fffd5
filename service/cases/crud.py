"""Keyword-only operations on cases; every write is versioned and audited in the caller's
transaction.

Who may do what (issue 8):

* investigators and supervisors manage their agency's cases: create and change them, add
  and take off seizures, persons, companies and documents, set sharing, assign tasks;
* analysts read cases (their agency's and those shared with it) and write notes in them;
* officers see only their agency's cases in which they own a task (need to know), and
  mark their own tasks done or cancelled;
* administrators and field stations have no access to case files.

Sharing (:mod:`service.sharing`) grants reading only: a partner agency's reader sees the
case, its tasks, notes, persons, companies and documents, but never writes (403). A
member seizure is shown only to a reader who may read that seizure itself; the others
are counted, never shown. Another agency's case that is not shared is "not found" (404).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from sqlalchemy import and_, exists, func, or_, select, tuple_
from sqlmodel import Session, col

from service.cases.graph import CaseGraph, LinkFacts, SeizureFacts, build_case_graph
from service.cases.graph import seizure_attributes as attributes_of
from service.cases.models import (
    CASE_ENTITY,
    CASE_TABLES,
    Case,
    CaseCreate,
    CaseDocument,
    CaseEntity,
    CaseEntityCreate,
    CaseNote,
    CaseSeizure,
    CaseSeizureCreate,
    CaseStatus,
    CaseTask,
    CaseUpdate,
    EntityKind,
    NoteCreate,
    NoteUpdate,
    TaskCreate,
    TaskPublic,
    TaskStatus,
    TaskUpdate,
)
from service.core.types import utcnow
from service.crud import (
    add_record,
    apply_changes,
    check_version,
    like_pattern,
    sharing_changes,
    stored_file_fields,
    validated_partners,
)
from service.errors import ConflictError, InvalidInputError, NotFoundError, PermissionDeniedError
from service.linking.models import LinkStatus, SeizureLink
from service.models import Blob, FieldTest, Item, RecordVersion, Role, Seizure, User
from service.principal import SYSTEM_ROLE, Principal
from service.sharing import can_read, readable, sync_shares

#: Create and change cases and everything in them.
CASE_MANAGERS = frozenset({Role.INVESTIGATOR.value, Role.SUPERVISOR.value})
#: Read every case their agency owns or is shared with it.
CASE_READERS = CASE_MANAGERS | {Role.ANALYST.value}
#: Write notes in a readable case of their own agency.
NOTE_WRITERS = CASE_READERS
#: Read only their own agency's cases in which they own a task.
TASK_ONLY_READERS = frozenset({Role.OFFICER.value})
#: May lead a case.
LEADERS = CASE_MANAGERS


# --------------------------------------------------------------------------- access


def _may_open_cases(actor: Principal) -> None:
    if actor.role != SYSTEM_ROLE and actor.role not in CASE_READERS | TASK_ONLY_READERS:
        raise PermissionDeniedError(actor.role, "read case files")


def _visible(actor: Principal) -> Any:
    """SQL condition: the cases ``actor`` may read."""
    if actor.role in TASK_ONLY_READERS:
        return and_(
            col(Case.agency_id) == actor.scope,
            exists().where(
                col(CaseTask.case_id) == col(Case.id),
                col(CaseTask.owner_user_id) == actor.user_id,
            ),
        )
    return readable(Case, CASE_ENTITY, actor)


def _can_see(session: Session, actor: Principal, case: Case) -> bool:
    if actor.role == SYSTEM_ROLE:
        return True
    if actor.role in TASK_ONLY_READERS:
        return case.agency_id == actor.scope and (
            session.scalars(
                select(col(CaseTask.id)).where(
                    col(CaseTask.case_id) == case.id,
                    col(CaseTask.owner_user_id) == actor.user_id,
                )
            ).first()
            is not None
        )
    return can_read(case, actor)


def _readable_case(session: Session, actor: Principal, case_id: uuid.UUID) -> Case:
    _may_open_cases(actor)
    case = session.get(Case, case_id)
    if case is None or not _can_see(session, actor, case):
        raise NotFoundError("case", case_id)
    return case


def _owned_case(
    session: Session, actor: Principal, case_id: uuid.UUID, roles: frozenset[str], action: str
) -> Case:
    """The case, for a write by ``actor``: its role allows it and its agency owns the case."""
    if actor.role != SYSTEM_ROLE:
        actor.require(roles, action)
    case = _readable_case(session, actor, case_id)
    if actor.role != SYSTEM_ROLE and case.agency_id != actor.scope:
        raise PermissionDeniedError(actor.role, "change another agency's case (shared to read)")
    return case


#: Records that belong to one case (and are read or written through it).
InCase = TypeVar("InCase", CaseDocument, CaseTask, CaseNote)
#: Records taken off a case (``removed_at``) rather than changed.
Removable = TypeVar("Removable", CaseEntity, CaseDocument)


def _in_case(
    session: Session,
    model: type[InCase],
    entity: str,
    record_id: uuid.UUID,
    case_of: Callable[[uuid.UUID], Case],
) -> tuple[InCase, Case]:
    """A case's record and its case (``case_of`` checks the actor may read or write it);
    404 names the record, never its case (whose existence it would reveal)."""
    row = session.get(model, record_id)
    if row is None:
        raise NotFoundError(entity, record_id)
    try:
        case = case_of(row.case_id)
    except NotFoundError:
        raise NotFoundError(entity, record_id) from None
    return row, case


def _take_off(
    session: Session,
    actor: Principal,
    case_id: uuid.UUID,
    model: type[Removable],
    entity: str,
    record_id: uuid.UUID,
    *,
    reason: str,
    action: str,
) -> Removable:
    """Take a person, company or document off the case: a new version with ``removed_at``."""
    case = _owned_case(session, actor, case_id, CASE_MANAGERS, action)
    _not_closed(case)
    row = session.get(model, record_id)
    if row is None or row.case_id != case.id or row.removed_at is not None:
        raise NotFoundError(entity, record_id)
    apply_changes(session, row, {"removed_at": utcnow()}, actor, reason)
    return row


def _not_closed(case: Case) -> None:
    if case.status == CaseStatus.CLOSED:
        raise ConflictError(f"case {case.reference} is closed: reopen it before changing it")


def _agency_user(
    session: Session, agency_id: uuid.UUID, user_id: uuid.UUID, field: str, roles: frozenset[str]
) -> User:
    user = session.get(User, user_id)
    if user is None or user.agency_id != agency_id or not user.is_active:
        raise InvalidInputError(field, "must be an active user of the case's agency")
    if user.role not in roles:
        raise InvalidInputError(field, "this person's role cannot take this on")
    return user


# --------------------------------------------------------------------------- cases


def create_case(*, session: Session, actor: Principal, case_in: CaseCreate) -> Case:
    actor.require(CASE_MANAGERS, "open cases")
    data = case_in.model_dump(exclude={"id", "shared_with"})
    data["reference"] = _reference(case_in.reference)
    case = Case(
        **data,
        id=case_in.id or uuid.uuid4(),
        agency_id=actor.scope,
        created_by_user_id=actor.user_id,
    )
    if case.lead_investigator_id is not None:
        _agency_user(
            session, actor.scope, case.lead_investigator_id, "lead_investigator_id", LEADERS
        )
    _unique_reference(session, actor.scope, case.reference, None)
    case.shared_with = validated_partners(session, actor, case_in.sharing, case_in.shared_with)  # type: ignore[assignment]
    add_record(session, case, actor)
    sync_shares(session, entity_type=CASE_ENTITY, row=case)
    return case


def _reference(text: str) -> str:
    value = " ".join(text.split())
    if not value:
        raise InvalidInputError("reference", "must not be blank")
    return value


def _unique_reference(
    session: Session, agency_id: uuid.UUID, reference: str, case_id: uuid.UUID | None
) -> None:
    # Checked before writing for a clear message; the unique constraint still decides races.
    query = select(col(Case.id)).where(
        col(Case.agency_id) == agency_id, func.lower(col(Case.reference)) == reference.lower()
    )
    if case_id is not None:
        query = query.where(col(Case.id) != case_id)
    if session.scalars(query).first() is not None:
        raise ConflictError(f"the agency already has a case with reference {reference!r}")


def get_case(*, session: Session, actor: Principal, case_id: uuid.UUID) -> Case:
    return _readable_case(session, actor, case_id)


def list_cases(
    *,
    session: Session,
    actor: Principal,
    status: CaseStatus | None = None,
    q: str | None = None,
    mine: bool = False,
    skip: int = 0,
    limit: int = 50,
) -> tuple[Sequence[Case], bool]:
    """Readable cases, most recently changed first; the page and whether more rows follow."""
    _may_open_cases(actor)
    query = select(Case).where(_visible(actor))
    if status is not None:
        query = query.where(col(Case.status) == status.value)
    if q:
        pattern = like_pattern(q)
        query = query.where(
            or_(
                col(Case.title).ilike(pattern, escape="\\"),
                col(Case.reference).ilike(pattern, escape="\\"),
            )
        )
    if mine and actor.user_id is not None:
        query = query.where(
            or_(
                col(Case.lead_investigator_id) == actor.user_id,
                exists().where(
                    col(CaseTask.case_id) == col(Case.id),
                    col(CaseTask.owner_user_id) == actor.user_id,
                ),
            )
        )
    order = (col(Case.updated_at).desc(), col(Case.id))
    rows = session.scalars(query.order_by(*order).offset(skip).limit(limit + 1)).all()
    return rows[:limit], len(rows) > limit


def update_case(
    *, session: Session, actor: Principal, case_id: uuid.UUID, case_in: CaseUpdate, if_match: int
) -> Case:
    case = _owned_case(session, actor, case_id, CASE_MANAGERS, "change cases")
    check_version(case, if_match)
    changes = case_in.model_dump(exclude_unset=True, exclude={"reason"}, mode="python")
    for key in [k for k, v in changes.items() if v is None]:
        if not Case.__table__.c[key].nullable:  # type: ignore[attr-defined]
            raise InvalidInputError(key, "cannot be cleared")
    if "reference" in changes:
        changes["reference"] = _reference(changes["reference"])
        _unique_reference(session, case.agency_id, changes["reference"], case.id)
    if changes.get("lead_investigator_id") is not None:
        _agency_user(
            session,
            case.agency_id,
            changes["lead_investigator_id"],
            "lead_investigator_id",
            LEADERS,
        )
    sharing = sharing_changes(session, actor, case, changes)
    if "status" in changes:
        changes["status"] = CaseStatus(changes["status"]).value
    if "sharing" in changes:
        changes["sharing"] = str(changes["sharing"])
    if apply_changes(session, case, changes, actor, case_in.reason) and sharing:
        sync_shares(session, entity_type=CASE_ENTITY, row=case)
    return case


# --------------------------------------------------------------------------- members


def add_seizure(
    *, session: Session, actor: Principal, case_id: uuid.UUID, member_in: CaseSeizureCreate
) -> CaseSeizure:
    """Put a seizure in the case; the actor must be able to read the seizure (own or shared)."""
    case = _owned_case(session, actor, case_id, CASE_MANAGERS, "add seizures to cases")
    _not_closed(case)
    seizure = session.get(Seizure, member_in.seizure_id)
    if seizure is None or not can_read(seizure, actor):
        raise InvalidInputError("seizure_id", "no seizure you may read has this id")
    existing = session.scalars(
        select(CaseSeizure).where(
            col(CaseSeizure.case_id) == case.id, col(CaseSeizure.seizure_id) == seizure.id
        )
    ).first()
    if existing is not None:
        if existing.removed_at is None:
            raise ConflictError(f"seizure {seizure.id} is already in case {case.reference}")
        apply_changes(
            session,
            existing,
            {"removed_at": None, "note": member_in.note, "added_by_user_id": actor.user_id},
            actor,
            member_in.note or "added to the case again",
        )
        return existing
    member = CaseSeizure(
        id=member_in.id or uuid.uuid4(),
        case_id=case.id,
        seizure_id=seizure.id,
        agency_id=case.agency_id,
        note=member_in.note,
        added_by_user_id=actor.user_id,
    )
    add_record(session, member, actor, reason=member_in.note)
    return member


def remove_seizure(
    *, session: Session, actor: Principal, case_id: uuid.UUID, seizure_id: uuid.UUID, reason: str
) -> CaseSeizure:
    """Take a seizure off the case (the membership stays in the history)."""
    case = _owned_case(session, actor, case_id, CASE_MANAGERS, "take seizures off cases")
    _not_closed(case)
    member = session.scalars(
        select(CaseSeizure).where(
            col(CaseSeizure.case_id) == case.id,
            col(CaseSeizure.seizure_id) == seizure_id,
            col(CaseSeizure.removed_at).is_(None),
        )
    ).first()
    if member is None:
        raise NotFoundError("case_seizure", seizure_id)
    apply_changes(session, member, {"removed_at": utcnow()}, actor, reason)
    return member


def list_members(
    *, session: Session, actor: Principal, case_id: uuid.UUID, include_removed: bool = False
) -> tuple[list[CaseSeizure], int]:
    """Members whose seizure ``actor`` may read, and how many others there are."""
    case = _readable_case(session, actor, case_id)
    query = select(CaseSeizure).where(col(CaseSeizure.case_id) == case.id)
    if not include_removed:
        query = query.where(col(CaseSeizure.removed_at).is_(None))
    rows = session.scalars(query.order_by(col(CaseSeizure.created_at), col(CaseSeizure.id))).all()
    seizures = _seizures(session, [r.seizure_id for r in rows])
    shown = [
        r for r in rows if r.seizure_id in seizures and can_read(seizures[r.seizure_id], actor)
    ]
    return shown, len(rows) - len(shown)


def _seizures(session: Session, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Seizure]:
    if not ids:
        return {}
    rows = session.scalars(select(Seizure).where(col(Seizure.id).in_(list(ids)))).all()
    return {s.id: s for s in rows}


def member_seizures(*, session: Session, actor: Principal, case_id: uuid.UUID) -> list[Seizure]:
    """The member seizures ``actor`` may read, oldest seizure first."""
    members, _hidden = list_members(session=session, actor=actor, case_id=case_id)
    seizures = _seizures(session, [m.seizure_id for m in members])
    return sorted(seizures.values(), key=lambda s: (s.seized_at, str(s.id)))


# --------------------------------------------------------------------------- persons, companies


def add_entity(
    *, session: Session, actor: Principal, case_id: uuid.UUID, entity_in: CaseEntityCreate
) -> CaseEntity:
    case = _owned_case(session, actor, case_id, CASE_MANAGERS, "add persons or companies")
    _not_closed(case)
    ref = entity_in.person if entity_in.kind == EntityKind.PERSON else entity_in.company
    assert ref is not None  # the model's validator makes sure
    entity = CaseEntity(
        id=entity_in.id or uuid.uuid4(),
        case_id=case.id,
        agency_id=case.agency_id,
        kind=entity_in.kind,
        details=ref.model_dump(mode="json", exclude_none=True),
        note=entity_in.note,
        added_by_user_id=actor.user_id,
    )
    add_record(session, entity, actor, reason=entity_in.note)
    return entity


def remove_entity(
    *, session: Session, actor: Principal, case_id: uuid.UUID, entity_id: uuid.UUID, reason: str
) -> CaseEntity:
    return _take_off(
        session,
        actor,
        case_id,
        CaseEntity,
        "case_entity",
        entity_id,
        reason=reason,
        action="take persons or companies off",
    )


def list_entities(
    *, session: Session, actor: Principal, case_id: uuid.UUID
) -> Sequence[CaseEntity]:
    case = _readable_case(session, actor, case_id)
    return session.scalars(
        select(CaseEntity)
        .where(col(CaseEntity.case_id) == case.id, col(CaseEntity.removed_at).is_(None))
        .order_by(col(CaseEntity.kind), col(CaseEntity.created_at), col(CaseEntity.id))
    ).all()


# --------------------------------------------------------------------------- documents


def add_document(
    *,
    session: Session,
    actor: Principal,
    case_id: uuid.UUID,
    filename: str,
    media_type: str,
    data: bytes,
    description: str | None = None,
    document_id: uuid.UUID | None = None,
) -> CaseDocument:
    """Store the bytes once by SHA-256 (shared with item attachments) and file them in the case."""
    case = _owned_case(session, actor, case_id, CASE_MANAGERS, "file documents")
    _not_closed(case)
    if not data:
        raise InvalidInputError("file", "is empty")
    document = CaseDocument(
        id=document_id or uuid.uuid4(),
        case_id=case.id,
        agency_id=case.agency_id,
        **stored_file_fields(session, filename=filename, media_type=media_type, data=data),
        description=description,
        added_by_user_id=actor.user_id,
    )
    add_record(session, document, actor)
    return document


def list_documents(
    *, session: Session, actor: Principal, case_id: uuid.UUID
) -> Sequence[CaseDocument]:
    case = _readable_case(session, actor, case_id)
    return session.scalars(
        select(CaseDocument)
        .where(col(CaseDocument.case_id) == case.id, col(CaseDocument.removed_at).is_(None))
        .order_by(col(CaseDocument.created_at), col(CaseDocument.id))
    ).all()


def document_content(
    *, session: Session, actor: Principal, document_id: uuid.UUID
) -> tuple[CaseDocument, bytes]:
    document, _case = _in_case(
        session,
        CaseDocument,
        "case_document",
        document_id,
        lambda case_id: _readable_case(session, actor, case_id),
    )
    blob = session.get(Blob, document.sha256)
    if blob is None:
        raise NotFoundError("blob", document.sha256)
    return document, bytes(blob.data)


def remove_document(
    *, session: Session, actor: Principal, case_id: uuid.UUID, document_id: uuid.UUID, reason: str
) -> CaseDocument:
    return _take_off(
        session,
        actor,
        case_id,
        CaseDocument,
        "case_document",
        document_id,
        reason=reason,
        action="take documents off",
    )


# --------------------------------------------------------------------------- tasks

#: Who may own a task: anyone of the agency who works cases or the field, not administrators.
TASK_OWNERS = CASE_READERS | TASK_ONLY_READERS


def create_task(
    *, session: Session, actor: Principal, case_id: uuid.UUID, task_in: TaskCreate
) -> CaseTask:
    case = _owned_case(session, actor, case_id, CASE_MANAGERS, "assign tasks")
    _not_closed(case)
    _agency_user(session, case.agency_id, task_in.owner_user_id, "owner_user_id", TASK_OWNERS)
    task = CaseTask(
        **task_in.model_dump(exclude={"id", "due_date"}),
        id=task_in.id or uuid.uuid4(),
        case_id=case.id,
        agency_id=case.agency_id,
        due_date=task_in.due_date.isoformat() if task_in.due_date else None,
        created_by_user_id=actor.user_id,
    )
    add_record(session, task, actor)
    return task


def update_task(
    *, session: Session, actor: Principal, task_id: uuid.UUID, task_in: TaskUpdate, if_match: int
) -> CaseTask:
    """Managers change anything; the task's owner only its status (done, cancelled, open)."""
    task, case = _in_case(
        session,
        CaseTask,
        "case_task",
        task_id,
        lambda case_id: _readable_case(session, actor, case_id),
    )
    changes = task_in.model_dump(exclude_unset=True, exclude={"reason"}, mode="python")
    owner = actor.user_id is not None and actor.user_id == task.owner_user_id
    if actor.role != SYSTEM_ROLE:
        if case.agency_id != actor.scope:
            raise PermissionDeniedError(actor.role, "change another agency's case (shared to read)")
        if actor.role not in CASE_MANAGERS and not (owner and set(changes) <= {"status"}):
            raise PermissionDeniedError(actor.role, "change more of a task than its status")
    _not_closed(case)
    check_version(task, if_match)
    for key in [k for k, v in changes.items() if v is None]:
        if not CaseTask.__table__.c[key].nullable:  # type: ignore[attr-defined]
            raise InvalidInputError(key, "cannot be cleared")
    if changes.get("owner_user_id") is not None:
        _agency_user(
            session, case.agency_id, changes["owner_user_id"], "owner_user_id", TASK_OWNERS
        )
    if "due_date" in changes:
        due = changes["due_date"]
        changes["due_date"] = due.isoformat() if isinstance(due, date) else None
    for key, kind in (("kind", None), ("status", TaskStatus)):
        if key in changes and changes[key] is not None:
            changes[key] = str(changes[key]) if kind is None else TaskStatus(changes[key]).value
    if "status" in changes and changes["status"] != task.status:
        changes["completed_at"] = utcnow() if changes["status"] != TaskStatus.OPEN else None
    apply_changes(session, task, changes, actor, task_in.reason)
    return task


def list_tasks(
    *, session: Session, actor: Principal, case_id: uuid.UUID, status: TaskStatus | None = None
) -> Sequence[CaseTask]:
    """The case's tasks: open ones first, by due date (none last), then the others."""
    case = _readable_case(session, actor, case_id)
    query = select(CaseTask).where(col(CaseTask.case_id) == case.id)
    if status is not None:
        query = query.where(col(CaseTask.status) == status.value)
    rows = session.scalars(query).all()
    return sorted(
        rows,
        key=lambda t: (
            t.status != TaskStatus.OPEN,
            t.due_date is None,
            t.due_date or "",
            t.created_at,
            str(t.id),
        ),
    )


def get_task(*, session: Session, actor: Principal, task_id: uuid.UUID) -> CaseTask:
    task, _case = _in_case(
        session,
        CaseTask,
        "case_task",
        task_id,
        lambda case_id: _readable_case(session, actor, case_id),
    )
    return task


def today_utc() -> date:
    return datetime.now(UTC).date()


def is_overdue(task: CaseTask, today: date) -> bool:
    """Open and due before ``today``."""
    due = task.due_date
    return task.status == TaskStatus.OPEN and due is not None and due < today.isoformat()


def task_public(task: CaseTask, today: date | None = None) -> TaskPublic:
    public = TaskPublic.model_validate(task)
    public.overdue = is_overdue(task, today or today_utc())
    return public


# --------------------------------------------------------------------------- notes


def create_note(
    *, session: Session, actor: Principal, case_id: uuid.UUID, note_in: NoteCreate
) -> CaseNote:
    case = _owned_case(session, actor, case_id, NOTE_WRITERS, "write case notes")
    _not_closed(case)
    note = CaseNote(
        id=note_in.id or uuid.uuid4(),
        case_id=case.id,
        agency_id=case.agency_id,
        text=note_in.text,
        author_user_id=actor.user_id,
    )
    add_record(session, note, actor)
    return note


def update_note(
    *, session: Session, actor: Principal, note_id: uuid.UUID, note_in: NoteUpdate, if_match: int
) -> CaseNote:
    """Only the author corrects a note; the old text stays in the note's history."""
    note, case = _in_case(
        session,
        CaseNote,
        "case_note",
        note_id,
        lambda case_id: _owned_case(session, actor, case_id, NOTE_WRITERS, "correct case notes"),
    )
    if actor.role != SYSTEM_ROLE and note.author_user_id != actor.user_id:
        raise PermissionDeniedError(actor.role, "correct another person's note")
    _not_closed(case)
    check_version(note, if_match)
    apply_changes(session, note, {"text": note_in.text}, actor, note_in.reason)
    return note


def list_notes(*, session: Session, actor: Principal, case_id: uuid.UUID) -> Sequence[CaseNote]:
    """The case's notes, newest first."""
    case = _readable_case(session, actor, case_id)
    return session.scalars(
        select(CaseNote)
        .where(col(CaseNote.case_id) == case.id)
        .order_by(col(CaseNote.created_at).desc(), col(CaseNote.id))
    ).all()


# --------------------------------------------------------------------------- history


def case_history(*, session: Session, actor: Principal, case_id: uuid.UUID) -> list[RecordVersion]:
    """Every version of the case and of the records in it (members, tasks, notes...), oldest first.

    Versions of members whose seizure the reader may not see are left out.
    """
    case = _readable_case(session, actor, case_id)
    members, _hidden = list_members(
        session=session, actor=actor, case_id=case.id, include_removed=True
    )
    wanted: list[tuple[str, uuid.UUID]] = [("case", case.id)]
    wanted += [("case_seizure", m.id) for m in members]
    for name, model in CASE_TABLES.items():
        if name in ("case", "case_seizure"):
            continue
        ids = session.scalars(
            select(model.id).where(model.case_id == case.id)  # type: ignore[attr-defined]
        ).all()
        wanted += [(name, i) for i in ids]
    rows: list[RecordVersion] = []
    # Chunks keep the IN list within every database's parameter limit.
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        rows += session.scalars(
            select(RecordVersion).where(
                tuple_(col(RecordVersion.entity_type), col(RecordVersion.entity_id)).in_(chunk)
            )
        ).all()
    return sorted(rows, key=lambda r: (r.at, r.id or 0))


def version_data(row: RecordVersion) -> dict[str, Any]:
    return json.loads(row.data)  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- graph


@dataclass(frozen=True)
class GraphInput:
    """What the graph is built from, as read for one reader (kept for the page's tables)."""

    seizures: list[Seizure]
    links: list[SeizureLink]
    hidden: int


def graph_input(*, session: Session, actor: Principal, case_id: uuid.UUID) -> GraphInput:
    case = _readable_case(session, actor, case_id)
    _members, hidden = list_members(session=session, actor=actor, case_id=case_id)
    seizures = member_seizures(session=session, actor=actor, case_id=case_id)
    ids = [s.id for s in seizures]
    links: list[SeizureLink] = []
    if len(ids) >= 2:
        links = list(
            session.scalars(
                select(SeizureLink)
                .where(
                    # The case's agency's judgement, and the reader's own.
                    col(SeizureLink.agency_id).in_(
                        {case.agency_id, actor.agency_id or case.agency_id}
                    ),
                    col(SeizureLink.seizure_a_id).in_(ids),
                    col(SeizureLink.seizure_b_id).in_(ids),
                    col(SeizureLink.status).in_(
                        [LinkStatus.SUGGESTED.value, LinkStatus.ACCEPTED.value]
                    ),
                )
                .order_by(col(SeizureLink.seizure_a_id), col(SeizureLink.seizure_b_id))
            ).all()
        )
    return GraphInput(seizures=seizures, links=links, hidden=hidden)


def _substances(session: Session, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, set[str]]:
    found: dict[uuid.UUID, set[str]] = {i: set() for i in ids}
    if not ids:
        return found
    for sid, name in session.execute(
        select(col(Item.seizure_id), col(Item.substance)).where(
            col(Item.seizure_id).in_(list(ids)), col(Item.substance).is_not(None)
        )
    ):
        found[sid].add(str(name))
    for sid, name in session.execute(
        select(col(FieldTest.seizure_id), col(FieldTest.main_substance)).where(
            col(FieldTest.seizure_id).in_(list(ids)), col(FieldTest.main_substance).is_not(None)
        )
    ):
        found[sid].add(str(name))
    return found


def _text(ref: Any, name: str) -> str:
    """A field of a stored person or company (JSON object) as text."""
    value = ref.get(name) if isinstance(ref, dict) else getattr(ref, name, None)
    return str(value or "")


def case_graph(*, session: Session, actor: Principal, case_id: uuid.UUID) -> CaseGraph:
    """The case graph as ``actor`` may see it (only seizures they may read)."""
    data = graph_input(session=session, actor=actor, case_id=case_id)
    entities = list_entities(session=session, actor=actor, case_id=case_id)
    substances = _substances(session, [s.id for s in data.seizures])
    facts = [
        SeizureFacts(
            id=str(s.id),
            label=f"{s.seized_at.date().isoformat()} {s.place or s.country}",
            seized_at=s.seized_at,
            attributes=tuple(
                attributes_of(
                    air_waybill=s.air_waybill,
                    container_number=s.container_number,
                    tracking_number=s.tracking_number,
                    persons=[_text(p, "reference") for p in s.persons or []],
                    companies=[_text(c, "name") for c in s.companies or []],
                    origin=s.origin_country or s.departure_country,
                    destination=s.destination_country,
                    substances=sorted(substances.get(s.id, set())),
                )
            ),
        )
        for s in data.seizures
    ]
    links = [
        LinkFacts(
            a=str(link.seizure_a_id),
            b=str(link.seizure_b_id),
            status=str(link.status),
            strength=float(link.strength),
            reasons=tuple(str(r.get("detail", "")) for r in link.reasons or []),
        )
        for link in data.links
    ]
    persons = [e.details for e in entities if e.kind == EntityKind.PERSON]
    companies = [e.details for e in entities if e.kind == EntityKind.COMPANY]
    named = attributes_of(
        persons=[str(p.get("reference", "")) for p in persons],
        companies=[str(c.get("name", "")) for c in companies],
    )
    return build_case_graph(facts, links, named=named, hidden_seizures=data.hidden)
