"""Fixtures of the web UI tests: a service app with the UI mounted and a seeded agency."""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session

from fieldscan.station.localservice import free_port
from service import audit, crud
from service.audit import AuditSettings, CheckpointSigner
from service.core.config import Settings
from service.core.db import make_engine
from service.main import create_app
from service.models import (
    CustodyEventCreate,
    FieldTestCreate,
    ItemCreate,
    ItemUpdate,
    LabResultCreate,
    SeizureCreate,
    User,
)
from service.principal import Principal
from service.testing import (
    World,
    backends,
    fast_settings,
    isolated_database,
    seed_world,
    seizure_payload,
)
from service.web import mount
from service.web.plots import reference_library

NIL = uuid.UUID(int=0)

#: Debian's Chromium (scripts/install-browser.sh), driven by Playwright: no browser download.
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextmanager
def chromium(
    profile: Path, *, locale: str = "en-GB", timeout_ms: int = 10_000, **options: Any
) -> Iterator[Any]:
    """A headless Chromium context with a fresh private profile (removed afterwards)."""
    if not Path(CHROMIUM).exists():  # pragma: no cover - scripts/install-browser.sh installs it
        pytest.fail(f"{CHROMIUM} is missing: run scripts/install-browser.sh", pytrace=False)
    from playwright import sync_api as playwright_api

    with playwright_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            args=ARGS,
            headless=True,
            locale=locale,
            **options,
        )
        context.set_default_timeout(timeout_ms)
        try:
            yield context
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)


@contextmanager
def serve_in_thread(app: FastAPI) -> Iterator[str]:
    """``app`` under uvicorn in a thread on a free port of 127.0.0.1; yields its base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                pytest.fail("uvicorn did not start")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@dataclass
class Scenario:
    """Records made for the UI tests (all in agency A unless named ``other_*``)."""

    seizure_id: uuid.UUID = NIL
    item_id: uuid.UUID = NIL
    test_id: uuid.UUID = NIL
    precursor_item_id: uuid.UUID = NIL
    approval_id: uuid.UUID = NIL
    other_seizure_id: uuid.UUID = NIL
    other_test_id: uuid.UUID = NIL
    bulk_ids: list[uuid.UUID] = field(default_factory=list)
    reference: str = ""


def build_app(settings: Settings) -> FastAPI:
    app = create_app(settings)
    mount(app)
    return app


def measured_spectrum(name: str, seed: int = 1) -> dict[str, object]:
    """A 'raw' field spectrum of ``name``: the demo reference plus baseline and noise."""
    ref = reference_library().spectrum(name)
    rng = np.random.default_rng(seed)
    axis = np.asarray(ref.axis)
    values = 1000 * np.asarray(ref.intensities) + 200 + 0.05 * axis + rng.normal(0, 5, axis.size)
    return {"kind": "raman", "axis": axis.tolist(), "intensities": values.tolist()}


def _principal(session: Session, username: str) -> Principal:
    user = crud.get_user_by_username(session=session, username=username)
    assert user is not None
    return crud.principal_for_user(user)


def seed_records(settings: Settings, world: World, *, bulk: int = 30) -> Scenario:
    """Seizures with items, a field test of a demo reference, custody, a lab result, an approval."""
    lib = reference_library()
    reference = next(n for n in lib.names if n.startswith("cocaine"))
    sc = Scenario(reference=reference)
    engine = make_engine(settings.sqlalchemy_url)
    signer = CheckpointSigner.load_or_create(settings.signing_key_path)
    try:
        with Session(engine, expire_on_commit=False) as session:
            audit.bind(
                session, AuditSettings(signer=signer, checkpoint_every=settings.checkpoint_every)
            )
            officer = _principal(session, world.users["A"]["officer"])
            supervisor = _principal(session, world.users["A"]["supervisor"])
            seizure = crud.create_seizure(
                session=session,
                actor=officer,
                seizure_in=SeizureCreate.model_validate(seizure_payload()),
            )
            sc.seizure_id = seizure.id
            item = crud.create_item(
                session=session,
                actor=officer,
                seizure_id=seizure.id,
                item_in=ItemCreate(
                    description="White powder in suitcase lining",
                    substance=reference,
                    packaging="plastic bag",
                    gross_mass=1250.0,
                    net_mass=1180.5,
                    mass_unit="g",
                    unit_count=1,
                ),
            )
            sc.item_id = item.id
            ident = {
                "file": "scan-0001.spc",
                "verdict": "identified",
                "candidates": [
                    {"name": reference, "score": 0.9731},
                    {"name": "lidocaine", "score": 0.41},
                ],
                "components": [],
                "library_version": lib.version,
            }
            test = crud.create_field_test(
                session=session,
                actor=officer,
                item_id=item.id,
                test_in=FieldTestCreate.model_validate(
                    {
                        "tested_at": "2026-03-14T08:41:07+00:00",
                        "place": "Cargo terminal 2",
                        "device_id": str(world.devices["A"]),
                        "spectrum": measured_spectrum(reference),
                        "identification": ident,
                    }
                ),
                identification_raw=ident,
            )
            sc.test_id = test.id
            t0 = datetime(2026, 3, 14, 9, 0, tzinfo=UTC)
            for kind, extra, at in (
                ("sealed", {"seal_number": "S-0001"}, t0),
                (
                    "handed_over",
                    {"from_party": "Officer A", "to_party": "Evidence store"},
                    t0 + timedelta(hours=2),
                ),
                (
                    "transferred_to_lab",
                    {"from_party": "Courier X", "to_party": "National lab"},
                    t0 + timedelta(days=1),
                ),
            ):
                crud.create_custody_event(
                    session=session,
                    actor=officer,
                    item_id=item.id,
                    event_in=CustodyEventCreate.model_validate(
                        {"kind": kind, "occurred_at": at, "place": "Lima", **extra}
                    ),
                )
            crud.create_lab_result(
                session=session,
                actor=supervisor,
                item_id=item.id,
                result_in=LabResultCreate(
                    method="gc_ms",
                    substance="levamisole",
                    purity_percent=71.5,
                    net_mass=1100.0,
                    mass_unit="g",
                    analysed_at=t0 + timedelta(days=3),
                ),
            )
            precursor = crud.create_item(
                session=session,
                actor=officer,
                seizure_id=seizure.id,
                item_in=ItemCreate(
                    description="Drum of clear liquid",
                    substance="acetic anhydride",
                    net_mass=200.0,
                    mass_unit="l",
                ),
            )
            sc.precursor_item_id = precursor.id
            approval = crud.update_item(
                session=session,
                actor=officer,
                item_id=item.id,
                if_match=item.version,
                item_in=ItemUpdate(
                    net_mass=1170.0, mass_unit="g", reason="re-weighed on calibrated scale"
                ),
            )
            sc.approval_id = approval.id
            for i in range(bulk):
                s = crud.create_seizure(
                    session=session,
                    actor=officer,
                    seizure_in=SeizureCreate.model_validate(
                        seizure_payload(
                            seized_at=(t0 - timedelta(days=3 * i + 1)).isoformat(),
                            place=f"Bulk place {i:03d}",
                            transport_mode=["air", "sea", "road"][i % 3],
                            latitude=-12.0 + i * 0.1,
                            longitude=-77.0,
                            destination_country=["ES", "NL", "US"][i % 3],
                            # Some routes go direct: the dashboard tells PE → ES from PE → BR → ES.
                            transit_countries=["BR"] if i % 2 == 0 else [],
                        )
                    ),
                )
                sc.bulk_ids.append(s.id)
            other = _principal(session, world.users["B"]["officer"])
            os_ = crud.create_seizure(
                session=session,
                actor=other,
                seizure_in=SeizureCreate.model_validate(
                    seizure_payload(place="Other agency secret place")
                ),
            )
            sc.other_seizure_id = os_.id
            oi = crud.create_item(
                session=session,
                actor=other,
                seizure_id=os_.id,
                item_in=ItemCreate(description="B item"),
            )
            ot = crud.create_field_test(
                session=session,
                actor=other,
                item_id=oi.id,
                test_in=FieldTestCreate.model_validate(
                    {
                        "tested_at": "2026-03-14T08:41:07+00:00",
                        "spectrum": measured_spectrum(reference, 2),
                        "identification": ident,
                    }
                ),
            )
            sc.other_test_id = ot.id
            session.commit()
            audit.chain_pending(session, wait=True)  # as the app does after each commit
            session.commit()
    finally:
        engine.dispose()
    return sc


@pytest.fixture(scope="module", params=backends())
def web_settings(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    """SQLite always; PostgreSQL too when ``FIELDSCAN_TEST_DATABASE_URL`` is set."""
    tmp = tmp_path_factory.mktemp(f"web-{request.param}")
    with isolated_database(str(request.param), tmp) as url:
        yield fast_settings(data_dir=tmp, database_url=url)


@pytest.fixture(scope="module")
def web_app(web_settings: Settings) -> Iterator[FastAPI]:
    app = build_app(web_settings)
    yield app
    app.state.fieldscan.engine.dispose()


@pytest.fixture(scope="module")
def web_world(web_settings: Settings, web_app: FastAPI) -> World:
    return seed_world(web_settings)


@pytest.fixture(scope="module")
def scenario(web_settings: Settings, web_world: World) -> Scenario:
    return seed_records(web_settings, web_world)


def ui_login(client: TestClient, username: str, password: str) -> None:
    r = client.post(
        "/ui/login",
        data={"username": username, "password": password, "next": "/ui/seizures"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text


@pytest.fixture(scope="module")
def _module_client(web_app: FastAPI, web_world: World, scenario: Scenario) -> Iterator[TestClient]:
    # One client per module: the app's lifespan (audit sweeper) runs once per app.
    with TestClient(web_app, base_url="http://testserver") as client:
        yield client


@pytest.fixture()
def ui_client(_module_client: TestClient) -> TestClient:
    """A browser-like client with no cookies yet (no session, no language choice)."""
    _module_client.cookies.clear()
    return _module_client


def user_id(settings: Settings, username: str) -> uuid.UUID:
    engine = make_engine(settings.sqlalchemy_url)
    try:
        with Session(engine) as session:
            user = crud.get_user_by_username(session=session, username=username)
            assert isinstance(user, User)
            return user.id
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    path = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


class LiveServer:
    """A uvicorn server of the app in a thread, with its seeded world."""

    def __init__(self, base: str, world: World, scenario: Scenario, settings: Settings) -> None:
        self.base, self.world, self.scenario, self.settings = base, world, scenario, settings


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("web-live")
    settings = fast_settings(data_dir=tmp, database_url=f"sqlite:///{tmp / 'live.sqlite3'}")
    app = build_app(settings)
    world = seed_world(settings)
    scenario = seed_records(settings, world, bulk=12)
    try:
        with serve_in_thread(app) as base:
            yield LiveServer(base, world, scenario, settings)
    finally:
        app.state.fieldscan.engine.dispose()
