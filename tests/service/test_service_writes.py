"""Idempotent POSTs, optimistic concurrency, four eyes, lab discrepancies, attachments, limits."""

from __future__ import annotations

import io
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from service.testing import field_test_payload, seizure_payload


def _item(api: Any, **fields: Any) -> dict[str, Any]:
    seizure = api.post("/seizures", json=seizure_payload()).json()
    body = {
        "description": "powder",
        "net_mass": 100.0,
        "mass_unit": "g",
        "substance": "cocaine HCl",
        **fields,
    }
    r = api.post(f"/seizures/{seizure['id']}/items", json=body)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def _audit_count(as_user: Any) -> int:
    return int(as_user("A", "supervisor").get("/audit/verify").json()["events_checked"])


def _events_since(as_user: Any, seq: int, entity_type: str) -> list[dict[str, Any]]:
    """Audit events of ``entity_type`` linked after ``seq`` (others, such as the links the
    correlation worker writes after a commit, come and go on their own schedule)."""
    _audit_count(as_user)  # links what is committed
    events = as_user("A", "supervisor").get(
        "/audit/events", params={"after_seq": seq, "limit": 1000}
    )
    return [e for e in events.json() if e["entity_type"] == entity_type]


def test_retry_with_the_same_key_returns_the_first_result(as_user: Any) -> None:
    api = as_user("A", "officer")
    key = str(uuid.uuid4())
    first = api.post("/seizures", json=seizure_payload(), headers={"Idempotency-Key": key})
    again = api.post("/seizures", json=seizure_payload(), headers={"Idempotency-Key": key})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    other = api.post(
        "/seizures", json=seizure_payload(place="elsewhere"), headers={"Idempotency-Key": key}
    )
    assert other.status_code == 422 and "Idempotency-Key" in other.text


def test_client_record_id_is_the_key_when_no_header(as_device: Any) -> None:
    station = as_device("A")
    record_id = str(uuid.uuid4())
    bodies = [station.post("/seizures", json=seizure_payload(id=record_id)) for _ in range(3)]
    assert [b.status_code for b in bodies] == [201, 201, 201]
    assert {b.json()["id"] for b in bodies} == {record_id}
    seizure = station.get(f"/seizures/{record_id}").json()
    assert seizure["version"] == 1


def test_concurrent_retries_create_exactly_one_record(as_device: Any, as_user: Any) -> None:
    station = as_device("A")
    item = _item(as_user("A", "officer"))
    body = field_test_payload(2048, id=str(uuid.uuid4()))
    before = _audit_count(as_user)
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(
            pool.map(
                lambda _: station.post(f"/items/{item['id']}/field-tests", json=body), range(6)
            )
        )
    assert [a.status_code for a in answers] == [201] * 6, [a.text[:200] for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    tests = station.get(f"/items/{item['id']}/field-tests").json()
    assert len(tests) == 1
    events = _events_since(as_user, before, "field_test")
    assert [(e["entity_id"], e["action"]) for e in events] == [(body["id"], "create")]


def test_a_failed_request_writes_nothing_and_frees_its_key(as_user: Any, world: Any) -> None:
    api = as_user("A", "officer")
    item = _item(api)
    before = _audit_count(as_user)
    key = str(uuid.uuid4())
    bad = field_test_payload(64, device_id=str(world.devices["B"]))  # another agency's device
    r = api.post(f"/items/{item['id']}/field-tests", json=bad, headers={"Idempotency-Key": key})
    assert r.status_code == 404
    assert _events_since(as_user, before, "field_test") == []
    assert api.get(f"/items/{item['id']}/field-tests").json() == []
    r = api.post(
        f"/items/{item['id']}/field-tests",
        json=field_test_payload(64),
        headers={"Idempotency-Key": key},
    )
    assert r.status_code == 201


def test_if_match_is_required_and_stale_writes_get_412(as_user: Any) -> None:
    api = as_user("A", "officer")
    seizure = api.post("/seizures", json=seizure_payload()).json()
    path = f"/seizures/{seizure['id']}"
    change = {"status": "under_review", "reason": "sent for review"}
    assert api.patch(path, json=change).status_code == 428
    r = api.patch(path, json=change, headers={"If-Match": '"1"'})
    assert (
        r.status_code == 200 and r.headers["ETag"] == '"2"' and r.json()["status"] == "under_review"
    )
    stale = api.patch(path, json={"status": "closed", "reason": "x"}, headers={"If-Match": '"1"'})
    assert stale.status_code == 412
    assert api.get(path).json()["status"] == "under_review"
    assert (
        api.patch(path, json={"status": "closed"}, headers={"If-Match": '"2"'}).status_code == 422
    )  # reason missing
    assert (
        api.patch(
            path, json={"country": None, "reason": "x"}, headers={"If-Match": '"2"'}
        ).status_code
        == 422
    )


def test_mass_change_needs_a_second_supervisor(as_user: Any) -> None:
    officer, sup, sup2 = (
        as_user("A", "officer"),
        as_user("A", "supervisor"),
        as_user("A", "supervisor2"),
    )
    item = _item(officer)
    path = f"/items/{item['id']}"
    r = officer.patch(
        path, json={"net_mass": 90.0, "reason": "re-weighed"}, headers={"If-Match": '"1"'}
    )
    assert r.status_code == 202, r.text
    approval = r.json()
    assert approval["status"] == "pending" and approval["payload"] == {"net_mass": 90.0}
    assert officer.get(path).json()["net_mass"] == 100.0  # not applied yet
    decision = f"/approvals/{approval['id']}/decision"
    assert sup.post(decision, json={"approve": True}).status_code == 200
    after = officer.get(path).json()
    assert after["net_mass"] == 90.0 and after["version"] == 2
    assert sup.post(decision, json={"approve": True}).status_code == 409  # decided already
    history = officer.get(f"/history/item/{item['id']}").json()
    assert "re-weighed" in history[-1]["reason"]
    # A supervisor's own request needs another supervisor.
    r = sup.patch(
        path, json={"substance": "lidocaine", "reason": "lab says so"}, headers={"If-Match": '"2"'}
    )
    assert r.status_code == 202
    own = f"/approvals/{r.json()['id']}/decision"
    assert sup.post(own, json={"approve": True}).status_code == 403
    assert (
        sup2.post(own, json={"approve": False, "reason": "no lab report"}).json()["status"]
        == "rejected"
    )
    assert officer.get(path).json()["substance"] == "cocaine HCl"
    # A description edit needs no approval.
    assert (
        officer.patch(
            path,
            json={"description": "white powder", "reason": "clarity"},
            headers={"If-Match": '"2"'},
        ).status_code
        == 200
    )


def test_destruction_needs_approval(as_user: Any) -> None:
    officer, sup = as_user("A", "officer"), as_user("A", "supervisor")
    item = _item(officer)
    path = f"/items/{item['id']}/custody-events"
    event = {"kind": "destroyed", "occurred_at": "2026-05-01T10:00:00Z", "place": "incinerator"}
    assert officer.post(path, json=event).status_code == 422  # a reason is required
    r = officer.post(path, json={**event, "reason": "court order 12/2026"})
    assert r.status_code == 202 and r.json()["action"] == "custody_destroyed"
    assert officer.get(path).json() == []
    approved = sup.post(f"/approvals/{r.json()['id']}/decision", json={"approve": True}).json()
    timeline = officer.get(path).json()
    assert [e["kind"] for e in timeline] == ["destroyed"] and timeline[0]["id"] == approved[
        "result_entity_id"
    ]


def test_stale_approval_is_refused(as_user: Any) -> None:
    officer, sup = as_user("A", "officer"), as_user("A", "supervisor")
    item = _item(officer)
    path = f"/items/{item['id']}"
    r = officer.patch(path, json={"net_mass": 50.0, "reason": "a"}, headers={"If-Match": '"1"'})
    officer.patch(
        path, json={"description": "changed meanwhile", "reason": "b"}, headers={"If-Match": '"1"'}
    )
    assert (
        sup.post(f"/approvals/{r.json()['id']}/decision", json={"approve": True}).status_code == 412
    )
    assert officer.get(path).json()["net_mass"] == 100.0


def test_lab_result_discrepancies(as_user: Any) -> None:
    officer, analyst = as_user("A", "officer"), as_user("A", "analyst")
    item = _item(officer, net_mass=0.1, mass_unit="kg")
    lab = {
        "method": "gc_ms",
        "substance": "Cocaine HCl",
        "purity_percent": 71.5,
        "net_mass": 97.0,
        "mass_unit": "g",
        "analysed_at": "2026-03-20T00:00:00Z",
        "laboratory": "National lab",
    }
    assert analyst.post(f"/items/{item['id']}/lab-results", json=lab).status_code == 201
    [d] = officer.get(f"/items/{item['id']}/discrepancies").json()
    assert d["identity_differs"] is False and abs(d["mass_loss_percent"] - 3.0) < 1e-9
    assert d["mass_lost_beyond_tolerance"] is False
    lab2 = {**lab, "substance": "lidocaine", "net_mass": 80.0}
    analyst.post(f"/items/{item['id']}/lab-results", json=lab2)
    flagged = [x for x in officer.get("/discrepancies").json() if x["item_id"] == item["id"]]
    assert (
        len(flagged) == 1
        and flagged[0]["identity_differs"]
        and flagged[0]["mass_lost_beyond_tolerance"]
    )
    bad = {**lab, "purity_percent": 140}
    r = analyst.post(f"/items/{item['id']}/lab-results", json=bad)
    assert r.status_code == 422 and "purity_percent" in r.text


def test_attachments_are_content_addressed(as_user: Any) -> None:
    import hashlib

    api = as_user("A", "officer")
    item = _item(api)
    photo = b"\xff\xd8\xff" + bytes(range(256)) * 10
    path = f"/items/{item['id']}/attachments"
    one = api.post(path, files={"file": ("a.jpg", io.BytesIO(photo), "image/jpeg")}).json()
    two = api.post(path, files={"file": ("copy.jpg", io.BytesIO(photo), "image/jpeg")}).json()
    assert one["sha256"] == two["sha256"] == hashlib.sha256(photo).hexdigest()
    assert one["id"] != two["id"]
    content = api.get(f"/attachments/{one['id']}/content")
    assert content.content == photo and content.headers["content-type"] == "image/jpeg"
    assert (
        api.post(path, files={"file": ("empty.jpg", io.BytesIO(b""), "image/jpeg")}).status_code
        == 422
    )
    attachment_id = str(uuid.uuid4())
    first = api.post(
        path, files={"file": ("b.jpg", io.BytesIO(b"x"), "image/jpeg")}, data={"id": attachment_id}
    )
    again = api.post(
        path, files={"file": ("b.jpg", io.BytesIO(b"x"), "image/jpeg")}, data={"id": attachment_id}
    )
    assert first.json() == again.json() and first.json()["id"] == attachment_id
    assert len(api.get(path).json()) == 3


def test_oversize_body_gets_413(as_user: Any, settings: Any) -> None:
    api = as_user("A", "officer")
    big = b"{" + b" " * (settings.max_body_bytes + 10) + b"}"
    r = api.post("/seizures", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413


def test_unknown_enum_and_bad_country_are_422(as_user: Any) -> None:
    api = as_user("A", "officer")
    for bad in (
        {"transport_mode": "teleport"},
        {"country": "Peru"},
        {"transit_countries": ["br"]},
        {"latitude": 91},
    ):
        r = api.post("/seizures", json=seizure_payload(**bad))
        assert r.status_code == 422, bad
        assert r.json()["detail"][0]["loc"][1] == next(iter(bad))


def test_reused_record_id_is_refused_without_leaking(as_user: Any) -> None:
    record_id = str(uuid.uuid4())
    a, b = as_user("A", "officer"), as_user("B", "officer")
    assert a.post("/seizures", json=seizure_payload(id=record_id)).status_code == 201
    changed = a.post("/seizures", json=seizure_payload(id=record_id, place="other"))
    assert changed.status_code == 422 and "Idempotency-Key" in changed.text
    other = b.post("/seizures", json=seizure_payload(id=record_id))
    assert other.status_code == 409 and "exists already" in other.text
    assert "Jorge" not in other.text and "duplicate key" not in other.text
    assert b.get(f"/seizures/{record_id}").status_code == 404


def test_the_device_key_cache_expires_and_forgets_on_revocation() -> None:
    from service.core.authcache import TtlCache

    cache: TtlCache[str] = TtlCache(ttl_s=2.0, max_entries=2)
    cache.put("k1", "p1", now=100.0)
    assert cache.get("k1", now=101.9) == "p1"
    assert cache.get("k1", now=102.0) is None  # expired: the database is asked again
    generation = cache.generation()
    cache.clear()  # a revocation while a lookup ran: that lookup's answer is not kept
    cache.put("k1", "p1", generation=generation, now=100.0)
    assert cache.get("k1", now=100.0) is None
    for n in range(3):  # full: starts over rather than growing
        cache.put(f"k{n}", "p", now=100.0)
    assert len(cache._entries) <= 2 and "k2" not in str(cache._entries)  # secrets kept hashed


def test_a_key_revoked_by_another_process_is_refused_within_the_cache_bound(
    app_client: Any, as_user: Any, world: Any, settings: Any, monkeypatch: Any
) -> None:
    import time

    from sqlmodel import Session

    from service import crud
    from service.core import authcache
    from service.core.db import make_engine
    from service.principal import SYSTEM

    monkeypatch.setattr(authcache.device_keys, "ttl_s", 0.2)
    made = as_user("A", "admin").post(f"/devices/{world.devices['A']}/keys", json={"label": "x"})
    key = {"X-Device-Key": made.json()["key"]}
    assert app_client.get("/api/v1/seizures", headers=key).status_code == 200  # now cached
    # Another process (the CLI, another instance) cannot empty this process's cache.
    monkeypatch.setattr(authcache.device_keys, "clear", lambda: None)
    engine = make_engine(settings.sqlalchemy_url)
    try:
        with Session(engine) as session:
            crud.revoke_device_key(
                session=session, actor=SYSTEM, key_id=uuid.UUID(made.json()["id"])
            )
            session.commit()
    finally:
        engine.dispose()
    time.sleep(0.25)  # the bound (TTL), shortened for the test
    r = app_client.get("/api/v1/seizures", headers=key)
    assert r.status_code == 401 and "revoked" in r.text
