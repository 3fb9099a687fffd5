"""Case pages (issue 8): list, detail, forms, sharing, the case graph; in every language and
in Debian's Chromium."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.web.i18n import LANG_COOKIE, LANGUAGES, translations
from tests.web.conftest import chromium


def _login(client: TestClient, username: str, password: str) -> None:
    client.cookies.clear()
    r = client.post(
        "/ui/login",
        data={"username": username, "password": password, "next": "/ui/cases"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text


def _open_case(client: TestClient, **fields: str) -> str:
    data = {
        "title": "Operation Cóndor",
        "reference": f"WEB-{uuid.uuid4().hex[:8]}",
        "summary": "Air freight from Lima",
        "form_id": str(uuid.uuid4()),
        **fields,
    }
    r = client.post("/ui/cases", data=data, follow_redirects=False)
    assert r.status_code == 303, r.text
    location = r.headers["location"]
    assert "done=created" in location
    match = re.search(r"/ui/cases/([0-9a-f-]{36})", location)
    assert match, location
    return match.group(1)


def _post(client: TestClient, path: str, data: dict[str, Any]) -> Any:
    return client.post(path, data=data, follow_redirects=False)


def _version(html: str, action: str) -> str:
    """The record version a form on the page carries (its If-Match)."""
    form = html[html.index(f'action="{action}"') :]
    match = re.search(r'name="version" value="(\d+)"', form)
    assert match
    return match.group(1)


def test_case_pages_render_in_every_language(ui_client: TestClient, web_world: Any) -> None:
    _login(ui_client, web_world.users["A"]["investigator"], web_world.password)
    case_id = _open_case(ui_client)
    for lang in LANGUAGES:
        ui_client.cookies.set(LANG_COOKIE, lang)
        _ = translations(lang).gettext
        listing = ui_client.get("/ui/cases")
        assert listing.status_code == 200 and listing.headers["Content-Language"] == lang
        assert _("Open a case") in listing.text and _("Most recently changed first") in listing.text
        page = ui_client.get(f"/ui/cases/{case_id}")
        assert page.status_code == 200, page.text
        for text in ("Case graph", "Tasks", "Notes", "Assign a task", "Legend", "Suggested link"):
            assert str(_(text)) in page.text or str(_(text)).replace("'", "&#39;") in page.text, (
                lang,
                text,
            )
        assert '<svg xmlns="http://www.w3.org/2000/svg" class="case-graph" role="img"' in page.text
        if lang != "en":
            assert _("Case graph") != "Case graph"


def test_case_forms_members_tasks_notes_and_sharing(
    ui_client: TestClient, web_world: Any, scenario: Any
) -> None:
    _login(ui_client, web_world.users["A"]["investigator"], web_world.password)
    case_id = _open_case(ui_client)
    base = f"/ui/cases/{case_id}"
    # Members: one from the list, one by identifier; the graph draws both.
    r = _post(
        ui_client, f"{base}/seizures", {"seizure_id": str(scenario.seizure_id), "note": "AWB"}
    )
    assert r.status_code == 303 and "done=member" in r.headers["location"]
    r = _post(ui_client, f"{base}/seizures", {"seizure_ref": str(scenario.bulk_ids[0])})
    assert r.status_code == 303
    page = ui_client.get(base).text
    assert page.count('class="node node-seizure"') == 2
    assert f'href="/ui/seizures/{scenario.seizure_id}"' in page
    # Another agency's seizure that is not shared cannot be added: a clear error, nothing kept.
    r = _post(ui_client, f"{base}/seizures", {"seizure_id": str(scenario.other_seizure_id)})
    assert r.status_code == 422 and "seizure" in r.text.lower()
    assert ui_client.get(base).text.count('class="node node-seizure"') == 2

    # Tasks: an overdue one is highlighted, with words, not only colour.
    investigator = _user_id(ui_client, base)
    yesterday = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    task = {
        "kind": "controlled_delivery",
        "title": "Controlled delivery to Madrid",
        "owner_user_id": investigator,
        "due_date": yesterday,
        "form_id": str(uuid.uuid4()),
    }
    assert _post(ui_client, f"{base}/tasks", task).status_code == 303
    assert _post(ui_client, f"{base}/tasks", task).status_code == 303  # sent twice: one task
    page = ui_client.get(base).text
    assert page.count('<tr class="task') == 1
    assert 'class="task overdue"' in page and "overdue-flag" in page
    bad = _post(ui_client, f"{base}/tasks", {**task, "due_date": "soon", "form_id": ""})
    assert bad.status_code == 422
    bad = _post(ui_client, f"{base}/tasks", {**task, "kind": "wiretap", "form_id": ""})
    assert bad.status_code == 422
    task_id = re.search(r'action="/ui/case-tasks/([0-9a-f-]{36})/status"', page)
    assert task_id
    r = _post(
        ui_client,
        f"/ui/case-tasks/{task_id.group(1)}/status",
        {"status": "done", "version": "1"},
    )
    assert r.status_code == 303
    page = ui_client.get(base).text
    assert 'class="task overdue"' not in page
    stale = _post(
        ui_client, f"/ui/case-tasks/{task_id.group(1)}/status", {"status": "open", "version": "1"}
    )
    assert stale.status_code == 412

    # Notes.
    note = {
        "text": "Courier met the consignee at the cargo terminal.",
        "form_id": str(uuid.uuid4()),
    }
    assert _post(ui_client, f"{base}/notes", note).status_code == 303
    assert "Courier met the consignee" in ui_client.get(base).text
    assert _post(ui_client, f"{base}/notes", {"text": "   "}).status_code == 422

    # Persons, companies and documents.
    person = {"kind": "person", "name": "P-77", "role": "courier", "country": "pe"}
    assert _post(ui_client, f"{base}/entities", person).status_code == 303
    company = {"kind": "company", "name": "Andes Freight SAC", "country": "PE"}
    assert _post(ui_client, f"{base}/entities", company).status_code == 303
    assert _post(ui_client, f"{base}/entities", {**person, "kind": "ship"}).status_code == 422
    assert _post(ui_client, f"{base}/entities", {**person, "country": "P1"}).status_code == 422
    r = ui_client.post(
        f"{base}/documents",
        files={"file": ("mla-request.pdf", b"%PDF-1.4 MLA", "application/pdf")},
        data={"description": "MLA request to Spain"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and "done=document" in r.headers["location"]
    page = ui_client.get(base).text
    assert "P-77 (courier)" in page and "Andes Freight SAC (PE)" in page
    link = re.search(r'href="(/ui/case-documents/[0-9a-f-]{36})">mla-request.pdf', page)
    assert link
    download = ui_client.get(link.group(1))
    assert download.status_code == 200 and download.content == b"%PDF-1.4 MLA"
    assert "attachment" in download.headers["content-disposition"]
    # The company node is drawn (named by the case, and the seizures have it too).
    assert 'class="node node-company"' in page
    remove = re.search(r'P-77 \(courier\)<form method="post" action="([^"]+/remove)"', page)
    assert remove
    assert _post(ui_client, remove.group(1), {"reason": " "}).status_code == 422
    assert _post(ui_client, remove.group(1), {"reason": "wrong person"}).status_code == 303
    assert (
        "P-77 (courier)"
        not in ui_client.get(base).text.split('id="entity-list"')[1].split("</ul>")[0]
    )

    # Sharing with agency B: B's investigator reads, cannot write.
    page = ui_client.get(base).text
    version = _version(page, f"{base}/sharing")
    partners = {"sharing": "partners", "version": version, "reason": "joint investigation"}
    assert _post(ui_client, f"{base}/sharing", {**partners, "partners": []}).status_code == 422
    r = _post(
        ui_client, f"{base}/sharing", {**partners, "partners": [str(web_world.agencies["B"])]}
    )
    assert r.status_code == 303, r.text
    _login(ui_client, web_world.users["B"]["investigator"], web_world.password)
    shared = ui_client.get(base)
    assert shared.status_code == 200 and 'id="shared-notice"' in shared.text
    assert f'action="{base}/notes"' not in shared.text  # no forms for a reader
    assert "Courier met the consignee" in shared.text
    # A's seizures are not shared with B: the graph leaves them out and says so.
    assert 'class="node node-seizure"' not in shared.text and 'id="hidden-members"' in shared.text
    r = _post(ui_client, f"{base}/notes", {"text": "B writes"})
    assert r.status_code == 403
    # An agency that is not a partner sees nothing.
    _login(ui_client, web_world.users["B"]["officer"], web_world.password)
    assert ui_client.get(base).status_code == 404


def _user_id(client: TestClient, base: str) -> str:
    page = client.get(base).text
    match = re.search(
        r'<option value="([0-9a-f-]{36})" selected>', page[page.index('id="t-owner"') :]
    )
    assert match
    return match.group(1)


def test_case_list_filters_and_roles(ui_client: TestClient, web_world: Any) -> None:
    _login(ui_client, web_world.users["A"]["supervisor"], web_world.password)
    mine = _open_case(ui_client, title="Needle in haystack")
    r = ui_client.get("/ui/cases", params={"q": "Needle"})
    assert r.status_code == 200 and f"/ui/cases/{mine}" in r.text
    assert f"/ui/cases/{mine}" not in ui_client.get("/ui/cases", params={"status": "closed"}).text
    assert ui_client.get("/ui/cases", params={"status": "cold"}).status_code == 422
    _login(ui_client, web_world.users["A"]["analyst"], web_world.password)
    listing = ui_client.get("/ui/cases")
    assert f"/ui/cases/{mine}" in listing.text and 'id="h-new-case"' not in listing.text
    denied = _post(ui_client, "/ui/cases", {"title": "x", "reference": "NOPE-1"})
    assert denied.status_code == 403
    _login(ui_client, web_world.users["A"]["officer"], web_world.password)
    assert ui_client.get(f"/ui/cases/{mine}").status_code == 404  # no task of theirs in it
    _login(ui_client, web_world.users["A"]["admin"], web_world.password)
    assert ui_client.get("/ui/cases").status_code == 403


# --------------------------------------------------------------------------- browser


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    profile = tmp_path_factory.mktemp("chromium-cases")
    with chromium(profile, viewport={"width": 1280, "height": 1000}) as context:
        yield context


def test_web_browser_case_graph(browser: Any, live: Any, artifacts_dir: Path) -> None:
    page = browser.new_page()
    try:
        page.goto(f"{live.base}/ui/login?next=/ui/cases")
        page.get_by_label("Username").fill(live.world.users["A"]["investigator"])
        page.get_by_label("Password").fill(live.world.password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(re.compile(r".*/ui/cases$"))
        page.get_by_label("Title").fill("Operation Pacific")
        page.get_by_label("Reference (your file number)").fill(f"BR-{uuid.uuid4().hex[:6]}")
        page.get_by_role("button", name="Open case").click()
        page.wait_for_url(re.compile(r".*/ui/cases/[0-9a-f-]{36}\?done=created"))
        for seizure_id in (live.scenario.seizure_id, live.scenario.bulk_ids[0]):
            page.locator("summary", has_text="Add a seizure").click()
            page.locator("#add-seizure").select_option(str(seizure_id))
            page.get_by_role("button", name="Add to case").click()
            page.wait_for_url(re.compile(r".*done=member"))
        svg = page.locator("svg.case-graph")
        assert svg.get_attribute("role") == "img"
        assert svg.locator("title#case-graph-title").text_content() == "Case graph"
        nodes = svg.locator("a.node-seizure")
        assert nodes.count() == 2
        found = {nodes.nth(i).get_attribute("data-seizure-id") for i in range(2)}
        assert found == {str(live.scenario.seizure_id), str(live.scenario.bulk_ids[0])}
        assert svg.locator("g.legend").count() == 1
        # The two seizures share a person, a company and a route: drawn between them.
        assert svg.locator("g.node-person").count() >= 1
        page.screenshot(path=str(artifacts_dir / "case-graph.png"), full_page=True)
        nodes.first.click()
        page.wait_for_url(re.compile(r".*/ui/seizures/[0-9a-f-]{36}$"))
    finally:
        page.close()


@pytest.mark.parametrize(
    ("name", "disposition"),
    [
        ("<photo>.jpg", 'attachment; filename="photo.jpg"'),
        ('a"b/../c.pdf\r\n', 'attachment; filename="ab..c.pdf"'),
        ("\r\n", 'attachment; filename="file"'),
        (
            "Solicitud España.pdf",
            'attachment; filename="Solicitud Espana.pdf"; '
            "filename*=UTF-8''Solicitud%20Espa%C3%B1a.pdf",
        ),
        ("Łódź.pdf", "attachment; filename=\"odz.pdf\"; filename*=UTF-8''%C5%81%C3%B3d%C5%BA.pdf"),
    ],
)
def test_stored_files_download_under_a_safe_name(name: str, disposition: str) -> None:
    """Case documents and item attachments: no quote, path or line break reaches the
    header, and names in other scripts survive for clients that read RFC 6266."""
    from service.web.pages import stored_file

    r = stored_file(b"%PDF", name, "application/pdf")
    assert r.headers["content-disposition"] == disposition
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cache-control"] == "no-store"
    assert r.body == b"%PDF"
