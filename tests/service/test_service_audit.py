"""The audit chain: every write is chained and versioned; tampering in the database is found."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, text
from sqlmodel import Session, select

from service import audit
from service.models import AuditVerifyReport
from service.testing import field_test_payload, seizure_payload


@pytest.fixture(scope="module")
def populated(as_user: Any, app_client: Any) -> dict[str, Any]:
    """A few records with history: a seizure edited twice, an item, a field test, custody."""
    api = as_user("A", "officer")
    seizure = api.post("/seizures", json=seizure_payload()).json()
    for n in (1, 2):
        r = api.patch(
            f"/seizures/{seizure['id']}",
            json={"narrative": f"edit {n}", "reason": f"typo {n}"},
            headers={"If-Match": f'"{n}"'},
        )
        assert r.status_code == 200, r.text
    item = api.post(
        f"/seizures/{seizure['id']}/items",
        json={"description": "bag", "net_mass": 10, "mass_unit": "g"},
    ).json()
    api.post(f"/items/{item['id']}/field-tests", json=field_test_payload(64))
    api.post(
        f"/items/{item['id']}/custody-events",
        json={"kind": "sealed", "occurred_at": "2026-03-14T09:00:00Z", "seal_number": "S-1"},
    )
    supervisor = as_user("A", "supervisor")
    assert supervisor.post("/audit/checkpoints").status_code == 201
    return {"seizure": seizure, "item": item}


def _engine(app_client: Any) -> Engine:
    return app_client.app.state.fieldscan.engine  # type: ignore[no-any-return]


@contextmanager
def tampered(engine: Engine, *statements: str, **params: Any) -> Iterator[AuditVerifyReport]:
    """Run raw SQL behind the service's back, verify inside that transaction, then roll back."""
    with engine.connect() as conn:
        trans = conn.begin()
        try:
            for statement in statements:
                conn.execute(text(statement), params)
            with Session(bind=conn) as session:
                yield audit.verify(session)
        finally:
            trans.rollback()


def _kinds(report: AuditVerifyReport) -> set[str]:
    return {p.kind for p in report.problems}


def test_untouched_database_verifies(populated: Any, as_user: Any) -> None:
    r = as_user("A", "supervisor").get("/audit/verify")
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["ok"] is True, report["problems"]
    assert report["events_checked"] >= 20 and report["versions_checked"] == report["events_checked"]
    assert report["checkpoints_checked"] >= 1


def test_history_keeps_every_version_with_reasons(populated: Any, as_user: Any) -> None:
    seizure_id = populated["seizure"]["id"]
    history = as_user("A", "investigator").get(f"/history/seizure/{seizure_id}").json()
    assert [v["version"] for v in history] == [1, 2, 3]
    assert [v["reason"] for v in history] == [None, "typo 1", "typo 2"]
    assert history[0]["data"]["narrative"] == seizure_payload()["narrative"]
    assert history[2]["data"]["narrative"] == "edit 2"


def _max_seq(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT max(seq) FROM audit_event")).scalar_one())


def test_edited_event_is_detected(populated: Any, app_client: Any) -> None:
    with tampered(
        _engine(app_client), "UPDATE audit_event SET action = 'view' WHERE seq = 3"
    ) as report:
        assert not report.ok and "event_altered" in _kinds(report)


def test_deleted_event_is_detected(populated: Any, app_client: Any) -> None:
    with tampered(_engine(app_client), "DELETE FROM audit_event WHERE seq = 5") as report:
        assert not report.ok
        assert {"chain_gap", "chain_link"} <= _kinds(report)
        assert "version_unaudited" in _kinds(report)  # the version it covered lost its event


def test_deleted_last_event_is_detected(populated: Any, app_client: Any) -> None:
    engine = _engine(app_client)
    with tampered(
        engine, "DELETE FROM audit_event WHERE seq = :seq", seq=_max_seq(engine)
    ) as report:
        assert not report.ok and "version_unaudited" in _kinds(report)


def test_reordered_events_are_detected(populated: Any, app_client: Any) -> None:
    swap = [
        "UPDATE audit_event SET seq = -1 WHERE seq = 4",
        "UPDATE audit_event SET seq = 4 WHERE seq = 6",
        "UPDATE audit_event SET seq = 6 WHERE seq = -1",
    ]
    with tampered(_engine(app_client), *swap) as report:
        assert not report.ok and {"chain_link", "event_altered"} <= _kinds(report)


def test_inserted_event_is_detected(populated: Any, app_client: Any) -> None:
    engine = _engine(app_client)
    top = _max_seq(engine)
    with engine.connect() as conn:
        last = conn.execute(
            text("SELECT hash, entity_id FROM audit_event WHERE seq = :s"), {"s": top}
        ).one()
    forged = (
        "INSERT INTO audit_event (seq, at, entity_type, entity_id, action, version, "
        "after_digest, prev_hash, hash) "
        "VALUES (:seq, :at, 'seizure', :eid, 'update', 99, :digest, :prev, :hash)"
    )
    with tampered(
        engine,
        forged,
        seq=top + 1,
        at="2026-01-01 00:00:00",
        eid=last[1],
        digest="a" * 64,
        prev=last[0],
        hash="b" * 64,
    ) as report:
        assert not report.ok
        assert {"event_altered", "version_deleted"} <= _kinds(report)


def test_rewritten_chain_is_caught_by_the_signed_checkpoint(
    populated: Any, app_client: Any
) -> None:
    """An attacker who edits an event and recomputes every later hash still fails the checkpoint."""
    engine = _engine(app_client)
    with engine.connect() as conn:
        trans = conn.begin()
        try:
            conn.execute(text("UPDATE audit_event SET action = 'view' WHERE seq = 2"))
            with Session(bind=conn) as session:
                from service.models import AuditEvent

                events = session.exec(select(AuditEvent).order_by(AuditEvent.seq)).all()  # type: ignore[arg-type]
                prev = audit.GENESIS
                for event in events:
                    event.prev_hash = (
                        "x" * 64
                    )  # break uniqueness temporarily is not needed: recompute
                    event.prev_hash = prev
                    event.hash = audit.event_hash(event)
                    prev = event.hash
                session.flush()
                report = audit.verify(session)
            kinds = _kinds(report)
            assert (
                "event_altered" not in kinds and "chain_link" not in kinds
            )  # the chain itself is consistent
            assert "checkpoint_mismatch" in kinds and not report.ok
        finally:
            trans.rollback()


def test_forged_checkpoint_signature_is_detected(populated: Any, app_client: Any) -> None:
    stmt = "UPDATE audit_checkpoint SET signature = :sig"
    with tampered(_engine(app_client), stmt, sig="00" * 64) as report:
        assert "checkpoint_signature" in _kinds(report)


def test_edited_version_is_detected(populated: Any, app_client: Any) -> None:
    stmt = (
        "UPDATE record_version SET data = replace(data, 'edit 1', 'edit X') WHERE entity_id = :eid"
    )
    with tampered(
        _engine(app_client), stmt, eid=_uuid_param(app_client, populated["seizure"]["id"])
    ) as report:
        assert "version_altered" in _kinds(report)


def test_edited_version_with_fixed_digest_is_detected(populated: Any, app_client: Any) -> None:
    """Recomputing the version's own digest does not help: its audit event still disagrees."""
    engine = _engine(app_client)
    eid = _uuid_param(app_client, populated["seizure"]["id"])
    with engine.connect() as conn:
        data = conn.execute(
            text("SELECT data FROM record_version WHERE entity_id = :e AND version = 2"), {"e": eid}
        ).scalar_one()
    forged = data.replace("edit 1", "edit X")
    stmt = "UPDATE record_version SET data = :d, digest = :g WHERE entity_id = :e AND version = 2"
    with tampered(engine, stmt, d=forged, g=audit.sha256_hex(forged), e=eid) as report:
        assert "version_unaudited" in _kinds(report)


def test_deleted_version_is_detected(populated: Any, app_client: Any) -> None:
    stmt = "DELETE FROM record_version WHERE entity_id = :e AND version = 2"
    with tampered(
        _engine(app_client), stmt, e=_uuid_param(app_client, populated["seizure"]["id"])
    ) as report:
        assert {"version_missing", "version_deleted"} <= _kinds(report)


def test_inserted_version_is_detected(populated: Any, app_client: Any) -> None:
    engine = _engine(app_client)
    eid = _uuid_param(app_client, populated["seizure"]["id"])
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT data, agency_id FROM record_version WHERE entity_id = :e AND version = 3"),
            {"e": eid},
        ).one()
    forged = row[0].replace('"version":3', '"version":4')
    stmt = (
        "INSERT INTO record_version (entity_type, entity_id, agency_id, version, data, digest, at) "
        "VALUES ('seizure', :e, :a, 4, :d, :g, :at)"
    )
    with tampered(
        engine,
        stmt,
        e=eid,
        a=row[1],
        d=forged,
        g=audit.sha256_hex(forged),
        at="2026-01-01 00:00:00",
    ) as report:
        assert {"version_unaudited", "row_missing"} <= _kinds(report)


def test_reordered_versions_are_detected(populated: Any, app_client: Any) -> None:
    eid = _uuid_param(app_client, populated["seizure"]["id"])
    swap = [
        "UPDATE record_version SET version = -1 WHERE entity_id = :e AND version = 1",
        "UPDATE record_version SET version = 1 WHERE entity_id = :e AND version = 2",
        "UPDATE record_version SET version = 2 WHERE entity_id = :e AND version = -1",
    ]
    with tampered(_engine(app_client), *swap, e=eid) as report:
        assert "version_altered" in _kinds(report)


def test_direct_row_edit_delete_and_insert_are_detected(populated: Any, app_client: Any) -> None:
    engine = _engine(app_client)
    eid = _uuid_param(app_client, populated["seizure"]["id"])
    item = _uuid_param(app_client, populated["item"]["id"])
    with tampered(
        engine, "UPDATE seizure SET narrative = 'nothing found' WHERE id = :e", e=eid
    ) as report:
        assert "row_altered" in _kinds(report)
    with tampered(engine, "UPDATE item SET net_mass = 5 WHERE id = :e", e=item) as report:
        assert "row_altered" in _kinds(report)
    with tampered(engine, "DELETE FROM custody_event WHERE item_id = :e", e=item) as report:
        assert "row_missing" in _kinds(report)
    with tampered(engine, "UPDATE blob SET data = :d", d=b"forged") as report:
        assert report.ok  # no attachments in this module: nothing to forge
    insert = (
        "INSERT INTO custody_event "
        "(id, item_id, agency_id, kind, occurred_at, version, created_at) "
        "SELECT :new, id, agency_id, 'destroyed', created_at, 1, created_at FROM item WHERE id = :e"
    )
    new_id = _uuid_param(app_client, "00000000-0000-4000-8000-000000000001")
    with tampered(engine, insert, new=new_id, e=item) as report:
        assert "row_unversioned" in _kinds(report)


def _uuid_param(app_client: Any, value: str) -> Any:
    """UUIDs as each database stores them (SQLite: 32 hex digits)."""
    import uuid

    parsed = uuid.UUID(value)
    return parsed.hex if _engine(app_client).dialect.name == "sqlite" else parsed


def test_verify_needs_an_auditor_role(populated: Any, as_user: Any, as_device: Any) -> None:
    assert as_user("A", "officer").get("/audit/verify").status_code == 403
    assert as_device("A").get("/audit/verify").status_code == 401


def test_checkpoints_are_signed_periodically(fresh_settings: Any) -> None:
    from service import crud
    from service.audit import AuditSettings, CheckpointSigner
    from service.core.db import make_engine, migrate
    from service.models import AgencyCreate, AgencyKind, AuditCheckpoint
    from service.principal import SYSTEM

    engine = make_engine(fresh_settings.sqlalchemy_url)
    try:
        migrate(engine)
        signer = CheckpointSigner.load_or_create(fresh_settings.signing_key_path)
        with Session(engine) as session:
            audit.bind(session, AuditSettings(signer=signer, checkpoint_every=3))
            for n in range(7):
                agency_in = AgencyCreate(name=f"agency {n}", country="PE", kind=AgencyKind.POLICE)
                crud.create_agency(session=session, actor=SYSTEM, agency_in=agency_in)
            session.commit()
            assert audit.pending_count(session) == 7
            assert audit.chain_pending(session) == 7
            session.commit()
            seqs = [
                c.seq for c in session.exec(select(AuditCheckpoint).order_by(AuditCheckpoint.seq))
            ]
            assert seqs == [3, 6]
            report = audit.verify(session, trusted_public_keys=[signer.public_key_hex])
            assert report.ok and report.checkpoints_checked == 2
            other = Ed25519PrivateKey.generate().public_key().public_bytes_raw().hex()
            report = audit.verify(session, trusted_public_keys=[other])
            assert {p.kind for p in report.problems} == {"checkpoint_untrusted"}
    finally:
        engine.dispose()


def test_bad_checkpoint_key_file_is_a_clear_error(tmp_path: Path) -> None:
    from service.audit import CheckpointSigner
    from service.errors import AuditChainError

    garbage = tmp_path / "key.pem"
    garbage.write_text("not a key")
    with pytest.raises(AuditChainError, match=r"key\.pem"):
        CheckpointSigner.load_or_create(garbage)
    rsa_free = tmp_path / "ec.pem"
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    rsa_free.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(AuditChainError, match="not an Ed25519"):
        CheckpointSigner.load_or_create(rsa_free)


def test_pending_events_are_linked_by_the_sweeper(fresh_settings: Any) -> None:
    """A crash between a commit and its linking leaves pending events; the sweeper links them."""
    from service import crud
    from service.api.deps import AppState
    from service.audit import CheckpointSigner
    from service.core.db import make_engine, migrate
    from service.core.security import password_hasher
    from service.main import AuditSweeper
    from service.models import SeizureCreate
    from service.principal import Principal
    from service.testing import seed_world

    engine = make_engine(fresh_settings.sqlalchemy_url)
    try:
        migrate(engine)
        world = seed_world(fresh_settings)
        actor = Principal(agency_id=world.agencies["A"], role="officer")
        with Session(engine) as session:
            seizure_in = SeizureCreate.model_validate(seizure_payload())
            crud.create_seizure(session=session, actor=actor, seizure_in=seizure_in)
            session.commit()  # committed, not linked: as if the process died here
            report = audit.verify(session)
            assert report.ok and report.events_pending == 1  # written with the change
        state = AppState(
            settings=fresh_settings,
            engine=engine,
            jwt_secret="x",
            hasher=password_hasher(time_cost=1, memory_kib=8),
            signer=CheckpointSigner.load_or_create(fresh_settings.signing_key_path),
        )
        assert AuditSweeper(state).sweep() == 1
        with Session(engine) as session:
            report = audit.verify(session)
            assert report.ok and report.events_pending == 0
            assert report.events_checked == report.versions_checked
    finally:
        engine.dispose()
