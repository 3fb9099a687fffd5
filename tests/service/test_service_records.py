"""Seizures, items, field tests and custody over HTTP, on every configured database."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

import numpy as np

from service.testing import field_test_payload, seizure_payload


def _new_seizure(api: Any, **overrides: object) -> dict[str, Any]:
    r = api.post("/seizures", json=seizure_payload(**overrides))
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def _new_item(api: Any, seizure_id: str, **overrides: object) -> dict[str, Any]:
    body = {
        "description": "brick wrapped in tape",
        "packaging": "plastic film",
        "gross_mass": 1.2,
        "net_mass": 1.05,
        "mass_unit": "kg",
        "unit_count": 1,
        **overrides,
    }
    r = api.post(f"/seizures/{seizure_id}/items", json=body)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def test_seizure_round_trip_keeps_every_reporting_field(as_user: Any) -> None:
    api = as_user("A", "officer")
    created = _new_seizure(api)
    r = api.get(f"/seizures/{created['id']}")
    assert r.status_code == 200
    assert r.headers["ETag"] == '"1"'
    got = r.json()
    for key, value in seizure_payload().items():
        if key == "seized_at":
            assert got[key].startswith("2026-03-14T08:30:00")
        elif key in ("persons", "companies"):
            assert [{k: v for k, v in p.items() if v is not None} for p in got[key]] == value
        else:
            assert got[key] == value, key
    assert got["status"] == "open" and got["version"] == 1


def test_field_test_spectrum_is_stored_losslessly(as_user: Any) -> None:
    api = as_user("A", "officer")
    seizure = _new_seizure(api)
    item = _new_item(api, seizure["id"])
    body = field_test_payload(2048, seed=3)
    r = api.post(f"/items/{item['id']}/field-tests", json=body)
    assert r.status_code == 201, r.text
    created = r.json()
    sent = body["spectrum"]
    expected = hashlib.sha256(
        np.asarray(sent["axis"], "<f8").tobytes() + np.asarray(sent["intensities"], "<f8").tobytes()  # type: ignore[index]
    ).hexdigest()
    assert created["spectrum_sha256"] == expected
    got = api.get(f"/field-tests/{created['id']}").json()
    back = np.asarray(got["spectrum"]["intensities"], "<f8").tobytes()
    assert back == np.asarray(sent["intensities"], "<f8").tobytes()  # type: ignore[index]
    assert got["spectrum"]["axis"] == sent["axis"]  # type: ignore[index]
    # The identification comes back exactly as the matcher gave it, extra keys included.
    assert got["identification"] == body["identification"]
    assert json.dumps(got["identification"]) == json.dumps(body["identification"])
    assert got["verdict"] == "mixture" and got["main_substance"] == "cocaine HCl"
    assert got["operator_id"] is not None  # defaults to the logged-in officer


def test_bad_spectra_are_refused_with_field_messages(as_user: Any) -> None:
    api = as_user("A", "officer")
    item = _new_item(api, _new_seizure(api)["id"])
    path = f"/items/{item['id']}/field-tests"
    good = field_test_payload(64)
    cases = []
    nan = json.loads(json.dumps(good))
    nan["spectrum"]["intensities"][5] = float("nan")
    cases.append((nan, "finite"))
    short = json.loads(json.dumps(good))
    short["spectrum"]["intensities"] = short["spectrum"]["intensities"][:-1]
    cases.append((short, "63"))
    huge = field_test_payload(65_537)
    cases.append((huge, "65536"))
    bad_verdict = json.loads(json.dumps(good))
    bad_verdict["identification"]["verdict"] = "probably"
    cases.append((bad_verdict, "verdict"))
    for body, needle in cases:
        content = json.dumps(body, allow_nan=True)
        r = api.post(path, content=content, headers={"Content-Type": "application/json"})
        assert r.status_code == 422, (needle, r.text[:300])
        assert needle in r.text
        assert isinstance(r.json()["detail"], list) and r.json()["detail"][0]["loc"]
    assert api.get(f"/items/{item['id']}/field-tests").json() == []  # nothing half-written


def test_device_key_logs_a_whole_scan(as_device: Any, world: Any) -> None:
    station = as_device("A")
    seizure = _new_seizure(station)
    assert seizure["created_by_device_id"] == str(world.devices["A"])
    item = _new_item(station, seizure["id"])
    r = station.post(f"/items/{item['id']}/field-tests", json=field_test_payload(256))
    assert r.status_code == 201, r.text
    assert r.json()["device_id"] == str(world.devices["A"])
    r = station.post(
        f"/items/{item['id']}/custody-events",
        json={"kind": "sealed", "occurred_at": "2026-03-14T09:00:00Z", "seal_number": "S-0001"},
    )
    assert r.status_code == 201, r.text


def test_unknown_or_revoked_device_key_is_refused(
    app_client: Any, as_user: Any, world: Any
) -> None:
    r = app_client.get("/api/v1/seizures", headers={"X-Device-Key": "fsdk_not-a-key"})
    assert r.status_code == 401 and "unknown device key" in r.text
    admin = as_user("A", "admin")
    device_id = world.devices["A"]
    made = admin.post(f"/devices/{device_id}/keys", json={"label": "spare"})
    assert made.status_code == 201, made.text
    key = made.json()["key"]
    assert app_client.get("/api/v1/seizures", headers={"X-Device-Key": key}).status_code == 200
    revoked = admin.post(f"/devices/{device_id}/keys/{made.json()['id']}/revoke")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    r = app_client.get("/api/v1/seizures", headers={"X-Device-Key": key})
    assert r.status_code == 401 and "revoked" in r.text


def test_custody_timeline_in_order_and_validated(as_user: Any) -> None:
    api = as_user("A", "officer")
    item = _new_item(api, _new_seizure(api)["id"])
    path = f"/items/{item['id']}/custody-events"
    events = [
        {
            "kind": "handed_over",
            "occurred_at": "2026-03-14T10:00:00Z",
            "from_party": "Officer X",
            "to_party": "Evidence room",
        },
        {"kind": "sealed", "occurred_at": "2026-03-14T09:00:00Z", "seal_number": "S-42"},
        {
            "kind": "transferred_to_lab",
            "occurred_at": "2026-03-15T09:00:00Z",
            "from_party": "Evidence room",
            "to_party": "National lab",
        },
    ]
    for event in events:
        assert api.post(path, json=event).status_code == 201
    timeline = api.get(path).json()
    assert [e["kind"] for e in timeline] == ["sealed", "handed_over", "transferred_to_lab"]
    r = api.post(path, json={"kind": "sealed", "occurred_at": "2026-03-14T09:00:00Z"})
    assert r.status_code == 422 and "seal_number" in r.text
    r = api.post(path, json={"kind": "teleported", "occurred_at": "2026-03-14T09:00:00Z"})
    assert r.status_code == 422 and "kind" in r.text


def test_filters_and_text_search(as_user: Any) -> None:
    api = as_user("A", "investigator")
    marker = uuid.uuid4().hex[:10]
    sea = _new_seizure(
        api,
        transport_mode="sea",
        country="EC",
        seized_at="2025-01-02T00:00:00Z",
        narrative=f"container {marker} reefer bananas",
        status="awaiting_lab",
    )
    road = _new_seizure(
        api,
        transport_mode="road",
        country="EC",
        seized_at="2025-01-05T00:00:00Z",
        narrative="truck",
    )
    item = _new_item(
        api, road["id"], description=f"tablets stamped {marker.upper()}", substance="MDMA"
    )

    def ids(**params: object) -> set[str]:
        r = api.get("/seizures", params={"limit": 500, **params})
        assert r.status_code == 200, r.text
        return {s["id"] for s in r.json()["data"]}

    assert ids(q=marker) == {sea["id"], road["id"]}  # narrative and item description, any case
    assert ids(q=marker, transport_mode="sea") == {sea["id"]}
    assert ids(q=marker, status="awaiting_lab") == {sea["id"]}
    assert ids(q=marker, date_from="2025-01-03T00:00:00Z") == {road["id"]}
    assert ids(q=marker, date_to="2025-01-03T00:00:00Z") == {sea["id"]}
    assert ids(q=marker, substance="mdma") == {road["id"]}
    assert ids(q=marker, country="ec") == {sea["id"], road["id"]}
    assert ids(q="%_") == set()  # wildcards are matched literally
    assert ids(q=marker, verdict="mixture") == set()
    api.post(f"/items/{item['id']}/field-tests", json=field_test_payload(64))
    assert ids(q=marker, verdict="mixture") == {road["id"]}
    assert api.get("/seizures", params={"transport_mode": "bicycle"}).status_code == 422
    page = api.get("/seizures", params={"q": marker, "limit": 1}).json()
    assert len(page["data"]) == 1 and page["has_more"] is True


def test_search_over_several_tables_pages_without_gaps_or_repeats(as_user: Any) -> None:
    """Substance and text match in more than one table; every page is cut from the union."""
    api = as_user("A", "investigator")
    marker = uuid.uuid4().hex[:10]
    substance = f"subst-{marker}"
    component = {"name": substance.upper(), "fraction": 1.0}
    ident = {**field_test_payload(64)["identification"], "components": [component]}  # type: ignore[dict-item]
    expected_q, expected_substance, expected_both = [], [], []
    for day in range(1, 9):
        narrative = f"case {marker}" if day % 2 else "nothing to see"
        s = _new_seizure(api, seized_at=f"2024-02-{day:02d}T00:00:00Z", narrative=narrative)
        by_description = day % 3 == 0
        by_item_substance = day in (2, 3, 5)
        item = _new_item(
            api,
            s["id"],
            description=f"bag {marker}" if by_description else "bag",
            substance=substance if by_item_substance else None,
        )
        by_field_test = day in (5, 6, 8)
        if by_field_test:
            r = api.post(
                f"/items/{item['id']}/field-tests",
                json=field_test_payload(64, identification=ident),
            )
            assert r.status_code == 201, r.text
        text_hit = day % 2 == 1 or by_description
        substance_hit = by_item_substance or by_field_test
        if text_hit:
            expected_q.append(s["id"])
        if substance_hit:
            expected_substance.append(s["id"])
        if text_hit and substance_hit:
            expected_both.append(s["id"])

    def pages(**params: object) -> list[str]:
        got: list[str] = []
        skip = 0
        while True:
            r = api.get("/seizures", params={"limit": 2, "skip": skip, **params})
            assert r.status_code == 200, r.text
            body = r.json()
            got += [row["id"] for row in body["data"]]
            skip += 2
            if not body["has_more"]:
                return got

    # Newest first, every match once, whichever table matched (and both at once).
    assert pages(q=marker) == expected_q[::-1]
    assert pages(substance=substance) == expected_substance[::-1]
    assert pages(q=marker, substance=substance.upper()) == expected_both[::-1]
    assert pages(q=marker, substance="no such substance") == []


def test_openapi_is_complete(app_client: Any) -> None:
    spec = app_client.get("/api/v1/openapi.json").json()
    paths = spec["paths"]
    for path in (
        "/api/v1/seizures",
        "/api/v1/items/{item_id}/field-tests",
        "/api/v1/audit/verify",
        "/api/v1/approvals/{approval_id}/decision",
    ):
        assert path in paths
    assert "FieldTestCreate" in spec["components"]["schemas"]
