"""Suggested links over HTTP: each reason kind, precursor → drug, isolation, decisions, bad input.

Every test works in its own stretch of time (seizure dates years apart) and with its own
reference values, so the module's shared database never links one test's seizures to
another's.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.api.deps import API_PREFIX
from service.api.routes import links as links_routes
from service.core.config import Settings
from service.linking.models import SeizureLink
from service.main import create_app
from service.models import VERSIONED
from service.testing import field_test_payload
from service.testing import unlinked_seizure_payload as bare

from .conftest import audit_actions

_eras = itertools.count()
_seeds = itertools.count(1000)


def _seed() -> int:
    """A spectrum of its own: noise spectra with different seeds are not alike."""
    return next(_seeds)


@pytest.fixture(scope="module")
def app_client(settings: Settings) -> Iterator[TestClient]:
    """The service app with the links router (until ``service.main`` includes it)."""
    app = create_app(settings)
    if not any(getattr(r, "path", "").startswith(f"{API_PREFIX}/links") for r in app.routes):
        app.include_router(links_routes.router, prefix=API_PREFIX)
    with TestClient(app) as client:
        yield client
    app.state.fieldscan.engine.dispose()


@pytest.fixture
def era() -> datetime:
    """A date no other test's seizures come near (route and precursor windows stay apart)."""
    return datetime(1990, 1, 1, tzinfo=UTC) + timedelta(days=1000 * next(_eras))


def _tag() -> str:
    return uuid.uuid4().hex[:10].upper()


def new_seizure(api: Any, body: dict[str, Any], *, substance: str | None = None) -> str:
    r = api.post("/seizures", json=body)
    assert r.status_code == 201, r.text
    seizure_id = str(r.json()["id"])
    if substance is not None:
        item = api.post(
            f"/seizures/{seizure_id}/items",
            json={"description": "bag", "substance": substance},
        )
        assert item.status_code == 201, item.text
    return seizure_id


def correlate(api: Any, seizure_id: str) -> dict[str, Any]:
    r = api.post(f"/seizures/{seizure_id}/correlate")
    assert r.status_code == 200, r.text
    return dict(r.json())


def only_link(api: Any, seizure_id: str) -> dict[str, Any]:
    r = api.get(f"/seizures/{seizure_id}/links")
    assert r.status_code == 200, r.text
    assert len(r.json()) == 1, r.json()
    return dict(r.json()[0])


def kinds(link: dict[str, Any]) -> set[str]:
    return {reason["kind"] for reason in link["reasons"]}


# --------------------------------------------------------------------------- reason kinds


@pytest.mark.parametrize(
    ("field", "first", "second", "kind"),
    [
        ("air_waybill", "045-{t}", "045 {t}", "air_waybill"),
        ("container_number", "MSCU{t}", "mscu-{t}", "container"),
        ("tracking_number", "RR{t}PE", "rr {t} pe", "tracking_number"),
    ],
)
def test_shared_consignment_reference_links(
    as_user: Any, era: datetime, field: str, first: str, second: str, kind: str
) -> None:
    api = as_user("A", "officer")
    tag = _tag()
    one = new_seizure(api, bare(era, **{field: first.format(t=tag)}))
    two = new_seizure(api, bare(era + timedelta(days=200), **{field: second.format(t=tag)}))
    unrelated = new_seizure(api, bare(era, **{field: first.format(t=_tag())}))
    correlate(api, one)
    # Linked on arrival already (reading waits for the queued correlation): correlating
    # again finds it and never duplicates it.
    only_link(api, two)
    result = correlate(api, two)
    assert result["created"] == 0 and len(result["links"]) == 1
    link = only_link(api, two)
    assert {link["seizure_a_id"], link["seizure_b_id"]} == {one, two}
    assert kinds(link) == {kind}
    assert tag in link["reasons"][0]["detail"]
    assert link["status"] == "suggested"
    assert 0 < link["strength"] <= 1
    assert correlate(api, unrelated)["links"] == []


def test_shared_person_and_company_link_and_strengths_combine(as_user: Any, era: datetime) -> None:
    api = as_user("A", "investigator")
    person = f"PASS-{_tag()}"
    company = f"Zephyr {_tag()} Trading"
    one = new_seizure(
        api, bare(era, persons=[{"reference": person}], companies=[{"name": company + " SAC"}])
    )
    two = new_seizure(api, bare(era, persons=[{"reference": person.lower()}]))
    three = new_seizure(api, bare(era, companies=[{"name": company.upper() + " S.A.C."}]))
    for seizure in (one, two, three):
        correlate(api, seizure)
    by_other = {
        (link["seizure_a_id"] if link["seizure_b_id"] == one else link["seizure_b_id"]): link
        for link in api.get(f"/seizures/{one}/links").json()
    }
    assert set(by_other) == {two, three}
    assert kinds(by_other[two]) == {"person"}
    assert kinds(by_other[three]) == {"company"}
    # A person reference is stronger evidence than a company name.
    assert by_other[two]["strength"] > by_other[three]["strength"]
    # Two and three share nothing with each other.
    assert [lk["id"] for lk in api.get(f"/seizures/{two}/links").json()] == [by_other[two]["id"]]


def test_same_route_links_only_within_the_time_window(as_user: Any, era: datetime) -> None:
    api = as_user("A", "officer")
    route = {"origin_country": "BO", "destination_country": "NL"}
    one = new_seizure(api, bare(era, **route))
    near = new_seizure(api, bare(era + timedelta(days=10), **route))
    far = new_seizure(api, bare(era + timedelta(days=90), **route))
    other_route = new_seizure(api, bare(era, origin_country="BO", destination_country="BE"))
    for seizure in (one, near, far, other_route):
        correlate(api, seizure)
    link = only_link(api, one)
    assert {link["seizure_a_id"], link["seizure_b_id"]} == {one, near}
    assert kinds(link) == {"route"}
    assert "BO → NL" in link["reasons"][0]["detail"]
    assert "10 days apart" in link["reasons"][0]["detail"]
    assert api.get(f"/seizures/{far}/links").json() == []
    assert api.get(f"/seizures/{other_route}/links").json() == []


def _mixture(components: list[tuple[str, float]]) -> dict[str, Any]:
    ident = {
        "verdict": "mixture",
        "candidates": [{"name": n, "score": 0.9} for n, _ in components],
        "components": [{"name": n, "fraction": f} for n, f in components],
        "library_version": "sha256:test",
    }
    return field_test_payload(64, seed=_seed(), identification=ident)


def test_same_chemical_profile_links_within_fraction_tolerance(as_user: Any, era: datetime) -> None:
    api = as_user("A", "officer")
    seizures = []
    for profile in (
        [("heroin hydrochloride", 0.55), ("caffeine", 0.30), ("paracetamol", 0.15)],
        [("heroin", 0.60), ("caffeine", 0.27), ("paracetamol", 0.13)],  # synonyms, close
        [("heroin hydrochloride", 0.80), ("caffeine", 0.10), ("paracetamol", 0.10)],  # far
        [("heroin hydrochloride", 0.55), ("caffeine", 0.45)],  # other cutting agents
    ):
        seizure = new_seizure(api, bare(era))
        item = api.post(f"/seizures/{seizure}/items", json={"description": "brick"}).json()
        r = api.post(f"/items/{item['id']}/field-tests", json=_mixture(profile))
        assert r.status_code == 201, r.text
        seizures.append(seizure)
    for seizure in seizures:
        correlate(api, seizure)
    link = only_link(api, seizures[0])
    assert {link["seizure_a_id"], link["seizure_b_id"]} == set(seizures[:2])
    assert kinds(link) == {"chemical_profile"}
    assert "heroin hydrochloride" in link["reasons"][0]["detail"]
    assert api.get(f"/seizures/{seizures[2]}/links").json() == []
    assert api.get(f"/seizures/{seizures[3]}/links").json() == []


# --------------------------------------------------------------------------- precursors


@pytest.mark.parametrize(
    ("precursor", "drug"),
    [
        ("ephedrine hydrochloride", "methamphetamine hydrochloride"),
        ("Acetic anhydride", "heroin"),  # synonym of heroin hydrochloride
        ("potassium permanganate", "cocaine HCl"),
        ("KMnO4", "cocaine base"),
    ],
)
def test_precursor_seizure_links_to_drug_seizure(
    as_user: Any, era: datetime, precursor: str, drug: str
) -> None:
    api = as_user("A", "officer")
    drug_seizure = new_seizure(api, bare(era), substance=drug)
    correlate(api, drug_seizure)
    precursor_seizure = new_seizure(api, bare(era + timedelta(days=60)), substance=precursor)
    unrelated = new_seizure(api, bare(era), substance="ketamine hydrochloride")
    correlate(api, unrelated)
    only_link(api, precursor_seizure)  # linked on arrival (reading waits for it)
    result = correlate(api, precursor_seizure)  # never duplicated
    assert result["created"] == 0 and len(result["links"]) == 1
    link = only_link(api, drug_seizure)
    assert {link["seizure_a_id"], link["seizure_b_id"]} == {drug_seizure, precursor_seizure}
    assert kinds(link) == {"precursor"}
    assert "is a precursor of" in link["reasons"][0]["detail"]
    assert api.get(f"/seizures/{unrelated}/links").json() == []


def test_precursor_found_by_a_field_test_links_to_a_later_drug_seizure(
    as_user: Any, era: datetime
) -> None:
    api = as_user("A", "officer")
    precursor_seizure = new_seizure(api, bare(era))
    item = api.post(f"/seizures/{precursor_seizure}/items", json={"description": "drum"}).json()
    ident = {
        "verdict": "identified",
        "candidates": [{"name": "ephedrine hydrochloride", "score": 0.97}],
        "components": [],
        "library_version": "sha256:test",
    }
    r = api.post(
        f"/items/{item['id']}/field-tests",
        json=field_test_payload(64, seed=_seed(), identification=ident),
    )
    assert r.status_code == 201, r.text
    correlate(api, precursor_seizure)
    drug_seizure = new_seizure(api, bare(era + timedelta(days=5)), substance="crystal meth")
    correlate(api, drug_seizure)
    link = only_link(api, precursor_seizure)
    assert link["reasons"][0]["detail"] == (
        "ephedrine hydrochloride is a precursor of methamphetamine hydrochloride"
    )


# --------------------------------------------------------------------------- isolation


def test_no_link_across_agencies(as_user: Any, era: datetime) -> None:
    a, b = as_user("A", "officer"), as_user("B", "officer")
    awb = f"999-{_tag()}"
    mine = new_seizure(a, bare(era, air_waybill=awb))
    theirs = new_seizure(b, bare(era, air_waybill=awb))
    correlate(a, mine)
    assert correlate(b, theirs)["links"] == []
    assert a.get(f"/seizures/{mine}/links").json() == []
    # Another agency's seizure is not found, whatever the endpoint.
    assert a.get(f"/seizures/{theirs}/links").status_code == 404
    assert a.post(f"/seizures/{theirs}/correlate").status_code == 404
    # Within B the same reference links.
    again = new_seizure(b, bare(era, air_waybill=awb))
    assert len(correlate(b, again)["links"]) == 1
    link_id = b.get(f"/seizures/{again}/links").json()[0]["id"]
    investigator_a = as_user("A", "investigator")
    assert investigator_a.get(f"/links/{link_id}").status_code == 404
    r = investigator_a.post(f"/links/{link_id}/accept", json={})
    assert r.status_code == 404
    assert link_id not in {lk["id"] for lk in investigator_a.get("/links").json()["data"]}


# --------------------------------------------------------------------------- decisions


def _pair(api: Any, era: datetime, **shared: Any) -> tuple[str, str, dict[str, Any]]:
    one = new_seizure(api, bare(era, **shared))
    two = new_seizure(api, bare(era, **shared))
    correlate(api, one)
    correlate(api, two)
    return one, two, only_link(api, one)


def test_accept_and_dismiss_are_audited_and_the_chain_verifies(
    as_user: Any, era: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    officer = as_user("A", "officer")
    investigator = as_user("A", "investigator")
    supervisor = as_user("A", "supervisor")
    _, _, link = _pair(officer, era, container_number=f"TGHU{_tag()}")
    # Officers read but do not decide.
    assert officer.get(f"/links/{link['id']}").status_code == 200
    assert officer.post(f"/links/{link['id']}/accept", json={}).status_code == 403
    r = investigator.post(f"/links/{link['id']}/accept", json={"reason": "same consignee"})
    assert r.status_code == 200, r.text
    accepted = r.json()
    assert accepted["status"] == "accepted" and accepted["version"] == link["version"] + 1
    assert accepted["decision_reason"] == "same consignee"
    assert accepted["decided_by_user_id"] is not None
    r = supervisor.post(f"/links/{link['id']}/dismiss", json={"reason": "different shipper"})
    assert r.status_code == 200 and r.json()["status"] == "dismissed"
    history = investigator.get(f"/links/{link['id']}/history").json()
    assert [h["data"]["status"] for h in history] == ["suggested", "accepted", "dismissed"]
    assert [h["reason"] for h in history] == [None, "same consignee", "different shipper"]
    assert audit_actions(supervisor, link["id"]) == ["suggest", "accept", "dismiss"]
    # Registered as a versioned table, each link row also matches its newest version.
    assert VERSIONED["seizure_link"] is SeizureLink
    checked = supervisor.get("/audit/verify").json()["rows_checked"]
    without_links = dict(VERSIONED)
    del without_links["seizure_link"]
    monkeypatch.setattr("service.audit.VERSIONED", without_links)
    assert supervisor.get("/audit/verify").json()["rows_checked"] < checked
    listed = investigator.get("/links", params={"status": "dismissed"}).json()["data"]
    assert link["id"] in {lk["id"] for lk in listed}
    assert link["id"] not in {
        lk["id"] for lk in investigator.get("/links", params={"status": "suggested"}).json()["data"]
    }


def test_recorrelation_updates_never_duplicates_and_dismissed_stays_dismissed(
    as_user: Any, era: datetime
) -> None:
    api = as_user("A", "investigator")
    tag = _tag()
    one, two, link = _pair(api, era, tracking_number=f"CP{tag}")
    again = correlate(api, one)
    assert again["created"] == 0 and again["updated"] == 0
    assert only_link(api, one)["version"] == link["version"]
    r = api.post(f"/links/{link['id']}/dismiss", json={"reason": "coincidence"})
    assert r.status_code == 200
    # Same reasons again: still dismissed.
    correlate(api, two)
    assert only_link(api, one)["status"] == "dismissed"
    # A new reason (a shared person added to both) brings it back as a suggestion.
    person = [{"reference": f"ID-{tag}"}]
    for seizure in (one, two):
        current = api.get(f"/seizures/{seizure}")
        r = api.patch(
            f"/seizures/{seizure}",
            json={"persons": person, "reason": "courier identified"},
            headers={"If-Match": current.headers["ETag"]},
        )
        assert r.status_code == 200, r.text
        correlate(api, seizure)  # what every write of a seizure triggers
    back = only_link(api, one)
    assert back["id"] == link["id"]
    assert back["status"] == "suggested" and back["decision_reason"] is None
    assert kinds(back) == {"tracking_number", "person"}
    assert back["strength"] > link["strength"]
    # The reference corrected away on one side: the reasons shrink, the link stays one row.
    current = api.get(f"/seizures/{two}")
    api.patch(
        f"/seizures/{two}",
        json={"tracking_number": None, "persons": [], "reason": "typo"},
        headers={"If-Match": current.headers["ETag"]},
    )
    correlate(api, two)
    gone = only_link(api, one)
    assert gone["status"] == "withdrawn" and gone["reasons"] == [] and gone["strength"] == 0


# --------------------------------------------------------------------------- bad input


def test_bad_input(as_user: Any, as_device: Any, era: datetime) -> None:
    api = as_user("A", "investigator")
    missing = uuid.uuid4()
    assert api.get(f"/seizures/{missing}/links").status_code == 404
    assert api.post(f"/seizures/{missing}/correlate").status_code == 404
    assert api.get(f"/links/{missing}").status_code == 404
    assert api.post(f"/links/{missing}/accept", json={}).status_code == 404
    assert api.post(f"/links/{missing}/dismiss", json={"reason": "x"}).status_code == 404
    assert api.get(f"/links/{missing}/history").status_code == 404
    assert api.get("/links", params={"status": "maybe"}).status_code == 422
    assert api.get("/links", params={"min_strength": 2}).status_code == 422
    assert api.get("/seizures/not-a-uuid/links").status_code == 422
    _, _, link = _pair(api, era, air_waybill=f"020-{_tag()}")
    # A dismissal needs a reason; nothing is written without one.
    r = api.post(f"/links/{link['id']}/dismiss", json={})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"][-1] == "reason"
    assert api.post(f"/links/{link['id']}/dismiss", json={"reason": ""}).status_code == 422
    assert api.get(f"/links/{link['id']}").json()["version"] == link["version"]
    # Unauthenticated callers and field stations' device keys get nothing.
    assert api.client.get(f"/api/v1/links/{link['id']}").status_code == 401
    assert as_device("A").get(f"/links/{link['id']}").status_code == 401


def test_decision_is_idempotent_by_client_key(as_user: Any, era: datetime) -> None:
    api = as_user("A", "analyst")
    _, _, link = _pair(as_user("A", "officer"), era, air_waybill=f"074-{_tag()}")
    key = str(uuid.uuid4())
    first = api.post(f"/links/{link['id']}/accept", json={}, headers={"Idempotency-Key": key})
    second = api.post(f"/links/{link['id']}/accept", json={}, headers={"Idempotency-Key": key})
    assert first.status_code == second.status_code == 200
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert first.json() == second.json()
    assert len(api.get(f"/links/{link['id']}/history").json()) == 2
