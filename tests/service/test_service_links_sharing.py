"""Links across agencies under sharing, links by highly similar raw spectra, and the durable
correlation queue: over HTTP, and with the engine and worker directly."""

from __future__ import annotations

import itertools
import random
import re
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session

from service import crud
from service.core.config import Settings
from service.core.db import make_engine
from service.linking import worker
from service.linking.models import LinkKey, LinkQueue, SeizureLink
from service.linking.worker import LinkWorker, drain
from service.models import SeizureCreate
from service.principal import Principal
from service.testing import World, field_test_payload, unlinked_seizure_payload

_eras = itertools.count()
_seeds = itertools.count(50_000)


@pytest.fixture
def era() -> datetime:
    return datetime(1800, 1, 1, tzinfo=UTC) + timedelta(days=1000 * next(_eras))


@pytest.fixture(scope="module")
def engine(settings: Settings, world: World) -> Iterator[Engine]:
    engine = make_engine(settings.sqlalchemy_url)
    yield engine
    engine.dispose()


def _tag() -> str:
    return uuid.uuid4().hex[:10].upper()


def bare(at: datetime, **overrides: Any) -> dict[str, Any]:
    """Unlinked unless given, with a narrative no other agency may see."""
    return unlinked_seizure_payload(at, **{"narrative": "confidential narrative", **overrides})


def post_seizure(api: Any, body: dict[str, Any]) -> str:
    r = api.post("/seizures", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def links(api: Any, seizure_id: str) -> list[dict[str, Any]]:
    r = api.get(f"/seizures/{seizure_id}/links")
    assert r.status_code == 200, r.text
    return list(r.json())


def pair(link: dict[str, Any]) -> set[str]:
    return {link["seizure_a_id"], link["seizure_b_id"]}


# --------------------------------------------------------------------------- across agencies


@pytest.mark.parametrize("shared_first", [True, False])
def test_seizure_shared_with_all_links_for_the_agency_that_may_read_both(
    as_user: Any, world: World, era: datetime, shared_first: bool
) -> None:
    """Whichever arrives first: A's own seizure and B's seizure shared with all."""
    awb = f"020-{_tag()}"
    a, b = as_user("A", "investigator"), as_user("B", "investigator")
    shared = bare(era, air_waybill=awb, sharing="all")
    own = bare(era, air_waybill=awb)
    if shared_first:
        b_id = post_seizure(as_user("B", "officer"), shared)
        a_id = post_seizure(as_user("A", "officer"), own)
    else:
        a_id = post_seizure(as_user("A", "officer"), own)
        b_id = post_seizure(as_user("B", "officer"), shared)
    (link,) = links(a, a_id)
    assert pair(link) == {a_id, b_id}
    assert link["agency_id"] == str(world.agencies["A"])
    assert [r["kind"] for r in link["reasons"]] == ["air_waybill"]
    assert links(a, b_id) == [link]  # A reads B's shared seizure and sees the same link
    # B may not read A's seizure: no link for B, and A's seizure stays hidden.
    assert links(b, b_id) == []
    assert b.get(f"/seizures/{a_id}/links").status_code == 404
    assert all(pair(x) != {a_id, b_id} for x in b.get("/links").json()["data"])
    assert b.get(f"/links/{link['id']}").status_code == 404


def test_partners_sharing_links_only_for_the_named_partner(
    as_user: Any, world: World, era: datetime
) -> None:
    person = [{"reference": f"PASSPORT {_tag()}"}]
    a_id = post_seizure(
        as_user("A", "officer"),
        bare(era, persons=person, sharing="partners", shared_with=[str(world.agencies["B"])]),
    )
    b_id = post_seizure(as_user("B", "officer"), bare(era + timedelta(days=2), persons=person))
    (link,) = links(as_user("B", "investigator"), b_id)
    assert pair(link) == {a_id, b_id} and link["agency_id"] == str(world.agencies["B"])
    assert [r["kind"] for r in link["reasons"]] == ["person"]
    # A may not read B's own seizure: A has no link (its alert is tested with the alerts).
    assert links(as_user("A", "investigator"), a_id) == []


def test_shared_both_ways_each_agency_decides_on_its_own_row(
    as_user: Any, world: World, era: datetime
) -> None:
    container = f"MSCU{_tag()}"
    a_id = post_seizure(
        as_user("A", "officer"), bare(era, container_number=container, sharing="all")
    )
    b_id = post_seizure(
        as_user("B", "officer"), bare(era, container_number=container, sharing="all")
    )
    a, b = as_user("A", "investigator"), as_user("B", "investigator")
    (mine,) = links(a, a_id)
    (theirs,) = links(b, b_id)
    assert pair(mine) == pair(theirs) == {a_id, b_id}
    assert mine["id"] != theirs["id"]
    r = a.post(f"/links/{mine['id']}/dismiss", json={"reason": "known legitimate shipper"})
    assert r.status_code == 200 and r.json()["status"] == "dismissed"
    assert links(b, b_id)[0]["status"] == "suggested"  # B's decision is B's
    assert b.post(f"/links/{mine['id']}/accept", json={}).status_code == 404


def test_withdrawn_sharing_hides_the_link_and_recorrelation_withdraws_it(
    as_user: Any, era: datetime
) -> None:
    awb = f"030-{_tag()}"
    officer_b = as_user("B", "officer")
    b_id = post_seizure(officer_b, bare(era, air_waybill=awb, sharing="all"))
    a_id = post_seizure(as_user("A", "officer"), bare(era, air_waybill=awb))
    a = as_user("A", "investigator")
    (link,) = links(a, a_id)
    r = officer_b.patch(
        f"/seizures/{b_id}",
        json={"sharing": "own", "reason": "operation under way"},
        headers={"If-Match": '"1"'},
    )
    assert r.status_code == 200, r.text
    assert links(a, a_id) == []
    assert a.get(f"/links/{link['id']}").status_code == 404
    # Shared again: the same row comes back, suggested again (it was withdrawn meanwhile).
    r = officer_b.patch(
        f"/seizures/{b_id}",
        json={"sharing": "all", "reason": "operation over"},
        headers={"If-Match": '"2"'},
    )
    assert r.status_code == 200, r.text
    (again,) = links(a, a_id)
    assert again["id"] == link["id"] and again["status"] == "suggested"
    history = [v["data"]["status"] for v in a.get(f"/links/{link['id']}/history").json()]
    assert history == ["suggested", "withdrawn", "suggested"]


def test_third_agency_sees_nothing(
    settings: Settings, app_client: Any, as_user: Any, world: World, era: datetime
) -> None:
    """Agencies C and D (another seeded world) read neither seizure of a private pair."""
    from service.testing import seed_world

    from .conftest import login

    other = seed_world(settings)
    c = login(app_client, other.users["A"]["investigator"], other.password)
    awb = f"040-{_tag()}"
    a_id = post_seizure(
        as_user("A", "officer"),
        bare(era, air_waybill=awb, sharing="partners", shared_with=[str(world.agencies["B"])]),
    )
    post_seizure(as_user("B", "officer"), bare(era, air_waybill=awb))
    assert c.get(f"/seizures/{a_id}/links").status_code == 404
    assert c.get("/links").json()["data"] == []
    assert c.get("/alerts").json()["data"] == []


# --------------------------------------------------------------------------- raw spectra


def _test_body(seed: int, main: str) -> dict[str, Any]:
    ident = {
        "verdict": "identified",
        "candidates": [{"name": main, "score": 0.95}],
        "components": [{"name": main, "fraction": 1.0}],
        "library_version": "sha256:test",
    }
    return field_test_payload(256, seed=seed, identification=ident)


def _with_field_test(api: Any, seizure_id: str, body: dict[str, Any]) -> None:
    item = api.post(f"/seizures/{seizure_id}/items", json={"description": "powder"}).json()
    r = api.post(f"/items/{item['id']}/field-tests", json=body)
    assert r.status_code == 201, r.text


def test_highly_similar_raw_spectra_link_once_the_field_test_arrives(
    as_user: Any, era: datetime
) -> None:
    officer = as_user("A", "officer")
    investigator = as_user("A", "investigator")
    seed = next(_seeds)
    first = post_seizure(officer, bare(era))
    _with_field_test(officer, first, _test_body(seed, "ketamine"))
    second = post_seizure(officer, bare(era + timedelta(days=90)))
    assert links(investigator, second) == []  # nothing in common yet
    # The same sample measured again (same spectrum, other substance names): the field
    # test's arrival correlates the seizure again.
    _with_field_test(officer, second, _test_body(seed, "unknown white powder"))
    (link,) = links(investigator, second)
    assert pair(link) == {first, second}
    (reason,) = link["reasons"]
    assert reason["kind"] == "raw_spectrum"
    assert "correlation 1.000" in reason["detail"]
    # An unrelated spectrum (other noise) links to neither.
    third = post_seizure(officer, bare(era + timedelta(days=91)))
    _with_field_test(officer, third, _test_body(next(_seeds), "ketamine"))
    assert links(investigator, third) == []


# --------------------------------------------------------------------------- the queue


def _add(session: Session, world: World, at: datetime, **fields: Any) -> uuid.UUID:
    actor = Principal(agency_id=world.agencies["A"], role="officer")
    seizure = crud.create_seizure(
        session=session, actor=actor, seizure_in=SeizureCreate(seized_at=at, country="PE", **fields)
    )
    return seizure.id


def _links_between(session: Session, ids: set[uuid.UUID]) -> list[SeizureLink]:
    return list(
        session.scalars(
            select(SeizureLink).where(
                SeizureLink.seizure_a_id.in_(ids),  # type: ignore[attr-defined]
                SeizureLink.seizure_b_id.in_(ids),  # type: ignore[attr-defined]
            )
        )
    )


def test_a_write_queues_its_seizure_durably_and_drain_correlates_it(
    engine: Engine, world: World, era: datetime
) -> None:
    """A committed write leaves a queue row (a crash now loses nothing); draining links."""
    awb = f"050-{_tag()}"
    with Session(engine) as session:
        first = _add(session, world, era, air_waybill=awb)
        second = _add(session, world, era, air_waybill=awb)
        session.commit()
    with Session(engine) as session:
        queued = set(session.scalars(select(LinkQueue.seizure_id)))
        linked = _links_between(session, {first, second})
        # The app's own worker may already have taken them: either queued or linked.
        assert {first, second} <= queued or linked
        drain(session)
        assert not {first, second} & set(session.scalars(select(LinkQueue.seizure_id)))
        (link,) = _links_between(session, {first, second})
        assert [r["kind"] for r in link.reasons] == ["air_waybill"]
        keys = session.scalars(select(LinkKey.key).where(LinkKey.seizure_id == first)).all()
        assert keys


def test_a_failing_correlation_stays_queued_with_its_error(
    engine: Engine, world: World, era: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Session(engine) as session:
        seizure_id = _add(session, world, era, air_waybill=f"060-{_tag()}")

        def broken(*_a: Any, **_k: Any) -> Any:
            raise RuntimeError("database hiccup")

        monkeypatch.setattr(worker, "correlate_seizure", broken)
        assert worker.correlate_queued(session, only=seizure_id) == []
        row = session.get(LinkQueue, seizure_id)
        assert row is not None and row.attempts == 1 and "hiccup" in (row.last_error or "")
        monkeypatch.undo()
        (result,) = worker.correlate_queued(session, only=seizure_id)
        assert result.seizure_id == seizure_id
        session.expire_all()
        assert session.get(LinkQueue, seizure_id) is None
        session.rollback()


def test_the_worker_correlates_right_after_the_commit(
    engine: Engine, world: World, era: datetime
) -> None:
    """A worker that never polls (one hour) still correlates: the commit wakes it."""
    link_worker = LinkWorker(engine, poll_s=3600)
    link_worker.start()
    try:
        awb = f"070-{_tag()}"
        woken = link_worker.wakes
        with Session(engine) as session:
            first = _add(session, world, era, air_waybill=awb)
            second = _add(session, world, era, air_waybill=awb)
            assert link_worker.wakes == woken  # not before the commit
            session.commit()
        assert link_worker.wakes == woken + 1
        done = threading.Event()
        for _ in range(600):  # bounded wait, no timing asserted
            with Session(engine) as session:
                if _links_between(session, {first, second}):
                    done.set()
                    break
            time.sleep(0.05)
        assert done.is_set()
    finally:
        link_worker.stop()


# --------------------------------------------------------------------------- index plans


#: A partner agency that owns nothing here, and the era of the lookup tests' rows.
_PARTNER = uuid.uuid4()
_LOOKUP_BASE = datetime(1500, 1, 1, tzinfo=UTC)


def _index_rows(
    session: Session, world: World, rng: random.Random
) -> tuple[list[dict[str, Any]], list[str]]:
    """40 seizures and 600 index rows over six keys and four audiences (rolled back by the
    caller), dated apart: no ties at a cap. Returns the seizure rows and the keys."""
    from service.linking.models import EVERYONE
    from service.models import Seizure
    from service.seed import bulk_insert, seizure_row

    a, b = world.agencies["A"], world.agencies["B"]
    keys = [f"container:LOOKUP{n}" for n in range(6)]
    now = datetime.now(UTC)
    seizures = [seizure_row(rng, rng.choice((a, b)), now) for _ in range(40)]
    bulk_insert(session, Seizure.__table__, seizures)  # type: ignore[attr-defined]
    minutes = rng.sample(range(100_000), 600)
    rows = [
        {
            "seizure_id": seizure["id"],
            "agency_id": seizure["agency_id"],
            "audience_id": rng.choice((a, b, EVERYONE, _PARTNER)),
            "kind": "container",
            "key": rng.choice(keys),
            "at": _LOOKUP_BASE + timedelta(minutes=minute),
            "detail": None,
        }
        for seizure, minute in zip(itertools.cycle(seizures), minutes, strict=False)
    ]
    session.execute(LinkKey.__table__.insert(), rows)  # type: ignore[attr-defined]
    return seizures, keys


def test_lookups_are_answered_from_the_indexes(backend: str, engine: Engine, world: World) -> None:
    """Every range of the lookup statement is a limited index range scan, for a seizure of
    one agency (audience index) and one shared with all (key index). SQLite has a part per
    range; PostgreSQL one lateral pair of ranges run for each question and audience."""
    from types import SimpleNamespace

    from service.linking import spectral
    from service.linking.engine import Key, explain_lookups
    from service.linking.precursors import library_relations

    keys = [
        Key("container", "container:MSCU1234567", "MSCU1234567"),
        Key("route", "route:PE>ES", "PE → ES"),  # a window: one range each side of the date
        Key("spectrum_band", spectral.band_key("raman", 3, 77), "raman"),
    ]
    with Session(engine) as session:
        _index_rows(session, world, random.Random(3))
        conn = session.connection()
        if backend == "postgresql":
            conn.exec_driver_sql("ANALYZE link_key")  # the planner's statistics, as in service
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")  # a small table
        # Four ranges; a seizure of one agency asks two audiences (its own and everyone's).
        for sharing, parts, index in (("own", 8, "audience"), ("all", 4, "key")):
            seizure = SimpleNamespace(
                id=uuid.uuid4(),
                agency_id=world.agencies["A"],
                sharing=sharing,
                shared_with=[],
                seized_at=datetime(2024, 1, 1, tzinfo=UTC),
            )
            (plan,) = explain_lookups(conn, seizure, keys, library_relations())
            if backend == "postgresql":
                assert "Seq Scan" not in plan and "Sort" not in plan and "Bitmap" not in plan
                scans = re.findall(
                    r"Index (?:Only )?Scan(?: Backward)? using (ix_link_key_\w+)", plan
                )
                # The lateral pair, each a range of one key's dates under its limit; the
                # planner picks the index by its statistics (the 1M benchmark prints which).
                assert plan.count("Limit") == 2 and len(scans) == 2, plan
                assert set(scans) <= {f"ix_link_key_{index}", "ix_link_key_key"}, plan
                conditions = re.findall(r"Index Cond: (.*)", plan)
                assert len(conditions) == 2, plan
                key = re.compile(r"\(?key\)?(::text)? = \(q\.key\)::text")
                assert all(key.search(c) and "at " in c for c in conditions), conditions
            else:
                assert "SCAN link_key" not in plan and "TEMP B-TREE" not in plan, plan
                found = r"SEARCH link_key USING (?:COVERING )?INDEX (ix_link_key_\w+)"
                scans = re.findall(found, plan)
                # One index range scan per part (the 1M benchmark prints which index).
                assert len(scans) == parts, plan
                assert set(scans) <= {"ix_link_key_audience", "ix_link_key_key"}, plan
        session.rollback()


def test_postgresql_lookup_gives_what_one_part_per_range_gives(
    backend: str, engine: Engine, world: World
) -> None:
    """The one lateral statement PostgreSQL runs answers every question exactly as the
    compound SELECT of one part per range (what SQLite runs) does on the same rows."""
    from types import SimpleNamespace

    from service.linking.engine import _lookup, _statements, _Wanted

    if backend != "postgresql":
        pytest.skip("the lateral statement is PostgreSQL's")
    rng = random.Random(7)
    a, b = world.agencies["A"], world.agencies["B"]
    answered = 0
    with Session(engine) as session:
        seizures, keys = _index_rows(session, world, rng)
        for round_ in range(30):
            sharing = rng.choice(("own", "partners", "all"))
            probe = SimpleNamespace(
                id=rng.choice(seizures)["id"] if round_ % 2 else uuid.uuid4(),
                agency_id=rng.choice((a, b)),
                sharing=sharing,
                shared_with=[str(_PARTNER)] if sharing == "partners" else [],
                seized_at=_LOOKUP_BASE + timedelta(minutes=rng.randrange(100_000)),
            )
            wanted = [
                _Wanted(
                    rng.choice(keys),
                    rng.choice((None, timedelta(days=rng.randrange(1, 40)))),
                    rng.randrange(1, 8),
                )
                for _ in range(rng.randrange(1, 9))
            ]
            lateral = _lookup(session, probe, wanted)
            parts: dict[int, list[tuple[uuid.UUID, datetime]]] = {}
            for statement in _statements(probe, wanted, "sqlite"):  # one part per range
                for seizure_id, at, q in session.execute(statement):
                    parts.setdefault(int(q), []).append((seizure_id, at))
            assert {q: sorted(found) for q, found in lateral.items()} == {
                q: sorted(found) for q, found in parts.items()
            }, (sharing, wanted)
            answered += sum(len(found) for found in lateral.values())
        session.rollback()
    assert answered > 100  # the questions do find rows, in and out of windows
