"""What an officer logs at a checkpoint, written to the outbox: one atomic append per event.

Every record gets a client UUID that is also its id on the service and its idempotency key.
Bodies are checked locally against the service's request models first, so a mistake is
reported while the officer is still there, not hours later when the link comes back.
Times are the station's clock, sent as given ("device time"); the service stamps its own
reception time, and send order never depends on either clock.
"""

from __future__ import annotations

import base64
import hashlib
import mimetypes
import uuid as uuidlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from fieldscan.station.outbox import NewRecord, Outbox
from spectra.spectrum import Spectrum

SEIZURE = "seizure"
ITEM = "item"
FIELD_TEST = "field_test"
CUSTODY_EVENT = "custody_event"
ATTACHMENT = "attachment"
KINDS = (SEIZURE, ITEM, FIELD_TEST, CUSTODY_EVENT, ATTACHMENT)

#: Photos larger than this are refused at capture (the service's default body limit is 8 MiB).
MAX_PHOTO_BYTES = 6 * 1024 * 1024


def utc_now() -> datetime:
    """The station clock (UTC)."""
    return datetime.now(UTC)


def spectrum_body(spectrum: Spectrum) -> dict[str, Any]:
    """The raw spectrum as JSON numbers; Python floats round-trip float64 exactly."""
    return {
        "kind": spectrum.kind.value,
        "axis": [float(x) for x in spectrum.axis],
        "intensities": [float(y) for y in spectrum.intensities],
    }


def spectrum_sha256(body: Mapping[str, Any]) -> str:
    """SHA-256 of float64 little-endian axis bytes then intensity bytes (as the service stores)."""
    axis = np.asarray(body["axis"], dtype="<f8").tobytes()
    values = np.asarray(body["intensities"], dtype="<f8").tobytes()
    return hashlib.sha256(axis + values).hexdigest()


def _validate(kind: str, body: Mapping[str, Any]) -> None:
    """Check ``body`` with the service's request model; ``ValueError`` with field messages."""
    from pydantic import ValidationError

    from service import models

    model: Any = {
        SEIZURE: models.SeizureCreate,
        ITEM: models.ItemCreate,
        FIELD_TEST: models.FieldTestCreate,
        CUSTODY_EVENT: models.CustodyEventCreate,
    }.get(kind)
    if model is None:
        return
    try:
        model.model_validate(dict(body))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or kind}: {e['msg']}" for e in exc.errors()
        )
        raise ValueError(f"{kind.replace('_', ' ')} not recorded: {problems}") from None


@dataclass(frozen=True, slots=True)
class LoggedSeizure:
    """UUIDs of a logged seizure and its items (in the order given)."""

    seizure: str
    items: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LoggedTest:
    """A logged field test: its UUID, its item's UUID and the raw spectrum's SHA-256."""

    uuid: str
    item: str
    spectrum_sha256: str


class Station:
    """Logs an officer's records into ``outbox``.

    Parameters
    ----------
    outbox : Outbox
        Where records are kept until the service has them.
    clock : callable, optional
        The station clock; tests give a skewed one.
    operator_name, place : str, optional
        Defaults for field tests and custody events.
    """

    def __init__(
        self,
        outbox: Outbox,
        *,
        clock: Callable[[], datetime] = utc_now,
        operator_name: str | None = None,
        place: str | None = None,
    ) -> None:
        self.outbox = outbox
        self.clock = clock
        self.operator_name = operator_name
        self.place = place

    def _now(self) -> str:
        return self.clock().isoformat()

    @staticmethod
    def _record(kind: str, body: dict[str, Any], parent: str | None) -> NewRecord:
        record_uuid = str(body.get("id") or uuidlib.uuid4())
        body["id"] = record_uuid  # the service keeps our UUID as the record's id
        _validate(kind, body)
        return NewRecord(kind, body, parent_uuid=parent, uuid=record_uuid)

    def log_seizure(
        self, seizure: Mapping[str, Any], items: Sequence[Mapping[str, Any]] = ()
    ) -> LoggedSeizure:
        """A seizure and (optionally) its items, in one atomic append."""
        body = {"seized_at": self._now(), **seizure}
        if self.place and not body.get("place"):
            body["place"] = self.place
        parent = self._record(SEIZURE, body, None)
        children = [self._record(ITEM, dict(item), parent.uuid) for item in items]
        self.outbox.append([parent, *children])
        return LoggedSeizure(str(parent.uuid), tuple(str(c.uuid) for c in children))

    def log_item(self, seizure_uuid: str, item: Mapping[str, Any]) -> str:
        """One item of an already logged seizure."""
        self.require(seizure_uuid, SEIZURE)
        record = self._record(ITEM, dict(item), seizure_uuid)
        self.outbox.append([record])
        return str(record.uuid)

    def log_field_test(
        self,
        spectrum: Spectrum,
        identification: Mapping[str, Any],
        *,
        item_uuid: str | None = None,
        new_item: tuple[str, Mapping[str, Any]] | None = None,
        place: str | None = None,
        latitude: float | None = None,
        longitude: float | None = None,
        station_info: Mapping[str, Any] | None = None,
    ) -> LoggedTest:
        """A field test (raw spectrum + the matcher's result) on an item.

        Give ``item_uuid`` (an item already logged) or ``new_item=(seizure_uuid, item)``:
        the new item and the test are then appended together, atomically.
        ``station_info`` (acquisition metadata, wording shown) travels as an extra key of
        the identification, which the service stores verbatim.
        """
        if (item_uuid is None) == (new_item is None):
            raise ValueError("give exactly one of item_uuid or new_item")
        records: list[NewRecord] = []
        if new_item is not None:
            seizure_uuid, item = new_item
            self.require(seizure_uuid, SEIZURE)
            records.append(self._record(ITEM, dict(item), seizure_uuid))
            item_uuid = str(records[0].uuid)
        else:
            assert item_uuid is not None
            self.require(item_uuid, ITEM)
        ident = dict(identification)
        if station_info:
            ident["station"] = dict(station_info)
        body: dict[str, Any] = {
            "tested_at": self._now(),
            "place": place or self.place,
            "latitude": latitude,
            "longitude": longitude,
            "operator_name": self.operator_name,
            "spectrum": spectrum_body(spectrum),
            "identification": ident,
        }
        test = self._record(FIELD_TEST, body, item_uuid)
        records.append(test)
        self.outbox.append(records)
        return LoggedTest(str(test.uuid), item_uuid, spectrum_sha256(body["spectrum"]))

    def log_custody_event(
        self,
        item_uuid: str,
        kind: str,
        *,
        seal_number: str | None = None,
        from_party: str | None = None,
        to_party: str | None = None,
        place: str | None = None,
        notes: str | None = None,
        reason: str | None = None,
    ) -> str:
        """A custody event (sealed, handed_over, …) of an item."""
        self.require(item_uuid, ITEM)
        body = {
            "kind": kind,
            "occurred_at": self._now(),
            "place": place or self.place,
            "seal_number": seal_number,
            "from_party": from_party,
            "to_party": to_party,
            "notes": notes,
            "reason": reason,
        }
        record = self._record(
            CUSTODY_EVENT, {k: v for k, v in body.items() if v is not None}, item_uuid
        )
        self.outbox.append([record])
        return str(record.uuid)

    def log_photo(
        self, item_uuid: str, data: bytes, filename: str, media_type: str | None = None
    ) -> str:
        """A photo (or document) of an item, kept byte for byte until sent."""
        self.require(item_uuid, ITEM)
        if not data:
            raise ValueError(f"photo {filename!r} is empty")
        if len(data) > MAX_PHOTO_BYTES:
            raise ValueError(
                f"photo {filename!r} is {len(data)} bytes; the limit is {MAX_PHOTO_BYTES}"
            )
        body = {
            "filename": filename,
            "media_type": media_type
            or mimetypes.guess_type(filename)[0]
            or "application/octet-stream",
            "sha256": hashlib.sha256(data).hexdigest(),
            "content_b64": base64.b64encode(data).decode("ascii"),
            "taken_at": self._now(),
        }
        record = self._record(ATTACHMENT, body, item_uuid)
        self.outbox.append([record])
        return str(record.uuid)

    def require(self, record_uuid: str, kind: str) -> None:
        """``record_uuid`` must be a logged record of ``kind`` (``ValueError`` otherwise)."""
        from fieldscan.station.errors import UnknownRecordError

        try:
            found = self.outbox.get(record_uuid)
        except UnknownRecordError:
            raise ValueError(f"no {kind.replace('_', ' ')} {record_uuid} on this station") from None
        if found.kind != kind:
            raise ValueError(f"record {record_uuid} is a {found.kind}, not a {kind}")
