"""Sharing in the web UI (issue 8): shared seizures listed with their agency, read only for a
partner, the level changed by the owning agency's editors with a reason."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from service import audit, crud
from service.audit import AuditSettings, CheckpointSigner
from service.core.config import Settings
from service.core.db import make_engine
from service.models import (
    CustodyEventCreate,
    FieldTestCreate,
    ItemCreate,
    Seizure,
    SeizureCreate,
)
from service.testing import World, field_test_payload, seizure_payload


@dataclass
class Shared:
    """Seizures of agency B: shared with A by name, with everyone, and kept to itself."""

    partners: uuid.UUID
    everyone: uuid.UUID
    kept: uuid.UUID
    test: uuid.UUID
    item: uuid.UUID
    b_name: str


def _principal(session: Session, username: str) -> Any:
    user = crud.get_user_by_username(session=session, username=username)
    assert user is not None
    return crud.principal_for_user(user)


@pytest.fixture(scope="module")
def shared(web_settings: Settings, web_world: World, scenario: Any) -> Shared:
    engine = make_engine(web_settings.sqlalchemy_url)
    signer = CheckpointSigner.load_or_create(web_settings.signing_key_path)
    a_id = str(web_world.agencies["A"])
    try:
        with Session(engine, expire_on_commit=False) as session:
            audit.bind(
                session,
                AuditSettings(signer=signer, checkpoint_every=web_settings.checkpoint_every),
            )
            b = _principal(session, web_world.users["B"]["officer"])
            made = {}
            for name, level, partners in (
                ("partners", "partners", [a_id]),
                ("everyone", "all", []),
                ("kept", "own", []),
            ):
                made[name] = crud.create_seizure(
                    session=session,
                    actor=b,
                    seizure_in=SeizureCreate.model_validate(
                        seizure_payload(
                            place=f"B shared place {name}",
                            seized_at="2026-03-20T10:00:00+00:00",
                            narrative=f"B narrative {name}",
                            air_waybill=f"WB-{uuid.uuid4().hex[:8]}",
                            sharing=level,
                            shared_with=partners,
                        )
                    ),
                ).id
            item = crud.create_item(
                session=session,
                actor=b,
                seizure_id=made["partners"],
                item_in=ItemCreate(description="B shared item", substance="heroin"),
            )
            test = crud.create_field_test(
                session=session,
                actor=b,
                item_id=item.id,
                test_in=FieldTestCreate.model_validate(field_test_payload(64)),
            )
            crud.create_custody_event(
                session=session,
                actor=b,
                item_id=item.id,
                event_in=CustodyEventCreate.model_validate(
                    {"kind": "sealed", "occurred_at": "2026-03-20T11:00:00Z", "seal_number": "B-7"}
                ),
            )
            b_name = crud.get_agency(session=session, actor=b, agency_id=b.scope).name
            session.commit()
            audit.chain_pending(session, wait=True)
            session.commit()
    finally:
        engine.dispose()
    return Shared(made["partners"], made["everyone"], made["kept"], test.id, item.id, b_name)


def _login(client: TestClient, world: World, role: str, agency: str) -> None:
    r = client.post(
        "/ui/login",
        data={"username": world.users[agency][role], "password": world.password, "next": "/"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text


def _row(settings: Settings, seizure_id: uuid.UUID) -> Seizure:
    engine = make_engine(settings.sqlalchemy_url)
    try:
        with Session(engine) as session:
            row = session.get(Seizure, seizure_id)
            assert row is not None
            return row
    finally:
        engine.dispose()


def test_web_list_shows_shared_seizures_with_their_agency(
    ui_client: TestClient, web_world: World, shared: Shared
) -> None:
    _login(ui_client, web_world, "officer", "A")
    text = ui_client.get("/ui/seizures?limit=200").text
    assert "B shared place partners" in text and "B shared place everyone" in text
    assert "B shared place kept" not in text
    assert text.count(f"Shared by {shared.b_name}") == 2
    # The agency filter now offers B, and selects what B shares.
    b_id = web_world.agencies["B"]
    assert f'<option value="{b_id}"' in text
    only_b = ui_client.get(f"/ui/seizures?agency={b_id}&limit=200").text
    assert "B shared place partners" in only_b and "Bulk place" not in only_b
    # Filters on items and tests reach shared seizures too.
    found = ui_client.get("/ui/seizures?substance=heroin&limit=200").text
    assert "B shared place partners" in found and "B shared place everyone" not in found
    found = ui_client.get("/ui/seizures?q=B+narrative&limit=200").text
    assert "B shared place everyone" in found and "B shared place kept" not in found
    found = ui_client.get("/ui/seizures?verdict=mixture&limit=200").text
    assert "B shared place partners" in found and "Bulk place" not in found
    own = ui_client.get(f"/ui/seizures?agency={web_world.agencies['A']}&limit=200").text
    assert "B shared place" not in own and "Bulk place 000" in own
    # The owner's rows carry no badge.
    _login(ui_client, web_world, "officer", "B")
    text = ui_client.get("/ui/seizures?limit=200").text
    assert "B shared place kept" in text and "Shared by" not in text


def test_web_shared_seizure_is_read_only_for_a_partner(
    ui_client: TestClient, web_world: World, web_settings: Settings, shared: Shared
) -> None:
    _login(ui_client, web_world, "supervisor", "A")  # may do everything in its own agency
    r = ui_client.get(f"/ui/seizures/{shared.partners}")
    assert r.status_code == 200
    assert f"Shared by {shared.b_name} — read only" in r.text
    assert "B shared item" in r.text and "B-7" in r.text  # items and custody are shared
    actions = re.findall(r'<form method="post" action="([^"]+)"', r.text)
    assert [a for a in actions if a != "/ui/logout"] == []
    # The PDF report of a shared field test is part of the record.
    pdf = ui_client.get(f"/ui/field-tests/{shared.test}/report.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    # Posting anyway is refused (403), and nothing changes.
    before = _row(web_settings, shared.partners).version
    for path, data in (
        (f"/ui/seizures/{shared.partners}/review", {"action": "confirm", "version": before}),
        (
            f"/ui/seizures/{shared.partners}/sharing",
            {"sharing": "all", "version": before, "reason": "take over"},
        ),
        (
            f"/ui/items/{shared.item}/custody",
            {"kind": "stored", "occurred_at": "2026-03-21T10:00"},
        ),
    ):
        r = ui_client.post(path, data=data, follow_redirects=False)
        assert r.status_code == 403, (path, r.status_code)
    assert _row(web_settings, shared.partners).version == before
    # B's own seizure stays invisible; the review queue and exports stay A's own.
    assert ui_client.get(f"/ui/seizures/{shared.kept}").status_code == 404
    review = ui_client.get("/ui/review").text
    assert "B shared place" not in review and "Bulk place" in review
    for kind in ("csv", "json", "unodc.csv", "incb.json"):
        assert "B shared place" not in ui_client.get(f"/ui/seizures.{kind}").text
        b_only = ui_client.get(f"/ui/seizures.{kind}?agency={web_world.agencies['B']}").text
        assert "B shared place" not in b_only


def test_web_owner_changes_the_sharing_level_with_a_reason(
    ui_client: TestClient, web_world: World, web_settings: Settings, shared: Shared
) -> None:
    a_id, b_id = web_world.agencies["A"], web_world.agencies["B"]
    _login(ui_client, web_world, "analyst", "B")  # reads, but does not edit seizures
    page = ui_client.get(f"/ui/seizures/{shared.everyone}").text
    assert 'id="sharing-form"' not in page
    _login(ui_client, web_world, "officer", "B")
    page = ui_client.get(f"/ui/seizures/{shared.everyone}").text
    assert 'id="sharing-form"' in page and "read only" not in page
    assert f'<option value="{a_id}"' in page and f'<option value="{b_id}"' not in page
    version = _row(web_settings, shared.everyone).version
    path = f"/ui/seizures/{shared.everyone}/sharing"
    # Bad input is a clear error and changes nothing.
    for data in (
        {"sharing": "partners", "partners": [str(a_id)], "version": version, "reason": ""},
        {"sharing": "nobody", "version": version, "reason": "x"},
        {"sharing": "partners", "partners": ["not-an-id"], "version": version, "reason": "x"},
        {"sharing": "partners", "partners": [str(uuid.uuid4())], "version": version, "reason": "x"},
        {"sharing": "own", "version": version - 1 or 99, "reason": "stale"},
    ):
        r = ui_client.post(path, data=data, follow_redirects=False)
        assert r.status_code in (412, 422), (data, r.status_code)
    assert _row(web_settings, shared.everyone).version == version
    r = ui_client.post(
        path,
        data={
            "sharing": "partners",
            "partners": [str(a_id)],
            "version": version,
            "reason": "joint investigation",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"].endswith("done=sharing")
    row = _row(web_settings, shared.everyone)
    assert row.sharing == "partners" and [str(p) for p in row.shared_with] == [str(a_id)]
    page = ui_client.get(r.headers["location"]).text
    assert "Sharing changed." in page and "joint investigation" in page
    assert "Named partner agencies" in page
    # Back to own: agency A no longer sees it.
    r = ui_client.post(
        path,
        data={"sharing": "own", "version": row.version, "reason": "operation closed"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    _login(ui_client, web_world, "officer", "A")
    assert ui_client.get(f"/ui/seizures/{shared.everyone}").status_code == 404
    assert "B shared place everyone" not in ui_client.get("/ui/seizures?limit=200").text


@pytest.mark.parametrize("lang", ["es", "fr", "pt"])
def test_web_sharing_texts_are_translated(
    ui_client: TestClient, web_world: World, shared: Shared, lang: str
) -> None:
    _login(ui_client, web_world, "officer", "A")
    ui_client.cookies.set("fieldscan_lang", lang)
    page = ui_client.get(f"/ui/seizures/{shared.partners}").text
    assert "read only" not in page and "Sharing" not in page
    assert shared.b_name in page
