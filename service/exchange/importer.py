"""Import: verify a partner's package and store its records, with their provenance.

The package is checked whole before anything is written (:func:`read_package`): signature
against the key the importing agency registered for the issuer, recipient, decryption,
record hashes. Any failure raises an :class:`~service.exchange.package.ExchangeError`
subclass and nothing is written.

Each record then gets one outcome, decided for all of them before the first write:

* ``imported`` -- a new record: stored with its original id, owned by the issuing agency
  (``agency_id`` = the partner's id), version 1 locally, audited by an exchange actor;
* ``updated`` -- a newer version (by the issuer's version number) of a record received
  before: a new local version, audited, with the changes;
* ``unchanged`` -- a newer issuer version whose exchanged fields are the same;
* ``skipped`` -- this version (or a newer one) was received before: nothing written, so
  importing a package twice changes nothing;
* ``rejected`` -- with a reason: invalid content, not the issuer's own record, a parent
  missing or rejected, or an id that collides with a record of another agency here.

Skipped and rejected records carry a stable code (:class:`~service.exchange.reasons.RecordReason`)
with its parameters, and the same in English (``detail``).

Updates are applied as the issuing agency made them: its own rules (four eyes on masses
and substances, custody approvals) were enforced on its home instance, and only it writes
its records. Local version numbers count this instance's versions (the audit trail needs
1..n); the issuer's number is kept in the provenance. Imported and updated seizures are
correlated on arrival exactly as new local ones (``crud.queue_correlation``). Shares of imported
seizures name only agencies known here; ``shared_with`` is stored as the issuer sent it.

Not carried (yet): attachments (photos), withdrawals (a seizure set back to ``own`` at
home stays here as last received), and the issuer's user and device ids (see
:mod:`service.exchange.records`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, SQLModel, col

from service import crud
from service.exchange.keys import AgencyKeys
from service.exchange.models import (
    ExchangeDirection,
    ExchangePackage,
    ExchangeProvenance,
    ImportReport,
    RecordOutcome,
)
from service.exchange.package import (
    RECORD_TYPES,
    ExchangeRecord,
    Package,
    UnknownSignerError,
    read_package,
    signing_public_key,
)
from service.exchange.partners import partner_keys
from service.exchange.reasons import RecordOutcomeKind as Outcome
from service.exchange.reasons import RecordReason
from service.exchange.records import (
    MODELS,
    RecordFieldsDifferError,
    RecordInvalidError,
    from_record,
)
from service.models import Agency, Seizure
from service.principal import SYSTEM_ROLE, Principal
from service.sharing import sync_shares

#: Who may import packages addressed to their agency.
IMPORTERS = frozenset({"investigator", "supervisor", "admin"})
#: Columns an update never changes (identity, bookkeeping).
_FIXED = frozenset({"id", "version", "agency_id", "created_at", "updated_at"})
#: Outcomes that leave a provenance row (and maybe a new version).
_WRITES = frozenset({Outcome.IMPORTED, Outcome.UPDATED, Outcome.UNCHANGED})
#: The parent column(s) each record type refers through.
_PARENT = {"item": ("seizure", "seizure_id"), "field_test": ("item", "item_id")}
_PARENT.update(custody_event=("item", "item_id"), lab_result=("item", "item_id"))


@dataclass
class _Plan:
    record: ExchangeRecord
    outcome: Outcome
    values: dict[str, Any] = field(default_factory=dict)
    row: SQLModel | None = None
    changes: dict[str, Any] = field(default_factory=dict)
    #: The seizure the record belongs to (to correlate after the writes).
    seizure_id: uuid.UUID | None = None
    #: Why it is skipped or rejected: the code, its parameters, the English sentence.
    reason: RecordReason | None = None
    params: dict[str, Any] = field(default_factory=dict)
    detail: str | None = None


@dataclass(frozen=True)
class _Why:
    """A skip's or rejection's reason, as the report gives it."""

    reason: RecordReason
    detail: str
    params: dict[str, Any] = field(default_factory=dict)


def _rejected(record: ExchangeRecord, why: _Why) -> _Plan:
    return _Plan(record, Outcome.REJECTED, reason=why.reason, params=why.params, detail=why.detail)


def import_package(
    *, session: Session, actor: Principal, data: bytes, key_dir: Path
) -> ImportReport:
    """Verify ``data`` and store its records for the actor's agency; the caller commits.

    Raises
    ------
    PermissionDeniedError
        Unless an investigator, supervisor or admin (or the system, from the CLI) imports.
    ExchangeError
        A subclass saying why the package is refused as a whole; nothing is written.
    """
    if actor.role != SYSTEM_ROLE:
        actor.require(IMPORTERS, "import exchange packages")
    recipient = actor.scope
    keys = AgencyKeys.load_or_create(key_dir, recipient)
    partners = partner_keys(session=session, agency_id=recipient)

    def signer(issuer_id: uuid.UUID) -> Any:
        partner = partners.get(issuer_id)
        if partner is not None and not partner.active:
            raise UnknownSignerError(
                f"agency {issuer_id} is no longer an exchange partner (revoked): "
                "its packages are refused",
                issuer_id=issuer_id,
                revoked=True,
            )
        return signing_public_key(partner.signing_key) if partner else None

    package = read_package(
        data, signer_key=signer, recipient=recipient, decryption_key=keys.encryption
    )
    manifest = package.manifest
    issuer_id = manifest.issuer.id
    issuer = session.get(Agency, issuer_id)
    issuer_name = issuer.name if issuer is not None else manifest.issuer.name
    plans = _plan(session, package, issuer_id)
    receipt = session.scalars(
        select(ExchangePackage).where(
            col(ExchangePackage.package_id) == manifest.package_id,
            col(ExchangePackage.direction) == ExchangeDirection.IMPORT,
            col(ExchangePackage.agency_id) == recipient,
        )
    ).first()
    report = ImportReport(
        package_id=manifest.package_id,
        issuer_agency_id=issuer_id,
        issuer_name=issuer_name,
        encrypted=package.encrypted,
        manifest_sha256=package.manifest_sha256,
        key_fingerprint=package.verified_key_fingerprint,
        first_receipt=receipt is None,
    )
    summary: dict[str, int] = {}
    for plan in plans:
        summary[plan.outcome.value] = summary.get(plan.outcome.value, 0) + 1
    writes = [p for p in plans if p.outcome in _WRITES]
    if receipt is not None and not writes:
        _fill(report, plans)
        return report  # the same package again: nothing to write
    # An exchange actor acting for the recipient, on behalf of the person importing.
    xactor = Principal(agency_id=recipient, role=SYSTEM_ROLE, user_id=actor.user_id)
    if receipt is None:
        receipt = ExchangePackage(
            package_id=manifest.package_id,
            direction=ExchangeDirection.IMPORT,
            agency_id=recipient,
            partner_agency_id=issuer_id,
            manifest_sha256=package.manifest_sha256,
            key_fingerprint=package.verified_key_fingerprint,
            encrypted=package.encrypted,
            record_count=len(package.records),
            summary=summary,
            user_id=actor.user_id,
        )
        crud.add_record(session, receipt, xactor, reason=f"exchange package from {issuer_name}")
    touched: set[uuid.UUID] = set()
    for plan in writes:
        record = plan.record
        reason = (
            f"received from {issuer_name} in exchange package {manifest.package_id} "
            f"(their version {record.version})"
        )
        local_version: int | None
        if plan.outcome == Outcome.IMPORTED:
            row = MODELS[record.type](**{**plan.values, "version": 1})
            crud.add_record(session, row, xactor, reason=reason)
            local_version = 1
            if record.type == "seizure":
                _sync_shares(session, row)  # type: ignore[arg-type]
        else:
            row = plan.row  # type: ignore[assignment]
            if plan.outcome == Outcome.UPDATED:
                crud.apply_changes(session, row, plan.changes, xactor, reason)
                if record.type == "seizure" and {"sharing", "shared_with"} & set(plan.changes):
                    _sync_shares(session, row)  # type: ignore[arg-type]
                local_version = row.version  # type: ignore[attr-defined]
            else:
                local_version = None
        plan.values["local_version"] = local_version
        session.add(
            ExchangeProvenance(
                entity_type=record.type,
                entity_id=record.id,
                remote_version=record.version,
                local_version=local_version,
                outcome=plan.outcome.value,
                exchange_package_id=receipt.id,
                package_id=manifest.package_id,
                issuer_agency_id=issuer_id,
                recipient_agency_id=recipient,
                key_fingerprint=package.verified_key_fingerprint,
                manifest_sha256=package.manifest_sha256,
                record_sha256=record.sha256,
            )
        )
        if plan.outcome != Outcome.UNCHANGED and plan.seizure_id is not None:
            touched.add(plan.seizure_id)
    session.flush()
    for seizure_id in sorted(touched, key=str):
        crud.queue_correlation(session, seizure_id)
    _fill(report, plans)
    return report


def _fill(report: ImportReport, plans: list[_Plan]) -> None:
    for plan in plans:
        setattr(report, plan.outcome, getattr(report, plan.outcome) + 1)
        report.records.append(
            RecordOutcome(
                type=plan.record.type,
                id=plan.record.id,
                remote_version=plan.record.version,
                outcome=plan.outcome,
                local_version=plan.values.get("local_version"),
                reason=plan.reason,
                detail=plan.detail,
                params=plan.params,
            )
        )


def _sync_shares(session: Session, seizure: Seizure) -> None:
    """Index the seizure's named partners that exist here (others cannot read it here anyway)."""
    known = [
        p for p in (str(x) for x in seizure.shared_with or []) if session.get(Agency, uuid.UUID(p))
    ]
    sync_shares(session, entity_type="seizure", row=seizure, partners=known)


def _last_remote_version(session: Session, entity_type: str, entity_id: uuid.UUID) -> int | None:
    value = session.execute(
        select(func.max(col(ExchangeProvenance.remote_version))).where(
            col(ExchangeProvenance.entity_type) == entity_type,
            col(ExchangeProvenance.entity_id) == entity_id,
        )
    ).scalar()
    return None if value is None else int(value)


def _plan(session: Session, package: Package, issuer_id: uuid.UUID) -> list[_Plan]:
    """Decide every record's outcome (nothing written)."""
    order = {t: n for n, t in enumerate(RECORD_TYPES)}
    records = sorted(package.records, key=lambda r: order[r.type])  # parents first
    accepted: dict[tuple[str, uuid.UUID], dict[str, Any]] = {}
    rejected: set[tuple[str, uuid.UUID]] = set()
    plans: list[_Plan] = []
    for record in records:
        plan = _plan_one(session, record, issuer_id, accepted, rejected)
        key = (record.type, record.id)
        if plan.outcome == Outcome.REJECTED:
            rejected.add(key)
        else:
            accepted[key] = plan.values
        plans.append(plan)
    return plans


def _plan_one(
    session: Session,
    record: ExchangeRecord,
    issuer_id: uuid.UUID,
    accepted: dict[tuple[str, uuid.UUID], dict[str, Any]],
    rejected: set[tuple[str, uuid.UUID]],
) -> _Plan:
    try:
        values = from_record(record)
    except RecordFieldsDifferError as exc:
        why = _Why(
            RecordReason.FIELDS_DIFFER,
            f"invalid record: {exc}",
            {"missing": exc.missing, "unexpected": exc.unexpected},
        )
        return _rejected(record, why)
    except RecordInvalidError as exc:
        params = {"field": exc.field} if exc.field else {}
        return _rejected(
            record, _Why(RecordReason.INVALID_CONTENT, f"invalid record: {exc}", params)
        )
    if values["agency_id"] != issuer_id:
        why = _Why(
            RecordReason.NOT_ISSUER_OWNED,
            f"belongs to agency {values['agency_id']}, not to the issuer: "
            "an agency only speaks for its own records",
            {"agency_id": str(values["agency_id"])},
        )
        return _rejected(record, why)
    seizure_id = values["id"] if record.type == "seizure" else values.get("seizure_id")
    if record.type in _PARENT:
        parent_type, column = _PARENT[record.type]
        parent = _parent(session, parent_type, values[column], issuer_id, accepted, rejected)
        if isinstance(parent, _Why):
            return _rejected(record, parent)
        if record.type == "field_test" and parent["seizure_id"] != values["seizure_id"]:
            why = _Why(
                RecordReason.SEIZURE_MISMATCH,
                "seizure_id differs from its item's seizure",
                {
                    "seizure_id": str(values["seizure_id"]),
                    "item_seizure_id": str(parent["seizure_id"]),
                },
            )
            return _rejected(record, why)
        seizure_id = parent["seizure_id"] if parent_type == "item" else parent["id"]
    model = MODELS[record.type]
    row = session.get(model, record.id)
    if row is None:
        return _Plan(record, Outcome.IMPORTED, values=values, seizure_id=seizure_id)
    if row.agency_id != issuer_id:  # type: ignore[attr-defined]
        why = _Why(
            RecordReason.UUID_COLLISION,
            f"its id collides with a {record.type} of another agency on this instance",
        )
        return _rejected(record, why)
    last = _last_remote_version(session, record.type, record.id)
    if last is None:
        why = _Why(
            RecordReason.NOT_FROM_EXCHANGE,
            f"a {record.type} with this id exists here but did not come by exchange",
        )
        return _rejected(record, why)
    if record.version <= last:
        if record.version == last:
            why = _Why(
                RecordReason.ALREADY_RECEIVED,
                f"version {record.version} already received",
                {"version": record.version},
            )
        else:
            why = _Why(
                RecordReason.OLDER_VERSION,
                f"version {record.version} is older than version {last} received before",
                {"version": record.version, "received_version": last},
            )
        return _Plan(
            record,
            Outcome.SKIPPED,
            values=values,
            row=row,
            seizure_id=seizure_id,
            reason=why.reason,
            params=why.params,
            detail=why.detail,
        )
    changes = {k: v for k, v in values.items() if k not in _FIXED and getattr(row, k) != v}
    return _Plan(
        record,
        Outcome.UPDATED if changes else Outcome.UNCHANGED,
        values=values,
        row=row,
        changes=changes,
        seizure_id=seizure_id,
    )


def _parent(
    session: Session,
    parent_type: str,
    parent_id: uuid.UUID,
    issuer_id: uuid.UUID,
    accepted: dict[tuple[str, uuid.UUID], dict[str, Any]],
    rejected: set[tuple[str, uuid.UUID]],
) -> dict[str, Any] | _Why:
    """The parent's values (from this package or stored), or why the child is refused."""
    key = (parent_type, parent_id)
    params = {"parent_type": parent_type, "parent_id": str(parent_id)}
    if key in rejected:
        return _Why(
            RecordReason.PARENT_REJECTED, f"its {parent_type} {parent_id} was rejected", params
        )
    if key in accepted:
        return accepted[key]
    row = session.get(MODELS[parent_type], parent_id)
    if row is None or row.agency_id != issuer_id:  # type: ignore[attr-defined]
        return _Why(
            RecordReason.MISSING_PARENT,
            f"its {parent_type} {parent_id} is neither in the package nor received before",
            params,
        )
    return {"id": row.id, "seizure_id": getattr(row, "seizure_id", None)}  # type: ignore[attr-defined]
