"""Logging at the checkpoint: one atomic append per event, checked locally, spectra lossless."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from fieldscan.station.capture import (
    MAX_PHOTO_BYTES,
    Station,
    spectrum_body,
    spectrum_sha256,
)
from fieldscan.station.outbox import Outbox
from spectra.spectrum import Spectrum

IDENT = {
    "verdict": "identified",
    "candidates": [{"name": "cocaine hydrochloride", "score": 0.97}],
    "components": [{"name": "cocaine hydrochloride", "fraction": 1.0}],
    "library_version": "sha256:abc",
}


@pytest.fixture
def station(tmp_path: Path) -> Iterator[Station]:
    box = Outbox(tmp_path / "outbox.db")
    yield Station(box, operator_name="Officer 7", place="Km 40")
    box.close()


def _spectrum(seed: int = 0) -> Spectrum:
    rng = np.random.default_rng(seed)
    axis = np.sort(rng.uniform(200, 2000, 1024))
    # Values with full float64 precision: JSON must carry every bit.
    return Spectrum(axis, rng.normal(1000, 50, 1024) + rng.random(1024) * 1e-9)


def test_a_seizure_and_its_items_are_one_append_with_our_uuids_as_ids(station: Station) -> None:
    logged = station.log_seizure({"country": "PE"}, [{"description": "a"}, {"description": "b"}])
    records = station.outbox.records()
    assert [r.kind for r in records] == ["seizure", "item", "item"]
    assert [r.uuid for r in records] == [logged.seizure, *logged.items]
    assert all(r.payload["id"] == r.uuid for r in records)
    assert records[1].parent_uuid == logged.seizure
    assert records[0].payload["place"] == "Km 40" and "seized_at" in records[0].payload


def test_a_field_test_keeps_the_raw_spectrum_bit_for_bit(station: Station) -> None:
    seizure = station.log_seizure({"country": "PE"}, [{"description": "a"}])
    spectrum = _spectrum()
    logged = station.log_field_test(
        spectrum, IDENT, item_uuid=seizure.items[0], station_info={"lang": "en"}
    )
    stored = station.outbox.get(logged.uuid).payload
    sent = json.loads(json.dumps(stored))  # what goes over the wire
    assert np.array_equal(np.asarray(sent["spectrum"]["axis"]), spectrum.axis)
    assert np.array_equal(np.asarray(sent["spectrum"]["intensities"]), spectrum.intensities)
    expected = hashlib.sha256(
        spectrum.axis.astype("<f8").tobytes() + spectrum.intensities.astype("<f8").tobytes()
    ).hexdigest()
    assert logged.spectrum_sha256 == expected == spectrum_sha256(sent["spectrum"])
    assert stored["identification"]["station"] == {"lang": "en"}
    assert stored["operator_name"] == "Officer 7"


def test_a_new_item_and_its_test_are_written_together_or_not_at_all(station: Station) -> None:
    seizure = station.log_seizure({"country": "PE"})
    before = len(station.outbox.records())
    bad = {**IDENT, "verdict": "certainly"}
    with pytest.raises(ValueError, match=r"identification\.verdict"):
        station.log_field_test(_spectrum(), bad, new_item=(seizure.seizure, {"description": "x"}))
    assert len(station.outbox.records()) == before  # neither the item nor the test
    logged = station.log_field_test(
        _spectrum(), IDENT, new_item=(seizure.seizure, {"description": "x"})
    )
    kinds = [(r.kind, r.uuid) for r in station.outbox.records()[before:]]
    assert kinds == [("item", logged.item), ("field_test", logged.uuid)]


def test_bad_input_is_refused_up_front_and_nothing_is_written(station: Station) -> None:
    with pytest.raises(ValueError, match="country"):
        station.log_seizure({"country": "Peru"})
    with pytest.raises(ValueError, match="latitude"):
        station.log_seizure({"country": "PE", "latitude": 123.0})
    assert station.outbox.records() == []
    seizure = station.log_seizure({"country": "PE"}, [{"description": "a"}])
    item = seizure.items[0]
    with pytest.raises(ValueError, match="seal_number"):
        station.log_custody_event(item, "sealed")
    with pytest.raises(ValueError, match="kind"):
        station.log_custody_event(item, "lost_in_transit")
    with pytest.raises(ValueError, match="no item"):
        station.log_custody_event("not-a-uuid", "sealed", seal_number="S1")
    with pytest.raises(ValueError, match="is a seizure, not a item"):
        station.log_custody_event(seizure.seizure, "sealed", seal_number="S1")
    with pytest.raises(ValueError, match="exactly one"):
        station.log_field_test(_spectrum(), IDENT)
    with pytest.raises(ValueError, match="empty"):
        station.log_photo(item, b"", "x.jpg")
    with pytest.raises(ValueError, match="limit"):
        station.log_photo(item, b"x" * (MAX_PHOTO_BYTES + 1), "big.jpg")
    assert len(station.outbox.records()) == 2


def test_custody_events_and_photos_are_recorded(station: Station) -> None:
    item = station.log_seizure({"country": "PE"}, [{"description": "a"}]).items[0]
    sealed = station.log_custody_event(item, "sealed", seal_number="S-1")
    handed = station.log_custody_event(item, "handed_over", from_party="me", to_party="courier")
    photo = station.log_photo(item, b"\x89PNG\r\n\x1a\n...", "brick.png")
    body = station.outbox.get(photo).payload
    assert base64.b64decode(body["content_b64"]) == b"\x89PNG\r\n\x1a\n..."
    assert body["media_type"] == "image/png"
    assert body["sha256"] == hashlib.sha256(b"\x89PNG\r\n\x1a\n...").hexdigest()
    assert station.outbox.get(sealed).payload["seal_number"] == "S-1"
    assert station.outbox.get(handed).parent_uuid == item


def test_spectrum_body_names_the_kind() -> None:
    body = spectrum_body(_spectrum())
    assert body["kind"] == "raman" and len(body["axis"]) == len(body["intensities"]) == 1024
