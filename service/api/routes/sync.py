"""Batch sync: a station's backlog in one request, one transaction, one answer per record.

``POST /sync/batch`` takes up to :data:`MAX_OPERATIONS` creates (seizures, items, field
tests, custody events), each with the idempotency key a single POST would carry (the
station's record UUID). They are applied in order, in one transaction; each gets the
status and body a single POST would have got. An operation the service refuses (bad
content, a parent it cannot see, a permission) is left out and the others are kept:

* bodies are validated first, before anything is written;
* a check that refuses an operation before it wrote anything (not found, permission,
  invalid input: nearly every refusal) leaves the transaction intact, so the batch goes on;
* an operation that fails after writing, or in the database (a duplicate id, a foreign
  key), spoils the transaction: it is rolled back and the batch redone without that
  operation; after :data:`MAX_REDOS` redos the rest goes one savepoint per operation.

No savepoint per operation by default: each costs two more statements, and PostgreSQL
keeps only 64 subtransactions per transaction in shared memory (past that, every
session's snapshots must look subtransactions up on disk).

Each answer is stored under its key exactly as a single POST stores it (same request
fingerprint, same body), so a record sent singly and then in a batch, or twice in
batches, is created once and the retry gets the first answer ("duplicate"). Records
whose parent is created earlier in the same batch may name it by its id.
"""

from __future__ import annotations

import enum
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ValidationError
from sqlalchemy import event
from sqlalchemy.exc import DataError, IntegrityError
from sqlmodel import Field, Session, SQLModel, col, select

from service import crud
from service.api.common import FastJSONRoute, commit, etag
from service.api.deps import API_PREFIX, CurrentPrincipal, SessionDep
from service.api.errors import status_for
from service.errors import ConflictError, InvalidInputError, ServiceError
from service.models import (
    Approval,
    ApprovalPublic,
    CustodyEventCreate,
    CustodyEventPublic,
    FieldTestCreate,
    IdempotencyRecord,
    Item,
    ItemCreate,
    ItemPublic,
    Seizure,
    SeizureCreate,
    SeizurePublic,
)
from service.principal import Principal

log = logging.getLogger("service")

#: Operations per batch at most (a larger batch is refused whole with 422); the request
#: body limit (413) applies too, so a station sends field tests in smaller batches.
MAX_OPERATIONS = 200

router = APIRouter(tags=["sync"], route_class=FastJSONRoute)


class SyncKind(enum.StrEnum):
    """What an operation creates."""

    SEIZURE = "seizure"
    ITEM = "item"
    FIELD_TEST = "field_test"
    CUSTODY_EVENT = "custody_event"


class SyncOutcome(enum.StrEnum):
    """What became of an operation."""

    CREATED = "created"
    DUPLICATE = "duplicate"  # the key was used before: the first answer, again
    REFUSED = "refused"


class SyncOperation(SQLModel):
    kind: SyncKind
    key: uuid.UUID = Field(description="Idempotency key: the station's UUID of the record")
    parent_id: uuid.UUID | None = Field(
        default=None, description="The seizure (items) or item (field tests, custody) it belongs to"
    )
    body: dict[str, Any] = Field(
        description="The body a single POST would carry (SeizureCreate, ItemCreate, …)"
    )


class SyncBatch(SQLModel):
    operations: list[SyncOperation] = Field(min_length=1, max_length=MAX_OPERATIONS)


class SyncResult(SQLModel):
    key: uuid.UUID
    outcome: SyncOutcome
    status_code: int = Field(description="What a single POST of this record would answer")
    body: Any = Field(description="That answer's body: the record, or the error's detail")


class SyncBatchResult(SQLModel):
    results: list[SyncResult]


# kind → (create model, the single POST's path given the parent's id)
_PATHS: dict[SyncKind, tuple[type[SQLModel], Callable[[uuid.UUID | None], str]]] = {
    SyncKind.SEIZURE: (SeizureCreate, lambda _p: f"{API_PREFIX}/seizures"),
    SyncKind.ITEM: (ItemCreate, lambda p: f"{API_PREFIX}/seizures/{p}/items"),
    SyncKind.FIELD_TEST: (FieldTestCreate, lambda p: f"{API_PREFIX}/items/{p}/field-tests"),
    SyncKind.CUSTODY_EVENT: (
        CustodyEventCreate,
        lambda p: f"{API_PREFIX}/items/{p}/custody-events",
    ),
}


def _error_body(exc: ServiceError) -> dict[str, Any]:
    """The JSON body a single POST answers for this error (see service.api.errors)."""
    if isinstance(exc, InvalidInputError):
        return {"detail": [{"loc": ["body", exc.field], "msg": exc.reason, "type": "value_error"}]}
    return {"detail": str(exc)}


def _validation_body(exc: ValidationError) -> dict[str, Any]:
    # Field-level messages only (no input echo: it could be a whole spectrum).
    return {
        "detail": [
            {"loc": ["body", *e.get("loc", ())], "msg": str(e["msg"]), "type": str(e["type"])}
            for e in exc.errors(include_url=False, include_input=False)
        ]
    }


def _create(
    session: Session, principal: Principal, item: _Prepared
) -> tuple[int, BaseModel, dict[str, str]]:
    """Apply one create as its single POST route does; (status, answer, headers)."""
    kind, parent, model, raw = item.op.kind, item.op.parent_id, item.model, item.op.body
    assert model is not None  # only valid operations are applied
    if kind == SyncKind.SEIZURE:
        seizure = crud.create_seizure(session=session, actor=principal, seizure_in=model)  # type: ignore[arg-type]
        return 201, SeizurePublic.model_validate(seizure), {"ETag": etag(seizure.version)}
    if parent is None:
        raise InvalidInputError("parent_id", f"a {kind.value} needs its parent's id")
    if kind == SyncKind.ITEM:
        row = crud.create_item(session=session, actor=principal, seizure_id=parent, item_in=model)  # type: ignore[arg-type]
        return 201, ItemPublic.model_validate(row), {"ETag": etag(row.version)}
    if kind == SyncKind.FIELD_TEST:
        ident = raw.get("identification")
        test = crud.create_field_test(
            session=session,
            actor=principal,
            item_id=parent,
            test_in=model,  # type: ignore[arg-type]
            identification_raw=ident if isinstance(ident, dict) else None,
        )
        return (
            201,
            crud.field_test_public(test, with_spectrum=False),
            {"ETag": etag(test.version)},
        )
    result = crud.create_custody_event(
        session=session,
        actor=principal,
        item_id=parent,
        event_in=model,  # type: ignore[arg-type]
    )
    if isinstance(result, Approval):
        return 202, ApprovalPublic.model_validate(result), {}
    return 201, CustodyEventPublic.model_validate(result), {"ETag": etag(result.version)}


def _stored(
    session: Session, scope: uuid.UUID, keys: list[uuid.UUID]
) -> dict[uuid.UUID, IdempotencyRecord]:
    rows = session.exec(
        select(IdempotencyRecord).where(
            IdempotencyRecord.scope == scope, col(IdempotencyRecord.key).in_(keys)
        )
    ).all()
    return {row.key: row for row in rows}


def _replayed(key: uuid.UUID, record: IdempotencyRecord, fingerprint: str) -> SyncResult:
    if record.request_sha256 != fingerprint:
        detail = [
            {
                "loc": ["body", "operations", "key"],
                "msg": "this key was already used for a different request",
                "type": "idempotency_key_reused",
            }
        ]
        return SyncResult(
            key=key, outcome=SyncOutcome.REFUSED, status_code=422, body={"detail": detail}
        )
    stored = json.loads(record.response)
    return SyncResult(
        key=key, outcome=SyncOutcome.DUPLICATE, status_code=record.status_code, body=stored["body"]
    )


@dataclass
class _Prepared:
    """One operation, validated: its model, single-POST path and fingerprint, or its answer."""

    op: SyncOperation
    path: str
    model: SQLModel | None = None
    fingerprint: str = ""
    answer: SyncResult | None = None  # decided before any write (invalid body)


class _SpoiledError(Exception):
    """An operation failed in a way that leaves the transaction unusable: redo the batch."""

    def __init__(self, index: int, exc: Exception) -> None:
        self.index = index
        self.exc = exc


class _WriteCounter:
    """Statements other than SELECT sent on a connection (did a failed operation write?)."""

    def __init__(self) -> None:
        self.writes = 0

    def __call__(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.lstrip()[:6].upper().startswith("SELECT"):
            self.writes += 1


@router.post("/sync/batch", response_model=SyncBatchResult)
def sync_batch(
    session: SessionDep,
    principal: CurrentPrincipal,
    body: SyncBatch,
) -> Any:
    """Create a station's records in one transaction; one result per operation, in order.

    A refused operation is rolled back alone; the others are committed. A key already used
    answers the first result again (``duplicate``). 401 for a bad device key, 413 for a
    body over the size limit and 422 for a malformed batch or more than
    :data:`MAX_OPERATIONS` operations refuse the whole batch.
    """
    prepared = [_prepare(op) for op in body.operations]
    decided: dict[int, SyncResult] = {}
    for attempt in range(MAX_REDOS + 1):
        try:
            results = _run(session, principal, prepared, decided, savepoints=attempt == MAX_REDOS)
        except _SpoiledError as spoiled:
            session.rollback()
            decided[spoiled.index] = _after_failure(
                session, principal, prepared[spoiled.index], spoiled.exc
            )
            continue
        commit(session)
        return SyncBatchResult(results=results)
    raise AssertionError("unreachable: the last attempt uses savepoints and never redoes")


#: Redos of a batch (each after an operation that spoiled the transaction) before the rest
#: of it is applied with a savepoint per operation.
MAX_REDOS = 3


def _prepare(op: SyncOperation) -> _Prepared:
    model_type, path_of = _PATHS[op.kind]
    path = path_of(op.parent_id)
    try:
        model = model_type.model_validate(op.body)
    except ValidationError as exc:
        refused = SyncResult(
            key=op.key, outcome=SyncOutcome.REFUSED, status_code=422, body=_validation_body(exc)
        )
        return _Prepared(op=op, path=path, answer=refused)
    # The same fingerprint as the single POST: either way of sending is one record.
    return _Prepared(op=op, path=path, model=model, fingerprint=crud_fingerprint(path, model))


def _run(
    session: Session,
    principal: Principal,
    prepared: list[_Prepared],
    decided: dict[int, SyncResult],
    *,
    savepoints: bool,
) -> list[SyncResult]:
    """Apply the operations in order in the session's transaction.

    Without savepoints (the usual case, see the module docstring), an operation refused by
    a check that wrote nothing is simply answered; one that failed after writing, or in
    the database, raises :class:`_SpoiledError` so that the batch is redone without it.
    """
    stored = _stored(session, principal.scope, [p.op.key for p in prepared])
    # The parents, loaded in one statement and held here: the session's identity map keeps
    # only weak references, so each operation would otherwise load its parent again.
    parents = _load_parents(session, prepared)
    counter = _WriteCounter()
    conn = session.connection()
    event.listen(conn, "before_cursor_execute", counter)
    try:
        results: list[SyncResult] = []
        for index, item in enumerate(prepared):
            done = decided.get(index) or item.answer
            if done is None and item.op.key in stored:
                done = _replayed(item.op.key, stored[item.op.key], item.fingerprint)
            if done is None:
                if savepoints:
                    done = _apply_in_savepoint(session, principal, item)
                else:
                    done = _apply(session, principal, item, index, counter)
                if done.outcome == SyncOutcome.CREATED:
                    stored[item.op.key] = _as_stored(principal, item, done)
            results.append(done)
        return results
    finally:
        event.remove(conn, "before_cursor_execute", counter)
        del parents


def _load_parents(session: Session, prepared: list[_Prepared]) -> list[SQLModel]:
    seizures = {p.op.parent_id for p in prepared if p.op.kind == SyncKind.ITEM}
    items = {p.op.parent_id for p in prepared if p.op.kind not in (SyncKind.SEIZURE, SyncKind.ITEM)}
    loaded: list[SQLModel] = []
    for model, ids in ((Seizure, seizures), (Item, items)):
        wanted = [i for i in ids if i is not None]
        if wanted:
            loaded += session.scalars(select(model).where(col(model.id).in_(wanted))).all()
    return loaded


def _apply(
    session: Session, principal: Principal, item: _Prepared, index: int, counter: _WriteCounter
) -> SyncResult:
    writes = counter.writes
    try:
        code, answer, headers = _create(session, principal, item)
        text = answer.model_dump_json()
        first = _store(session, principal, item, code, text, headers)
    except ServiceError as exc:
        if counter.writes == writes and not session.new and not session.dirty:
            # Refused by a check before anything was written: the transaction is intact.
            return SyncResult(
                key=item.op.key,
                outcome=SyncOutcome.REFUSED,
                status_code=status_for(exc),
                body=_error_body(exc),
            )
        raise _SpoiledError(index, exc) from exc
    except (IntegrityError, DataError) as exc:
        raise _SpoiledError(index, exc) from exc
    if not first:  # a concurrent request stored this key first: ours must be undone
        raise _SpoiledError(index, ConflictError("stored concurrently"))
    return _created(item, code, text)


def _apply_in_savepoint(session: Session, principal: Principal, item: _Prepared) -> SyncResult:
    savepoint = session.begin_nested()
    try:
        code, answer, headers = _create(session, principal, item)
        text = answer.model_dump_json()
        first = _store(session, principal, item, code, text, headers)
    except (ServiceError, IntegrityError, DataError) as exc:
        savepoint.rollback()
        return _after_failure(session, principal, item, exc)
    if not first:
        savepoint.rollback()
        return _after_failure(session, principal, item, ConflictError("stored concurrently"))
    savepoint.commit()
    return _created(item, code, text)


def _after_failure(
    session: Session, principal: Principal, item: _Prepared, exc: Exception
) -> SyncResult:
    """The answer for an operation that failed (its writes already rolled back)."""
    # A concurrent request may have stored this key meanwhile (its record's id then
    # collides with ours): answer with its result, as a single POST would.
    winner = _stored(session, principal.scope, [item.op.key]).get(item.op.key)
    if winner is not None:
        return _replayed(item.op.key, winner, item.fingerprint)
    if isinstance(exc, ConflictError) and str(exc) == "stored concurrently":
        code, error = (
            409,
            {"detail": "a concurrent request with this idempotency key failed; retry"},
        )
    elif isinstance(exc, ServiceError):
        code, error = status_for(exc), _error_body(exc)
    elif isinstance(exc, IntegrityError):
        code, error = 409, {"detail": "conflicts with stored records"}
    else:
        code, error = 422, {"detail": "a value cannot be stored (invalid characters or range)"}
    return SyncResult(key=item.op.key, outcome=SyncOutcome.REFUSED, status_code=code, body=error)


def _store(
    session: Session,
    principal: Principal,
    item: _Prepared,
    code: int,
    text: str,
    headers: dict[str, str],
) -> bool:
    return crud.store_idempotent_response(
        session=session,
        scope=principal.scope,
        key=item.op.key,
        method="POST",
        path=item.path,
        request_sha256=item.fingerprint,
        status_code=code,
        response=f'{{"body":{text},"headers":{json.dumps(headers)}}}',
    )


def _created(item: _Prepared, code: int, text: str) -> SyncResult:
    return SyncResult(
        key=item.op.key, outcome=SyncOutcome.CREATED, status_code=code, body=json.loads(text)
    )


def _as_stored(principal: Principal, item: _Prepared, done: SyncResult) -> IdempotencyRecord:
    """A second operation with this key in the same batch is a duplicate of this one."""
    return IdempotencyRecord(
        scope=principal.scope,
        key=item.op.key,
        method="POST",
        path=item.path,
        request_sha256=item.fingerprint,
        status_code=done.status_code,
        response=json.dumps({"body": done.body, "headers": {}}),
    )


def crud_fingerprint(path: str, model: SQLModel) -> str:
    """What :func:`service.api.common.idempotent_post` stores as the request's fingerprint."""
    from service.audit import sha256_hex

    return sha256_hex(path + "\n" + model.model_dump_json())
