"""Correlation of one seizure against the indexed attribute keys of its agency's seizures.

:func:`correlate_seizure` runs when a seizure (or one of its items, field tests or
laboratory results) is written. It rebuilds that seizure's :class:`LinkKey` rows, then
asks the index once per key (``(agency_id, key, at)``, each answer capped), so the work
depends on how many keys the seizure has and how many seizures share them, never on how
many seizures exist. The reasons found become a :class:`SeizureLink` per pair, written
and audited like every other record.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, or_, select
from sqlalchemy import text as sql_text
from sqlmodel import Session, col

from service import audit
from service.core.types import utcnow
from service.errors import NotFoundError, PreconditionFailedError
from service.linking.models import LinkKey, LinkReason, LinkStatus, ReasonKind, SeizureLink
from service.linking.precursors import SubstanceRelations, library_relations
from service.models import FieldTest, Item, LabResult, Seizure, Verdict
from service.principal import SYSTEM_ROLE, Principal

#: How much one reason of each kind says on its own; reasons combine as a noisy-OR.
WEIGHTS: dict[ReasonKind, float] = {
    ReasonKind.AIR_WAYBILL: 0.9,
    ReasonKind.CONTAINER: 0.85,
    ReasonKind.TRACKING_NUMBER: 0.9,
    ReasonKind.PERSON: 0.7,
    ReasonKind.COMPANY: 0.5,
    ReasonKind.CHEMICAL_PROFILE: 0.45,
    ReasonKind.PRECURSOR: 0.3,
    ReasonKind.ROUTE: 0.25,
}
#: Same route counts only within this many days.
ROUTE_WINDOW = timedelta(days=30)
#: A precursor seizure relates to drug seizures within this many days.
PRECURSOR_WINDOW = timedelta(days=365)
#: Fractions of the same component within this (absolute) difference match.
FRACTION_TOLERANCE = 0.10
#: At most this many seizures per key are taken (newest first): a key shared by thousands
#: of seizures (a busy route) must not make one arrival do thousands of writes.
MAX_MATCHES_PER_KEY = 50
#: Route and precursor hints: at most this many seizures per key, the nearest in time.
MAX_WEAK_MATCHES = 10

# Key kinds that are not reasons themselves: substances feed precursor relations.
_SUBSTANCE = "substance"
_EXACT_KINDS = {
    ReasonKind.AIR_WAYBILL.value,
    ReasonKind.CONTAINER.value,
    ReasonKind.TRACKING_NUMBER.value,
    ReasonKind.PERSON.value,
    ReasonKind.COMPANY.value,
}
_LEGAL_FORMS = frozenset(
    {"sa", "sac", "sas", "sarl", "srl", "sl", "ltd", "llc", "inc", "gmbh", "ag", "bv", "nv"}
    | {"co", "corp", "corporation", "company", "limited", "plc", "spa", "eirl", "ltda", "cia"}
)


@dataclass(frozen=True)
class Key:
    """One normalised attribute: ``kind`` (a reason kind or ``substance``), ``key`` as
    indexed (``kind:value``), and ``detail`` to show (or a profile's fractions as JSON)."""

    kind: str
    key: str
    detail: str


@dataclass
class CorrelationResult:
    """What one correlation did: the seizure's links now, and how much work it took."""

    seizure_id: uuid.UUID
    keys: int
    candidates: int
    created: int = 0
    updated: int = 0
    links: list[SeizureLink] = field(default_factory=list)


# --------------------------------------------------------------------------- normalisation


def _reference(text: str | None) -> str:
    """Consignment numbers: letters and digits, upper case ('045-1234 5675' = '04512345675')."""
    return re.sub(r"[^0-9A-Z]", "", (text or "").upper())


def _person(text: str) -> str:
    return re.sub(r"[^0-9a-z]", "", text.casefold())


def _company(name: str) -> str:
    # "S.A.C." is "SAC": drop dots after single letters before splitting into words.
    text = re.sub(r"\b(\w)\.", r"\1", name.casefold())
    words = re.sub(r"[^0-9a-z]", " ", text).split()
    kept = [w for w in words if w not in _LEGAL_FORMS]
    return " ".join(kept or words)


def seizure_keys(
    seizure: Seizure,
    *,
    substances: Iterable[str],
    profiles: Iterable[dict[str, float]],
    relations: SubstanceRelations,
) -> list[Key]:
    """The normalised attribute keys of one seizure (pure; duplicates removed)."""
    keys: dict[str, Key] = {}

    def add(kind: str, key: str, detail: str) -> None:
        keys.setdefault(key, Key(kind, key, detail))

    for kind, value in (
        (ReasonKind.AIR_WAYBILL, seizure.air_waybill),
        (ReasonKind.CONTAINER, seizure.container_number),
        (ReasonKind.TRACKING_NUMBER, seizure.tracking_number),
    ):
        norm = _reference(value)
        if len(norm) >= 4:  # shorter "numbers" are placeholders, not references
            add(kind.value, f"{kind.value}:{norm}", norm)
    for person in seizure.persons or []:
        ref = person.get("reference") if isinstance(person, dict) else None
        if ref and _person(str(ref)):
            add(ReasonKind.PERSON.value, f"person:{_person(str(ref))}", str(ref))
    for company in seizure.companies or []:
        if not isinstance(company, dict):
            continue
        name = str(company.get("name") or "")
        if _company(name):
            add(ReasonKind.COMPANY.value, f"company:{_company(name)}", name)
        registration = _reference(company.get("registration"))
        if registration:
            country = str(company.get("country") or "")
            add(
                ReasonKind.COMPANY.value,
                f"company_reg:{country}:{registration}",
                f"registration {country} {registration}".replace("  ", " "),
            )
    origin = seizure.origin_country or seizure.departure_country
    if origin and seizure.destination_country:
        route = f"{origin}>{seizure.destination_country}"
        add(ReasonKind.ROUTE.value, f"route:{route}", f"{origin} → {seizure.destination_country}")
    for name in substances:
        canonical = relations.canonical_substance(name)
        if canonical:
            add(_SUBSTANCE, f"substance:{canonical}", canonical)
    for profile in profiles:
        main = max(
            (n for n in profile if not relations.is_cutting_agent(n)),
            key=lambda n: (profile[n], n),
            default=None,
        )
        if main is None or len(profile) < 2:
            continue
        agents = sorted(n for n in profile if n != main)
        key = f"chemical_profile:{main}|{','.join(agents)}"
        add(ReasonKind.CHEMICAL_PROFILE.value, key, json.dumps(profile, sort_keys=True))
    return list(keys.values())


def _identification_substances(
    verdict: str,
    main_substance: str | None,
    identification_json: str,
    relations: SubstanceRelations,
) -> tuple[list[str], dict[str, float] | None]:
    """Substances a field test found, and its mixture profile (canonical name → fraction)."""
    try:
        ident: dict[str, Any] = json.loads(identification_json)
    except ValueError:
        return [], None
    names: list[str] = []
    profile: dict[str, float] = {}
    for component in ident.get("components") or []:
        if not isinstance(component, dict) or not component.get("name"):
            continue
        names.append(str(component["name"]))
        canonical = relations.canonical_substance(str(component["name"]))
        fraction = component.get("fraction")
        if canonical and isinstance(fraction, int | float):
            profile[canonical] = profile.get(canonical, 0.0) + float(fraction)
    if main_substance:
        names.append(main_substance)
    mixture = verdict == Verdict.MIXTURE.value and len(profile) >= 2
    return names, (profile if mixture else None)


# --------------------------------------------------------------------------- reasons


def _profile_reason(first: Key, second: Key) -> LinkReason | None:
    a = json.loads(first.detail)
    b = json.loads(second.detail)
    if set(a) != set(b) or any(abs(a[n] - b[n]) > FRACTION_TOLERANCE for n in a):
        return None
    parts = [
        f"{n} {round(100 * a[n])}%/{round(100 * b[n])}%"
        for n in sorted(a, key=lambda n: (-max(a[n], b[n]), n))
    ]
    return LinkReason(
        kind=ReasonKind.CHEMICAL_PROFILE,
        detail="same chemical profile: " + ", ".join(parts),
        key=first.key,
    )


def strength_of(reasons: Sequence[LinkReason]) -> float:
    """Noisy-OR of the reasons' weights: independent hints, each able to make the link."""
    miss = 1.0
    for reason in reasons:
        miss *= 1.0 - WEIGHTS[reason.kind]
    return round(1.0 - miss, 4)


def _reason_dicts(reasons: Iterable[LinkReason]) -> list[dict[str, Any]]:
    unique = {(r.kind.value, r.key, r.detail): r for r in reasons}
    return [unique[k].model_dump(mode="json") for k in sorted(unique)]


# --------------------------------------------------------------------------- writing


def write_link(
    session: Session,
    link: SeizureLink,
    changes: dict[str, Any],
    *,
    actor: Principal,
    action: str,
    reason: str | None = None,
) -> bool:
    """A new audited version of ``link`` with ``changes``; False (nothing written) if no-op.

    Compare-and-set on the version: a concurrent writer makes this fail with 412 rather
    than silently losing one of the two changes.
    """
    changed = {k: v for k, v in changes.items() if getattr(link, k) != v}
    if not changed:
        return False
    before = audit.digest_of(link)
    old = link.version
    table = SeizureLink.__table__  # type: ignore[attr-defined]
    result = session.execute(
        table.update()
        .where(table.c.id == link.id, table.c.version == old)
        .values(**changed, version=old + 1, updated_at=utcnow())
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise PreconditionFailedError("seizure_link", old, "newer")
    session.refresh(link)
    audit.record_change(
        session=session, actor=actor, row=link, action=action, reason=reason, before_digest=before
    )
    return True


def _links_of(session: Session, seizure_id: uuid.UUID) -> list[SeizureLink]:
    statement = select(SeizureLink).where(
        or_(
            col(SeizureLink.seizure_a_id) == seizure_id, col(SeizureLink.seizure_b_id) == seizure_id
        )
    )
    return list(session.execute(statement).scalars())


# --------------------------------------------------------------------------- correlation


def _collect_keys(session: Session, seizure: Seizure, relations: SubstanceRelations) -> list[Key]:
    substances: list[str] = []
    profiles: list[dict[str, float]] = []
    items = session.execute(
        select(col(Item.id), col(Item.substance)).where(col(Item.seizure_id) == seizure.id)
    )
    item_ids = []
    for item_id, substance in items:
        item_ids.append(item_id)
        if substance:
            substances.append(substance)
    # The identification only: the raw spectra are large and not needed here.
    tests = select(
        col(FieldTest.verdict), col(FieldTest.main_substance), col(FieldTest.identification_json)
    ).where(col(FieldTest.seizure_id) == seizure.id)
    for verdict, main, ident in session.execute(tests):
        names, profile = _identification_substances(verdict, main, ident, relations)
        substances.extend(names)
        if profile:
            profiles.append(profile)
    if item_ids:
        lab = select(col(LabResult.substance)).where(col(LabResult.item_id).in_(item_ids))
        substances.extend(s for (s,) in session.execute(lab) if s)
    return seizure_keys(seizure, substances=substances, profiles=profiles, relations=relations)


def _lookup(
    session: Session, seizure: Seizure, key: str, window: timedelta | None = None
) -> list[LinkKey]:
    """Other seizures of the agency with ``key``; with a ``window``, the nearest in time.

    Windowed keys (route, precursor) are weak hints shared by many seizures: only the
    :data:`MAX_WEAK_MATCHES` closest in time count, found by one index range scan each
    side of the seizure's date.
    """
    base = select(LinkKey).where(
        col(LinkKey.agency_id) == seizure.agency_id,
        col(LinkKey.key) == key,
        col(LinkKey.seizure_id) != seizure.id,
    )
    if window is None:
        newest = base.order_by(col(LinkKey.at).desc()).limit(MAX_MATCHES_PER_KEY)
        return list(session.execute(newest).scalars())
    at = seizure.seized_at
    before = base.where(col(LinkKey.at) <= at, col(LinkKey.at) >= at - window)
    after = base.where(col(LinkKey.at) > at, col(LinkKey.at) <= at + window)
    rows = list(
        session.execute(before.order_by(col(LinkKey.at).desc()).limit(MAX_WEAK_MATCHES)).scalars()
    )
    rows += session.execute(after.order_by(col(LinkKey.at)).limit(MAX_WEAK_MATCHES)).scalars()
    rows.sort(key=lambda row: (abs(row.at - at), row.seizure_id))
    return rows[:MAX_WEAK_MATCHES]


def _substance(key: Key) -> str:
    """The canonical substance name of a ``substance:`` key (the key itself, not its detail)."""
    return key.key.removeprefix("substance:")


def _related(name: str, relations: SubstanceRelations) -> list[tuple[str, str]]:
    """``(precursor, drug)`` pairs that involve the substance ``name``."""
    pairs = [(name, drug) for drug in relations.drugs_of.get(name, ())]
    pairs += [(pre, name) for pre in relations.precursors_of.get(name, ())]
    return sorted(pairs)


def _keys_touched(keys: Iterable[Key], relations: SubstanceRelations) -> set[str]:
    """The keys a correlation writes or reads."""
    touched = set()
    for key in keys:
        touched.add(key.key)
        if key.kind == _SUBSTANCE:
            touched.update(
                f"substance:{n}" for pair in _related(_substance(key), relations) for n in pair
            )
    return touched


def _lock_keys(session: Session, agency_id: uuid.UUID, keys: set[str]) -> None:
    """Serialise correlations that share a key, until the transaction ends (PostgreSQL).

    Without it, two seizures sharing a reference and arriving at the same moment would each
    look for the other before it is committed, and never be linked. SQLite runs one write
    transaction at a time anyway. Locks are taken in one sorted statement: no deadlock
    between two correlations.
    """
    if not keys or session.get_bind().dialect.name != "postgresql":
        return
    ids = sorted({_lock_id(f"{agency_id}:{k}") for k in keys})
    session.execute(
        sql_text(
            "SELECT pg_advisory_xact_lock(:space, k) FROM unnest(CAST(:ids AS integer[])) AS k "
            "ORDER BY k"
        ),
        {"space": _LOCK_SPACE, "ids": ids},
    )


#: First half of the two-integer advisory lock keys (its own space: the audit chain's
#: single-bigint lock can never collide with it).
_LOCK_SPACE = 0x6C696E6B  # "link"


def _lock_id(text_key: str) -> int:
    return int.from_bytes(hashlib.sha256(text_key.encode()).digest()[:4], "big", signed=True)


def _candidates(
    session: Session, seizure: Seizure, keys: list[Key], relations: SubstanceRelations
) -> set[uuid.UUID]:
    """Other seizures sharing a key (or a precursor relation) with ``seizure``: one capped
    index query per key."""
    found: set[uuid.UUID] = set()
    for mine in keys:
        if mine.kind in _EXACT_KINDS or mine.kind == ReasonKind.CHEMICAL_PROFILE.value:
            found.update(row.seizure_id for row in _lookup(session, seizure, mine.key))
        elif mine.kind == ReasonKind.ROUTE.value:
            rows = _lookup(session, seizure, mine.key, ROUTE_WINDOW)
            found.update(row.seizure_id for row in rows)
        elif mine.kind == _SUBSTANCE:
            name = _substance(mine)
            for precursor, drug in _related(name, relations):
                other = drug if precursor == name else precursor
                rows = _lookup(session, seizure, f"substance:{other}", PRECURSOR_WINDOW)
                found.update(row.seizure_id for row in rows)
    return found


def pair_reasons(
    a: tuple[uuid.UUID, datetime, Sequence[Key]],
    b: tuple[uuid.UUID, datetime, Sequence[Key]],
    relations: SubstanceRelations,
) -> list[LinkReason]:
    """Every reason linking two seizures, each given as ``(id, seized_at, keys)`` (pure).

    Symmetric: the same reasons, worded the same, whichever seizure comes first.
    """
    (_, at_a, keys_a), (_, at_b, keys_b) = sorted((a, b), key=lambda s: s[0])
    apart = abs(at_a - at_b)
    theirs = {k.key: k for k in keys_b}
    reasons: list[LinkReason] = []
    for mine in keys_a:
        other = theirs.get(mine.key)
        if other is None:
            continue
        if mine.kind in _EXACT_KINDS:
            label = mine.kind.replace("_", " ")
            reasons.append(
                LinkReason(
                    kind=ReasonKind(mine.kind), detail=f"same {label}: {mine.detail}", key=mine.key
                )
            )
        elif mine.kind == ReasonKind.ROUTE.value and apart <= ROUTE_WINDOW:
            reasons.append(
                LinkReason(
                    kind=ReasonKind.ROUTE,
                    detail=f"same route {mine.detail}, {apart.days} days apart",
                    key=mine.key,
                )
            )
        elif mine.kind == ReasonKind.CHEMICAL_PROFILE.value:
            reason = _profile_reason(mine, other)
            if reason is not None:
                reasons.append(reason)
    if apart <= PRECURSOR_WINDOW:
        names_a = {_substance(k) for k in keys_a if k.kind == _SUBSTANCE}
        names_b = {_substance(k) for k in keys_b if k.kind == _SUBSTANCE}
        for name in sorted(names_a):
            for precursor, drug in _related(name, relations):
                if (precursor if drug == name else drug) in names_b:
                    reasons.append(
                        LinkReason(
                            kind=ReasonKind.PRECURSOR,
                            detail=f"{precursor} is a precursor of {drug}",
                            key=f"precursor:{precursor}>{drug}",
                        )
                    )
    return reasons


def _next_status(link: SeizureLink, reasons: list[dict[str, Any]]) -> LinkStatus:
    status = LinkStatus(link.status)
    if not reasons:
        return LinkStatus.WITHDRAWN if status == LinkStatus.SUGGESTED else status
    if status == LinkStatus.WITHDRAWN:
        return LinkStatus.SUGGESTED
    if status == LinkStatus.DISMISSED:
        old = {r["key"] for r in link.reasons or []}
        if any(r["key"] not in old for r in reasons):
            return LinkStatus.SUGGESTED  # new evidence: ask again
    return status


def _same_keys(stored: Sequence[Any], keys: Sequence[Key], at: datetime) -> bool:
    """Whether the stored index rows of a seizure are exactly ``keys`` at date ``at``."""
    fresh = sorted((k.kind, k.key, k.detail or "") for k in keys)
    old = sorted((row.kind, row.key, row.detail or "") for row in stored)
    return fresh == old and all(_as_utc(row.at) == _as_utc(at) for row in stored)


def _as_utc(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; the service stores UTC throughout.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def correlate_seizure(
    session: Session, seizure_id: uuid.UUID, *, actor: Principal | None = None
) -> CorrelationResult:
    """Re-index one seizure and create or update its suggested links, in the caller's transaction.

    ``actor`` defaults to the system acting for the seizure's agency (the link engine); a
    given actor must belong to that agency. Only seizures of the same agency are ever
    correlated (sharing between agencies comes later). The caller commits.

    Raises
    ------
    NotFoundError
        When the seizure does not exist or belongs to another agency than ``actor``'s.
    PreconditionFailedError
        When a link changed concurrently (retry).
    """
    seizure = session.get(Seizure, seizure_id)
    if seizure is None or (
        actor is not None and actor.role != SYSTEM_ROLE and actor.scope != seizure.agency_id
    ):
        raise NotFoundError("seizure", seizure_id)
    actor = actor or Principal(agency_id=seizure.agency_id, role=SYSTEM_ROLE)
    relations = library_relations()
    keys = _collect_keys(session, seizure, relations)
    stored = session.execute(
        select(LinkKey.kind, LinkKey.key, LinkKey.detail, LinkKey.at).where(
            col(LinkKey.seizure_id) == seizure.id
        )
    ).all()
    if stored and _same_keys(stored, keys, seizure.seized_at):
        # A pair's reasons depend only on both seizures' keys; when this seizure's keys are
        # unchanged, any change came from the other seizure, whose own correlation handled it.
        return CorrelationResult(
            seizure_id=seizure.id,
            keys=len(keys),
            candidates=0,
            links=list(_links_of(session, seizure.id)),
        )

    _lock_keys(session, seizure.agency_id, _keys_touched(keys, relations))
    session.execute(delete(LinkKey).where(col(LinkKey.seizure_id) == seizure.id))
    if keys:
        session.execute(
            insert(LinkKey),
            [
                {
                    "seizure_id": seizure.id,
                    "agency_id": seizure.agency_id,
                    "kind": k.kind,
                    "key": k.key,
                    "at": seizure.seized_at,
                    "detail": k.detail,
                }
                for k in keys
            ],
        )
    candidates = _candidates(session, seizure, keys, relations)
    result = CorrelationResult(seizure_id=seizure.id, keys=len(keys), candidates=len(candidates))
    existing = {
        (link.seizure_b_id if link.seizure_a_id == seizure.id else link.seizure_a_id): link
        for link in _links_of(session, seizure.id)
    }
    # Reasons of each pair from both seizures' full keys: exact, whatever the caps found.
    others = candidates | set(existing)
    their_keys: dict[uuid.UUID, tuple[datetime, list[Key]]] = {}
    if others:
        rows = session.execute(select(LinkKey).where(col(LinkKey.seizure_id).in_(others)))
        for row in rows.scalars():
            entry = their_keys.setdefault(row.seizure_id, (row.at, []))
            entry[1].append(Key(row.kind, row.key, row.detail or ""))
    mine = (seizure.id, seizure.seized_at, keys)
    for other in sorted(others):
        at, other_keys = their_keys.get(other, (seizure.seized_at, []))
        reasons = _reason_dicts(pair_reasons(mine, (other, at, other_keys), relations))
        strength = strength_of([LinkReason.model_validate(r) for r in reasons])
        link = existing.get(other)
        if link is None and not reasons:
            continue  # found by a key, but no reason holds (fractions too far apart)
        if link is None:
            a, b = sorted((seizure.id, other))
            link = SeizureLink(
                agency_id=seizure.agency_id,
                seizure_a_id=a,
                seizure_b_id=b,
                reasons=reasons,
                strength=strength,
            )
            session.add(link)
            session.flush()
            audit.record_change(session=session, actor=actor, row=link, action="suggest")
            result.created += 1
        else:
            status = _next_status(link, reasons)
            changes: dict[str, Any] = {"reasons": reasons, "strength": strength, "status": status}
            if status != link.status and status == LinkStatus.SUGGESTED:
                changes.update(decided_by_user_id=None, decided_at=None, decision_reason=None)
            if write_link(session, link, changes, actor=actor, action="recorrelate"):
                result.updated += 1
        result.links.append(link)
    return result
