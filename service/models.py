"""Data model: SQLModel families Base / Create / Update / table / Public per record.

Every record table carries ``agency_id`` (isolation) and ``version`` (optimistic
concurrency; each version is also kept in :class:`RecordVersion`). Enumerations are
stored as short strings, not database enum types, so adding a value needs no migration.
"""

from __future__ import annotations

import enum
import json
import uuid
from datetime import datetime
from typing import Any

import numpy as np
from pydantic import PrivateAttr, field_validator, model_validator
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

from service.core.types import BigIntPK, UtcDateTime, utcnow
from service.linking.models import SeizureLink  # versioned like every record
from service.sharing import SharingLevel

#: The most points a field spectrum may have.
MAX_SPECTRUM_POINTS = 65_536

_COUNTRY = r"^[A-Z]{2}$"  # ISO 3166-1 alpha-2, as UNODC and INCB forms use
_FINITE: dict[str, Any] = {"allow_inf_nan": False}  # JSON parsers accept NaN; we do not
_COUNTRY_RULE: dict[str, Any] = {"pattern": _COUNTRY}


# --------------------------------------------------------------------------- enumerations


class AgencyKind(enum.StrEnum):
    CUSTOMS = "customs"
    POLICE = "police"
    ANTI_NARCOTICS = "anti_narcotics"
    PROSECUTION = "prosecution"
    LABORATORY = "laboratory"


class Role(enum.StrEnum):
    OFFICER = "officer"
    SUPERVISOR = "supervisor"
    INVESTIGATOR = "investigator"
    ANALYST = "analyst"
    ADMIN = "admin"


class TransportMode(enum.StrEnum):
    AIR = "air"
    SEA = "sea"
    ROAD = "road"
    RAIL = "rail"
    POSTAL = "postal"
    COURIER = "courier"


class IncidentType(enum.StrEnum):
    """INCB PICS/IONICS incident types; a plain seizure is the default."""

    SEIZURE = "seizure"
    STOPPED_SHIPMENT = "stopped_shipment"
    SUSPICIOUS_ORDER = "suspicious_order"
    DIVERSION_ATTEMPT = "diversion_attempt"
    ILLICIT_LABORATORY = "illicit_laboratory"
    THEFT = "theft"


class SeizureStatus(enum.StrEnum):
    OPEN = "open"
    UNDER_REVIEW = "under_review"
    AWAITING_LAB = "awaiting_lab"
    LAB_CONFIRMED = "lab_confirmed"
    CLOSED = "closed"


class MassUnit(enum.StrEnum):
    MG = "mg"
    G = "g"
    KG = "kg"
    ML = "ml"
    L = "l"


#: Grams per unit, for comparing masses; volumes are not comparable to masses.
GRAMS_PER_UNIT: dict[MassUnit, float] = {MassUnit.MG: 1e-3, MassUnit.G: 1.0, MassUnit.KG: 1e3}


class Verdict(enum.StrEnum):
    """The matcher's verdicts (``spectra`` identify JSON)."""

    IDENTIFIED = "identified"
    MIXTURE = "mixture"
    INCONCLUSIVE = "inconclusive"
    NO_MATCH = "no_match"


class SpectrumKindName(enum.StrEnum):
    RAMAN = "raman"
    IR_ABSORBANCE = "ir_absorbance"
    NIR = "nir"


class CustodyKind(enum.StrEnum):
    SEALED = "sealed"
    HANDED_OVER = "handed_over"
    TRANSFERRED_TO_LAB = "transferred_to_lab"
    RECEIVED = "received"
    STORED = "stored"
    SAMPLED = "sampled"
    DESTROYED = "destroyed"


class LabMethod(enum.StrEnum):
    GC_MS = "gc_ms"
    LC_MS = "lc_ms"
    FTIR = "ftir"
    RAMAN = "raman"
    NMR = "nmr"
    HPLC = "hplc"
    OTHER = "other"


class ApprovalStatus(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


def _id_field() -> Any:
    return Field(default_factory=uuid.uuid4, primary_key=True)


def _ts_field(**kw: Any) -> Any:
    return Field(default_factory=utcnow, sa_type=UtcDateTime, **kw)


# --------------------------------------------------------------------------- agency


class AgencyBase(SQLModel):
    name: str = Field(min_length=1, max_length=200, sa_type=String(200), unique=True)
    country: str = Field(schema_extra=_COUNTRY_RULE, sa_type=String(2))
    kind: AgencyKind = Field(sa_type=String(32))


class AgencyCreate(AgencyBase):
    pass


class Agency(AgencyBase, table=True):
    id: uuid.UUID = _id_field()
    version: int = Field(default=1, sa_type=Integer)
    created_at: datetime = _ts_field()


class AgencyPublic(AgencyBase):
    id: uuid.UUID
    version: int
    created_at: datetime


# --------------------------------------------------------------------------- user


class UserBase(SQLModel):
    username: str = Field(
        min_length=3,
        max_length=100,
        schema_extra={"pattern": r"^[A-Za-z0-9_.@-]+$"},
        sa_type=String(100),
        unique=True,
    )
    full_name: str | None = Field(default=None, max_length=200, sa_type=String(200))
    role: Role = Field(sa_type=String(16))
    is_active: bool = True


class UserCreate(UserBase):
    id: uuid.UUID | None = None
    password: str = Field(min_length=8, max_length=200)


class UserUpdate(SQLModel):
    full_name: str | None = Field(default=None, max_length=200)
    role: Role | None = None
    is_active: bool | None = None
    password: str | None = Field(default=None, min_length=8, max_length=200)
    reason: str = Field(min_length=1, max_length=1000)


class User(UserBase, table=True):
    id: uuid.UUID = _id_field()
    agency_id: uuid.UUID = Field(foreign_key="agency.id", index=True)
    hashed_password: str = Field(sa_type=String(200))
    version: int = Field(default=1, sa_type=Integer)
    created_at: datetime = _ts_field()


class UserPublic(UserBase):
    id: uuid.UUID
    agency_id: uuid.UUID
    version: int
    created_at: datetime


# --------------------------------------------------------------------------- device


class DeviceBase(SQLModel):
    model: str = Field(min_length=1, max_length=100, sa_type=String(100))
    serial: str = Field(min_length=1, max_length=100, sa_type=String(100))
    firmware: str | None = Field(default=None, max_length=100, sa_type=String(100))
    #: Wavelength calibration as the device reports it (coefficients, laser wavelength...).
    calibration: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))


class DeviceCreate(DeviceBase):
    id: uuid.UUID | None = None


class Device(DeviceBase, table=True):
    __table_args__ = (UniqueConstraint("agency_id", "serial", name="uq_device_agency_serial"),)
    id: uuid.UUID = _id_field()
    agency_id: uuid.UUID = Field(foreign_key="agency.id", index=True)
    version: int = Field(default=1, sa_type=Integer)
    created_at: datetime = _ts_field()


class DevicePublic(DeviceBase):
    id: uuid.UUID
    agency_id: uuid.UUID
    version: int
    created_at: datetime


class DeviceKey(SQLModel, table=True):
    """An API key of a field station; only its SHA-256 is stored."""

    __tablename__ = "device_key"
    id: uuid.UUID = _id_field()
    device_id: uuid.UUID = Field(foreign_key="device.id", index=True)
    agency_id: uuid.UUID = Field(foreign_key="agency.id", index=True)
    key_hash: str = Field(sa_type=String(64), unique=True)
    label: str | None = Field(default=None, sa_type=String(100))
    revoked_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    version: int = Field(default=1, sa_type=Integer)
    created_at: datetime = _ts_field()


class DeviceKeyPublic(SQLModel):
    id: uuid.UUID
    device_id: uuid.UUID
    label: str | None
    revoked_at: datetime | None
    created_at: datetime


class DeviceKeyCreated(DeviceKeyPublic):
    """Returned once, when a key is made: ``key`` is never shown again."""

    key: str


class DeviceKeyCreate(SQLModel):
    label: str | None = Field(default=None, max_length=100)


# --------------------------------------------------------------------------- seizure


class PersonRef(SQLModel):
    """A person involved, by reference only (minimal personal data)."""

    reference: str = Field(min_length=1, max_length=100)
    role: str | None = Field(default=None, max_length=50)  # courier, consignee, ...
    nationality: str | None = Field(default=None, schema_extra=_COUNTRY_RULE)
    sex: str | None = Field(
        default=None, schema_extra={"pattern": r"^(female|male|other|unknown)$"}
    )
    age_range: str | None = Field(default=None, max_length=20)


class CompanyRef(SQLModel):
    """A company involved (exporter, importer, broker, carrier...)."""

    name: str = Field(min_length=1, max_length=200)
    role: str | None = Field(default=None, max_length=50)
    country: str | None = Field(default=None, schema_extra=_COUNTRY_RULE)
    registration: str | None = Field(default=None, max_length=100)


class SeizureBase(SQLModel):
    seized_at: datetime = Field(sa_type=UtcDateTime, index=True)
    incident_type: IncidentType = Field(default=IncidentType.SEIZURE, sa_type=String(32))
    country: str = Field(schema_extra=_COUNTRY_RULE, sa_type=String(2), index=True)
    place: str | None = Field(default=None, max_length=200, sa_type=String(200))
    checkpoint: str | None = Field(default=None, max_length=200, sa_type=String(200))
    latitude: float | None = Field(default=None, ge=-90, le=90, schema_extra=_FINITE)
    longitude: float | None = Field(default=None, ge=-180, le=180, schema_extra=_FINITE)
    transport_mode: TransportMode | None = Field(default=None, sa_type=String(16), index=True)
    conveyance: str | None = Field(default=None, max_length=200, sa_type=String(200))
    concealment_method: str | None = Field(default=None, max_length=500, sa_type=String(500))
    origin_country: str | None = Field(default=None, schema_extra=_COUNTRY_RULE, sa_type=String(2))
    departure_country: str | None = Field(
        default=None, schema_extra=_COUNTRY_RULE, sa_type=String(2)
    )
    transit_countries: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    destination_country: str | None = Field(
        default=None, schema_extra=_COUNTRY_RULE, sa_type=String(2)
    )
    air_waybill: str | None = Field(default=None, max_length=50, sa_type=String(50), index=True)
    container_number: str | None = Field(
        default=None, max_length=50, sa_type=String(50), index=True
    )
    tracking_number: str | None = Field(
        default=None, max_length=100, sa_type=String(100), index=True
    )
    persons: list[PersonRef] = Field(default_factory=list, sa_column=Column(JSON))
    companies: list[CompanyRef] = Field(default_factory=list, sa_column=Column(JSON))
    narrative: str | None = Field(default=None, max_length=20_000, sa_type=Text)
    status: SeizureStatus = Field(default=SeizureStatus.OPEN, sa_type=String(16), index=True)
    #: Who besides the owning agency may read it (see :mod:`service.sharing`).
    # Added after the first schema: left out of digests at their defaults (see audit).
    sharing: SharingLevel = Field(
        default=SharingLevel.OWN,
        sa_type=String(16),
        sa_column_kwargs={"info": {"digest_omit_if": (SharingLevel.OWN, None)}},
    )
    #: The partner agencies of level ``partners``.
    shared_with: list[uuid.UUID] = Field(
        default_factory=list, sa_column=Column(JSON, info={"digest_omit_if": ([], None)})
    )

    @field_validator("transit_countries")
    @classmethod
    def _countries(cls, value: list[str]) -> list[str]:
        for code in value:
            if not (len(code) == 2 and code.isascii() and code.isupper() and code.isalpha()):
                raise ValueError(f"{code!r} is not an ISO 3166-1 alpha-2 country code")
        return value


class SeizureCreate(SeizureBase):
    #: Client-generated: the record's id, and the idempotency key when no header is sent.
    id: uuid.UUID | None = None


class SeizureUpdate(SQLModel):
    """Fields to change; ``reason`` is kept with the new version."""

    seized_at: datetime | None = None
    incident_type: IncidentType | None = None
    country: str | None = Field(default=None, schema_extra=_COUNTRY_RULE)
    place: str | None = Field(default=None, max_length=200)
    checkpoint: str | None = Field(default=None, max_length=200)
    latitude: float | None = Field(default=None, ge=-90, le=90, schema_extra=_FINITE)
    longitude: float | None = Field(default=None, ge=-180, le=180, schema_extra=_FINITE)
    transport_mode: TransportMode | None = None
    conveyance: str | None = Field(default=None, max_length=200)
    concealment_method: str | None = Field(default=None, max_length=500)
    origin_country: str | None = Field(default=None, schema_extra=_COUNTRY_RULE)
    departure_country: str | None = Field(default=None, schema_extra=_COUNTRY_RULE)
    transit_countries: list[str] | None = None
    destination_country: str | None = Field(default=None, schema_extra=_COUNTRY_RULE)
    air_waybill: str | None = Field(default=None, max_length=50)
    container_number: str | None = Field(default=None, max_length=50)
    tracking_number: str | None = Field(default=None, max_length=100)
    persons: list[PersonRef] | None = None
    companies: list[CompanyRef] | None = None
    narrative: str | None = Field(default=None, max_length=20_000)
    status: SeizureStatus | None = None
    sharing: SharingLevel | None = None
    shared_with: list[uuid.UUID] | None = None
    reason: str = Field(min_length=1, max_length=1000)


class Seizure(SeizureBase, table=True):
    # Serves the default listing order (newest first, id as tie-break) without a sort.
    # The second serves the seizures shared with every agency, newest first (issue 8).
    __table_args__ = (
        Index("ix_seizure_agency_seized_at", "agency_id", "seized_at", "id"),
        Index("ix_seizure_sharing_seized_at", "sharing", "seized_at", "id"),
    )
    id: uuid.UUID = _id_field()
    agency_id: uuid.UUID = Field(foreign_key="agency.id", index=True)
    created_by_user_id: uuid.UUID | None = Field(default=None, foreign_key="user.id")
    created_by_device_id: uuid.UUID | None = Field(default=None, foreign_key="device.id")
    version: int = Field(default=1, sa_type=Integer)
    created_at: datetime = _ts_field()
    updated_at: datetime = _ts_field()


class SeizurePublic(SeizureBase):
    id: uuid.UUID
    agency_id: uuid.UUID
    created_by_user_id: uuid.UUID | None
    created_by_device_id: uuid.UUID | None
    version: int
    created_at: datetime
    updated_at: datetime


class SeizuresPublic(SQLModel):
    data: list[SeizurePublic]
    #: Whether more rows follow ``skip + len(data)``.
    has_more: bool


# --------------------------------------------------------------------------- item


class ItemBase(SQLModel):
    description: str = Field(min_length=1, max_length=2000, sa_type=Text)
    #: Substance as recorded (declared, or from the field test); changes need four eyes.
    substance: str | None = Field(default=None, max_length=200, sa_type=String(200), index=True)
    packaging: str | None = Field(default=None, max_length=500, sa_type=String(500))
    gross_mass: float | None = Field(default=None, ge=0, schema_extra=_FINITE)
    net_mass: float | None = Field(default=None, ge=0, schema_extra=_FINITE)
    mass_unit: MassUnit | None = Field(default=None, sa_type=String(4))
    unit_count: int | None = Field(default=None, ge=0, sa_type=BigInteger)
    unit_form: str | None = Field(default=None, max_length=50, sa_type=String(50))

    @model_validator(mode="after")
    def _unit_with_mass(self) -> ItemBase:
        if (self.gross_mass is not None or self.net_mass is not None) and self.mass_unit is None:
            raise ValueError("mass_unit is required when a mass is given")
        return self


class ItemCreate(ItemBase):
    id: uuid.UUID | None = None


class ItemUpdate(SQLModel):
    description: str | None = Field(default=None, min_length=1, max_length=2000)
    substance: str | None = Field(default=None, max_length=200)
    packaging: str | None = Field(default=None, max_length=500)
    gross_mass: float | None = Field(default=None, ge=0, schema_extra=_FINITE)
    net_mass: float | None = Field(default=None, ge=0, schema_extra=_FINITE)
    mass_unit: MassUnit | None = None
    unit_count: int | None = Field(default=None, ge=0)
    unit_form: str | None = Field(default=None, max_length=50)
    reason: str = Field(min_length=1, max_length=1000)


class Item(ItemBase, table=True):
    id: uuid.UUID = _id_field()
    seizure_id: uuid.UUID = Field(foreign_key="seizure.id", index=True)
    agency_id: uuid.UUID = Field(foreign_key="agency.id", index=True)
    version: int = Field(default=1, sa_type=Integer)
    created_at: datetime = _ts_field()
    updated_at: datetime = _ts_field()


class ItemPublic(ItemBase):
    id: uuid.UUID
    seizure_id: uuid.UUID
    agency_id: uuid.UUID
    version: int
    created_at: datetime
    updated_at: datetime


# --------------------------------------------------------------------------- field test


class Candidate(SQLModel):
    name: str = Field(min_length=1, max_length=200)
    score: float = Field(schema_extra=_FINITE)


class Component(SQLModel):
    name: str = Field(min_length=1, max_length=200)
    fraction: float = Field(schema_extra=_FINITE)


class Identification(SQLModel, extra="allow"):
    """The matcher's result; stored verbatim (extra keys kept), validated for shape only."""

    verdict: Verdict
    candidates: list[Candidate] = Field(max_length=1000)
    components: list[Component] = Field(max_length=100)
    library_version: str = Field(min_length=1, max_length=200)


class RawSpectrum(SQLModel):
    """A raw spectrum as measured; stored as float64 little-endian bytes, given order kept."""

    kind: SpectrumKindName = SpectrumKindName.RAMAN
    axis: list[float] = Field(max_length=MAX_SPECTRUM_POINTS)
    intensities: list[float] = Field(max_length=MAX_SPECTRUM_POINTS)
    _f64le: tuple[bytes, bytes] | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _valid(self) -> RawSpectrum:
        if len(self.axis) != len(self.intensities):
            raise ValueError(
                f"axis has {len(self.axis)} points but intensities have {len(self.intensities)}"
            )
        # Converted once: the checks and the stored bytes (f64le) all use these arrays.
        axis = np.asarray(self.axis, dtype="<f8")
        intensities = np.asarray(self.intensities, dtype="<f8")
        for what, values in (("axis", axis), ("intensities", intensities)):
            finite = np.isfinite(values)
            if not finite.all():
                bad = int(np.flatnonzero(~finite)[0])
                raise ValueError(f"{what}[{bad}] is not a finite number (NaN or infinity)")
        from spectra import Spectrum  # the shared rules: enough points, distinct axis values

        Spectrum(axis=axis, intensities=intensities)  # raises a ValueError subclass
        self._f64le = (axis.tobytes(), intensities.tobytes())
        return self

    def f64le(self) -> tuple[bytes, bytes]:
        """Axis and intensities as float64 little-endian bytes, in the order given."""
        if self._f64le is None:  # built without validation (model_construct)
            self._f64le = (
                np.asarray(self.axis, dtype="<f8").tobytes(),
                np.asarray(self.intensities, dtype="<f8").tobytes(),
            )
        return self._f64le


class FieldTestBase(SQLModel):
    tested_at: datetime = Field(sa_type=UtcDateTime)
    place: str | None = Field(default=None, max_length=200, sa_type=String(200))
    latitude: float | None = Field(default=None, ge=-90, le=90, schema_extra=_FINITE)
    longitude: float | None = Field(default=None, ge=-180, le=180, schema_extra=_FINITE)
    device_id: uuid.UUID | None = Field(default=None, foreign_key="device.id")
    operator_id: uuid.UUID | None = Field(default=None, foreign_key="user.id")
    #: Set when the operator has no account (e.g. a station user), free text.
    operator_name: str | None = Field(default=None, max_length=200, sa_type=String(200))


class FieldTestCreate(FieldTestBase):
    id: uuid.UUID | None = None
    spectrum: RawSpectrum
    identification: Identification


class FieldTest(FieldTestBase, table=True):
    __tablename__ = "field_test"
    id: uuid.UUID = _id_field()
    item_id: uuid.UUID = Field(foreign_key="item.id", index=True)
    seizure_id: uuid.UUID = Field(foreign_key="seizure.id", index=True)
    agency_id: uuid.UUID = Field(foreign_key="agency.id", index=True)
    verdict: str = Field(sa_type=String(32), index=True)
    #: First component, or best candidate when identified; for filtering only.
    main_substance: str | None = Field(default=None, sa_type=String(200), index=True)
    library_version: str = Field(sa_type=String(200))
    #: The identification JSON exactly as received (key order and numbers kept).
    identification_json: str = Field(sa_type=Text)
    spectrum_kind: str = Field(sa_type=String(16))
    n_points: int = Field(sa_type=Integer)
    axis_f64le: bytes = Field(sa_type=LargeBinary)
    intensities_f64le: bytes = Field(sa_type=LargeBinary)
    #: SHA-256 of axis bytes followed by intensity bytes.
    spectrum_sha256: str = Field(sa_type=String(64))
    version: int = Field(default=1, sa_type=Integer)
    created_at: datetime = _ts_field()


class FieldTestPublic(FieldTestBase):
    id: uuid.UUID
    item_id: uuid.UUID
    seizure_id: uuid.UUID
    agency_id: uuid.UUID
    verdict: str
    main_substance: str | None
    library_version: str
    identification: dict[str, Any]
    spectrum: RawSpectrum | None = None
    n_points: int
    spectrum_sha256: str
    version: int
    created_at: datetime


# --------------------------------------------------------------------------- custody


class CustodyEventBase(SQLModel):
    kind: CustodyKind = Field(sa_type=String(32))
    occurred_at: datetime = Field(sa_type=UtcDateTime)
    place: str | None = Field(default=None, max_length=200, sa_type=String(200))
    seal_number: str | None = Field(default=None, max_length=100, sa_type=String(100))
    from_party: str | None = Field(default=None, max_length=200, sa_type=String(200))
    to_party: str | None = Field(default=None, max_length=200, sa_type=String(200))
    notes: str | None = Field(default=None, max_length=2000, sa_type=Text)

    @model_validator(mode="after")
    def _needs(self) -> CustodyEventBase:
        if self.kind == CustodyKind.SEALED and not self.seal_number:
            raise ValueError("a 'sealed' event needs seal_number")
        if self.kind in (CustodyKind.HANDED_OVER, CustodyKind.TRANSFERRED_TO_LAB) and not (
            self.from_party and self.to_party
        ):
            raise ValueError(f"a {self.kind.value!r} event needs from_party and to_party")
        return self


class CustodyEventCreate(CustodyEventBase):
    id: uuid.UUID | None = None
    #: Required for 'destroyed' (a four-eyes request).
    reason: str | None = Field(default=None, max_length=1000)


class CustodyEvent(CustodyEventBase, table=True):
    __tablename__ = "custody_event"
    id: uuid.UUID = _id_field()
    item_id: uuid.UUID = Field(foreign_key="item.id", index=True)
    agency_id: uuid.UUID = Field(foreign_key="agency.id", index=True)
    recorded_by_user_id: uuid.UUID | None = Field(default=None, foreign_key="user.id")
    recorded_by_device_id: uuid.UUID | None = Field(default=None, foreign_key="device.id")
    version: int = Field(default=1, sa_type=Integer)
    created_at: datetime = _ts_field()


class CustodyEventPublic(CustodyEventBase):
    id: uuid.UUID
    item_id: uuid.UUID
    agency_id: uuid.UUID
    recorded_by_user_id: uuid.UUID | None
    recorded_by_device_id: uuid.UUID | None
    version: int
    created_at: datetime


# --------------------------------------------------------------------------- laboratory


class LabResultBase(SQLModel):
    method: LabMethod = Field(sa_type=String(16))
    substance: str = Field(min_length=1, max_length=200, sa_type=String(200))
    purity_percent: float | None = Field(default=None, ge=0, le=100, schema_extra=_FINITE)
    net_mass: float | None = Field(default=None, ge=0, schema_extra=_FINITE)
    mass_unit: MassUnit | None = Field(default=None, sa_type=String(4))
    laboratory: str | None = Field(default=None, max_length=200, sa_type=String(200))
    lab_reference: str | None = Field(default=None, max_length=100, sa_type=String(100))
    analysed_at: datetime = Field(sa_type=UtcDateTime)

    @model_validator(mode="after")
    def _unit_with_mass(self) -> LabResultBase:
        if self.net_mass is not None and self.mass_unit is None:
            raise ValueError("mass_unit is required when net_mass is given")
        return self


class LabResultCreate(LabResultBase):
    id: uuid.UUID | None = None


class LabResult(LabResultBase, table=True):
    __tablename__ = "lab_result"
    id: uuid.UUID = _id_field()
    item_id: uuid.UUID = Field(foreign_key="item.id", index=True)
    agency_id: uuid.UUID = Field(foreign_key="agency.id", index=True)
    analyst_id: uuid.UUID | None = Field(default=None, foreign_key="user.id")
    version: int = Field(default=1, sa_type=Integer)
    created_at: datetime = _ts_field()


class LabResultPublic(LabResultBase):
    id: uuid.UUID
    item_id: uuid.UUID
    agency_id: uuid.UUID
    analyst_id: uuid.UUID | None
    version: int
    created_at: datetime


class Discrepancy(SQLModel):
    """Field record against laboratory result for one item."""

    item_id: uuid.UUID
    seizure_id: uuid.UUID
    lab_result_id: uuid.UUID
    field_substance: str | None
    lab_substance: str
    identity_differs: bool
    field_net_mass_g: float | None
    lab_net_mass_g: float | None
    mass_loss_percent: float | None
    mass_lost_beyond_tolerance: bool
    tolerance_percent: float


# --------------------------------------------------------------------------- attachments


class Blob(SQLModel, table=True):
    """Content-addressed bytes of attachments; the key is their SHA-256."""

    sha256: str = Field(primary_key=True, sa_type=String(64))
    size: int = Field(sa_type=BigInteger)
    data: bytes = Field(sa_type=LargeBinary)


class Attachment(SQLModel, table=True):
    id: uuid.UUID = _id_field()
    item_id: uuid.UUID = Field(foreign_key="item.id", index=True)
    agency_id: uuid.UUID = Field(foreign_key="agency.id", index=True)
    sha256: str = Field(foreign_key="blob.sha256", sa_type=String(64))
    filename: str = Field(sa_type=String(255))
    media_type: str = Field(sa_type=String(100))
    size: int = Field(sa_type=BigInteger)
    version: int = Field(default=1, sa_type=Integer)
    created_at: datetime = _ts_field()


class AttachmentPublic(SQLModel):
    id: uuid.UUID
    item_id: uuid.UUID
    sha256: str
    filename: str
    media_type: str
    size: int
    version: int
    created_at: datetime


# --------------------------------------------------------------------------- four eyes


class Approval(SQLModel, table=True):
    """A change that needs a second person (supervisor) before it is applied."""

    id: uuid.UUID = _id_field()
    agency_id: uuid.UUID = Field(foreign_key="agency.id", index=True)
    entity_type: str = Field(sa_type=String(32))
    entity_id: uuid.UUID
    #: 'update' (change fields of entity) or 'custody_destroyed' (create a destruction event).
    action: str = Field(sa_type=String(32))
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    reason: str = Field(sa_type=Text)
    base_version: int | None = Field(default=None, sa_type=Integer)
    requested_by_user_id: uuid.UUID | None = Field(default=None, foreign_key="user.id")
    requested_by_device_id: uuid.UUID | None = Field(default=None, foreign_key="device.id")
    status: ApprovalStatus = Field(default=ApprovalStatus.PENDING, sa_type=String(16), index=True)
    decided_by_user_id: uuid.UUID | None = Field(default=None, foreign_key="user.id")
    decided_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    decision_reason: str | None = Field(default=None, sa_type=Text)
    result_entity_id: uuid.UUID | None = None
    version: int = Field(default=1, sa_type=Integer)
    created_at: datetime = _ts_field()


class ApprovalPublic(SQLModel):
    id: uuid.UUID
    agency_id: uuid.UUID
    entity_type: str
    entity_id: uuid.UUID
    action: str
    payload: dict[str, Any]
    reason: str
    base_version: int | None
    requested_by_user_id: uuid.UUID | None
    requested_by_device_id: uuid.UUID | None
    status: ApprovalStatus
    decided_by_user_id: uuid.UUID | None
    decided_at: datetime | None
    decision_reason: str | None
    result_entity_id: uuid.UUID | None
    version: int
    created_at: datetime


class ApprovalDecision(SQLModel):
    approve: bool
    reason: str | None = Field(default=None, max_length=1000)


# --------------------------------------------------------------------------- audit


class RecordVersion(SQLModel, table=True):
    """One version of one record, as canonical JSON; never updated."""

    __tablename__ = "record_version"
    __table_args__ = (
        UniqueConstraint("entity_type", "entity_id", "version", name="uq_record_version"),
    )
    id: int | None = Field(default=None, primary_key=True, sa_type=BigIntPK)
    entity_type: str = Field(sa_type=String(32))
    entity_id: uuid.UUID = Field(index=True)
    agency_id: uuid.UUID | None = Field(default=None, index=True)
    version: int = Field(sa_type=Integer)
    data: str = Field(sa_type=Text)
    digest: str = Field(sa_type=String(64))
    reason: str | None = Field(default=None, sa_type=Text)
    actor_user_id: uuid.UUID | None = None
    actor_device_id: uuid.UUID | None = None
    at: datetime = _ts_field()


class RecordVersionPublic(SQLModel):
    entity_type: str
    entity_id: uuid.UUID
    version: int
    data: dict[str, Any]
    digest: str
    reason: str | None
    actor_user_id: uuid.UUID | None
    actor_device_id: uuid.UUID | None
    at: datetime

    @classmethod
    def of(cls, row: RecordVersion) -> RecordVersionPublic:
        """The stored version with its snapshot as JSON (stored as canonical text)."""
        return cls(**{**row.model_dump(exclude={"data"}), "data": json.loads(row.data)})


class AuditEvent(SQLModel, table=True):
    """One link of the append-only chain: ``hash`` covers every field and ``prev_hash``."""

    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_event_entity", "entity_type", "entity_id", "version"),)
    seq: int = Field(
        primary_key=True, sa_type=BigInteger, sa_column_kwargs={"autoincrement": False}
    )
    at: datetime = Field(sa_type=UtcDateTime)
    agency_id: uuid.UUID | None = Field(default=None, index=True)
    actor_user_id: uuid.UUID | None = None
    actor_device_id: uuid.UUID | None = None
    entity_type: str = Field(sa_type=String(32))
    entity_id: uuid.UUID
    action: str = Field(sa_type=String(32))
    version: int | None = Field(default=None, sa_type=Integer)
    before_digest: str | None = Field(default=None, sa_type=String(64))
    after_digest: str | None = Field(default=None, sa_type=String(64))
    #: A unique previous hash makes a fork (two events after one head) impossible.
    prev_hash: str = Field(sa_type=String(64), unique=True)
    hash: str = Field(sa_type=String(64), unique=True)


class AuditEventPublic(SQLModel):
    seq: int
    at: datetime
    agency_id: uuid.UUID | None
    actor_user_id: uuid.UUID | None
    actor_device_id: uuid.UUID | None
    entity_type: str
    entity_id: uuid.UUID
    action: str
    version: int | None
    before_digest: str | None
    after_digest: str | None
    prev_hash: str
    hash: str


class AuditPending(SQLModel, table=True):
    """An audit event written with its change, waiting to be linked into the chain.

    Linking happens right after the change commits, by one chainer at a time, so that
    concurrent writers never wait for each other's commits; ``id`` gives the order.
    """

    __tablename__ = "audit_pending"
    id: int | None = Field(default=None, primary_key=True, sa_type=BigIntPK)
    at: datetime = Field(sa_type=UtcDateTime)
    agency_id: uuid.UUID | None = None
    actor_user_id: uuid.UUID | None = None
    actor_device_id: uuid.UUID | None = None
    entity_type: str = Field(sa_type=String(32))
    entity_id: uuid.UUID
    action: str = Field(sa_type=String(32))
    version: int | None = Field(default=None, sa_type=Integer)
    before_digest: str | None = Field(default=None, sa_type=String(64))
    after_digest: str | None = Field(default=None, sa_type=String(64))


class AuditCheckpoint(SQLModel, table=True):
    """An Ed25519 signature over the chain head at ``seq``."""

    __tablename__ = "audit_checkpoint"
    id: int | None = Field(default=None, primary_key=True, sa_type=BigIntPK)
    seq: int = Field(sa_type=BigInteger, index=True)
    head_hash: str = Field(sa_type=String(64))
    at: datetime = Field(sa_type=UtcDateTime)
    public_key: str = Field(sa_type=String(64))
    signature: str = Field(sa_type=String(128))


class AuditCheckpointPublic(SQLModel):
    seq: int
    head_hash: str
    at: datetime
    public_key: str
    signature: str


# --------------------------------------------------------------------------- infrastructure


class IdempotencyRecord(SQLModel, table=True):
    """The first answer to a POST with a client key; a retry gets it back."""

    __tablename__ = "idempotency_record"
    __table_args__ = (UniqueConstraint("scope", "key", name="uq_idempotency_scope_key"),)
    id: int | None = Field(default=None, primary_key=True, sa_type=BigIntPK)
    #: The caller's agency (keys of different agencies never collide).
    scope: uuid.UUID
    key: uuid.UUID
    method: str = Field(sa_type=String(8))
    path: str = Field(sa_type=String(500))
    request_sha256: str = Field(sa_type=String(64))
    status_code: int = Field(default=0, sa_type=Integer)
    response: str = Field(default="", sa_type=Text)
    created_at: datetime = _ts_field()


class ServiceSecret(SQLModel, table=True):
    """Secrets shared by every instance (the JWT key), made once on first start."""

    __tablename__ = "service_secret"
    name: str = Field(primary_key=True, sa_type=String(50))
    value: str = Field(sa_type=Text)


class Token(SQLModel):
    access_token: str
    token_type: str = "bearer"


class Message(SQLModel):
    message: str


class AuditVerifyProblem(SQLModel):
    kind: str
    detail: str
    seq: int | None = None
    entity_type: str | None = None
    entity_id: uuid.UUID | None = None


class AuditVerifyReport(SQLModel):
    ok: bool
    events_checked: int
    #: Events written but not yet linked into the chain (normally 0; linked within a second).
    events_pending: int = 0
    versions_checked: int
    rows_checked: int
    checkpoints_checked: int
    head_seq: int
    head_hash: str | None
    problems: list[AuditVerifyProblem]


#: Record tables whose rows are versioned and audited, by table name.
VERSIONED: dict[str, type[SQLModel]] = {
    "agency": Agency,
    "user": User,
    "device": Device,
    "device_key": DeviceKey,
    "seizure": Seizure,
    "item": Item,
    "field_test": FieldTest,
    "custody_event": CustodyEvent,
    "lab_result": LabResult,
    "attachment": Attachment,
    "approval": Approval,
    "seizure_link": SeizureLink,
}
