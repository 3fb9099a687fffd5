"""Sharing levels (issue 8), endpoint by endpoint: who reads a seizure and its records, who writes.

Agency A owns three seizures, one per level: ``own``, ``partners`` (named partner B) and
``all``. Agency B is the named partner; agency C is a third agency named nowhere. For every
endpoint of :data:`ENDPOINTS` and every level:

* own: B and C see nothing (404), read or write;
* partners: B reads (200) and is refused writing (403); C sees nothing (404);
* all: B and C read, both are refused writing (403);
* A (control) reads and writes all three, so a refusal above is about sharing, not a bad URL.

A new endpoint under ``/api/v1`` with a seizure or item path parameter must be added to
:data:`ENDPOINTS` (:func:`test_every_seizure_route_is_in_the_table` fails otherwise).
"""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from service import audit, crud
from service.core.config import Settings
from service.core.db import make_engine
from service.core.security import password_hasher
from service.models import AgencyCreate, AgencyKind, Role, UserCreate
from service.principal import SYSTEM
from service.testing import World, field_test_payload, seizure_payload

LEVELS = ("own", "partners", "all")
SECRET = "sharing-secret-{level}"


class Client:
    """A logged-in API client (bearer token or device key)."""

    def __init__(self, client: TestClient, headers: dict[str, str]) -> None:
        self.client, self.headers = client, headers

    def call(self, method: str, path: str, **kw: Any) -> Any:
        headers = {**self.headers, **kw.pop("headers", {})}
        return self.client.request(method, "/api/v1" + path, headers=headers, **kw)

    def get(self, path: str, **kw: Any) -> Any:
        return self.call("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Any:
        return self.call("POST", path, **kw)

    def patch(self, path: str, **kw: Any) -> Any:
        return self.call("PATCH", path, **kw)


def _login(client: TestClient, username: str, password: str) -> Client:
    r = client.post("/api/v1/login/access-token", data={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return Client(client, {"Authorization": f"Bearer {r.json()['access_token']}"})


@dataclass
class Agencies:
    ids: dict[str, uuid.UUID]
    users: dict[str, dict[str, str]]
    password: str


@pytest.fixture(scope="module")
def agencies(settings: Settings, world: World) -> Agencies:
    """A and B of the seeded world, and a third agency C with an officer and a supervisor."""
    tag = uuid.uuid4().hex[:8]
    engine = make_engine(settings.sqlalchemy_url)
    hasher = password_hasher(
        time_cost=settings.argon2_time_cost, memory_kib=settings.argon2_memory_kib
    )
    users = {k: dict(v) for k, v in world.users.items()}
    ids = dict(world.agencies)
    try:
        with Session(engine) as session:
            agency = crud.create_agency(
                session=session,
                actor=SYSTEM,
                agency_in=AgencyCreate(
                    name=f"C police {tag}", country="EC", kind=AgencyKind.POLICE
                ),
            )
            ids["C"] = agency.id
            users["C"] = {}
            for role in (Role.OFFICER, Role.SUPERVISOR):
                name = f"c_{role.value}_{tag}"
                crud.create_user(
                    session=session,
                    actor=SYSTEM,
                    agency_id=agency.id,
                    user_in=UserCreate(username=name, role=role, password=world.password),
                    hasher=hasher,
                )
                users["C"][role.value] = name
            session.commit()
            audit.chain_pending(session, wait=True)
            session.commit()
    finally:
        engine.dispose()
    return Agencies(ids=ids, users=users, password=world.password)


@pytest.fixture(scope="module")
def as_(app_client: TestClient, agencies: Agencies) -> Callable[[str, str], Client]:
    cache: dict[tuple[str, str], Client] = {}

    def get(agency: str, role: str) -> Client:
        if (agency, role) not in cache:
            cache[(agency, role)] = _login(
                app_client, agencies.users[agency][role], agencies.password
            )
        return cache[(agency, role)]

    return get


def _records(owner: Client, analyst: Client, level: str, partners: list[str]) -> dict[str, str]:
    """One seizure of A at ``level`` with one record of every kind; their ids by name."""
    body = seizure_payload(
        narrative=SECRET.format(level=level),
        sharing=level,
        shared_with=partners if level == "partners" else [],
        # Unique consignment references: no link to the other seizures of the module.
        air_waybill=f"SH-{uuid.uuid4().hex[:10]}",
    )
    r = owner.post("/seizures", json=body)
    assert r.status_code == 201, r.text
    seizure = r.json()
    item = owner.post(
        f"/seizures/{seizure['id']}/items",
        json={"description": "shared item", "net_mass": 100, "mass_unit": "g", "substance": "x"},
    ).json()
    test = owner.post(f"/items/{item['id']}/field-tests", json=field_test_payload(64)).json()
    custody = owner.post(
        f"/items/{item['id']}/custody-events",
        json={"kind": "sealed", "occurred_at": "2026-03-14T09:00:00Z", "seal_number": "S-1"},
    ).json()
    lab = analyst.post(
        f"/items/{item['id']}/lab-results",
        json={
            "method": "gc_ms",
            "substance": "sugar",  # differs from the field: a discrepancy to read
            "net_mass": 50,
            "mass_unit": "g",
            "analysed_at": "2026-03-20T00:00:00Z",
        },
    ).json()
    attachment = owner.post(
        f"/items/{item['id']}/attachments",
        files={"file": ("p.jpg", io.BytesIO(f"photo {level}".encode()), "image/jpeg")},
    ).json()
    return {
        "seizure": seizure["id"],
        "item": item["id"],
        "test": test["id"],
        "custody": custody["id"],
        "lab": lab["id"],
        "attachment": attachment["id"],
    }


@pytest.fixture(scope="module")
def shared(as_: Callable[[str, str], Client], agencies: Agencies) -> dict[str, dict[str, str]]:
    """Records of agency A by sharing level."""
    partners = [str(agencies.ids["B"])]
    return {
        level: _records(as_("A", "officer"), as_("A", "analyst"), level, partners)
        for level in LEVELS
    }


# --------------------------------------------------------------------------- the endpoint table


def _item_body() -> dict[str, Any]:
    return {"description": "planted item"}


def _custody_body() -> dict[str, Any]:
    return {"kind": "stored", "occurred_at": "2026-03-15T09:00:00Z", "place": "store"}


def _lab_body() -> dict[str, Any]:
    return {"method": "gc_ms", "substance": "planted", "analysed_at": "2026-03-21T00:00:00Z"}


@dataclass(frozen=True)
class Endpoint:
    """One API operation on a seizure or one of its records."""

    method: str
    #: The path as OpenAPI names it (under /api/v1).
    template: str
    #: The URL to call: ``{seizure}``, ``{item}``... are the ids of the level's records.
    url: str
    body: Callable[[], dict[str, Any]] | None = None
    #: Multipart upload instead of JSON.
    upload: bool = False
    #: The GET whose ETag the owner sends as If-Match.
    etag: str | None = None
    #: False where another part owns the partner rule (linking): outsiders and owner only.
    shared_read: bool = True

    @property
    def writes(self) -> bool:
        return self.method != "GET"

    @property
    def id(self) -> str:
        return f"{self.method} {self.url}"


ENDPOINTS: list[Endpoint] = [
    Endpoint("GET", "/seizures/{seizure_id}", "/seizures/{seizure}"),
    Endpoint(
        "PATCH",
        "/seizures/{seizure_id}",
        "/seizures/{seizure}",
        body=lambda: {"place": "changed place", "reason": "sharing test"},
        etag="/seizures/{seizure}",
    ),
    Endpoint("GET", "/seizures/{seizure_id}/items", "/seizures/{seizure}/items"),
    Endpoint("POST", "/seizures/{seizure_id}/items", "/seizures/{seizure}/items", body=_item_body),
    Endpoint("GET", "/items/{item_id}", "/items/{item}"),
    Endpoint(
        "PATCH",
        "/items/{item_id}",
        "/items/{item}",
        body=lambda: {"packaging": "changed packaging", "reason": "sharing test"},
        etag="/items/{item}",
    ),
    Endpoint("GET", "/items/{item_id}/field-tests", "/items/{item}/field-tests?with_spectrum=true"),
    Endpoint(
        "POST",
        "/items/{item_id}/field-tests",
        "/items/{item}/field-tests",
        body=lambda: field_test_payload(64, seed=7),
    ),
    Endpoint("GET", "/field-tests/{test_id}", "/field-tests/{test}"),
    Endpoint("GET", "/items/{item_id}/custody-events", "/items/{item}/custody-events"),
    Endpoint(
        "POST", "/items/{item_id}/custody-events", "/items/{item}/custody-events", _custody_body
    ),
    Endpoint("GET", "/items/{item_id}/lab-results", "/items/{item}/lab-results"),
    Endpoint("POST", "/items/{item_id}/lab-results", "/items/{item}/lab-results", _lab_body),
    Endpoint("GET", "/items/{item_id}/discrepancies", "/items/{item}/discrepancies"),
    Endpoint("GET", "/items/{item_id}/attachments", "/items/{item}/attachments"),
    Endpoint("POST", "/items/{item_id}/attachments", "/items/{item}/attachments", upload=True),
    Endpoint("GET", "/attachments/{attachment_id}/content", "/attachments/{attachment}/content"),
    *(
        Endpoint("GET", "/history/{entity_type}/{entity_id}", f"/history/{kind}/{{{key}}}")
        for kind, key in (
            ("seizure", "seizure"),
            ("item", "item"),
            ("field_test", "test"),
            ("custody_event", "custody"),
            ("lab_result", "lab"),
            ("attachment", "attachment"),
        )
    ),
    # Links between seizures: their visibility across agencies is the linking part's rule.
    Endpoint("GET", "/seizures/{seizure_id}/links", "/seizures/{seizure}/links", shared_read=False),
    Endpoint(
        "POST",
        "/seizures/{seizure_id}/correlate",
        "/seizures/{seizure}/correlate",
        body=dict,
        shared_read=False,
    ),
]

#: Path parameters that name a seizure or one of its records.
_RECORD_PARAMS = re.compile(r"{(seizure_id|item_id|test_id|attachment_id|entity_id)}")

#: Resources whose own parts test sharing for their routes (a case's seizures, exchanges).
ELSEWHERE = ("/cases/", "/exchange/")


def test_every_seizure_route_is_in_the_table(app_client: TestClient) -> None:
    spec = app_client.get("/api/v1/openapi.json").json()
    routes = {
        (method.upper(), path.removeprefix("/api/v1"))
        for path, ops in spec["paths"].items()
        for method in ops
        if _RECORD_PARAMS.search(path) and not path.removeprefix("/api/v1").startswith(ELSEWHERE)
    }
    assert len(routes) >= 20
    listed = {(e.method, e.template) for e in ENDPOINTS}
    assert routes - listed == set(), "add these routes to ENDPOINTS of this test"
    assert listed - routes == set(), "ENDPOINTS names routes the API does not have"


# --------------------------------------------------------------------------- the matrix


def _call(api: Client, endpoint: Endpoint, records: dict[str, str], if_match: str) -> Any:
    url = endpoint.url.format(**records)
    kwargs: dict[str, Any] = {}
    if endpoint.upload:
        kwargs["files"] = {"file": ("x.txt", io.BytesIO(b"planted " + url.encode()), "text/plain")}
    elif endpoint.body is not None:
        kwargs["json"] = endpoint.body()
    if endpoint.writes:
        kwargs["headers"] = {"If-Match": if_match}
    return api.call(endpoint.method, url, **kwargs)


#: Who may read a seizure of each level: B is the named partner, C a third agency.
READS = {"own": set(), "partners": {"B"}, "all": {"B", "C"}}


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.id)
def test_sharing_level_is_enforced(
    endpoint: Endpoint,
    level: str,
    as_: Callable[[str, str], Client],
    shared: dict[str, dict[str, str]],
) -> None:
    records = shared[level]
    secret = SECRET.format(level=level)
    for agency in ("B", "C"):
        # A supervisor may do every write in its own agency: a refusal is about sharing.
        api = as_(agency, "supervisor" if endpoint.writes else "officer")
        r = _call(api, endpoint, records, '"1"')
        where = (endpoint.id, level, agency, r.status_code, r.text[:300])
        if agency not in READS[level]:
            assert r.status_code == 404, where
            assert secret not in r.text, where
        elif not endpoint.shared_read:
            continue  # the linking part decides what a partner sees of links
        elif endpoint.writes:
            assert r.status_code == 403, where
            assert "another agency shares" in r.json()["detail"], where
        else:
            assert r.status_code == 200, where
    # The owner reads and writes the same URLs (a broken URL would pass the above as 404).
    owner = as_("A", "supervisor")
    if_match = '"1"'
    if endpoint.etag:
        if_match = owner.get(endpoint.etag.format(**records)).headers["ETag"]
    r = _call(owner, endpoint, records, if_match)
    assert r.status_code in (200, 201, 202), (endpoint.id, level, r.status_code, r.text[:300])


def test_partner_reads_the_shared_records_themselves(
    as_: Callable[[str, str], Client], shared: dict[str, dict[str, str]]
) -> None:
    """What a partner reads is the record: narrative, raw spectrum, file bytes, history."""
    records = shared["partners"]
    b = as_("B", "investigator")
    seizure = b.get(f"/seizures/{records['seizure']}").json()
    assert seizure["narrative"] == SECRET.format(level="partners")
    assert seizure["sharing"] == "partners"
    test = b.get(f"/field-tests/{records['test']}").json()
    owner_test = as_("A", "officer").get(f"/field-tests/{records['test']}").json()
    assert test["spectrum"] == owner_test["spectrum"] and len(test["spectrum"]["axis"]) == 64
    content = b.get(f"/attachments/{records['attachment']}/content")
    assert content.content == b"photo partners"
    found = b.get(f"/items/{records['item']}/discrepancies").json()
    assert any(d["identity_differs"] and d["lab_substance"] == "sugar" for d in found), found
    history = b.get(f"/history/seizure/{records['seizure']}").json()
    assert history[0]["data"]["sharing"] == "partners"
    # The partner's own agency-wide reports stay its own.
    assert all(d["item_id"] != records["item"] for d in b.get("/discrepancies").json())


def test_device_keys_read_what_their_agency_may(
    app_client: TestClient, world: World, shared: dict[str, dict[str, str]]
) -> None:
    station = Client(app_client, {"X-Device-Key": world.device_keys["B"]})
    assert station.get(f"/seizures/{shared['partners']['seizure']}").status_code == 200
    assert station.get(f"/seizures/{shared['own']['seizure']}").status_code == 404
    r = station.post(f"/seizures/{shared['all']['seizure']}/items", json=_item_body())
    assert r.status_code == 403


# --------------------------------------------------------------------------- lists


def _listed(api: Client, **params: Any) -> set[str]:
    r = api.get("/seizures", params={"limit": 500, **params})
    assert r.status_code == 200, r.text
    return {s["id"] for s in r.json()["data"]}


def test_lists_show_shared_seizures_to_their_readers(
    as_: Callable[[str, str], Client], agencies: Agencies, shared: dict[str, dict[str, str]]
) -> None:
    ids = {level: shared[level]["seizure"] for level in LEVELS}
    a_id = str(agencies.ids["A"])
    expected = {"A": set(LEVELS), "B": {"partners", "all"}, "C": {"all"}}
    for agency, levels in expected.items():
        api = as_(agency, "officer")
        for params in (
            {},
            {"agency_id": a_id},
            {"q": "sharing-secret"},  # in the narrative
            {"q": "shared item"},  # in an item's description
            {"substance": "X"},  # an item's substance
            {"verdict": "mixture", "country": "PE"},  # a field test's verdict
        ):
            listed = _listed(api, **params)
            for level in LEVELS:
                assert (ids[level] in listed) == (level in levels), (agency, params, level)
        # Filtering on the partner's own agency shows none of A's.
        own_only = _listed(api, agency_id=str(agencies.ids[agency]))
        assert (set(ids.values()) & own_only) == (set(ids.values()) if agency == "A" else set())
    # Paging through a mixed list (own and shared) gives each row once, newest first.
    b = as_("B", "officer")
    b.post("/seizures", json=seizure_payload(seized_at="2026-03-15T00:00:00Z"))
    full = b.get("/seizures", params={"limit": 500}).json()["data"]
    paged: list[str] = []
    skip = 0
    while True:
        page = b.get("/seizures", params={"limit": 2, "skip": skip}).json()
        paged += [s["id"] for s in page["data"]]
        skip += 2
        if not page["has_more"]:
            break
    assert paged == [s["id"] for s in full]
    stamps = [(s["seized_at"], s["id"]) for s in full]
    assert stamps == sorted(stamps, reverse=True)


# --------------------------------------------------------------------------- setting the level


def test_sharing_changes_are_versioned_audited_and_checked(
    as_: Callable[[str, str], Client], agencies: Agencies
) -> None:
    a = as_("A", "officer")
    b_id, c_id = str(agencies.ids["B"]), str(agencies.ids["C"])
    seizure = a.post("/seizures", json=seizure_payload(narrative="to be shared")).json()
    path = f"/seizures/{seizure['id']}"
    assert seizure["sharing"] == "own" and seizure["shared_with"] == []
    b = as_("B", "officer")
    assert b.get(path).status_code == 404

    def patch(api: Client, body: dict[str, Any]) -> Any:
        etag = a.get(path).headers["ETag"]
        return api.patch(
            path, json={**body, "reason": "joint operation"}, headers={"If-Match": etag}
        )

    # Bad input: each refused with a clear 422, nothing changed.
    for body, text in (
        ({"sharing": "own", "shared_with": [b_id]}, "partners are named only"),
        ({"sharing": "partners", "shared_with": [str(uuid.uuid4())]}, "no agency"),
        ({"sharing": "partners", "shared_with": [str(agencies.ids["A"])]}, "owning agency"),
        ({"sharing": "everybody"}, "sharing"),
        ({"shared_with": ["not-a-uuid"]}, "shared_with"),
    ):
        r = patch(a, body)
        assert r.status_code == 422 and text in r.text, (body, r.status_code, r.text)
    assert a.get(path).json()["version"] == 1
    r = a.post("/seizures", json=seizure_payload(sharing="all", shared_with=[b_id]))
    assert r.status_code == 422 and "partners are named only" in r.text
    # Roles: an analyst may not edit seizures (nor their sharing).
    assert patch(as_("A", "analyst"), {"sharing": "all"}).status_code == 403
    # Partners level: B reads, C does not; the change is a version with its reason.
    r = patch(a, {"sharing": "partners", "shared_with": [b_id, b_id]})
    assert r.status_code == 200, r.text
    assert r.json()["shared_with"] == [b_id] and r.json()["version"] == 2
    assert b.get(path).status_code == 200
    assert as_("C", "officer").get(path).status_code == 404
    # Adding a partner, then widening to all, then back to own: each takes effect at once.
    assert patch(a, {"shared_with": [b_id, c_id]}).json()["shared_with"] == sorted([b_id, c_id])
    assert as_("C", "officer").get(path).status_code == 200
    r = patch(a, {"sharing": "all"})
    assert r.json()["sharing"] == "all" and r.json()["shared_with"] == []
    assert as_("C", "officer").get(path).status_code == 200
    r = patch(a, {"sharing": "partners"})  # partners were dropped with level all
    assert r.json()["shared_with"] == [] and as_("C", "officer").get(path).status_code == 404
    r = patch(a, {"sharing": "own"})
    assert r.status_code == 200 and r.json()["version"] == 6
    assert b.get(path).status_code == 404
    history = a.get(f"/history/seizure/{seizure['id']}").json()
    # Versions at the default level leave the field out (their digests predate sharing).
    assert [h["data"].get("sharing", "own") for h in history] == [
        "own",
        "partners",
        "partners",
        "all",
        "partners",
        "own",
    ]
    assert all(h["reason"] == "joint operation" for h in history[1:])
    # Verifying links every committed event into the chain first, then checks it whole.
    report = as_("A", "supervisor").get("/audit/verify").json()
    assert report["ok"], report["problems"]
    events = as_("A", "supervisor").get("/audit/events", params={"limit": 1000}).json()
    updates = [e for e in events if e["entity_id"] == seizure["id"] and e["action"] == "update"]
    assert [e["version"] for e in updates] == [2, 3, 4, 5, 6]


def test_record_share_index_follows_every_change(
    settings: Settings, as_: Callable[[str, str], Client], agencies: Agencies
) -> None:
    """The derived share index holds exactly the partners of level partners."""
    from sqlalchemy import select

    from service.sharing import RecordShare

    a = as_("A", "officer")
    b_id = str(agencies.ids["B"])
    seizure = a.post(
        "/seizures", json=seizure_payload(sharing="partners", shared_with=[b_id])
    ).json()

    def index() -> set[str]:
        engine = make_engine(settings.sqlalchemy_url)
        try:
            with Session(engine) as session:
                rows = session.scalars(
                    select(RecordShare.agency_id).where(
                        RecordShare.record_id == uuid.UUID(seizure["id"])
                    )
                ).all()
                return {str(r) for r in rows}
        finally:
            engine.dispose()

    assert index() == {b_id}
    etag = a.get(f"/seizures/{seizure['id']}").headers["ETag"]
    r = a.patch(
        f"/seizures/{seizure['id']}",
        json={"sharing": "all", "reason": "wider"},
        headers={"If-Match": etag},
    )
    assert r.status_code == 200, r.text
    assert index() == set()


def test_approvals_and_audit_stay_with_the_owning_agency(
    as_: Callable[[str, str], Client], shared: dict[str, dict[str, str]]
) -> None:
    """Sharing a seizure shares its records, not the owner's four-eyes queue nor audit log."""
    records = shared["all"]
    r = as_("A", "officer").post(
        f"/items/{records['item']}/custody-events",
        json={"kind": "destroyed", "occurred_at": "2026-04-01T09:00:00Z", "reason": "court"},
    )
    assert r.status_code == 202, r.text
    approval = r.json()["id"]
    b = as_("B", "supervisor")
    assert b.get(f"/approvals/{approval}").status_code == 404
    assert all(a["id"] != approval for a in b.get("/approvals").json())
    r = b.post(f"/approvals/{approval}/decision", json={"approve": True})
    assert r.status_code == 404
    events = b.get("/audit/events", params={"limit": 1000}).json()
    assert all(e["entity_id"] not in records.values() for e in events)
    # The partner reads the custody timeline, which has no destruction until A approves.
    kinds = [e["kind"] for e in b.get(f"/items/{records['item']}/custody-events").json()]
    assert "destroyed" not in kinds and "sealed" in kinds
