"""``POST /sync/batch``: one transaction, one answer per record, exactly once with single POSTs."""

from __future__ import annotations

import uuid
from typing import Any

from service.api.routes.sync import MAX_OPERATIONS, MAX_REDOS
from service.testing import field_test_payload, seizure_payload

SEALED = {"kind": "sealed", "occurred_at": "2026-03-14T09:00:00Z", "seal_number": "S-1"}


def _ops(*ops: tuple[str, str, str | None, dict[str, Any]]) -> dict[str, Any]:
    return {
        "operations": [
            {"kind": kind, "key": key, "parent_id": parent, "body": {**body, "id": key}}
            for kind, key, parent, body in ops
        ]
    }


def _ids(n: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(n)]


def _versions(as_user: Any, entity_type: str, entity_id: str) -> int:
    """How many versions the history holds (0 when the record was never written)."""
    r = as_user("A", "supervisor").get(f"/history/{entity_type}/{entity_id}")
    return 0 if r.status_code == 404 else len(r.json())


def _verified(as_user: Any) -> None:
    report = as_user("A", "supervisor").get("/audit/verify").json()
    assert report["ok"], report["problems"][:3]


def test_a_whole_tree_in_one_batch_parents_first(as_device: Any, as_user: Any) -> None:
    station = as_device("A")
    seizure, item, test, event = _ids(4)
    r = station.post(
        "/sync/batch",
        json=_ops(
            ("seizure", seizure, None, seizure_payload()),
            ("item", item, seizure, {"description": "brick"}),
            ("field_test", test, item, field_test_payload(256)),
            (
                "custody_event",
                event,
                item,
                {"kind": "sealed", "occurred_at": "2026-03-14T09:00:00Z", "seal_number": "S-9"},
            ),
        ),
    )
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["key"] for x in results] == [seizure, item, test, event]
    assert [x["outcome"] for x in results] == ["created"] * 4
    assert [x["status_code"] for x in results] == [201] * 4
    assert results[2]["body"]["id"] == test and results[2]["body"]["spectrum"] is None
    assert station.get(f"/field-tests/{test}").json()["spectrum"]["axis"][:2] == [
        200.0,
        200.0 + 1800.0 / 255,
    ]
    assert station.get(f"/items/{item}/custody-events").json()[0]["seal_number"] == "S-9"
    assert as_user("A", "supervisor").get(f"/history/field_test/{test}").json()[0]["version"] == 1


def test_duplicates_answer_the_first_result_whether_sent_singly_or_in_a_batch(
    as_device: Any, as_user: Any
) -> None:
    station = as_device("A")
    seizure, item = _ids(2)
    single = station.post("/seizures", json=seizure_payload(id=seizure))
    assert single.status_code == 201
    batch = _ops(
        ("seizure", seizure, None, seizure_payload()),
        ("item", item, seizure, {"description": "bag"}),
    )
    first = station.post("/sync/batch", json=batch).json()["results"]
    assert [x["outcome"] for x in first] == ["duplicate", "created"]
    assert first[0]["body"] == single.json() and first[0]["status_code"] == 201
    again = station.post("/sync/batch", json=batch).json()["results"]
    assert [x["outcome"] for x in again] == ["duplicate", "duplicate"]
    assert again[1]["body"] == first[1]["body"]
    # A single POST of what a batch created is a replay too.
    replay = station.post(f"/seizures/{seizure}/items", json={"description": "bag", "id": item})
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == first[1]["body"]
    assert len(station.get(f"/seizures/{seizure}/items").json()) == 1
    assert _versions(as_user, "seizure", seizure) == 1  # written once, by the single POST
    assert _versions(as_user, "item", item) == 1
    _verified(as_user)


def test_the_same_key_with_other_content_is_refused(as_device: Any) -> None:
    station = as_device("A")
    (seizure,) = _ids(1)
    station.post("/sync/batch", json=_ops(("seizure", seizure, None, seizure_payload())))
    other = _ops(("seizure", seizure, None, seizure_payload(place="elsewhere")))
    result = station.post("/sync/batch", json=other).json()["results"][0]
    assert result["outcome"] == "refused" and result["status_code"] == 422
    assert result["body"]["detail"][0]["type"] == "idempotency_key_reused"
    assert station.get(f"/seizures/{seizure}").json()["place"] == seizure_payload()["place"]


def test_a_refused_operation_loses_nothing_else(as_device: Any, as_user: Any) -> None:
    station = as_device("A")
    seizure, bad_item, good_item, bad_test, good_test, orphan = _ids(6)
    r = station.post(
        "/sync/batch",
        json=_ops(
            ("seizure", seizure, None, seizure_payload()),
            ("item", bad_item, seizure, {"description": ""}),  # pydantic refuses it
            ("item", good_item, seizure, {"description": "powder"}),
            ("field_test", bad_test, good_item, field_test_payload(64, latitude=123.0)),
            ("field_test", good_test, good_item, field_test_payload(64)),
            ("custody_event", orphan, str(uuid.uuid4()), SEALED),  # no such item
        ),
    )
    assert r.status_code == 200, r.text
    results = {x["key"]: x for x in r.json()["results"]}
    assert [results[k]["outcome"] for k in (seizure, good_item, good_test)] == ["created"] * 3
    assert results[bad_item]["status_code"] == 422
    assert results[bad_item]["body"]["detail"][0]["loc"] == ["body", "description"]
    assert results[bad_test]["status_code"] == 422
    assert results[bad_test]["body"]["detail"][0]["loc"] == ["body", "latitude"]
    assert (
        results[orphan]["status_code"] == 404 and "not found" in results[orphan]["body"]["detail"]
    )
    assert [i["id"] for i in station.get(f"/seizures/{seizure}/items").json()] == [good_item]
    written = {"seizure": [seizure], "item": [good_item, bad_item], "field_test": [good_test]}
    assert [_versions(as_user, t, i) for t, ids in written.items() for i in ids] == [1, 1, 0, 1]
    assert _versions(as_user, "field_test", bad_test) == 0
    assert _versions(as_user, "custody_event", orphan) == 0
    _verified(as_user)
    # A refused record's key is free: corrected, it goes through.
    fixed = station.post(
        "/sync/batch", json=_ops(("item", bad_item, seizure, {"description": "fixed"}))
    ).json()["results"][0]
    assert fixed["outcome"] == "created"


def test_a_database_refusal_is_rolled_back_alone(as_device: Any) -> None:
    station = as_device("A")
    seizure, clash, item = _ids(3)
    station.post("/sync/batch", json=_ops(("seizure", seizure, None, seizure_payload())))
    # Same record id as the seizure above, under another key: the database refuses it.
    r = station.post(
        "/sync/batch",
        json={
            "operations": [
                {"kind": "seizure", "key": clash, "body": {**seizure_payload(), "id": seizure}},
                {"kind": "item", "key": item, "parent_id": seizure, "body": {"description": "x"}},
            ]
        },
    )
    assert [(x["outcome"], x["status_code"]) for x in r.json()["results"]] == [
        ("refused", 409),
        ("created", 201),
    ]


def test_many_database_refusals_fall_back_to_savepoints_and_keep_the_rest(
    as_device: Any,
) -> None:
    station = as_device("A")
    taken = _ids(MAX_REDOS + 2)
    station.post(
        "/sync/batch", json=_ops(*[("seizure", k, None, seizure_payload()) for k in taken])
    )
    clashes = _ids(len(taken))
    good = _ids(3)
    ops = []
    for clash, existing, fine in zip(clashes, taken, [*good, None, None], strict=False):
        ops.append({"kind": "seizure", "key": clash, "body": {**seizure_payload(), "id": existing}})
        if fine:
            ops.append({"kind": "seizure", "key": fine, "body": {**seizure_payload(), "id": fine}})
    results = {
        x["key"]: x for x in station.post("/sync/batch", json={"operations": ops}).json()["results"]
    }
    assert {results[k]["status_code"] for k in clashes} == {409}
    assert [results[k]["outcome"] for k in good] == ["created"] * 3
    assert all(station.get(f"/seizures/{k}").status_code == 200 for k in good)


def test_a_refusal_after_writing_is_undone_by_redoing_the_batch_without_it(
    as_device: Any, monkeypatch: Any
) -> None:
    from service import crud
    from service.errors import InvalidInputError

    station = as_device("A")
    seizure, doomed, kept = _ids(3)
    station.post("/sync/batch", json=_ops(("seizure", seizure, None, seizure_payload())))
    original = crud.create_item

    def create_item(**kw: Any) -> Any:
        item = original(**kw)  # written (row, version, audit event) ...
        if item.description == "doomed":  # ... then refused
            raise InvalidInputError("description", "refused after writing")
        return item

    monkeypatch.setattr(crud, "create_item", create_item)
    r = station.post(
        "/sync/batch",
        json=_ops(
            ("item", doomed, seizure, {"description": "doomed"}),
            ("item", kept, seizure, {"description": "kept"}),
        ),
    )
    assert [(x["outcome"], x["status_code"]) for x in r.json()["results"]] == [
        ("refused", 422),
        ("created", 201),
    ]
    assert [i["id"] for i in station.get(f"/seizures/{seizure}/items").json()] == [kept]


def test_another_agencys_records_are_not_found_and_cannot_be_written(
    as_device: Any, as_user: Any
) -> None:
    seizure_b = as_device("B").post("/seizures", json=seizure_payload()).json()["id"]
    item_b = (
        as_device("B").post(f"/seizures/{seizure_b}/items", json={"description": "b"}).json()["id"]
    )
    item, test = _ids(2)
    r = as_device("A").post(
        "/sync/batch",
        json=_ops(
            ("item", item, seizure_b, {"description": "into B's seizure"}),
            ("field_test", test, item_b, field_test_payload(64)),
        ),
    )
    assert [(x["outcome"], x["status_code"]) for x in r.json()["results"]] == [
        ("refused", 404),
        ("refused", 404),
    ]
    assert len(as_device("B").get(f"/seizures/{seizure_b}/items").json()) == 1
    # An analyst may not record seizures: refused per operation with 403.
    (key,) = _ids(1)
    r = as_user("A", "analyst").post(
        "/sync/batch", json=_ops(("seizure", key, None, seizure_payload()))
    )
    assert r.json()["results"][0]["status_code"] == 403


def test_unauthorised_malformed_and_oversize_batches_are_refused_whole(
    app_client: Any, as_device: Any, settings: Any
) -> None:
    (key,) = _ids(1)
    batch = _ops(("seizure", key, None, seizure_payload()))
    assert app_client.post("/api/v1/sync/batch", json=batch).status_code == 401
    bad_key = {"X-Device-Key": "fsdk_not-a-key"}
    assert app_client.post("/api/v1/sync/batch", json=batch, headers=bad_key).status_code == 401
    station = as_device("A")
    assert station.get(f"/seizures/{key}").status_code == 404
    too_many = _ops(*[("seizure", k, None, seizure_payload()) for k in _ids(MAX_OPERATIONS + 1)])
    r = station.post("/sync/batch", json=too_many)
    assert r.status_code == 422 and "operations" in r.text
    assert station.post("/sync/batch", json={"operations": []}).status_code == 422
    unknown = {"operations": [{"kind": "lab_result", "key": key, "body": {}}]}
    assert station.post("/sync/batch", json=unknown).status_code == 422
    huge = _ops(*[("field_test", k, key, field_test_payload(4096)) for k in _ids(60)])
    r = station.post("/sync/batch", json=huge)  # ~10 MB: over the body limit
    assert r.status_code == 413
    assert station.get(f"/seizures/{key}").status_code == 404
