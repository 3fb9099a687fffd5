"""Correlation after the commit: a durable queue and the worker that empties it.

Writes call :func:`enqueue_correlation` in their own transaction (one upserted row per
seizure, committed with the change), so correlation costs the write path one statement.
When such a transaction commits, the process's :class:`LinkWorker` is woken at once; it
correlates the queued seizures in batches and deletes each queue row in the transaction
that writes its links, so a crash between the two leaves the row for the next worker (the
worker also polls, and the next start picks up what a crash left).

Readers of links and alerts call :func:`drain` first: what they read then includes every
change committed before (read-your-writes), whether or not the worker has run yet. Tests
wait for suggestions the same deterministic way.
"""

from __future__ import annotations

import logging
import threading
import uuid
import weakref
from typing import Any

from sqlalchemy import Connection, Engine, event, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, col

from service import audit
from service.audit import AuditSettings
from service.core.types import utcnow
from service.linking.engine import CorrelationResult, correlate_seizure
from service.linking.models import LinkQueue
from service.principal import Principal

log = logging.getLogger("service.linking")

#: Seizures correlated per worker transaction (one commit for many correlations).
BATCH = 20
#: After this many failed attempts a queued seizure waits for a manual correlation.
MAX_ATTEMPTS = 5
_FLAG = "fieldscan_link_enqueued"
_WORKERS: weakref.WeakKeyDictionary[Engine, LinkWorker] = weakref.WeakKeyDictionary()


def enqueue_correlation(session: Session, seizure_id: uuid.UUID) -> None:
    """Queue a seizure for correlation, in the caller's transaction (durable with it).

    An already queued seizure has its row touched, not duplicated. On PostgreSQL, touching
    waits for a worker correlating that seizure right now to commit (it holds the row), so
    the change being committed is never missed by a correlation that read too early.
    """
    dialect = session.get_bind().dialect.name
    values = {"seizure_id": seizure_id, "enqueued_at": utcnow(), "attempts": 0}
    table = LinkQueue.__table__  # type: ignore[attr-defined]
    if dialect == "postgresql":
        stmt: Any = postgresql.insert(table).values(**values)
    else:
        stmt = sqlite.insert(table).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=["seizure_id"],
        set_={"enqueued_at": stmt.excluded.enqueued_at, "attempts": 0, "last_error": None},
    )
    session.execute(stmt)
    session.info[_FLAG] = True


def pending(session: Session) -> int:
    """How many seizures wait to be correlated (including ones that failed)."""
    from sqlalchemy import func

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


def drain(session: Session, *, limit: int = 100) -> int:
    """Correlate what is queued now (waiting for a busy worker), then commit.

    Readers call it before reading links or alerts; it costs one indexed probe when the
    queue is empty. At most ``limit`` seizures (oldest first): under a backlog a reader
    shares the worker's work but is not held up indefinitely. Returns how many it did.
    """
    probe = select(col(LinkQueue.seizure_id)).where(col(LinkQueue.attempts) < MAX_ATTEMPTS)
    if session.execute(probe.limit(1)).first() is None:
        return 0
    done = 0
    while done < limit:
        batch = correlate_queued(session, limit=min(BATCH, limit - done), skip_locked=False)
        _commit(session)
        if not batch:
            break
        done += len(batch)
    return done


def _commit(session: Session) -> None:
    session.commit()
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
        """Correlate queued seizures until none are left; returns how many."""
        done = 0
        while not self._stop.is_set():
            with Session(self.engine) as session:
                if self.audit_settings is not None:
                    audit.bind(session, self.audit_settings)
                batch = correlate_queued(session)
                _commit(session)
            done += len(batch)
            if len(batch) < BATCH:
                return done
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


@event.listens_for(OrmSession, "after_rollback")
def _forget(session: OrmSession) -> None:
    session.info.pop(_FLAG, None)
