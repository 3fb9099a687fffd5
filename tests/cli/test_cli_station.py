"""``fieldscan station`` and ``fieldscan sync`` without a service: logging, guided scan, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fieldscan.cli import app
from fieldscan.cli._app import UserError
from fieldscan.station.outbox import Outbox, RecordStatus
from firmware_mocks.obp import EmulatedModule, ModuleSpec, PtyMock
from firmware_mocks.obp.samples import resolve_sample

FIELDSCAN = str(Path(sys.executable).with_name("fieldscan"))
runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"FIELDSCAN_OUTBOX": str(tmp_path / "outbox.db"), "COLUMNS": "200"}


@pytest.fixture(scope="module")
def mock() -> Iterator[PtyMock]:
    module = EmulatedModule(resolve_sample("cocaine hydrochloride"), ModuleSpec(), seed=5)
    with PtyMock(module) as running:
        yield running


def _seizure(env: dict[str, str], *items: str) -> dict[str, object]:
    args = ["station", "log-seizure", "--country", "pe", "--transport-mode", "road", "--json"]
    for item in items:
        args += ["--item", item]
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)  # type: ignore[no-any-return]


def test_log_a_seizure_items_custody_and_a_photo(env: dict[str, str], tmp_path: Path) -> None:
    logged = _seizure(env, "brick A")
    item = logged["items"][0]  # type: ignore[index]
    more = runner.invoke(
        app, ["station", "log-item", str(logged["seizure"]), "--description", "bag B"], env=env
    )
    assert more.exit_code == 0, more.output
    sealed = runner.invoke(
        app, ["station", "custody", item, "--kind", "sealed", "--seal-number", "S-9"], env=env
    )
    assert sealed.exit_code == 0, sealed.output
    photo = tmp_path / "brick.jpg"
    photo.write_bytes(b"\xff\xd8\xff\xe0 jpeg")
    attached = runner.invoke(app, ["station", "photo", item, str(photo)], env=env)
    assert attached.exit_code == 0, attached.output
    with Outbox(env["FIELDSCAN_OUTBOX"]) as box:
        kinds = [r.kind for r in box.records()]
        assert kinds == ["seizure", "item", "item", "custody_event", "attachment"]
        assert box.records()[0].payload["country"] == "PE"
    status = runner.invoke(app, ["sync", "status", "--json"], env=env)
    assert json.loads(status.output)["pending"] == 5


def test_bad_input_is_refused_with_a_message_and_nothing_written(
    env: dict[str, str], tmp_path: Path
) -> None:
    bad = runner.invoke(app, ["station", "log-seizure", "--country", "Peru"], env=env)
    assert isinstance(bad.exception, UserError) and "country" in str(bad.exception)
    item = _seizure(env, "x")["items"][0]  # type: ignore[index]
    no_seal = runner.invoke(app, ["station", "custody", item, "--kind", "sealed"], env=env)
    assert isinstance(no_seal.exception, UserError) and "seal_number" in str(no_seal.exception)
    missing = runner.invoke(app, ["station", "photo", item, str(tmp_path / "none.jpg")], env=env)
    assert isinstance(missing.exception, UserError) and "cannot read" in str(missing.exception)
    unknown = runner.invoke(app, ["station", "custody", "nope", "--kind", "stored"], env=env)
    assert isinstance(unknown.exception, UserError) and "no item nope" in str(unknown.exception)
    with Outbox(env["FIELDSCAN_OUTBOX"]) as box:
        assert len(box.records()) == 2  # only the good seizure and its item
    no_url = runner.invoke(app, ["sync", "run", "--once"], env=env)
    assert isinstance(no_url.exception, UserError) and "service URL" in str(no_url.exception)
    bad_set = runner.invoke(app, ["sync", "correct", item, "--reason", "r"], env=env)
    assert isinstance(bad_set.exception, UserError)


def test_the_console_script_prints_one_line_and_no_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "FIELDSCAN_OUTBOX": str(tmp_path / "o.db")}
    done = subprocess.run(
        [FIELDSCAN, "station", "log-seizure", "--country", "Peru"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 2
    assert "country" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    unknown = subprocess.run(
        [FIELDSCAN, "sync", "correct", "no-such-uuid", "--set", "a=1", "--reason", "r"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert unknown.returncode == 1 and "no outbox record no-such-uuid" in unknown.stderr


def test_a_full_disk_is_a_clear_message_and_earlier_records_survive(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import fieldscan.cli.station as station_cli

    _seizure(env, "kept")

    def tiny_disk(path: Path | None) -> Outbox:
        box = Outbox(env["FIELDSCAN_OUTBOX"])
        pages = box._db.execute("PRAGMA page_count").fetchone()[0]
        box._db.execute(f"PRAGMA max_page_count = {pages}")  # SQLITE_FULL, as a full disk
        return box

    monkeypatch.setattr(station_cli, "open_outbox", tiny_disk)
    narrative = "x" * 20_000
    full = runner.invoke(
        app, ["station", "log-seizure", "--country", "PE", "--narrative", narrative], env=env
    )
    assert full.exit_code == 1
    assert "is full" in full.output and "NOT saved" in full.output
    monkeypatch.undo()
    with Outbox(env["FIELDSCAN_OUTBOX"]) as box:
        assert [r.kind for r in box.records()] == ["seizure", "item"]
        assert box._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_guided_scan_says_the_verdict_and_records_it(env: dict[str, str], mock: PtyMock) -> None:
    seizure = str(_seizure(env)["seizure"])
    mock.module.sample = resolve_sample("cocaine hydrochloride")
    args = ["station", "scan", "--port", mock.path, "--seizure", seizure, "--integration-ms", "300"]
    done = runner.invoke(app, [*args, "--lang", "es"], env=env)
    assert done.exit_code == 0, done.output
    assert "positivo presuntivo: cocaine hydrochloride" in done.output
    assert "precinte y envíe al laboratorio" in done.output
    assert "DEMOSTRACIÓN" in done.output
    with Outbox(env["FIELDSCAN_OUTBOX"]) as box:
        test = box.records()[-1]
        assert test.kind == "field_test" and test.status is RecordStatus.PENDING
        assert test.payload["identification"]["verdict"] == "identified"
        station = test.payload["identification"]["station"]
        assert station["device"]["model"] and station["wording"]["lang"] == "es"
        assert len(test.payload["spectrum"]["axis"]) == 1024
        item = test.parent_uuid
    again = runner.invoke(app, [*args, "--item", str(item), "--json"], env=env)
    assert again.exit_code == 0, again.output
    result = json.loads(again.output.strip().splitlines()[-1])
    assert result["item"] == item and result["wording"].startswith("presumptive positive")
    assert len(result["spectrum_sha256"]) == 64


def test_guided_scan_checks_before_touching_the_instrument(env: dict[str, str]) -> None:
    unknown = runner.invoke(
        app, ["station", "scan", "--port", "/dev/nonexistent", "--seizure", "nope"], env=env
    )
    assert isinstance(unknown.exception, UserError) and "no seizure nope" in str(unknown.exception)
    seizure = str(_seizure(env)["seizure"])
    lang = runner.invoke(
        app,
        ["station", "scan", "--port", "/dev/x", "--seizure", seizure, "--lang", "de"],
        env=env,
    )
    assert isinstance(lang.exception, UserError) and "not available" in str(lang.exception)
    no_port = runner.invoke(
        app, ["station", "scan", "--port", "/dev/nonexistent-tty", "--seizure", seizure], env=env
    )
    assert no_port.exit_code != 0
    with Outbox(env["FIELDSCAN_OUTBOX"]) as box:
        assert [r.kind for r in box.records()] == ["seizure"]  # nothing half-recorded


def test_sync_config_keeps_the_url_and_key_private(env: dict[str, str]) -> None:
    bad = runner.invoke(app, ["sync", "config", "--url", "ftp://x"], env=env)
    assert isinstance(bad.exception, UserError) and "http" in str(bad.exception)
    done = runner.invoke(
        app, ["sync", "config", "--url", "http://127.0.0.1:9", "--device-key", "k"], env=env
    )
    assert done.exit_code == 0, done.output
    assert Path(env["FIELDSCAN_OUTBOX"]).stat().st_mode & 0o077 == 0
    _seizure(env)
    # Nothing listens on port 9: the records stay pending and the exit code says so.
    down = runner.invoke(app, ["sync", "run", "--once", "--max-failures", "1"], env=env)
    assert down.exit_code == 1 and "kept" in down.output
    with Outbox(env["FIELDSCAN_OUTBOX"]) as box:
        assert box.counts()[RecordStatus.PENDING] == 1
        assert "ConnectError" in (box.records()[0].last_error or "")
