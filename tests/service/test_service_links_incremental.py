"""Incremental correlation (only new or changed keys and spectra looked up) gives exactly
what a full correlation gives, on random sequences of writes; and the queue coalesces."""

from __future__ import annotations

import itertools
import os
import re
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, event, select
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, col

from service import crud
from service.core.config import Settings
from service.core.db import make_engine
from service.errors import PreconditionFailedError
from service.linking import worker
from service.linking.engine import Key, _keys_touched, correlate_seizure, pair_reasons
from service.linking.models import LinkAlert, LinkKey, LinkQueue, SeizureLink
from service.linking.precursors import library_relations
from service.models import (
    FieldTestCreate,
    ItemCreate,
    PersonRef,
    SeizureCreate,
    SeizureUpdate,
)
from service.principal import Principal
from service.sharing import SharingLevel
from service.testing import World, field_test_payload

_eras = itertools.count()
_AXIS = np.linspace(200.0, 2000.0, 256)
#: Spectra: one of three templates plus noise (0: identical; 5: correlation about 0.99;
#: 9: about 0.97, below the threshold) so that bands collide and verification matters.
_TEMPLATES = [np.random.default_rng(900 + t).normal(1000.0, 50.0, 256) for t in range(3)]
_PROFILES = [
    [("cocaine HCl", 0.6), ("levamisole", 0.4)],
    [("cocaine HCl", 0.68), ("levamisole", 0.32)],
    [("cocaine HCl", 0.2), ("levamisole", 0.8)],
    [("ketamine", 1.0)],
]
_SUBSTANCES = ["cocaine HCl", "ephedrine", "methamphetamine HCl", "potassium permanganate", "p2p"]
_ROUTES = [("PE", "ES"), ("CO", "ES"), (None, None)]
_DAYS = [0, 20, 45, 400]


class _OrigError(Exception):
    """A driver error with a SQLSTATE, as psycopg raises them."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"sqlstate {sqlstate}")
        self.sqlstate = sqlstate


@pytest.fixture(scope="module")
def engine(settings: Settings, world: World) -> Iterator[Engine]:
    engine = make_engine(settings.sqlalchemy_url)
    yield engine
    engine.dispose()


# One write: (operation, seizure index, choice, choice).
_op = st.tuples(
    st.sampled_from(["seizure", "update", "item", "item", "test", "test", "test", "sharing"]),
    st.integers(0, 3),
    st.integers(0, 11),
    st.integers(0, 11),
)


class _Writes:
    """Replays one sequence of writes with fixed ids, so two runs are comparable."""

    def __init__(self, world: World, era: datetime, tag: str, ops: list[Any]) -> None:
        self.world, self.era, self.tag, self.ops = world, era, tag, ops
        self.ids = [uuid.uuid4() for _ in range(5)]
        self.owner = ["A", "A", "B", "A", "B"]
        self.made: set[int] = set()
        self.versions: dict[int, int] = {}
        self.extra = [uuid.uuid4() for _ in range(2 * len(ops))]

    def actor(self, n: int) -> Principal:
        return Principal(agency_id=self.world.agencies[self.owner[n]], role="supervisor")

    def run(self, session: Session, full: bool) -> None:
        fresh = iter(self.extra)
        steps, made = [], set()
        for kind, n, x, y in self.ops:  # a write to a seizure not made yet makes it first
            if n not in made:
                steps.append(("seizure", n, x, y))
                made.add(n)
            if kind != "seizure" or steps[-1][:2] != ("seizure", n):
                steps.append(("update" if kind == "seizure" else kind, n, x, y))
        for kind, n, x, y in steps:
            seizure_id = self.ids[n]
            if kind == "seizure":
                origin, destination = _ROUTES[x % 3]
                seizure = crud.create_seizure(
                    session=session,
                    actor=self.actor(n),
                    seizure_in=SeizureCreate(
                        id=seizure_id,
                        seized_at=self.era + timedelta(days=_DAYS[y % 4]),
                        country="PE",
                        air_waybill=f"{self.tag}-{x % 3}" if x % 4 == 1 else None,
                        origin_country=origin,
                        destination_country=destination,
                        persons=[PersonRef(reference=f"{self.tag}P")] if y % 4 == 3 else [],
                        sharing=SharingLevel.ALL if y % 5 == 0 else SharingLevel.OWN,
                    ),
                )
                self.made.add(n)
            elif kind in ("update", "sharing"):
                if kind == "sharing":
                    other = "B" if self.owner[n] == "A" else "A"
                    change = SeizureUpdate(
                        sharing=[SharingLevel.OWN, SharingLevel.ALL, SharingLevel.PARTNERS][x % 3],
                        shared_with=[self.world.agencies[other]] if x % 3 == 2 else None,
                        reason="sharing",
                    )
                else:
                    origin, destination = _ROUTES[y % 3]
                    change = SeizureUpdate(
                        air_waybill=f"{self.tag}-{x % 3}" if x % 2 else None,
                        seized_at=self.era + timedelta(days=_DAYS[x % 4]),
                        origin_country=origin,
                        destination_country=destination,
                        reason="corrected",
                    )
                seizure = crud.update_seizure(
                    session=session,
                    actor=self.actor(n),
                    seizure_id=seizure_id,
                    seizure_in=change,
                    if_match=self.versions[n],
                )
            else:
                item = crud.create_item(
                    session=session,
                    actor=self.actor(n),
                    seizure_id=seizure_id,
                    item_in=ItemCreate(
                        id=next(fresh),
                        description="powder",
                        substance=_SUBSTANCES[x % 5] if kind == "item" else None,
                    ),
                )
                if kind == "test":
                    self._test(session, n, item.id, next(fresh), x, y)
                seizure = crud.get_seizure(
                    session=session, actor=self.actor(n), seizure_id=seizure_id
                )
            self.versions[n] = seizure.version
            if full:  # without the stored index rows, the correlation is a full one
                session.execute(delete(LinkKey).where(col(LinkKey.seizure_id) == seizure_id))
            correlate_seizure(session, seizure_id)

    def _test(
        self, session: Session, n: int, item_id: uuid.UUID, test_id: uuid.UUID, x: int, y: int
    ) -> None:
        noise = [0.0, 5.0, 9.0][y % 3]
        values = _TEMPLATES[x % 3] + np.random.default_rng(y).normal(0.0, noise, 256)
        profile = _PROFILES[(x + y) % 4]
        ident = {
            "verdict": "mixture" if len(profile) > 1 else "identified",
            "candidates": [{"name": name, "score": 0.9} for name, _ in profile],
            "components": [{"name": name, "fraction": f} for name, f in profile],
            "library_version": "sha256:test",
        }
        body = field_test_payload(256, seed=y, identification=ident)
        body["spectrum"] = {"kind": "raman", "axis": _AXIS.tolist(), "intensities": values.tolist()}
        crud.create_field_test(
            session=session,
            actor=self.actor(n),
            item_id=item_id,
            test_in=FieldTestCreate.model_validate({**body, "id": test_id}),
        )

    def state(self, session: Session) -> dict[str, Any]:
        mine = set(self.ids)
        links = session.scalars(
            select(SeizureLink).where(col(SeizureLink.seizure_a_id).in_(mine))
        ).all()
        alerts = session.scalars(select(LinkAlert).where(col(LinkAlert.seizure_id).in_(mine)))
        keys = session.execute(
            select(
                col(LinkKey.seizure_id),
                col(LinkKey.audience_id),
                col(LinkKey.key),
                col(LinkKey.detail),
            ).where(col(LinkKey.seizure_id).in_(mine))
        )
        return {
            "links": sorted(
                (
                    str(link.agency_id),
                    str(link.seizure_a_id),
                    str(link.seizure_b_id),
                    str(link.status),
                    link.strength,
                    repr(link.reasons),
                )
                for link in links
            ),
            "alerts": sorted(
                (str(a.agency_id), str(a.seizure_id), str(a.other_seizure_id), repr(a.reasons))
                for a in alerts
            ),
            "keys": sorted(tuple(map(str, row)) for row in keys),
        }


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=st.lists(_op, min_size=2, max_size=16))
# Spectra of one template (identical, then slightly noisy), mixture profiles, a precursor.
@example(
    ops=[
        ("seizure", 0, 0, 1),
        ("test", 0, 0, 0),
        ("seizure", 1, 0, 1),
        ("test", 1, 0, 1),
        ("test", 1, 3, 0),
        ("item", 2, 1, 0),
        ("item", 3, 2, 0),
        ("test", 0, 1, 1),
        ("sharing", 1, 1, 0),
        ("test", 2, 0, 4),
    ]
)
def test_incremental_correlation_equals_a_full_one(
    engine: Engine, world: World, ops: list[Any]
) -> None:
    era = datetime(1700, 1, 1, tzinfo=UTC) + timedelta(days=2000 * next(_eras))
    writes = _Writes(world, era, uuid.uuid4().hex[:10], ops)
    states = []
    for full in (False, True):
        with Session(engine) as session:
            writes.made, writes.versions = set(), {}
            writes.run(session, full=full)
            states.append(writes.state(session))
            session.rollback()  # nothing committed: the other run starts from the same state
    incremental, full_state = states
    assert incremental == full_state
    if os.environ.get("FIELDSCAN_SHOW_LINKS"):  # what the examples exercise, when asked
        print(sorted({r["kind"] for link in incremental["links"] for r in eval(link[5])}))


def test_a_field_test_looks_up_only_its_new_keys(engine: Engine, world: World) -> None:
    """A second field test of a seizure asks the index about its own keys only."""
    era = datetime(1690, 1, 1, tzinfo=UTC)
    tag = uuid.uuid4().hex[:10]
    ops = [("seizure", 0, 1, 1), ("test", 0, 0, 0)]
    writes = _Writes(world, era, tag, ops)
    with Session(engine) as session:
        writes.run(session, full=False)
        asked: list[str] = []

        def spy(_conn: Any, _cursor: Any, statement: str, params: Any, *_a: Any) -> None:
            if "FROM link_key" in statement and "seizure_id <>" in statement:  # a lookup
                values = params.values() if isinstance(params, dict) else params
                for value in values:  # PostgreSQL asks with arrays, SQLite with one bind each
                    found = value if isinstance(value, list) else [value]
                    asked.extend(str(v) for v in found if isinstance(v, str))

        event.listen(engine, "before_cursor_execute", spy)
        try:
            item = crud.create_item(
                session=session,
                actor=writes.actor(0),
                seizure_id=writes.ids[0],
                item_in=ItemCreate(description="powder"),
            )
            writes._test(session, 0, item.id, uuid.uuid4(), 1, 1)
            correlate_seizure(session, writes.ids[0])
        finally:
            event.remove(engine, "before_cursor_execute", spy)
        asked_keys = [a for a in asked if re.match(r"[a-z_]+:", a)]
        assert any(a.startswith("spectrum:") for a in asked_keys)
        assert not any(a.startswith(("air_waybill:", "person:", "route:")) for a in asked_keys)
        session.rollback()


def test_a_seizure_written_many_times_in_one_transaction_is_queued_once(
    engine: Engine, world: World
) -> None:
    """Its queue row is written once, at the commit (not at the first write, which would
    hold the row's lock for the whole transaction); a rolled-back savepoint loses nothing."""
    from service.linking.worker import write_queued

    era = datetime(1680, 1, 1, tzinfo=UTC)
    actor = Principal(agency_id=world.agencies["A"], role="officer")
    upserts = 0

    def count(_conn: Any, _cursor: Any, statement: str, *_a: Any) -> None:
        nonlocal upserts
        upserts += statement.lstrip().upper().startswith("INSERT INTO LINK_QUEUE")

    with Session(engine) as session:
        event.listen(engine, "before_cursor_execute", count)
        try:
            seizure = crud.create_seizure(
                session=session, actor=actor, seizure_in=SeizureCreate(seized_at=era, country="PE")
            )
            for _ in range(3):
                crud.create_item(
                    session=session,
                    actor=actor,
                    seizure_id=seizure.id,
                    item_in=ItemCreate(description="powder"),
                )
            savepoint = session.begin_nested()
            crud.create_item(
                session=session,
                actor=actor,
                seizure_id=seizure.id,
                item_in=ItemCreate(description="powder"),
            )
            savepoint.rollback()  # its item is undone; the seizure's earlier writes are not
            assert upserts == 0
            write_queued(session)  # what a commit does first
            assert upserts == 1
            write_queued(session)
            assert upserts == 1
        finally:
            event.remove(engine, "before_cursor_execute", count)
        assert session.get(LinkQueue, seizure.id) is not None
        session.rollback()


# --------------------------------------------------------------------------- the worker


@pytest.fixture
def kept(monkeypatch: pytest.MonkeyPatch) -> set[uuid.UUID]:
    """Seizures the app's own link worker (a thread of this process) leaves to the test."""
    mine: set[uuid.UUID] = set()
    real = worker._claim

    def claim(session: Session, seizure_id: uuid.UUID, *, wait: bool) -> bool:
        if seizure_id in mine and threading.current_thread().name == "link-worker":
            return False
        return real(session, seizure_id, wait=wait)

    monkeypatch.setattr(worker, "_claim", claim)
    return mine


def _queued_pair(
    engine: Engine, world: World, era: datetime, kept: set[uuid.UUID]
) -> tuple[uuid.UUID, uuid.UUID]:
    """Two committed, queued seizures sharing an air waybill, kept from the app's worker."""
    actor = Principal(agency_id=world.agencies["A"], role="officer")
    awb = f"AWB{uuid.uuid4().hex[:10]}"
    with Session(engine) as session:
        ids = [
            crud.create_seizure(
                session=session,
                actor=actor,
                seizure_in=SeizureCreate(seized_at=era, country="PE", air_waybill=awb),
            ).id
            for _ in range(2)
        ]
        kept.update(ids)
        session.commit()
    return ids[0], ids[1]


def _linked(session: Session, a: uuid.UUID, b: uuid.UUID) -> bool:
    low, high = sorted((a, b))
    found = session.scalars(
        select(col(SeizureLink.id)).where(
            col(SeizureLink.seizure_a_id) == low, col(SeizureLink.seizure_b_id) == high
        )
    ).first()
    return found is not None


@pytest.mark.parametrize(
    "error",
    [
        PreconditionFailedError("seizure_link", 1, "newer"),
        OperationalError("SELECT 1", {}, _OrigError("40P01")),
        OperationalError("SELECT 1", {}, _OrigError("40001")),
    ],
    ids=["changed-link", "deadlock", "serialization"],
)
def test_a_correlation_that_lost_a_race_is_retried_at_once(
    engine: Engine,
    world: World,
    monkeypatch: pytest.MonkeyPatch,
    kept: set[uuid.UUID],
    error: Exception,
) -> None:
    first, second = _queued_pair(engine, world, datetime(1670, 1, 1, tzinfo=UTC), kept)
    calls = []
    real = correlate_seizure

    def racing(session: Session, seizure_id: uuid.UUID, **kw: Any) -> Any:
        calls.append(seizure_id)
        if len(calls) == 1:
            raise error
        return real(session, seizure_id, **kw)

    monkeypatch.setattr(worker, "correlate_seizure", racing)
    with Session(engine) as session:
        assert worker.correlate_one(session, second, skip_locked=False) is not None
        assert calls == [second, second]
        assert session.get(LinkQueue, second) is None  # not left failed
        assert worker.correlate_one(session, first, skip_locked=False) is not None
        assert _linked(session, first, second)


def test_a_failure_that_is_not_a_race_stays_queued(
    engine: Engine, world: World, monkeypatch: pytest.MonkeyPatch, kept: set[uuid.UUID]
) -> None:
    actor = Principal(agency_id=world.agencies["A"], role="officer")
    with Session(engine) as session:
        seizure = crud.create_seizure(
            session=session,
            actor=actor,
            seizure_in=SeizureCreate(seized_at=datetime(1660, 1, 1, tzinfo=UTC), country="PE"),
        )
        kept.add(seizure.id)
        session.commit()

        def broken(*_a: Any, **_k: Any) -> Any:
            raise OperationalError("SELECT 1", {}, _OrigError("53100"))  # disk full

        monkeypatch.setattr(worker, "correlate_seizure", broken)
        assert worker.correlate_one(session, seizure.id, skip_locked=False) is None
        row = session.get(LinkQueue, seizure.id)
        assert row is not None and row.attempts == 1 and "SELECT 1" in (row.last_error or "")
        monkeypatch.setattr(worker, "correlate_seizure", correlate_seizure)
        assert worker.correlate_one(session, seizure.id, skip_locked=False) is not None
        assert session.get(LinkQueue, seizure.id) is None


def test_a_seizure_written_while_being_correlated_is_correlated_again(
    backend: str,
    engine: Engine,
    world: World,
    monkeypatch: pytest.MonkeyPatch,
    kept: set[uuid.UUID],
) -> None:
    """The write commits between the worker's read of the queue row and its end."""
    if backend != "postgresql":
        pytest.skip("SQLite transactions begin IMMEDIATE: a write waits for the correlation")
    _, second = _queued_pair(engine, world, datetime(1650, 1, 1, tzinfo=UTC), kept)
    actor = Principal(agency_id=world.agencies["A"], role="officer")
    real = correlate_seizure
    runs: list[uuid.UUID] = []

    def meanwhile(session: Session, seizure_id: uuid.UUID, **kw: Any) -> Any:
        runs.append(seizure_id)
        if len(runs) == 1:  # another request writes the seizure now, and commits
            with Session(engine) as other:
                crud.create_item(
                    session=other,
                    actor=actor,
                    seizure_id=seizure_id,
                    item_in=ItemCreate(description="powder", substance="ephedrine"),
                )
                other.commit()
        return real(session, seizure_id, **kw)

    monkeypatch.setattr(worker, "correlate_seizure", meanwhile)
    with Session(engine) as session:
        assert worker.correlate_one(session, second, skip_locked=False) is not None
        assert session.get(LinkQueue, second) is not None  # queued again, not lost
        assert worker.correlate_one(session, second, skip_locked=False) is not None
        assert runs == [second, second]
        assert session.get(LinkQueue, second) is None
        keys = session.scalars(
            select(col(LinkKey.key)).where(col(LinkKey.seizure_id) == second)
        ).all()
        assert "substance:ephedrine hydrochloride" in keys


def test_concurrent_drains_of_overlapping_seizures_neither_deadlock_nor_fail(
    backend: str, engine: Engine, world: World, kept: set[uuid.UUID]
) -> None:
    """Many seizures sharing keys in different combinations, drained by three sessions at
    once in different orders: every one is correlated, none is left failed."""
    if backend != "postgresql":
        pytest.skip("SQLite runs one write transaction at a time")
    actor = Principal(agency_id=world.agencies["A"], role="officer")
    tag = uuid.uuid4().hex[:8]
    era = datetime(1640, 1, 1, tzinfo=UTC)
    with Session(engine) as session:
        ids = [
            crud.create_seizure(
                session=session,
                actor=actor,
                seizure_in=SeizureCreate(
                    seized_at=era,
                    country="PE",
                    air_waybill=f"{tag}A{n % 3}",
                    container_number=f"{tag}C{n % 4}",
                    persons=[PersonRef(reference=f"{tag}P{n % 5}")],
                ),
            ).id
            for n in range(24)
        ]
        kept.update(ids)
        session.commit()
    errors: list[BaseException] = []

    def drain_in(order: list[uuid.UUID]) -> None:
        try:
            with Session(engine) as session:
                for seizure_id in order:
                    worker.correlate_one(session, seizure_id, skip_locked=False)
        except BaseException as exc:
            errors.append(exc)

    orders = [ids, ids[::-1], ids[1::2] + ids[::2]]
    threads = [threading.Thread(target=drain_in, args=(order,)) for order in orders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    with Session(engine) as session:
        left = session.scalars(select(LinkQueue).where(col(LinkQueue.seizure_id).in_(ids))).all()
        assert left == []
        for n, a in enumerate(ids):
            for m, b in enumerate(ids[:n]):
                shares = n % 3 == m % 3 or n % 4 == m % 4 or n % 5 == m % 5
                assert _linked(session, a, b) == shares


_KEY_POOL = [
    Key("air_waybill", "air_waybill:1234", "1234"),
    Key("person", "person:p1", "P-1"),
    Key("route", "route:PE>ES", "PE → ES"),
    Key("chemical_profile", "chemical_profile:cocaine hydrochloride|x", '{"a": 0.6, "x": 0.4}'),
    Key("substance", "substance:ephedrine hydrochloride", "ephedrine hydrochloride"),
    Key("substance", "substance:methamphetamine hydrochloride", "methamphetamine hydrochloride"),
    Key("substance", "substance:p2p", "p2p"),
    Key("substance", "substance:cocaine hydrochloride", "cocaine hydrochloride"),
    Key("spectrum_band", "spectrum:s1:raman:00:abc", "raman"),
]


@given(
    mine=st.sets(st.sampled_from(range(len(_KEY_POOL)))),
    theirs=st.sets(st.sampled_from(range(len(_KEY_POOL)))),
    days=st.integers(0, 400),
    first=st.booleans(),
)
def test_reasons_read_only_the_keys_both_share_or_relate(
    mine: set[int], theirs: set[int], days: int, first: bool
) -> None:
    """Linked seizures' keys are loaded only where they meet this seizure's (and related
    substances): the reasons are the same as from all their keys."""
    relations = library_relations()
    at = datetime(2020, 1, 1, tzinfo=UTC)
    own = [_KEY_POOL[i] for i in sorted(mine)]
    other = [_KEY_POOL[i] for i in sorted(theirs)]
    relevant = _keys_touched([k for k in own if k.kind != "spectrum_band"], relations)
    ids = sorted([uuid.uuid4(), uuid.uuid4()], reverse=first)
    a = (ids[0], at, own)
    full = pair_reasons(a, (ids[1], at + timedelta(days=days), other), relations)
    seen = pair_reasons(
        a, (ids[1], at + timedelta(days=days), [k for k in other if k.key in relevant]), relations
    )
    assert seen == full
