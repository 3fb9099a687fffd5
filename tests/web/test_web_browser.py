"""End to end in Debian's Chromium (headless, driven by Playwright; no browser download).

The service runs under uvicorn on 127.0.0.1 with a free port and a SQLite database in a
temporary directory; screenshots of the main pages go to ``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.web.conftest import CHROMIUM, chromium

if not Path(CHROMIUM).exists():  # pragma: no cover - scripts/install-browser.sh installs it
    pytest.fail(f"{CHROMIUM} is missing: run scripts/install-browser.sh", pytrace=False)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    profile = tmp_path_factory.mktemp("chromium-profile")
    with chromium(
        profile, viewport={"width": 1280, "height": 900}, accept_downloads=True
    ) as context:
        yield context


@pytest.fixture()
def page(browser: Any) -> Iterator[Any]:
    browser.clear_cookies()
    pg = browser.new_page()
    try:
        yield pg
    finally:
        pg.close()


def _login(page: Any, live: Any, agency: str, role: str) -> None:
    page.goto(f"{live.base}/ui/login")
    page.get_by_label("Username").fill(live.world.users[agency][role])
    page.get_by_label("Password").fill(live.world.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r".*/ui/seizures.*"))


@pytest.mark.parametrize("role", ["officer", "supervisor", "investigator", "analyst", "admin"])
def test_web_each_role_logs_in_and_sees_only_its_agency(
    page: Any, live: Any, role: str, artifacts_dir: Path
) -> None:
    _login(page, live, "A", role)
    who = page.locator(".who").inner_text()
    assert live.world.users["A"][role] in who
    body = page.locator("main").inner_text()
    assert "Jorge Chávez airport" in body
    assert "Other agency secret place" not in body
    page.goto(f"{live.base}/ui/seizures/{live.scenario.seizure_id}")
    review_buttons = page.get_by_role("button", name="Confirm field result").count()
    assert review_buttons == (1 if role == "supervisor" else 0)
    page.goto(f"{live.base}/ui/seizures/{live.scenario.other_seizure_id}")
    assert "not found" in page.locator("main").inner_text()
    if role == "supervisor":
        page.goto(f"{live.base}/ui/seizures")
        page.screenshot(path=str(artifacts_dir / "seizures.png"), full_page=True)


def test_web_wrong_password_is_refused(page: Any, live: Any) -> None:
    page.goto(f"{live.base}/ui/login")
    page.get_by_label("Username").fill(live.world.users["A"]["officer"])
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text() == "Incorrect username or password."
    assert not [c for c in page.context.cookies() if c["name"] == "fieldscan_session"]


def test_web_supervisor_reviews_a_seizure(page: Any, live: Any, artifacts_dir: Path) -> None:
    _login(page, live, "A", "supervisor")
    page.goto(f"{live.base}/ui/seizures/{live.scenario.bulk_ids[0]}")
    page.get_by_label("Reason (required to reject)").fill("spectrum unconvincing")
    page.get_by_role("button", name="Request laboratory confirmation").click()
    assert page.get_by_role("status").inner_text() == "Review recorded."
    assert page.locator("#seizure-status").inner_text() == "Awaiting laboratory"
    history = page.locator("#h-history + table").inner_text()
    assert "Laboratory confirmation requested: spectrum unconvincing" in history
    page.goto(f"{live.base}/ui/seizures/{live.scenario.seizure_id}")
    page.screenshot(path=str(artifacts_dir / "seizure-detail.png"), full_page=True)


def test_web_four_eyes_change_approved_by_a_second_supervisor(
    page: Any, live: Any, browser: Any, artifacts_dir: Path
) -> None:
    _login(page, live, "A", "supervisor")
    page.goto(f"{live.base}/ui/seizures/{live.scenario.seizure_id}")
    page.locator("summary", has_text="Correct substance or mass").first.click()
    correction = page.locator("form[action$='/correction']").first
    correction.get_by_label("New substance").fill("cocaine HCl")
    correction.get_by_label("Reason", exact=True).fill("laboratory salt form")
    page.get_by_role("button", name="File change").first.click()
    assert (
        page.get_by_role("status").inner_text()
        == "Change filed for approval by a second supervisor."
    )
    page.goto(f"{live.base}/ui/review")
    mine = page.locator(".approval", has_text="laboratory salt form")
    assert "another supervisor must decide" in mine.inner_text()
    assert mine.get_by_role("button", name="Approve").count() == 0

    browser.clear_cookies()
    _login(page, live, "A", "supervisor2")
    page.goto(f"{live.base}/ui/review")
    page.screenshot(path=str(artifacts_dir / "review-queue.png"), full_page=True)
    card = page.locator(".approval", has_text="laboratory salt form")
    card.get_by_label("Reason").fill("checked the lab sheet")
    card.get_by_role("button", name="Approve").click()
    assert page.get_by_role("status").inner_text() == "Decision recorded: approved."
    page.goto(f"{live.base}/ui/seizures/{live.scenario.seizure_id}")
    assert "cocaine HCl" in page.locator("section", has_text="Item 1").first.inner_text()


def test_web_pdf_report_downloads_with_its_evidence(page: Any, live: Any) -> None:
    from pypdf import PdfReader

    _login(page, live, "A", "investigator")
    page.goto(f"{live.base}/ui/seizures/{live.scenario.seizure_id}")
    with page.expect_download() as info:
        page.get_by_role("link", name="Download PDF report").click()
    data = Path(info.value.path()).read_bytes()
    assert data.startswith(b"%PDF")
    text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages)
    assert "PRESUMPTIVE RESULT" in text
    assert "S-0001" in text  # custody chain
    assert "sha256:" in text  # library version
    assert live.world.users["A"]["officer"] in text  # operator


def test_web_language_switch_is_remembered(page: Any, live: Any, artifacts_dir: Path) -> None:
    _login(page, live, "A", "supervisor")
    page.get_by_role("link", name="Français").click()
    assert page.locator("html").get_attribute("lang") == "fr"
    assert page.get_by_role("heading", level=1).inner_text() == "Saisies"
    page.goto(f"{live.base}/ui/dashboard")
    assert page.get_by_role("heading", level=1).inner_text() == "Tableau de bord"
    page.screenshot(path=str(artifacts_dir / "dashboard-fr.png"), full_page=True)
    page.get_by_role("link", name="Español").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Panel"
    page.get_by_role("link", name="English").click()


def test_web_accessibility_labels_and_keyboard(page: Any, live: Any, artifacts_dir: Path) -> None:
    _login(page, live, "A", "supervisor")
    for path in (
        "/ui/seizures",
        f"/ui/seizures/{live.scenario.seizure_id}",
        "/ui/review",
        "/ui/oversight",
    ):
        page.goto(live.base + path)
        unlabelled = page.evaluate(
            """() => [...document.querySelectorAll('input, select, textarea')]
                 .filter(e => e.type !== 'hidden')
                 .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
                 .map(e => e.name || e.id)"""
        )
        assert unlabelled == [], (path, unlabelled)
    page.screenshot(path=str(artifacts_dir / "oversight.png"), full_page=True)
    # Keyboard only: Tab from the top reaches the skip link, the navigation and the filter button.
    page.goto(f"{live.base}/ui/seizures")
    reached = []
    for _ in range(40):
        page.keyboard.press("Tab")
        reached.append(
            page.evaluate(
                "() => document.activeElement.textContent.trim()"
                " || document.activeElement.name || ''"
            )
        )
    assert reached[0] == "Skip to content"
    for wanted in ("Seizures", "Review queue", "Oversight", "Dashboard", "Apply filters"):
        assert wanted in reached, (wanted, reached)
    # And the filter form can be submitted from the keyboard alone.
    page.goto(f"{live.base}/ui/seizures")
    page.get_by_label("Search").focus()
    page.keyboard.type("suitcase")
    for _ in range(20):
        if page.evaluate("() => document.activeElement.textContent.trim()") == "Apply filters":
            break
        page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*q=suitcase.*"))
    assert "Jorge Chávez airport" in page.locator("#seizure-rows").inner_text()


def test_web_show_more_loads_the_next_page_in_place(page: Any, live: Any) -> None:
    """htmx (vendored, same-origin under the page's CSP) appends the next keyset page."""
    _login(page, live, "A", "officer")
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{live.base}/ui/seizures?limit=5")
    rows = page.locator("#seizure-rows tr:not(#more-row)")
    assert rows.count() == 5
    page.get_by_role("link", name="Show more").click()
    # A locator wait, not wait_for_function: its polling evaluates a string, which the
    # page's CSP (no 'unsafe-eval') refuses whenever the rows are not there at first look.
    rows.nth(9).wait_for(timeout=10_000)
    assert rows.count() == 10
    assert page.url.endswith("/ui/seizures?limit=5")  # replaced in place, no navigation
    assert errors == []


def test_web_custody_event_recorded_in_the_browser(
    page: Any, live: Any, artifacts_dir: Path
) -> None:
    _login(page, live, "A", "officer")
    page.goto(f"{live.base}/ui/seizures/{live.scenario.seizure_id}")
    page.locator("summary", has_text="Record custody event").nth(1).click()
    form = page.locator("form[action$='/custody']").nth(1)
    form.get_by_label("Event").select_option("sealed")
    form.get_by_label("When (UTC)").fill("2026-03-16T09:30")
    form.get_by_label("Seal number (required to seal)").fill("S-B-77")
    form.get_by_label("Place").fill("Callao warehouse")
    form.screenshot(path=str(artifacts_dir / "custody-form.png"))
    form.get_by_role("button", name="Record custody event").click()
    assert page.get_by_role("status").inner_text() == "Custody event recorded."
    item2 = page.locator("section", has_text="Item 2").first.inner_text()
    assert "S-B-77" in item2 and "Callao warehouse" in item2
