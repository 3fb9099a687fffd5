"""Push the outbox to the service: idempotent, in order, patient with a bad link.

Records go in batches (``POST /api/v1/sync/batch``, one transaction on the service, one
answer per record), each with the station's device key and its UUID as idempotency key,
so a resend after any crash or lost answer returns the first result instead of a
duplicate. Parents go before children (a child names its parent's server id), so a
batch holds records whose parents are already accepted. Attachments (multipart) are
POSTed one by one.

What an answer means for the record (a batch's answer for the whole batch, or the
status in one record's result):

- 2xx: sent.
- 401/403: the device key is revoked or wrong; stop, keep everything
  (:class:`DeviceKeyRejectedError`).
- 408, 409, 425, 429, 5xx, timeouts and connection errors: transient; the record stays
  pending and the loop backs off exponentially with jitter.
- any other 4xx: the service refuses the content; the record is marked refused with the
  service's field-level reason and kept for correction. A whole batch refused this way
  (413 too large, 422) is split in halves until the culprit is alone.

Every answer of a batch is written to the outbox in one transaction.

The station clock is never used for ordering; the service's ``Date`` header gives the
offset between the two clocks, which ``sync status`` reports.
"""

from __future__ import annotations

import base64
import json
import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import partial
from typing import Any

import httpx

from fieldscan.station.capture import ATTACHMENT, CUSTODY_EVENT, FIELD_TEST, ITEM, SEIZURE
from fieldscan.station.errors import DeviceKeyRejectedError, StationError
from fieldscan.station.outbox import Outbox, OutboxRecord, RecordStatus

API_PREFIX = "/api/v1"
BATCH_PATH = f"{API_PREFIX}/sync/batch"
#: Records per batch request at most (the service takes up to 200).
MAX_BATCH_RECORDS = 100
#: JSON bytes of record bodies per batch at most, well under the service's 8 MiB limit.
MAX_BATCH_BYTES = 4 * 1024 * 1024
#: Record kinds the batch endpoint creates (attachments are multipart, sent one by one).
BATCH_KINDS = frozenset({SEIZURE, ITEM, FIELD_TEST, CUSTODY_EVENT})
DEVICE_KEY_HEADER = "X-Device-Key"
#: Statuses that mean "try again later", not "your record is wrong".
TRANSIENT_STATUSES = frozenset({408, 409, 425, 429})
#: Settings kept in the outbox database.
SETTING_URL = "service_url"
SETTING_CLOCK_OFFSET = "clock_offset_s"
SETTING_LAST_SYNC = "last_sync"
SETTING_LAST_STOP = "last_stop"


class TransientSyncError(StationError):
    """The service could not take a record now (network, timeout, 5xx); it stays pending."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with "equal jitter": half the step fixed, half random."""

    base_s: float = 0.5
    cap_s: float = 60.0

    def delay(self, failures: int, rng: random.Random) -> float:
        """Seconds to wait after ``failures`` consecutive failures (≥ 1)."""
        step = min(self.cap_s, self.base_s * 2 ** max(0, failures - 1))
        return float(step / 2 + rng.uniform(0, step / 2))


@dataclass
class SyncReport:
    """What one sync run did."""

    sent: int = 0
    refused: int = 0
    transient_failures: int = 0
    last_error: str | None = None
    clock_offset_s: float | None = None
    refused_reasons: dict[str, str] = field(default_factory=dict)

    def merge(self, other: SyncReport) -> None:
        self.sent += other.sent
        self.refused += other.refused
        self.transient_failures += other.transient_failures
        self.last_error = other.last_error or self.last_error
        if other.clock_offset_s is not None:
            self.clock_offset_s = other.clock_offset_s
        self.refused_reasons.update(other.refused_reasons)


def route(record: OutboxRecord, parent_ref: str | None) -> str:
    """The API path a record is POSTed to."""
    paths = {
        SEIZURE: f"{API_PREFIX}/seizures",
        ITEM: f"{API_PREFIX}/seizures/{parent_ref}/items",
        FIELD_TEST: f"{API_PREFIX}/items/{parent_ref}/field-tests",
        CUSTODY_EVENT: f"{API_PREFIX}/items/{parent_ref}/custody-events",
        ATTACHMENT: f"{API_PREFIX}/items/{parent_ref}/attachments",
    }
    if record.kind not in paths:
        raise StationError(f"unknown record kind {record.kind!r}")
    if record.kind != SEIZURE and parent_ref is None:
        raise StationError(f"a {record.kind} needs a parent already accepted by the service")
    return paths[record.kind]


def refusal_reason(response: httpx.Response) -> str:
    """The service's reason, field by field when it gives them (``spectrum.axis: …``)."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = response.text[:300] or None
    if isinstance(detail, list):
        parts = []
        for problem in detail:
            if not isinstance(problem, dict):
                parts.append(str(problem))
                continue
            loc = [str(p) for p in problem.get("loc", []) if p not in ("body",)]
            where = ".".join(loc)
            parts.append(f"{where}: {problem.get('msg', '')}" if where else str(problem.get("msg")))
        text = "; ".join(parts)
    else:
        text = str(detail) if detail else response.reason_phrase
    return f"HTTP {response.status_code}: {text}"


class SyncClient:
    """Sends an :class:`Outbox` to the service at ``base_url`` as the device with ``device_key``.

    Parameters
    ----------
    outbox : Outbox
        The station's records.
    base_url : str
        The service root, e.g. ``http://127.0.0.1:8000``.
    device_key : str
        This station's API key.
    timeout : float
        Seconds per request (connect, read, write).
    workers : int
        Records of one batch (all independent: their parents are already sent) are sent on
        this many connections at once.
    transport : httpx.BaseTransport, optional
        For tests (``httpx.MockTransport``).
    rng, sleep, clock
        Randomness for jitter, a sleep function (default: wait on the stop event) and the
        station clock (tests swap them).
    """

    def __init__(
        self,
        outbox: Outbox,
        base_url: str,
        device_key: str,
        *,
        timeout: float = 10.0,
        workers: int = 1,
        backoff: Backoff = Backoff(),  # frozen value
        transport: httpx.BaseTransport | None = None,
        rng: random.Random | None = None,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if not device_key:
            raise StationError("no device key: give --device-key or set FIELDSCAN_DEVICE_KEY")
        if not base_url.startswith(("http://", "https://")):
            raise StationError(f"service URL must start with http:// or https://, got {base_url!r}")
        self.outbox = outbox
        self.base_url = base_url.rstrip("/")
        self.workers = max(1, workers)
        self.backoff = backoff
        self.rng = rng or random.Random()
        self.sleep = sleep
        self.clock = clock
        self._lock = threading.Lock()  # one SQLite connection, many sender threads
        #: Server ids of the records this client saw accepted: a child's parent is found
        #: here without reading (and decoding) the parent's whole record again.
        self._server_refs: dict[str, str] = {}
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={DEVICE_KEY_HEADER: device_key},
            timeout=timeout,
            transport=transport,
            limits=httpx.Limits(
                max_connections=self.workers, max_keepalive_connections=self.workers
            ),
        )

    def close(self) -> None:
        """Close the HTTP connections (the outbox stays open; its owner closes it)."""
        self._http.close()

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one record -------------------------------------------------------------------

    def _request(self, record: OutboxRecord, parent_ref: str | None) -> httpx.Response:
        path = route(record, parent_ref)
        headers = {
            "Idempotency-Key": record.uuid,
            # The station's clock at sending time, for the record; the service stamps its own.
            "X-Device-Time": self.clock().isoformat(),
        }
        if record.kind == ATTACHMENT:
            body = record.payload
            data = base64.b64decode(body["content_b64"])
            files = {"file": (body["filename"], data, body["media_type"])}
            return self._http.post(path, headers=headers, files=files, data={"id": record.uuid})
        headers["Content-Type"] = "application/json"
        return self._http.post(path, headers=headers, content=record.payload_json.encode())

    def _note_clock(self, response: httpx.Response, report: SyncReport) -> None:
        date = response.headers.get("date")
        if not date:
            return
        try:
            server = parsedate_to_datetime(date)
        except (TypeError, ValueError):
            return
        report.clock_offset_s = round((server - self.clock()).total_seconds(), 0)

    def send(self, record: OutboxRecord, report: SyncReport) -> None:
        """Send one record and record the outcome in the outbox.

        Raises
        ------
        DeviceKeyRejectedError
            On 401/403 (the record stays pending).
        TransientSyncError
            On a network error, timeout, or a transient status (the record stays pending).
        """
        parent_ref = self._parent_ref(record)
        try:
            response = self._request(record, parent_ref)
        except StationError as exc:
            # A record this station cannot even address is refused here, not retried forever.
            with self._lock:
                self.outbox.mark_refused(record.uuid, f"not sent: {exc}")
                report.refused += 1
                report.refused_reasons[record.uuid] = f"not sent: {exc}"
            return
        except httpx.HTTPError as exc:
            message = f"{type(exc).__name__}: {exc or 'no answer'}"
            with self._lock:
                self.outbox.mark_failed_attempt(record.uuid, message)
            raise TransientSyncError(f"service unreachable ({message})") from exc
        self._note_clock(response, report)
        code = response.status_code
        if 200 <= code < 300:
            try:
                server_ref = str(response.json().get("id") or record.uuid)
            except (ValueError, AttributeError):
                server_ref = record.uuid
            with self._lock:
                self.outbox.mark_sent(record.uuid, server_ref)
                self._server_refs[record.uuid] = server_ref
                report.sent += 1  # under the lock: sender threads share the report
            return
        reason = refusal_reason(response)
        if code in (401, 403):
            with self._lock:
                self.outbox.mark_failed_attempt(record.uuid, reason)
            raise _key_rejected(reason)
        if code in TRANSIENT_STATUSES or code >= 500:
            with self._lock:
                self.outbox.mark_failed_attempt(record.uuid, reason)
            raise TransientSyncError(f"service busy or failing ({reason})")
        with self._lock:
            self.outbox.mark_refused(record.uuid, reason)
            report.refused += 1
            report.refused_reasons[record.uuid] = reason

    # -- passes and the loop ----------------------------------------------------------

    def push(self, batch: int = 2 * MAX_BATCH_RECORDS) -> SyncReport:
        """Send everything that can be sent now, parents first; stop at the first transient error.

        Raises
        ------
        DeviceKeyRejectedError
            When the key is refused (nothing is lost).
        """
        report = SyncReport()
        pool = ThreadPoolExecutor(self.workers) if self.workers > 1 else None
        try:
            while True:
                with self._lock:
                    ready = self.outbox.ready_to_send(limit=batch)
                if not ready:
                    break
                # Records read together never depend on each other: their parents are sent.
                jobs: list[Callable[[], None]] = [
                    partial(self.send, r, report) for r in ready if r.kind not in BATCH_KINDS
                ]
                jobs += [
                    partial(self.send_batch, c, report)
                    for c in _chunks([r for r in ready if r.kind in BATCH_KINDS])
                ]
                try:
                    if pool is None:
                        for job in jobs:
                            job()
                    else:
                        for future in [pool.submit(job) for job in jobs]:
                            future.result()
                except TransientSyncError as exc:
                    report.transient_failures += 1
                    report.last_error = str(exc)
                    break
        finally:
            if pool is not None:
                pool.shutdown(wait=True)
            self._remember(report)
        return report

    # -- batches ----------------------------------------------------------------------

    def send_batch(self, records: list[OutboxRecord], report: SyncReport) -> None:
        """Send records (parents already accepted) in one request; record every answer.

        Raises
        ------
        DeviceKeyRejectedError
            On 401/403 for the batch (the records stay pending).
        TransientSyncError
            On a network error, timeout, or a transient status (the records stay pending).
        """
        operations: list[str] = []
        sendable: list[OutboxRecord] = []
        for record in records:
            parent_ref = self._parent_ref(record)
            if record.kind != SEIZURE and parent_ref is None:
                with self._lock:
                    reason = f"not sent: a {record.kind} needs a parent already accepted"
                    self.outbox.mark_refused(record.uuid, reason)
                    report.refused += 1
                    report.refused_reasons[record.uuid] = reason
                continue
            # The stored body goes in as it is: no parsing and encoding of spectra again.
            head = json.dumps({"kind": record.kind, "key": record.uuid, "parent_id": parent_ref})
            operations.append(f'{head[:-1]},"body":{record.payload_json}}}')
            sendable.append(record)
        if not sendable:
            return
        headers = {"X-Device-Time": self.clock().isoformat(), "Content-Type": "application/json"}
        body = '{"operations":[' + ",".join(operations) + "]}"
        try:
            response = self._http.post(BATCH_PATH, headers=headers, content=body.encode())
        except httpx.HTTPError as exc:
            message = f"{type(exc).__name__}: {exc or 'no answer'}"
            self._all_failed(sendable, message)
            raise TransientSyncError(f"service unreachable ({message})") from exc
        self._note_clock(response, report)
        code = response.status_code
        if code == 200:
            self._batch_answered(sendable, response, report)
            return
        reason = refusal_reason(response)
        if code in (401, 403):
            self._all_failed(sendable, reason)
            raise _key_rejected(reason)
        if code in TRANSIENT_STATUSES or code >= 500:
            self._all_failed(sendable, reason)
            raise TransientSyncError(f"service busy or failing ({reason})")
        if len(sendable) > 1:  # refused whole (too large, malformed): halve until it is alone
            half = len(sendable) // 2
            self.send_batch(sendable[:half], report)
            self.send_batch(sendable[half:], report)
            return
        with self._lock:
            self.outbox.mark_refused(sendable[0].uuid, reason)
            report.refused += 1
            report.refused_reasons[sendable[0].uuid] = reason

    def _batch_answered(
        self, records: list[OutboxRecord], response: httpx.Response, report: SyncReport
    ) -> None:
        try:
            results = {str(r["key"]): r for r in response.json()["results"]}
        except (ValueError, KeyError, TypeError) as exc:
            self._all_failed(records, f"unreadable batch answer: {exc}")
            raise TransientSyncError(f"unreadable batch answer from the service: {exc}") from exc
        sent: list[tuple[str, str]] = []
        refused: list[tuple[str, str]] = []
        failed: list[tuple[str, str]] = []
        for record in records:
            result = results.get(record.uuid)
            if result is None:
                failed.append((record.uuid, "the service's batch answer left this record out"))
                continue
            code = int(result.get("status_code") or 0)
            body = result.get("body")
            if 200 <= code < 300:
                ref = body.get("id") if isinstance(body, dict) else None
                sent.append((record.uuid, str(ref or record.uuid)))
            else:
                reason = refusal_reason(httpx.Response(code, json=body))
                if code in TRANSIENT_STATUSES or code >= 500:
                    failed.append((record.uuid, reason))
                else:
                    refused.append((record.uuid, reason))
        with self._lock:
            self.outbox.mark_outcomes(sent=sent, refused=refused, failed=failed)
            self._server_refs.update(sent)
            report.sent += len(sent)
            report.refused += len(refused)
            report.refused_reasons.update(refused)
        if failed:
            raise TransientSyncError(f"service busy or failing ({failed[0][1]})")

    def _all_failed(self, records: list[OutboxRecord], message: str) -> None:
        with self._lock:
            self.outbox.mark_outcomes(failed=[(r.uuid, message) for r in records])

    def _parent_ref(self, record: OutboxRecord) -> str | None:
        if record.parent_uuid is None:
            return None
        with self._lock:
            ref = self._server_refs.get(record.parent_uuid)
            return ref if ref is not None else self.outbox.get(record.parent_uuid).server_ref

    def _remember(self, report: SyncReport) -> None:
        with self._lock:
            if report.clock_offset_s is not None:
                self.outbox.set_setting(SETTING_CLOCK_OFFSET, str(report.clock_offset_s))
            self.outbox.set_setting(SETTING_LAST_SYNC, self.clock().isoformat())
            self.outbox.set_setting(SETTING_LAST_STOP, report.last_error or "")

    def run(
        self,
        *,
        once: bool = False,
        max_failures: int | None = 6,
        poll_s: float = 5.0,
        stop: threading.Event | None = None,
        on_wait: Callable[[float, str], None] | None = None,
    ) -> SyncReport:
        """Push until done (``once``) or until ``stop`` is set, backing off after failures.

        With ``once``, return when nothing more can be sent now, or after ``max_failures``
        consecutive transient failures (the records stay pending). Without it, keep
        watching the outbox every ``poll_s`` seconds.

        Raises
        ------
        DeviceKeyRejectedError
            When the key is refused (nothing is lost).
        """
        total = SyncReport()
        failures = 0
        stop = stop or threading.Event()
        while not stop.is_set():
            report = self.push()
            total.merge(report)
            if report.last_error is None:
                failures = 0
                total.last_error = None
                if once:
                    return total
                wait = poll_s
            else:
                failures += 1
                if once and max_failures is not None and failures >= max_failures:
                    return total
                wait = self.backoff.delay(failures, self.rng)
                if on_wait is not None:
                    on_wait(wait, report.last_error)
            if self._wait(stop, wait):
                break
        return total

    def _wait(self, stop: threading.Event, seconds: float) -> bool:
        """Wait ``seconds`` (or until ``stop``); True when stopped."""
        if self.sleep is None:
            return stop.wait(seconds)
        self.sleep(seconds)
        return stop.is_set()


def _key_rejected(reason: str) -> DeviceKeyRejectedError:
    return DeviceKeyRejectedError(
        f"the service refused this station's device key ({reason}): device key revoked "
        "or invalid — your records are kept on this station; ask your administrator "
        "for a new key, then run `fieldscan sync run` again"
    )


def _chunks(records: list[OutboxRecord]) -> list[list[OutboxRecord]]:
    """Records in send order, cut into batches by count and by body size."""
    out: list[list[OutboxRecord]] = []
    current: list[OutboxRecord] = []
    size = 0
    for record in records:
        # Spectra dominate: about 20 bytes per number as JSON.
        n = len(record.payload_json)
        if current and (len(current) >= MAX_BATCH_RECORDS or size + n > MAX_BATCH_BYTES):
            out.append(current)
            current, size = [], 0
        current.append(record)
        size += n
    if current:
        out.append(current)
    return out


def pending_summary(outbox: Outbox) -> dict[str, Any]:
    """Counts by status, refused records with reasons, pending records held by a refused parent."""
    records = outbox.records()
    by_uuid = {r.uuid: r for r in records}

    def blocked_by(record: OutboxRecord) -> str | None:
        parent = by_uuid.get(record.parent_uuid or "")
        while parent is not None:
            if parent.status is RecordStatus.REFUSED:
                return parent.uuid
            parent = by_uuid.get(parent.parent_uuid or "")
        return None

    counts = outbox.counts()
    return {
        "pending": counts[RecordStatus.PENDING],
        "sent": counts[RecordStatus.SENT],
        "refused": counts[RecordStatus.REFUSED],
        "refused_records": [
            {"uuid": r.uuid, "kind": r.kind, "reason": r.last_error, "attempts": r.attempts}
            for r in records
            if r.status is RecordStatus.REFUSED
        ],
        "pending_records": [
            {
                "uuid": r.uuid,
                "kind": r.kind,
                "attempts": r.attempts,
                "last_error": r.last_error,
                "waiting_for_refused": blocked_by(r),
            }
            for r in records
            if r.status is RecordStatus.PENDING
        ],
        "clock_offset_s": _float(outbox.get_setting(SETTING_CLOCK_OFFSET)),
        "last_sync": outbox.get_setting(SETTING_LAST_SYNC),
        "last_stop": outbox.get_setting(SETTING_LAST_STOP) or None,
    }


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None
