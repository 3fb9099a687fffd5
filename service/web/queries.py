"""Read queries of the UI that the API has no shape for: keyset pages, aggregates.

The seizure list shows what crud lets the principal read: its agency's seizures and those
other agencies share with it (:func:`service.crud.seizure_scopes`); aggregates and exports
stay within the principal's agency. Filters mean exactly what
:class:`service.crud.SeizureFilter` means for ``GET /seizures``.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    cast,
    exists,
    extract,
    false,
    func,
    or_,
    select,
    true,
    tuple_,
    union,
    union_all,
)
from sqlmodel import Session, col

from service.crud import SeizureFilter, seizure_scopes
from service.errors import InvalidInputError
from service.models import FieldTest, Item, Seizure
from service.principal import Principal


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


Source = Select[Any] | ColumnElement[bool]


def related_filters(
    actor: Principal,
    filters: SeizureFilter,
    *,
    correlated: bool,
    owner: uuid.UUID | None = None,
) -> list[list[Source]]:
    """Filters on a seizure's items and tests (and the text search), as seizure id sources.

    Each filter is a list of sources; a seizure matches when any of them does. With
    ``correlated`` each select is restricted to the seizure of the enclosing query (for
    EXISTS); without, each lists every matching seizure of agency ``owner`` (default: the
    actor's) for IN.
    """
    agency_id = owner or actor.scope

    def ids(column: Any, agency: Any, *where: Any) -> Select[Any]:
        query = select(column.label("sid")).where(*where)
        if correlated:
            return query.where(column == Seizure.id)
        return query.where(agency == agency_id)

    out: list[list[Source]] = []
    if filters.substance:
        name = filters.substance.lower()
        out.append(
            [
                ids(Item.seizure_id, Item.agency_id, func.lower(Item.substance) == name),
                ids(
                    FieldTest.seizure_id,
                    FieldTest.agency_id,
                    func.lower(FieldTest.main_substance) == name,
                ),
            ]
        )
    if filters.verdict:
        out.append(
            [
                ids(
                    FieldTest.seizure_id,
                    FieldTest.agency_id,
                    FieldTest.verdict == filters.verdict.value,
                )
            ]
        )
    if filters.q:
        pattern = _like(filters.q)
        narrative = col(Seizure.narrative).ilike(pattern, escape="\\")
        described = col(Item.description).ilike(pattern, escape="\\")
        # The narrative is the seizure's own column: correlated, it is a plain condition.
        own: Select[Any] = select(col(Seizure.id).label("sid")).where(
            narrative, col(Seizure.agency_id) == agency_id
        )
        out.append(
            [narrative if correlated else own, ids(Item.seizure_id, Item.agency_id, described)]
        )
    return out


def seizure_conditions(
    actor: Principal,
    filters: SeizureFilter,
    *,
    sparse: bool = True,
    scope: ColumnElement[bool] | None = None,
) -> list[ColumnElement[bool]]:
    """WHERE conditions for ``filters`` inside ``scope`` (default: the actor's own agency).

    ``sparse=False`` leaves out the filters on items and tests (see :func:`related_filters`).
    Reports and exports use the default: another agency's seizures, even shared, are never
    counted in this agency's statistics nor passed on in its exports.
    """
    if scope is None:
        own = seizure_scopes(actor, filters.agency_id, shared=False)
        scope = own[0] if own else false()  # another agency's: nothing of ours
    conds: list[ColumnElement[bool]] = [scope]
    if filters.date_from:
        conds.append(col(Seizure.seized_at) >= filters.date_from)
    if filters.date_to:
        conds.append(col(Seizure.seized_at) <= filters.date_to)
    if filters.country:
        c = filters.country.upper()
        conds.append(
            or_(
                col(Seizure.country) == c,
                col(Seizure.origin_country) == c,
                col(Seizure.departure_country) == c,
                col(Seizure.destination_country) == c,
            )
        )
    if filters.transport_mode:
        conds.append(col(Seizure.transport_mode) == filters.transport_mode)
    if filters.status:
        conds.append(col(Seizure.status) == filters.status)
    if not sparse:
        return conds
    for sources in related_filters(actor, filters, correlated=True):
        conds.append(or_(*(exists(s) if isinstance(s, Select) else s for s in sources)))
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


#: A filter on items or tests matching fewer seizures than this is answered from its own
#: index (cost bounded by this); one matching more walks the date index and checks each
#: seizure, which finds a page within about ``limit * total / SPARSE_THRESHOLD`` rows.
SPARSE_THRESHOLD = 2000


def _page_plan(
    session: Session,
    actor: Principal,
    filters: SeizureFilter,
    scope: ColumnElement[bool],
    owner: uuid.UUID | None,
) -> tuple[list[ColumnElement[bool]], list[Any]]:
    """WHERE conditions and LATERAL joins of a list page, chosen by how selective it is.

    PostgreSQL would otherwise hash every matching item before reading the first page
    (slow for a common substance) or walk every seizure (slow for a rare one). ``owner``
    is the one agency whose seizures ``scope`` holds. The shared branches (``owner`` None)
    always probe each seizure they walk: what other agencies share is a small part of the
    table, and counting matches over every agency would cost more than walking it.
    """
    if session.get_bind().dialect.name != "postgresql":
        return seizure_conditions(actor, filters, scope=scope), []  # SQLite probes EXISTS
    conds = seizure_conditions(actor, filters, sparse=False, scope=scope)
    joins: list[Any] = []
    common = related_filters(actor, filters, correlated=True)
    rare = related_filters(actor, filters, correlated=False, owner=owner) if owner else common
    for listed, checked in zip(rare, common, strict=True):
        if owner is not None:
            ids = union_all(*listed)  # type: ignore[arg-type]
            found = session.scalar(
                select(func.count()).select_from(ids.limit(SPARSE_THRESHOLD).subquery())
            )
            if (found or 0) < SPARSE_THRESHOLD:
                conds.append(col(Seizure.id).in_(ids))
                continue
        either: list[ColumnElement[bool]] = []
        for source in checked:
            if isinstance(source, Select):
                # At most one related row per seizure, found through its seizure_id index.
                hit = source.limit(1).lateral()
                joins.append(hit)
                either.append(hit.c.sid.is_not(None))
            else:
                either.append(source)
        conds.append(or_(*either))
    return conds, joins


def seizure_page(
    *,
    session: Session,
    actor: Principal,
    filters: SeizureFilter,
    after: Cursor | None,
    limit: int = 25,
    shared: bool = True,
) -> tuple[Sequence[Seizure], Cursor | None]:
    """One page newest first, and the cursor of the next page (None at the end).

    Keyset pagination: the next page starts strictly after the last row shown, so every page
    is an index range scan on (agency_id, seized_at) however deep it is. With ``shared``
    (the default) the page also holds the seizures other agencies share with the actor:
    each kind of sharing is a branch of its own that reads its own index up to one page,
    and the branches' pages are merged (an OR over them would scan every seizure).
    """
    if not 1 <= limit <= 500:
        raise InvalidInputError("limit", "must be between 1 and 500")
    scopes = seizure_scopes(actor, filters.agency_id, shared=shared)
    if not scopes:
        return [], None
    order = (col(Seizure.seized_at).desc(), col(Seizure.id).desc())
    branches: list[Select[Any]] = []
    for i, scope in enumerate(scopes):
        # The first branch holds one agency's seizures (ours, or the one filtered on).
        owner = (filters.agency_id or actor.scope) if i == 0 else None
        conds, joins = _page_plan(session, actor, filters, scope, owner)
        if after is not None:
            # A row-value comparison, not "a < x OR (a = x AND b < y)": PostgreSQL turns it
            # into an index range bound, so a deep page starts where it is.
            conds.append(tuple_(Seizure.seized_at, Seizure.id) < tuple_(after.seized_at, after.id))
        columns: Any = Seizure if len(scopes) == 1 else (Seizure.id, Seizure.seized_at)
        branch = select(*columns) if isinstance(columns, tuple) else select(columns)
        for join in joins:
            branch = branch.outerjoin(join, true())
        branches.append(branch.where(*conds).order_by(*order).limit(limit + 1))
    if len(branches) == 1:
        query = branches[0]
    else:
        # The branches are disjoint (own, named partner, everyone; never our own twice).
        pages = [b.subquery() for b in branches]
        found = union_all(*(select(page.c.id) for page in pages)).subquery()
        query = (
            select(Seizure).join(found, found.c.id == Seizure.id).order_by(*order).limit(limit + 1)
        )
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
        query.order_by(col(Seizure.seized_at).desc(), col(Seizure.id).desc()).limit(limit)
    ).all()


def items_of(session: Session, seizure_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[Item]]:
    """Items of several seizures at once (callers pass ids they may already see)."""
    out: dict[uuid.UUID, list[Item]] = {}
    if not seizure_ids:
        return out
    for item in session.scalars(
        select(Item)
        .where(col(Item.seizure_id).in_(seizure_ids))
        .order_by(col(Item.created_at), col(Item.id))
    ):
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
        .where(col(FieldTest.seizure_id).in_(seizure_ids))
        .order_by(col(FieldTest.tested_at), col(FieldTest.id))
    )
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
    #: ((from, *transit, to), seizures), most frequent first.
    routes: list[tuple[tuple[str, ...], int]]
    #: (latitude, longitude, place, seized_at) of the newest located seizures.
    points: list[tuple[float, float, str, datetime]]


def _countries(text: str | None) -> list[str]:
    """Transit countries from the column's JSON text (anything unreadable counts as none)."""
    try:
        value = json.loads(text) if text else []
    except ValueError:
        return []
    return [c for c in value if isinstance(c, str)] if isinstance(value, list) else []


def _month(year: Any, month: Any) -> str:
    return f"{int(year):04d}-{int(month):02d}"


def dashboard_data(
    *,
    session: Session,
    actor: Principal,
    filters: SeizureFilter,
    top: int = 5,
    top_routes: int = 10,
    max_points: int = 2000,
) -> DashboardData:
    """Counts per month by transport mode and by substance, top routes and map points."""
    conds = seizure_conditions(actor, filters)
    year = extract("year", col(Seizure.seized_at))
    month = extract("month", col(Seizure.seized_at))
    mode_rows = session.execute(
        select(year, month, col(Seizure.transport_mode), func.count())
        .where(*conds)
        .group_by(year, month, col(Seizure.transport_mode))
    ).all()
    months = sorted({_month(y, m) for y, m, _, _ in mode_rows})
    index = {m: i for i, m in enumerate(months)}
    by_mode: dict[str, list[int]] = {}
    for y, m, mode, n in mode_rows:
        by_mode.setdefault(mode or "", [0] * len(months))[index[_month(y, m)]] += int(n)
    # A seizure counts once per substance, whether an item records it or a field test found it.
    named = union(
        select(col(Item.seizure_id).label("sid"), col(Item.substance).label("name")).where(
            col(Item.agency_id) == actor.scope,
            col(Item.substance).is_not(None),
        ),
        select(
            col(FieldTest.seizure_id).label("sid"), col(FieldTest.main_substance).label("name")
        ).where(
            col(FieldTest.agency_id) == actor.scope,
            col(FieldTest.main_substance).is_not(None),
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
    # Transit countries are part of a route: PE → PA → ES is not PE → ES. The JSON list is
    # grouped as its text (the service always writes it with json.dumps), decoded here.
    transit = cast(Seizure.transit_countries, String)
    route_rows = session.execute(
        select(start, transit, col(Seizure.destination_country), func.count())
        .where(*conds, start.is_not(None), col(Seizure.destination_country).is_not(None))
        .group_by(start, transit, col(Seizure.destination_country))
        .order_by(func.count().desc(), start, transit, col(Seizure.destination_country))
        .limit(4 * top_routes)
    ).all()
    routes: dict[tuple[str, ...], int] = {}
    for a, via, b, n in route_rows:
        key = (a, *_countries(via), b)
        routes[key] = routes.get(key, 0) + int(n)
    point_rows = session.execute(
        select(
            col(Seizure.latitude),
            col(Seizure.longitude),
            col(Seizure.place),
            col(Seizure.seized_at),
        )
        .where(*conds, col(Seizure.latitude).is_not(None), col(Seizure.longitude).is_not(None))
        .order_by(col(Seizure.seized_at).desc())
        .limit(max_points)
    ).all()
    return DashboardData(
        total=sum(sum(v) for v in by_mode.values()),
        months=months,
        by_substance=by_substance,
        by_mode=by_mode,
        routes=sorted(routes.items(), key=lambda r: (-r[1], r[0]))[:top_routes],
        points=[(float(a), float(b), p or "", t) for a, b, p, t in point_rows],
    )
