"""Tables and API schemas of the exchange between agencies (issue 8).

* :class:`ExchangePartner` -- a remote agency a local agency trusts: its public keys.
  The partner's :class:`~service.models.Agency` row carries the partner's own id (the id
  it has on its home instance), so ``shared_with`` ids mean the same on every instance.
* :class:`ExchangePackage` -- every package a local agency issued or received (audited).
* :class:`ExchangeProvenance` -- for each imported record version: which package, which
  signing agency and key, the manifest's hash, and when it arrived.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import field_validator
from sqlalchemy import JSON, Column, Index, Integer, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from service.core.types import BigIntPK, UtcDateTime, utcnow
from service.exchange.reasons import PackageRefusal, RecordOutcomeKind, RecordReason
from service.models import AgencyKind

if TYPE_CHECKING:
    from service.exchange.package import ExchangeError

_HEX64: dict[str, Any] = {"pattern": r"^[0-9a-f]{64}$"}


class ExchangePartner(SQLModel, table=True):
    """A partner agency whose packages ``agency_id`` accepts, and that it may send packages to."""

    __tablename__ = "exchange_partner"
    __table_args__ = (
        UniqueConstraint("agency_id", "partner_agency_id", name="uq_exchange_partner_pair"),
    )
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    #: The local agency that registered (trusts) the partner.
    agency_id: uuid.UUID = Field(foreign_key="agency.id", index=True)
    #: The partner agency's id on its home instance (its Agency row here has the same id).
    partner_agency_id: uuid.UUID = Field(foreign_key="agency.id")
    #: Ed25519 public key (hex) that signs the partner's manifests.
    signing_key: str = Field(sa_type=String(64))
    signing_key_fingerprint: str = Field(sa_type=String(64))
    #: X25519 public key (hex) packages for the partner are encrypted to.
    encryption_key: str = Field(sa_type=String(64))
    #: False once revoked: its packages are refused and nothing is exported to it.
    active: bool = True
    note: str | None = Field(default=None, sa_type=String(500))
    version: int = Field(default=1, sa_type=Integer)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


def _hex_key(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip().lower()
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise ValueError("a public key is 64 hex digits (32 bytes)")
    return value


class ExchangePartnerCreate(SQLModel):
    """A partner as its home instance describes it (``fieldscan exchange keys`` there)."""

    agency_id: uuid.UUID
    name: str = Field(min_length=1, max_length=200)
    country: str = Field(schema_extra={"pattern": r"^[A-Z]{2}$"})
    kind: AgencyKind
    signing_key: str = Field(schema_extra=_HEX64)
    encryption_key: str = Field(schema_extra=_HEX64)
    note: str | None = Field(default=None, max_length=500)

    @field_validator("signing_key", "encryption_key", mode="before")
    @classmethod
    def _key(cls, value: str) -> str | None:
        return _hex_key(value) if isinstance(value, str) else value


class ExchangePartnerUpdate(SQLModel):
    """New keys (rotation, or a compromised key), or revocation; ``reason`` is kept."""

    signing_key: str | None = None
    encryption_key: str | None = None
    active: bool | None = None
    note: str | None = Field(default=None, max_length=500)
    reason: str = Field(min_length=1, max_length=1000)

    @field_validator("signing_key", "encryption_key", mode="before")
    @classmethod
    def _key(cls, value: str | None) -> str | None:
        return _hex_key(value) if isinstance(value, str) else value


class ExchangePartnerPublic(SQLModel):
    id: uuid.UUID
    partner_agency_id: uuid.UUID
    name: str
    country: str
    kind: str
    signing_key: str
    signing_key_fingerprint: str
    encryption_key: str
    active: bool
    note: str | None
    version: int
    created_at: datetime


class ExchangeKeysPublic(SQLModel):
    """What a partner needs to register this agency (give it out of band)."""

    agency_id: uuid.UUID
    name: str
    country: str
    kind: str
    signing_key: str
    signing_key_fingerprint: str
    encryption_key: str


class ExchangeDirection:
    EXPORT = "export"
    IMPORT = "import"


class ExchangePackage(SQLModel, table=True):
    """A package issued (``export``) or received (``import``) by a local agency."""

    __tablename__ = "exchange_package"
    __table_args__ = (
        UniqueConstraint("package_id", "direction", "agency_id", name="uq_exchange_package"),
    )
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    #: The id in the package's manifest.
    package_id: uuid.UUID = Field(index=True)
    direction: str = Field(sa_type=String(8))
    #: The local agency: the issuer of an export, the recipient of an import.
    agency_id: uuid.UUID = Field(foreign_key="agency.id", index=True)
    #: The other side: the recipient of an export, the issuer of an import.
    partner_agency_id: uuid.UUID = Field(foreign_key="agency.id")
    manifest_sha256: str = Field(sa_type=String(64))
    #: Fingerprint of the Ed25519 key that signed the manifest.
    key_fingerprint: str = Field(sa_type=String(64))
    encrypted: bool = False
    record_count: int = Field(sa_type=Integer)
    #: Outcome counts (imported, updated, unchanged, skipped, rejected) or exported types.
    summary: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    user_id: uuid.UUID | None = Field(default=None, foreign_key="user.id")
    version: int = Field(default=1, sa_type=Integer)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class ExchangePackagePublic(SQLModel):
    id: uuid.UUID
    package_id: uuid.UUID
    direction: str
    agency_id: uuid.UUID
    partner_agency_id: uuid.UUID
    manifest_sha256: str
    key_fingerprint: str
    encrypted: bool
    record_count: int
    summary: dict[str, Any]
    user_id: uuid.UUID | None
    created_at: datetime


class ExchangeProvenance(SQLModel, table=True):
    """Where one imported version of a record came from (append-only)."""

    __tablename__ = "exchange_provenance"
    __table_args__ = (Index("ix_exchange_provenance_entity", "entity_type", "entity_id"),)
    id: int | None = Field(default=None, primary_key=True, sa_type=BigIntPK)
    entity_type: str = Field(sa_type=String(32))
    entity_id: uuid.UUID
    #: The record's version on its home instance, as the package gave it.
    remote_version: int = Field(sa_type=Integer)
    #: The local version the import made (None when the content was already there).
    local_version: int | None = Field(default=None, sa_type=Integer)
    #: ``imported`` (new record), ``updated`` (new local version) or ``unchanged``.
    outcome: str = Field(sa_type=String(16))
    #: The receipt (:class:`ExchangePackage` row) and the manifest's package id.
    exchange_package_id: uuid.UUID = Field(foreign_key="exchange_package.id", index=True)
    package_id: uuid.UUID
    #: The agency that signed the package (and said what the record holds).
    issuer_agency_id: uuid.UUID = Field(foreign_key="agency.id")
    #: The local agency that received it.
    recipient_agency_id: uuid.UUID = Field(foreign_key="agency.id")
    key_fingerprint: str = Field(sa_type=String(64))
    manifest_sha256: str = Field(sa_type=String(64))
    record_sha256: str = Field(sa_type=String(64))
    received_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class ExchangeProvenancePublic(SQLModel):
    entity_type: str
    entity_id: uuid.UUID
    remote_version: int
    local_version: int | None
    outcome: str
    package_id: uuid.UUID
    issuer_agency_id: uuid.UUID
    issuer_name: str | None = None
    recipient_agency_id: uuid.UUID
    key_fingerprint: str
    manifest_sha256: str
    record_sha256: str
    received_at: datetime


class ExportRequest(SQLModel):
    partner_agency_id: uuid.UUID
    #: Encrypt to the partner's X25519 key (on by default: packages travel by mail, USB...).
    encrypt: bool = True
    #: Only seizures that changed (they or their records) since then; all when unset.
    since: datetime | None = None


class RecordOutcome(SQLModel):
    """What became of one record; skipped and rejected ones say why, as a code."""

    type: str
    id: uuid.UUID
    remote_version: int
    outcome: RecordOutcomeKind
    local_version: int | None = None
    #: Why it was skipped or rejected (stable code); None for the other outcomes.
    reason: RecordReason | None = None
    #: The same in English, for people reading the JSON; programs use ``reason``.
    detail: str | None = None
    #: The reason's parameters (ids as text, versions as integers; see ``RecordReason``).
    params: dict[str, Any] = Field(default_factory=dict)


class ExchangeRefusal(SQLModel):
    """The 422 answer to a refused package: nothing was written."""

    #: Why, in English, for people; programs use ``reason``.
    detail: str
    reason: PackageRefusal
    #: The reason's parameters (see ``PackageRefusal``), e.g. ``issuer_id``.
    params: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def of(cls, exc: ExchangeError) -> ExchangeRefusal:
        """The refusal of ``exc`` (the API's 422 body, the CLI's ``--json`` line)."""
        return cls.model_validate(
            {"detail": exc.message, "reason": exc.reason, "params": exc.params}
        )


class ImportReport(SQLModel):
    package_id: uuid.UUID
    issuer_agency_id: uuid.UUID
    issuer_name: str
    encrypted: bool
    manifest_sha256: str
    key_fingerprint: str
    #: False when this agency had received the very same package before.
    first_receipt: bool
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    rejected: int = 0
    records: list[RecordOutcome] = Field(default_factory=list)
