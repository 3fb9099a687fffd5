"""The exchange package format, byte for byte, without a database."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.audit import canonical_json, sha256_hex
from service.exchange.package import (
    BadSignatureError,
    DecryptionError,
    ExchangeError,
    ExchangeRecord,
    Issuer,
    MalformedPackageError,
    TamperedRecordError,
    UnknownSignerError,
    WrongRecipientError,
    b64,
    build_package,
    encrypt_package,
    fingerprint,
    read_package,
)

ISSUER_KEY = Ed25519PrivateKey.generate()
OTHER_KEY = Ed25519PrivateKey.generate()
RECIPIENT_KEY = X25519PrivateKey.generate()
ISSUER = Issuer(id=uuid.uuid4(), name="Aduanas del Perú", country="PE", kind="customs")
RECIPIENT = uuid.uuid4()
SEIZURE_ID = uuid.uuid4()
TEST_ID = uuid.uuid4()
AXIS = np.linspace(200.0, 2000.0, 256)
VALUES = np.random.default_rng(7).normal(1000.0, 50.0, 256) + 1e-9  # full float64 precision


def _records() -> list[ExchangeRecord]:
    axis = AXIS.astype("<f8").tobytes()
    values = VALUES.astype("<f8").tobytes()
    return [
        ExchangeRecord(
            "seizure",
            {
                "id": str(SEIZURE_ID),
                "version": 3,
                "narrative": "maletín, doble fondo",
                "lat": -12.02,
            },
        ),
        ExchangeRecord(
            "field_test",
            {
                "id": str(TEST_ID),
                "version": 1,
                "seizure_id": str(SEIZURE_ID),
                "axis_f64le": b64(axis),
                "intensities_f64le": b64(values),
                "spectrum_sha256": sha256_hex(axis + values),
            },
        ),
    ]


def _signer(key: Ed25519PrivateKey | None = ISSUER_KEY) -> Any:
    return lambda issuer_id: key.public_key() if key and issuer_id == ISSUER.id else None


def _build(**kw: Any) -> bytes:
    args: dict[str, Any] = {
        "issuer": ISSUER,
        "recipients": [RECIPIENT],
        "records": _records(),
        "signing_key": ISSUER_KEY,
        "package_id": uuid.UUID(int=1),
        "created_at": datetime(2026, 3, 14, 8, 30, tzinfo=UTC),
    }
    args.update(kw)
    return build_package(**args).data


def _read(data: bytes, **kw: Any) -> Any:
    args: dict[str, Any] = {
        "signer_key": _signer(),
        "recipient": RECIPIENT,
        "decryption_key": RECIPIENT_KEY,
    }
    args.update(kw)
    return read_package(data, **args)


def _edit(data: bytes, change: Any) -> bytes:
    doc = json.loads(data)
    change(doc)
    return canonical_json(doc).encode()


def test_round_trip_keeps_every_record_and_spectrum_bit_for_bit() -> None:
    data = _build()
    package = _read(data)
    assert [r.data for r in package.records] == [r.data for r in _records()]
    assert package.manifest.issuer == ISSUER
    assert package.manifest.recipients == (RECIPIENT,)
    assert package.manifest.package_id == uuid.UUID(int=1)
    assert [e.version for e in package.manifest.entries] == [3, 1]
    assert package.verified_key_fingerprint == fingerprint(ISSUER_KEY.public_key())
    assert package.encrypted is False
    spectrum = package.records[1].data
    axis = np.frombuffer(base64.b64decode(spectrum["axis_f64le"]), dtype="<f8")
    values = np.frombuffer(base64.b64decode(spectrum["intensities_f64le"]), dtype="<f8")
    assert axis.tobytes() == AXIS.tobytes() and values.tobytes() == VALUES.tobytes()


def test_the_same_input_gives_the_same_bytes() -> None:
    # Ed25519 signatures are deterministic: a package is reproducible from its content.
    assert _build() == _build()
    assert _build() != _build(package_id=uuid.UUID(int=2))


def test_encrypted_round_trip() -> None:
    plain = _build()
    data = encrypt_package(plain, recipient_id=RECIPIENT, recipient_key=RECIPIENT_KEY.public_key())
    assert b"doble fondo" not in data and b"seizure" not in data
    package = _read(data)
    assert package.encrypted is True
    assert [r.data for r in package.records] == [r.data for r in _records()]


def test_tampered_manifest_is_refused() -> None:
    def change(doc: dict[str, Any]) -> None:
        manifest = json.loads(base64.b64decode(doc["manifest"]))
        manifest["recipients"] = [str(uuid.uuid4())]
        doc["manifest"] = b64(canonical_json(manifest).encode())

    with pytest.raises(BadSignatureError, match="does not verify"):
        _read(_edit(_build(), change))


def test_tampered_record_is_refused() -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["records"][0]["narrative"] = "nothing found"

    with pytest.raises(TamperedRecordError, match="does not match the signed manifest hash"):
        _read(_edit(_build(), change))


def test_removed_or_added_record_is_refused() -> None:
    with pytest.raises(TamperedRecordError, match="holds 1 records"):
        _read(_edit(_build(), lambda doc: doc["records"].pop()))
    with pytest.raises(TamperedRecordError, match="holds 3 records"):
        _read(_edit(_build(), lambda doc: doc["records"].append({"id": "x"})))


def test_swapped_records_are_refused() -> None:
    with pytest.raises(TamperedRecordError):
        _read(_edit(_build(), lambda doc: doc["records"].reverse()))


def test_tampered_signature_is_refused() -> None:
    def change(doc: dict[str, Any]) -> None:
        sig = bytearray(bytes.fromhex(doc["signature"]))
        sig[10] ^= 0x40
        doc["signature"] = sig.hex()

    with pytest.raises(BadSignatureError):
        _read(_edit(_build(), change))


def test_signature_of_another_key_is_refused_with_both_fingerprints() -> None:
    with pytest.raises(BadSignatureError, match="registered key is"):
        _read(_build(signing_key=OTHER_KEY))


def test_tampered_envelope_header_is_refused() -> None:
    plain = _build()
    data = encrypt_package(plain, recipient_id=RECIPIENT, recipient_key=RECIPIENT_KEY.public_key())

    def nonce(doc: dict[str, Any]) -> None:
        doc["nonce"] = ("0" if doc["nonce"][0] != "0" else "1") + doc["nonce"][1:]

    def ciphertext(doc: dict[str, Any]) -> None:
        raw = bytearray(base64.b64decode(doc["ciphertext"]))
        raw[-1] ^= 1
        doc["ciphertext"] = b64(bytes(raw))

    def ephemeral(doc: dict[str, Any]) -> None:
        doc["ephemeral_key"] = X25519PrivateKey.generate().public_key().public_bytes_raw().hex()

    for change in (nonce, ciphertext, ephemeral):
        with pytest.raises(DecryptionError):
            _read(_edit(data, change))


def test_envelope_for_another_recipient_is_refused() -> None:
    data = encrypt_package(
        _build(), recipient_id=RECIPIENT, recipient_key=RECIPIENT_KEY.public_key()
    )
    with pytest.raises(WrongRecipientError, match="encrypted for agency"):
        _read(data, recipient=uuid.uuid4())
    # A changed recipient in the header: caught before decryption would fail anyway.
    other = uuid.uuid4()
    changed = _edit(data, lambda doc: doc.update(recipient=str(other)))
    with pytest.raises(DecryptionError):
        _read(changed, recipient=other)


def test_decryption_with_the_wrong_key_is_refused() -> None:
    data = encrypt_package(
        _build(), recipient_id=RECIPIENT, recipient_key=RECIPIENT_KEY.public_key()
    )
    with pytest.raises(DecryptionError, match="another key"):
        _read(data, decryption_key=X25519PrivateKey.generate())
    with pytest.raises(DecryptionError, match="no decryption key"):
        _read(data, decryption_key=None)


def test_unknown_signer_is_refused() -> None:
    with pytest.raises(UnknownSignerError, match="not a registered exchange partner") as info:
        _read(_build(), signer_key=lambda _id: None)
    assert info.value.issuer_id == ISSUER.id
    assert info.value.reason == "unknown_signer"


def test_wrong_recipient_is_refused() -> None:
    with pytest.raises(WrongRecipientError, match="addressed to"):
        _read(_build(), recipient=uuid.uuid4())


@pytest.mark.parametrize("cut", [1, 10, 100, 1000])
def test_truncated_package_is_refused(cut: int) -> None:
    data = _build()
    with pytest.raises(MalformedPackageError):
        _read(data[:-cut])
    enc = encrypt_package(data, recipient_id=RECIPIENT, recipient_key=RECIPIENT_KEY.public_key())
    with pytest.raises(MalformedPackageError):
        _read(enc[:-cut])


@pytest.mark.parametrize(
    "data",
    [b"", b"null", b"[]", b"{}", b"\xff\xfe", b'{"format":"zip"}', b'{"a": 1}', b"NaN"],
)
def test_not_a_package_is_refused(data: bytes) -> None:
    with pytest.raises(MalformedPackageError):
        _read(data)


def test_unsupported_version_is_refused_with_reason() -> None:
    with pytest.raises(MalformedPackageError, match="version 2 is not supported"):
        _read(_edit(_build(), lambda doc: doc.update(version=2)))


def test_reformatted_package_is_refused() -> None:
    # Same JSON, other spacing: not the signed bytes' canonical form.
    pretty = json.dumps(json.loads(_build()), indent=1).encode()
    with pytest.raises(MalformedPackageError, match="canonical"):
        _read(pretty)


def test_upper_case_hex_signature_is_refused() -> None:
    # bytes.fromhex accepts both cases: a one-bit change that must still be caught.
    with pytest.raises(MalformedPackageError, match="lower-case hex"):
        _read(_edit(_build(), lambda doc: doc.update(signature=doc["signature"].upper())))


def test_build_refuses_duplicates_and_unknown_types() -> None:
    record = _records()[0]
    with pytest.raises(ValueError, match="twice"):
        _build(records=[record, record])
    with pytest.raises(ValueError, match="unknown record type"):
        _build(records=[ExchangeRecord("user", {"id": str(uuid.uuid4()), "version": 1})])
    with pytest.raises(ValueError, match="recipient"):
        _build(recipients=[])


def test_errors_share_one_root_with_reasons() -> None:
    reasons = {
        cls.reason
        for cls in (
            MalformedPackageError,
            BadSignatureError,
            TamperedRecordError,
            WrongRecipientError,
            DecryptionError,
            UnknownSignerError,
        )
    }
    assert len(reasons) == 6
    assert all(issubclass(cls, ExchangeError) for cls in (MalformedPackageError, DecryptionError))


_PLAIN = _build()
_ENCRYPTED = encrypt_package(
    _PLAIN, recipient_id=RECIPIENT, recipient_key=RECIPIENT_KEY.public_key()
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    encrypted=st.booleans(),
    position=st.floats(min_value=0, max_value=1, exclude_max=True),
    flip=st.integers(min_value=1, max_value=255),
)
def test_any_single_byte_change_is_refused(encrypted: bool, position: float, flip: int) -> None:
    data = bytearray(_ENCRYPTED if encrypted else _PLAIN)
    data[int(position * len(data))] ^= flip
    with pytest.raises(ExchangeError):
        _read(bytes(data))


def test_every_byte_position_of_a_small_package_is_covered() -> None:
    """Exhaustive over positions (one flip each): no byte of a package is unprotected."""
    small = build_package(
        issuer=ISSUER,
        recipients=[RECIPIENT],
        records=[_records()[0]],
        signing_key=ISSUER_KEY,
    ).data
    for position in range(len(small)):
        for flip in (0x01, 0x20, 0x80):
            data = bytearray(small)
            data[position] ^= flip
            with pytest.raises(ExchangeError):
                _read(bytes(data))
