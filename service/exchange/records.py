"""Records as they travel in exchange packages: table rows ↔ JSON objects, losslessly.

A record is every column of its row as a plain JSON value: timestamps in the package form
(:func:`service.exchange.package.iso`), UUIDs as text, binary columns (the raw spectra,
float64 little-endian) as base64, so a spectrum arrives bit for bit. Columns that name
people or devices of the issuing instance (``created_by_user_id``, ``operator_id``...)
are left out: they are meaningless, and foreign keys to nothing, anywhere else, and
minimal personal data leaves the agency (``operator_name`` stays).

Decoding checks each record as strictly as the API checks a new one (the same
``*Base`` models and the spectrum rules), so a partner's bug cannot store what this
instance would refuse from its own users.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

import numpy as np
from pydantic import ValidationError
from sqlalchemy import JSON, Float, Integer, LargeBinary, Uuid
from sqlmodel import SQLModel

from service.audit import sha256_hex
from service.core.types import UtcDateTime
from service.exchange.package import ExchangeRecord, b64, iso, parse_iso, unb64
from service.models import (
    CustodyEvent,
    CustodyEventBase,
    FieldTest,
    FieldTestBase,
    Identification,
    Item,
    ItemBase,
    LabResult,
    LabResultBase,
    RawSpectrum,
    Seizure,
    SeizureBase,
    SpectrumKindName,
)

#: The table of each record type a package carries.
MODELS: dict[str, type[SQLModel]] = {
    "seizure": Seizure,
    "item": Item,
    "field_test": FieldTest,
    "custody_event": CustodyEvent,
    "lab_result": LabResult,
}
#: Each type's validating model (the API's rules).
_BASES: dict[str, type[SQLModel]] = {
    "seizure": SeizureBase,
    "item": ItemBase,
    "field_test": FieldTestBase,
    "custody_event": CustodyEventBase,
    "lab_result": LabResultBase,
}
#: Columns naming people or devices of the issuing instance: never exchanged.
LOCAL_REFERENCES: dict[str, frozenset[str]] = {
    "seizure": frozenset({"created_by_user_id", "created_by_device_id"}),
    "item": frozenset(),
    "field_test": frozenset({"device_id", "operator_id"}),
    "custody_event": frozenset({"recorded_by_user_id", "recorded_by_device_id"}),
    "lab_result": frozenset({"analyst_id"}),
}


class RecordInvalidError(ValueError):
    """A record cannot be stored; ``field`` names the field at fault (when one is), the
    message says which and why."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class RecordFieldsDifferError(RecordInvalidError):
    """The record's fields are not this instance's: the two instances run other versions."""

    def __init__(self, message: str, *, missing: list[str], unexpected: list[str]) -> None:
        super().__init__(message)
        self.missing = missing
        self.unexpected = unexpected


def _columns(entity_type: str) -> list[Any]:
    table = MODELS[entity_type].__table__  # type: ignore[attr-defined]
    return [c for c in table.columns if c.key not in LOCAL_REFERENCES[entity_type]]


def to_record(entity_type: str, row: SQLModel) -> ExchangeRecord:
    """The exchange form of a stored row."""
    data: dict[str, Any] = {}
    for column in _columns(entity_type):
        value = getattr(row, column.key)
        if value is None:
            pass
        elif isinstance(column.type, UtcDateTime):
            value = iso(value)
        elif isinstance(column.type, Uuid):
            value = str(value)
        elif isinstance(column.type, LargeBinary):
            value = b64(bytes(value))
        elif isinstance(column.type, JSON):
            value = json.loads(json.dumps(value, default=str))  # UUIDs in lists as text
        elif isinstance(column.type, Float):
            value = float(value)
        elif isinstance(column.type, Integer) and not isinstance(value, bool):
            value = int(value)
        elif hasattr(value, "value"):  # enumerations
            value = value.value
        data[column.key] = value
    return ExchangeRecord(type=entity_type, data=data)


def from_record(record: ExchangeRecord) -> dict[str, Any]:
    """Column values (database types) of a record; :class:`RecordInvalidError` if unacceptable."""
    columns = _columns(record.type)
    expected = {c.key for c in columns}
    if set(record.data) != expected:
        missing = sorted(expected - set(record.data))
        extra = sorted(set(record.data) - expected)
        raise RecordFieldsDifferError(
            f"fields differ from this instance's {record.type}: "
            f"missing {missing or 'none'}, unexpected {extra or 'none'}",
            missing=missing,
            unexpected=extra,
        )
    values: dict[str, Any] = {}
    for column in columns:
        value = record.data[column.key]
        if value is None:
            if not column.nullable:
                raise RecordInvalidError(f"{column.key} is required", field=column.key)
            values[column.key] = None
            continue
        try:
            if isinstance(column.type, UtcDateTime):
                values[column.key] = parse_iso(_text(value))
            elif isinstance(column.type, Uuid):
                values[column.key] = uuid.UUID(_text(value))
            elif isinstance(column.type, LargeBinary):
                values[column.key] = unb64(_text(value), column.key)
            else:
                values[column.key] = value
        except (ValueError, TypeError) as exc:
            raise RecordInvalidError(f"{column.key}: {exc}", field=column.key) from None
    _validate(record.type, values)
    return values


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("expected a string")
    return value


def _validate(entity_type: str, values: Mapping[str, Any]) -> None:
    base = _BASES[entity_type]
    fields = {k: v for k, v in values.items() if k in base.model_fields}
    try:
        base.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"])) or entity_type
        field = str(first["loc"][0]) if first["loc"] else None
        raise RecordInvalidError(f"{where}: {first['msg']}", field=field) from None
    version = values.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise RecordInvalidError("version must be a positive integer", field="version")
    if entity_type == "seizure":
        shared = values.get("shared_with") or []
        if not isinstance(shared, list) or any(not isinstance(p, str) for p in shared):
            raise RecordInvalidError(
                "shared_with must be a list of agency ids", field="shared_with"
            )
        for p in shared:
            try:
                uuid.UUID(p)
            except ValueError:
                raise RecordInvalidError(
                    f"shared_with: {p!r} is not an agency id", field="shared_with"
                ) from None
    if entity_type == "field_test":
        _validate_field_test(values)


def _validate_field_test(values: Mapping[str, Any]) -> None:
    """The spectrum arrives whole and matches its hash; the identification is matcher-shaped."""
    axis_bytes, values_bytes = values["axis_f64le"], values["intensities_f64le"]
    if sha256_hex(axis_bytes + values_bytes) != values["spectrum_sha256"]:
        raise RecordInvalidError(
            "spectrum bytes do not match spectrum_sha256", field="spectrum_sha256"
        )
    if len(axis_bytes) % 8 or len(axis_bytes) != len(values_bytes):
        raise RecordInvalidError(
            "axis and intensities must be float64 arrays of equal length",
            field="intensities_f64le",
        )
    n_points = len(axis_bytes) // 8
    if values["n_points"] != n_points:
        raise RecordInvalidError(
            f"n_points is {values['n_points']} but the spectrum has {n_points}", field="n_points"
        )
    field = "spectrum_kind"
    try:
        kind = SpectrumKindName(values["spectrum_kind"])
        field = "intensities_f64le"
        RawSpectrum.model_validate(
            {
                "kind": kind,
                "axis": np.frombuffer(axis_bytes, dtype="<f8").tolist(),
                "intensities": np.frombuffer(values_bytes, dtype="<f8").tolist(),
            }
        )
        field = "identification_json"
        ident = json.loads(values["identification_json"])
        parsed = Identification.model_validate(ident)
    except (ValidationError, ValueError, TypeError) as exc:
        raise RecordInvalidError(f"field test: {str(exc).splitlines()[0]}", field=field) from None
    if parsed.verdict.value != values["verdict"]:
        raise RecordInvalidError(
            "verdict differs from the identification's verdict", field="verdict"
        )
    if parsed.library_version != values["library_version"]:
        raise RecordInvalidError(
            "library_version differs from the identification's", field="library_version"
        )
