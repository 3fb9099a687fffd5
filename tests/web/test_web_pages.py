"""Pages and actions over HTTP (no browser): sessions, roles, isolation, pagination, bad input."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session

from service import crud
from service.core.db import make_engine
from service.models import Approval, Item, Seizure

LOGIN = "/ui/login"


def _login(client: TestClient, world: Any, role: str, agency: str = "A") -> None:
    r = client.post(
        LOGIN,
        data={
            "username": world.users[agency][role],
            "password": world.password,
            "next": "/ui/seizures",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text


def _row(settings: Any, model: Any, ident: Any) -> Any:
    engine = make_engine(settings.sqlalchemy_url)
    try:
        with Session(engine) as session:
            return session.get(model, ident)
    finally:
        engine.dispose()


def test_web_pages_need_a_session(ui_client: TestClient, scenario: Any) -> None:
    for path in (
        "/ui/seizures",
        f"/ui/seizures/{scenario.seizure_id}",
        "/ui/review",
        "/ui/oversight",
        "/ui/dashboard",
        f"/ui/field-tests/{scenario.test_id}/report.pdf",
        "/ui/seizures.csv",
    ):
        r = ui_client.get(path, follow_redirects=False)
        assert r.status_code == 303, path
        assert r.headers["location"].startswith("/ui/login?next=")
    assert (
        ui_client.get(
            "/ui/seizures",
            headers={"Cookie": "fieldscan_session=forged.token.value"},
            follow_redirects=False,
        ).status_code
        == 303
    )


def test_web_login_sets_a_strict_httponly_cookie(ui_client: TestClient, web_world: Any) -> None:
    r = ui_client.post(
        LOGIN,
        data={
            "username": web_world.users["A"]["officer"],
            "password": web_world.password,
            "next": "//evil.example/x",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert r.headers["location"] == "/ui/seizures"  # never an open redirect
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("fieldscan_session=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    r = ui_client.post("/ui/logout", follow_redirects=False)
    assert r.status_code == 303 and "fieldscan_session=" in r.headers["set-cookie"]
    assert ui_client.get("/ui/seizures", follow_redirects=False).status_code == 303


def test_web_bad_credentials_are_refused_without_a_cookie(
    ui_client: TestClient, web_world: Any
) -> None:
    r = ui_client.post(
        LOGIN, data={"username": web_world.users["A"]["officer"], "password": "nope nope nope"}
    )
    assert r.status_code == 401
    assert "Incorrect username or password." in r.text
    assert "set-cookie" not in r.headers
    r = ui_client.post(LOGIN, data={"username": "x" * 101, "password": "p"})
    assert r.status_code == 422


def test_web_cross_site_posts_are_refused(
    ui_client: TestClient, web_world: Any, scenario: Any, web_settings: Any
) -> None:
    _login(ui_client, web_world, "supervisor")
    before = _row(web_settings, Seizure, scenario.bulk_ids[5]).version
    r = ui_client.post(
        f"/ui/seizures/{scenario.bulk_ids[5]}/review",
        data={"action": "confirm", "version": before},
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert r.status_code == 403
    assert _row(web_settings, Seizure, scenario.bulk_ids[5]).version == before


def test_web_agency_isolation(ui_client: TestClient, web_world: Any, scenario: Any) -> None:
    _login(ui_client, web_world, "investigator")
    assert "Other agency secret place" not in ui_client.get("/ui/seizures?limit=200").text
    for path in (
        f"/ui/seizures/{scenario.other_seizure_id}",
        f"/ui/field-tests/{scenario.other_test_id}/report.pdf",
    ):
        r = ui_client.get(path)
        assert r.status_code == 404, path
    for kind in ("csv", "json", "unodc.csv", "incb.json"):
        assert "Other agency secret place" not in ui_client.get(f"/ui/seizures.{kind}").text
    assert "Other agency" not in ui_client.get("/ui/dashboard").text


def test_web_keyset_pages_cover_every_row_once_newest_first(
    ui_client: TestClient, web_world: Any, scenario: Any
) -> None:
    _login(ui_client, web_world, "officer")
    seen: list[str] = []
    url: str | None = "/ui/seizures?limit=7&transport_mode=air"
    pages = 0
    while url:
        r = ui_client.get(url, headers={"HX-Request": "true"} if "after=" in url else {})
        assert r.status_code == 200
        seen += re.findall(r'href="/ui/seizures/([0-9a-f-]{36})"', r.text)
        nxt = re.search(r'hx-get="(/ui/seizures\?[^"]+)"', r.text)  # the "show more" link
        url = nxt.group(1).replace("&amp;", "&") if nxt else None
        pages += 1
    # Bulk seizures 0, 3, 6... are by air, plus the main seizure.
    expected = {str(scenario.seizure_id)} | {
        str(i) for n, i in enumerate(scenario.bulk_ids) if n % 3 == 0
    }
    assert len(seen) == len(set(seen)) == len(expected)
    assert set(seen) == expected
    assert pages == -(-len(expected) // 7)


@pytest.mark.parametrize(
    "query",
    [
        "verdict=bogus",
        "date_from=yesterday",
        "country=PER",
        "status=lost",
        "after=not-a-cursor",
        "transport_mode=horse",
    ],
)
def test_web_bad_filters_are_a_clear_error(
    ui_client: TestClient, web_world: Any, query: str
) -> None:
    _login(ui_client, web_world, "officer")
    r = ui_client.get(f"/ui/seizures?{query}")
    assert r.status_code == 422
    assert 'role="alert"' in r.text


def test_web_filters_narrow_the_list(ui_client: TestClient, web_world: Any, scenario: Any) -> None:
    _login(ui_client, web_world, "officer")
    r = ui_client.get(
        "/ui/seizures", params={"substance": scenario.reference, "verdict": "identified"}
    )
    assert re.findall(r'href="/ui/seizures/([0-9a-f-]{36})"', r.text) == [str(scenario.seizure_id)]
    r = ui_client.get(
        "/ui/seizures", params={"date_from": "2026-03-13", "date_to": "2026-03-13", "q": "suitcase"}
    )
    assert (
        "Jorge Chávez airport" not in r.text
        and "Bulk place 000" in r.text
        and "Bulk place 001" not in r.text
    )
    r = ui_client.get("/ui/seizures", params={"q": "zzzz-nothing"})
    assert "No seizure matches these filters." in r.text


def test_web_review_actions_need_a_supervisor_and_are_versioned(
    ui_client: TestClient, web_world: Any, scenario: Any, web_settings: Any
) -> None:
    target = scenario.bulk_ids[1]
    version = _row(web_settings, Seizure, target).version
    _login(ui_client, web_world, "officer")
    r = ui_client.post(
        f"/ui/seizures/{target}/review", data={"action": "confirm", "version": version}
    )
    assert r.status_code == 403
    _login(ui_client, web_world, "supervisor")
    r = ui_client.post(
        f"/ui/seizures/{target}/review", data={"action": "reject", "version": version}
    )
    assert r.status_code == 422 and "needs a reason" in r.text
    r = ui_client.post(
        f"/ui/seizures/{target}/review", data={"action": "explode", "version": version}
    )
    assert r.status_code == 422
    r = ui_client.post(
        f"/ui/seizures/{target}/review",
        data={"action": "reject", "version": version, "reason": "wrong peak set"},
    )
    assert r.status_code == 200 and "Review recorded." in r.text
    row = _row(web_settings, Seizure, target)
    assert (row.status, row.version) == ("under_review", version + 1)
    assert "Field result rejected by supervisor: wrong peak set" in r.text
    r = ui_client.post(
        f"/ui/seizures/{target}/review", data={"action": "confirm", "version": version}
    )
    assert r.status_code == 412  # stale form: nothing written
    assert _row(web_settings, Seizure, target).version == version + 1


def test_web_lab_result_form(
    ui_client: TestClient, web_world: Any, scenario: Any, web_settings: Any
) -> None:
    _login(ui_client, web_world, "analyst")
    item = scenario.precursor_item_id
    r = ui_client.post(
        f"/ui/items/{item}/lab-result",
        data={
            "method": "gc_ms",
            "substance": "acetic anhydride",
            "analysed_on": "2026-03-20",
            "net_mass": "lots",
        },
    )
    assert r.status_code == 422 and "must be a number" in r.text
    r = ui_client.post(
        f"/ui/items/{item}/lab-result",
        data={
            "method": "gc_ms",
            "substance": "acetic anhydride",
            "analysed_on": "2026-03-20",
            "net_mass": "199,5",
        },
    )
    # The model's rule, shown in the user's words (not pydantic's English).
    assert r.status_code == 422 and "a mass needs its unit" in r.text
    r = ui_client.post(
        f"/ui/items/{item}/lab-result",
        data={
            "method": "gc_ms",
            "substance": "acetic anhydride",
            "analysed_on": "2026-03-20",
            "net_mass": "199,5",
            "mass_unit": "l",
            "purity_percent": "98",
        },
    )
    assert r.status_code == 200 and "Laboratory result recorded." in r.text
    assert (
        _row(web_settings, Seizure, scenario.seizure_id).status == "open"
    )  # analysts may not edit seizures
    _login(ui_client, web_world, "supervisor")
    r = ui_client.post(
        f"/ui/items/{item}/lab-result",
        data={"method": "ftir", "substance": "acetic anhydride", "analysed_on": "2026-03-21"},
    )
    assert r.status_code == 200
    assert _row(web_settings, Seizure, scenario.seizure_id).status == "lab_confirmed"
    _login(ui_client, web_world, "officer")
    r = ui_client.post(
        f"/ui/items/{item}/lab-result",
        data={"method": "gc_ms", "substance": "x", "analysed_on": "2026-03-20"},
    )
    assert r.status_code == 403


def test_web_four_eyes_requester_cannot_approve(
    ui_client: TestClient, web_world: Any, scenario: Any, web_settings: Any
) -> None:
    _login(ui_client, web_world, "supervisor")
    item = _row(web_settings, Item, scenario.precursor_item_id)
    r = ui_client.post(
        f"/ui/items/{item.id}/correction",
        data={
            "version": item.version,
            "reason": "re-measured",
            "net_mass": "150",
            "mass_unit": "l",
        },
    )
    assert r.status_code == 200 and "Change filed for approval by a second supervisor." in r.text
    assert _row(web_settings, Item, item.id).net_mass == 200.0  # not applied yet
    engine = make_engine(web_settings.sqlalchemy_url)
    with Session(engine) as session:
        sup = crud.get_user_by_username(
            session=session, username=web_world.users["A"]["supervisor"]
        )
        pending = [
            a
            for a in session.scalars(select(Approval)).all()
            if a.entity_id == item.id
            and a.status == "pending"
            and sup
            and a.requested_by_user_id == sup.id
        ]
    engine.dispose()
    approval = pending[0]
    r = ui_client.post(f"/ui/approvals/{approval.id}", data={"decision": "approve"})
    assert r.status_code == 403 and "requested yourself (four eyes)" in r.text
    _login(ui_client, web_world, "supervisor2")
    page = ui_client.get("/ui/review").text
    assert "re-measured" in page
    r = ui_client.post(
        f"/ui/approvals/{approval.id}", data={"decision": "approve", "reason": "scale ticket seen"}
    )
    assert r.status_code == 200
    assert _row(web_settings, Item, item.id).net_mass == 150.0
    r = ui_client.post(f"/ui/approvals/{approval.id}", data={"decision": "approve"})
    assert r.status_code == 409  # already decided
    r = ui_client.post(f"/ui/items/{item.id}/correction", data={"version": 99, "reason": "x"})
    assert r.status_code == 422  # neither substance nor mass given


def test_web_unknown_records_and_routes(ui_client: TestClient, web_world: Any) -> None:
    _login(ui_client, web_world, "officer")
    assert ui_client.get("/ui/seizures/00000000-0000-0000-0000-000000000000").status_code == 404
    assert ui_client.get("/ui/seizures/not-a-uuid").status_code == 422
    assert ui_client.get("/ui/seizures.xlsx").status_code == 404
    assert ui_client.get("/ui/lang/de", follow_redirects=False).status_code == 404


def test_web_language_choice_is_remembered_in_a_cookie(
    ui_client: TestClient, web_world: Any
) -> None:
    r = ui_client.get("/ui/lang/pt?next=/ui/login", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ui/login"
    assert "fieldscan_lang=pt" in r.headers["set-cookie"]
    page = ui_client.get("/ui/login")
    assert '<html lang="pt">' in page.text and "Iniciar sessão" in page.text
    r = ui_client.get(
        "/ui/login", headers={"Accept-Language": "es-ES,es;q=0.9", "Cookie": "fieldscan_lang="}
    )
    assert "Iniciar sesión" in r.text


@pytest.mark.parametrize("lang", ["en", "es", "fr", "pt"])
def test_web_every_page_renders_in_every_language(
    ui_client: TestClient, web_world: Any, scenario: Any, lang: str
) -> None:
    ui_client.cookies.set("fieldscan_lang", lang)
    _login(ui_client, web_world, "supervisor")
    for path in (
        "/ui/seizures",
        f"/ui/seizures/{scenario.seizure_id}",
        "/ui/review",
        "/ui/oversight",
        "/ui/dashboard",
    ):
        r = ui_client.get(path)
        assert r.status_code == 200, (lang, path)
        assert f'<html lang="{lang}">' in r.text
        assert r.headers["content-language"] == lang


def test_web_attachment_download(
    ui_client: TestClient, web_world: Any, scenario: Any, web_settings: Any
) -> None:
    from service import audit
    from service.audit import AuditSettings, CheckpointSigner

    engine = make_engine(web_settings.sqlalchemy_url)
    with Session(engine) as session:
        audit.bind(
            session,
            AuditSettings(
                signer=CheckpointSigner.load_or_create(web_settings.signing_key_path),
                checkpoint_every=50,
            ),
        )
        user = crud.get_user_by_username(session=session, username=web_world.users["A"]["officer"])
        assert user is not None
        att = crud.add_attachment(
            session=session,
            actor=crud.principal_for_user(user),
            item_id=scenario.item_id,
            filename="<photo>.jpg",
            media_type="image/jpeg",
            data=b"\xff\xd8jpeg",
        )
        session.commit()
        att_id = att.id
    engine.dispose()
    _login(ui_client, web_world, "officer")
    r = ui_client.get(f"/ui/attachments/{att_id}")
    assert r.status_code == 200 and r.content == b"\xff\xd8jpeg"
    assert r.headers["content-disposition"] == 'attachment; filename="photo.jpg"'
    _login(ui_client, web_world, "officer", agency="B")
    assert ui_client.get(f"/ui/attachments/{att_id}").status_code == 404


def test_web_seizure_pages_are_index_range_scans(
    web_settings: Any, web_world: Any, scenario: Any
) -> None:
    """Keyset pages read their indexes in order, however deep.

    A page merges three branches (own agency, named partner, shared with all, issue 8): each
    reads its own index from the cursor on and stops after one page, so nothing is sorted
    but the merged page itself, and no branch scans the seizure table.
    """
    if not web_settings.sqlalchemy_url.startswith("sqlite"):
        pytest.skip("reads SQLite's query plan (EXPLAIN QUERY PLAN)")
    from sqlalchemy import event

    from service.web import queries

    engine = make_engine(web_settings.sqlalchemy_url)
    captured: list[tuple[str, Any]] = []

    def grab(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM seizure" in statement:
            captured.append((statement, params))

    event.listen(engine, "before_cursor_execute", grab)
    with Session(engine) as session:
        user = crud.get_user_by_username(session=session, username=web_world.users["A"]["officer"])
        assert user is not None
        actor = crud.principal_for_user(user)
        _page, cursor = queries.seizure_page(
            session=session, actor=actor, filters=crud.SeizureFilter(), after=None, limit=5
        )
        assert cursor is not None
        queries.seizure_page(
            session=session, actor=actor, filters=crud.SeizureFilter(), after=cursor, limit=5
        )
    event.remove(engine, "before_cursor_execute", grab)
    with engine.connect() as conn:
        for statement, params in captured:
            rows = list(conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params))
            plan = " | ".join(r[-1] for r in rows)
            assert "INDEX ix_seizure_agency_seized_at (agency_id=?" in plan, plan
            assert "INDEX ix_seizure_sharing_seized_at (sharing=?" in plan, plan
            assert "INDEX ix_record_share_agency (agency_id=?" in plan, plan
            assert not any(r[-1].startswith("SCAN seizure") for r in rows), plan
            # Inside a branch (a materialised subquery) nothing is sorted: the index is.
            branches = {r[0] for r in rows if r[-1].startswith("MATERIALIZE")}
            sorted_in = [r for r in rows if "TEMP B-TREE" in r[-1] and r[1] in branches]
            assert sorted_in == [], plan
            if params and "seized_at" in statement and "<" in statement:
                assert "(seized_at,id)<(?,?)" in plan, plan  # a deep page starts at its cursor
    engine.dispose()
    assert len(captured) == 2


def test_web_confirmations_come_from_codes_not_from_links(
    ui_client: TestClient, web_world: Any
) -> None:
    _login(ui_client, web_world, "officer")
    page = ui_client.get(
        "/ui/review", params={"done": "Call QZX-evil now", "flash": "Call QZX-evil"}
    ).text
    assert "QZX-evil" not in page and 'role="status"' not in page
    page = ui_client.get("/ui/review", params={"done": "approved"}).text
    assert '<p class="flash" role="status">Decision recorded: approved.</p>' in page


def test_web_mount_is_idempotent_and_serves_static_files(
    web_app: Any, ui_client: TestClient
) -> None:
    from service.web import mount

    before = len(web_app.router.routes)
    mount(web_app)
    assert len(web_app.router.routes) == before
    r = ui_client.get("/ui/static/htmx.min.js")
    assert r.status_code == 200 and b"htmx" in r.content[:2000]
    assert ui_client.get("/", follow_redirects=False).headers["location"] == "/ui/"
    assert ui_client.get("/ui/static/../routes.py").status_code == 404


def test_web_error_page_links_back_only_within_the_site(
    ui_client: TestClient, web_world: Any
) -> None:
    _login(ui_client, web_world, "officer")
    r = ui_client.get(
        "/ui/seizures?verdict=x", headers={"Referer": "http://testserver/ui/review?a=1"}
    )
    assert r.status_code == 422 and 'href="/ui/review?a=1"' in r.text
    r = ui_client.get(
        "/ui/seizures?verdict=x", headers={"Referer": "https://evil.example/ui/review"}
    )
    assert "evil" not in r.text and ">Back</a>" not in r.text
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
