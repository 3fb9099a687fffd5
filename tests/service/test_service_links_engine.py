"""The correlation engine directly: keys, strength, precursor relations, and that the work
for one arriving seizure does not grow with the number of seizures stored."""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select, text
from sqlmodel import Session

from service import audit, crud
from service.core.config import Settings
from service.core.db import make_engine
from service.errors import NotFoundError
from service.linking.engine import (
    MAX_MATCHES_PER_KEY,
    MAX_WEAK_MATCHES,
    WEIGHTS,
    Key,
    correlate_seizure,
    pair_reasons,
    seizure_keys,
    strength_of,
)
from service.linking.models import LinkKey, LinkReason, ReasonKind, SeizureLink
from service.linking.precursors import SubstanceRelations, library_relations
from service.linking.worker import correlate_queued
from service.models import Seizure, SeizureCreate
from service.principal import Principal
from service.testing import World

_eras = itertools.count()


@pytest.fixture(scope="module")
def engine(settings: Settings, world: World) -> Iterator[Engine]:
    engine = make_engine(settings.sqlalchemy_url)
    yield engine
    engine.dispose()


@pytest.fixture
def era() -> datetime:
    return datetime(1950, 1, 1, tzinfo=UTC) + timedelta(days=1000 * next(_eras))


def officer(world: World, agency: str = "A") -> Principal:
    return Principal(agency_id=world.agencies[agency], role="officer")


def add_seizure(session: Session, actor: Principal, at: datetime, **fields: Any) -> uuid.UUID:
    seizure = crud.create_seizure(
        session=session,
        actor=actor,
        seizure_in=SeizureCreate(seized_at=at, country="PE", **fields),
    )
    return seizure.id


class WorkCounter:
    """Statements sent, and rows of the index, seizures and links loaded, while active."""

    _LOADED = (LinkKey, Seizure, SeizureLink)

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.statements = 0
        self.rows = 0
        # Load events are per model class, for every session: the app's link worker (a
        # thread of this process) loads rows too, which are not this arrival's work.
        self.thread = threading.get_ident()

    def _statement(self, *_args: Any, **_kw: Any) -> None:
        self.statements += 1

    def _row(self, *_args: Any, **_kw: Any) -> None:
        self.rows += threading.get_ident() == self.thread

    def __enter__(self) -> WorkCounter:
        event.listen(self.engine, "before_cursor_execute", self._statement)
        for model in self._LOADED:
            event.listen(model, "load", self._row)
        return self

    def __exit__(self, *_exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._statement)
        for model in self._LOADED:
            event.remove(model, "load", self._row)


# --------------------------------------------------------------------------- pure parts


def test_keys_are_normalised_and_deduplicated() -> None:
    seizure = Seizure(
        id=uuid.uuid4(),
        agency_id=uuid.uuid4(),
        seized_at=datetime(2026, 1, 1, tzinfo=UTC),
        country="PE",
        air_waybill="045-1234 5675",
        container_number="ab",  # too short to be a reference
        origin_country="PE",
        destination_country="ES",
        persons=[{"reference": "P-1"}, {"reference": "p 1"}],
        companies=[{"name": "Andes Freight S.A.C.", "registration": "20-1", "country": "PE"}],
    )
    keys = seizure_keys(
        seizure,
        substances=["Cocaine HCl", "cocaine hydrochloride", "  "],
        profiles=[{"cocaine hydrochloride": 0.7, "levamisole hydrochloride": 0.3}],
        relations=library_relations(),
    )
    by_key = {k.key: k.kind for k in keys}
    assert by_key == {
        "air_waybill:04512345675": "air_waybill",
        "person:p1": "person",
        "company:andes freight": "company",
        "company_reg:PE:201": "company",
        "route:PE>ES": "route",
        "substance:cocaine hydrochloride": "substance",
        "chemical_profile:cocaine hydrochloride|levamisole hydrochloride": "chemical_profile",
    }


def test_strength_combines_reasons_and_stays_in_unit_interval() -> None:
    def reason(kind: ReasonKind) -> LinkReason:
        return LinkReason(kind=kind, detail="d", key=f"{kind.value}:x")

    assert strength_of([]) == 0
    single = strength_of([reason(ReasonKind.ROUTE)])
    assert single == pytest.approx(WEIGHTS[ReasonKind.ROUTE])
    both = strength_of([reason(ReasonKind.ROUTE), reason(ReasonKind.PRECURSOR)])
    assert single < both < 1
    everything = strength_of([reason(k) for k in ReasonKind] * 3)
    assert 0 < everything <= 1


def test_precursor_relations_from_metadata_both_ways_with_synonyms() -> None:
    relations = SubstanceRelations.from_metadata(
        {
            "drug x": {"class": "narcotic", "synonyms": ["X"], "precursor_of": []},
            "pre y": {"class": "precursor", "synonyms": ["Y oil"], "precursor_of": ["X"]},
        }
    )
    assert relations.canonical_substance("y OIL") == "pre y"
    assert relations.drugs_of["pre y"] == {"drug x"}  # named by synonym, stored canonical
    assert relations.precursors_of["drug x"] == {"pre y"}
    assert relations.canonical_substance("unknown thing") == "unknown thing"
    assert relations.canonical_substance("   ") is None


def test_library_relations_cover_the_issue_examples() -> None:
    r = library_relations()
    assert "methamphetamine hydrochloride" in r.drugs_of["ephedrine hydrochloride"]
    assert "methamphetamine hydrochloride" in r.drugs_of["pseudoephedrine hydrochloride"]
    assert "heroin hydrochloride" in r.drugs_of["acetic anhydride"]
    assert {"cocaine hydrochloride", "cocaine base"} <= r.drugs_of["potassium permanganate"]
    assert "mdma hydrochloride" in r.drugs_of["safrole"]
    assert "fentanyl hydrochloride" in r.drugs_of["npp"]
    assert r.canonical_substance("KMnO4") == "potassium permanganate"


# --------------------------------------------------------------------------- database


def test_unknown_or_foreign_seizure_is_not_found(
    engine: Engine, world: World, era: datetime
) -> None:
    with Session(engine) as session:
        with pytest.raises(NotFoundError):
            correlate_seizure(session, uuid.uuid4())
        mine = add_seizure(session, officer(world, "A"), era)
        with pytest.raises(NotFoundError):
            correlate_seizure(session, mine, actor=officer(world, "B"))
        session.rollback()


def _work_for_one_arrival(
    engine: Engine, world: World, at: datetime, unrelated: int
) -> tuple[int, int]:
    """Seed ``unrelated`` indexed seizures, then count the statements one arrival costs."""
    actor = officer(world)
    tag = uuid.uuid4().hex[:12].upper()
    with Session(engine) as session:
        for n in range(unrelated):
            seizure_id = add_seizure(
                session,
                actor,
                at + timedelta(days=n % 20),
                air_waybill=f"U{tag}{n:05d}",
                origin_country="PE",
                destination_country="MX",  # a route of its own, outside the window below
                persons=[{"reference": f"Q{tag}{n}"}],
            )
            correlate_seizure(session, seizure_id)
        partner = add_seizure(session, actor, at, air_waybill=f"S{tag}", origin_country="EC")
        correlate_seizure(session, partner)
        session.commit()
        session.expunge_all()  # nothing cached: every row the engine needs is loaded
        with WorkCounter(engine) as counter:  # crud writes and queues it; it is correlated
            arriving = add_seizure(
                session,
                actor,
                at + timedelta(days=400),
                air_waybill=f"S{tag}",
                origin_country="PE",
                destination_country="MX",
            )
            correlate_queued(session, only=arriving)
        links = session.scalars(
            select(SeizureLink).where(
                (SeizureLink.seizure_a_id == arriving) | (SeizureLink.seizure_b_id == arriving)
            )
        ).all()
        assert [{link.seizure_a_id, link.seizure_b_id} for link in links] == [{arriving, partner}]
        session.commit()
        audit.chain_pending(session, wait=True)
        session.commit()
        return counter.statements, counter.rows


def test_arrival_work_does_not_grow_with_stored_seizures(engine: Engine, world: World) -> None:
    small = _work_for_one_arrival(engine, world, datetime(1930, 1, 1, tzinfo=UTC), unrelated=5)
    large = _work_for_one_arrival(engine, world, datetime(1920, 1, 1, tzinfo=UTC), unrelated=120)
    assert small == large
    _, rows = large
    assert rows <= 4  # the arriving seizure, its partner's index row and seizure, the link
    with Session(engine) as session:
        assert session.execute(select(func.count()).select_from(LinkKey)).scalar_one() > 120


def test_a_key_shared_by_many_seizures_is_capped(
    engine: Engine, world: World, era: datetime
) -> None:
    actor = officer(world)
    company = [{"name": f"Busy Forwarders {uuid.uuid4().hex[:8]}"}]
    with Session(engine) as session:
        for _ in range(MAX_MATCHES_PER_KEY + 10):
            correlate_seizure(session, add_seizure(session, actor, era, companies=company))
        arriving = add_seizure(session, actor, era, companies=company)
        assert correlate_queued(session, only=arriving)  # queued by crud
        links = session.execute(
            select(func.count())
            .select_from(SeizureLink)
            .where((SeizureLink.seizure_a_id == arriving) | (SeizureLink.seizure_b_id == arriving))
        ).scalar_one()
        assert links == MAX_MATCHES_PER_KEY
        session.rollback()


def test_simultaneous_arrivals_sharing_a_key_are_linked(
    backend: str, engine: Engine, world: World, era: datetime
) -> None:
    """Two seizures with one air waybill, correlated in overlapping transactions."""
    if backend != "postgresql":
        pytest.skip("SQLite runs one write transaction at a time: no overlap to test")
    actor = officer(world)
    awb = f"777-{uuid.uuid4().hex[:8]}"
    outcome: dict[str, Any] = {}

    def second_arrival() -> None:
        with Session(engine) as other:
            # The correlation waits for the first arrival's key lock.
            outcome["id"] = add_seizure(other, actor, era, air_waybill=awb)
            correlate_seizure(other, outcome["id"])
            other.commit()

    with Session(engine) as first:
        first_id = add_seizure(first, actor, era, air_waybill=awb)
        correlate_seizure(first, first_id)  # not committed
        worker = threading.Thread(target=second_arrival, daemon=True)
        worker.start()
        deadline = time.monotonic() + 15
        with engine.connect() as watcher:
            while worker.is_alive() and time.monotonic() < deadline:
                waiting = watcher.execute(
                    text(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                    )
                ).scalar_one()
                if waiting:
                    break
                time.sleep(0.02)
        first.commit()
    worker.join(timeout=15)
    assert not worker.is_alive()
    with Session(engine) as session:  # the second saw the first once it committed
        pair = {first_id, outcome["id"]}
        links = session.scalars(
            select(SeizureLink).where(
                SeizureLink.seizure_a_id.in_(pair), SeizureLink.seizure_b_id.in_(pair)
            )
        ).all()
        assert len(links) == 1


def test_weak_hints_keep_only_the_nearest_in_time(
    engine: Engine, world: World, era: datetime
) -> None:
    actor = officer(world)
    route = {"origin_country": "VE", "destination_country": "GR"}
    with Session(engine) as session:
        by_distance: dict[uuid.UUID, int] = {}
        for days in range(1, 9):
            for sign in (-1, 1):
                seizure_id = add_seizure(session, actor, era + timedelta(days=sign * days), **route)
                correlate_seizure(session, seizure_id)
                by_distance[seizure_id] = days
        arriving = add_seizure(session, actor, era, **route)
        result = correlate_seizure(session, arriving)
        linked = {
            link.seizure_a_id if link.seizure_b_id == arriving else link.seizure_b_id
            for link in result.links
        }
        assert len(linked) == MAX_WEAK_MATCHES
        assert linked == {s for s, d in by_distance.items() if d <= MAX_WEAK_MATCHES // 2}
        session.rollback()


def test_pair_reasons_are_symmetric_and_respect_windows() -> None:
    relations = library_relations()
    day = datetime(2026, 1, 1, tzinfo=UTC)
    profile = "chemical_profile:cocaine hydrochloride|levamisole hydrochloride"
    a_keys = [
        Key("route", "route:PE>ES", "PE → ES"),
        Key("substance", "substance:potassium permanganate", "potassium permanganate"),
        Key(
            "chemical_profile",
            profile,
            '{"cocaine hydrochloride": 0.7, "levamisole hydrochloride": 0.3}',
        ),
    ]
    b_keys = [
        Key("route", "route:PE>ES", "PE → ES"),
        Key("substance", "substance:cocaine hydrochloride", "cocaine hydrochloride"),
        Key(
            "chemical_profile",
            profile,
            '{"cocaine hydrochloride": 0.75, "levamisole hydrochloride": 0.25}',
        ),
    ]
    a, b = uuid.uuid4(), uuid.uuid4()
    near = pair_reasons((a, day, a_keys), (b, day + timedelta(days=3), b_keys), relations)
    assert near == pair_reasons((b, day + timedelta(days=3), b_keys), (a, day, a_keys), relations)
    assert {r.kind for r in near} == {"route", "precursor", "chemical_profile"}
    later = pair_reasons((a, day, a_keys), (b, day + timedelta(days=200), b_keys), relations)
    assert {r.kind for r in later} == {"precursor", "chemical_profile"}  # route window passed
    much_later = pair_reasons((a, day, a_keys), (b, day + timedelta(days=800), b_keys), relations)
    assert {r.kind for r in much_later} == {"chemical_profile"}
