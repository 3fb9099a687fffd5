"""Correlation of one seizure against the indexed attribute keys of every seizure it may
be linked to: its agency's own, and those of other agencies shared with it or able to read it.

:func:`correlate_seizure` runs for a seizure after it (or one of its items, field tests or
laboratory results) is written: the write path queues it (:mod:`.worker`) and a worker
correlates it after the commit. It updates that seizure's :class:`LinkKey` rows (one per
key and audience) and spectral fingerprints, then asks the index in one statement about
the keys and spectra that are new or changed since its last correlation (every key, when
its sharing or date changed), each key's answer capped, and recomputes the reasons of
the pairs found and of its existing links; so the work depends on how much changed and
how many seizures share those keys, never on how many seizures exist. The reasons found
become a :class:`SeizureLink` per agency that owns one seizure of the pair and may read
the other, written and audited like every other record; a pair across two agencies also
raises a :class:`LinkAlert` for each of them.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import (
    Connection,
    Integer,
    String,
    Uuid,
    bindparam,
    delete,
    insert,
    literal,
    or_,
    select,
)
from sqlalchemy import text as sql_text
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.sql.selectable import TextualSelect
from sqlmodel import Session, col

from service import audit
from service.core.types import UtcDateTime, utcnow
from service.errors import NotFoundError, PreconditionFailedError
from service.linking import spectral
from service.linking.models import (
    EVERYONE,
    LinkAlert,
    LinkKey,
    LinkReason,
    LinkSpectrum,
    LinkStatus,
    ReasonKind,
    SeizureLink,
)
from service.linking.precursors import SubstanceRelations, library_relations
from service.models import VERSIONED, FieldTest, Item, LabResult, Seizure, Verdict
from service.principal import SYSTEM_ROLE, Principal
from service.sharing import SharingLevel

# Alerts are versioned records too (audit verification checks each row's newest version);
# service.models cannot name them itself (it is imported by this package's models).
VERSIONED["link_alert"] = LinkAlert

#: How much one reason of each kind says on its own; reasons combine as a noisy-OR.
WEIGHTS: dict[ReasonKind, float] = {
    ReasonKind.AIR_WAYBILL: 0.9,
    ReasonKind.CONTAINER: 0.85,
    ReasonKind.TRACKING_NUMBER: 0.9,
    ReasonKind.PERSON: 0.7,
    ReasonKind.COMPANY: 0.5,
    ReasonKind.CHEMICAL_PROFILE: 0.45,
    ReasonKind.RAW_SPECTRUM: 0.4,
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
#: SQLite: the index lookup's compound SELECT is sent in chunks of this many parts (it
#: allows 500 parts in one).
_LOOKUP_CHUNK = 120
#: Spectral band keys: at most this many seizures per band (newest first), and of those
#: found, the ones sharing the most bands are verified on their stored spectra.
MAX_BAND_MATCHES = 10
MAX_SPECTRAL_CANDIDATES = 50

# Key kinds that are not reasons themselves: substances feed precursor relations, spectral
# bands find candidates whose stored spectra are then compared.
_SUBSTANCE = "substance"
_SPECTRUM_BAND = "spectrum_band"
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


@dataclass(frozen=True)
class SpectrumRef:
    """One field test's comparable spectrum (see :mod:`.spectral`)."""

    field_test_id: uuid.UUID
    kind: str
    vector: np.ndarray[Any, np.dtype[np.float64]]


@dataclass
class CorrelationResult:
    """What one correlation did: the seizure's links now, and how much work it took."""

    seizure_id: uuid.UUID
    keys: int
    candidates: int
    created: int = 0
    updated: int = 0
    alerts: int = 0
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
    spectra: Iterable[spectral.Fingerprint] = (),
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
    for print_ in spectra:
        for band in print_.band_keys():
            add(_SPECTRUM_BAND, band, print_.kind)
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


# --------------------------------------------------------------------------- pair reasons


def _spectrum_reason(
    mine: Sequence[SpectrumRef], theirs: Sequence[SpectrumRef]
) -> LinkReason | None:
    """The most similar pair of spectra of one kind, if at or above the threshold."""
    best: tuple[float, SpectrumRef, SpectrumRef] | None = None
    for kind in sorted({r.kind for r in mine} & {r.kind for r in theirs}):
        left = [r for r in mine if r.kind == kind]
        right = [r for r in theirs if r.kind == kind]
        found = spectral.best_similarity([r.vector for r in left], [r.vector for r in right])
        if found is not None and (best is None or found[0] > best[0]):
            best = (found[0], left[found[1]], right[found[2]])
    if best is None or best[0] < spectral.SIMILARITY_THRESHOLD:
        return None
    similarity, a, b = best
    return LinkReason(
        kind=ReasonKind.RAW_SPECTRUM,
        detail=f"highly similar raw spectra ({a.kind}): correlation {similarity:.3f}",
        key=f"raw_spectrum:{a.field_test_id}>{b.field_test_id}",
    )


def pair_reasons(
    a: tuple[uuid.UUID, datetime, Sequence[Key]],
    b: tuple[uuid.UUID, datetime, Sequence[Key]],
    relations: SubstanceRelations,
    spectra: Mapping[uuid.UUID, Sequence[SpectrumRef]] | None = None,
) -> list[LinkReason]:
    """Every reason linking two seizures, each given as ``(id, seized_at, keys)`` (pure).

    ``spectra`` maps a seizure id to its field tests' comparable spectra. Symmetric: the
    same reasons, worded the same, whichever seizure comes first.
    """
    (id_a, at_a, keys_a), (id_b, at_b, keys_b) = sorted((a, b), key=lambda s: s[0])
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
    if spectra:
        reason = _spectrum_reason(spectra.get(id_a, ()), spectra.get(id_b, ()))
        if reason is not None:
            reasons.append(reason)
    return reasons


def redacted_reasons(
    reasons: Iterable[dict[str, Any]], own_keys: Iterable[Key]
) -> list[dict[str, Any]]:
    """Reasons as the owner of one seizure may see them without reading the other seizure.

    Only what it already knows stays: its own value of a shared reference, person, company
    or route, and the kind of every other reason (no fractions, dates, similarity or the
    other seizure's substances).
    """
    own = {k.key: k for k in own_keys}
    shown: list[LinkReason] = []
    for reason in reasons:
        kind = ReasonKind(reason["kind"])
        key = str(reason["key"])
        mine = own.get(key)
        if kind.value in _EXACT_KINDS:
            label = kind.value.replace("_", " ")
            detail = f"same {label}: {mine.detail}" if mine else f"same {label}"
        elif kind == ReasonKind.ROUTE:
            detail = f"same route {mine.detail}" if mine else "same route"
        elif kind == ReasonKind.CHEMICAL_PROFILE:
            detail = "same main substance and cutting agents, fractions within tolerance"
        elif kind == ReasonKind.RAW_SPECTRUM:
            detail, key = "highly similar raw spectra", "raw_spectrum"
        else:
            detail, key = "precursor and drug of one another", "precursor"
        shown.append(LinkReason(kind=kind, detail=detail, key=key))
    return _reason_dicts(shown)


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
    """Every agency's link rows of the seizure."""
    statement = select(SeizureLink).where(
        or_(
            col(SeizureLink.seizure_a_id) == seizure_id, col(SeizureLink.seizure_b_id) == seizure_id
        )
    )
    return list(session.execute(statement).scalars())


# --------------------------------------------------------------------------- who reads what


def reads(agency_id: uuid.UUID, seizure: Any) -> bool:
    """Whether ``agency_id`` may read ``seizure`` (any object with ``agency_id``, ``sharing``
    and ``shared_with``): its own, shared with all, or shared with it by name."""
    if seizure.agency_id == agency_id or seizure.sharing == SharingLevel.ALL:
        return True
    partners = {str(p) for p in seizure.shared_with or []}
    return seizure.sharing == SharingLevel.PARTNERS and str(agency_id) in partners


def audiences(seizure: Any) -> list[uuid.UUID]:
    """The ``LinkKey.audience_id`` values of a seizure's keys (see :class:`LinkKey`)."""
    if seizure.sharing == SharingLevel.ALL:
        return [EVERYONE]
    found = {seizure.agency_id}
    if seizure.sharing == SharingLevel.PARTNERS:
        found.update(uuid.UUID(str(p)) for p in seizure.shared_with or [])
    return sorted(found)


def _scopes(seizure: Any) -> list[uuid.UUID | None]:
    """Audiences whose keys a correlation of ``seizure`` reads (None: every key).

    The owner's and everyone's: seizures the owner may read. The partners': seizures whose
    owner may read this one (a partner's own seizures carry its audience). A seizure shared
    with all may be read by every owner, so every key counts.
    """
    if seizure.sharing == SharingLevel.ALL:
        return [None]
    return [*sorted(set(audiences(seizure)) | {EVERYONE})]


# --------------------------------------------------------------------------- correlation


def _fingerprints(
    session: Session, seizure_id: uuid.UUID, tests: Sequence[tuple[uuid.UUID, str, str]]
) -> _Prints:
    """Fingerprints of the seizure's field tests ``(id, kind, spectrum digest)``: stored
    ones reused, new spectra computed.

    A stored fingerprint is reused while the test's spectrum digest is unchanged, so a
    re-correlation reads no raw spectrum.
    """
    stored = {
        row.field_test_id: row
        for row in session.execute(
            select(
                col(LinkSpectrum.field_test_id),
                col(LinkSpectrum.kind),
                col(LinkSpectrum.spectrum_sha256),
                col(LinkSpectrum.vector),
                col(LinkSpectrum.bands),
            ).where(col(LinkSpectrum.seizure_id) == seizure_id)
        )
    }
    current = {t[0] for t in tests}
    stale = [test_id for test_id in stored if test_id not in current]
    fresh: list[dict[str, Any]] = []
    found = _Prints(changed=bool(stale))
    found.stored_bands = {
        (spectral.band_key(row.kind, i, int(bits, 16)), row.kind)
        for row in stored.values()
        if row.bands
        for i, bits in enumerate(row.bands.split(","))
    }

    def reusable(test_id: uuid.UUID, kind: str, digest: str) -> bool:
        row = stored.get(test_id)
        return row is not None and row.spectrum_sha256 == digest and row.kind == kind

    # The raw spectra to fingerprint, in one query (a sync batch brings many at once).
    wanted = [test_id for test_id, kind, digest in tests if not reusable(test_id, kind, digest)]
    raw = (
        {
            row[0]: (row[1], row[2])
            for row in session.execute(
                select(
                    col(FieldTest.id), col(FieldTest.axis_f64le), col(FieldTest.intensities_f64le)
                ).where(col(FieldTest.id).in_(wanted))
            )
        }
        if wanted
        else {}
    )
    for test_id, kind, digest in tests:
        row = stored.get(test_id)
        if reusable(test_id, kind, digest):
            assert row is not None
            if row.vector is None:
                continue
            bands = tuple(int(h, 16) for h in row.bands.split(","))
            vector = spectral.unpack(row.vector)
        else:
            axis, values = raw[test_id]
            computed = spectral.fingerprint(
                kind, np.frombuffer(axis, dtype="<f8"), np.frombuffer(values, dtype="<f8")
            )
            if row is not None:
                stale.append(test_id)
            packed = spectral.pack(computed.vector) if computed else None
            fresh.append(
                {
                    "field_test_id": test_id,
                    "seizure_id": seizure_id,
                    "kind": kind,
                    "spectrum_sha256": digest,
                    "vector": packed,
                    "bands": ",".join(f"{b:x}" for b in computed.bands) if computed else "",
                }
            )
            if computed is None or packed is None:
                continue
            bands, vector = computed.bands, spectral.unpack(packed)  # as the others read it
            found.new.add(test_id)
        found.prints.append(spectral.Fingerprint(kind=kind, vector=vector, bands=bands))
        found.refs.append(SpectrumRef(field_test_id=test_id, kind=kind, vector=vector))
    if stale:
        session.execute(delete(LinkSpectrum).where(col(LinkSpectrum.field_test_id).in_(stale)))
    if fresh:
        session.execute(insert(LinkSpectrum), fresh)
    found.changed = found.changed or bool(fresh)
    return found


@dataclass
class _Prints:
    """A seizure's comparable spectra: fingerprints and references, in the same order."""

    prints: list[spectral.Fingerprint] = field(default_factory=list)
    refs: list[SpectrumRef] = field(default_factory=list)
    #: Field tests whose fingerprint was computed now (new or changed spectra).
    new: set[uuid.UUID] = field(default_factory=set)
    #: Whether any stored fingerprint was added, replaced or removed.
    changed: bool = False
    #: The band keys of the fingerprints as stored before (``(key, spectrum kind)``): the
    #: seizure's indexed band keys, known without reading its many band index rows.
    stored_bands: set[tuple[str, str]] = field(default_factory=set)

    def banded(self, only_new: bool = False) -> list[tuple[SpectrumRef, list[str]]]:
        """Each spectrum with its band keys (``only_new``: those computed now)."""
        return [
            (ref, print_.band_keys())
            for ref, print_ in zip(self.refs, self.prints, strict=True)
            if not only_new or ref.field_test_id in self.new
        ]


def _collect_keys(
    session: Session, seizure: Seizure, relations: SubstanceRelations
) -> tuple[list[Key], _Prints]:
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
    # The identification only: raw spectra are read by _fingerprints, and only when new.
    tests = select(
        col(FieldTest.id),
        col(FieldTest.spectrum_kind),
        col(FieldTest.spectrum_sha256),
        col(FieldTest.verdict),
        col(FieldTest.main_substance),
        col(FieldTest.identification_json),
    ).where(col(FieldTest.seizure_id) == seizure.id)
    spectra: list[tuple[uuid.UUID, str, str]] = []
    for test_id, kind, digest, verdict, main, ident in session.execute(
        tests.order_by(col(FieldTest.id))
    ):
        spectra.append((test_id, kind, digest))
        names, profile = _identification_substances(verdict, main, ident, relations)
        substances.extend(names)
        if profile:
            profiles.append(profile)
    if item_ids:
        lab = select(col(LabResult.substance)).where(col(LabResult.item_id).in_(item_ids))
        substances.extend(s for (s,) in session.execute(lab) if s)
    prints = _fingerprints(session, seizure.id, spectra)
    keys = seizure_keys(
        seizure,
        substances=substances,
        profiles=profiles,
        relations=relations,
        spectra=prints.prints,
    )
    return keys, prints


@dataclass(frozen=True)
class _Wanted:
    """One index question: seizures with ``key``; newest ``cap``, or the ``cap`` nearest in
    time within ``window``."""

    key: str
    window: timedelta | None
    cap: int


def _lookup_sql(
    seizure: Any, wanted: Sequence[_Wanted], first: int
) -> tuple[list[str], list[BindParameter[Any]]]:
    """SQL parts (one index range scan each, with its own limit) and their parameters.

    Written as text, so a statement of a given shape is compiled once and reused: building
    it with SQLAlchemy constructs cost more than running it.
    """
    params: list[BindParameter[Any]] = [bindparam("me", seizure.id, type_=Uuid())]
    scopes = _scopes(seizure)
    scope_sql: list[str] = []
    for n, scope in enumerate(scopes):
        if scope is None:
            scope_sql.append("")
        else:
            params.append(bindparam(f"s{n}", scope, type_=Uuid()))
            scope_sql.append(f" AND audience_id = :s{n}")
    at = seizure.seized_at
    windowed = any(w.window is not None for w in wanted)
    if windowed:
        params.append(bindparam("at", at, type_=UtcDateTime()))
    parts: list[str] = []
    for offset, question in enumerate(wanted):
        i = first + offset
        params.append(bindparam(f"k{i}", question.key, type_=String()))
        base = f"FROM link_key WHERE key = :k{i} AND seizure_id <> :me"
        ranges: list[tuple[str, str]] = []
        if question.window is None:
            ranges.append(("", "at DESC"))
        else:
            params.append(bindparam(f"lo{i}", at - question.window, type_=UtcDateTime()))
            params.append(bindparam(f"hi{i}", at + question.window, type_=UtcDateTime()))
            ranges.append((f" AND at <= :at AND at >= :lo{i}", "at DESC"))
            ranges.append((f" AND at > :at AND at <= :hi{i}", "at"))
        for in_scope in scope_sql:
            for where, order in ranges:
                inner = (
                    f"SELECT seizure_id, at {base}{in_scope}{where} "
                    f"ORDER BY {order} LIMIT {int(question.cap)}"
                )
                parts.append(f"SELECT seizure_id, at, {i} AS q FROM ({inner}) AS t{len(parts)}")
    return parts, params


def _lookup(
    session: Session, seizure: Any, wanted: Sequence[_Wanted]
) -> dict[int, list[tuple[uuid.UUID, datetime]]]:
    """Answers to every index question: ``{question index: [(seizure id, at), ...]}``.

    Each range is an index range scan with its own limit (PostgreSQL: ``(audience_id,
    key, at)``, or ``(key, at)`` for a seizure shared with all), so a key shared by
    millions of seizures costs no more than ``cap`` rows.
    """
    found: dict[int, list[tuple[uuid.UUID, datetime]]] = {}
    if not wanted:
        return found
    for statement in _statements(seizure, wanted, session.get_bind().dialect.name):
        for seizure_id, at, q in session.execute(statement):
            found.setdefault(int(q), []).append((seizure_id, _as_utc(at)))
    return found


#: PostgreSQL: every question in one statement of fixed text (prepared once, whatever the
#: number of questions), the questions as arrays, one lateral pair of limited index range
#: scans per question (and audience): before the date, newest first (the only range of a
#: question without a window), and after it, oldest first. (Bounds written as row
#: comparisons on the whole index tuple looked safer but are not: PostgreSQL then stops a
#: backward scan only at the end of the audience, scanning every other key's rows.)
_PG_LOOKUP = """
SELECT t.seizure_id, t.at, q.i - 1 AS q
FROM unnest(CAST(:keys AS varchar[]), CAST(:caps AS integer[]),
            CAST(:los AS timestamptz[]), CAST(:tops AS timestamptz[]),
            CAST(:his AS timestamptz[]))
     WITH ORDINALITY AS q(key, cap, lo, top, hi, i)
{scopes}CROSS JOIN LATERAL (
    (SELECT seizure_id, at FROM link_key
     WHERE key = q.key{audience} AND seizure_id <> :me
       AND at <= COALESCE(q.top, 'infinity') AND at >= COALESCE(q.lo, '-infinity')
     ORDER BY at DESC LIMIT q.cap)
    UNION ALL
    (SELECT seizure_id, at FROM link_key
     WHERE q.hi IS NOT NULL AND key = q.key{audience} AND seizure_id <> :me
       AND at > q.top AND at <= q.hi
     ORDER BY at LIMIT q.cap)
) AS t
"""
# Which index serves a range is the planner's choice, by the table's statistics (with them,
# the audience index for a scoped question: its range is narrower); bench_linking prints it.
_PG_SCOPED = _PG_LOOKUP.format(  # index (audience_id, key, at)
    scopes="CROSS JOIN unnest(CAST(:scopes AS uuid[])) AS s(audience)\n",
    audience=" AND audience_id = s.audience",
)
_PG_EVERY_KEY = _PG_LOOKUP.format(scopes="", audience="")  # index (key, at)


def _pg_statement(seizure: Any, wanted: Sequence[_Wanted]) -> TextualSelect:
    """:data:`_PG_LOOKUP` for ``seizure`` with the questions as its array parameters."""
    at = seizure.seized_at
    windows = [w.window for w in wanted]
    scopes = _scopes(seizure)
    params: dict[str, Any] = {
        "me": seizure.id,
        "keys": [w.key for w in wanted],
        "caps": [int(w.cap) for w in wanted],
        "los": [None if w is None else at - w for w in windows],
        "tops": [None if w is None else at for w in windows],
        "his": [None if w is None else at + w for w in windows],
    }
    text = _PG_EVERY_KEY
    if scopes != [None]:
        text, params["scopes"] = _PG_SCOPED, scopes
    return (
        sql_text(text)
        .bindparams(**params)
        .columns(seizure_id=Uuid(), at=UtcDateTime(), q=Integer())
    )


def _statements(seizure: Any, wanted: Sequence[_Wanted], dialect: str) -> list[TextualSelect]:
    """The lookup statements for ``wanted`` (columns ``seizure_id``, ``at`` and ``q``, the
    question's index): one on PostgreSQL, else as few as SQLite's limit on compound
    SELECTs allows."""
    if dialect == "postgresql":
        return [_pg_statement(seizure, wanted)]
    per_question = len(_scopes(seizure)) * 2
    step = max(1, _LOOKUP_CHUNK // per_question)
    statements = []
    for first in range(0, len(wanted), step):
        parts, params = _lookup_sql(seizure, wanted[first : first + step], first)
        statements.append(
            sql_text(" UNION ALL ".join(parts))
            .bindparams(*params)
            .columns(seizure_id=Uuid(), at=UtcDateTime(), q=Integer())
        )
    return statements


def explain_lookups(
    conn: Connection,
    seizure: Any,
    keys: Sequence[Key],
    relations: SubstanceRelations,
    *,
    analyze: bool = False,
) -> list[str]:
    """Query plans of the index lookups :func:`correlate_seizure` sends for ``seizure``
    (its id, agency, sharing and date count) with ``keys``: one text per statement.

    ``EXPLAIN`` on PostgreSQL (``analyze``: ``EXPLAIN (ANALYZE, BUFFERS)``, which runs
    them), ``EXPLAIN QUERY PLAN`` on SQLite. For benchmarks and diagnostics.
    """
    wanted, _ = _questions(keys, relations)
    postgres = conn.dialect.name == "postgresql"
    prefix = "EXPLAIN QUERY PLAN "
    if postgres:
        prefix = "EXPLAIN (ANALYZE, BUFFERS) " if analyze else "EXPLAIN "
    plans = []
    for statement in _statements(seizure, wanted, conn.dialect.name):
        if postgres:  # arrays have no literal form: sent as parameters
            compiled = statement.compile(dialect=conn.dialect)
            rows = conn.exec_driver_sql(prefix + str(compiled), compiled.params).all()
        else:
            sql = statement.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
            rows = conn.exec_driver_sql(prefix + str(sql)).all()
        plans.append("\n".join(str(row[0] if postgres else row[-1]) for row in rows))
    return plans


_INFO_COLUMNS = (
    col(Seizure.id),
    col(Seizure.agency_id),
    col(Seizure.sharing),
    col(Seizure.shared_with),
    col(Seizure.seized_at),
)


def _seizure_info(session: Session, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Any]:
    """Owner, sharing and date of seizures (columns only: no ORM rows)."""
    wanted = sorted(set(ids))
    found: dict[uuid.UUID, Any] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        rows = session.execute(select(*_INFO_COLUMNS).where(col(Seizure.id).in_(chunk)))
        found.update({row.id: row for row in rows})
    return found


def _verified_spectra(
    session: Session, proposals: Sequence[tuple[SpectrumRef, Sequence[uuid.UUID]]]
) -> set[uuid.UUID]:
    """The seizures proposed for one of my spectra that have a stored spectrum highly
    similar to that spectrum."""
    ids = sorted({sid for _, proposed in proposals for sid in proposed})
    if not ids:
        return set()
    theirs = _stored_spectra(session, ids)
    return {
        sid
        for mine, proposed in proposals
        for sid in proposed
        if sid in theirs and _spectrum_reason([mine], theirs[sid]) is not None
    }


def _questions(
    keys: Sequence[Key], relations: SubstanceRelations
) -> tuple[list[_Wanted], list[str]]:
    """The index questions for ``keys``, and what each answers: ``exact`` (a shared
    reference or profile), ``band`` (a spectral band: proposes only) or ``weak`` (a route or
    a precursor relation, nearest in time within a window)."""
    wanted: list[_Wanted] = []
    kinds: list[str] = []
    for mine in keys:
        if mine.kind in _EXACT_KINDS or mine.kind == ReasonKind.CHEMICAL_PROFILE.value:
            wanted.append(_Wanted(mine.key, None, MAX_MATCHES_PER_KEY))
            kinds.append("exact")
        elif mine.kind == _SPECTRUM_BAND:
            wanted.append(_Wanted(mine.key, None, MAX_BAND_MATCHES))
            kinds.append("band")
        elif mine.kind == ReasonKind.ROUTE.value:
            wanted.append(_Wanted(mine.key, ROUTE_WINDOW, MAX_WEAK_MATCHES))
            kinds.append("weak")
        elif mine.kind == _SUBSTANCE:
            name = _substance(mine)
            for precursor, drug in _related(name, relations):
                other = drug if precursor == name else precursor
                wanted.append(_Wanted(f"substance:{other}", PRECURSOR_WINDOW, MAX_WEAK_MATCHES))
                kinds.append("weak")
    return wanted, kinds


def _candidates(
    session: Session,
    seizure: Seizure,
    keys: Sequence[Key],
    relations: SubstanceRelations,
    spectra: Sequence[tuple[SpectrumRef, Sequence[str]]] = (),
) -> tuple[set[uuid.UUID], dict[uuid.UUID, Any]]:
    """Other seizures sharing one of ``keys`` (or a precursor relation), or with a spectrum
    highly similar to one of ``spectra`` (each with its band keys), that either owner may
    read: the index questions in one statement, each capped.

    Spectral bands only propose: for each spectrum, the seizures sharing the most of its
    bands are verified on their stored spectra against it before they count. Each key and
    each spectrum finds its candidates on its own, so a correlation may ask about only
    the keys and spectra that are new (:func:`correlate_seizure`).
    """
    asked = [k for k in keys if k.kind != _SPECTRUM_BAND]
    asked += [Key(_SPECTRUM_BAND, b, "") for b in sorted({b for _, bs in spectra for b in bs})]
    wanted, kinds = _questions(asked, relations)
    answers = _lookup(session, seizure, wanted)
    band_index = {w.key: i for i, w in enumerate(wanted) if kinds[i] == "band"}
    proposals: list[tuple[SpectrumRef, list[uuid.UUID]]] = []
    for ref, bands in spectra:
        shared_bands: dict[uuid.UUID, int] = {}
        for band in set(bands):
            for sid in {sid for sid, _ in answers.get(band_index[band], ())}:
                shared_bands[sid] = shared_bands.get(sid, 0) + 1
        proposed = sorted(shared_bands, key=lambda sid: (-shared_bands[sid], sid))
        proposals.append((ref, proposed[:MAX_SPECTRAL_CANDIDATES]))
    verified = _verified_spectra(session, proposals)
    ids = {sid for i, rows in answers.items() if kinds[i] != "band" for sid, _ in rows}
    info = _seizure_info(session, ids | verified)
    allowed = {
        sid
        for sid, row in info.items()
        if reads(seizure.agency_id, row) or reads(row.agency_id, seizure)
    }
    found = verified & allowed
    at = _as_utc(seizure.seized_at)
    for index, question in enumerate(wanted):
        if kinds[index] == "band":
            continue
        hits = dict(sorted(answers.get(index, ())))  # one (id, at) per seizure
        rows = [(sid, when) for sid, when in hits.items() if sid in allowed]
        if kinds[index] == "weak":
            rows.sort(key=lambda r: (abs(r[1] - at), r[0]))
        else:
            rows.sort(key=lambda r: (-r[1].timestamp(), r[0]))
        found.update(sid for sid, _ in rows[: question.cap])
    return found, {sid: info[sid] for sid in allowed}


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


def _lock_keys(session: Session, keys: set[str]) -> None:
    """Serialise correlations that share a key, until the transaction ends (PostgreSQL).

    Without it, two seizures sharing a reference and arriving at the same moment would each
    look for the other before it is committed, and never be linked. Keys are locked across
    agencies, as seizures of two agencies may be linked. SQLite runs one write transaction
    at a time anyway. Locks are taken in one sorted statement: no deadlock between two
    correlations.
    """
    if not keys or session.get_bind().dialect.name != "postgresql":
        return
    ids = sorted({_lock_id(k) for k in keys})
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


def _same_frame(stored: Sequence[Any], audience: Sequence[uuid.UUID], at: datetime) -> bool:
    """Whether the stored index rows of a seizure have exactly ``audience`` (for each key)
    and the date ``at``: what decides who may read its keys and its time windows."""
    by_key: dict[str, set[str]] = {}
    for row in stored:
        by_key.setdefault(row.key, set()).add(str(row.audience_id))
    readers = {str(a) for a in audience}
    return all(found == readers for found in by_key.values()) and all(
        _as_utc(row.at) == _as_utc(at) for row in stored
    )


def _as_utc(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; the service stores UTC throughout.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _system(agency_id: uuid.UUID) -> Principal:
    return Principal(agency_id=agency_id, role=SYSTEM_ROLE)


def _their_keys(
    session: Session, others: set[uuid.UUID], relevant: set[str]
) -> tuple[dict[uuid.UUID, tuple[datetime, list[Key]]], dict[uuid.UUID, list[SpectrumRef]]]:
    """Index keys among ``relevant`` and comparable spectra of other seizures (each key
    once, not per audience).

    A pair's reasons only ever read the keys both seizures share and the substances
    related to one another (see :func:`pair_reasons`): ``relevant`` is this seizure's keys
    and their related substances, so linked seizures' other keys are not transferred.
    """
    wanted_keys = sorted(relevant)
    keys: dict[uuid.UUID, tuple[datetime, dict[str, Key]]] = {}
    wanted = sorted(others)
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        rows = session.execute(
            select(
                col(LinkKey.seizure_id),
                col(LinkKey.at),
                col(LinkKey.kind),
                col(LinkKey.key),
                col(LinkKey.detail),
            ).where(col(LinkKey.seizure_id).in_(chunk), col(LinkKey.key).in_(wanted_keys))
        )
        for seizure_id, at, kind, key, detail in rows:
            entry = keys.setdefault(seizure_id, (_as_utc(at), {}))
            entry[1].setdefault(key, Key(kind, key, detail or ""))
    found = {s: (at, list(k.values())) for s, (at, k) in keys.items()}
    return found, _stored_spectra(session, others)


#: PostgreSQL: each seizure's stored vectors of one kind as one value, in field test order
#: (linked seizures may hold hundreds of spectra: a row each costs more than the data).
_PG_SPECTRA = sql_text(
    "SELECT seizure_id, kind, array_agg(field_test_id ORDER BY field_test_id), "
    "string_agg(vector, ''::bytea ORDER BY field_test_id) FROM link_spectrum "
    "WHERE seizure_id = ANY(CAST(:ids AS uuid[])) AND vector IS NOT NULL "
    "GROUP BY seizure_id, kind"
)


def _stored_spectra(
    session: Session, ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, list[SpectrumRef]]:
    """The stored comparable spectra of seizures ``ids``, each seizure's in field test order."""
    found: dict[uuid.UUID, list[SpectrumRef]] = {}
    wanted = sorted(set(ids))
    postgres = session.get_bind().dialect.name == "postgresql"
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        if postgres:
            for seizure_id, kind, tests, packed in session.connection().execute(
                _PG_SPECTRA, {"ids": chunk}
            ):
                vectors = spectral.unpack_many(packed)
                found.setdefault(seizure_id, []).extend(
                    SpectrumRef(field_test_id=t, kind=kind, vector=v)
                    for t, v in zip(tests, vectors, strict=True)
                )
            continue
        rows = session.execute(
            select(
                col(LinkSpectrum.seizure_id),
                col(LinkSpectrum.field_test_id),
                col(LinkSpectrum.kind),
                col(LinkSpectrum.vector),
            ).where(col(LinkSpectrum.seizure_id).in_(chunk), col(LinkSpectrum.vector).is_not(None))
        )
        for seizure_id, test_id, kind, vector in rows:
            found.setdefault(seizure_id, []).append(
                SpectrumRef(field_test_id=test_id, kind=kind, vector=spectral.unpack(vector))
            )
    for refs in found.values():
        refs.sort(key=lambda ref: ref.field_test_id)
    return found


def correlate_seizure(
    session: Session, seizure_id: uuid.UUID, *, actor: Principal | None = None
) -> CorrelationResult:
    """Re-index one seizure and create or update its suggested links, in the caller's transaction.

    Incremental: only keys and spectra that are new or changed since the stored index rows
    are looked up (all of them when the seizure's sharing or date changed, or it has no
    rows yet), which gives the same links as looking up every key (each key and spectrum
    finds its candidates on its own, and every existing link is recomputed).

    ``actor`` defaults to the system acting for the seizure's agency (the link engine); a
    given actor must belong to that agency. Candidates are the seizures the seizure's
    agency may read, and those whose agency may read this seizure; each agency that owns
    one side and may read the other gets its own link row. The caller commits.

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
    relations = library_relations()
    keys, prints = _collect_keys(session, seizure, relations)
    refs = prints.refs
    audience = audiences(seizure)
    # The band index rows (a dozen per spectrum) are not read: the stored fingerprints
    # name them, and they are written with the other rows, in the same frame.
    stored = session.execute(
        select(
            col(LinkKey.kind),
            col(LinkKey.key),
            col(LinkKey.detail),
            col(LinkKey.at),
            col(LinkKey.audience_id),
        ).where(col(LinkKey.seizure_id) == seizure.id, col(LinkKey.kind) != _SPECTRUM_BAND)
    ).all()
    if not stored and prints.stored_bands:  # only band rows: their frame, one row each
        stored = session.execute(
            select(literal("").label("key"), col(LinkKey.at), col(LinkKey.audience_id))
            .where(col(LinkKey.seizure_id) == seizure.id)
            .distinct()
        ).all()
    old = {(row.kind, row.key, row.detail or "") for row in stored if row.key}
    old |= {(_SPECTRUM_BAND, key, kind) for key, kind in prints.stored_bands}
    new = {(k.kind, k.key, k.detail or "") for k in keys}
    # Incremental when who reads the keys and the date are as stored (each key and each
    # spectrum finds its candidates on its own, see _candidates): only keys and spectra
    # that are new or changed are looked up, only index rows that changed are written.
    # Candidates of the other keys were found when those were new; they are linked now
    # (each existing link's reasons are recomputed below), or had no reason, which only a
    # change of a key of either seizure can give them, found then by that key's lookup.
    incremental = bool(stored) and _same_frame(stored, audience, seizure.seized_at)
    if incremental and old == new and not prints.changed:
        # A pair's reasons depend only on both seizures' keys and spectra, and who reads
        # them only on both sharings (the audience is in the keys): when this seizure's are
        # unchanged, any change came from the other seizure, whose own correlation handled it.
        return CorrelationResult(
            seizure_id=seizure.id,
            keys=len(keys),
            candidates=0,
            links=list(_links_of(session, seizure.id)),
        )
    if incremental:
        asked = [k for k in keys if (k.kind, k.key, k.detail or "") not in old]
        banded = prints.banded(only_new=True)
        stale = sorted({key for _, key, _ in old - new})
        for start in range(0, len(stale), 500):
            session.execute(
                delete(LinkKey).where(
                    col(LinkKey.seizure_id) == seizure.id,
                    col(LinkKey.key).in_(stale[start : start + 500]),
                )
            )
        written = asked
    else:
        asked, banded = keys, prints.banded()
        session.execute(delete(LinkKey).where(col(LinkKey.seizure_id) == seizure.id))
        written = keys
    # Locks: the keys this correlation indexes anew or looks up (see _lock_keys).
    looked_up = [*asked, *(Key(_SPECTRUM_BAND, b, "") for _, bands in banded for b in bands)]
    _lock_keys(session, _keys_touched(looked_up, relations))
    if written:
        _index(session, seizure, written, audience)
    candidates, info = _candidates(session, seizure, asked, relations, banded)
    result = CorrelationResult(seizure_id=seizure.id, keys=len(keys), candidates=len(candidates))
    existing: dict[tuple[uuid.UUID, uuid.UUID], SeizureLink] = {
        (
            link.agency_id,
            link.seizure_b_id if link.seizure_a_id == seizure.id else link.seizure_a_id,
        ): link
        for link in _links_of(session, seizure.id)
    }
    # Reasons of each pair from both seizures' full keys: exact, whatever the caps found.
    others = candidates | {other for _, other in existing}
    missing = others - set(info)
    if missing:
        info.update(_seizure_info(session, missing))
    reasons_read = _keys_touched([k for k in keys if k.kind != _SPECTRUM_BAND], relations)
    their_keys, their_spectra = _their_keys(session, others, reasons_read)
    spectra = {**their_spectra, seizure.id: refs}
    mine = (seizure.id, _as_utc(seizure.seized_at), keys)
    fresh: list[SeizureLink] = []
    alerts: list[LinkAlert] = []
    for other in sorted(others):
        row = info.get(other)
        if row is None:
            continue
        at, other_keys = their_keys.get(other, (_as_utc(row.seized_at), []))
        reasons = _reason_dicts(
            pair_reasons(mine, (other, at, other_keys), relations, spectra=spectra)
        )
        strength = strength_of([LinkReason.model_validate(r) for r in reasons])
        # The agencies that own one side and may read the other see the link.
        viewers = {
            a for a in (seizure.agency_id, row.agency_id) if reads(a, seizure) and reads(a, row)
        }
        known = {agency for agency, o in existing if o == other}
        new_rows: dict[uuid.UUID, SeizureLink] = {}
        for agency in sorted(viewers | known):
            link = existing.get((agency, other))
            shown = reasons if agency in viewers else []
            if link is None and not shown:
                continue  # found by a key, but no reason holds (fractions too far apart)
            if link is None:
                a, b = sorted((seizure.id, other))
                now = utcnow()
                link = SeizureLink(
                    id=uuid.uuid4(),
                    agency_id=agency,
                    seizure_a_id=a,
                    seizure_b_id=b,
                    reasons=shown,
                    strength=strength,
                    status=LinkStatus.SUGGESTED,
                    version=1,
                    created_at=now,
                    updated_at=now,
                )
                fresh.append(link)
                result.created += 1
                new_rows[agency] = link
            else:
                status = _next_status(link, shown)
                changes: dict[str, Any] = {
                    "reasons": shown,
                    "strength": strength if shown else 0.0,
                    "status": status,
                }
                if status != link.status and status == LinkStatus.SUGGESTED:
                    changes.update(decided_by_user_id=None, decided_at=None, decision_reason=None)
                if write_link(
                    session, link, changes, actor=actor or _system(agency), action="recorrelate"
                ):
                    result.updated += 1
            result.links.append(link)
        if new_rows and row.agency_id != seizure.agency_id:
            alerts += _alerts_for(
                session,
                pair=((seizure, keys), (row, other_keys)),
                reasons=reasons,
                strength=strength,
                links=new_rows,
            )
    _insert_audited(session, fresh, "suggest")
    _insert_audited(session, alerts, "alert")
    result.alerts = len(alerts)
    return result


#: PostgreSQL: a seizure's new index rows in one statement, whatever their number (a sync
#: batch brings a dozen band keys per spectrum), rather than one executed row each.
_PG_INDEX = sql_text(
    "INSERT INTO link_key (seizure_id, agency_id, audience_id, kind, key, at, detail) "
    "SELECT :seizure_id, :agency_id, a, k, key, :at, d FROM unnest("
    "CAST(:audiences AS uuid[]), CAST(:kinds AS varchar[]), CAST(:keys AS varchar[]), "
    "CAST(:details AS text[])) AS t(a, k, key, d)"
).bindparams(
    bindparam("seizure_id", type_=Uuid()),
    bindparam("agency_id", type_=Uuid()),
    bindparam("at", type_=UtcDateTime()),
)


def _index(
    session: Session, seizure: Any, keys: Sequence[Key], audience: Sequence[uuid.UUID]
) -> None:
    """Write the index rows of ``keys``, one per key and audience."""
    rows = [(reader, k) for k in keys for reader in audience]
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            _PG_INDEX,
            {
                "seizure_id": seizure.id,
                "agency_id": seizure.agency_id,
                "at": seizure.seized_at,
                "audiences": [reader for reader, _ in rows],
                "kinds": [k.kind for _, k in rows],
                "keys": [k.key for _, k in rows],
                "details": [k.detail for _, k in rows],
            },
        )
        return
    session.execute(
        insert(LinkKey),
        [
            {
                "seizure_id": seizure.id,
                "agency_id": seizure.agency_id,
                "audience_id": reader,
                "kind": k.kind,
                "key": k.key,
                "at": seizure.seized_at,
                "detail": k.detail,
            }
            for reader, k in rows
        ],
    )


def _insert_audited(session: Session, rows: Sequence[SeizureLink | LinkAlert], action: str) -> None:
    """New rows in one multi-row insert, each with its version and audit event."""
    if not rows:
        return
    table = type(rows[0]).__table__  # type: ignore[union-attr]
    values = [{c.key: getattr(row, c.key) for c in table.columns} for row in rows]
    session.execute(insert(table), values)
    for row, value in zip(rows, values, strict=True):
        audit.record_values(
            session=session,
            actor=_system(row.agency_id),
            table=table,
            values=value,
            action=action,
        )


def _alerts_for(
    session: Session,
    *,
    pair: tuple[tuple[Any, Sequence[Key]], tuple[Any, Sequence[Key]]],
    reasons: list[dict[str, Any]],
    strength: float,
    links: Mapping[uuid.UUID, SeizureLink],
) -> list[LinkAlert]:
    """One alert for each of the two agencies of a newly linked pair (once per pair).

    An agency that may not read the other seizure learns that a seizure of the other
    agency is linked to its own, and why in terms of what it already knows.
    """
    raised: list[LinkAlert] = []
    for (own, own_keys), (other, _) in (pair, pair[::-1]):
        agency = own.agency_id
        already = session.execute(
            select(col(LinkAlert.id)).where(
                col(LinkAlert.agency_id) == agency,
                col(LinkAlert.seizure_id) == own.id,
                col(LinkAlert.other_seizure_id) == other.id,
            )
        ).first()
        if already is not None:
            continue
        full = reads(agency, other)
        link = links.get(agency)
        now = utcnow()
        alert = LinkAlert(
            id=uuid.uuid4(),
            agency_id=agency,
            seizure_id=own.id,
            other_agency_id=other.agency_id,
            other_seizure_id=other.id,
            link_id=link.id if link is not None and full else None,
            reasons=reasons if full else redacted_reasons(reasons, own_keys),
            strength=strength,
            version=1,
            created_at=now,
            updated_at=now,
        )
        raised.append(alert)
    return raised
