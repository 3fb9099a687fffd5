"""The exchange page (``/ui/exchange``): partners, packages out and in, the report, provenance.

The home instance is the UI tests' app (agencies A and B); a second instance, the partner
(its own database, same backend), sends and receives packages through its API. The partner
runs with a tiny general body limit, so a package over it but under the exchange limit
shows that imports get their own limit, and the rest keeps the general one.
"""

from __future__ import annotations

import base64
import html
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from markupsafe import escape
from sqlalchemy import func, select
from sqlmodel import Session

from service import audit, crud
from service.audit import AuditSettings, CheckpointSigner, canonical_json
from service.core.config import Settings
from service.core.db import make_engine
from service.exchange.keys import AgencyKeys
from service.exchange.models import ExchangePackage, ExchangePartner, ExchangeProvenance
from service.exchange.package import ExchangeRecord, Issuer, build_package
from service.exchange.reasons import PackageRefusal, RecordReason
from service.main import EXCHANGE_IMPORT_PATHS
from service.models import (
    FieldTest,
    FieldTestCreate,
    Item,
    ItemCreate,
    MassUnit,
    RecordVersion,
    Seizure,
    SeizureCreate,
)
from service.testing import (
    World,
    fast_settings,
    field_test_payload,
    isolated_database,
    seed_world,
    seizure_payload,
)
from service.web import exchange as ui
from service.web.i18n import LANG_COOKIE, LANGUAGES, Formatter, translations
from tests.service.conftest import Api, login
from tests.web.conftest import build_app, chromium, serve_in_thread, ui_login

#: The partner's general body limit (the smallest allowed) and its exchange limit.
SMALL_BODY = 4096
EXCHANGE_LIMIT = 1024 * 1024


@dataclass
class Partner:
    settings: Settings
    client: TestClient
    world: World

    def api(self, role: str, agency: str = "A") -> Api:
        return login(self.client, self.world.users[agency][role], self.world.password)

    @property
    def agency(self) -> uuid.UUID:
        return self.world.agencies["A"]


def _backend(settings: Settings) -> str:
    return "postgresql" if settings.sqlalchemy_url.startswith("postgresql") else "sqlite"


@pytest.fixture(scope="module")
def partner(web_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Partner]:
    backend = _backend(web_settings)
    tmp = tmp_path_factory.mktemp(f"exchange-partner-{backend}")
    with isolated_database(backend, tmp) as url:
        settings = fast_settings(
            data_dir=tmp,
            database_url=url,
            max_body_bytes=SMALL_BODY,
            exchange_max_package_bytes=EXCHANGE_LIMIT,
        )
        app = build_app(settings)
        world = seed_world(settings, tag="partner-" + uuid.uuid4().hex[:6])
        try:
            with TestClient(app, base_url="http://testserver") as client:
                yield Partner(settings, client, world)
        finally:
            app.state.fieldscan.engine.dispose()


def shared_seizure(
    settings: Settings, username: str, *, seed: int, n_points: int = 256, **overrides: Any
) -> dict[str, uuid.UUID]:
    """A seizure with an item and a field test, through crud as ``username``."""
    engine = make_engine(settings.sqlalchemy_url)
    signer = CheckpointSigner.load_or_create(settings.signing_key_path)
    try:
        with Session(engine, expire_on_commit=False) as session:
            audit.bind(session, AuditSettings(signer, settings.checkpoint_every))
            user = crud.get_user_by_username(session=session, username=username)
            assert user is not None
            actor = crud.principal_for_user(user)
            body = seizure_payload(place=f"Exchange place {seed}", **overrides)
            seizure = crud.create_seizure(
                session=session, actor=actor, seizure_in=SeizureCreate.model_validate(body)
            )
            item = crud.create_item(
                session=session,
                actor=actor,
                seizure_id=seizure.id,
                item_in=ItemCreate(
                    description=f"brick {seed}", net_mass=1000, mass_unit=MassUnit.G
                ),
            )
            test = crud.create_field_test(
                session=session,
                actor=actor,
                item_id=item.id,
                test_in=FieldTestCreate.model_validate(field_test_payload(n_points, seed=seed)),
            )
            session.commit()
            audit.chain_pending(session, wait=True)
            session.commit()
            return {"seizure": seizure.id, "item": item.id, "field_test": test.id}
    finally:
        engine.dispose()


def _login(
    client: TestClient, world: World, role: str, agency: str = "A", lang: str = "en"
) -> None:
    client.cookies.clear()
    ui_login(client, world.users[agency][role], world.password)
    client.cookies.set(LANG_COOKIE, lang)


def _footprint(app: FastAPI) -> tuple[int, ...]:
    """Row counts any write changes (the link worker's pending work settled first)."""
    from service.linking import worker

    with Session(app.state.fieldscan.engine) as s:
        worker.drain(s)
        return tuple(
            int(s.execute(select(func.count()).select_from(model)).scalar_one())
            for model in (
                Seizure, Item, FieldTest, RecordVersion, ExchangePackage, ExchangeProvenance,
                ExchangePartner,
            )
        )  # fmt: skip


def _import(client: TestClient, data: bytes, name: str = "package.json") -> Any:
    return client.post(
        ui.IMPORT_PATH, files={"file": (name, data, "application/json")}, follow_redirects=False
    )


def _gettext(lang: str) -> Any:
    return translations(lang).gettext


def _esc(text: str) -> str:
    """``text`` as the templates escape a value (Jinja's autoescape)."""
    return str(escape(text))


# --------------------------------------------------------------------------- set-up


@pytest.fixture(scope="module")
def registered(
    _module_client: TestClient, web_world: World, partner: Partner, web_app: FastAPI
) -> dict[str, Any]:
    """Home A registers the partner's A through the UI; the partner registers home A (API)."""
    keys = partner.api("officer").get("/exchange/keys").json()
    _login(_module_client, web_world, "admin")
    step1 = _module_client.post(
        "/ui/exchange/partners",
        files={"key_file": ("partner-keys.json", json.dumps(keys).encode(), "application/json")},
        data={"note": "agreement 2026/14, phoned"},
    )
    assert step1.status_code == 200, step1.text
    grouped = ui._fingerprint_groups(keys["signing_key_fingerprint"])
    assert grouped in step1.text and 'name="confirmed"' in step1.text
    assert _footprint(web_app)[-1] == 0  # nothing trusted before the confirmation
    hidden = re.search(r'name="key_text" value="([^"]*)"', step1.text)
    assert hidden is not None
    step2 = _module_client.post(
        "/ui/exchange/partners",
        data={"key_text": html.unescape(hidden.group(1)), "confirmed": "yes"},
        follow_redirects=False,
    )
    assert step2.status_code == 303, step2.text
    page = _module_client.get(step2.headers["location"])
    assert _gettext("en")(ui.FLASH["registered"]) in page.text
    assert keys["name"] in page.text and grouped in page.text
    assert "agreement 2026/14, phoned" in page.text
    # Home A's key file, downloaded from the page, registers it at the partner.
    _login(_module_client, web_world, "investigator")
    download = _module_client.get("/ui/exchange/keys.json")
    assert download.status_code == 200
    assert "attachment" in download.headers["content-disposition"]
    home_keys = download.json()
    assert home_keys["agency_id"] == str(web_world.agencies["A"])
    body = {k: home_keys[k] for k in ("agency_id", "name", "country", "kind")}
    body.update(signing_key=home_keys["signing_key"], encryption_key=home_keys["encryption_key"])
    r = partner.api("admin").post("/exchange/partners", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["signing_key_fingerprint"] == home_keys["signing_key_fingerprint"]
    return {"keys": keys, "home_keys": home_keys}


@pytest.fixture(scope="module")
def received(
    _module_client: TestClient,
    web_world: World,
    partner: Partner,
    registered: dict[str, Any],
    web_app: FastAPI,
) -> dict[str, Any]:
    """The partner sends two seizures (one to all, one to home A by name); A imports by UI."""
    home_a = str(web_world.agencies["A"])
    users = partner.world.users["A"]
    everyone = shared_seizure(partner.settings, users["officer"], seed=1, sharing="all")
    named = shared_seizure(
        partner.settings, users["officer"], seed=2, sharing="partners", shared_with=[home_a]
    )
    r = partner.api("investigator").post(
        "/exchange/exports", json={"partner_agency_id": home_a, "encrypt": True}
    )
    assert r.status_code == 200, r.text
    _login(_module_client, web_world, "investigator")
    report = _import(_module_client, r.content, "from-partner.json")
    assert report.status_code == 200, report.text
    return {
        "package": r.content,
        "package_id": r.headers["X-Package-Id"],
        "report": report.text,
        "everyone": everyone,
        "named": named,
    }


# --------------------------------------------------------------------------- pages


def test_exchange_page_renders_in_every_language(
    ui_client: TestClient, web_world: World, registered: dict[str, Any]
) -> None:
    for lang in LANGUAGES:
        _login(ui_client, web_world, "supervisor", lang=lang)
        r = ui_client.get("/ui/exchange")
        assert r.status_code == 200, r.text
        assert r.headers["content-language"] == lang
        _ = _gettext(lang)
        for msgid in (
            "Exchange with partner agencies",
            "Partner agencies",
            "Send a package",
            "Receive a package",
            "Packages sent and received",
        ):
            assert _esc(_(msgid)) in r.text, (lang, msgid)
        if lang != "en":
            assert _("Exchange with partner agencies") != "Exchange with partner agencies"
        assert registered["keys"]["name"] in r.text
        assert 'href="/ui/exchange" aria-current="page"' in r.text  # the navigation link


def test_import_through_the_ui_reports_each_record(
    ui_client: TestClient, web_world: World, received: dict[str, Any], web_app: FastAPI
) -> None:
    text = received["report"]
    assert received["package_id"] in text
    assert re.search(r'id="count-imported">6<', text), text  # 2 seizures, 2 items, 2 tests
    assert re.search(r'id="count-rejected">0<', text)
    assert _esc(_gettext("en")(ui.OUTCOME["imported"])) in text
    for seizure_id in (received["everyone"]["seizure"], received["named"]["seizure"]):
        assert f'href="/ui/seizures/{seizure_id}"' in text
    with Session(web_app.state.fieldscan.engine) as s:
        got = s.get(Seizure, received["named"]["seizure"])
        assert got is not None and got.place == "Exchange place 2"
    # The same package again: every record skipped, said in the user's language.
    _login(ui_client, web_world, "supervisor", lang="es")
    before = _footprint(web_app)
    again = _import(ui_client, received["package"])
    assert again.status_code == 200, again.text
    es = _gettext("es")
    assert re.search(r'id="count-skipped">6<', again.text)
    assert _esc(es("Your agency had received this package before.")) in again.text
    assert _esc(es("Version %(version)s was received before.") % {"version": "1"}) in again.text
    assert _footprint(web_app) == before


def test_history_lists_packages_of_the_agency_only(
    ui_client: TestClient, web_world: World, received: dict[str, Any]
) -> None:
    _login(ui_client, web_world, "officer")
    page = ui_client.get("/ui/exchange")
    assert received["package_id"] in page.text
    assert _esc(_gettext("en")("Received")) in page.text
    _login(ui_client, web_world, "admin", agency="B")
    other = ui_client.get("/ui/exchange")
    assert other.status_code == 200
    assert received["package_id"] not in other.text
    # B has registered no partner: A's partner is not listed for it.
    assert _esc(_gettext("en")("No partner agency is registered yet.")) in other.text


def test_seizure_page_shows_where_an_imported_seizure_came_from(
    ui_client: TestClient,
    web_world: World,
    received: dict[str, Any],
    registered: dict[str, Any],
    scenario: Any,
) -> None:
    seizure_id = received["named"]["seizure"]
    _login(ui_client, web_world, "officer", lang="fr")
    page = ui_client.get(f"/ui/seizures/{seizure_id}")
    assert page.status_code == 200, page.text
    assert f'hx-get="/ui/seizures/{seizure_id}/provenance"' in page.text
    panel = ui_client.get(f"/ui/seizures/{seizure_id}/provenance", headers={"HX-Request": "true"})
    assert panel.status_code == 200
    keys = registered["keys"]
    assert keys["name"] in panel.text and received["package_id"] in panel.text
    assert ui._fingerprint_groups(keys["signing_key_fingerprint"]) in panel.text
    assert _esc(_gettext("fr")("Origin")) in panel.text
    # A seizure recorded here has no provenance: the panel is empty and disappears.
    local = ui_client.get(f"/ui/seizures/{scenario.seizure_id}/provenance")
    assert local.status_code == 200 and local.text == ""
    # Named for home A only: home B reads neither the seizure nor where it came from.
    _login(ui_client, web_world, "officer", agency="B")
    assert ui_client.get(f"/ui/seizures/{seizure_id}/provenance").status_code == 404
    shared = received["everyone"]["seizure"]
    assert keys["name"] in ui_client.get(f"/ui/seizures/{shared}/provenance").text


@pytest.mark.parametrize(
    ("case", "reason", "lang"),
    [
        ("record", "tampered_record", "fr"),
        ("truncated", "malformed", "es"),
        ("signature", "bad_signature", "pt"),
        ("ciphertext", "undecryptable", "en"),
        ("stranger", "unknown_signer", "fr"),
    ],
)
def test_refused_package_shows_its_reason_and_writes_nothing(
    ui_client: TestClient,
    web_world: World,
    partner: Partner,
    received: dict[str, Any],
    web_app: FastAPI,
    tmp_path: Path,
    case: str,
    reason: str,
    lang: str,
) -> None:
    home_a = str(web_world.agencies["A"])
    plain = (
        partner.api("investigator")
        .post("/exchange/exports", json={"partner_agency_id": home_a, "encrypt": False})
        .content
    )
    doc = json.loads(plain)
    if case == "record":
        doc["records"][0]["place"] = "planted"
        data = canonical_json(doc).encode()
    elif case == "truncated":
        data = plain[: len(plain) // 2]
    elif case == "signature":
        doc["signature"] = ("0" if doc["signature"][0] != "0" else "1") + doc["signature"][1:]
        data = canonical_json(doc).encode()
    elif case == "ciphertext":
        enc = json.loads(received["package"])
        raw = bytearray(base64.b64decode(enc["ciphertext"]))
        raw[len(raw) // 2] ^= 0x01
        enc["ciphertext"] = base64.b64encode(bytes(raw)).decode()
        data = canonical_json(enc).encode()
    else:  # signed by an agency home A never registered
        stranger = uuid.uuid4()
        keys = AgencyKeys.load_or_create(tmp_path, stranger)
        data = build_package(
            issuer=Issuer(id=stranger, name="Unknown customs", country="MX", kind="customs"),
            recipients=[web_world.agencies["A"]],
            records=[],
            signing_key=keys.signing,
        ).data
    _login(ui_client, web_world, "investigator", lang=lang)
    before = _footprint(web_app)
    r = _import(ui_client, data)
    assert r.status_code == 422, r.text
    _ = _gettext(lang)
    assert f'data-reason="{reason}"' in r.text
    assert _esc(_(ui.REFUSAL[reason])) in r.text
    assert _esc(_(ui.NOTHING_STORED)) in r.text
    if case == "stranger":
        assert str(stranger) in r.text
    assert _footprint(web_app) == before


def test_export_downloads_a_package_the_partner_imports_over_the_general_limit(
    ui_client: TestClient, web_world: World, partner: Partner, registered: dict[str, Any],
    web_settings: Settings,
) -> None:  # fmt: skip
    home = shared_seizure(
        web_settings, web_world.users["A"]["officer"], seed=3, n_points=512, sharing="all"
    )
    _login(ui_client, web_world, "supervisor")
    r = ui_client.post(
        "/ui/exchange/export",
        data={"partner": str(partner.agency), "encrypt": "yes"},
        follow_redirects=False,
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-disposition"].startswith("attachment;")
    assert json.loads(r.content)["format"] == "fieldscan-exchange-envelope"  # encrypted
    package = r.content
    # Larger than the partner's general limit, smaller than its exchange limit.
    assert SMALL_BODY < len(package) < EXCHANGE_LIMIT
    imported = partner.api("investigator").post(
        "/exchange/imports", content=package, headers={"Content-Type": "application/json"}
    )
    assert imported.status_code == 200, imported.text
    outcome = {rec["id"]: rec["outcome"] for rec in imported.json()["records"]}
    assert outcome[str(home["seizure"])] == "imported"
    assert outcome[str(home["field_test"])] == "imported"
    # The partner's upload form takes it too (the same records: skipped).
    _login(partner.client, partner.world, "investigator")
    page = _import(partner.client, package)
    assert page.status_code == 200, page.text
    assert re.search(r'id="count-skipped">\d+<', page.text)
    # Unencrypted on request; "since" limits it to what changed since then.
    later = ui_client.post(
        "/ui/exchange/export", data={"partner": str(partner.agency), "since": "2100-01-01"}
    )
    assert later.status_code == 200 and later.headers["X-Record-Count"] == "0"
    assert json.loads(later.content)["format"] == "fieldscan-exchange-package"
    bad = ui_client.post(
        "/ui/exchange/export", data={"partner": str(partner.agency), "since": "next week"}
    )
    assert bad.status_code == 422
    _ = _gettext("en")
    assert _esc(_("%(field)s: %(reason)s") % {
        "field": _("Since"), "reason": _("must be a date (YYYY-MM-DD)")
    }) in bad.text  # fmt: skip
    unknown = ui_client.post("/ui/exchange/export", data={"partner": str(uuid.uuid4())})
    assert unknown.status_code == 404


def test_bodies_over_the_exchange_limit_get_413_and_others_keep_the_general_limit(
    partner: Partner,
) -> None:
    api = partner.api("investigator")
    assert (
        "/ui/exchange/import" in EXCHANGE_IMPORT_PATHS and ui.IMPORT_PATH == "/ui/exchange/import"
    )
    huge = b"{" + b" " * EXCHANGE_LIMIT + b"}"
    r = api.post("/exchange/imports", content=huge, headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert str(EXCHANGE_LIMIT) in r.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while streaming
        for _ in range(EXCHANGE_LIMIT // 65536 + 2):
            yield b" " * 65536

    streamed = api.post("/exchange/imports", content=chunks())
    assert streamed.status_code == 413
    # The upload form gets the error page in the user's language, not the API's JSON.
    before = _footprint(partner.client.app)  # type: ignore[arg-type]
    for lang in LANGUAGES:
        _login(partner.client, partner.world, "investigator", lang=lang)
        form = partner.client.post(
            ui.IMPORT_PATH, files={"file": ("big.json", huge, "application/json")}
        )
        assert form.status_code == 413
        assert form.headers["content-type"].startswith("text/html")
        assert form.headers["content-language"] == lang
        _ = _gettext(lang)
        size = Formatter(lang).number(EXCHANGE_LIMIT / (1024 * 1024), 1)
        said = _(ui.TOO_LARGE) % {"size": size}
        assert _esc(said) in form.text and _esc(_(ui.NOTHING_STORED)) in form.text
        assert 'href="/ui/exchange"' in form.text  # back to the form
        if lang != "en":
            assert said != _gettext("en")(ui.TOO_LARGE) % {"size": size}
    # Before any sign-in check: the anonymous error page (the body is never read).
    partner.client.cookies.clear()
    partner.client.cookies.set(LANG_COOKIE, "pt")
    anonymous = partner.client.post(
        ui.IMPORT_PATH, files={"file": ("big.json", huge, "application/json")}
    )
    assert anonymous.status_code == 413
    assert _esc(_gettext("pt")(ui.NOTHING_STORED)) in anonymous.text
    assert _footprint(partner.client.app) == before  # type: ignore[arg-type]
    # Over the general limit but under the exchange one: read and refused as a package.
    medium = b"{" + b" " * (2 * SMALL_BODY) + b"}"
    refused = api.post(
        "/exchange/imports", content=medium, headers={"Content-Type": "application/json"}
    )
    assert refused.status_code == 422 and refused.json()["reason"] == "malformed"
    # Every other endpoint keeps the general limit.
    other = api.post("/seizures", content=medium, headers={"Content-Type": "application/json"})
    assert other.status_code == 413
    assert str(SMALL_BODY) in other.json()["detail"]


# --------------------------------------------------------------------------- key files


def test_bad_key_files_are_refused_with_a_reason(
    ui_client: TestClient,
    web_world: World,
    registered: dict[str, Any],
    web_app: FastAPI,
) -> None:
    _login(ui_client, web_world, "admin", lang="pt")
    _ = _gettext("pt")
    before = _footprint(web_app)
    keys = registered["keys"]

    def post(text: str, confirmed: str = "") -> Any:
        return ui_client.post(
            "/ui/exchange/partners",
            data={"key_text": text, "confirmed": confirmed},
            follow_redirects=False,
        )

    empty = post("  ")
    assert empty.status_code == 422 and _esc(_(ui.KEY_FILE_MISSING)) in empty.text
    not_json = post("agency A, key 1234")
    assert not_json.status_code == 422
    assert _esc(_(ui.KEY_FILE_INVALID) % {"fields": "JSON"}) in not_json.text
    missing = post(json.dumps({k: v for k, v in keys.items() if k != "encryption_key"}))
    assert missing.status_code == 422
    assert _esc(_(ui.KEY_FILE_INVALID) % {"fields": "encryption_key"}) in missing.text
    altered = dict(keys, signing_key_fingerprint="0" * 64)
    assert _esc(_(ui.KEY_FILE_FINGERPRINT)) in post(json.dumps(altered)).text
    # The agency's own key file.
    own = post(json.dumps(registered["home_keys"]), "yes")
    assert own.status_code == 422, own.text
    assert _esc(_("is your own agency, which cannot be its own partner")) in own.text
    # The partner again with another key: a conflict, said plainly.
    other = dict(keys, signing_key="11" * 32)
    other.pop("signing_key_fingerprint")
    conflict = post(json.dumps(other), "yes")
    assert conflict.status_code == 409
    assert _esc(_(ui.CONFLICTS[1][1])) in conflict.text
    # The same file again changes nothing.
    assert post(json.dumps(keys), "yes").status_code == 303
    assert _footprint(web_app) == before


# --------------------------------------------------------------------------- roles


def test_roles_see_only_their_forms_and_others_get_403(
    ui_client: TestClient, web_world: World, partner: Partner, received: dict[str, Any],
    web_app: FastAPI,
) -> None:  # fmt: skip
    forms = {
        "officer": (False, False, False),
        "analyst": (False, False, False),
        "investigator": (True, True, False),
        "supervisor": (True, True, False),
        "admin": (False, True, True),
    }
    before = _footprint(web_app)
    for role, (export, import_, register) in forms.items():
        _login(ui_client, web_world, role)
        page = ui_client.get("/ui/exchange").text
        assert ('id="export-form"' in page) is export, role
        assert ('id="import-form"' in page) is import_, role
        assert ('id="register-form"' in page) is register, role
        exp = ui_client.post("/ui/exchange/export", data={"partner": str(partner.agency)})
        assert (exp.status_code == 200) is export, (role, exp.status_code)
        if not export:
            assert exp.status_code == 403
        if not import_:
            assert _import(ui_client, received["package"]).status_code == 403, role
        if not register:
            reg = ui_client.post("/ui/exchange/partners", data={"key_text": "{}"})
            assert reg.status_code == 403, role
            status = ui_client.post(
                f"/ui/exchange/partners/{partner.agency}/status",
                data={"action": "revoke", "version": "1", "reason": "test"},
            )
            assert status.status_code == 403, role
    en = _gettext("en")
    _login(ui_client, web_world, "officer")
    denied = _import(ui_client, received["package"])
    assert (
        _esc(
            en("Your role (%(role)s) may not do this: %(action)s.")
            % {"role": en("Officer"), "action": en("receive packages from partner agencies")}
        )
        in denied.text
    )
    after = _footprint(web_app)
    # Only the investigator's and supervisor's exports were recorded (and versioned).
    assert after[:3] == before[:3] and after[5:] == before[5:] and after[4] == before[4] + 2
    # Home B has not registered the partner: it cannot send it anything.
    _login(ui_client, web_world, "investigator", agency="B")
    assert (
        ui_client.post("/ui/exchange/export", data={"partner": str(partner.agency)}).status_code
        == 404
    )


def test_revoke_and_restore_a_partner(
    ui_client: TestClient, web_world: World, partner: Partner, received: dict[str, Any]
) -> None:
    _login(ui_client, web_world, "admin")
    path = f"/ui/exchange/partners/{partner.agency}/status"
    blank = ui_client.post(path, data={"action": "revoke", "version": "1", "reason": " "})
    assert blank.status_code == 422
    stale = ui_client.post(path, data={"action": "revoke", "version": "9", "reason": "ended"})
    assert stale.status_code == 412
    r = ui_client.post(
        path,
        data={"action": "revoke", "version": "1", "reason": "agreement ended"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    page = ui_client.get(r.headers["location"]).text
    en = _gettext("en")
    assert en(ui.FLASH["revoked"]) in page and en("Revoked") in page
    _login(ui_client, web_world, "investigator")
    refused = _import(ui_client, received["package"])
    assert refused.status_code == 422 and 'data-reason="unknown_signer"' in refused.text
    export = ui_client.post("/ui/exchange/export", data={"partner": str(partner.agency)})
    assert export.status_code == 409
    assert _esc(en("This partner is revoked: nothing is sent to it.")) in export.text
    _login(ui_client, web_world, "admin")
    r = ui_client.post(
        path,
        data={"action": "restore", "version": "2", "reason": "renewed"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    _login(ui_client, web_world, "investigator")
    assert _import(ui_client, received["package"]).status_code == 200


def test_every_code_has_its_text() -> None:
    assert set(ui.RECORD_REASON) == set(RecordReason)
    assert set(ui.REFUSAL) == set(PackageRefusal)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_record_reasons_are_translated_by_code(lang: str) -> None:
    _, en = _gettext(lang), _gettext("en")
    parent = str(uuid.uuid4())
    cases: list[tuple[str, dict[str, Any], str, dict[str, str]]] = [
        ("already_received", {"version": 2}, ui.RECORD_REASON["already_received"],
         {"version": "2"}),
        ("older_version", {"version": 1, "received_version": 3},
         ui.RECORD_REASON["older_version"], {"version": "1", "newer": "3"}),
        ("parent_rejected", {"parent_type": "seizure", "parent_id": parent},
         ui.RECORD_REASON["parent_rejected"], {"type": "Seizure"}),
        ("missing_parent", {"parent_type": "item", "parent_id": parent},
         ui.RECORD_REASON["missing_parent"], {"type": "Item"}),
        ("invalid_content", {"field": "country"}, ui.INVALID_FIELD, {"field": "Country"}),
        ("invalid_content", {}, ui.RECORD_REASON["invalid_content"], {}),
        ("fields_differ", {"missing": ["operator_name"], "unexpected": []},
         ui.RECORD_REASON["fields_differ"], {}),
        ("not_issuer_owned", {"agency_id": parent}, ui.RECORD_REASON["not_issuer_owned"], {}),
        ("seizure_mismatch", {"seizure_id": parent, "item_seizure_id": parent},
         ui.RECORD_REASON["seizure_mismatch"], {}),
        ("uuid_collision", {}, ui.RECORD_REASON["uuid_collision"], {}),
        ("not_from_exchange", {}, ui.RECORD_REASON["not_from_exchange"], {}),
        ("a_code_of_a_newer_server", {}, ui.RECORD_REASON_OTHER, {}),
    ]  # fmt: skip
    assert {c for c, *_ in cases} >= set(RecordReason)
    for code, params, msgid, values in cases:
        # Names in the sentence are translated labels; numbers are the parameters.
        for key in ("type", "field"):
            if key in values:
                label = _(values[key])
                values = dict(values, **{key: label.lower() if key == "type" else label})
        if code == "fields_differ":
            values = {"missing": "operator_name", "unexpected": "—"}
        said = ui.record_reason(code, params, _)
        assert said == (_(msgid) % values if values else _(msgid)), code
        if lang != "en":
            assert said != ui.record_reason(code, params, en), (lang, code)
    # A field without a label here is named as it is (the same in every language).
    unlabelled = ui.record_reason("invalid_content", {"field": "spectrum_sha256"}, _)
    assert unlabelled == _(ui.INVALID_FIELD) % {"field": "spectrum_sha256"}
    assert ui.record_reason(None, {}, _) is None


def test_rejected_records_are_reported_in_the_users_language(
    ui_client: TestClient,
    web_world: World,
    partner: Partner,
    received: dict[str, Any],
    web_app: FastAPI,
) -> None:
    """A validly signed package with unacceptable records: each row says why, translated."""
    from service.exchange.records import to_record

    home_a = web_world.agencies["A"]
    with Session(partner.client.app.state.fieldscan.engine) as s:  # type: ignore[attr-defined]
        seizure = s.get(Seizure, received["named"]["seizure"])
        item = s.get(Item, received["named"]["item"])
        assert seizure is not None and item is not None
        seizure_data, item_data = to_record("seizure", seizure).data, to_record("item", item).data
    bad = dict(seizure_data, id=str(uuid.uuid4()), country="Peru")
    lost = str(uuid.uuid4())
    records = {
        bad["id"]: ("seizure", bad, "invalid_content", None),
        (child := str(uuid.uuid4())): (
            "item", dict(item_data, id=child, seizure_id=bad["id"]), "parent_rejected", bad["id"]
        ),
        (orphan := str(uuid.uuid4())): (
            "item", dict(item_data, id=orphan, seizure_id=lost), "missing_parent", lost
        ),
    }  # fmt: skip
    keys = AgencyKeys.load_or_create(partner.settings.exchange_keys_path, partner.agency)
    partner_keys = partner.api("officer").get("/exchange/keys").json()

    data = build_package(
        issuer=Issuer(
            id=partner.agency,
            name=partner_keys["name"],
            country=partner_keys["country"],
            kind=partner_keys["kind"],
        ),
        recipients=[home_a],
        records=[ExchangeRecord(t, d) for t, d, _, _ in records.values()],
        signing_key=keys.signing,
    ).data
    before = _footprint(web_app)
    for lang in LANGUAGES:
        _login(ui_client, web_world, "investigator", lang=lang)
        r = _import(ui_client, data)
        assert r.status_code == 200, r.text
        assert re.search(r'id="count-rejected">3<', r.text)
        _ = _gettext(lang)
        for record_id, (_type, _data, code, ref) in records.items():
            row = re.search(
                rf'<tr class="outcome-rejected" data-reason="{code}">(.*?)</tr>', r.text, re.S
            )
            assert row is not None and record_id in row.group(1), (lang, code)
            params = (
                {"field": "country"}
                if code == "invalid_content"
                else {"parent_type": "seizure", "parent_id": ref}
            )
            said = ui.record_reason(code, params, _)
            assert said is not None and _esc(said) in row.group(1), (lang, code)
            if ref:
                assert f'<span class="mono">{ref}</span>' in row.group(1)
        # The service's English wording never reaches the page.
        assert "neither in the package nor received before" not in r.text or lang == "en"
        assert "invalid record" not in r.text
    after = _footprint(web_app)
    assert after[:3] == before[:3]  # no record stored
    # One receipt (audited) for the first import; the same package again writes nothing.
    assert after[3:5] == (before[3] + 1, before[4] + 1) and after[5:] == before[5:]


# --------------------------------------------------------------------------- browser


def test_browser_uploads_a_package_and_sees_the_report(
    live: Any, partner: Partner, tmp_path: Path, artifacts_dir: Path
) -> None:
    from service.exchange.models import ExchangePartnerCreate
    from service.exchange.partners import agency_keys, register_partner
    from service.principal import SYSTEM_ROLE, Principal

    home_a = live.world.agencies["A"]
    # The two sides trust each other (as the CLI would do it), the partner sends a package.
    engine = make_engine(live.settings.sqlalchemy_url)
    try:
        with Session(engine) as s:
            audit.bind(s, AuditSettings(CheckpointSigner.load_or_create(
                live.settings.signing_key_path), live.settings.checkpoint_every))  # fmt: skip
            home_keys = agency_keys(
                session=s,
                actor=Principal(agency_id=home_a, role=SYSTEM_ROLE),
                key_dir=live.settings.exchange_keys_path,
            )
            keys = partner.api("officer").get("/exchange/keys").json()
            register_partner(
                session=s,
                actor=Principal(agency_id=home_a, role=SYSTEM_ROLE),
                partner_in=ExchangePartnerCreate.model_validate(
                    {k: v for k, v in keys.items() if k in ExchangePartnerCreate.model_fields}
                ),
            )
            s.commit()
    finally:
        engine.dispose()
    body = home_keys.model_dump(mode="json")
    body.pop("signing_key_fingerprint")
    assert partner.api("admin").post("/exchange/partners", json=body).status_code == 201
    shared_seizure(partner.settings, partner.world.users["A"]["officer"], seed=7, sharing="all")
    r = partner.api("investigator").post(
        "/exchange/exports", json={"partner_agency_id": str(home_a)}
    )
    assert r.status_code == 200, r.text
    count = int(r.headers["X-Record-Count"])
    package = tmp_path / "from-partner.json"
    package.write_bytes(r.content)

    with chromium(tmp_path / "chromium") as context:
        page = context.new_page()
        page.goto(f"{live.base}/ui/login")
        page.get_by_label("Username").fill(live.world.users["A"]["investigator"])
        page.get_by_label("Password").fill(live.world.password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(re.compile(r".*/ui/seizures.*"))
        page.get_by_role("link", name="Exchange", exact=True).click()
        page.wait_for_url(re.compile(r".*/ui/exchange$"))
        page.screenshot(path=str(artifacts_dir / "exchange.png"), full_page=True)
        page.get_by_label("Package file").set_input_files(str(package))
        page.get_by_role("button", name="Check and import").click()
        page.wait_for_selector("#report-records")
        assert page.locator("#count-imported").inner_text() == str(count)
        assert page.locator("#count-rejected").inner_text() == "0"
        assert keys["name"] in page.locator("h2#h-package").inner_text()
        page.screenshot(path=str(artifacts_dir / "exchange-report.png"), full_page=True)
        # The imported seizure's page loads its provenance panel.
        page.locator("#report-records a").first.click()
        page.wait_for_selector("#provenance")
        assert r.headers["X-Package-Id"] in page.locator("#provenance").inner_text()


def test_browser_upload_over_the_limit_shows_the_translated_page(
    tmp_path: Path, artifacts_dir: Path
) -> None:
    """A real browser posting a too-large file gets the page (the server answers before
    reading the body; the browser must still show the answer, not a reset connection)."""
    settings = fast_settings(
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'limit.sqlite3'}",
        max_body_bytes=SMALL_BODY,
        exchange_max_package_bytes=EXCHANGE_LIMIT,
    )
    app = build_app(settings)
    world = seed_world(settings)
    big = tmp_path / "big.json"
    big.write_bytes(b"{" + b" " * (8 * EXCHANGE_LIMIT) + b"}")
    _ = _gettext("es")
    try:
        with (
            serve_in_thread(app) as base,
            chromium(tmp_path / "chromium", locale="es-ES", timeout_ms=20_000) as context,
        ):
            page = context.new_page()
            page.goto(f"{base}/ui/login")
            page.locator("input[name=username]").fill(world.users["A"]["investigator"])
            page.locator("input[name=password]").fill(world.password)
            page.locator("#main button[type=submit]").first.click()
            page.wait_for_url(re.compile(r".*/ui/seizures.*"))
            page.goto(f"{base}/ui/exchange")
            page.get_by_label(_("Package file")).set_input_files(str(big))
            with page.expect_navigation() as navigation:
                page.get_by_role("button", name=_("Check and import")).click()
            response = navigation.value
            assert response is not None and response.status == 413
            shown = page.locator("[role=alert]").inner_text()
            size = Formatter("es").number(EXCHANGE_LIMIT / (1024 * 1024), 1)
            assert _(ui.TOO_LARGE) % {"size": size} in shown
            assert _(ui.NOTHING_STORED) in shown
            page.screenshot(path=str(artifacts_dir / "exchange-too-large.png"), full_page=True)
    finally:
        app.state.fieldscan.engine.dispose()
