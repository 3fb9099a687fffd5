"""Errors shown in the user's language; custody events from the UI; the agency filter."""

from __future__ import annotations

import inspect
import re
import uuid
from html import unescape as html_unescape
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session

import service
from service import crud, errors
from service.core.db import make_engine
from service.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionFailedError,
    PreconditionRequiredError,
    ServiceError,
)
from service.models import Approval, CustodyEvent, ItemCreate, Seizure, Verdict
from service.web import errortext, queries
from service.web.i18n import LANGUAGES, po_path, translations

SERVICE = Path(service.__file__).parent


def _login(client: TestClient, world: Any, role: str, agency: str = "A") -> None:
    r = client.post(
        "/ui/login",
        data={"username": world.users[agency][role], "password": world.password, "next": "/"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text


def _alert(html: str) -> str:
    match = re.search(r'role="alert">(.*?)</div>', html, re.S)
    assert match, html[-2000:]
    return html_unescape(re.sub(r"<[^>]+>", " ", match.group(1))).strip()


# --------------------------------------------------------------------------- error texts


def test_web_every_service_error_class_has_a_message() -> None:
    classes = [
        c
        for _, c in inspect.getmembers(errors, inspect.isclass)
        if issubclass(c, ServiceError) and c.__module__ == errors.__name__
    ]
    assert classes and set(classes) <= set(errortext.BY_CLASS), set(classes) - set(
        errortext.BY_CLASS
    )


def _service_sources() -> str:
    return "\n".join(
        p.read_text(encoding="utf-8")
        for p in SERVICE.rglob("*.py")
        if "migrations" not in p.parts and "tests" not in p.parts
    )


def test_web_every_action_and_reason_of_the_service_is_translatable() -> None:
    """A new ``require(..., "action")`` or literal reason in the service fails here until
    the UI can say it in every language (the English text is never shown)."""
    source = _service_sources()
    actions = set(re.findall(r"\.require\(\s*\w+,\s*\"([^\"]+)\"\s*\)", source))
    actions |= set(re.findall(r"PermissionDeniedError\(\s*[\w.]+,\s*\"([^\"]+)\"\s*\)", source))
    assert actions and actions <= set(errortext.ACTION), actions - set(errortext.ACTION)
    reasons = set(re.findall(r"InvalidInputError\(\s*[\w\"]+,\s*\"([^\"]+)\"", source))
    assert reasons and {r for r in reasons if errortext._reason_msgid(r) is None} == set()
    # Literal field names given to InvalidInputError have a label.
    fields = set(re.findall(r"InvalidInputError\(\s*\"(\w+)\"", source))
    assert {f for f in fields if f not in errortext.FIELD and f not in ("form",)} == set()


SAMPLES: list[ServiceError] = [
    NotFoundError("seizure", uuid.uuid4()),
    NotFoundError("something_new", 1),
    PermissionDeniedError("officer", "review field results"),
    PermissionDeniedError("officer", "a new action"),
    InvalidInputError("country", "must be a two-letter ISO code"),
    InvalidInputError("verdict", "unknown value 'x'"),
    InvalidInputError("net_mass", "a reason nobody translated"),
    InvalidInputError("mystery", "a reason nobody translated"),
    ConflictError("approval 1 is already approved"),
    PreconditionFailedError("seizure", 1, 2),
    PreconditionRequiredError("If-Match required"),
    errors.DatabaseError("down", url="postgresql://x"),
    errors.AuthenticationError("incorrect username or password"),
    errors.AuditChainError("broken"),
    errors.ConfigError("bad"),
    ServiceError("anything"),
]


@pytest.mark.parametrize("exc", SAMPLES, ids=lambda e: type(e).__name__)
def test_web_error_messages_are_translated_and_never_english(exc: ServiceError) -> None:
    english = errortext.message(exc, translations("en").gettext)
    assert str(exc) not in english  # the service's own text never reaches the page
    for lang in ("es", "fr", "pt"):
        shown = errortext.message(exc, translations(lang).gettext)
        assert shown and shown != english, (lang, shown)
        assert "%(" not in shown


def test_web_french_typography() -> None:
    """French: a (narrow) no-break space before : ; ? ! — never a plain space or none."""
    from babel.messages.pofile import read_po

    with po_path("fr").open("rb") as fh:
        catalog = read_po(fh, locale="fr")
    wrong = []
    for m in catalog:
        if not m.id:
            continue
        text = m.string if isinstance(m.string, str) else " ".join(m.string)
        for match in re.finditer(r"(.)([:;?!])", text):
            before, after = match.group(1), text[match.end() : match.end() + 1]
            if before.isdigit() and after.isdigit():  # 1:110m, 08:30
                continue
            if before not in "\u202f\u00a0":
                wrong.append(text)
                break
    assert wrong == []
    fr = translations("fr").gettext
    assert errortext.message(InvalidInputError("country", "must be a two-letter ISO code"), fr) == (
        "Pays\u202f: doit être un code pays ISO à deux lettres"
    )


@pytest.mark.parametrize("lang", LANGUAGES)
def test_web_error_pages_speak_the_users_language(
    ui_client: TestClient, web_world: Any, scenario: Any, web_settings: Any, lang: str
) -> None:
    _ = translations(lang).gettext
    ui_client.cookies.set("fieldscan_lang", lang)
    _login(ui_client, web_world, "officer")
    # 404: a record that does not exist (or is another agency's).
    r = ui_client.get(f"/ui/seizures/{scenario.other_seizure_id}")
    assert r.status_code == 404
    assert _alert(r.text) == _("%(entity)s not found, or not visible to you.") % {
        "entity": _("Seizure")
    }
    # 422: a bad filter, with the field named in the user's language.
    r = ui_client.get("/ui/seizures?country=PER")
    assert r.status_code == 422 and _("Country") in _alert(r.text)
    assert "two-letter ISO code" not in r.text or lang == "en"
    # 403: the officer may not review.
    r = ui_client.post(
        f"/ui/seizures/{scenario.seizure_id}/review", data={"action": "confirm", "version": 1}
    )
    assert r.status_code == 403 and _("review field results") in _alert(r.text)
    # 422 from form validation (FastAPI): a missing field, as a page, not JSON.
    r = ui_client.post(f"/ui/seizures/{scenario.seizure_id}/review", data={"action": "confirm"})
    assert r.status_code == 422 and r.headers["content-type"].startswith("text/html")
    assert _alert(r.text) == _("%(field)s: %(reason)s") % {
        "field": _("Version"),
        "reason": _("is required"),
    }
    # 403 from a cross-site post and 404 of an unknown page: translated pages too.
    r = ui_client.post(
        f"/ui/items/{scenario.item_id}/custody",
        data={"kind": "stored", "occurred_at": "2026-03-15T10:00"},
        headers={"Origin": "https://evil.example"},
    )
    assert r.status_code == 403 and _alert(r.text) == _(errortext.HTTP[403])
    r = ui_client.get("/ui/lang/xx")
    assert r.status_code == 404 and _alert(r.text) == _(errortext.HTTP[404])
    # The API keeps its JSON errors.
    r = ui_client.get(f"/api/v1/seizures/{uuid.uuid4()}")
    assert r.headers["content-type"].startswith("application/json")


def test_web_stale_version_and_decided_approval(
    ui_client: TestClient, web_world: Any, scenario: Any, web_settings: Any
) -> None:
    fr = translations("fr").gettext
    ui_client.cookies.set("fieldscan_lang", "fr")
    _login(ui_client, web_world, "supervisor")
    target = scenario.bulk_ids[5]
    r = ui_client.post(
        f"/ui/seizures/{target}/review", data={"action": "request_lab", "version": 99}
    )
    assert r.status_code == 412 and _alert(r.text) == fr(
        errortext.BY_CLASS[PreconditionFailedError]
    )
    ui_client.cookies.set("fieldscan_lang", "es")
    r = ui_client.post(f"/ui/approvals/{uuid.uuid4()}", data={"decision": "approve"})
    assert r.status_code == 404 and "Aprobación" in _alert(r.text)


# --------------------------------------------------------------------------- custody


def _new_item(settings: Any, world: Any, seizure_id: uuid.UUID) -> uuid.UUID:
    engine = make_engine(settings.sqlalchemy_url)
    try:
        with Session(engine) as session:
            user = crud.get_user_by_username(session=session, username=world.users["A"]["officer"])
            assert user is not None
            item = crud.create_item(
                session=session,
                actor=crud.principal_for_user(user),
                seizure_id=seizure_id,
                item_in=ItemCreate(description="Custody test parcel"),
            )
            session.commit()
            return item.id
    finally:
        engine.dispose()


def _events(settings: Any, item_id: uuid.UUID) -> list[CustodyEvent]:
    engine = make_engine(settings.sqlalchemy_url)
    try:
        with Session(engine) as session:
            return list(
                session.scalars(
                    select(CustodyEvent)
                    .where(CustodyEvent.item_id == item_id)
                    .order_by(CustodyEvent.occurred_at)
                )
            )
    finally:
        engine.dispose()


def test_web_custody_events_from_the_item_page(
    ui_client: TestClient, web_world: Any, scenario: Any, web_settings: Any
) -> None:
    seizure_id = scenario.bulk_ids[7]
    item_id = _new_item(web_settings, web_world, seizure_id)
    _login(ui_client, web_world, "officer")
    page = ui_client.get(f"/ui/seizures/{seizure_id}").text
    assert f'action="/ui/items/{item_id}/custody"' in page and "Record custody event" in page
    url = f"/ui/items/{item_id}/custody"
    r = ui_client.post(
        url,
        data={"kind": "sealed", "occurred_at": "2026-03-15T10:00", "seal_number": "S-0042"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"].endswith("done=custody")
    r = ui_client.post(
        url,
        data={
            "kind": "handed_over",
            "occurred_at": "2026-03-15T12:30",
            "from_party": "Officer Quispe",
            "to_party": "Evidence room",
            "place": "Callao",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303
    events = _events(web_settings, item_id)
    assert [(e.kind, e.seal_number, e.to_party) for e in events] == [
        ("sealed", "S-0042", None),
        ("handed_over", None, "Evidence room"),
    ]
    assert events[0].occurred_at.hour == 10 and events[0].occurred_at.utcoffset() is not None
    page = ui_client.get(f"/ui/seizures/{seizure_id}?done=custody").text
    assert "Custody event recorded." in page and "S-0042" in page and "Evidence room" in page

    # Bad input: a clear, translated error and nothing stored.
    ui_client.cookies.set("fieldscan_lang", "fr")
    fr = translations("fr").gettext
    bad = [
        ({"kind": "sealed", "occurred_at": "2026-03-16T09:00"}, fr("a seal needs its seal number")),
        (
            {"kind": "transferred_to_lab", "occurred_at": "2026-03-16T09:00", "from_party": "x"},
            fr("a transfer to a laboratory needs who sent it and who received it"),
        ),
        ({"kind": "stored", "occurred_at": "yesterday"}, fr("Date")),
        ({"kind": "melted", "occurred_at": "2026-03-16T09:00"}, fr("Event")),
        (
            {"kind": "destroyed", "occurred_at": "2026-03-16T09:00"},
            fr("recording a destruction needs a reason"),
        ),
    ]
    for data, wanted in bad:
        r = ui_client.post(url, data=data)
        assert r.status_code == 422, data
        assert wanted in _alert(r.text), (data, _alert(r.text))
    assert len(_events(web_settings, item_id)) == 2
    r = ui_client.post(
        f"/ui/items/{scenario.other_test_id}/custody",
        data={"kind": "stored", "occurred_at": "2026-03-16T09:00"},
    )
    assert r.status_code == 404


def test_web_destruction_needs_a_second_person(
    ui_client: TestClient, web_world: Any, scenario: Any, web_settings: Any
) -> None:
    seizure_id = scenario.bulk_ids[8]
    item_id = _new_item(web_settings, web_world, seizure_id)
    _login(ui_client, web_world, "supervisor")
    r = ui_client.post(
        f"/ui/items/{item_id}/custody",
        data={
            "kind": "destroyed",
            "occurred_at": "2026-03-20T08:00",
            "place": "Incinerator",
            "reason": "court order 12/2026",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"].endswith("done=destruction")
    assert _events(web_settings, item_id) == []  # filed, not recorded
    engine = make_engine(web_settings.sqlalchemy_url)
    with Session(engine) as session:
        approval = session.scalars(
            select(Approval).where(
                Approval.entity_id == item_id, Approval.action == "custody_destroyed"
            )
        ).one()
    engine.dispose()
    # The requester cannot approve it; a second supervisor can.
    r = ui_client.post(f"/ui/approvals/{approval.id}", data={"decision": "approve"})
    assert r.status_code == 403
    _login(ui_client, web_world, "supervisor2")
    queue = ui_client.get("/ui/review").text
    assert "court order 12/2026" in queue and "Record destruction" in queue
    r = ui_client.post(
        f"/ui/approvals/{approval.id}", data={"decision": "approve"}, follow_redirects=False
    )
    assert r.status_code == 303
    assert [e.kind for e in _events(web_settings, item_id)] == ["destroyed"]


def test_web_custody_form_only_for_those_who_may(
    ui_client: TestClient, web_world: Any, scenario: Any
) -> None:
    _login(ui_client, web_world, "admin")
    page = ui_client.get(f"/ui/seizures/{scenario.seizure_id}").text
    assert "/custody" not in page
    r = ui_client.post(
        f"/ui/items/{scenario.item_id}/custody",
        data={"kind": "stored", "occurred_at": "2026-03-16T09:00"},
    )
    assert r.status_code == 403 and "record custody events" in _alert(r.text)


# --------------------------------------------------------------------------- agency filter


def test_web_agency_filter_only_when_there_is_a_choice(
    ui_client: TestClient, web_world: Any, scenario: Any
) -> None:
    _login(ui_client, web_world, "supervisor")
    page = ui_client.get("/ui/seizures").text
    # Another agency may share seizures (issue 8): the filter offers every agency.
    assert 'name="agency"' in page and 'id="agency-scope"' not in page
    assert "<td>PE → BR → ES</td>" in page and "<td>PE → NL</td>" in page  # routes with transit
    own = str(web_world.agencies["A"])
    rows = ui_client.get("/ui/seizures", params={"agency": own}).text
    assert str(scenario.seizure_id) in rows
    r = ui_client.get("/ui/seizures", params={"agency": str(web_world.agencies["B"])})
    assert r.status_code == 200 and str(scenario.other_seizure_id) not in r.text  # not shared
    for bad in ("00000000-0000-0000-0000-000000000001", "not-an-id"):
        r = ui_client.get("/ui/seizures", params={"agency": bad})
        assert r.status_code == 422 and "Agency" in _alert(r.text)
        assert str(scenario.other_seizure_id) not in r.text


# --------------------------------------------------------------------------- list queries


@pytest.mark.parametrize("threshold", [1, queries.SPARSE_THRESHOLD])
def test_web_page_plans_agree_with_the_plain_filters(
    web_settings: Any,
    web_world: Any,
    scenario: Any,
    monkeypatch: pytest.MonkeyPatch,
    threshold: int,
) -> None:
    """Whichever plan a page takes (index of the match, or a walk checking each seizure),
    it lists exactly what the plain EXISTS filters select, in the same order."""
    monkeypatch.setattr(queries, "SPARSE_THRESHOLD", threshold)
    engine = make_engine(web_settings.sqlalchemy_url)
    try:
        with Session(engine) as session:
            user = crud.get_user_by_username(
                session=session, username=web_world.users["A"]["officer"]
            )
            assert user is not None
            actor = crud.principal_for_user(user)
            for filt in (
                crud.SeizureFilter(substance=scenario.reference.upper()),
                crud.SeizureFilter(q="suitcase"),
                crud.SeizureFilter(q="Bulk"),
                crud.SeizureFilter(verdict=Verdict.IDENTIFIED, substance=scenario.reference),
                crud.SeizureFilter(substance="nothing-like-this"),
            ):
                want = [
                    s.id for s in queries.all_filtered(session=session, actor=actor, filters=filt)
                ]
                got: list[uuid.UUID] = []
                cursor = None
                for _ in range(50):
                    page, cursor = queries.seizure_page(
                        session=session, actor=actor, filters=filt, after=cursor, limit=3
                    )
                    got += [s.id for s in page]
                    if cursor is None:
                        break
                assert got == want, filt
                assert set(got) <= {
                    s.id
                    for s in session.scalars(
                        select(Seizure).where(Seizure.agency_id == actor.agency_id)
                    )
                }
    finally:
        engine.dispose()
