"""Byte-for-byte tests of the BLE codec against literals from Wasatch.PY's BLEDevice/EEPROM.

The literals are written out by hand from the upstream source (opcodes, tiers, byte
orders), never produced by the codec itself, so driver and mock cannot share a mistake.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from device.ble import protocol as p
from device.errors import ProtocolError, TransferError

# --- UUIDs ----------------------------------------------------------------------------------


def test_uuids_match_wasatch_profile() -> None:
    assert p.SERVICE_UUID == "d1a7ff00-af78-4449-a34f-4da1afaf51bc"  # upper case upstream
    assert p.Char.LASER_STATE.uuid == "d1a7ff03-af78-4449-a34f-4da1afaf51bc"
    assert p.Char.ACQUIRE.uuid == "d1a7ff04-af78-4449-a34f-4da1afaf51bc"
    assert p.Char.BATTERY_STATE.uuid == "d1a7ff09-af78-4449-a34f-4da1afaf51bc"
    assert p.Char.GENERIC.uuid == "d1a7ff0a-af78-4449-a34f-4da1afaf51bc"
    assert p.Char.SPECTRA.uuid == "d1a7ff0b-af78-4449-a34f-4da1afaf51bc"
    with pytest.raises(ValueError):
        p.characteristic_uuid(0x10000)


# --- GENERIC --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("built", "literal"),
    [
        # INTEGRATION_TIME_MS: tier 0, set 0xb2, 3-byte big-endian
        (lambda: p.encode_generic_set(1, p.INTEGRATION_TIME_MS, 100), "01b2000064"),
        (lambda: p.encode_generic_set(0x2A, p.INTEGRATION_TIME_MS, 70000), "2ab2011170"),
        (lambda: p.encode_generic_get(7, p.INTEGRATION_TIME_MS), "07bf"),
        # SCANS_TO_AVERAGE: tier 1 (one 0xff), set 0x62 / get 0x63, 2 bytes
        (lambda: p.encode_generic_set(2, p.SCANS_TO_AVERAGE, 10), "02ff62000a"),
        (lambda: p.encode_generic_get(3, p.SCANS_TO_AVERAGE), "03ff63"),
        # GAIN_DB: tier 0, set 0xb7 / get 0xc5, "funky float" [int][frac*256]
        (lambda: p.encode_generic_set(4, p.GAIN_DB, 8.5), "04b70880"),
        (lambda: p.encode_generic_get(4, p.GAIN_DB), "04c5"),
        # EEPROM_DATA: tier 1, get 0x01, then page (BE u16) and offset
        (lambda: p.encode_eeprom_request(5, 2, 18), "05ff01000212"),
        (lambda: p.encode_generic_reply(9, 0, b"\x00\x00\x64"), "0900000064"),
        (lambda: p.encode_acquire_status(36, b"\x00\x01\x00\x04"), "ffff2400010004"),
        (lambda: p.encode_laser_enable(True), "ffff01ff0000"),
        (lambda: p.encode_laser_enable(False), "ffff00ff0000"),
    ],
)
def test_encoders_match_literals(built: object, literal: str) -> None:
    assert built() == bytes.fromhex(literal)  # type: ignore[operator]


def test_decode_generic_request_counts_tiers() -> None:
    request = p.decode_generic_request(bytes.fromhex("05ff01000212"))
    assert (request.seq, request.tier, request.opcode, request.payload) == (
        5,
        1,
        1,
        b"\x00\x02\x12",
    )
    assert p.find_generic_attribute(1, 0x01) == (p.EEPROM_DATA, False)
    assert p.find_generic_attribute(0, 0xB2) == (p.INTEGRATION_TIME_MS, True)
    assert p.find_generic_attribute(0, 0x62) is None  # 0x62 lives on tier 1


def test_decode_generic_reply_and_values() -> None:
    reply = p.decode_generic_reply(bytes.fromhex("0900000064"))
    assert (reply.seq, reply.error, reply.error_name) == (9, 0, "OK")
    assert p.INTEGRATION_TIME_MS.decode_value(reply.payload) == 100
    assert p.GAIN_DB.decode_value(b"\x08\x80") == 8.5
    refused = p.decode_generic_reply(b"\x05\x03")
    assert refused.error_name == "INVALID_PARAMETER" and refused.payload == b""
    assert p.decode_generic_reply(b"\x05\x04").error_name == "UNSUPPORTED_COMMAND"
    assert p.decode_generic_reply(b"\x05\x99").error_name == "UNKNOWN_0x99"


@pytest.mark.parametrize("bad", [b"", b"\x05"])
def test_generic_reply_too_short(bad: bytes) -> None:
    with pytest.raises(ProtocolError, match="too short"):
        p.decode_generic_reply(bad)


@pytest.mark.parametrize("bad", [b"", b"\x01", b"\x01\xff\xff"])
def test_generic_request_without_opcode(bad: bytes) -> None:
    with pytest.raises(ProtocolError):
        p.decode_generic_request(bad)


def test_generic_encoders_refuse_bad_input() -> None:
    with pytest.raises(ValueError, match="integer in"):
        p.encode_generic_set(1, p.INTEGRATION_TIME_MS, 1 << 24)
    with pytest.raises(ValueError, match="integer in"):
        p.encode_generic_set(1, p.SCANS_TO_AVERAGE, 2.5)
    with pytest.raises(ValueError, match="read-only"):
        p.encode_generic_set(1, p.EEPROM_DATA, b"\x00")
    with pytest.raises(ValueError, match="one byte"):
        p.encode_generic_get(256, p.INTEGRATION_TIME_MS)
    with pytest.raises(ValueError):
        p.encode_eeprom_request(1, 0, 64)
    with pytest.raises(ProtocolError):
        p.INTEGRATION_TIME_MS.decode_value(b"")


# --- ACQUIRE --------------------------------------------------------------------------------


def test_acquire_status_progress_and_errors() -> None:
    progress = p.decode_acquire_status(bytes.fromhex("ffff2400010004"))
    assert progress.name == "TAKING_RAMAN" and not progress.is_error
    assert progress.progress == (1, 4)
    low = p.decode_acquire_status(bytes.fromhex("ffff02"))
    assert low.name == "ERR_BATT_SOC_TOO_LOW" and low.is_error and low.progress is None
    assert not p.decode_acquire_status(bytes.fromhex("ffff00")).is_error  # NAK: not ready yet
    assert p.decode_acquire_status(bytes.fromhex("ffff1f")).name == "UNKNOWN_0x1f"


@pytest.mark.parametrize("bad", ["ffff", "0000ff", "00"])
def test_acquire_status_rejects_bad_frames(bad: str) -> None:
    with pytest.raises(ProtocolError):
        p.decode_acquire_status(bytes.fromhex(bad))


def test_acquisition_timeout_follows_wasatch_rule() -> None:
    # 4 × max(current, previous) × scans + 6 s
    assert p.acquisition_timeout_s(100, 10) == pytest.approx(10.0)
    assert p.acquisition_timeout_s(100, 1, previous_integration_time_ms=1000) == pytest.approx(10.0)
    assert p.acquisition_timeout_s(50, 2, latency_s=0.5) == pytest.approx(0.9)
    with pytest.raises(ValueError):
        p.acquisition_timeout_s(0, 1)


# --- SPECTRA --------------------------------------------------------------------------------


def test_spectra_packet_byte_order() -> None:
    # first pixel big-endian, counts little-endian (BLEDevice.spectra_notification)
    packet = p.encode_spectra_packet(9, [0x0320, 0x1234])
    assert packet == bytes.fromhex("000920033412")
    first, counts = p.decode_spectra_packet(bytes.fromhex("0102ffff0100"))
    assert first == 258 and counts.tolist() == [65535, 1]


@pytest.mark.parametrize("bad", ["00", "0001", "000102", "ffff0000"])
def test_spectra_packet_malformed(bad: str) -> None:
    with pytest.raises(TransferError) as info:
        p.decode_spectra_packet(bytes.fromhex(bad))
    assert info.value.kind == "malformed"


def test_packet_sizes_follow_mtu() -> None:
    # a notification carries MTU − 3 bytes; 2 of them are the first-pixel header
    assert p.pixels_per_packet(23) == 9
    assert p.pixels_per_packet(247) == 121
    assert p.packet_count(1024, 23) == 114
    assert p.packet_count(1024, 247) == 9
    with pytest.raises(ValueError):
        p.pixels_per_packet(22)


def _packets(counts: list[int], per: int) -> list[bytes]:
    out = []
    for start in range(0, len(counts), per):
        chunk = counts[start : start + per]
        out.append(start.to_bytes(2, "big") + b"".join(c.to_bytes(2, "little") for c in chunk))
    return out


def test_reassembler_in_order() -> None:
    counts = list(range(1000, 1025))
    packets = _packets(counts, 9)
    originals = [bytes(x) for x in packets]
    assembler = p.SpectrumReassembler(25)
    done = [assembler.feed(x) for x in packets]
    assert done == [False, False, True]
    assert assembler.counts().tolist() == counts
    assert packets == originals  # inputs untouched


@pytest.mark.parametrize(
    ("order", "kind"),
    [([0, 2], "missing"), ([0, 0], "duplicate"), ([0, 2, 1], "missing"), ([1], "missing")],
)
def test_reassembler_detects_damage(order: list[int], kind: str) -> None:
    packets = _packets(list(range(25)), 9)
    assembler = p.SpectrumReassembler(25)
    with pytest.raises(TransferError) as info:
        for index in order:
            assembler.feed(packets[index])
    assert info.value.kind == kind


def test_reassembler_overrun_and_incomplete() -> None:
    assembler = p.SpectrumReassembler(10)
    with pytest.raises(TransferError, match="overruns"):
        assembler.feed(_packets(list(range(12)), 12)[0])
    partial = p.SpectrumReassembler(10)
    partial.feed(_packets(list(range(10)), 5)[0])
    with pytest.raises(TransferError, match="incomplete"):
        partial.counts()
    with pytest.raises(ValueError):
        p.SpectrumReassembler(0)


# --- BATTERY / LASER ------------------------------------------------------------------------


def test_battery_state_literal() -> None:
    state = p.decode_battery_state(bytes.fromhex("0157801a1c"))
    assert state == p.BatteryState(True, 87.5, 26, 28)
    assert p.encode_battery_state(p.BatteryState(False, 12.25, 20, 21)) == bytes.fromhex(
        "000c401415"
    )
    with pytest.raises(ProtocolError):
        p.decode_battery_state(b"\x00\x57\x80\x1a")
    with pytest.raises(ProtocolError):
        p.decode_battery_state(bytes.fromhex("00c8001a1c"))  # 200 %


def test_laser_state_literal() -> None:
    state = p.decode_laser_state(bytes.fromhex("000001000a00000364"))
    assert state.enabled and state.watchdog_s == 10
    assert state.can_fire and state.is_firing and state.pwm_percent == 100
    assert p.encode_laser_state(state) == bytes.fromhex("000001000a00000364")
    with pytest.raises(ProtocolError):
        p.decode_laser_state(b"\x00\x00\x01")


# --- EEPROM ---------------------------------------------------------------------------------


def _literal_pages() -> list[bytes]:
    # Offsets and little-endian encodings from wasatch/EEPROM.py read_eeprom().
    page0 = bytearray(64)
    page0[0:8] = b"WP-785XS"
    page0[16:24] = b"WP-01234"
    page0[37] = 1  # has_battery
    page0[38] = 1  # has_laser
    page0[43:45] = bytes.fromhex("6400")  # startup integration 100 ms
    page0[63] = 15  # format
    page1 = bytearray(64)
    page1[0:4] = bytes.fromhex("00104144")  # 772.25
    page1[4:8] = bytes.fromhex("0000003f")  # 0.5
    page1[8:12] = bytes.fromhex("bd3786b5")  # -1e-6
    page2 = bytearray(64)
    page2[0:6] = b"S16011"
    page2[16:18] = bytes.fromhex("0004")  # 1024 active pixels
    page3 = bytearray(64)
    page3[36:40] = bytes.fromhex("00404444")  # 785.0 nm excitation
    page3[40:44] = bytes.fromhex("01000000")  # min integration 1 ms
    page3[44:48] = bytes.fromhex("60ea0000")  # max integration 60000 ms
    return [bytes(page0), bytes(page1), bytes(page2), bytes(page3)]


def test_parse_eeprom_literal_pages() -> None:
    info = p.parse_eeprom(_literal_pages())
    assert (info.model, info.serial, info.detector) == ("WP-785XS", "WP-01234", "S16011")
    assert info.active_pixels_horizontal == 1024 and info.excitation_nm == 785.0
    assert info.wavelength_coeffs[:2] == (772.25, 0.5)
    assert math.isclose(info.wavelength_coeffs[2], -1e-6, rel_tol=1e-6)
    assert info.wavelength_coeffs[3:] == (0.0, 0.0)
    assert (info.min_integration_time_ms, info.max_integration_time_ms) == (1, 60000)
    assert info.startup_integration_time_ms == 100 and info.format == 15


def test_build_eeprom_writes_the_same_bytes() -> None:
    info = p.parse_eeprom(_literal_pages())
    built = p.build_eeprom(info)
    assert len(built) == 8 and all(len(page) == 64 for page in built)
    assert built[:4] == _literal_pages()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda pages: pages[:3], "needs 4 pages"),
        (lambda pages: [pages[0][:40], *pages[1:]], "page 0 has 40 bytes"),
        (lambda pages: [bytes(63) + b"\xff", *pages[1:]], "format 255"),
        (lambda pages: [*pages[:2], bytes(64), pages[3]], "no active pixels"),
        (
            lambda pages: [*pages[:3], bytes(36) + bytes.fromhex("0000c07f") + bytes(24)],
            "excitation",
        ),
        (lambda pages: [pages[0], bytes(64), *pages[2:]], "calibration"),
    ],
)
def test_parse_eeprom_rejects_unusable(damage: object, message: str) -> None:
    pages = _literal_pages()
    with pytest.raises(ProtocolError, match=message):
        p.parse_eeprom(damage(pages))  # type: ignore[operator]
    assert pages == _literal_pages()


def test_counts_array_dtype() -> None:
    _, counts = p.decode_spectra_packet(bytes.fromhex("00000100"))
    assert counts.dtype == np.uint16


@settings(max_examples=100, deadline=None)
@given(
    counts=st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=600),
    mtu=st.integers(23, 517),
)
def test_packets_at_any_mtu_reassemble_exactly(counts: list[int], mtu: int) -> None:
    per = p.pixels_per_packet(mtu)
    packets = [
        p.encode_spectra_packet(start, counts[start : start + per])
        for start in range(0, len(counts), per)
    ]
    assert len(packets) == p.packet_count(len(counts), mtu)
    assert all(len(x) <= mtu - 3 for x in packets)
    assembler = p.SpectrumReassembler(len(counts))
    for x in packets:
        assembler.feed(x)
    assert assembler.counts().tolist() == counts
