"""The sync client against a scripted service (httpx.MockTransport): every kind of answer."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest

from fieldscan.station.errors import DeviceKeyRejectedError, StationError
from fieldscan.station.outbox import NewRecord, Outbox, RecordStatus
from fieldscan.station.sync import Backoff, SyncClient, pending_summary, refusal_reason

KEY = "device-key-123"
Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    box = Outbox(tmp_path / "outbox.db")
    yield box
    box.close()


ROUTES: dict[str, Callable[[str | None], str]] = {
    "seizure": lambda _p: "/api/v1/seizures",
    "item": lambda p: f"/api/v1/seizures/{p}/items",
    "field_test": lambda p: f"/api/v1/items/{p}/field-tests",
    "custody_event": lambda p: f"/api/v1/items/{p}/custody-events",
}


def _whole_batch_failure(response: httpx.Response) -> bool:
    code = response.status_code
    return code in (401, 403, 408, 409, 425, 429) or code >= 500


class Server:
    """Scripted answers; accepted bodies are kept by idempotency key, as the service does.

    A batch (``/sync/batch``) is answered record by record, each record seen as the single
    POST it stands for (in :attr:`requests`); a scripted answer meaning the whole service
    is failing (401, 5xx, a timeout…) fails the whole batch, as it would on the service.
    """

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []  # one per record, as single POSTs
        self.http: list[httpx.Request] = []  # the HTTP requests themselves
        self.accepted: dict[str, dict[str, object]] = {}
        self.script: list[Handler] = []  # one-shot answers tried before the default

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.http.append(request)
        if request.url.path != "/api/v1/sync/batch":
            return self._one(request)
        results, headers = [], {}
        for op in json.loads(request.content)["operations"]:
            single = httpx.Request(
                "POST",
                f"http://service.test{ROUTES[op['kind']](op['parent_id'])}",
                headers={**request.headers, "Idempotency-Key": op["key"]},
                json=op["body"],
            )
            answer = self._one(single)
            if _whole_batch_failure(answer):
                return answer
            headers.update({k: v for k, v in answer.headers.items() if k == "date"})
            ok = 200 <= answer.status_code < 300
            results.append(
                {
                    "key": op["key"],
                    "outcome": "created" if ok else "refused",
                    "status_code": answer.status_code,
                    "body": answer.json(),
                }
            )
        return httpx.Response(200, json={"results": results}, headers=headers)

    def _one(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.script:
            return self.script.pop(0)(request)
        key = request.headers["Idempotency-Key"]
        body = json.loads(request.content)
        self.accepted.setdefault(key, body)
        return httpx.Response(201, json={"id": f"srv-{key[:8]}", **body})


def client(outbox: Outbox, server: Server, **kw: object) -> SyncClient:
    waits: list[float] = []
    sync = SyncClient(
        outbox,
        "http://service.test",
        KEY,
        transport=httpx.MockTransport(server),
        rng=random.Random(1),
        sleep=waits.append,
        **kw,  # type: ignore[arg-type]
    )
    sync.waits = waits  # type: ignore[attr-defined]
    return sync


def _tree(outbox: Outbox) -> tuple[str, str, str]:
    seizure = outbox.append([NewRecord("seizure", {"country": "PE"})])[0].uuid
    item = outbox.append([NewRecord("item", {"description": "x"}, parent_uuid=seizure)])[0].uuid
    test = outbox.append([NewRecord("field_test", {"n": 1}, parent_uuid=item)])[0].uuid
    return seizure, item, test


def test_records_go_parent_first_to_routes_naming_the_parents_server_id(outbox: Outbox) -> None:
    seizure, item, test = _tree(outbox)
    server = Server()
    with client(outbox, server) as sync:
        report = sync.run(once=True)
    assert report.sent == 3 and report.last_error is None
    paths = [r.url.path for r in server.requests]
    assert paths == [
        "/api/v1/seizures",
        f"/api/v1/seizures/srv-{seizure[:8]}/items",
        f"/api/v1/items/srv-{item[:8]}/field-tests",
    ]
    for request, uid in zip(server.requests, (seizure, item, test), strict=True):
        assert request.headers["Idempotency-Key"] == uid
        assert request.headers["X-Device-Key"] == KEY
        assert "X-Device-Time" in request.headers
    assert outbox.get(test).server_ref == f"srv-{test[:8]}"
    assert outbox.counts()[RecordStatus.SENT] == 3


@pytest.mark.parametrize("failure", ["503", "500", "429", "timeout", "connect"])
def test_transient_failures_keep_records_pending_and_back_off(outbox: Outbox, failure: str) -> None:
    seizure, _, _ = _tree(outbox)
    server = Server()

    def fail(request: httpx.Request) -> httpx.Response:
        if failure == "timeout":
            raise httpx.ReadTimeout("read timed out", request=request)
        if failure == "connect":
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(int(failure), json={"detail": "database unavailable, retry later"})

    server.script = [fail, fail, fail]
    with client(outbox, server) as sync:
        report = sync.run(once=True, max_failures=10)
        waits = sync.waits  # type: ignore[attr-defined]
    assert report.sent == 3 and report.transient_failures == 3
    assert len(waits) == 3 and waits[0] < waits[2]  # exponential growth
    assert outbox.get(seizure).attempts == 4  # three failures, then accepted
    assert len(server.accepted) == 3


def test_gives_up_after_max_failures_with_everything_kept(outbox: Outbox) -> None:
    _tree(outbox)
    server = Server()
    server.script = [lambda r: httpx.Response(502, text="bad gateway")] * 50
    with client(outbox, server) as sync:
        report = sync.run(once=True, max_failures=4)
    assert report.sent == 0 and report.transient_failures == 4
    assert "HTTP 502" in (report.last_error or "")
    assert outbox.counts()[RecordStatus.PENDING] == 3
    assert pending_summary(outbox)["last_stop"] == report.last_error


def test_a_revoked_key_stops_with_a_clear_message_and_keeps_the_data(outbox: Outbox) -> None:
    _tree(outbox)
    server = Server()
    server.script = [lambda r: httpx.Response(401, json={"detail": "device key revoked"})]
    with client(outbox, server) as sync, pytest.raises(DeviceKeyRejectedError) as caught:
        sync.run(once=True)
    message = str(caught.value)
    assert "device key revoked or invalid" in message and "records are kept" in message
    assert outbox.counts()[RecordStatus.PENDING] == 3
    assert len(server.requests) == 1  # it stopped at once, nothing else was tried


def test_content_errors_are_refused_with_field_reasons_then_corrected_and_resent(
    outbox: Outbox,
) -> None:
    seizure, item, test = _tree(outbox)
    server = Server()
    detail = [{"loc": ["body", "country"], "msg": "String should match pattern", "type": "x"}]
    server.script = [lambda r: httpx.Response(422, json={"detail": detail})]
    with client(outbox, server) as sync:
        report = sync.run(once=True)
    assert report.refused == 1 and report.sent == 0
    refused = outbox.get(seizure)
    assert refused.status is RecordStatus.REFUSED
    assert refused.last_error == "HTTP 422: country: String should match pattern"
    summary = pending_summary(outbox)
    assert [r["uuid"] for r in summary["refused_records"]] == [seizure]
    assert {r["uuid"]: r["waiting_for_refused"] for r in summary["pending_records"]} == {
        item: seizure,
        test: seizure,
    }
    outbox.correct(seizure, {"country": "PE", "place": "fixed"}, reason="country code")
    with client(outbox, server) as sync:
        assert sync.run(once=True).sent == 3
    assert server.accepted[seizure] == {"country": "PE", "place": "fixed"}


def test_a_lost_answer_is_resent_with_the_same_key_and_not_duplicated(outbox: Outbox) -> None:
    seizure, _, _ = _tree(outbox)
    server = Server()

    def accept_then_drop(request: httpx.Request) -> httpx.Response:
        server.accepted.setdefault(request.headers["Idempotency-Key"], json.loads(request.content))
        raise httpx.RemoteProtocolError("connection closed", request=request)

    server.script = [accept_then_drop]
    with client(outbox, server) as sync:
        assert sync.run(once=True).sent == 3
    keys = [r.headers["Idempotency-Key"] for r in server.requests]
    assert keys.count(seizure) == 2 and len(server.accepted) == 3


def test_the_clock_offset_comes_from_the_service_and_never_orders_anything(
    outbox: Outbox,
) -> None:
    # The station clock is three days slow and records were logged while it jumped back.
    records = [NewRecord("seizure", {"seized_at": f"2026-01-0{d}T00:00:00+00:00"}) for d in (5, 1)]
    first, second = (r.uuid for r in outbox.append(records))
    server_now = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)

    def dated(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            201,
            json={"id": request.headers["Idempotency-Key"]},
            headers={"Date": format_datetime(server_now, usegmt=True)},
        )

    server = Server()
    server.script = [dated, dated]
    skewed = lambda: server_now - timedelta(days=3)  # noqa: E731
    with client(outbox, server, clock=skewed) as sync:
        report = sync.run(once=True)
    assert [r.headers["Idempotency-Key"] for r in server.requests] == [first, second]
    assert report.clock_offset_s == 3 * 86400
    assert server.requests[0].headers["X-Device-Time"].startswith("2026-03-11")
    assert pending_summary(outbox)["clock_offset_s"] == 3 * 86400


def test_parallel_workers_send_each_record_once(outbox: Outbox) -> None:
    seizure = outbox.append([NewRecord("seizure", {})])[0].uuid
    item = outbox.append([NewRecord("item", {}, parent_uuid=seizure)])[0].uuid
    outbox.append([NewRecord("field_test", {"n": n}, parent_uuid=item) for n in range(40)])
    server = Server()
    with client(outbox, server, workers=4) as sync:
        assert sync.run(once=True).sent == 42
    keys = [r.headers["Idempotency-Key"] for r in server.requests]
    assert len(keys) == len(set(keys)) == 42


def test_backoff_grows_is_capped_and_jittered() -> None:
    backoff = Backoff(base_s=1.0, cap_s=8.0)
    rng = random.Random(3)
    delays = [backoff.delay(n, rng) for n in range(1, 8)]
    for n, d in enumerate(delays, start=1):
        step = min(8.0, 2 ** (n - 1))
        assert step / 2 <= d <= step
    assert len({round(d, 6) for d in delays[4:]}) > 1  # capped steps still differ (jitter)


def test_bad_configuration_and_odd_answers_are_clear(outbox: Outbox) -> None:
    with pytest.raises(StationError, match="device key"):
        SyncClient(outbox, "http://x", "")
    with pytest.raises(StationError, match="http"):
        SyncClient(outbox, "ftp://x", KEY)
    assert (
        refusal_reason(httpx.Response(400, text="<html>no</html>")) == "HTTP 400: <html>no</html>"
    )
    assert refusal_reason(httpx.Response(413, json={"detail": "too big"})) == "HTTP 413: too big"
    odd = outbox.append([NewRecord("mystery", {}), NewRecord("seizure", {})])
    server = Server()
    with client(outbox, server) as sync:
        report = sync.run(once=True)
    assert report.sent == 1 and report.refused == 1  # the odd one does not block the others
    assert "unknown record kind 'mystery'" in (outbox.get(odd[0].uuid).last_error or "")


def test_a_backlog_goes_in_one_request_per_level_with_every_record_answered(
    outbox: Outbox,
) -> None:
    seizure = outbox.append([NewRecord("seizure", {})])[0].uuid
    items = [r.uuid for r in outbox.append([NewRecord("item", {}, parent_uuid=seizure)] * 3)]
    outbox.append([NewRecord("field_test", {"n": n}, parent_uuid=items[n % 3]) for n in range(60)])
    server = Server()
    with client(outbox, server) as sync:
        report = sync.run(once=True)
    assert report.sent == 64 and report.last_error is None
    # Seizure, then its items, then the tests: three requests, not 64.
    assert [r.url.path for r in server.http] == ["/api/v1/sync/batch"] * 3
    assert [len(json.loads(r.content)["operations"]) for r in server.http] == [1, 3, 60]
    assert outbox.counts()[RecordStatus.SENT] == 64


def test_one_refused_record_in_a_batch_keeps_the_others(outbox: Outbox) -> None:
    seizure, item, test = _tree(outbox)
    bad, good = (
        r.uuid for r in outbox.append([NewRecord("field_test", {"n": n}, item) for n in (2, 3)])
    )
    server = Server()
    detail = [{"loc": ["body", "spectrum", "axis"], "msg": "too few points", "type": "x"}]
    original = server._one

    def one(request: httpx.Request) -> httpx.Response:
        if request.headers["Idempotency-Key"] == bad:
            server.requests.append(request)
            return httpx.Response(422, json={"detail": detail})
        return original(request)

    server._one = one  # type: ignore[method-assign]
    with client(outbox, server) as sync:
        report = sync.run(once=True)
    assert report.sent == 4 and report.refused == 1
    assert outbox.get(bad).last_error == "HTTP 422: spectrum.axis: too few points"
    assert {r.uuid for r in outbox.records(RecordStatus.SENT)} == {seizure, item, test, good}
    assert len(server.http) == 3  # the refusal cost no extra request


def test_a_batch_too_large_for_the_service_is_halved_until_the_culprit_is_alone(
    outbox: Outbox,
) -> None:
    seizure = outbox.append([NewRecord("seizure", {})])[0].uuid
    item = outbox.append([NewRecord("item", {}, parent_uuid=seizure)])[0].uuid
    tests = [
        r.uuid
        for r in outbox.append(
            [NewRecord("field_test", {"n": n, "big": n == 5}, parent_uuid=item) for n in range(8)]
        )
    ]
    server = Server()
    original = server.__call__

    def limited(request: httpx.Request) -> httpx.Response:
        batch = json.loads(request.content) if request.url.path == "/api/v1/sync/batch" else {}
        if any(op["body"].get("big") for op in batch.get("operations", [])):
            server.http.append(request)
            return httpx.Response(413, json={"detail": "request body larger than 8388608 bytes"})
        return original(request)

    sync = SyncClient(
        outbox, "http://service.test", KEY, transport=httpx.MockTransport(limited), sleep=print
    )
    with sync:
        report = sync.run(once=True)
    assert report.sent == 9 and report.refused == 1
    assert outbox.get(tests[5]).status is RecordStatus.REFUSED
    assert "HTTP 413" in (outbox.get(tests[5]).last_error or "")
    assert all(outbox.get(t).status is RecordStatus.SENT for t in tests if t != tests[5])
