"""Two service instances, each with its own database and agencies, exchange packages both ways.

Instance ONE's agency A and instance TWO's agency A register each other as partners and
send each other what they share; the B agencies are other local agencies on each side.
Runs on SQLite and, when configured, PostgreSQL (each instance its own schema).
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlmodel import Session, col

from service import audit
from service.core.config import Settings
from service.exchange.models import ExchangePackage, ExchangeProvenance
from service.main import create_app
from service.models import (
    AuditEvent,
    AuditPending,
    CustodyEvent,
    FieldTest,
    Item,
    LabResult,
    RecordVersion,
    Seizure,
)
from service.testing import (
    World,
    fast_settings,
    field_test_payload,
    isolated_database,
    seed_world,
    seizure_payload,
)
from tests.service.conftest import Api, login


@dataclass
class Instance:
    name: str
    settings: Settings
    client: TestClient
    world: World
    _apis: dict[tuple[str, str], Api] = field(default_factory=dict)

    def api(self, agency: str, role: str) -> Api:
        if (agency, role) not in self._apis:
            self._apis[(agency, role)] = login(
                self.client, self.world.users[agency][role], self.world.password
            )
        return self._apis[(agency, role)]

    def agency(self, label: str) -> uuid.UUID:
        return self.world.agencies[label]

    def session(self) -> Session:
        return Session(self.client.app.state.fieldscan.engine)  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def instances(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Instance, Instance]]:
    made: list[Instance] = []
    contexts = []
    try:
        for name in ("one", "two"):
            tmp = tmp_path_factory.mktemp(f"exchange-{name}-{backend}")
            ctx = isolated_database(backend, tmp)
            url = ctx.__enter__()
            contexts.append(ctx)
            settings = fast_settings(data_dir=tmp, database_url=url)
            client = TestClient(create_app(settings))
            client.__enter__()
            made.append(Instance(name, settings, client, seed_world(settings, tag=name)))
        yield made[0], made[1]
    finally:
        for inst in made:
            inst.client.__exit__(None, None, None)
            inst.client.app.state.fieldscan.engine.dispose()  # type: ignore[attr-defined]
        for ctx in reversed(contexts):
            ctx.__exit__(None, None, None)


def _register(home: Instance, away: Instance) -> None:
    """``away``'s agency A trusts ``home``'s agency A (keys as ``home`` publishes them)."""
    _register_for(home, away, "A")


def _register_for(home: Instance, away: Instance, local: str) -> None:
    keys = home.api("A", "officer").get("/exchange/keys").json()
    body = {k: keys[k] for k in ("agency_id", "name", "country", "kind")}
    body.update(signing_key=keys["signing_key"], encryption_key=keys["encryption_key"])
    r = away.api(local, "admin").post("/exchange/partners", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["signing_key_fingerprint"] == keys["signing_key_fingerprint"]


def _full_seizure(inst: Instance, *, seed: int, **overrides: Any) -> dict[str, str]:
    officer = inst.api("A", "officer")
    r = officer.post("/seizures", json=seizure_payload(**overrides))
    assert r.status_code == 201, r.text
    seizure = r.json()
    item = officer.post(
        f"/seizures/{seizure['id']}/items",
        json={
            "description": "brick",
            "net_mass": 1000,
            "mass_unit": "g",
            "substance": "cocaine HCl",
        },
    ).json()
    test = officer.post(
        f"/items/{item['id']}/field-tests", json=field_test_payload(512, seed=seed)
    ).json()
    custody = officer.post(
        f"/items/{item['id']}/custody-events",
        json={"kind": "sealed", "occurred_at": "2026-03-14T09:00:00Z", "seal_number": f"S-{seed}"},
    ).json()
    lab = (
        inst.api("A", "analyst")
        .post(
            f"/items/{item['id']}/lab-results",
            json={
                "method": "gc_ms",
                "substance": "cocaine HCl",
                "purity_percent": 81.5,
                "net_mass": 998.5,
                "mass_unit": "g",
                "analysed_at": "2026-03-20T00:00:00Z",
            },
        )
        .json()
    )
    return {
        "seizure": seizure["id"],
        "item": item["id"],
        "field_test": test["id"],
        "custody_event": custody["id"],
        "lab_result": lab["id"],
    }


@pytest.fixture(scope="module")
def setup(instances: tuple[Instance, Instance]) -> dict[str, Any]:
    one, two = instances
    _register(one, two)
    _register(two, one)
    partner_two = str(two.agency("A"))
    recs = {
        "all": _full_seizure(one, seed=1, sharing="all"),
        "partner": _full_seizure(
            one, seed=2, sharing="partners", shared_with=[partner_two], narrative="for TWO only"
        ),
        "own": _full_seizure(one, seed=3, narrative="never leaves"),
        "other": _full_seizure(one, seed=4, sharing="partners", shared_with=[str(one.agency("B"))]),
        "back": _full_seizure(two, seed=5, sharing="all", country="CO", air_waybill="729-555"),
    }
    return {"recs": recs}


def _export(
    inst: Instance, to: Instance, *, encrypt: bool = True, role: str = "investigator"
) -> Any:
    return inst.api("A", role).post(
        "/exchange/exports", json={"partner_agency_id": str(to.agency("A")), "encrypt": encrypt}
    )


def _import(inst: Instance, data: bytes, *, agency: str = "A", role: str = "investigator") -> Any:
    return inst.api(agency, role).post(
        "/exchange/imports", content=data, headers={"Content-Type": "application/json"}
    )


def _footprint(inst: Instance) -> tuple[int, ...]:
    """Row counts that any write changes (audit events counted linked or not yet linked)."""
    from service.linking import worker

    with inst.session() as s:
        worker.drain(s)  # links of earlier writes are made after their commit: settle them

        def count(model: Any) -> int:
            return int(s.execute(select(func.count()).select_from(model)).scalar_one())

        records = (Seizure, Item, FieldTest, CustodyEvent, LabResult, RecordVersion)
        return (
            *(count(model) for model in records),
            # One statement (one snapshot): the sweeper moves pending events into the chain.
            int(
                s.execute(
                    select(
                        select(func.count()).select_from(AuditEvent).scalar_subquery()
                        + select(func.count()).select_from(AuditPending).scalar_subquery()
                    )
                ).scalar_one()
            ),
            count(ExchangePackage),
            count(ExchangeProvenance),
        )


def _audit_ok(inst: Instance) -> None:
    with inst.session() as s:
        audit.chain_pending(s, wait=True)
        s.commit()
        report = audit.verify(s)
    assert report.ok, report.problems


@pytest.fixture(scope="module")
def first_exchange(instances: tuple[Instance, Instance], setup: dict[str, Any]) -> dict[str, Any]:
    one, two = instances
    out: dict[str, Any] = {}
    for name, src, dst in (("one_to_two", one, two), ("two_to_one", two, one)):
        r = _export(src, dst)
        assert r.status_code == 200, r.text
        report = _import(dst, r.content)
        assert report.status_code == 200, report.text
        out[name] = {"package": r.content, "report": report.json()}
    return out


def test_each_side_imports_what_the_other_shares(
    instances: tuple[Instance, Instance], setup: dict[str, Any], first_exchange: dict[str, Any]
) -> None:
    one, two = instances
    recs = setup["recs"]
    report = first_exchange["one_to_two"]["report"]
    assert report["encrypted"] is True and report["first_receipt"] is True
    assert report["issuer_agency_id"] == str(one.agency("A"))
    # Seizures shared with everyone and with TWO by name, with all their records.
    assert report["imported"] == 10 and report["rejected"] == 0
    got = {(r["type"], r["id"]) for r in report["records"]}
    want = {(t, recs[k][t]) for k in ("all", "partner") for t in recs[k]}
    assert got == want
    back = first_exchange["two_to_one"]["report"]
    assert back["imported"] == 5
    assert {r["id"] for r in back["records"]} == set(recs["back"].values())
    with two.session() as s:
        seizure = s.get(Seizure, uuid.UUID(recs["all"]["seizure"]))
        assert seizure is not None
        assert seizure.agency_id == one.agency("A")  # owned by the issuer, same id everywhere
        assert seizure.version == 1
    with one.session() as s:
        assert s.get(Seizure, uuid.UUID(recs["back"]["seizure"])).agency_id == two.agency("A")  # type: ignore[union-attr]


def test_raw_spectra_arrive_byte_identical(
    instances: tuple[Instance, Instance], setup: dict[str, Any], first_exchange: dict[str, Any]
) -> None:
    one, two = instances
    for src, dst, key in ((one, two, "all"), (one, two, "partner"), (two, one, "back")):
        test_id = uuid.UUID(setup["recs"][key]["field_test"])
        with src.session() as a, dst.session() as b:
            sent, got = a.get(FieldTest, test_id), b.get(FieldTest, test_id)
            assert sent is not None and got is not None
            assert bytes(got.axis_f64le) == bytes(sent.axis_f64le)
            assert bytes(got.intensities_f64le) == bytes(sent.intensities_f64le)
            assert got.spectrum_sha256 == sent.spectrum_sha256
            assert got.identification_json == sent.identification_json
            assert got.operator_id is None and got.operator_name == sent.operator_name
        with dst.session() as b:
            lab = b.scalars(select(LabResult).where(col(LabResult.item_id) == got.item_id)).one()
            assert lab.purity_percent == 81.5 and lab.analysed_at.isoformat().startswith(
                "2026-03-20"
            )


def test_records_not_shared_with_the_partner_never_leave(
    instances: tuple[Instance, Instance], setup: dict[str, Any], first_exchange: dict[str, Any]
) -> None:
    one, two = instances
    r = _export(one, two, encrypt=False)
    assert r.status_code == 200, r.text
    package = json.loads(r.content)
    manifest = json.loads(base64.b64decode(package["manifest"]))
    sent = {e["id"] for e in manifest["records"]}
    for key in ("own", "other"):
        assert not set(setup["recs"][key].values()) & sent, key
        with two.session() as s:
            assert s.get(Seizure, uuid.UUID(setup["recs"][key]["seizure"])) is None
    # Imported records are not re-exported by the agency that received them.
    back = _export(one, two, encrypt=False)
    assert setup["recs"]["back"]["seizure"] not in back.text


def test_provenance_is_recorded_and_shown(
    instances: tuple[Instance, Instance], setup: dict[str, Any], first_exchange: dict[str, Any]
) -> None:
    one, two = instances
    report = first_exchange["one_to_two"]["report"]
    seizure_id = setup["recs"]["partner"]["seizure"]
    r = two.api("A", "officer").get(f"/exchange/seizures/{seizure_id}/provenance")
    assert r.status_code == 200, r.text
    rows = r.json()
    assert {row["entity_type"] for row in rows} == {
        "seizure", "item", "field_test", "custody_event", "lab_result"
    }  # fmt: skip
    for row in rows:
        assert row["issuer_agency_id"] == str(one.agency("A"))
        assert row["issuer_name"] == one.api("A", "officer").get("/exchange/keys").json()["name"]
        assert row["recipient_agency_id"] == str(two.agency("A"))
        assert row["package_id"] == report["package_id"]
        assert row["manifest_sha256"] == report["manifest_sha256"]
        assert row["key_fingerprint"] == report["key_fingerprint"]
        assert row["outcome"] == "imported" and row["local_version"] == 1
    # Shared with TWO's agency A by name: TWO's agency B may not see it, nor its provenance.
    assert (
        two.api("B", "officer").get(f"/exchange/seizures/{seizure_id}/provenance").status_code
        == 404
    )
    shared_all = setup["recs"]["all"]["seizure"]
    assert (
        two.api("B", "officer").get(f"/exchange/seizures/{shared_all}/provenance").status_code
        == 200
    )
    # A seizure recorded locally has no provenance.
    own = setup["recs"]["own"]["seizure"]
    assert one.api("A", "officer").get(f"/exchange/seizures/{own}/provenance").json() == []
    packages = two.api("A", "officer").get("/exchange/packages").json()
    assert {p["direction"] for p in packages} == {"import", "export"}


def test_reimport_is_a_no_op(
    instances: tuple[Instance, Instance], first_exchange: dict[str, Any]
) -> None:
    one, two = instances
    for dst, name in ((two, "one_to_two"), (one, "two_to_one")):
        before = _footprint(dst)
        r = _import(dst, first_exchange[name]["package"])
        assert r.status_code == 200, r.text
        report = r.json()
        assert report["first_receipt"] is False
        assert report["skipped"] == len(report["records"]) > 0
        assert report["imported"] == report["updated"] == report["rejected"] == 0
        for rec in report["records"]:
            assert rec["reason"] == "already_received", rec
            assert rec["params"] == {"version": rec["remote_version"]}
            assert rec["detail"] == f"version {rec['remote_version']} already received"
        assert _footprint(dst) == before
    # A fresh package of the same records is recorded as received, its records skipped.
    fresh = _export(one, two)
    before = _footprint(two)
    report = _import(two, fresh.content).json()
    assert report["first_receipt"] is True and report["skipped"] == len(report["records"])
    after = _footprint(two)
    assert after[:5] == before[:5]  # no record touched
    assert after[-2:] == (before[-2] + 1, before[-1])  # one receipt, no provenance


def test_updated_record_reexported_makes_a_new_version(
    instances: tuple[Instance, Instance], setup: dict[str, Any], first_exchange: dict[str, Any]
) -> None:
    one, two = instances
    seizure_id = setup["recs"]["all"]["seizure"]
    edited_at = datetime.now(UTC).isoformat()
    r = one.api("A", "officer").patch(
        f"/seizures/{seizure_id}",
        json={"narrative": "second courier identified", "reason": "follow-up"},
        headers={"If-Match": '"1"'},
    )
    assert r.status_code == 200, r.text
    report = _import(two, _export(one, two).content).json()
    by_id = {r["id"]: r for r in report["records"]}
    assert by_id[seizure_id]["outcome"] == "updated"
    assert by_id[seizure_id]["remote_version"] == 2 and by_id[seizure_id]["local_version"] == 2
    assert report["updated"] == 1 and report["imported"] == 0
    with two.session() as s:
        seizure = s.get(Seizure, uuid.UUID(seizure_id))
        assert seizure is not None and seizure.version == 2
        assert seizure.narrative == "second courier identified"
        versions = s.scalars(
            select(col(RecordVersion.reason)).where(col(RecordVersion.entity_id) == seizure.id)
        ).all()
        assert len(versions) == 2 and "their version 2" in (versions[-1] or "")
    prov = two.api("A", "officer").get(f"/exchange/seizures/{seizure_id}/provenance").json()
    assert [p["remote_version"] for p in prov if p["entity_type"] == "seizure"] == [1, 2]
    # Only what changed since a date: the edited seizure, whole; nothing after the edit.
    since = one.api("A", "investigator").post(
        "/exchange/exports",
        json={"partner_agency_id": str(two.agency("A")), "encrypt": False, "since": edited_at},
    )
    assert since.status_code == 200, since.text
    manifest = json.loads(base64.b64decode(json.loads(since.content)["manifest"]))
    assert {e["id"] for e in manifest["records"]} == set(setup["recs"]["all"].values())
    later = one.api("A", "investigator").post(
        "/exchange/exports",
        json={"partner_agency_id": str(two.agency("A")), "since": "2100-01-01T00:00:00Z"},
    )
    assert later.headers["X-Record-Count"] == "0"
    assert _import(two, later.content).json()["records"] == []
    # The older package again: its seizure version is older, so skipped.
    old = _import(two, first_exchange["one_to_two"]["package"]).json()
    skipped = {r["id"]: r for r in old["records"]}[seizure_id]
    assert skipped["outcome"] == "skipped" and skipped["reason"] == "older_version"
    assert skipped["params"] == {"version": 1, "received_version": 2}
    # Imported and updated records carry no reason.
    assert by_id[seizure_id]["reason"] is None and by_id[seizure_id]["params"] == {}


def _tampered(package: bytes) -> bytes:
    doc = json.loads(package)
    doc["records"][0]["narrative"] = "planted"
    from service.audit import canonical_json

    return canonical_json(doc).encode()


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("record", "tampered_record"),
        ("signature", "bad_signature"),
        ("encrypted", "undecryptable"),
        ("truncated", "malformed"),
        ("wrong_recipient", "wrong_recipient"),
        ("unknown_signer", "unknown_signer"),
    ],
)
def test_refused_package_writes_nothing(
    instances: tuple[Instance, Instance], setup: dict[str, Any], case: str, reason: str
) -> None:
    one, two = instances
    agency = "A"
    plain = _export(one, two, encrypt=False).content
    if case == "record":
        data = _tampered(plain)
    elif case == "signature":
        doc = json.loads(plain)
        doc["signature"] = ("0" if doc["signature"][0] != "0" else "1") + doc["signature"][1:]
        from service.audit import canonical_json

        data = canonical_json(doc).encode()
    elif case == "encrypted":
        enc = json.loads(_export(one, two).content)
        raw = bytearray(base64.b64decode(enc["ciphertext"]))
        raw[len(raw) // 2] ^= 0x01
        enc["ciphertext"] = base64.b64encode(bytes(raw)).decode()
        from service.audit import canonical_json

        data = canonical_json(enc).encode()
    elif case == "truncated":
        data = _export(one, two).content[:-100]
    elif case == "wrong_recipient":
        # TWO's agency B trusts ONE's agency A too, but the package is addressed to TWO's A.
        _register_for(one, two, "B")
        data, agency = plain, "B"
    else:  # TWO's agency A trusts ONE's A, not ONE's B: B signs with its own key
        r = one.api("B", "admin").post(
            "/exchange/partners",
            json={
                **{
                    k: v
                    for k, v in two.api("A", "officer").get("/exchange/keys").json().items()
                    if k
                    in ("agency_id", "name", "country", "kind", "signing_key", "encryption_key")
                },
            },
        )
        assert r.status_code == 201, r.text
        data = (
            one.api("B", "investigator")
            .post("/exchange/exports", json={"partner_agency_id": str(two.agency("A"))})
            .content
        )
    before = _footprint(two)
    r = _import(two, data, agency=agency)
    assert r.status_code == 422, r.text
    assert r.json()["reason"] == reason
    assert r.json()["detail"]
    params = r.json()["params"]
    if case == "unknown_signer":
        assert params == {"issuer_id": str(one.agency("B")), "revoked": False}
    elif case == "wrong_recipient":
        assert params == {"recipients": [str(two.agency("A"))]}
    elif case == "signature":
        keys = one.api("A", "officer").get("/exchange/keys").json()
        assert params["issuer_id"] == str(one.agency("A"))
        assert params["signed_key_fingerprint"] == keys["signing_key_fingerprint"]
        assert params["registered_key_fingerprint"] == keys["signing_key_fingerprint"]
    else:
        assert params == {}
    assert _footprint(two) == before


def test_collision_with_a_local_record_of_another_agency_is_rejected(
    instances: tuple[Instance, Instance], setup: dict[str, Any], first_exchange: dict[str, Any]
) -> None:
    one, two = instances
    clash = str(uuid.uuid4())
    r = two.api("B", "officer").post("/seizures", json=seizure_payload(id=clash))
    assert r.status_code == 201, r.text
    made = _full_seizure(one, seed=9, id=clash, sharing="all")
    report = _import(two, _export(one, two).content).json()
    by_id = {r["id"]: r for r in report["records"]}
    assert by_id[clash]["outcome"] == "rejected"
    assert by_id[clash]["reason"] == "uuid_collision"
    assert by_id[clash]["params"] == {}  # the other agency here is not named
    assert "another agency" in by_id[clash]["detail"]
    # Its records follow it down: the item through the seizure, the rest through the item.
    parents = {"item": ("seizure", clash)}
    parents.update(
        dict.fromkeys(("field_test", "custody_event", "lab_result"), ("item", made["item"]))
    )
    for kind, (parent_type, parent_id) in parents.items():
        rec = by_id[made[kind]]
        assert rec["outcome"] == "rejected" and rec["reason"] == "parent_rejected", kind
        assert rec["params"] == {"parent_type": parent_type, "parent_id": parent_id}, kind
    with two.session() as s:
        assert s.get(Seizure, uuid.UUID(clash)).agency_id == two.agency("B")  # type: ignore[union-attr]
        assert s.get(Item, uuid.UUID(made["item"])) is None


def test_roles_and_agency_isolation(
    instances: tuple[Instance, Instance], setup: dict[str, Any], first_exchange: dict[str, Any]
) -> None:
    one, two = instances
    partner = {"partner_agency_id": str(two.agency("A"))}
    for role in ("officer", "analyst", "admin"):
        assert one.api("A", role).post("/exchange/exports", json=partner).status_code == 403, role
    package = _export(one, two).content
    for role in ("officer", "analyst"):
        assert _import(two, package, role=role).status_code == 403, role
    keys = one.api("A", "officer").get("/exchange/keys").json()
    body = {
        k: keys[k]
        for k in ("agency_id", "name", "country", "kind", "signing_key", "encryption_key")
    }
    for role in ("officer", "investigator", "supervisor"):
        assert two.api("A", role).post("/exchange/partners", json=body).status_code == 403, role
    # Registering the same keys again changes nothing; other keys for the same partner conflict.
    assert two.api("A", "admin").post("/exchange/partners", json=body).status_code == 201
    other = dict(body, signing_key="11" * 32)
    assert two.api("A", "admin").post("/exchange/partners", json=other).status_code == 409
    bad = dict(body, signing_key="zz" * 32)
    assert two.api("A", "admin").post("/exchange/partners", json=bad).status_code == 422
    # A local agency cannot be registered as a remote partner.
    own_b = two.api("B", "officer").get("/exchange/keys").json()
    local = {k: own_b[k] for k in body}
    assert two.api("A", "admin").post("/exchange/partners", json=local).status_code == 409
    # Partners are per agency: TWO's B neither sees A's partners nor may export to them.
    zulu = {
        "agency_id": str(uuid.uuid4()),
        "name": "Zulu police",
        "country": "EC",
        "kind": "police",
        "signing_key": Ed25519PrivateKey.generate().public_key().public_bytes_raw().hex(),
        "encryption_key": X25519PrivateKey.generate().public_key().public_bytes_raw().hex(),
    }
    assert two.api("A", "admin").post("/exchange/partners", json=zulu).status_code == 201
    a_partners = {
        p["partner_agency_id"] for p in two.api("A", "admin").get("/exchange/partners").json()
    }
    b_partners = {
        p["partner_agency_id"] for p in two.api("B", "admin").get("/exchange/partners").json()
    }
    assert zulu["agency_id"] in a_partners and zulu["agency_id"] not in b_partners
    r = two.api("B", "investigator").post(
        "/exchange/exports", json={"partner_agency_id": zulu["agency_id"]}
    )
    assert r.status_code == 404, r.text
    # Packages of one agency are not listed to another.
    assert all(
        p["agency_id"] == str(two.agency("B"))
        for p in two.api("B", "officer").get("/exchange/packages").json()
    )
    # Keys and packages need a person, not a field station's key.
    station = Api(two.client, {"X-Device-Key": two.world.device_keys["A"]})
    assert station.get("/exchange/keys").status_code == 401


def test_imported_seizures_are_correlated_on_arrival(
    instances: tuple[Instance, Instance], setup: dict[str, Any], first_exchange: dict[str, Any]
) -> None:
    from service.linking import worker
    from service.linking.models import LinkKey

    _, two = instances
    seizure_id = uuid.UUID(setup["recs"]["all"]["seizure"])
    with two.session() as s:
        worker.drain(s)  # correlation runs after the commit: wait for it, deterministically
        keys = s.scalars(
            select(col(LinkKey.kind)).where(col(LinkKey.seizure_id) == seizure_id)
        ).all()
    assert keys  # indexed by the link engine like a seizure recorded here


def test_imported_records_are_read_through_their_sharing_level(
    instances: tuple[Instance, Instance], setup: dict[str, Any], first_exchange: dict[str, Any]
) -> None:
    one, two = instances
    recs = setup["recs"]
    a, b = two.api("A", "officer"), two.api("B", "officer")
    # Named for TWO's agency A only: A reads it all, B (another agency here) nothing.
    partner = recs["partner"]
    r = a.get(f"/seizures/{partner['seizure']}")
    assert r.status_code == 200, r.text
    assert r.json()["agency_id"] == str(one.agency("A"))
    assert r.json()["shared_with"] == [str(two.agency("A"))]
    test = a.get(f"/field-tests/{partner['field_test']}")
    assert test.status_code == 200, test.text
    sent = one.api("A", "officer").get(f"/field-tests/{partner['field_test']}").json()
    assert test.json()["spectrum"] == sent["spectrum"]  # the numbers, exactly
    assert b.get(f"/seizures/{partner['seizure']}").status_code == 404
    # Shared with all: every agency here reads it.
    assert b.get(f"/seizures/{recs['all']['seizure']}").status_code == 200
    # Reading is not writing: only the owner (on its own instance) changes its records.
    r = a.patch(
        f"/seizures/{partner['seizure']}",
        json={"narrative": "overwritten", "reason": "test"},
        headers={"If-Match": '"1"'},
    )
    assert r.status_code in (403, 404), r.text


def _local_seizure_of(inst: Instance, agency_id: uuid.UUID) -> Seizure:
    """A seizure stored on ``inst`` for ``agency_id`` without an exchange (audited)."""
    from service import crud
    from service.audit import AuditSettings, CheckpointSigner
    from service.models import SeizureCreate
    from service.principal import Principal

    signer = CheckpointSigner.load_or_create(inst.settings.signing_key_path)
    with Session(inst.client.app.state.fieldscan.engine, expire_on_commit=False) as s:  # type: ignore[attr-defined]
        audit.bind(s, AuditSettings(signer, inst.settings.checkpoint_every))
        seizure = crud.create_seizure(
            session=s,
            actor=Principal(agency_id=agency_id, role="officer"),
            seizure_in=SeizureCreate.model_validate(seizure_payload()),
        )
        s.commit()
        return seizure


def test_signed_but_unacceptable_records_are_rejected_one_by_one(
    instances: tuple[Instance, Instance], setup: dict[str, Any], first_exchange: dict[str, Any]
) -> None:
    """A partner's bug (not an attacker: the package is validly signed) stores nothing odd.

    Each rejection says why with a stable code and its parameters (and English text).
    """
    from service.exchange.keys import AgencyKeys
    from service.exchange.package import (
        ExchangeRecord,
        Issuer,
        build_package,
        encrypt_package,
        encryption_public_key,
    )
    from service.exchange.reasons import REJECT_REASONS
    from service.exchange.records import to_record

    one, two = instances
    keys = AgencyKeys.load_or_create(one.settings.exchange_keys_path, one.agency("A"))
    with one.session() as s:
        seizure = s.get(Seizure, uuid.UUID(setup["recs"]["own"]["seizure"]))
        item = s.get(Item, uuid.UUID(setup["recs"]["own"]["item"]))
        test = s.get(FieldTest, uuid.UUID(setup["recs"]["own"]["field_test"]))
        assert seizure is not None and item is not None and test is not None
        good_seizure = to_record("seizure", seizure).data
        item_data = to_record("item", item).data
        test_data = to_record("field_test", test).data
    # ONE's agency A has a seizure on TWO that it never sent (recorded there directly).
    local = _local_seizure_of(two, one.agency("A"))
    with two.session() as s:
        local_row = s.get(Seizure, local.id)
        assert local_row is not None
        local_data = to_record("seizure", local_row).data
    received_item = setup["recs"]["all"]["item"]  # TWO has it (first exchange)
    bad_country = dict(good_seizure, id=str(uuid.uuid4()), country="Peru")
    not_theirs = dict(good_seizure, id=str(uuid.uuid4()), agency_id=str(two.agency("B")))
    orphan = dict(item_data, id=str(uuid.uuid4()), seizure_id=str(uuid.uuid4()))
    child_of_bad = dict(item_data, id=str(uuid.uuid4()), seizure_id=bad_country["id"])
    wrong_hash = dict(test_data, id=str(uuid.uuid4()), spectrum_sha256="0" * 64)
    extra = dict(good_seizure, id=str(uuid.uuid4()), secret_field=1)
    elsewhere = str(uuid.uuid4())
    mismatch = dict(test_data, id=str(uuid.uuid4()), item_id=received_item, seizure_id=elsewhere)
    cases: dict[str, tuple[str, dict[str, Any], str]] = {
        bad_country["id"]: ("invalid_content", {"field": "country"}, "country"),
        not_theirs["id"]: (
            "not_issuer_owned",
            {"agency_id": str(two.agency("B"))},
            "not to the issuer",
        ),
        extra["id"]: (
            "fields_differ",
            {"missing": [], "unexpected": ["secret_field"]},
            "unexpected ['secret_field']",
        ),
        orphan["id"]: (
            "missing_parent",
            {"parent_type": "seizure", "parent_id": orphan["seizure_id"]},
            "neither in the package nor received before",
        ),
        child_of_bad["id"]: (
            "parent_rejected",
            {"parent_type": "seizure", "parent_id": bad_country["id"]},
            "was rejected",
        ),
        wrong_hash["id"]: ("invalid_content", {"field": "spectrum_sha256"}, "spectrum_sha256"),
        mismatch["id"]: (
            "seizure_mismatch",
            {"seizure_id": elsewhere, "item_seizure_id": setup["recs"]["all"]["seizure"]},
            "differs from its item's seizure",
        ),
        str(local.id): ("not_from_exchange", {}, "did not come by exchange"),
    }
    records = [
        ExchangeRecord("seizure", bad_country),
        ExchangeRecord("seizure", not_theirs),
        ExchangeRecord("seizure", extra),
        ExchangeRecord("seizure", local_data),
        ExchangeRecord("item", orphan),
        ExchangeRecord("item", child_of_bad),
        ExchangeRecord("field_test", wrong_hash),
        ExchangeRecord("field_test", mismatch),
    ]
    agency = one.api("A", "officer").get("/exchange/keys").json()
    partner = two.api("A", "officer").get("/exchange/keys").json()
    built = build_package(
        issuer=Issuer(
            id=one.agency("A"), name=agency["name"], country=agency["country"], kind=agency["kind"]
        ),
        recipients=[two.agency("A")],
        records=records,
        signing_key=keys.signing,
    )
    data = encrypt_package(
        built.data,
        recipient_id=two.agency("A"),
        recipient_key=encryption_public_key(partner["encryption_key"]),
    )
    before = _footprint(two)
    r = _import(two, data)
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["rejected"] == len(records) and report["imported"] == 0
    for outcome in report["records"]:
        code, params, english = cases[outcome["id"]]
        assert (outcome["outcome"], outcome["reason"]) == ("rejected", code), outcome
        assert outcome["params"] == params, outcome
        assert english in outcome["detail"], outcome
    # Every kind of rejection the importer knows but the collision (its own test) is here.
    assert {c for c, _, _ in cases.values()} == {str(c) for c in REJECT_REASONS} - {
        "uuid_collision"
    }
    after = _footprint(two)
    assert after[:5] == before[:5]  # no record stored
    assert after[5] == before[5] + 1  # the audited receipt (what arrived, and its outcome)
    assert after[-2:] == (before[-2] + 1, before[-1])  # no provenance


def test_codes_are_in_the_openapi_schema(instances: tuple[Instance, Instance]) -> None:
    """Clients see every code as an enumeration: record reasons and package refusals."""
    from service.exchange.reasons import PackageRefusal, RecordOutcomeKind, RecordReason

    one, _ = instances
    spec = one.client.get("/api/v1/openapi.json").json()
    schemas = spec["components"]["schemas"]
    assert set(schemas["RecordReason"]["enum"]) == {str(c) for c in RecordReason}
    assert set(schemas["RecordOutcomeKind"]["enum"]) == {str(c) for c in RecordOutcomeKind}
    assert set(schemas["PackageRefusal"]["enum"]) == {str(c) for c in PackageRefusal}
    refused = spec["paths"]["/api/v1/exchange/imports"]["post"]["responses"]["422"]
    assert refused["content"]["application/json"]["schema"]["$ref"].endswith("/ExchangeRefusal")
    assert set(schemas["RecordOutcome"]["properties"]) >= {"reason", "detail", "params"}


def test_partner_keys_rotate_and_a_revoked_partner_is_refused(
    instances: tuple[Instance, Instance], tmp_path: Any
) -> None:
    from service.exchange.keys import AgencyKeys
    from service.exchange.package import Issuer, build_package

    _, two = instances
    yankee = uuid.uuid4()
    old_keys = AgencyKeys.load_or_create(tmp_path / "old", yankee)
    new_keys = AgencyKeys.load_or_create(tmp_path / "new", yankee)
    admin = two.api("A", "admin")
    r = admin.post(
        "/exchange/partners",
        json={
            "agency_id": str(yankee),
            "name": "Yankee customs",
            "country": "MX",
            "kind": "customs",
            "signing_key": old_keys.signing_public_hex,
            "encryption_key": old_keys.encryption_public_hex,
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["active"] is True

    def package(keys: AgencyKeys) -> bytes:
        issuer = Issuer(id=yankee, name="Yankee customs", country="MX", kind="customs")
        return build_package(
            issuer=issuer, recipients=[two.agency("A")], records=[], signing_key=keys.signing
        ).data

    assert _import(two, package(old_keys)).status_code == 200
    path = f"/exchange/partners/{yankee}"
    rotate = {"signing_key": new_keys.signing_public_hex, "reason": "key rotation, phoned"}
    assert admin.patch(path, json=rotate).status_code == 428  # If-Match required
    assert (
        two.api("A", "supervisor").patch(path, json=rotate, headers={"If-Match": '"1"'}).status_code
        == 403
    )
    r = admin.patch(path, json=rotate, headers={"If-Match": '"1"'})
    assert r.status_code == 200, r.text
    assert r.headers["ETag"] == '"2"' and r.json()["signing_key"] == new_keys.signing_public_hex
    assert admin.patch(path, json=rotate, headers={"If-Match": '"1"'}).status_code == 412
    refused = _import(two, package(old_keys))
    assert refused.status_code == 422 and refused.json()["reason"] == "bad_signature"
    assert "registered key is" in refused.json()["detail"]
    assert _import(two, package(new_keys)).status_code == 200

    revoke = {"active": False, "reason": "agreement ended"}
    assert admin.patch(path, json=revoke, headers={"If-Match": '"2"'}).status_code == 200
    refused = _import(two, package(new_keys))
    assert refused.status_code == 422 and refused.json()["reason"] == "unknown_signer"
    assert "revoked" in refused.json()["detail"]
    assert refused.json()["params"] == {"issuer_id": str(yankee), "revoked": True}
    export = two.api("A", "investigator").post(
        "/exchange/exports", json={"partner_agency_id": str(yankee)}
    )
    assert export.status_code == 409 and "revoked" in export.text
    listed = {p["partner_agency_id"]: p for p in admin.get("/exchange/partners").json()}
    assert listed[str(yankee)]["active"] is False and listed[str(yankee)]["version"] == 3
    restore = {"active": True, "reason": "agreement renewed"}
    assert admin.patch(path, json=restore, headers={"If-Match": '"3"'}).status_code == 200
    assert _import(two, package(new_keys)).status_code == 200


def test_audit_verifies_on_both_instances_after_the_exchanges(
    instances: tuple[Instance, Instance], setup: dict[str, Any], first_exchange: dict[str, Any]
) -> None:
    for inst in instances:
        _audit_ok(inst)
