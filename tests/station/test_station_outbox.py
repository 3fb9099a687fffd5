"""The station outbox: atomic appends, send order, refusals kept, corrections, a full disk."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from fieldscan.station.errors import OutboxFullError, StationError, UnknownRecordError
from fieldscan.station.outbox import NewRecord, Outbox, RecordStatus


@pytest.fixture
def outbox(tmp_path: Path) -> Outbox:
    box = Outbox(tmp_path / "station" / "outbox.db")
    yield box
    box.close()


def test_records_survive_reopening_in_send_order(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    with Outbox(path) as box:
        first = box.append([NewRecord("seizure", {"n": 1})])[0]
        box.append([NewRecord("item", {"n": 2}, parent_uuid=first.uuid)])
    with Outbox(path) as box:
        records = box.records()
        assert [r.payload["n"] for r in records] == [1, 2]
        assert records[1].parent_uuid == first.uuid
        assert box.counts() == {
            RecordStatus.PENDING: 2,
            RecordStatus.SENT: 0,
            RecordStatus.REFUSED: 0,
        }
        assert box._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_children_wait_for_their_parent(outbox: Outbox) -> None:
    parent = outbox.append([NewRecord("seizure", {})])[0]
    child = outbox.append([NewRecord("item", {}, parent_uuid=parent.uuid)])[0]
    assert [r.uuid for r in outbox.ready_to_send()] == [parent.uuid]
    outbox.mark_refused(parent.uuid, "422: place is required")
    assert outbox.ready_to_send() == []  # the child must not go ahead of its refused parent
    outbox.correct(parent.uuid, {"place": "Lomé"}, reason="place added")
    outbox.mark_sent(parent.uuid, "srv-1")
    assert [r.uuid for r in outbox.ready_to_send()] == [child.uuid]


def test_refused_records_are_kept_and_corrections_keep_history(outbox: Outbox) -> None:
    record = outbox.append([NewRecord("seizure", {"mass_g": -3})])[0]
    outbox.mark_refused(record.uuid, "422: mass_g must be positive")
    refused = outbox.get(record.uuid)
    assert refused.status is RecordStatus.REFUSED
    assert refused.last_error == "422: mass_g must be positive"
    with pytest.raises(ValueError, match="reason"):
        outbox.correct(record.uuid, {"mass_g": 3}, reason=" ")
    fixed = outbox.correct(record.uuid, {"mass_g": 3}, reason="sign typo")
    assert fixed.uuid == record.uuid  # same idempotency key: it was never accepted
    assert fixed.status is RecordStatus.PENDING and fixed.payload == {"mass_g": 3}
    assert outbox.revisions(record.uuid)[0]["payload"] == {"mass_g": -3}


def test_sent_records_cannot_be_corrected_locally(outbox: Outbox) -> None:
    record = outbox.append([NewRecord("seizure", {})])[0]
    outbox.mark_failed_attempt(record.uuid, "timeout")
    assert outbox.get(record.uuid).status is RecordStatus.PENDING
    outbox.mark_sent(record.uuid, "srv-9")
    assert outbox.get(record.uuid).attempts == 2
    with pytest.raises(StationError, match="accepted"):
        outbox.correct(record.uuid, {}, reason="late")


def test_unknown_uuid_and_bad_payloads_are_refused(outbox: Outbox) -> None:
    with pytest.raises(UnknownRecordError):
        outbox.mark_sent("nope", "x")
    with pytest.raises(ValueError):  # NaN is not JSON: nothing is written
        outbox.append([NewRecord("seizure", {"ok": 1}), NewRecord("item", {"x": float("nan")})])
    assert outbox.records() == []
    uid = outbox.append([NewRecord("seizure", {})])[0].uuid
    with pytest.raises(StationError):  # a duplicate UUID is refused and the first one kept
        outbox.append([NewRecord("seizure", {"dup": True}, uuid=uid)])
    assert outbox.get(uid).payload == {}


def test_a_full_disk_loses_nothing_already_recorded(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    box = Outbox(path)
    kept = box.append([NewRecord("seizure", {"n": 0})])
    # SQLite's page limit raises the very error a full disk raises (SQLITE_FULL).
    pages = box._db.execute("PRAGMA page_count").fetchone()[0]
    box._db.execute(f"PRAGMA max_page_count = {pages + 2}")
    with pytest.raises(OutboxFullError, match="NOT saved"):
        for n in range(1, 10_000):
            box.append([NewRecord("field_test", {"n": n, "blob": "x" * 4000})])
    written = len(box.records())
    box.close()
    check = sqlite3.connect(path)
    assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    check.close()
    with Outbox(path) as again:
        assert again.records()[0].uuid == kept[0].uuid
        assert len(again.records()) == written


def test_unopenable_outbox_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StationError, match="cannot open"):
        Outbox(blocker / "outbox.db")
