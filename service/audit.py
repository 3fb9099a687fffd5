"""Tamper evidence: record versions, the hash-chained audit log, signed checkpoints, verification.

Every write calls :func:`record_change` in the same transaction as the write itself: it
stores the row's new version as canonical JSON and appends an :class:`AuditEvent` whose
hash covers its content and the previous event's hash. :func:`verify` re-derives all of it
from the database, so edits, deletions, insertions and reorderings made behind the
service's back are found.
"""

from __future__ import annotations

import enum
import hashlib
import json
import threading
import uuid
import weakref
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import JSON, Connection, Engine, Float, Integer, and_, delete, exists, func, select
from sqlmodel import Session, SQLModel, col

import service.cases.models  # noqa: F401  (adds the case tables to VERSIONED)
from service.core.keyfile import KeyFileError, load_or_create
from service.core.types import utcnow
from service.errors import AuditChainError
from service.models import (
    VERSIONED,
    AuditCheckpoint,
    AuditEvent,
    AuditPending,
    AuditVerifyProblem,
    AuditVerifyReport,
    Blob,
    RecordVersion,
)
from service.principal import Principal

GENESIS = "0" * 64
#: Columns kept out of readable versions; a version holds their SHA-256 instead.
SECRET_COLUMNS = frozenset({"hashed_password", "key_hash"})
#: Arbitrary constant naming the PostgreSQL advisory lock that serialises chain appends.
_CHAIN_LOCK = 0x66_73_61_75_64_69_74  # "fsaudit"
_BATCH = 2000
_PROCESS_LOCKS: weakref.WeakKeyDictionary[Engine, threading.Lock] = weakref.WeakKeyDictionary()
_PROCESS_LOCKS_GUARD = threading.Lock()
_MAX_PROBLEMS = 200


# --------------------------------------------------------------------------- canonical form


def canonical_json(value: Any) -> str:
    """Deterministic JSON: sorted keys, no spaces, no NaN."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def sha256_hex(data: bytes | str) -> str:
    """SHA-256 hex digest of bytes, or of a string's UTF-8."""
    return hashlib.sha256(data.encode("utf-8") if isinstance(data, str) else data).hexdigest()


def _iso(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


#: ``Column.info`` key: values of a column that its row's digest leaves out.
DIGEST_OMIT_IF = "digest_omit_if"


def snapshot(row: SQLModel) -> dict[str, Any]:
    """The row's columns as plain JSON values, identical whichever database it came from.

    Binary columns appear as their SHA-256, so a version is small yet covers the bytes.
    """
    table = row.__table__  # type: ignore[attr-defined]
    return snapshot_values(table, {c.key: getattr(row, c.key) for c in table.columns})


def snapshot_values(table: Any, values: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`snapshot` of a row given as a column→value mapping (bulk inserts)."""
    out: dict[str, Any] = {}
    for column in table.columns:
        value = values.get(column.key)
        # A column added by a later migration is left out while it holds its default, so
        # an upgrade does not change the digest of records written before it.
        if value in column.info.get(DIGEST_OMIT_IF, ()):
            continue
        if value is None:
            pass
        elif column.key in SECRET_COLUMNS:
            value = {"sha256": sha256_hex(str(value))}  # history is readable: never the secret
        elif isinstance(value, datetime):
            value = _iso(value)
        elif isinstance(value, uuid.UUID):
            value = str(value)
        elif isinstance(value, enum.Enum):
            value = value.value
        elif isinstance(value, bytes | bytearray | memoryview):
            value = {"sha256": sha256_hex(bytes(value))}
        elif isinstance(column.type, Float):
            value = float(value)
        elif isinstance(column.type, Integer) and not isinstance(value, bool):
            value = int(value)
        out[column.key] = value
    return out


def digest_of(row: SQLModel) -> str:
    """SHA-256 of the row's canonical snapshot."""
    return sha256_hex(canonical_json(snapshot(row)))


_EVENT_FIELDS = (
    "seq", "at", "agency_id", "actor_user_id", "actor_device_id", "entity_type", "entity_id",
    "action", "version", "before_digest", "after_digest", "prev_hash",
)  # fmt: skip
#: Event fields that linking adds (the rest come from the pending event).
_CHAINED_FIELDS = frozenset({"seq", "prev_hash"})


def event_hash_values(values: Mapping[str, Any]) -> str:
    """The hash of an audit event given as a mapping of its fields."""
    payload: dict[str, Any] = {}
    for name in _EVENT_FIELDS:
        value = values.get(name)
        if isinstance(value, datetime):
            value = _iso(value)
        elif isinstance(value, uuid.UUID):
            value = str(value)
        payload[name] = value
    payload["seq"] = int(payload["seq"])
    return sha256_hex(canonical_json(payload))


def event_hash(event: AuditEvent) -> str:
    """The hash an event must carry: over all its fields, including ``prev_hash``."""
    return event_hash_values({name: getattr(event, name) for name in _EVENT_FIELDS})


# --------------------------------------------------------------------------- signing


@dataclass(frozen=True)
class CheckpointSigner:
    """The Ed25519 key that signs checkpoints; keep the file outside the database."""

    private_key: Ed25519PrivateKey

    @property
    def public_key_hex(self) -> str:
        raw = self.private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return raw.hex()

    @classmethod
    def load_or_create(cls, path: Path) -> CheckpointSigner:
        """Read the PEM key at ``path``, making a new one (mode 0600) on first use."""
        try:
            return cls(load_or_create(path, Ed25519PrivateKey.generate))
        except KeyFileError as exc:
            raise AuditChainError(f"checkpoint key {exc}") from None


def _checkpoint_message(seq: int, head_hash: str, at: datetime) -> bytes:
    return f"fieldscan-audit-checkpoint:v1:{seq}:{head_hash}:{_iso(at)}".encode()


@dataclass(frozen=True)
class AuditSettings:
    """What appends need besides the session: kept in ``session.info['audit']``."""

    signer: CheckpointSigner | None = None
    checkpoint_every: int = 1000


def bind(session: Session, settings: AuditSettings) -> Session:
    """Attach audit settings to a session (the app does it for each request)."""
    session.info["audit"] = settings
    return session


# --------------------------------------------------------------------------- appending


def lock_chain(session: Session, *, wait: bool = True) -> bool:
    """Take the chain lock for this transaction; False if ``wait`` is off and it is held.

    SQLite write transactions are serialised anyway (BEGIN IMMEDIATE); PostgreSQL uses a
    transaction-level advisory lock, so only one chainer appends at a time.
    """
    if session.get_bind().dialect.name != "postgresql":
        return True
    if wait:
        session.execute(select(func.pg_advisory_xact_lock(_CHAIN_LOCK)))
        return True
    return bool(session.execute(select(func.pg_try_advisory_xact_lock(_CHAIN_LOCK))).scalar())


def head(session: Session) -> tuple[int, str]:
    """``(seq, hash)`` of the newest event, ``(0, GENESIS)`` for an empty chain."""
    row = session.execute(
        select(col(AuditEvent.seq), col(AuditEvent.hash))
        .order_by(col(AuditEvent.seq).desc())
        .limit(1)
    ).first()
    return (int(row[0]), str(row[1])) if row else (0, GENESIS)


def append_event(
    *,
    session: Session,
    actor: Principal,
    entity_type: str,
    entity_id: uuid.UUID,
    action: str,
    version: int | None,
    before_digest: str | None,
    after_digest: str | None,
    agency_id: uuid.UUID | None = None,
) -> None:
    """Write an audit event in the caller's transaction; :func:`chain_pending` links it.

    No lock is taken here: holding the chain lock through every commit would serialise all
    writers on the disk's flush time.
    """
    session.connection().execute(
        _PENDING_INSERT,
        _pending_values(
            actor=actor,
            entity_type=entity_type,
            entity_id=entity_id,
            action=action,
            version=version,
            before_digest=before_digest,
            after_digest=after_digest,
            agency_id=agency_id if agency_id is not None else actor.agency_id,
            at=utcnow(),
        ),
    )


# Core statements, built once: the ORM unit of work costs more than the write itself.
_VERSION_INSERT = RecordVersion.__table__.insert()  # type: ignore[attr-defined]
_PENDING_INSERT = AuditPending.__table__.insert()  # type: ignore[attr-defined]
_EVENT_INSERT = AuditEvent.__table__.insert()  # type: ignore[attr-defined]
_PENDING_TABLE = AuditPending.__table__  # type: ignore[attr-defined]
#: PostgreSQL: the version and its pending event in one statement (one round trip).
_PG_VERSION_AND_PENDING = (
    "WITH v AS (INSERT INTO record_version (entity_type, entity_id, agency_id, version, data,"
    " digest, reason, actor_user_id, actor_device_id, at) VALUES (%(entity_type)s,"
    " %(entity_id)s, %(agency_id)s, %(version)s, %(data)s, %(digest)s, %(reason)s,"
    " %(actor_user_id)s, %(actor_device_id)s, %(at)s))"
    " INSERT INTO audit_pending (at, agency_id, actor_user_id, actor_device_id, entity_type,"
    " entity_id, action, version, before_digest, after_digest) VALUES (%(at)s, %(agency_id)s,"
    " %(actor_user_id)s, %(actor_device_id)s, %(entity_type)s, %(entity_id)s, %(action)s,"
    " %(version)s, %(before_digest)s, %(digest)s)"
)


def _pending_values(
    *,
    actor: Principal,
    entity_type: str,
    entity_id: uuid.UUID,
    action: str,
    version: int | None,
    before_digest: str | None,
    after_digest: str | None,
    agency_id: uuid.UUID | None,
    at: datetime,
) -> dict[str, Any]:
    return {
        "at": at,
        "agency_id": agency_id,
        "actor_user_id": actor.user_id,
        "actor_device_id": actor.device_id,
        "entity_type": entity_type,
        "entity_id": entity_id,
        "action": action,
        "version": version,
        "before_digest": before_digest,
        "after_digest": after_digest,
    }


def _process_lock(session: Session) -> threading.Lock:
    """The lock that keeps this process's chainers of one database apart."""
    bind = session.get_bind()
    engine = bind.engine if isinstance(bind, Connection) else bind
    with _PROCESS_LOCKS_GUARD:
        lock = _PROCESS_LOCKS.get(engine)
        if lock is None:
            lock = _PROCESS_LOCKS[engine] = threading.Lock()
        return lock


def chain_pending(session: Session, *, wait: bool = False, batch: int = 2000) -> int:
    """Link every committed pending event into the hash chain; returns how many.

    With ``wait`` off it returns 0 at once when another chainer holds the lock (that one
    links ours too, or the next call does). The caller commits.
    """
    if wait:
        return _chain_locked(session, wait=True, batch=batch)
    # A thread of this process already linking makes the database lock attempt pointless:
    # skip it without a round trip (the same outcome as failing to take that lock). Only
    # non-waiting callers use this lock, so it can never wait behind the database's.
    local = _process_lock(session)
    if not local.acquire(blocking=False):
        return 0
    try:
        return _chain_locked(session, wait=False, batch=batch)
    finally:
        local.release()


def _chain_locked(session: Session, *, wait: bool, batch: int) -> int:
    if not lock_chain(session, wait=wait):
        return 0
    settings: AuditSettings | None = session.info.get("audit")
    conn = session.connection()
    linked = 0
    seq: int | None = None
    prev = GENESIS
    table = _PENDING_TABLE
    while True:
        # Take and remove a batch in one statement; the chain lock keeps chainers apart.
        oldest = select(table.c.id).order_by(table.c.id).limit(batch)
        taken = conn.execute(
            delete(table).where(table.c.id.in_(oldest.scalar_subquery())).returning(*table.c)
        ).all()
        rows = sorted(taken, key=lambda r: r.id)
        if not rows:
            return linked
        if seq is None:  # read once, and only with work to do: it cannot move under the lock
            seq, prev = head(session)
        events: list[dict[str, Any]] = []
        for pending in rows:
            seq += 1
            event = {n: getattr(pending, n) for n in _EVENT_FIELDS if n not in _CHAINED_FIELDS}
            event["seq"] = seq
            event["prev_hash"] = prev
            event["hash"] = prev = event_hash_values(event)
            events.append(event)
            if settings and settings.signer and seq % settings.checkpoint_every == 0:
                conn.execute(_EVENT_INSERT, events)
                events = []
                _add_checkpoint(session, settings.signer, seq, prev)
        if events:
            conn.execute(_EVENT_INSERT, events)
        linked += len(rows)
        if len(rows) < batch:
            return linked


def pending_count(session: Session) -> int:
    """How many events wait to be linked."""
    return int(session.execute(select(func.count()).select_from(AuditPending)).scalar_one())


def record_change(
    *,
    session: Session,
    actor: Principal,
    row: SQLModel,
    action: str,
    reason: str | None = None,
    before_digest: str | None = None,
) -> str:
    """Store ``row``'s current state as a new version and chain an audit event for it.

    Returns the version's digest.
    """
    session.flush()  # defaults (ids, timestamps) filled in before the snapshot is taken
    table = row.__table__  # type: ignore[attr-defined]
    return record_values(
        session=session,
        actor=actor,
        table=table,
        values={c.key: getattr(row, c.key) for c in table.columns},
        action=action,
        reason=reason,
        before_digest=before_digest,
    )


def record_values(
    *,
    session: Session,
    actor: Principal,
    table: Any,
    values: Mapping[str, Any],
    action: str,
    reason: str | None = None,
    before_digest: str | None = None,
) -> str:
    """:func:`record_change` for a row given as its column values (written with Core).

    The version and its pending audit event go in with plain inserts, in one statement
    on PostgreSQL; returns the version's digest.
    """
    entity_type = str(table.name)
    text = canonical_json(snapshot_values(table, values))
    digest = sha256_hex(text)
    entity_id = values["id"]
    agency_id = values.get("agency_id") or (entity_id if entity_type == "agency" else None)
    at = utcnow()
    conn = session.connection()
    version = {
        "entity_type": entity_type,
        "entity_id": entity_id,
        "agency_id": agency_id,
        "version": values["version"],
        "data": text,
        "digest": digest,
        "reason": reason,
        "actor_user_id": actor.user_id,
        "actor_device_id": actor.device_id,
        "at": at,
    }
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(
            _PG_VERSION_AND_PENDING,
            {**version, "action": action, "before_digest": before_digest},
        )
        return digest
    conn.execute(_VERSION_INSERT, version)
    conn.execute(
        _PENDING_INSERT,
        _pending_values(
            actor=actor,
            entity_type=entity_type,
            entity_id=entity_id,
            action=action,
            version=values["version"],
            before_digest=before_digest,
            after_digest=digest,
            agency_id=agency_id,
            at=at,
        ),
    )
    return digest


_ROW_SQL: dict[tuple[str, str], tuple[str, list[tuple[str, Any]]]] = {}


def _row_statement(table: Any, dialect: Any) -> tuple[str, list[tuple[str, Any]]]:
    """PostgreSQL: the row, its version and its pending event as one statement, per table.

    Each column's bind processor is applied by the caller (JSON, UTC timestamps), since
    the statement goes to the driver as it is.
    """
    cache_key = (table.name, dialect.name)
    found = _ROW_SQL.get(cache_key)
    if found is None:
        columns = list(table.columns)
        names = ", ".join(dialect.identifier_preparer.quote(c.name) for c in columns)
        params = ", ".join(f"%(r_{c.key})s" for c in columns)
        sql = (
            f"WITH r AS (INSERT INTO {dialect.identifier_preparer.format_table(table)}"
            f" ({names}) VALUES ({params})), " + _PG_VERSION_AND_PENDING.removeprefix("WITH ")
        )
        processors = [(c.key, _driver_processor(c.type, dialect)) for c in columns]
        found = _ROW_SQL[cache_key] = (sql, processors)
    return found


def _driver_processor(column_type: Any, dialect: Any) -> Any:
    """What turns a Python value into what psycopg is given for a column of this type."""
    if isinstance(column_type, JSON):
        from psycopg.types.json import Json  # the driver's own JSON wrapper (json, not text)

        return lambda value: None if value is None else Json(value)
    process = column_type.bind_processor(dialect)

    def convert(value: Any) -> Any:
        if isinstance(value, enum.Enum):
            value = value.value  # the stored form; the driver would dump an enum by name
        return value if process is None or value is None else process(value)

    return convert


def insert_audited(
    *,
    session: Session,
    actor: Principal,
    table: Any,
    values: Mapping[str, Any],
    reason: str | None = None,
) -> str:
    """Insert a new row (version 1) with its version and pending audit event; its digest.

    The ORM-free path for frequent creates: one statement on PostgreSQL, three plain
    inserts elsewhere. ``values`` holds every column (defaults already applied).
    Database errors (a duplicate id, a missing parent) propagate as SQLAlchemy's.
    """
    conn = session.connection()
    if conn.dialect.name != "postgresql":
        conn.execute(table.insert(), dict(values))
        return record_values(
            session=session, actor=actor, table=table, values=values, action="create",
            reason=reason,
        )  # fmt: skip
    sql, processors = _row_statement(table, conn.dialect)
    entity_type = str(table.name)
    text = canonical_json(snapshot_values(table, values))
    digest = sha256_hex(text)
    entity_id = values["id"]
    params: dict[str, Any] = {f"r_{key}": process(values[key]) for key, process in processors}
    params.update(
        entity_type=entity_type,
        entity_id=entity_id,
        agency_id=values.get("agency_id") or (entity_id if entity_type == "agency" else None),
        version=values["version"],
        data=text,
        digest=digest,
        reason=reason,
        actor_user_id=actor.user_id,
        actor_device_id=actor.device_id,
        at=utcnow(),
        action="create",
        before_digest=None,
    )
    conn.exec_driver_sql(sql, params)
    return digest


# --------------------------------------------------------------------------- checkpoints


def _add_checkpoint(
    session: Session, signer: CheckpointSigner, seq: int, head_hash: str
) -> AuditCheckpoint:
    at = utcnow()
    signature = signer.private_key.sign(_checkpoint_message(seq, head_hash, at)).hex()
    checkpoint = AuditCheckpoint(
        seq=seq, head_hash=head_hash, at=at, public_key=signer.public_key_hex, signature=signature
    )
    session.add(checkpoint)
    session.flush()
    return checkpoint


def make_checkpoint(*, session: Session, signer: CheckpointSigner) -> AuditCheckpoint:
    """Link pending events, then sign the chain head (on demand)."""
    chain_pending(session, wait=True)
    seq, head_hash = head(session)
    if seq == 0:
        raise AuditChainError("the audit chain is empty: nothing to sign")
    return _add_checkpoint(session, signer, seq, head_hash)


# --------------------------------------------------------------------------- verification


class _Problems:
    def __init__(self) -> None:
        self.items: list[AuditVerifyProblem] = []
        self.count = 0

    def add(self, kind: str, detail: str, **where: Any) -> None:
        self.count += 1
        if len(self.items) < _MAX_PROBLEMS:
            self.items.append(AuditVerifyProblem(kind=kind, detail=detail, **where))


def _batches(session: Session, statement: Any) -> Iterator[Any]:
    yield from session.execute(statement.execution_options(yield_per=_BATCH))


def verify(
    session: Session, *, trusted_public_keys: Iterable[str] = (), require_trusted: bool = False
) -> AuditVerifyReport:
    """Re-derive the whole audit trail from the database and report every inconsistency.

    Checks, in order: the chain (sequence without gaps, each ``prev_hash`` equal to the
    previous ``hash``, each ``hash`` recomputed); checkpoints (signature, and that the signed
    head is the event now at that position); record versions (digest of the stored data,
    contiguous version numbers, one audit event per version with that digest, one version
    per event); current rows (equal to their newest version); attachment bytes (SHA-256).
    """
    problems = _Problems()
    trusted = set(trusted_public_keys)
    events, last_seq, last_hash = _verify_chain(session, problems)
    checkpoints = _verify_checkpoints(session, problems, trusted, require_trusted)
    versions = _verify_versions(session, problems)
    rows = _verify_rows(session, problems)
    _verify_blobs(session, problems)
    return AuditVerifyReport(
        ok=problems.count == 0,
        events_checked=events,
        events_pending=pending_count(session),
        versions_checked=versions,
        rows_checked=rows,
        checkpoints_checked=checkpoints,
        head_seq=last_seq,
        head_hash=last_hash if last_seq else None,
        problems=problems.items,
    )


def _verify_chain(session: Session, problems: _Problems) -> tuple[int, int, str]:
    expected_seq, prev = 1, GENESIS
    count = 0
    for (event,) in _batches(session, select(AuditEvent).order_by(col(AuditEvent.seq))):
        count += 1
        if event.seq != expected_seq:
            problems.add(
                "chain_gap",
                f"expected event {expected_seq}, found {event.seq}: events deleted or renumbered",
                seq=event.seq,
            )
        if event.prev_hash != prev:
            problems.add(
                "chain_link",
                f"event {event.seq} does not follow the previous event "
                "(deleted, inserted or reordered events)",
                seq=event.seq,
            )
        if event_hash(event) != event.hash:
            problems.add(
                "event_altered",
                f"event {event.seq}'s content does not match its hash (edited)",
                seq=event.seq,
                entity_type=event.entity_type,
                entity_id=event.entity_id,
            )
        expected_seq, prev = event.seq + 1, event.hash
    return count, expected_seq - 1, prev


def _verify_checkpoints(
    session: Session, problems: _Problems, trusted: set[str], require_trusted: bool
) -> int:
    count = 0
    statement = (
        select(AuditCheckpoint, col(AuditEvent.hash))
        .join(AuditEvent, col(AuditEvent.seq) == AuditCheckpoint.seq, isouter=True)
        .order_by(col(AuditCheckpoint.seq))
    )
    for checkpoint, hash_now in _batches(session, statement):
        count += 1
        try:
            key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(checkpoint.public_key))
            key.verify(
                bytes.fromhex(checkpoint.signature),
                _checkpoint_message(checkpoint.seq, checkpoint.head_hash, checkpoint.at),
            )
        except (InvalidSignature, ValueError):
            problems.add(
                "checkpoint_signature",
                f"checkpoint at {checkpoint.seq}: bad signature",
                seq=checkpoint.seq,
            )
            continue
        if (trusted or require_trusted) and checkpoint.public_key not in trusted:
            problems.add(
                "checkpoint_untrusted",
                f"checkpoint at {checkpoint.seq} is signed by an unknown key "
                f"{checkpoint.public_key[:16]}…",
                seq=checkpoint.seq,
            )
        if hash_now != checkpoint.head_hash:
            problems.add(
                "checkpoint_mismatch",
                f"the chain at {checkpoint.seq} differs from the signed checkpoint "
                "(history rewritten)",
                seq=checkpoint.seq,
            )
    return count


def _verify_versions(session: Session, problems: _Problems) -> int:
    count = 0
    for (version,) in _batches(session, select(RecordVersion).order_by(col(RecordVersion.id))):
        count += 1
        where = {"entity_type": version.entity_type, "entity_id": version.entity_id}
        label = f"{version.entity_type} {version.entity_id} v{version.version}"
        if sha256_hex(version.data) != version.digest:
            problems.add(
                "version_altered",
                f"{label}: data does not match its digest",
                **where,
            )
            continue
        try:
            data = json.loads(version.data)
        except ValueError:
            problems.add(
                "version_altered",
                f"{label}: unreadable",
                **where,
            )
            continue
        if data.get("version") != version.version or data.get("id") != str(version.entity_id):
            problems.add(
                "version_altered",
                f"{label}: data is another version's",
                **where,
            )
    # Contiguous versions 1..n per record.
    gaps = (
        select(col(RecordVersion.entity_type), col(RecordVersion.entity_id))
        .group_by(col(RecordVersion.entity_type), col(RecordVersion.entity_id))
        .having(
            (func.count() != func.max(RecordVersion.version))
            | (func.min(RecordVersion.version) != 1)
        )
    )
    for entity_type, entity_id in session.execute(gaps):
        problems.add(
            "version_missing",
            f"{entity_type} {entity_id}: versions are not 1..n (deleted)",
            entity_type=entity_type,
            entity_id=entity_id,
        )
    # Every version has its audit event with the same digest...
    unmatched = (
        select(
            col(RecordVersion.entity_type),
            col(RecordVersion.entity_id),
            col(RecordVersion.version),
            col(AuditEvent.after_digest),
            col(RecordVersion.digest),
        )
        .join(
            AuditEvent,
            and_(
                col(AuditEvent.entity_type) == RecordVersion.entity_type,
                col(AuditEvent.entity_id) == RecordVersion.entity_id,
                col(AuditEvent.version) == RecordVersion.version,
            ),
            isouter=True,
        )
        .where(
            (col(AuditEvent.seq).is_(None)) | (col(AuditEvent.after_digest) != RecordVersion.digest)
        )
        # A version whose event is written but not linked yet is not a finding.
        .where(
            ~exists().where(
                col(AuditPending.entity_type) == RecordVersion.entity_type,
                col(AuditPending.entity_id) == RecordVersion.entity_id,
                col(AuditPending.version) == RecordVersion.version,
                col(AuditPending.after_digest) == RecordVersion.digest,
            )
        )
    )
    for entity_type, entity_id, number, logged, _digest in session.execute(unmatched):
        what = (
            "has no audit event (inserted)"
            if logged is None
            else "differs from its audited digest (edited)"
        )
        problems.add(
            "version_unaudited",
            f"{entity_type} {entity_id} v{number} {what}",
            entity_type=entity_type,
            entity_id=entity_id,
        )
    # ...and every audited version still exists.
    orphans = (
        select(
            col(AuditEvent.seq),
            col(AuditEvent.entity_type),
            col(AuditEvent.entity_id),
            col(AuditEvent.version),
        )
        .join(
            RecordVersion,
            and_(
                col(AuditEvent.entity_type) == RecordVersion.entity_type,
                col(AuditEvent.entity_id) == RecordVersion.entity_id,
                col(AuditEvent.version) == RecordVersion.version,
            ),
            isouter=True,
        )
        .where(col(AuditEvent.after_digest).is_not(None), col(RecordVersion.id).is_(None))
    )
    for seq, entity_type, entity_id, number in session.execute(orphans):
        problems.add(
            "version_deleted",
            f"{entity_type} {entity_id} v{number} was audited but is gone",
            seq=seq,
            entity_type=entity_type,
            entity_id=entity_id,
        )
    return count


def _verify_rows(session: Session, problems: _Problems) -> int:
    count = 0
    for name, model in VERSIONED.items():
        table = model.__table__  # type: ignore[attr-defined]
        statement = (
            select(model, col(RecordVersion.digest))
            .join(
                RecordVersion,
                and_(
                    col(RecordVersion.entity_type) == name,
                    RecordVersion.entity_id == table.c.id,
                    RecordVersion.version == table.c.version,
                ),
                isouter=True,
            )
            .order_by(table.c.id)
        )
        for row, digest in _batches(session, statement):
            count += 1
            if digest is None:
                problems.add(
                    "row_unversioned",
                    f"{name} {row.id} v{row.version} has no recorded version "
                    "(inserted or version changed directly)",
                    entity_type=name,
                    entity_id=row.id,
                )
            elif digest_of(row) != digest:
                problems.add(
                    "row_altered",
                    f"{name} {row.id} differs from its recorded version {row.version} "
                    "(edited directly)",
                    entity_type=name,
                    entity_id=row.id,
                )
        newest = (
            select(col(RecordVersion.entity_id), func.max(col(RecordVersion.version)))
            .where(col(RecordVersion.entity_type) == name)
            .group_by(col(RecordVersion.entity_id))
            .subquery()
        )
        missing = (
            select(newest.c.entity_id, table.c.version)
            .join(table, table.c.id == newest.c.entity_id, isouter=True)
            .where((table.c.id.is_(None)) | (table.c.version != newest.c[1]))
        )
        for entity_id, current in session.execute(missing):
            what = (
                "was deleted directly"
                if current is None
                else f"is at version {current}, behind its history"
            )
            problems.add(
                "row_missing", f"{name} {entity_id} {what}", entity_type=name, entity_id=entity_id
            )
    return count


def _verify_blobs(session: Session, problems: _Problems) -> None:
    for (blob,) in _batches(session, select(Blob)):
        if sha256_hex(bytes(blob.data)) != blob.sha256 or len(blob.data) != blob.size:
            problems.add(
                "blob_altered", f"attachment bytes {blob.sha256[:16]}… do not match their hash"
            )
