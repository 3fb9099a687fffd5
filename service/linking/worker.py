"""Correlation after the commit: a durable queue and the worker that empties it.

Writes call :func:`enqueue_correlation` in their own transaction (one upserted row per
seizure, written just before the commit and committed with the change; a seizure written
many times in one transaction, as in a sync batch, is queued once), so correlation costs
the write path one statement. When such a transaction commits, the process's
:class:`LinkWorker` is woken at once.

Work is coalesced: the worker takes every queued seizure in one pass, so a burst of writes
to one seizure costs one correlation, and a seizure queued again while being correlated
is correlated once more, whatever the number of writes meanwhile. Each seizure is
correlated in a transaction of its own that locks its queue row, takes its link locks in
one statement (no lock-order cycle between correlations) and deletes the row with the
links written, so a crash in between leaves the row for the next worker (the worker also
polls, and the next start picks up what a crash left). A deadlock, a serialization
failure or a concurrently changed link is retried at once; other failures stay queued
with their error, up to :data:`MAX_ATTEMPTS` times.

Readers of links and alerts call :func:`drain` first: what they read then includes every
change committed before (read-your-writes), whether or not the worker has run yet. Tests
wait for suggestions the same deterministic way.
"""

from __future__ import annotations

import logging
import threading
import uuid
import weakref
from functools import cache
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, event, func, literal_column, select, update
from sqlalchemy import text as sql_text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, col

from service import audit
from service.audit import AuditSettings
from service.core.types import utcnow
from service.errors import PreconditionFailedError
from service.linking.engine import CorrelationResult, correlate_seizure
from service.linking.models import LinkQueue
from service.principal import Principal

log = logging.getLogger("service.linking")

#: Seizures :func:`correlate_queued` takes by default (in the caller's transaction).
BATCH = 20
#: Queued seizures one worker pass takes (each in its own transaction).
PASS = 500
#: After this many failed attempts a queued seizure waits for a manual correlation.
MAX_ATTEMPTS = 5
#: Immediate retries of a correlation that lost a race (deadlock, serialization failure,
#: a link changed concurrently); they do not count as failed attempts.
RETRIES = 5
#: PostgreSQL errors that mean "run it again": serialization failure, deadlock detected,
#: unique violation (a concurrent correlation inserted the same link or alert first).
_TRANSIENT = frozenset({"40001", "40P01", "23505"})
_FLAG = "fieldscan_link_enqueued"
_QUEUED = "fieldscan_link_queued"
_WORKERS: weakref.WeakKeyDictionary[Engine, LinkWorker] = weakref.WeakKeyDictionary()


def enqueue_correlation(session: Session, seizure_id: uuid.UUID) -> None:
    """Queue a seizure for correlation, in the caller's transaction (durable with it).

    The queue row is written when the transaction commits (just before), not now: a sync
    batch of a hundred records for one seizure would otherwise hold that row's lock for
    the whole batch, and concurrent batches for the seizure would run one after another.
    An already queued seizure has its row touched, not duplicated: its ``enqueued_at``
    moves forward (strictly), and a worker correlating the seizure right now removes the
    row only if it is still the version it read before correlating, so the change being
    committed is never missed by a correlation that read too early, and the writer never
    waits for the correlation. A seizure is queued once per transaction; one whose writes
    a rolled-back savepoint undid is queued anyway (one correlation that finds nothing).
    """
    pending: set[uuid.UUID] = session.info.setdefault(_QUEUED, set())
    pending.add(seizure_id)
    session.info[_FLAG] = True


def write_queued(session: Session) -> None:
    """Write the queue rows of what this transaction queued so far (in id order: two
    transactions never wait on each other's rows in opposite orders)."""
    pending: set[uuid.UUID] = session.info.pop(_QUEUED, set())
    if not pending:
        return
    statement = _enqueue_statement(session.get_bind().dialect.name)
    for seizure_id in sorted(pending):
        session.execute(statement, {"seizure_id": seizure_id, "enqueued_at": utcnow()})


@cache
def _enqueue_statement(dialect: str) -> Any:
    """The queueing upsert, built once per dialect (it runs on every write)."""
    table = LinkQueue.__table__  # type: ignore[attr-defined]
    values = {
        "seizure_id": bindparam("seizure_id", type_=table.c.seizure_id.type),
        "enqueued_at": bindparam("enqueued_at", type_=table.c.enqueued_at.type),
        "attempts": 0,
    }
    if dialect == "postgresql":
        stmt: Any = postgresql.insert(table).values(**values)
        # Strictly later than the version a busy worker read, even within a microsecond.
        touched: Any = func.greatest(
            stmt.excluded.enqueued_at,
            table.c.enqueued_at + literal_column("interval '1 microsecond'"),
        )
    else:  # SQLite: one writer at a time, never during a worker's transaction
        stmt = sqlite.insert(table).values(**values)
        touched = stmt.excluded.enqueued_at
    return stmt.on_conflict_do_update(
        index_elements=["seizure_id"],
        set_={"enqueued_at": touched, "attempts": 0, "last_error": None},
    )


def pending(session: Session) -> int:
    """How many seizures wait to be correlated (including ones that failed)."""
    write_queued(session)
    return int(session.execute(select(func.count()).select_from(LinkQueue)).scalar_one())


def correlate_queued(
    session: Session,
    *,
    limit: int = BATCH,
    skip_locked: bool = True,
    only: uuid.UUID | None = None,
    actor: Principal | None = None,
) -> list[CorrelationResult]:
    """Correlate up to ``limit`` queued seizures in the caller's transaction; the caller commits.

    Rows are taken ``FOR UPDATE`` (PostgreSQL): ``skip_locked`` lets parallel workers share
    the queue; without it, a reader waits for a worker busy with a row, then finds it gone.
    Each seizure is correlated in a savepoint: one that fails stays queued with its error.
    """
    write_queued(session)
    query = (
        select(col(LinkQueue.seizure_id))
        .where(col(LinkQueue.attempts) < MAX_ATTEMPTS)
        .order_by(col(LinkQueue.enqueued_at), col(LinkQueue.seizure_id))
        .limit(limit)
    )
    if only is not None:
        query = query.where(col(LinkQueue.seizure_id) == only)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=skip_locked)
    taken = list(session.execute(query).scalars())
    results = []
    table = LinkQueue.__table__  # type: ignore[attr-defined]
    for seizure_id in taken:
        if not _claim(session, seizure_id, wait=not skip_locked):
            continue  # a worker is correlating it right now
        try:
            with session.begin_nested():
                results.append(correlate_seizure(session, seizure_id, actor=actor))
                session.execute(table.delete().where(table.c.seizure_id == seizure_id))
        except Exception as exc:  # kept queued with the error, for a retry
            log.warning("correlating seizure %s failed: %s", seizure_id, exc)
            session.execute(
                update(table)
                .where(table.c.seizure_id == seizure_id)
                .values(attempts=table.c.attempts + 1, last_error=str(exc)[:2000])
            )
    return results


def transient(exc: BaseException) -> bool:
    """Whether a failed correlation lost a race and should simply run again."""
    if isinstance(exc, PreconditionFailedError):
        return True
    if isinstance(exc, DBAPIError):
        return getattr(exc.orig, "sqlstate", None) in _TRANSIENT
    return False


def correlate_one(
    session: Session,
    seizure_id: uuid.UUID,
    *,
    skip_locked: bool = True,
    actor: Principal | None = None,
) -> CorrelationResult | None:
    """Correlate one queued seizure in a transaction of its own, committed here.

    The seizure is claimed first (PostgreSQL: a transaction-level advisory lock of its
    own; ``skip_locked``: a seizure another worker is busy with is left to it, otherwise
    this waits for it). The queue row is not locked, so writers that queue the seizure
    meanwhile never wait: the row is removed only if no write touched it since it was
    read (else the seizure is correlated again). Returns None when the seizure is not
    (or no longer) queued, or failed. A transient failure (:func:`transient`) is retried
    at once, up to :data:`RETRIES` times; any other failure is recorded on the queue row
    for a later attempt.
    """
    table = LinkQueue.__table__  # type: ignore[attr-defined]
    version = select(col(LinkQueue.enqueued_at)).where(
        col(LinkQueue.seizure_id) == seizure_id, col(LinkQueue.attempts) < MAX_ATTEMPTS
    )
    for attempt in range(RETRIES + 1):
        try:
            if not _claim(session, seizure_id, wait=not skip_locked):
                session.rollback()
                return None
            read = session.execute(version).scalar_one_or_none()
            if read is None:
                session.rollback()
                return None
            result = correlate_seizure(session, seizure_id, actor=actor)
            _dequeue(session, seizure_id, read)
            session.commit()
            return result
        except Exception as exc:
            session.rollback()
            if transient(exc) and attempt < RETRIES:
                log.info("correlating seizure %s lost a race, again: %s", seizure_id, exc)
                continue
            log.warning("correlating seizure %s failed: %s", seizure_id, exc)
            session.execute(
                update(table)
                .where(table.c.seizure_id == seizure_id)
                .values(attempts=table.c.attempts + 1, last_error=str(exc)[:2000])
            )
            session.commit()
            return None
    return None  # pragma: no cover - the loop always returns


#: First half of the two-integer advisory lock that claims a seizure for correlation (its
#: own space, apart from the engine's key locks and the audit chain's lock).
_CLAIM_SPACE = 0x6C6E6B71  # "lnkq"


def _claim(session: Session, seizure_id: uuid.UUID, *, wait: bool) -> bool:
    """Claim a seizure for correlation until the transaction ends (PostgreSQL; SQLite runs
    one write transaction at a time). False when ``wait`` is false and another has it."""
    if session.get_bind().dialect.name != "postgresql":
        return True
    params = {
        "space": _CLAIM_SPACE,
        "key": int.from_bytes(seizure_id.bytes[:4], "big", signed=True),
    }
    if wait:
        session.execute(sql_text("SELECT pg_advisory_xact_lock(:space, :key)"), params)
        return True
    got = session.execute(sql_text("SELECT pg_try_advisory_xact_lock(:space, :key)"), params)
    return bool(got.scalar_one())


def _dequeue(session: Session, seizure_id: uuid.UUID, read: Any) -> None:
    """Remove the queue row if it is still the version read before correlating.

    A row locked right now belongs to a writer queueing the seizure again: it is left (the
    writer's commit moves it forward), rather than waiting for that writer.
    """
    table = LinkQueue.__table__  # type: ignore[attr-defined]
    row = select(table.c.enqueued_at).where(table.c.seizure_id == seizure_id)
    if session.get_bind().dialect.name == "postgresql":
        row = row.with_for_update(skip_locked=True)
    now = session.execute(row).scalar_one_or_none()
    if now is not None and now == read:
        session.execute(table.delete().where(table.c.seizure_id == seizure_id))


def _queued_ids(session: Session, limit: int) -> list[uuid.UUID]:
    """Queued seizures, oldest first (no lock: each is locked when correlated)."""
    query = (
        select(col(LinkQueue.seizure_id))
        .where(col(LinkQueue.attempts) < MAX_ATTEMPTS)
        .order_by(col(LinkQueue.enqueued_at), col(LinkQueue.seizure_id))
        .limit(limit)
    )
    return list(session.execute(query).scalars())


def drain(session: Session, *, limit: int = 100) -> int:
    """Correlate what is queued now (waiting for a busy worker), committing each.

    Readers call it before reading links or alerts; it costs one indexed probe when the
    queue is empty. At most ``limit`` seizures (oldest first): under a backlog a reader
    shares the worker's work but is not held up indefinitely. Returns how many it did.
    """
    write_queued(session)  # the caller's own writes count, committed or not
    ids = _queued_ids(session, limit)
    if not ids:
        return 0
    session.commit()  # what the caller wrote is its own business: end the probe's transaction
    done = sum(correlate_one(session, sid, skip_locked=False) is not None for sid in ids)
    _chain(session)
    return done


def _chain(session: Session) -> None:
    """Link the audit events just committed into the chain (skipped if another chainer is busy)."""
    if audit.chain_pending(session, wait=False):
        session.commit()
    else:
        session.rollback()


class LinkWorker:
    """Background thread that correlates queued seizures right after their commit."""

    def __init__(
        self,
        engine: Engine,
        audit_settings: AuditSettings | None = None,
        *,
        poll_s: float = 1.0,
    ) -> None:
        self.engine = engine
        self.audit_settings = audit_settings
        self.poll_s = poll_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        #: How many times it was woken (start, commits that queued work, stop).
        self.wakes = 0
        self._thread = threading.Thread(target=self._run, name="link-worker", daemon=True)

    def start(self) -> None:
        _WORKERS[self.engine] = self
        self._thread.start()
        self.wake()  # what a crash or another process left behind

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=30)
        if _WORKERS.get(self.engine) is self:
            del _WORKERS[self.engine]

    def wake(self) -> None:
        self.wakes += 1
        self._wake.set()

    def run_once(self) -> int:
        """Correlate queued seizures until none are left; returns how many.

        Each pass takes every queued seizure (up to :data:`PASS`): writes that queued a
        seizure again meanwhile cost one more correlation in the next pass, not one each.
        """
        done = 0
        with Session(self.engine) as session:
            if self.audit_settings is not None:
                audit.bind(session, self.audit_settings)
            while not self._stop.is_set():
                ids = _queued_ids(session, PASS)
                session.rollback()
                if not ids:
                    break
                did = 0
                for seizure_id in ids:
                    if self._stop.is_set():
                        break
                    did += correlate_one(session, seizure_id) is not None
                _chain(session)
                done += did
                if did == 0:  # the rest is failed, or another worker's: wait for a wake
                    break
        return done

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.poll_s)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.run_once()
            except Exception:  # the worker must outlive a database hiccup
                log.exception("link worker failed; retrying")
                self._stop.wait(self.poll_s)


def _engine_of(session: OrmSession) -> Engine | None:
    try:
        bind = session.get_bind()
    except Exception:  # an unbound session has no worker to wake
        return None
    return bind.engine if isinstance(bind, Connection) else bind


@event.listens_for(OrmSession, "after_commit")
def _wake_worker(session: OrmSession) -> None:
    if session.info.pop(_FLAG, False):
        engine = _engine_of(session)
        worker = _WORKERS.get(engine) if engine is not None else None
        if worker is not None:
            worker.wake()


@event.listens_for(OrmSession, "before_commit")
def _write_queued(session: OrmSession) -> None:
    write_queued(session)  # type: ignore[arg-type]


@event.listens_for(OrmSession, "after_soft_rollback")
def _forget(session: OrmSession, previous_transaction: Any) -> None:
    if not previous_transaction.nested:  # the whole transaction: nothing of it is queued
        session.info.pop(_QUEUED, None)
        session.info.pop(_FLAG, None)
