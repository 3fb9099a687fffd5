"""``fieldscan admin …`` and ``fieldscan audit …`` on every configured database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

import fieldscan.cli.admin
import fieldscan.cli.serve  # noqa: F401
from fieldscan.cli import app
from fieldscan.cli._app import fail_cleanly
from service.testing import backends, isolated_database


@pytest.fixture(params=backends())
def db_env(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    with isolated_database(str(request.param), tmp_path) as url:
        monkeypatch.setenv("DATABASE_URL", url)
        monkeypatch.setenv("FIELDSCAN_DATA_DIR", str(tmp_path / "data"))
        monkeypatch.setenv("FIELDSCAN_ARGON2_TIME_COST", "1")
        monkeypatch.setenv("FIELDSCAN_ARGON2_MEMORY_KIB", "8")
        yield url


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = fail_cleanly(lambda: app(args=list(args), prog_name="fieldscan"))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _json(out: str) -> Any:
    return json.loads(out.strip().splitlines()[-1])


def test_bootstrap_then_verify(
    db_env: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = cli(
        capsys,
        "admin",
        "agency",
        "create",
        "Aduanas Callao",
        "--country",
        "pe",
        "--kind",
        "customs",
    )
    assert code == 0, err
    agency = _json(out)
    assert agency["country"] == "PE" and agency["kind"] == "customs"
    monkeypatch.setenv("FIELDSCAN_NEW_PASSWORD", "s3cret-pass")
    code, out, err = cli(
        capsys,
        "admin",
        "user",
        "create",
        "ana",
        "--agency",
        "Aduanas Callao",
        "--role",
        "supervisor",
    )
    assert code == 0, err
    assert _json(out)["role"] == "supervisor" and _json(out)["agency_id"] == agency["id"]
    code, out, err = cli(
        capsys,
        "admin",
        "device",
        "create",
        "--agency",
        agency["id"],
        "--model",
        "Handheld R",
        "--serial",
        "HR-1",
    )
    assert code == 0, err
    device = _json(out)
    assert device["api_key"].startswith("fsdk_")
    code, out, _ = cli(capsys, "admin", "device", "key", device["id"], "--label", "spare")
    spare = _json(out)
    code, out, _ = cli(capsys, "admin", "device", "revoke-key", spare["api_key_id"])
    assert code == 0 and _json(out)["revoked_at"]
    code, out, _ = cli(capsys, "admin", "user", "list")
    assert [json.loads(line)["username"] for line in out.splitlines()] == ["ana"]
    code, out, _ = cli(capsys, "audit", "checkpoint")
    assert code == 0 and _json(out)["seq"] == 6
    code, out, err = cli(capsys, "audit", "verify")
    assert code == 0, out + err
    assert out.startswith("OK: 6 events") and "1 signed checkpoints" in out

    # Tamper behind the service's back: edit the user's role in place.
    engine = create_engine(db_env)
    with engine.begin() as conn:
        conn.execute(text("UPDATE \"user\" SET role = 'admin' WHERE username = 'ana'"))
    engine.dispose()
    code, out, _ = cli(capsys, "audit", "verify", "--json")
    assert code == 1
    report = json.loads(out)
    assert report["ok"] is False and [p["kind"] for p in report["problems"]] == ["row_altered"]


def test_bad_input_is_one_clear_line(
    db_env: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = cli(
        capsys, "admin", "agency", "create", "X", "--country", "PE", "--kind", "navy"
    )
    assert code == 2 and "unknown agency kind 'navy'" in err and "Traceback" not in err
    code, _, err = cli(
        capsys, "admin", "agency", "create", "X", "--country", "Peru", "--kind", "police"
    )
    assert code == 2 and "country" in err
    assert (
        cli(capsys, "admin", "agency", "create", "X", "--country", "PE", "--kind", "police")[0] == 0
    )
    code, _, err = cli(
        capsys, "admin", "agency", "create", "X", "--country", "PE", "--kind", "police"
    )
    assert code == 2 and "exists already" in err
    monkeypatch.setenv("FIELDSCAN_NEW_PASSWORD", "long-enough")
    code, _, err = cli(capsys, "admin", "user", "create", "bob", "--agency", "X", "--role", "king")
    assert code == 2 and "unknown role 'king'" in err
    code, _, err = cli(
        capsys, "admin", "user", "create", "bob", "--agency", "Nowhere", "--role", "officer"
    )
    assert code == 2 and "no agency named 'Nowhere'" in err
    monkeypatch.setenv("FIELDSCAN_NEW_PASSWORD", "short")
    code, _, err = cli(
        capsys, "admin", "user", "create", "bob", "--agency", "X", "--role", "officer"
    )
    assert code == 2 and "password" in err
    code, _, err = cli(capsys, "admin", "device", "key", "not-a-uuid")
    assert code == 2 and "not a UUID" in err
    code, _, err = cli(capsys, "admin", "device", "key", "00000000-0000-4000-8000-000000000000")
    assert code == 1 and "device 00000000-0000-4000-8000-000000000000 not found" in err
    assert cli(capsys, "admin", "user", "list")[1] == ""  # nothing half-made


def test_unreachable_database_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(
        "DATABASE_URL", "postgresql+psycopg://nobody:pw@127.0.0.1:1/none?connect_timeout=2"
    )
    code, _, err = cli(capsys, "audit", "verify")
    assert code == 1 and "database" in err and "pw@" not in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
