"""A durable outbox in SQLite (WAL): every record is written locally before any network is tried.

Records are appended in one transaction per logged event, so a crash (kill -9, power loss) leaves
either all of an event or none of it. A record keeps its client-generated UUID for life: the
service uses it as the idempotency key, so resending after a crash can never duplicate it.
Refused records stay, with the service's reason, until an officer corrects and resends them.
"""

from __future__ import annotations

import enum
import json
import sqlite3
import uuid as uuidlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fieldscan.station.errors import OutboxFullError, StationError, UnknownRecordError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,  -- send order: parents before children
    uuid         TEXT NOT NULL UNIQUE,               -- client-generated; the idempotency key
    kind         TEXT NOT NULL,                      -- seizure, item, field_test, custody_event, …
    parent_uuid  TEXT,                               -- must be sent before this record
    payload      TEXT NOT NULL,                      -- JSON body as it will be sent
    status       TEXT NOT NULL DEFAULT 'pending',
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    server_ref   TEXT,                               -- the service's id once accepted
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_status ON outbox(status, seq);
CREATE TABLE IF NOT EXISTS outbox_revision (          -- every correction keeps what it replaced
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid         TEXT NOT NULL,
    payload      TEXT NOT NULL,
    reason       TEXT NOT NULL,
    replaced_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS station_setting (         -- service URL, clock offset, last sync
    key          TEXT PRIMARY KEY,
    value        TEXT NOT NULL
);
"""


class RecordStatus(enum.StrEnum):
    """Where a record stands with the service."""

    PENDING = "pending"
    SENT = "sent"
    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class NewRecord:
    """A record to append: its kind, JSON body, optional parent and (optionally) a fixed UUID."""

    kind: str
    payload: Mapping[str, Any]
    parent_uuid: str | None = None
    uuid: str | None = None


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    """One stored record."""

    seq: int
    uuid: str
    kind: str
    parent_uuid: str | None
    #: The body as stored (JSON text): sent as it is, parsed only when read.
    payload_json: str
    status: RecordStatus
    attempts: int
    last_error: str | None
    server_ref: str | None
    created_at: str
    updated_at: str

    @property
    def payload(self) -> dict[str, Any]:
        """The body, parsed (a new dict each time)."""
        body: dict[str, Any] = json.loads(self.payload_json)
        return body


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _row(row: sqlite3.Row) -> OutboxRecord:
    return OutboxRecord(
        seq=row["seq"],
        uuid=row["uuid"],
        kind=row["kind"],
        parent_uuid=row["parent_uuid"],
        payload_json=row["payload"],
        status=RecordStatus(row["status"]),
        attempts=row["attempts"],
        last_error=row["last_error"],
        server_ref=row["server_ref"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class Outbox:
    """The station's local store. One instance per process; safe to reopen after any crash."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            # FULL: a committed record survives power loss, not only a killed process.
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StationError(f"cannot open the station outbox {self.path}: {exc}") from exc

    def close(self) -> None:
        """Close the database; records already committed are safe."""
        self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                if self._db.in_transaction:  # SQLite has already rolled back on SQLITE_FULL
                    self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.IntegrityError as exc:
            raise StationError(f"station outbox {self.path}: record refused: {exc}") from exc
        except sqlite3.OperationalError as exc:
            if "full" in str(exc).lower():
                raise OutboxFullError(
                    f"the disk holding {self.path} is full: this record was NOT saved "
                    "(earlier records are intact); free space and record it again"
                ) from exc
            raise StationError(f"station outbox {self.path}: {exc}") from exc

    def append(self, records: Sequence[NewRecord]) -> list[OutboxRecord]:
        """Append records atomically (all or none) and return them as stored."""
        now = _now()
        uuids = [r.uuid or str(uuidlib.uuid4()) for r in records]
        with self._transaction() as db:
            for record, record_uuid in zip(records, uuids, strict=True):
                db.execute(
                    "INSERT INTO outbox (uuid, kind, parent_uuid, payload, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        record_uuid,
                        record.kind,
                        record.parent_uuid,
                        json.dumps(record.payload, sort_keys=True, allow_nan=False),
                        now,
                        now,
                    ),
                )
        return [self.get(u) for u in uuids]

    def get(self, record_uuid: str) -> OutboxRecord:
        """The record with this UUID."""
        row = self._db.execute("SELECT * FROM outbox WHERE uuid = ?", (record_uuid,)).fetchone()
        if row is None:
            raise UnknownRecordError(record_uuid)
        return _row(row)

    def records(self, status: RecordStatus | None = None) -> list[OutboxRecord]:
        """All records (or those with ``status``) in send order."""
        if status is None:
            rows = self._db.execute("SELECT * FROM outbox ORDER BY seq").fetchall()
        else:
            rows = self._db.execute(
                "SELECT * FROM outbox WHERE status = ? ORDER BY seq", (status.value,)
            ).fetchall()
        return [_row(r) for r in rows]

    def ready_to_send(self, limit: int = 100) -> list[OutboxRecord]:
        """Pending records whose parent (if any) the service has already accepted, in send order."""
        rows = self._db.execute(
            "SELECT o.* FROM outbox o LEFT JOIN outbox p ON p.uuid = o.parent_uuid"
            " WHERE o.status = 'pending' AND (o.parent_uuid IS NULL OR p.status = 'sent')"
            " ORDER BY o.seq LIMIT ?",
            (limit,),
        ).fetchall()
        return [_row(r) for r in rows]

    def counts(self) -> dict[RecordStatus, int]:
        """How many records stand in each status."""
        found = dict(
            self._db.execute("SELECT status, COUNT(*) FROM outbox GROUP BY status").fetchall()
        )
        return {s: int(found.get(s.value, 0)) for s in RecordStatus}

    def _update(self, record_uuid: str, sql: str, params: tuple[Any, ...]) -> None:
        with self._transaction() as db:
            cur = db.execute(sql + " WHERE uuid = ?", (*params, _now(), record_uuid))
            if cur.rowcount == 0:
                raise UnknownRecordError(record_uuid)

    def mark_sent(self, record_uuid: str, server_ref: str) -> None:
        """The service accepted the record (first time or as a replay of the first result)."""
        self._update(
            record_uuid,
            "UPDATE outbox SET status = 'sent', server_ref = ?, last_error = NULL,"
            " attempts = attempts + 1, updated_at = ?",
            (server_ref,),
        )

    def mark_refused(self, record_uuid: str, reason: str) -> None:
        """The service refused the record for what it contains; kept until corrected."""
        self._update(
            record_uuid,
            "UPDATE outbox SET status = 'refused', last_error = ?, attempts = attempts + 1,"
            " updated_at = ?",
            (reason,),
        )

    def mark_outcomes(
        self,
        *,
        sent: Sequence[tuple[str, str]] = (),
        refused: Sequence[tuple[str, str]] = (),
        failed: Sequence[tuple[str, str]] = (),
    ) -> None:
        """Record a whole batch's answers in one transaction (one flush to disk, not one each).

        ``sent`` holds ``(uuid, server_ref)``, ``refused`` and ``failed`` ``(uuid, reason)``;
        the same meaning as :meth:`mark_sent`, :meth:`mark_refused` and
        :meth:`mark_failed_attempt`. All or none are recorded.
        """
        now = _now()
        statements = (
            (
                "UPDATE outbox SET status = 'sent', server_ref = ?, last_error = NULL,"
                " attempts = attempts + 1, updated_at = ? WHERE uuid = ?",
                sent,
            ),
            (
                "UPDATE outbox SET status = 'refused', last_error = ?, attempts = attempts + 1,"
                " updated_at = ? WHERE uuid = ?",
                refused,
            ),
            (
                "UPDATE outbox SET last_error = ?, attempts = attempts + 1, updated_at = ?"
                " WHERE uuid = ?",
                failed,
            ),
        )
        with self._transaction() as db:
            for sql, pairs in statements:
                for record_uuid, value in pairs:
                    if db.execute(sql, (value, now, record_uuid)).rowcount == 0:
                        raise UnknownRecordError(record_uuid)

    def mark_failed_attempt(self, record_uuid: str, error: str) -> None:
        """Sending failed for a transient reason (network, 5xx); the record stays pending."""
        self._update(
            record_uuid,
            "UPDATE outbox SET last_error = ?, attempts = attempts + 1, updated_at = ?",
            (error,),
        )

    def correct(self, record_uuid: str, payload: Mapping[str, Any], reason: str) -> OutboxRecord:
        """Replace a refused record's body (the old one is kept as a revision) and queue it again.

        The UUID stays the same: the service never accepted it, so it cannot duplicate.
        """
        if not reason.strip():
            raise ValueError("a correction needs a reason")
        current = self.get(record_uuid)
        if current.status is RecordStatus.SENT:
            raise StationError(f"record {record_uuid} was accepted by the service: edit it there")
        body = json.dumps(dict(payload), sort_keys=True, allow_nan=False)
        now = _now()
        with self._transaction() as db:
            db.execute(
                "INSERT INTO outbox_revision (uuid, payload, reason, replaced_at) VALUES (?,?,?,?)",
                (record_uuid, json.dumps(current.payload, sort_keys=True), reason, now),
            )
            db.execute(
                "UPDATE outbox SET payload = ?, status = 'pending', last_error = NULL,"
                " updated_at = ? WHERE uuid = ?",
                (body, now, record_uuid),
            )
        return self.get(record_uuid)

    def revisions(self, record_uuid: str) -> list[dict[str, Any]]:
        """Earlier bodies of a corrected record, oldest first."""
        rows = self._db.execute(
            "SELECT payload, reason, replaced_at FROM outbox_revision WHERE uuid = ? ORDER BY id",
            (record_uuid,),
        ).fetchall()
        return [
            {"payload": json.loads(r["payload"]), "reason": r["reason"], "replaced_at": r[2]}
            for r in rows
        ]

    def set_setting(self, key: str, value: str) -> None:
        """Keep a station setting (service URL, last clock offset, …)."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO station_setting (key, value) VALUES (?, ?)"
                " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def get_setting(self, key: str) -> str | None:
        """A station setting, or None."""
        row = self._db.execute("SELECT value FROM station_setting WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])
