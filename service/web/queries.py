"""Read queries of the UI that the API has no shape for: keyset pages, aggregates.

Every query is restricted to the principal's agency (the same isolation crud applies).
Filters mean exactly what :class:`service.crud.SeizureFilter` means for ``GET /seizures``.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, extract, func, or_, select, union
from sqlmodel import Session

from service.crud import SeizureFilter
from service.errors import InvalidInputError
from service.models import FieldTest, Item, Seizure
from service.principal import Principal


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def seizure_conditions(actor: Principal, filters: SeizureFilter) -> list[ColumnElement[bool]]:
    """WHERE conditions for ``filters`` inside the actor's agency."""
    conds: list[ColumnElement[bool]] = [Seizure.agency_id == actor.scope]  # type: ignore[list-item]
    if filters.date_from:
        conds.append(Seizure.seized_at >= filters.date_from)  # type: ignore[arg-type]
    if filters.date_to:
        conds.append(Seizure.seized_at <= filters.date_to)  # type: ignore[arg-type]
    if filters.country:
        c = filters.country.upper()
        conds.append(
            or_(
                Seizure.country == c,
                Seizure.origin_country == c,
                Seizure.departure_country == c,
                Seizure.destination_country == c,
            )
        )
    if filters.transport_mode:
        conds.append(Seizure.transport_mode == filters.transport_mode)  # type: ignore[arg-type]
    if filters.status:
        conds.append(Seizure.status == filters.status)  # type: ignore[arg-type]
    if filters.substance:
        name = filters.substance.lower()
        conds.append(
            or_(
                exists().where(Item.seizure_id == Seizure.id, func.lower(Item.substance) == name),
                exists().where(
                    FieldTest.seizure_id == Seizure.id, func.lower(FieldTest.main_substance) == name
                ),
            )
        )
    if filters.verdict:
        conds.append(
            exists().where(
                FieldTest.seizure_id == Seizure.id, FieldTest.verdict == filters.verdict.value
            )
        )
    if filters.q:
        pattern = _like(filters.q)
        conds.append(
            or_(
                Seizure.narrative.ilike(pattern, escape="\\"),  # type: ignore[union-attr]
                exists().where(
                    Item.seizure_id == Seizure.id, Item.description.ilike(pattern, escape="\\")
                ),  # type: ignore[attr-defined]
            )
        )
    return conds


@dataclass(frozen=True, slots=True)
class Cursor:
    """Position after the last row shown: newest first, ties broken by id."""

    seized_at: datetime
    id: uuid.UUID

    def encode(self) -> str:
        raw = f"{self.seized_at.isoformat()}|{self.id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
            at, _, ident = raw.partition("|")
            return cls(datetime.fromisoformat(at), uuid.UUID(ident))
        except ValueError:
            raise InvalidInputError("after", "not a page cursor from this site") from None


def seizure_page(
    *,
    session: Session,
    actor: Principal,
    filters: SeizureFilter,
    after: Cursor | None,
    limit: int = 25,
) -> tuple[Sequence[Seizure], Cursor | None]:
    """One page newest first, and the cursor of the next page (None at the end).

    Keyset pagination: the next page starts strictly after the last row shown, so every page
    is an index range scan on (agency_id, seized_at) however deep it is.
    """
    if not 1 <= limit <= 500:
        raise InvalidInputError("limit", "must be between 1 and 500")
    conds = seizure_conditions(actor, filters)
    if after is not None:
        conds.append(
            or_(
                Seizure.seized_at < after.seized_at,  # type: ignore[arg-type, operator]
                and_(Seizure.seized_at == after.seized_at, Seizure.id < after.id),  # type: ignore[arg-type, operator]
            )
        )
    query = (
        select(Seizure)
        .where(*conds)
        .order_by(Seizure.seized_at.desc(), Seizure.id.desc())
        .limit(limit + 1)
    )  # type: ignore[attr-defined]
    rows = session.scalars(query).all()
    page = rows[:limit]
    nxt = Cursor(page[-1].seized_at, page[-1].id) if len(rows) > limit and page else None
    return page, nxt


def all_filtered(
    *, session: Session, actor: Principal, filters: SeizureFilter, limit: int = 10_000
) -> Sequence[Seizure]:
    """Every matching seizure (newest first, at most ``limit``) for exports."""
    query = select(Seizure).where(*seizure_conditions(actor, filters))
    return session.scalars(
        query.order_by(Seizure.seized_at.desc(), Seizure.id.desc()).limit(limit)
    ).all()  # type: ignore[attr-defined]


def items_of(session: Session, seizure_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[Item]]:
    """Items of several seizures at once (callers pass ids they may already see)."""
    out: dict[uuid.UUID, list[Item]] = {}
    if not seizure_ids:
        return out
    for item in session.scalars(
        select(Item).where(Item.seizure_id.in_(seizure_ids)).order_by(Item.created_at, Item.id)
    ):  # type: ignore[attr-defined]
        out.setdefault(item.seizure_id, []).append(item)
    return out


def tests_of(
    session: Session, seizure_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[FieldTest]]:
    """Field tests of several seizures at once, oldest first."""
    out: dict[uuid.UUID, list[FieldTest]] = {}
    if not seizure_ids:
        return out
    query = (
        select(FieldTest)
        .where(FieldTest.seizure_id.in_(seizure_ids))
        .order_by(FieldTest.tested_at, FieldTest.id)
    )  # type: ignore[attr-defined]
    for test in session.scalars(query):
        out.setdefault(test.seizure_id, []).append(test)
    return out


@dataclass(frozen=True, slots=True)
class DashboardData:
    """Aggregates for the dashboard, computed by the database (fast on large tables)."""

    total: int
    months: list[str]
    #: name → seizures per month (same order as ``months``); top substances only.
    by_substance: dict[str, list[int]]
    #: transport mode code ('' for unknown) → seizures per month.
    by_mode: dict[str, list[int]]
    #: ((from, to), seizures), most frequent first.
    routes: list[tuple[tuple[str, str], int]]
    #: (latitude, longitude, place, seized_at) of the newest located seizures.
    points: list[tuple[float, float, str, datetime]]


def _month(year: Any, month: Any) -> str:
    return f"{int(year):04d}-{int(month):02d}"


def dashboard_data(
    *,
    session: Session,
    actor: Principal,
    filters: SeizureFilter,
    top: int = 5,
    max_points: int = 2000,
) -> DashboardData:
    """Counts per month by transport mode and by substance, top routes and map points."""
    conds = seizure_conditions(actor, filters)
    year = extract("year", Seizure.seized_at)
    month = extract("month", Seizure.seized_at)
    mode_rows = session.execute(
        select(year, month, Seizure.transport_mode, func.count())
        .where(*conds)
        .group_by(year, month, Seizure.transport_mode)
    ).all()
    months = sorted({_month(y, m) for y, m, _, _ in mode_rows})
    index = {m: i for i, m in enumerate(months)}
    by_mode: dict[str, list[int]] = {}
    for y, m, mode, n in mode_rows:
        by_mode.setdefault(mode or "", [0] * len(months))[index[_month(y, m)]] += int(n)
    # A seizure counts once per substance, whether an item records it or a field test found it.
    named = union(
        select(Item.seizure_id.label("sid"), Item.substance.label("name")).where(  # type: ignore[attr-defined]
            Item.agency_id == actor.scope,
            Item.substance.is_not(None),  # type: ignore[union-attr]
        ),
        select(FieldTest.seizure_id.label("sid"), FieldTest.main_substance.label("name")).where(  # type: ignore[attr-defined]
            FieldTest.agency_id == actor.scope,
            FieldTest.main_substance.is_not(None),  # type: ignore[union-attr]
        ),
    ).subquery()
    sub_rows = session.execute(
        select(year, month, named.c.name, func.count(func.distinct(named.c.sid)))
        .join(named, named.c.sid == Seizure.id)
        .where(*conds)
        .group_by(year, month, named.c.name)
    ).all()
    totals: dict[str, int] = {}
    for _y, _m, name, n in sub_rows:
        totals[name] = totals.get(name, 0) + int(n)
    keep = sorted(totals, key=lambda k: (-totals[k], k))[:top]
    by_substance = {name: [0] * len(months) for name in keep}
    for y, m, name, n in sub_rows:
        if name in by_substance:
            by_substance[name][index[_month(y, m)]] += int(n)
    start = func.coalesce(Seizure.origin_country, Seizure.departure_country)
    route_rows = session.execute(
        select(start, Seizure.destination_country, func.count())
        .where(*conds, start.is_not(None), Seizure.destination_country.is_not(None))  # type: ignore[union-attr]
        .group_by(start, Seizure.destination_country)
        .order_by(func.count().desc(), start, Seizure.destination_country)
        .limit(10)
    ).all()
    point_rows = session.execute(
        select(Seizure.latitude, Seizure.longitude, Seizure.place, Seizure.seized_at)
        .where(*conds, Seizure.latitude.is_not(None), Seizure.longitude.is_not(None))  # type: ignore[union-attr]
        .order_by(Seizure.seized_at.desc())  # type: ignore[attr-defined]
        .limit(max_points)
    ).all()
    return DashboardData(
        total=sum(sum(v) for v in by_mode.values()),
        months=months,
        by_substance=by_substance,
        by_mode=by_mode,
        routes=[((a, b), int(n)) for a, b, n in route_rows],
        points=[(float(a), float(b), p or "", t) for a, b, p, t in point_rows],
    )
