"""Alerts: a seizure linked to another agency's seizure alerts both agencies, each seeing only
what it may read; marking read is audited; the web page and badge, in every language."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from service.testing import World, field_test_payload
from service.testing import unlinked_seizure_payload as bare

from .conftest import audit_actions, login

_eras = itertools.count()


@pytest.fixture
def era() -> datetime:
    return datetime(1700, 1, 1, tzinfo=UTC) + timedelta(days=1000 * next(_eras))


def _tag() -> str:
    return uuid.uuid4().hex[:10].upper()


def post_seizure(api: Any, body: dict[str, Any]) -> str:
    r = api.post("/seizures", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def alerts_of(api: Any, seizure_id: str) -> list[dict[str, Any]]:
    r = api.get("/alerts", params={"limit": 500})
    assert r.status_code == 200, r.text
    return [a for a in r.json()["data"] if a["seizure_id"] == seizure_id]


def mixture(fractions: list[tuple[str, float]], seed: int) -> dict[str, Any]:
    ident = {
        "verdict": "mixture",
        "candidates": [{"name": n, "score": 0.9} for n, _ in fractions],
        "components": [{"name": n, "fraction": f} for n, f in fractions],
        "library_version": "sha256:test",
    }
    return field_test_payload(64, seed=seed, identification=ident)


def test_both_agencies_are_alerted_and_the_other_side_learns_nothing_unshared(
    as_user: Any, world: World, era: datetime
) -> None:
    """A shares a seizure with B; B's own seizure gets a field test of the same profile."""
    officer_a, officer_b = as_user("A", "officer"), as_user("B", "officer")
    a_id = post_seizure(
        officer_a,
        bare(era, sharing="partners", shared_with=[str(world.agencies["B"])]),
    )
    item = officer_a.post(f"/seizures/{a_id}/items", json={"description": "brick"}).json()
    officer_a.post(
        f"/items/{item['id']}/field-tests",
        json=mixture([("cocaine HCl", 0.71), ("levamisole", 0.29)], seed=1),
    )
    b_id = post_seizure(officer_b, bare(era + timedelta(days=5), narrative="B's secret narrative"))
    item = officer_b.post(f"/seizures/{b_id}/items", json={"description": "brick"}).json()
    a, b = as_user("A", "investigator"), as_user("B", "investigator")
    assert alerts_of(b, b_id) == [] and alerts_of(a, a_id) == []
    officer_b.post(
        f"/items/{item['id']}/field-tests",
        json=mixture([("cocaine HCl", 0.64), ("levamisole", 0.36)], seed=2),
    )

    # B reads both: its alert names A's seizure, its link and the full reasons.
    (b_alert,) = alerts_of(b, b_id)
    assert b_alert["other_agency_id"] == str(world.agencies["A"])
    assert b_alert["other_agency_name"].startswith("A customs")
    assert b_alert["other_seizure_id"] == a_id
    (b_link,) = b.get(f"/seizures/{b_id}/links").json()
    assert b_alert["link_id"] == b_link["id"]
    (reason,) = b_alert["reasons"]
    assert reason["kind"] == "chemical_profile"
    assert "71%" in reason["detail"] and "64%" in reason["detail"]

    # A may not read B's own seizure: an alert that B's seizure exists and why, in A's terms.
    (a_alert,) = alerts_of(a, a_id)
    assert a_alert["other_agency_id"] == str(world.agencies["B"])
    assert a_alert["other_seizure_id"] is None and a_alert["link_id"] is None
    (reason,) = a_alert["reasons"]
    assert reason["kind"] == "chemical_profile"
    text = str(a_alert)
    assert b_id not in text and "%" not in reason["detail"]  # no fractions of B's
    assert "B's secret narrative" not in text
    assert a.get(f"/seizures/{a_id}/links").json() == []

    # Correlating again raises no second alert.
    r = as_user("B", "investigator").post(f"/seizures/{b_id}/correlate")
    assert r.status_code == 200 and r.json()["alerts"] == 0
    assert len(alerts_of(b, b_id)) == 1 and len(alerts_of(a, a_id)) == 1


def test_an_alert_names_values_in_the_recipients_own_spelling(
    as_user: Any, world: World, era: datetime
) -> None:
    person = f"Juan Perez {_tag()}"
    a_id = post_seizure(
        as_user("A", "officer"),
        bare(era, persons=[{"reference": person}], destination_country="ES", origin_country="PE"),
    )
    b_id = post_seizure(
        as_user("B", "officer"),
        bare(
            era + timedelta(days=3),
            persons=[{"reference": person.upper()}],
            destination_country="ES",
            origin_country="PE",
            sharing="all",
        ),
    )
    (a_alert,) = alerts_of(as_user("A", "investigator"), a_id)  # A reads B's: full reasons
    assert a_alert["other_seizure_id"] == b_id
    (b_alert,) = alerts_of(as_user("B", "investigator"), b_id)  # B does not read A's
    assert b_alert["other_seizure_id"] is None
    details = {r["kind"]: r["detail"] for r in b_alert["reasons"]}
    assert details == {"person": f"same person: {person.upper()}", "route": "same route PE → ES"}
    assert "3 days" not in str(b_alert)


def test_an_alert_shows_more_once_the_other_agency_shares(
    as_user: Any, world: World, era: datetime
) -> None:
    awb = f"070-{_tag()}"
    a_id = post_seizure(
        as_user("A", "officer"),
        bare(era, air_waybill=awb, sharing="partners", shared_with=[str(world.agencies["B"])]),
    )
    officer_b = as_user("B", "officer")
    b_id = post_seizure(officer_b, bare(era, air_waybill=awb, destination_country="NL"))
    a = as_user("A", "investigator")
    (alert,) = alerts_of(a, a_id)
    assert alert["other_seizure_id"] is None and alert["link_id"] is None
    r = officer_b.patch(
        f"/seizures/{b_id}",
        json={"sharing": "partners", "shared_with": [str(world.agencies["A"])], "reason": "JIT"},
        headers={"If-Match": '"1"'},
    )
    assert r.status_code == 200, r.text
    (alert,) = alerts_of(a, a_id)  # the same alert, now with the seizure and A's own link
    (link,) = a.get(f"/seizures/{a_id}/links").json()
    assert alert["other_seizure_id"] == b_id and alert["link_id"] == link["id"]
    assert alert["reasons"] == link["reasons"]


def test_no_alert_within_one_agency(as_user: Any, era: datetime) -> None:
    awb = f"080-{_tag()}"
    first = post_seizure(as_user("A", "officer"), bare(era, air_waybill=awb))
    post_seizure(as_user("A", "officer"), bare(era, air_waybill=awb))
    api = as_user("A", "investigator")
    assert len(api.get(f"/seizures/{first}/links").json()) == 1
    assert alerts_of(api, first) == []


def test_mark_read_is_audited_idempotent_and_counted(
    as_user: Any, world: World, era: datetime
) -> None:
    container = f"TGHU{_tag()}"
    b_id = post_seizure(
        as_user("B", "officer"), bare(era, container_number=container, sharing="all")
    )
    a_id = post_seizure(as_user("A", "officer"), bare(era, container_number=container))
    a = as_user("A", "investigator")
    (alert,) = alerts_of(a, a_id)
    assert alert["read_at"] is None and alert["other_seizure_id"] == b_id
    unread = a.get("/alerts").json()["unread"]
    assert unread >= 1
    assert alert["id"] in {
        x["id"] for x in a.get("/alerts", params={"unread": True}).json()["data"]
    }

    r = a.post(f"/alerts/{alert['id']}/read")
    assert r.status_code == 200, r.text
    read = r.json()
    assert read["read_at"] is not None and read["version"] == 2
    assert a.get("/alerts").json()["unread"] == unread - 1
    assert alert["id"] not in {
        x["id"] for x in a.get("/alerts", params={"unread": True}).json()["data"]
    }
    # Again: nothing changes (same version), and a colleague sees it read.
    again = as_user("A", "supervisor").post(f"/alerts/{alert['id']}/read").json()
    assert again["version"] == 2 and again["read_at"] == read["read_at"]
    history = a.get(f"/alerts/{alert['id']}/history").json()
    assert [v["version"] for v in history] == [1, 2]
    assert history[1]["data"]["read_by_user_id"] == read["read_by_user_id"] is not None
    assert audit_actions(as_user("A", "supervisor"), alert["id"]) == ["alert", "read"]
    # B's alert is B's own, unread.
    (b_alert,) = alerts_of(as_user("B", "investigator"), b_id)
    assert b_alert["read_at"] is None


def test_bad_input_and_other_agencies_alerts(
    as_user: Any, as_device: Any, world: World, era: datetime
) -> None:
    container = f"CAIU{_tag()}"
    post_seizure(as_user("B", "officer"), bare(era, container_number=container, sharing="all"))
    a_id = post_seizure(as_user("A", "officer"), bare(era, container_number=container))
    a, b = as_user("A", "investigator"), as_user("B", "investigator")
    (alert,) = alerts_of(a, a_id)
    assert b.get(f"/alerts/{alert['id']}").status_code == 404
    assert b.post(f"/alerts/{alert['id']}/read").status_code == 404
    assert b.get(f"/alerts/{alert['id']}/history").status_code == 404
    assert a.get(f"/alerts/{uuid.uuid4()}").status_code == 404
    assert a.post(f"/alerts/{uuid.uuid4()}/read").status_code == 404
    assert a.get("/alerts/not-a-uuid").status_code == 422
    assert a.get("/alerts", params={"limit": 0}).status_code == 422
    assert a.get("/alerts", params={"limit": 501}).status_code == 422
    assert a.get("/alerts", params={"skip": -1}).status_code == 422
    assert a.get("/alerts", params={"unread": "perhaps"}).status_code == 422
    assert as_device("A").get("/alerts").status_code == 401  # people only
    # Still unread after all that.
    assert a.get(f"/alerts/{alert['id']}").json()["read_at"] is None


@pytest.mark.parametrize(
    ("lang", "title", "kind"),
    [
        ("en", "Alerts", "Same air waybill"),
        ("es", "Alertas", "Misma guía aérea"),
        ("fr", "Alertes", "Même lettre de transport aérien"),
        ("pt", "Alertas", "Mesmo conhecimento aéreo"),
    ],
)
def test_web_alerts_page_badge_and_mark_read(
    app_client: Any, as_user: Any, world: World, era: datetime, lang: str, title: str, kind: str
) -> None:
    awb = f"090-{_tag()}"
    post_seizure(as_user("B", "officer"), bare(era, air_waybill=awb, sharing="all"))
    a_id = post_seizure(as_user("A", "officer"), bare(era, air_waybill=awb))
    app_client.cookies.clear()
    r = app_client.post(
        "/ui/login",
        data={"username": world.users["A"]["investigator"], "password": world.password},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    app_client.cookies.set("fieldscan_lang", lang)
    page = app_client.get("/ui/alerts")
    assert page.status_code == 200
    assert f"<h1>{title}</h1>" in page.text
    assert kind in page.text and awb.replace("-", "") in page.text
    assert f"/ui/seizures/{a_id}" in page.text
    badge = app_client.get("/ui/alerts/badge")
    assert badge.status_code == 200 and title in badge.text and 'class="badge unread"' in badge.text
    api = login(app_client, world.users["A"]["investigator"], world.password)
    (alert,) = alerts_of(api, a_id)
    # Marking read needs a same-origin form post; a cross-site one is refused.
    refused = app_client.post(
        f"/ui/alerts/{alert['id']}/read", headers={"Origin": "https://evil.example"}
    )
    assert refused.status_code == 403
    done = app_client.post(
        f"/ui/alerts/{alert['id']}/read",
        headers={"Origin": "http://testserver"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert api.get(f"/alerts/{alert['id']}").json()["read_at"] is not None
    confirmed = app_client.get(done.headers["location"])  # the page says it was done
    assert '<p class="flash" role="status">' in confirmed.text
    app_client.cookies.clear()
