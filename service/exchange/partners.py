"""Partner agencies: registration (admin), listing, keys; provenance and package listings.

A partner is registered by a local agency's admin with the partner's own agency id, name,
country and kind and its two public keys, as the partner's ``fieldscan exchange keys``
printed them (exchanged out of band, fingerprints compared by phone). Registering creates
the partner's :class:`~service.models.Agency` row with that same id when the instance does
not know the agency yet, so ``shared_with`` lists and imported records name the same
agency on every instance. Partners are per local agency: one agency's admin never
changes whom another local agency trusts.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import or_, select
from sqlmodel import Session, col

from service import crud
from service.errors import ConflictError, InvalidInputError, NotFoundError
from service.exchange.keys import AgencyKeys
from service.exchange.models import (
    ExchangeKeysPublic,
    ExchangePackage,
    ExchangePartner,
    ExchangePartnerCreate,
    ExchangePartnerPublic,
    ExchangePartnerUpdate,
    ExchangeProvenance,
    ExchangeProvenancePublic,
)
from service.exchange.package import encryption_public_key, fingerprint, signing_public_key
from service.models import Agency, CustodyEvent, FieldTest, Item, LabResult, Seizure, User
from service.principal import ADMINS, READERS, SYSTEM_ROLE, Principal
from service.sharing import can_read


def agency_keys(*, session: Session, actor: Principal, key_dir: Path) -> ExchangeKeysPublic:
    """The public exchange keys of the actor's agency (made on first use)."""
    if actor.role != SYSTEM_ROLE:
        actor.require(READERS, "read exchange keys")
    agency = session.get(Agency, actor.scope)
    if agency is None:
        raise NotFoundError("agency", actor.scope)
    keys = AgencyKeys.load_or_create(key_dir, agency.id)
    return ExchangeKeysPublic(
        agency_id=agency.id,
        name=agency.name,
        country=agency.country,
        kind=str(agency.kind),
        signing_key=keys.signing_public_hex,
        signing_key_fingerprint=keys.signing_fingerprint,
        encryption_key=keys.encryption_public_hex,
    )


def _public(partner: ExchangePartner, agency: Agency) -> ExchangePartnerPublic:
    return ExchangePartnerPublic(
        id=partner.id,
        partner_agency_id=partner.partner_agency_id,
        name=agency.name,
        country=agency.country,
        kind=str(agency.kind),
        signing_key=partner.signing_key,
        signing_key_fingerprint=partner.signing_key_fingerprint,
        encryption_key=partner.encryption_key,
        active=partner.active,
        note=partner.note,
        version=partner.version,
        created_at=partner.created_at,
    )


def register_partner(
    *, session: Session, actor: Principal, partner_in: ExchangePartnerCreate
) -> ExchangePartnerPublic:
    """Trust ``partner_in`` for the actor's agency; registering the same keys again is a no-op.

    Raises
    ------
    PermissionDeniedError
        Unless the actor is an admin (or the system, from the CLI).
    InvalidInputError
        For the agency itself, or keys that are not valid public keys.
    ConflictError
        When the id names a local agency of this instance, or an agency known here under
        another name, country or kind, or the partner is registered with other keys.
    """
    if actor.role != SYSTEM_ROLE:
        actor.require(ADMINS, "register exchange partners")
    local = actor.scope
    if partner_in.agency_id == local:
        raise InvalidInputError("agency_id", "an agency cannot be its own exchange partner")
    try:
        signing = signing_public_key(partner_in.signing_key)
    except ValueError as exc:
        raise InvalidInputError("signing_key", str(exc)) from None
    try:
        encryption_public_key(partner_in.encryption_key)
    except ValueError as exc:
        raise InvalidInputError("encryption_key", str(exc)) from None

    agency = session.get(Agency, partner_in.agency_id)
    if agency is None:
        clash = crud.get_agency_by_name(session=session, name=partner_in.name)
        if clash is not None:
            raise ConflictError(
                f"an agency named {partner_in.name!r} exists here with another id ({clash.id})"
            )
        agency = Agency(
            id=partner_in.agency_id,
            name=partner_in.name,
            country=partner_in.country,
            kind=partner_in.kind,
        )
        crud.add_record(session, agency, actor, reason="exchange partner registered")
    else:
        if session.scalars(
            select(col(User.id)).where(col(User.agency_id) == agency.id).limit(1)
        ).first():
            raise ConflictError(
                f"agency {agency.id} ({agency.name}) is a local agency of this instance, "
                "not a remote partner"
            )
        if (agency.name, agency.country, str(agency.kind)) != (
            partner_in.name,
            partner_in.country,
            partner_in.kind.value,
        ):
            raise ConflictError(
                f"agency {agency.id} is known here as {agency.name!r} ({agency.country}, "
                f"{agency.kind}); check the partner's details"
            )
    existing = session.scalars(
        select(ExchangePartner).where(
            col(ExchangePartner.agency_id) == local,
            col(ExchangePartner.partner_agency_id) == agency.id,
        )
    ).first()
    if existing is not None:
        if not existing.active:
            raise ConflictError(
                f"agency {agency.id} is a revoked partner: restore it (PATCH) to trust it again"
            )
        if (existing.signing_key, existing.encryption_key) == (
            partner_in.signing_key,
            partner_in.encryption_key,
        ):
            return _public(existing, agency)
        raise ConflictError(
            f"agency {agency.id} is already a partner with other keys "
            f"(signing key {existing.signing_key_fingerprint[:16]}…)"
        )
    partner = ExchangePartner(
        agency_id=local,
        partner_agency_id=agency.id,
        signing_key=partner_in.signing_key,
        signing_key_fingerprint=fingerprint(signing),
        encryption_key=partner_in.encryption_key,
        note=partner_in.note,
    )
    crud.add_record(session, partner, actor, reason="exchange partner registered")
    return _public(partner, agency)


def list_partners(*, session: Session, actor: Principal) -> list[ExchangePartnerPublic]:
    """The actor's agency's partners, by name."""
    if actor.role != SYSTEM_ROLE:
        actor.require(READERS, "list exchange partners")
    rows = session.execute(
        select(ExchangePartner, Agency)
        .join(Agency, col(Agency.id) == col(ExchangePartner.partner_agency_id))
        .where(col(ExchangePartner.agency_id) == actor.scope)
        .order_by(col(Agency.name))
    ).all()
    return [_public(partner, agency) for partner, agency in rows]


def update_partner(
    *,
    session: Session,
    actor: Principal,
    partner_agency_id: uuid.UUID,
    partner_in: ExchangePartnerUpdate,
    if_match: int,
) -> ExchangePartnerPublic:
    """Rotate a partner's keys or revoke (``active`` false) / restore it: a new audited version.

    Raises
    ------
    PermissionDeniedError
        Unless the actor is an admin (or the system).
    NotFoundError
        When the partner is not registered for the actor's agency.
    PreconditionFailedError
        When ``if_match`` is not the partner's current version.
    InvalidInputError
        For keys that are not valid public keys.
    """
    if actor.role != SYSTEM_ROLE:
        actor.require(ADMINS, "change exchange partners")
    partner = get_partner(
        session=session,
        agency_id=actor.scope,
        partner_agency_id=partner_agency_id,
        include_revoked=True,
    )
    crud.check_version(partner, if_match)
    changes = partner_in.model_dump(exclude_unset=True, exclude={"reason"})
    if changes.get("active") is None:
        changes.pop("active", None)
    for key in ("signing_key", "encryption_key"):
        if changes.get(key) is None:
            changes.pop(key, None)
    if "signing_key" in changes:
        try:
            changes["signing_key_fingerprint"] = fingerprint(
                signing_public_key(changes["signing_key"])
            )
        except ValueError as exc:
            raise InvalidInputError("signing_key", str(exc)) from None
    if "encryption_key" in changes:
        try:
            encryption_public_key(changes["encryption_key"])
        except ValueError as exc:
            raise InvalidInputError("encryption_key", str(exc)) from None
    crud.apply_changes(session, partner, changes, actor, partner_in.reason)
    agency = session.get(Agency, partner.partner_agency_id)
    assert agency is not None  # a foreign key
    return _public(partner, agency)


def get_partner(
    *,
    session: Session,
    agency_id: uuid.UUID,
    partner_agency_id: uuid.UUID,
    include_revoked: bool = False,
) -> ExchangePartner:
    """The partner ``agency_id`` registered; NotFound, or Conflict when revoked."""
    partner = session.scalars(
        select(ExchangePartner).where(
            col(ExchangePartner.agency_id) == agency_id,
            col(ExchangePartner.partner_agency_id) == partner_agency_id,
        )
    ).first()
    if partner is None:
        raise NotFoundError("exchange partner", partner_agency_id)
    if not partner.active and not include_revoked:
        raise ConflictError(f"exchange partner {partner_agency_id} is revoked")
    return partner


def partner_keys(*, session: Session, agency_id: uuid.UUID) -> dict[uuid.UUID, ExchangePartner]:
    """The partners ``agency_id`` registered (revoked ones too), by partner agency id."""
    rows = session.scalars(
        select(ExchangePartner).where(col(ExchangePartner.agency_id) == agency_id)
    ).all()
    return {row.partner_agency_id: row for row in rows}


def list_packages(*, session: Session, actor: Principal) -> Sequence[ExchangePackage]:
    """Packages the actor's agency issued or received, newest first."""
    actor.require(READERS, "list exchange packages")
    return session.scalars(
        select(ExchangePackage)
        .where(col(ExchangePackage.agency_id) == actor.scope)
        .order_by(col(ExchangePackage.created_at).desc())
    ).all()


def seizure_provenance(
    *, session: Session, actor: Principal, seizure_id: uuid.UUID
) -> list[ExchangeProvenancePublic]:
    """Where a seizure and its items, tests, custody events and lab results came from.

    Empty for a seizure recorded here. Visible to whoever may read the seizure.
    """
    actor.require(READERS, "read provenance")
    seizure = session.get(Seizure, seizure_id)
    if seizure is None or not can_read(seizure, actor):
        raise NotFoundError("seizure", seizure_id)
    items = select(col(Item.id)).where(col(Item.seizure_id) == seizure.id)
    ids = or_(
        col(ExchangeProvenance.entity_id) == seizure.id,
        col(ExchangeProvenance.entity_id).in_(items),
        col(ExchangeProvenance.entity_id).in_(
            select(col(FieldTest.id)).where(col(FieldTest.seizure_id) == seizure.id)
        ),
        col(ExchangeProvenance.entity_id).in_(
            select(col(CustodyEvent.id)).where(col(CustodyEvent.item_id).in_(items))
        ),
        col(ExchangeProvenance.entity_id).in_(
            select(col(LabResult.id)).where(col(LabResult.item_id).in_(items))
        ),
    )
    rows = session.execute(
        select(ExchangeProvenance, col(Agency.name))
        .join(Agency, col(Agency.id) == col(ExchangeProvenance.issuer_agency_id))
        .where(ids)
        .order_by(col(ExchangeProvenance.received_at), col(ExchangeProvenance.id))
    ).all()
    return [
        ExchangeProvenancePublic.model_validate({**row.model_dump(), "issuer_name": name})
        for row, name in rows
    ]
