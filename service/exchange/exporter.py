"""Export: the package of everything a local agency shares with one partner.

Selected are the issuing agency's own seizures with sharing ``all``, or ``partners`` naming
the recipient, with their items, field tests (raw spectra included), custody events and
laboratory results. Seizures at level ``own`` never leave, nor records of other agencies
(imported ones included: only their owner speaks for them). Every export is recorded as an
audited :class:`~service.exchange.models.ExchangePackage` row, so what left the agency,
when, for whom and by whose hand is part of the tamper-evident trail.

A package holds everything shared, or (``since``) the seizures that changed since a date,
each with all its records; the importer skips what it already has by record id and
version, so sending something again is harmless.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import ColumnElement, and_, exists, or_, select
from sqlmodel import Session, col

from service import crud
from service.exchange.keys import AgencyKeys
from service.exchange.models import ExchangeDirection, ExchangePackage
from service.exchange.package import (
    ExchangeRecord,
    Issuer,
    build_package,
    encrypt_package,
    encryption_public_key,
    fingerprint,
)
from service.exchange.partners import get_partner
from service.exchange.records import to_record
from service.models import Agency, CustodyEvent, FieldTest, Item, LabResult, Seizure
from service.principal import SYSTEM_ROLE, Principal
from service.sharing import SharingLevel, shared_with_agency

#: Who may send an agency's records to a partner.
EXPORTERS = frozenset({"investigator", "supervisor"})


@dataclass(frozen=True)
class ExportedPackage:
    """The file and what is in it."""

    data: bytes
    package_id: uuid.UUID
    recipient_id: uuid.UUID
    encrypted: bool
    counts: dict[str, int]

    @property
    def filename(self) -> str:
        return f"fieldscan-exchange-{self.package_id}.json"


def _changed_since(since: datetime) -> ColumnElement[bool]:
    """Seizures that, or any of whose records, were written at or after ``since``."""
    items = select(col(Item.id)).where(col(Item.seizure_id) == col(Seizure.id))
    return or_(
        col(Seizure.updated_at) >= since,
        exists().where(col(Item.seizure_id) == col(Seizure.id), col(Item.updated_at) >= since),
        exists().where(
            col(FieldTest.seizure_id) == col(Seizure.id), col(FieldTest.created_at) >= since
        ),
        exists().where(col(CustodyEvent.item_id).in_(items), col(CustodyEvent.created_at) >= since),
        exists().where(col(LabResult.item_id).in_(items), col(LabResult.created_at) >= since),
    )


def shareable_records(
    session: Session,
    *,
    issuer_id: uuid.UUID,
    recipient_id: uuid.UUID,
    since: datetime | None = None,
) -> list[ExchangeRecord]:
    """The records ``issuer_id`` shares with ``recipient_id``, parents before children.

    With ``since``, only seizures that changed (they or any of their records) since then,
    each whole: the recipient skips what it has, so a weekly package stays small.
    """
    seizures = select(col(Seizure.id)).where(
        col(Seizure.agency_id) == issuer_id,
        or_(
            col(Seizure.sharing) == SharingLevel.ALL.value,
            and_(
                col(Seizure.sharing) == SharingLevel.PARTNERS.value,
                col(Seizure.id).in_(shared_with_agency("seizure", recipient_id)),
            ),
        ),
    )
    if since is not None:
        seizures = seizures.where(_changed_since(since))
    items = select(col(Item.id)).where(
        col(Item.seizure_id).in_(seizures), col(Item.agency_id) == issuer_id
    )
    queries = (
        ("seizure", select(Seizure).where(col(Seizure.id).in_(seizures)).order_by(col(Seizure.id))),
        ("item", select(Item).where(col(Item.id).in_(items)).order_by(col(Item.id))),
        (
            "field_test",
            select(FieldTest)
            .where(col(FieldTest.item_id).in_(items), col(FieldTest.agency_id) == issuer_id)
            .order_by(col(FieldTest.id)),
        ),
        (
            "custody_event",
            select(CustodyEvent)
            .where(col(CustodyEvent.item_id).in_(items), col(CustodyEvent.agency_id) == issuer_id)
            .order_by(col(CustodyEvent.id)),
        ),
        (
            "lab_result",
            select(LabResult)
            .where(col(LabResult.item_id).in_(items), col(LabResult.agency_id) == issuer_id)
            .order_by(col(LabResult.id)),
        ),
    )
    records: list[ExchangeRecord] = []
    for entity_type, query in queries:
        records.extend(to_record(entity_type, row) for row in session.scalars(query))
    return records


def export_package(
    *,
    session: Session,
    actor: Principal,
    partner_agency_id: uuid.UUID,
    key_dir: Path,
    encrypt: bool = True,
    since: datetime | None = None,
) -> ExportedPackage:
    """Build, sign (and by default encrypt) the package for a registered partner.

    Raises
    ------
    PermissionDeniedError
        Unless an investigator or supervisor (or the system, from the CLI) asks.
    NotFoundError
        When the partner is not registered for the actor's agency.
    """
    if actor.role != SYSTEM_ROLE:
        actor.require(EXPORTERS, "export records to partner agencies")
    issuer_id = actor.scope
    partner = get_partner(session=session, agency_id=issuer_id, partner_agency_id=partner_agency_id)
    agency = session.get(Agency, issuer_id)
    assert agency is not None  # the actor's agency exists (users and the CLI name one)
    keys = AgencyKeys.load_or_create(key_dir, issuer_id)
    records = shareable_records(
        session, issuer_id=issuer_id, recipient_id=partner_agency_id, since=since
    )
    package_id = uuid.uuid4()
    built = build_package(
        issuer=Issuer(
            id=agency.id, name=agency.name, country=agency.country, kind=str(agency.kind)
        ),
        recipients=[partner_agency_id],
        records=records,
        signing_key=keys.signing,
        package_id=package_id,
    )
    data = built.data
    if encrypt:
        data = encrypt_package(
            data,
            recipient_id=partner_agency_id,
            recipient_key=encryption_public_key(partner.encryption_key),
        )
    counts = dict(Counter(r.type for r in records))
    receipt = ExchangePackage(
        package_id=package_id,
        direction=ExchangeDirection.EXPORT,
        agency_id=issuer_id,
        partner_agency_id=partner_agency_id,
        manifest_sha256=built.manifest_sha256,
        key_fingerprint=fingerprint(keys.signing.public_key()),
        encrypted=encrypt,
        record_count=len(records),
        summary={**counts, **({"since": since.isoformat()} if since else {})},
        user_id=actor.user_id,
    )
    crud.add_record(session, receipt, actor, reason=f"exchange package sent to {partner_agency_id}")
    return ExportedPackage(
        data=data,
        package_id=package_id,
        recipient_id=partner_agency_id,
        encrypted=encrypt,
        counts=counts,
    )
