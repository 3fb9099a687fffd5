"""Cases (issue 8) over HTTP on every configured database: roles, sharing per endpoint,
versions and audit, idempotency, stale writes and bad input; and the pure case graph."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session

from service import audit
from service.cases.graph import (
    Attribute,
    LinkFacts,
    SeizureFacts,
    build_case_graph,
    layout,
    seizure_attributes,
)
from service.models import AuditVerifyReport
from service.testing import World, seed_world, seizure_payload

# --------------------------------------------------------------------------- helpers


class Api:
    """A logged-in client of ``/api/v1`` (what the ``as_user`` fixture hands out)."""

    def __init__(self, client: Any, headers: dict[str, str]) -> None:
        self.client = client
        self.headers = headers

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get(
            "/api/v1" + path, headers={**self.headers, **kw.pop("headers", {})}, **kw
        )

    def post(self, path: str, **kw: Any) -> Any:
        return self.client.post(
            "/api/v1" + path, headers={**self.headers, **kw.pop("headers", {})}, **kw
        )

    def patch(self, path: str, **kw: Any) -> Any:
        return self.client.patch(
            "/api/v1" + path, headers={**self.headers, **kw.pop("headers", {})}, **kw
        )


def login(client: Any, username: str, password: str) -> Api:
    r = client.post("/api/v1/login/access-token", data={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return Api(client, {"Authorization": f"Bearer {r.json()['access_token']}"})


def _case(api: Api, **overrides: object) -> dict[str, Any]:
    body: dict[str, object] = {
        "title": "Operation Andes",
        "reference": f"CASE-{uuid.uuid4().hex[:8]}",
        "summary": "Cocaine by air freight through Lima.",
        **overrides,
    }
    r = api.post("/cases", json=body)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def _seizure(api: Api, **overrides: object) -> dict[str, Any]:
    r = api.post("/seizures", json=seizure_payload(**overrides))
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def third(settings: Any, app_client: Any, world: World) -> World:
    """Two more agencies (C, D): neither named as a partner anywhere."""
    return seed_world(settings)


@pytest.fixture(scope="module")
def as_third(app_client: Any, third: World) -> Any:
    cache: dict[str, Api] = {}

    def get(role: str) -> Api:
        if role not in cache:
            cache[role] = login(app_client, third.users["A"][role], third.password)
        return cache[role]

    return get


@pytest.fixture(scope="module")
def ids(as_user: Any) -> dict[str, str]:
    """User ids of agency A's people, by role."""
    return {role: _user_id_of(as_user, role) for role in ("officer", "investigator", "analyst")}


def _user_id_of(as_user: Any, role: str) -> str:
    # Users list is for admins of the agency; ids are read from there.
    users = as_user("A", "admin").get("/users").json()
    names = {u["role"]: u["id"] for u in users if u["username"].startswith(f"a_{role}_")}
    return str(names[role])


# ------------------------------------------------------------------ create, update, history


def test_case_round_trip_versions_and_history(as_user: Any, ids: dict[str, str]) -> None:
    api = as_user("A", "investigator")
    case = _case(api, lead_investigator_id=ids["investigator"])
    assert case["version"] == 1 and case["status"] == "open" and case["sharing"] == "own"
    r = api.get(f"/cases/{case['id']}")
    assert r.status_code == 200 and r.headers["ETag"] == '"1"'
    r = api.patch(
        f"/cases/{case['id']}",
        json={"status": "suspended", "reason": "awaiting MLA reply"},
        headers={"If-Match": '"1"'},
    )
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2 and r.headers["ETag"] == '"2"'
    note = api.post(f"/cases/{case['id']}/notes", json={"text": "Bank reply expected."}).json()
    r = api.patch(
        f"/case-notes/{note['id']}",
        json={"text": "Bank reply expected on Monday.", "reason": "date added"},
        headers={"If-Match": '"1"'},
    )
    assert r.status_code == 200 and r.json()["version"] == 2
    history = api.get(f"/cases/{case['id']}/history").json()
    case_versions = [(v["version"], v["reason"]) for v in history if v["entity_type"] == "case"]
    assert case_versions == [(1, None), (2, "awaiting MLA reply")]
    note_versions = [v for v in history if v["entity_type"] == "case_note"]
    assert [v["data"]["text"] for v in note_versions] == [
        "Bank reply expected.",
        "Bank reply expected on Monday.",
    ]
    assert note_versions[1]["reason"] == "date added"
    # The general history endpoint knows cases too (they are registered as versioned).
    r = api.get(f"/history/case_note/{note['id']}")
    assert r.status_code == 200 and len(r.json()) == 2


def test_case_reference_is_unique_per_agency(as_user: Any) -> None:
    a = as_user("A", "investigator")
    first = _case(a)
    r = a.post("/cases", json={"title": "Again", "reference": first["reference"].lower()})
    assert r.status_code == 409
    # Another agency may use the same file number.
    b = as_user("B", "investigator")
    assert (
        b.post("/cases", json={"title": "B's", "reference": first["reference"]}).status_code == 201
    )


def test_members_tasks_entities_documents_and_overdue(as_user: Any, ids: dict[str, str]) -> None:
    api = as_user("A", "supervisor")
    case = _case(api)
    seizure = _seizure(as_user("A", "officer"))
    r = api.post(f"/cases/{case['id']}/seizures", json={"seizure_id": seizure["id"], "note": "AWB"})
    assert r.status_code == 201, r.text
    members = api.get(f"/cases/{case['id']}/seizures").json()
    assert [m["seizure_id"] for m in members["data"]] == [seizure["id"]] and members["hidden"] == 0
    # The same seizure twice is a conflict; off and on again is a new version of the membership.
    again = api.post(f"/cases/{case['id']}/seizures", json={"seizure_id": seizure["id"]})
    assert again.status_code == 409
    off = api.post(
        f"/cases/{case['id']}/seizures/{seizure['id']}/remove", json={"reason": "wrong file"}
    )
    assert off.status_code == 200 and off.json()["removed_at"] is not None
    assert api.get(f"/cases/{case['id']}/seizures").json()["data"] == []
    back = api.post(f"/cases/{case['id']}/seizures", json={"seizure_id": seizure["id"]})
    assert back.status_code == 201 and back.json()["version"] == 3

    yesterday = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    later = (datetime.now(UTC).date() + timedelta(days=30)).isoformat()
    late = api.post(
        f"/cases/{case['id']}/tasks",
        json={
            "kind": "controlled_delivery",
            "title": "Controlled delivery to Madrid",
            "owner_user_id": ids["investigator"],
            "due_date": yesterday,
        },
    )
    assert late.status_code == 201, late.text
    assert late.json()["overdue"] is True and late.json()["due_date"] == yesterday
    soon = api.post(
        f"/cases/{case['id']}/tasks",
        json={
            "kind": "mutual_legal_assistance",
            "title": "MLA request to Spain",
            "owner_user_id": ids["investigator"],
            "due_date": later,
        },
    ).json()
    tasks = api.get(f"/cases/{case['id']}/tasks").json()
    assert [t["id"] for t in tasks] == [late.json()["id"], soon["id"]]  # by due date
    done = api.patch(
        f"/case-tasks/{late.json()['id']}",
        json={"status": "done", "reason": "delivered"},
        headers={"If-Match": '"1"'},
    )
    assert done.status_code == 200 and done.json()["overdue"] is False
    assert done.json()["completed_at"] is not None

    person = api.post(
        f"/cases/{case['id']}/entities",
        json={"kind": "person", "person": {"reference": "P-1", "role": "organiser"}},
    )
    assert person.status_code == 201, person.text
    company = api.post(
        f"/cases/{case['id']}/entities",
        json={"kind": "company", "company": {"name": "Andes Freight SAC", "country": "PE"}},
    ).json()
    kinds = [e["kind"] for e in api.get(f"/cases/{case['id']}/entities").json()]
    assert kinds == ["company", "person"]
    r = api.post(
        f"/cases/{case['id']}/entities/{company['id']}/remove", json={"reason": "not involved"}
    )
    assert r.status_code == 200
    assert [e["kind"] for e in api.get(f"/cases/{case['id']}/entities").json()] == ["person"]

    data = b"%PDF-1.4 request for mutual legal assistance"
    r = api.post(
        f"/cases/{case['id']}/documents",
        files={"file": ("mla.pdf", data, "application/pdf")},
        data={"description": "MLA request"},
    )
    assert r.status_code == 201, r.text
    document = r.json()
    content = api.get(f"/case-documents/{document['id']}/content")
    assert content.status_code == 200 and content.content == data
    import hashlib

    assert document["sha256"] == hashlib.sha256(data).hexdigest()
    assert [d["filename"] for d in api.get(f"/cases/{case['id']}/documents").json()] == ["mla.pdf"]


def test_closed_case_refuses_changes_until_reopened(as_user: Any, ids: dict[str, str]) -> None:
    api = as_user("A", "investigator")
    case = _case(api)
    r = api.patch(
        f"/cases/{case['id']}",
        json={"status": "closed", "reason": "prosecuted"},
        headers={"If-Match": '"1"'},
    )
    assert r.status_code == 200
    assert api.post(f"/cases/{case['id']}/notes", json={"text": "late"}).status_code == 409
    r = api.patch(
        f"/cases/{case['id']}",
        json={"status": "open", "reason": "appeal"},
        headers={"If-Match": '"2"'},
    )
    assert r.status_code == 200
    assert api.post(f"/cases/{case['id']}/notes", json={"text": "appeal"}).status_code == 201


# --------------------------------------------------------------------------- roles


def test_roles(as_user: Any, as_device: Any, ids: dict[str, str]) -> None:
    investigator = as_user("A", "investigator")
    case = _case(investigator)
    body = {"title": "x", "reference": f"R-{uuid.uuid4().hex[:6]}"}
    for role in ("officer", "analyst", "admin"):
        assert as_user("A", role).post("/cases", json=body).status_code == 403, role
    assert as_device("A").post("/cases", json=body).status_code == 401
    assert as_device("A").get("/cases").status_code == 401
    assert as_user("A", "admin").get("/cases").status_code == 403
    assert as_user("A", "admin").get(f"/cases/{case['id']}").status_code == 403

    analyst = as_user("A", "analyst")
    assert case["id"] in {c["id"] for c in analyst.get("/cases").json()["data"]}
    note = analyst.post(f"/cases/{case['id']}/notes", json={"text": "Profile matches."})
    assert note.status_code == 201  # analysts write notes...
    task = {"kind": "other", "title": "t", "owner_user_id": ids["analyst"]}
    assert analyst.post(f"/cases/{case['id']}/tasks", json=task).status_code == 403  # ...only
    r = analyst.patch(
        f"/cases/{case['id']}", json={"title": "y", "reason": "r"}, headers={"If-Match": '"1"'}
    )
    assert r.status_code == 403
    # Nobody corrects another person's note.
    r = investigator.patch(
        f"/case-notes/{note.json()['id']}",
        json={"text": "changed", "reason": "r"},
        headers={"If-Match": '"1"'},
    )
    assert r.status_code == 403

    # Officers see a case only once they own a task in it, and then change only its status.
    officer = as_user("A", "officer")
    assert officer.get(f"/cases/{case['id']}").status_code == 404
    assert case["id"] not in {c["id"] for c in officer.get("/cases").json()["data"]}
    surveillance = investigator.post(
        f"/cases/{case['id']}/tasks",
        json={"kind": "surveillance", "title": "Watch warehouse", "owner_user_id": ids["officer"]},
    ).json()
    assert officer.get(f"/cases/{case['id']}").status_code == 200
    assert case["id"] in {c["id"] for c in officer.get("/cases?mine=true").json()["data"]}
    r = officer.patch(
        f"/case-tasks/{surveillance['id']}",
        json={"title": "Something else", "reason": "r"},
        headers={"If-Match": '"1"'},
    )
    assert r.status_code == 403
    r = officer.patch(
        f"/case-tasks/{surveillance['id']}",
        json={"status": "done", "reason": "watched for a week"},
        headers={"If-Match": '"1"'},
    )
    assert r.status_code == 200 and r.json()["status"] == "done"
    assert officer.post(f"/cases/{case['id']}/notes", json={"text": "x"}).status_code == 403


# --------------------------------------------------------------------------- sharing per endpoint


@pytest.fixture(scope="module")
def shared_cases(as_user: Any, world: World, ids: dict[str, str]) -> dict[str, dict[str, Any]]:
    """One case of A per sharing level, each with a member, a task, a note, a person, a file."""
    api = as_user("A", "investigator")
    seizure = _seizure(as_user("A", "officer"))
    out = {}
    for level in ("own", "partners", "all"):
        extra: dict[str, object] = {"sharing": level}
        if level == "partners":
            extra["shared_with"] = [str(world.agencies["B"])]
        case = _case(api, **extra)
        cid = case["id"]
        assert (
            api.post(f"/cases/{cid}/seizures", json={"seizure_id": seizure["id"]}).status_code
            == 201
        )
        task = api.post(
            f"/cases/{cid}/tasks",
            json={
                "kind": "financial_enquiry",
                "title": "Bank records",
                "owner_user_id": ids["investigator"],
            },
        ).json()
        note = api.post(f"/cases/{cid}/notes", json={"text": "note"}).json()
        entity = api.post(
            f"/cases/{cid}/entities", json={"kind": "person", "person": {"reference": "P-9"}}
        ).json()
        document = api.post(
            f"/cases/{cid}/documents", files={"file": ("a.txt", b"evidence", "text/plain")}
        ).json()
        out[level] = {
            "case": case,
            "seizure": seizure,
            "task": task,
            "note": note,
            "entity": entity,
            "document": document,
        }
    return out


def _reads(rec: dict[str, Any]) -> list[str]:
    cid = rec["case"]["id"]
    return [
        f"/cases/{cid}",
        f"/cases/{cid}/seizures",
        f"/cases/{cid}/tasks",
        f"/cases/{cid}/notes",
        f"/cases/{cid}/entities",
        f"/cases/{cid}/documents",
        f"/cases/{cid}/graph",
        f"/cases/{cid}/history",
        f"/case-tasks/{rec['task']['id']}",
        f"/case-documents/{rec['document']['id']}/content",
    ]


def _writes(rec: dict[str, Any], partner_seizure: str) -> list[tuple[str, str, dict[str, Any]]]:
    cid = rec["case"]["id"]
    reason = {"reason": "r"}
    return [
        ("patch", f"/cases/{cid}", {"title": "taken over", **reason}),
        ("post", f"/cases/{cid}/seizures", {"seizure_id": partner_seizure}),
        ("post", f"/cases/{cid}/seizures/{rec['seizure']['id']}/remove", reason),
        (
            "post",
            f"/cases/{cid}/tasks",
            {"kind": "other", "title": "t", "owner_user_id": rec["task"]["owner_user_id"]},
        ),
        ("patch", f"/case-tasks/{rec['task']['id']}", {"status": "cancelled", **reason}),
        ("post", f"/cases/{cid}/notes", {"text": "x"}),
        ("patch", f"/case-notes/{rec['note']['id']}", {"text": "x", **reason}),
        ("post", f"/cases/{cid}/entities", {"kind": "person", "person": {"reference": "X"}}),
        ("post", f"/cases/{cid}/entities/{rec['entity']['id']}/remove", reason),
        ("post", f"/cases/{cid}/documents/{rec['document']['id']}/remove", reason),
    ]


def _write(api: Api, method: str, path: str, body: dict[str, Any]) -> int:
    if method == "patch":
        return int(api.patch(path, json=body, headers={"If-Match": '"1"'}).status_code)
    return int(api.post(path, json=body).status_code)


def _document_upload(api: Api, rec: dict[str, Any]) -> int:
    r = api.post(
        f"/cases/{rec['case']['id']}/documents", files={"file": ("b.txt", b"x", "text/plain")}
    )
    return int(r.status_code)


@pytest.mark.parametrize("level", ["own", "partners", "all"])
def test_sharing_levels_on_every_endpoint(
    level: str, shared_cases: dict[str, Any], as_user: Any, as_third: Any
) -> None:
    rec = shared_cases[level]
    partner = as_user("B", "investigator")
    stranger = as_third("investigator")
    b_seizure = _seizure(as_user("B", "officer"), sharing="all")["id"]
    readers = {"own": [], "partners": [partner], "all": [partner, stranger]}[level]
    blind = {"own": [partner, stranger], "partners": [stranger], "all": []}[level]
    for api in readers:
        for path in _reads(rec):
            assert api.get(path).status_code == 200, (level, path)
        assert rec["case"]["id"] in {c["id"] for c in api.get("/cases").json()["data"]}
        # The member seizure is A's and not shared: the reader sees that it exists, not which.
        members = api.get(f"/cases/{rec['case']['id']}/seizures").json()
        assert members == {"data": [], "hidden": 1}
        assert api.get(f"/cases/{rec['case']['id']}/graph").json()["hidden_seizures"] == 1
        for method, path, body in _writes(rec, b_seizure):
            assert _write(api, method, path, body) == 403, (level, method, path)
        assert _document_upload(api, rec) == 403
    for api in blind:
        for path in _reads(rec):
            assert api.get(path).status_code == 404, (level, path)
        assert rec["case"]["id"] not in {c["id"] for c in api.get("/cases").json()["data"]}
        for method, path, body in _writes(rec, b_seizure):
            assert _write(api, method, path, body) == 404, (level, method, path)
        assert _document_upload(api, rec) == 404
    # The owner still reads everything and nothing of the attempts above was written.
    owner = as_user("A", "investigator")
    for path in _reads(rec):
        assert owner.get(path).status_code == 200, path
    got = owner.get(f"/cases/{rec['case']['id']}").json()
    assert got["version"] == 1 and got["title"] == "Operation Andes"
    assert len(owner.get(f"/cases/{rec['case']['id']}/notes").json()) == 1


def test_partner_named_later_and_dropped_again(as_user: Any, world: World) -> None:
    api = as_user("A", "investigator")
    partner = as_user("B", "analyst")
    case = _case(api)
    assert partner.get(f"/cases/{case['id']}").status_code == 404
    r = api.patch(
        f"/cases/{case['id']}",
        json={"sharing": "partners", "shared_with": [str(world.agencies["B"])], "reason": "JIT"},
        headers={"If-Match": '"1"'},
    )
    assert r.status_code == 200 and r.json()["shared_with"] == [str(world.agencies["B"])]
    assert partner.get(f"/cases/{case['id']}").status_code == 200
    r = api.patch(
        f"/cases/{case['id']}",
        json={"sharing": "own", "reason": "JIT ended"},
        headers={"If-Match": '"2"'},
    )
    assert r.status_code == 200 and r.json()["shared_with"] == []
    assert partner.get(f"/cases/{case['id']}").status_code == 404


def test_a_seizure_shared_with_the_agency_can_join_its_case(
    as_user: Any, world: World, ids: dict[str, str]
) -> None:
    """B's investigator puts A's seizure (shared with B) into B's case; A's own stays out."""
    a_shared = _seizure(
        as_user("A", "officer"), sharing="partners", shared_with=[str(world.agencies["B"])]
    )
    a_private = _seizure(as_user("A", "officer"))
    b = as_user("B", "investigator")
    case = _case(b)
    r = b.post(f"/cases/{case['id']}/seizures", json={"seizure_id": a_shared["id"]})
    assert r.status_code == 201, r.text
    r = b.post(f"/cases/{case['id']}/seizures", json={"seizure_id": a_private["id"]})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "seizure_id"]
    assert b.get(f"/cases/{case['id']}/seizures").json()["hidden"] == 0
    graph = b.get(f"/cases/{case['id']}/graph").json()
    assert [n["seizure_id"] for n in graph["nodes"] if n["kind"] == "seizure"] == [a_shared["id"]]


# --------------------------------------------------------------------------- idempotency, 412


def test_idempotent_retries(as_user: Any, ids: dict[str, str]) -> None:
    api = as_user("A", "investigator")
    body = {"id": str(uuid.uuid4()), "title": "Retry", "reference": f"R-{uuid.uuid4().hex[:8]}"}
    first = api.post("/cases", json=body)
    again = api.post("/cases", json=body)
    assert first.status_code == again.status_code == 201
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == first.json()
    other = api.post("/cases", json={**body, "title": "Something else"})
    assert other.status_code == 422
    cid = first.json()["id"]
    for path, payload in (
        (f"/cases/{cid}/notes", {"id": str(uuid.uuid4()), "text": "once"}),
        (
            f"/cases/{cid}/tasks",
            {
                "id": str(uuid.uuid4()),
                "kind": "laboratory_request",
                "title": "Purity",
                "owner_user_id": ids["analyst"],
            },
        ),
    ):
        a = api.post(path, json=payload)
        b = api.post(path, json=payload)
        assert a.status_code == b.status_code == 201 and b.headers.get("Idempotent-Replayed")
    key = str(uuid.uuid4())
    seizure = _seizure(as_user("A", "officer"))
    for _ in range(2):
        r = api.post(
            f"/cases/{cid}/seizures",
            json={"seizure_id": seizure["id"]},
            headers={"Idempotency-Key": key},
        )
        assert r.status_code == 201
    assert len(api.get(f"/cases/{cid}/notes").json()) == 1
    assert len(api.get(f"/cases/{cid}/tasks").json()) == 1
    assert len(api.get(f"/cases/{cid}/seizures").json()["data"]) == 1


def test_stale_and_missing_if_match(as_user: Any, ids: dict[str, str]) -> None:
    api = as_user("A", "investigator")
    case = _case(api)
    path = f"/cases/{case['id']}"
    assert api.patch(path, json={"title": "a", "reason": "r"}).status_code == 428
    assert (
        api.patch(path, json={"title": "a", "reason": "r"}, headers={"If-Match": '"1"'}).status_code
        == 200
    )
    stale = api.patch(path, json={"title": "b", "reason": "r"}, headers={"If-Match": '"1"'})
    assert stale.status_code == 412
    assert api.get(path).json()["title"] == "a"
    task = api.post(
        f"{path}/tasks", json={"kind": "other", "title": "t", "owner_user_id": ids["investigator"]}
    ).json()
    ok = api.patch(
        f"/case-tasks/{task['id']}",
        json={"title": "t2", "reason": "r"},
        headers={"If-Match": '"1"'},
    )
    assert ok.status_code == 200
    again = api.patch(
        f"/case-tasks/{task['id']}",
        json={"title": "t3", "reason": "r"},
        headers={"If-Match": '"1"'},
    )
    assert again.status_code == 412
    note = api.post(f"{path}/notes", json={"text": "n"}).json()
    r = api.patch(
        f"/case-notes/{note['id']}", json={"text": "m", "reason": "r"}, headers={"If-Match": '"7"'}
    )
    assert r.status_code == 412


# --------------------------------------------------------------------------- bad input


def test_bad_input_is_refused_with_the_field(
    as_user: Any, as_third: Any, world: World, ids: dict[str, str]
) -> None:
    api = as_user("A", "investigator")
    ref = f"BAD-{uuid.uuid4().hex[:6]}"

    def loc(r: Any) -> list[str]:
        assert r.status_code == 422, r.text
        return [str(p) for e in r.json()["detail"] for p in e["loc"]]

    assert "status" in loc(
        api.post("/cases", json={"title": "x", "reference": ref, "status": "cold"})
    )
    assert "reference" in loc(api.post("/cases", json={"title": "x", "reference": ""}))
    assert "title" in loc(api.post("/cases", json={"reference": ref}))
    assert "shared_with" in loc(
        api.post(
            "/cases",
            json={"title": "x", "reference": ref, "shared_with": [str(world.agencies["B"])]},
        )
    )
    assert "shared_with" in loc(
        api.post(
            "/cases",
            json={
                "title": "x",
                "reference": ref,
                "sharing": "partners",
                "shared_with": [str(uuid.uuid4())],
            },
        )
    )
    b_user = as_user("B", "admin").get("/users").json()[0]["id"]
    assert "lead_investigator_id" in loc(
        api.post("/cases", json={"title": "x", "reference": ref, "lead_investigator_id": b_user})
    )
    case = _case(api)
    cid = case["id"]
    task = {"kind": "controlled_delivery", "title": "t", "owner_user_id": ids["officer"]}
    assert "kind" in loc(api.post(f"/cases/{cid}/tasks", json={**task, "kind": "wiretap"}))
    assert "due_date" in loc(
        api.post(f"/cases/{cid}/tasks", json={**task, "due_date": "next week"})
    )
    assert "due_date" in loc(
        api.post(f"/cases/{cid}/tasks", json={**task, "due_date": "2026-02-30"})
    )
    assert "due_date" in loc(
        api.post(f"/cases/{cid}/tasks", json={**task, "due_date": "1900-01-01"})
    )
    assert "owner_user_id" in loc(
        api.post(f"/cases/{cid}/tasks", json={**task, "owner_user_id": b_user})
    )
    assert "owner_user_id" in loc(
        api.post(f"/cases/{cid}/tasks", json={**task, "owner_user_id": str(uuid.uuid4())})
    )
    # A seizure the user may not see, or none at all, cannot join the case.
    b_seizure = _seizure(as_user("B", "officer"))
    assert "seizure_id" in loc(
        api.post(f"/cases/{cid}/seizures", json={"seizure_id": b_seizure["id"]})
    )
    assert "seizure_id" in loc(
        api.post(f"/cases/{cid}/seizures", json={"seizure_id": str(uuid.uuid4())})
    )
    assert "seizure_id" in loc(
        api.post(f"/cases/{cid}/seizures", json={"seizure_id": "not-a-uuid"})
    )
    assert loc(
        api.post(f"/cases/{cid}/entities", json={"kind": "person", "company": {"name": "X"}})
    )
    assert loc(api.post(f"/cases/{cid}/notes", json={"text": ""}))
    assert loc(api.get("/cases?status=cold"))
    r = api.post(f"/cases/{cid}/documents", files={"file": ("empty.txt", b"", "text/plain")})
    assert "file" in loc(r)
    # Nothing of the refused requests was written.
    assert api.get(f"/cases/{cid}/tasks").json() == []
    assert api.get(f"/cases/{cid}/seizures").json()["data"] == []


# --------------------------------------------------------------------------- graph, audit


def test_case_graph_shows_shared_attributes_and_links(as_user: Any) -> None:
    officer = as_user("A", "officer")
    awb = f"045-{uuid.uuid4().int % 10**8:08d}"
    one = _seizure(officer, air_waybill=awb, persons=[{"reference": f"P-{awb}"}])
    two = _seizure(
        officer,
        air_waybill=awb,
        seized_at="2026-03-20T08:30:00+00:00",
        persons=[{"reference": f"P-{awb}"}],
    )
    api = as_user("A", "investigator")
    case = _case(api)
    for s in (one, two):
        assert (
            api.post(f"/cases/{case['id']}/seizures", json={"seizure_id": s["id"]}).status_code
            == 201
        )
    # Correlation runs after each commit in the background; ask for it now to be sure.
    assert api.post(f"/seizures/{two['id']}/correlate").status_code == 200
    graph = api.get(f"/cases/{case['id']}/graph").json()
    kinds = sorted(n["kind"] for n in graph["nodes"])
    assert kinds.count("seizure") == 2
    assert {"consignment", "person"} <= set(kinds)
    assert {n["seizure_id"] for n in graph["nodes"] if n["kind"] == "seizure"} == {
        one["id"],
        two["id"],
    }
    links = [e for e in graph["edges"] if e["kind"] in ("suggested", "accepted")]
    # The graph shows exactly the linking engine's live links between the two.
    engine_links = [
        link
        for link in api.get(f"/seizures/{one['id']}/links").json()
        if link["status"] in ("suggested", "accepted")
        and {link["seizure_a_id"], link["seizure_b_id"]} == {one["id"], two["id"]}
    ]
    assert len(engine_links) == 1  # same air waybill, person, company and route
    assert [(e["kind"], e["strength"]) for e in links] == [
        (link["status"], link["strength"]) for link in engine_links
    ]
    attribute_edges = [e for e in graph["edges"] if e["kind"] == "attribute"]
    assert len(attribute_edges) >= 4


def _engine(app_client: Any) -> Engine:
    return app_client.app.state.fieldscan.engine  # type: ignore[no-any-return]


@contextmanager
def _tampered(engine: Engine, statement: str, **params: Any) -> Iterator[AuditVerifyReport]:
    with engine.connect() as conn:
        trans = conn.begin()
        try:
            conn.execute(text(statement), params)
            with Session(bind=conn) as session:
                yield audit.verify(session)
        finally:
            trans.rollback()


def test_audit_verify_covers_case_records(as_user: Any, app_client: Any) -> None:
    api = as_user("A", "investigator")
    case = _case(api)
    note = api.post(f"/cases/{case['id']}/notes", json={"text": "Seen at the warehouse."}).json()
    report = as_user("A", "supervisor").get("/audit/verify").json()
    assert report["ok"] is True, report["problems"]
    engine = _engine(app_client)
    nid = uuid.UUID(note["id"])
    param = nid.hex if engine.dialect.name == "sqlite" else nid
    with _tampered(
        engine, "UPDATE case_note SET text = 'Never there.' WHERE id = :n", n=param
    ) as r:
        assert {(p.kind, p.entity_type) for p in r.problems} >= {("row_altered", "case_note")}
    cid = uuid.UUID(case["id"])
    param = cid.hex if engine.dialect.name == "sqlite" else cid
    with _tampered(engine, "UPDATE \"case\" SET sharing = 'all' WHERE id = :c", c=param) as r:
        assert ("row_altered", "case") in {(p.kind, p.entity_type) for p in r.problems}


# --------------------------------------------------------------------------- graph (pure)


def _facts(sid: str, day: int, **attrs: Any) -> SeizureFacts:
    return SeizureFacts(
        id=sid,
        label=sid,
        seized_at=datetime(2026, 3, day, tzinfo=UTC),
        attributes=tuple(seizure_attributes(**attrs)),
    )


def test_graph_keeps_only_shared_or_named_attributes() -> None:
    a = _facts("a", 1, air_waybill="045-1234 5675", persons=["P-1"], origin="PE", destination="ES")
    b = _facts("b", 2, air_waybill="04512345675", persons=["p 1"], origin="CO", destination="ES")
    c = _facts("c", 3, companies=["Andes Freight S.A.C."], substances=["cocaine HCl"])
    named = seizure_attributes(companies=["andes freight s a c"], persons=["Q-7"])
    graph = build_case_graph([c, b, a], [], named=named)
    kinds = {n.id: n.kind for n in graph.nodes}
    # Seizures in date order, then attributes by kind.
    assert [n.id for n in graph.nodes if n.kind == "seizure"] == ["s:a", "s:b", "s:c"]
    assert kinds["a:awb:04512345675"] == "consignment"
    assert kinds["a:person:p1"] == "person"
    assert "a:route:PE>ES" not in kinds  # only one seizure has each route
    assert "a:substance:cocaine hcl" not in kinds  # one seizure only, not named
    assert graph.node("a:company:andes freight s a c").named is True
    assert graph.node("a:person:q7").weight == 0
    attribute_edges = {(e.source, e.target) for e in graph.edges if e.kind == "attribute"}
    assert ("s:a", "a:awb:04512345675") in attribute_edges
    assert ("s:b", "a:awb:04512345675") in attribute_edges
    assert ("s:c", "a:company:andes freight s a c") in attribute_edges


def test_graph_links_only_between_members_and_live_statuses() -> None:
    seizures = [_facts(x, i + 1) for i, x in enumerate("abc")]
    links = [
        LinkFacts("b", "a", "suggested", 0.9, ("same AWB",)),
        LinkFacts("a", "c", "dismissed", 0.7),
        LinkFacts("b", "c", "accepted", 0.5),
        LinkFacts("a", "zz", "accepted", 0.5),
        LinkFacts("c", "b", "suggested", 0.95),  # the same pair held by another agency
    ]
    graph = build_case_graph(seizures, links, hidden_seizures=2)
    got = [(e.source, e.target, e.kind) for e in graph.edges]
    assert got == [("s:a", "s:b", "suggested"), ("s:b", "s:c", "accepted")]
    assert graph.node("s:b").weight == 2 and graph.node("s:a").weight == 1
    assert graph.as_dict()["hidden_seizures"] == 2


def test_graph_layout_is_deterministic_and_inside_the_frame() -> None:
    seizures = [
        _facts(f"s{i}", i + 1, air_waybill="ABCD1234" if i % 2 else "ZZZZ9999", persons=["P"])
        for i in range(7)
    ]
    named = [Attribute("person", "person:nobody", "Nobody")]
    graph = build_case_graph(seizures, [], named=named)
    first = layout(graph, width=700, height=500)
    again = layout(
        build_case_graph(list(reversed(seizures)), [], named=named), width=700, height=500
    )
    assert first == again
    assert set(first) == {n.id for n in graph.nodes}
    for p in first.values():
        assert 0 <= p.x <= 700 and 0 <= p.y <= 500
    attributes = [first[n.id] for n in graph.nodes if n.kind != "seizure"]
    for i, p in enumerate(attributes):
        for q in attributes[i + 1 :]:
            assert (p.x - q.x) ** 2 + (p.y - q.y) ** 2 > 1.0  # never on top of each other
    assert first["a:person:nobody"].y > 450  # named only: along the bottom


def test_graph_of_an_empty_case() -> None:
    graph = build_case_graph([], [])
    assert graph.nodes == [] and graph.edges == [] and layout(graph) == {}
