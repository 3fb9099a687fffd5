"""Station → real service (uvicorn on SQLite in a thread): exactly once, refusals, keys, clocks."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from fieldscan.cli import app
from fieldscan.cli._app import UserError
from fieldscan.station.capture import Station
from fieldscan.station.errors import DeviceKeyRejectedError
from fieldscan.station.localservice import (
    Bootstrap,
    bootstrap,
    login,
    service_in_thread,
    verify_audit,
)
from fieldscan.station.outbox import NewRecord, Outbox, RecordStatus
from fieldscan.station.sync import SyncClient
from service.core.config import Settings
from service.testing import fast_settings
from spectra.spectrum import Spectrum

IDENT = {
    "verdict": "mixture",
    "candidates": [{"name": "cocaine hydrochloride", "score": 0.95}],
    "components": [
        {"name": "cocaine hydrochloride", "fraction": 0.6},
        {"name": "levamisole hydrochloride", "fraction": 0.4},
    ],
    "library_version": "sha256:demo",
}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Settings, Bootstrap]]:
    tmp = tmp_path_factory.mktemp("station-svc")
    settings = fast_settings(data_dir=tmp, database_url=f"sqlite:///{tmp / 'svc.sqlite3'}")
    with service_in_thread(settings) as url:
        yield url, settings, bootstrap(settings)


def _rows(settings: Settings, table: str, ids: list[str]) -> list[dict[str, Any]]:
    engine = create_engine(settings.sqlalchemy_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text(f"SELECT * FROM {table}")).mappings().all()
    finally:
        engine.dispose()
    wanted = {uuid.UUID(i).hex for i in ids} | set(ids)
    return [dict(r) for r in rows if str(r["id"]).replace("-", "") in wanted or str(r["id"]) in ids]


def _spectrum(seed: int) -> Spectrum:
    rng = np.random.default_rng(seed)
    axis = np.linspace(150.0, 2100.0, 1024) + rng.random(1024) * 1e-3
    return Spectrum(axis, rng.normal(1500, 80, 1024) + rng.random(1024) * 1e-9)


def _capture(box: Outbox, n_tests: int = 3, clock: Any = None) -> dict[str, list[str]]:
    station = Station(box, operator_name="Officer 7", **({"clock": clock} if clock else {}))
    seizure = station.log_seizure(
        {"country": "PE", "transport_mode": "road"}, [{"description": "a"}]
    )
    item = seizure.items[0]
    tests = [station.log_field_test(_spectrum(n), IDENT, item_uuid=item) for n in range(n_tests)]
    custody = [
        station.log_custody_event(item, "sealed", seal_number="S-1"),
        station.log_custody_event(item, "handed_over", from_party="me", to_party="courier"),
    ]
    photo = station.log_photo(item, b"\xff\xd8\xff photo bytes", "item.jpg")
    return {
        "seizure": [seizure.seizure],
        "item": [item],
        "field_test": [t.uuid for t in tests],
        "sha": [t.spectrum_sha256 for t in tests],
        "custody_event": custody,
        "attachment": [photo],
    }


def test_everything_arrives_exactly_once_even_when_resent(
    service: tuple[str, Settings, Bootstrap], tmp_path: Path
) -> None:
    url, settings, world = service
    with Outbox(tmp_path / "outbox.db") as box:
        ids = _capture(box)
        with SyncClient(box, url, world.device_key) as sync:
            assert sync.run(once=True).sent == 8
            # Every answer "lost": the station sends everything again with the same keys.
            box._db.execute("UPDATE outbox SET status = 'pending'")
            again = sync.run(once=True)
        assert again.sent == 8 and again.refused == 0
        assert box.counts()[RecordStatus.SENT] == 8
    for table in ("seizure", "item", "field_test", "custody_event", "attachment"):
        assert len(_rows(settings, table, ids[table])) == len(ids[table]), table
    tests = _rows(settings, "field_test", ids["field_test"])
    by_id = {str(uuid.UUID(str(r["id"]))): r["spectrum_sha256"] for r in tests}
    assert [by_id[i] for i in ids["field_test"]] == ids["sha"]
    token = login(url, world.supervisor, world.password)
    read = httpx.get(
        f"{url}/api/v1/field-tests/{ids['field_test'][0]}",
        headers={"Authorization": f"Bearer {token}"},
    ).json()
    assert read["spectrum"]["intensities"] == _spectrum(0).intensities.tolist()
    assert verify_audit(url, token)["ok"]


def test_refused_then_corrected_then_resent_through_the_cli(
    service: tuple[str, Settings, Bootstrap], tmp_path: Path
) -> None:
    url, _, world = service
    path = tmp_path / "outbox.db"
    with Outbox(path) as box:
        item = Station(box).log_seizure({"country": "PE"}, [{"description": "a"}]).items[0]
        # An older station version let a truncated spectrum through local checks.
        short = {
            "id": str(uuid.uuid4()),
            "tested_at": datetime.now(UTC).isoformat(),
            "spectrum": {"kind": "raman", "axis": [1.0, 2.0, 3.0], "intensities": [1.0, 2.0]},
            "identification": IDENT,
        }
        bad = box.append([NewRecord("field_test", short, parent_uuid=item, uuid=short["id"])])[0]
    env = {"FIELDSCAN_OUTBOX": str(path), "FIELDSCAN_SERVICE_URL": url}
    runner = CliRunner()
    run = runner.invoke(app, ["sync", "run", "--once", "--device-key", world.device_key], env=env)
    assert run.exit_code == 0, run.output
    assert f"refused {bad.uuid}" in run.output and "spectrum" in run.output
    status = runner.invoke(app, ["sync", "status", "--json"], env=env)
    summary = json.loads(status.output)
    assert summary["refused"] == 1 and summary["sent"] == 2
    reason = summary["refused_records"][0]["reason"]
    assert "HTTP 422" in reason and "spectrum" in reason
    human = runner.invoke(app, ["sync", "status"], env=env)
    assert "refused by the service" in human.output and bad.uuid in human.output
    fixed = _spectrum(9)
    patch = json.dumps(
        {"kind": "raman", "axis": fixed.axis.tolist(), "intensities": fixed.intensities.tolist()}
    )
    no_reason = runner.invoke(
        app, ["sync", "correct", bad.uuid, "--set", f"spectrum={patch}"], env=env
    )
    assert no_reason.exit_code != 0 and "reason" in no_reason.output
    corrected = runner.invoke(
        app,
        ["sync", "correct", bad.uuid, "--set", f"spectrum={patch}", "--reason", "full spectrum"],
        env=env,
    )
    assert corrected.exit_code == 0, corrected.output
    again = runner.invoke(app, ["sync", "run", "--once", "--device-key", world.device_key], env=env)
    assert again.exit_code == 0 and "sent 1, refused 0" in again.output
    with Outbox(path) as box:
        assert box.get(bad.uuid).status is RecordStatus.SENT
        assert box.revisions(bad.uuid)[0]["payload"]["spectrum"]["intensities"] == [1.0, 2.0]
    not_refused = runner.invoke(
        app, ["sync", "correct", bad.uuid, "--set", "place=x", "--reason", "r"], env=env
    )
    # In-process the UserError surfaces as the exception (the console script prints one line).
    assert isinstance(not_refused.exception, UserError)
    assert "not refused" in str(not_refused.exception)


def test_a_revoked_key_keeps_everything_and_a_new_key_resumes(
    service: tuple[str, Settings, Bootstrap], tmp_path: Path
) -> None:
    from sqlmodel import Session

    from service import crud
    from service.core.db import make_engine
    from service.principal import SYSTEM

    url, settings, world = service
    engine = make_engine(settings.sqlalchemy_url)
    with Session(engine) as session:
        row, old_key = crud.create_device_key(
            session=session, actor=SYSTEM, device_id=uuid.UUID(world.device_id), label="t"
        )
        session.commit()
        key_id = row.id
    path = tmp_path / "outbox.db"
    with Outbox(path) as box:
        ids = _capture(box, n_tests=1)
        with SyncClient(box, url, old_key) as sync:
            assert sync.run(once=True).sent == 6
    with Session(engine) as session:
        crud.revoke_device_key(session=session, actor=SYSTEM, key_id=key_id)
        session.commit()
    engine.dispose()
    with Outbox(path) as box:
        more = Station(box).log_custody_event(ids["item"][0], "stored", place="evidence room")
        with SyncClient(box, url, old_key) as sync, pytest.raises(DeviceKeyRejectedError) as e:
            sync.run(once=True)
        assert "revoked or invalid — your records are kept" in str(e.value)
        assert box.get(more).status is RecordStatus.PENDING
    cli = CliRunner().invoke(
        app, ["sync", "run", "--once", "--url", url, "--device-key", old_key, "--outbox", str(path)]
    )
    assert cli.exit_code == 1 and "your records are kept" in cli.output
    assert "Traceback" not in cli.output
    with Outbox(path) as box, SyncClient(box, url, world.device_key) as sync:
        assert sync.run(once=True).sent == 1
        assert box.get(more).status is RecordStatus.SENT


def test_a_skewed_station_clock_is_reported_and_orders_nothing(
    service: tuple[str, Settings, Bootstrap], tmp_path: Path
) -> None:
    url, settings, world = service
    times = iter(
        datetime.now(UTC) - timedelta(days=3, minutes=m) for m in (0, 30, 10, 50, 5, 40, 1, 60)
    )  # three days slow and jumping backwards and forwards
    path = tmp_path / "outbox.db"
    with Outbox(path) as box:
        ids = _capture(box, n_tests=2, clock=lambda: next(times))
        slow = lambda: datetime.now(UTC) - timedelta(days=3)  # noqa: E731
        with SyncClient(box, url, world.device_key, clock=slow) as sync:
            report = sync.run(once=True)
        assert report.sent == 7 and report.clock_offset_s is not None
        assert abs(report.clock_offset_s - 3 * 86400) < 5
    tests = _rows(settings, "field_test", ids["field_test"])
    for row in tests:  # device time kept as given; the service stamped its own
        tested = datetime.fromisoformat(str(row["tested_at"])).replace(tzinfo=UTC)
        created = datetime.fromisoformat(str(row["created_at"])).replace(tzinfo=UTC)
        assert created - tested > timedelta(days=2)
    status = CliRunner().invoke(app, ["sync", "status", "--outbox", str(path)])
    assert "station clock differs from the service by +4320 min" in status.output
