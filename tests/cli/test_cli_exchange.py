"""``fieldscan exchange …`` between two databases (two instances), on every configured backend."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import fieldscan.cli.exchange  # noqa: F401
from fieldscan.cli import app
from fieldscan.cli._app import fail_cleanly
from service.testing import backends, field_test_payload, isolated_database, seizure_payload


class Instance:
    def __init__(self, url: str, data_dir: Path) -> None:
        self.url = url
        self.data_dir = data_dir


@pytest.fixture(params=backends())
def pair(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Instance, Instance]]:
    monkeypatch.setenv("FIELDSCAN_ARGON2_TIME_COST", "1")
    monkeypatch.setenv("FIELDSCAN_ARGON2_MEMORY_KIB", "8")
    backend = str(request.param)
    with (
        isolated_database(backend, tmp_path) as url_one,
        isolated_database(backend, tmp_path) as url_two,
    ):
        yield (
            Instance(url_one, tmp_path / "one"),
            Instance(url_two, tmp_path / "two"),
        )


def cli(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    inst: Instance,
    *args: str,
) -> tuple[int, str, str]:
    monkeypatch.setenv("DATABASE_URL", inst.url)
    full = [*args, "--data-dir", str(inst.data_dir)]
    code = fail_cleanly(lambda: app(args=full, prog_name="fieldscan"))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _json(out: str) -> Any:
    return json.loads(out.strip().splitlines()[-1])


def _shared_seizure(inst: Instance, agency_id: str) -> dict[str, str]:
    """A seizure shared with everyone, with an item and a field test (as an officer would)."""
    import uuid

    from sqlmodel import Session

    from service import audit, crud
    from service.core.db import make_engine
    from service.models import FieldTestCreate, ItemCreate, SeizureCreate
    from service.principal import Principal

    engine = make_engine(inst.url)
    officer = Principal(agency_id=uuid.UUID(agency_id), role="officer")
    try:
        with Session(engine) as session:
            seizure = crud.create_seizure(
                session=session,
                actor=officer,
                seizure_in=SeizureCreate.model_validate(seizure_payload(sharing="all")),
            )
            item = crud.create_item(
                session=session,
                actor=officer,
                seizure_id=seizure.id,
                item_in=ItemCreate(description="bag", net_mass=10, mass_unit="g"),  # type: ignore[arg-type]
            )
            test = crud.create_field_test(
                session=session,
                actor=officer,
                item_id=item.id,
                test_in=FieldTestCreate.model_validate(field_test_payload(300)),
            )
            session.commit()
            audit.chain_pending(session, wait=True)
            session.commit()
            return {"seizure": str(seizure.id), "item": str(item.id), "field_test": str(test.id)}
    finally:
        engine.dispose()


def test_two_instances_exchange_through_the_cli(
    pair: tuple[Instance, Instance],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    one, two = pair
    agencies = {}
    for inst, name, country, kind in (
        (one, "Aduanas Callao", "PE", "customs"),
        (two, "Policía Antinarcóticos", "CO", "anti_narcotics"),
    ):
        code, out, err = cli(
            capsys, monkeypatch, inst, "admin", "agency", "create", name,
            "--country", country, "--kind", kind,
        )  # fmt: skip
        assert code == 0, err
        agencies[inst] = _json(out)
    key_files = {}
    for inst in (one, two):
        code, out, err = cli(
            capsys, monkeypatch, inst, "exchange", "keys", "--agency", agencies[inst]["name"]
        )
        assert code == 0, err
        keys = _json(out)
        assert keys["agency_id"] == agencies[inst]["id"] and len(keys["signing_key"]) == 64
        # The private keys stay in files under the data dir, never in the output.
        assert (inst.data_dir / "exchange_keys" / f"{keys['agency_id']}.ed25519.pem").exists()
        key_files[inst] = tmp_path / f"keys-{keys['agency_id']}.json"
        key_files[inst].write_text(out)
    # Keys are stable: a second call prints the same.
    code, out, _ = cli(capsys, monkeypatch, one, "exchange", "keys", "--agency", "Aduanas Callao")
    assert _json(out)["signing_key"] == json.loads(key_files[one].read_text())["signing_key"]

    for inst, other in ((one, two), (two, one)):
        code, out, err = cli(
            capsys, monkeypatch, inst, "exchange", "partner-add",
            "--agency", agencies[inst]["name"], "--from", str(key_files[other]),
        )  # fmt: skip
        assert code == 0, err
        assert _json(out)["partner_agency_id"] == agencies[other]["id"]
    code, out, _ = cli(
        capsys, monkeypatch, one, "exchange", "partners", "--agency", "Aduanas Callao"
    )
    assert [json.loads(line)["name"] for line in out.splitlines()] == ["Policía Antinarcóticos"]

    made = _shared_seizure(one, agencies[one]["id"])
    package = tmp_path / "to-two.json"
    code, out, err = cli(
        capsys, monkeypatch, one, "exchange", "export", "--agency", "Aduanas Callao",
        "--partner", "Policía Antinarcóticos", "--out", str(package),
    )  # fmt: skip
    assert code == 0, err
    summary = _json(out)
    assert summary["encrypted"] is True
    assert summary["records"] == {"seizure": 1, "item": 1, "field_test": 1}
    assert json.loads(package.read_bytes())["format"] == "fieldscan-exchange-envelope"

    code, out, err = cli(
        capsys, monkeypatch, two, "exchange", "import", str(package),
        "--agency", "Policía Antinarcóticos", "--json",
    )  # fmt: skip
    assert code == 0, err
    report = _json(out)
    assert report["imported"] == 3 and report["rejected"] == 0
    assert {r["id"] for r in report["records"]} == set(made.values())
    assert all(r["reason"] is None and r["params"] == {} for r in report["records"])

    # Again, as JSON: every record skipped, with its code and parameters.
    code, out, err = cli(
        capsys, monkeypatch, two, "exchange", "import", str(package),
        "--agency", "Policía Antinarcóticos", "--json",
    )  # fmt: skip
    assert code == 0, err
    again = _json(out)
    assert again["first_receipt"] is False and again["skipped"] == 3
    assert [(r["outcome"], r["reason"], r["params"]) for r in again["records"]] == [
        ("skipped", "already_received", {"version": 1})
    ] * 3

    # Again: nothing new, in the human summary form.
    code, out, err = cli(
        capsys, monkeypatch, two, "exchange", "import", str(package),
        "--agency", "Policía Antinarcóticos",
    )  # fmt: skip
    assert code == 0, err
    assert "received before" in out and "signature verified" in out

    # Nothing changed since tomorrow: an empty (still signed) package.
    empty = tmp_path / "empty.json"
    code, out, err = cli(
        capsys, monkeypatch, one, "exchange", "export", "--agency", "Aduanas Callao",
        "--partner", "Policía Antinarcóticos", "--out", str(empty), "--since", "2100-01-01",
    )  # fmt: skip
    assert code == 0, err
    assert _json(out)["records"] == {}

    # A tampered package: one line saying why, exit 1, nothing stored.
    plain = tmp_path / "plain.json"
    code, _, err = cli(
        capsys, monkeypatch, one, "exchange", "export", "--agency", "Aduanas Callao",
        "--partner", agencies[two]["id"], "--out", str(plain), "--no-encrypt",
    )  # fmt: skip
    assert code == 0, err
    text = plain.read_text(encoding="utf-8")
    tampered = tmp_path / "tampered.json"
    tampered.write_text(text.replace("Passenger selected", "Passenger released"), encoding="utf-8")
    assert tampered.read_text(encoding="utf-8") != text
    code, out, err = cli(
        capsys, monkeypatch, two, "exchange", "import", str(tampered),
        "--agency", "Policía Antinarcóticos",
    )  # fmt: skip
    assert code == 1
    assert "does not match the signed manifest hash" in err and len(err.strip().splitlines()) == 1
    # With --json, the refusal as the API gives it (code, parameters, English) on stdout.
    code, out, err = cli(
        capsys, monkeypatch, two, "exchange", "import", str(tampered),
        "--agency", "Policía Antinarcóticos", "--json",
    )  # fmt: skip
    assert code == 1 and len(err.strip().splitlines()) == 1
    refusal = _json(out)
    assert refusal["reason"] == "tampered_record" and refusal["params"] == {}
    assert "does not match the signed manifest hash" in refusal["detail"]

    code, out, err = cli(capsys, monkeypatch, two, "audit", "verify")
    assert code == 0, out + err
    code, out, err = cli(capsys, monkeypatch, one, "audit", "verify")
    assert code == 0, out + err


def test_cli_mistakes_are_one_clear_line(
    pair: tuple[Instance, Instance],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    one, _ = pair
    code, _, err = cli(
        capsys, monkeypatch, one, "admin", "agency", "create", "Aduanas", "--country", "PE",
        "--kind", "customs",
    )  # fmt: skip
    assert code == 0, err
    code, _, err = cli(
        capsys, monkeypatch, one, "exchange", "partner-add", "--agency", "Aduanas", "--name", "X"
    )
    assert code == 2 and "missing" in err and "signing_key" in err
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    code, _, err = cli(
        capsys,
        monkeypatch,
        one,
        "exchange",
        "partner-add",
        "--agency",
        "Aduanas",
        "--from",
        str(bad),
    )
    assert code == 2 and "not JSON" in err
    code, _, err = cli(
        capsys, monkeypatch, one, "exchange", "export", "--agency", "Aduanas",
        "--partner", "Aduanas", "--out", str(tmp_path / "x.json"),
    )  # fmt: skip
    assert code == 1 and "exchange partner" in err and "not found" in err
    assert not (tmp_path / "x.json").exists()
    garbage = tmp_path / "garbage.json"
    garbage.write_bytes(b"PK\x03\x04 not a package")
    code, _, err = cli(
        capsys, monkeypatch, one, "exchange", "import", str(garbage), "--agency", "Aduanas"
    )
    assert code == 1 and "not JSON" in err
    code, out, err = cli(
        capsys, monkeypatch, one, "exchange", "import", str(garbage), "--agency", "Aduanas",
        "--json",
    )  # fmt: skip
    assert code == 1 and "not JSON" in err
    assert _json(out)["reason"] == "malformed" and "not JSON" in _json(out)["detail"]
    code, _, err = cli(capsys, monkeypatch, one, "exchange", "keys", "--agency", "Nobody")
    assert code == 2 and "no agency named" in err
