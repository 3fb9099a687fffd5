"""Exchange packages between agencies (issue 8): the file format, pure and database-free.

Bytes in, typed objects out; nothing here touches a database, so the format is tested byte
for byte (``tests/service/test_exchange_package.py``).

Format, version 1
-----------------
A package is one UTF-8 JSON file in canonical form (sorted keys, no spaces; see
:func:`service.audit.canonical_json`)::

    {"format": "fieldscan-exchange-package", "version": 1,
     "manifest": "<base64 of the manifest bytes>",
     "signature": "<hex: Ed25519 signature of the manifest bytes by the issuing agency>",
     "records": [<record>, ...]}

The manifest (``manifest.json``; kept as its exact bytes so the detached signature covers
them, never a re-serialisation) is canonical JSON too::

    {"format": "fieldscan-exchange-manifest", "version": 1,
     "package_id": "<uuid>", "created_at": "2026-03-14T08:30:00.000000Z",
     "issuer": {"id": "<agency uuid>", "name": ..., "country": "PE", "kind": "customs"},
     "recipients": ["<agency uuid>", ...],
     "signing_key_fingerprint": "<sha256 hex of the raw Ed25519 public key>",
     "records": [{"type": "seizure", "id": "<uuid>", "version": 3, "sha256": "<hex>"}, ...]}

``records[i]`` of the package is the record the manifest's ``records[i]`` describes; its
``sha256`` is that of the record's canonical JSON. Agency ids are the agencies' ids on
their home instances, so ``shared_with`` means the same everywhere.

Encrypted packages wrap those bytes in an envelope (canonical JSON as well)::

    {"format": "fieldscan-exchange-envelope", "version": 1,
     "alg": "X25519-HKDF-SHA256-ChaCha20Poly1305",
     "recipient": "<agency uuid>", "recipient_key_fingerprint": "<sha256 hex>",
     "ephemeral_key": "<hex X25519 public key>", "nonce": "<hex, 12 bytes>",
     "ciphertext": "<base64>"}

The key is HKDF-SHA256 of the X25519 shared secret between a fresh ephemeral key and the
recipient's key (``info`` binds both public keys); the envelope header (every field but
``ciphertext``) is the AEAD's associated data, so a changed header fails decryption.

Reading a package re-encodes everything it parsed and requires the very same bytes, so no
byte can change without the package being refused: any altered byte is either a parse
error, a non-canonical form, a bad signature, a record hash mismatch or a failed
decryption. Each refusal is an :class:`ExchangeError` subclass with a ``reason`` code
(:class:`~service.exchange.reasons.PackageRefusal`), its ``params`` and a sentence for people.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from service.audit import canonical_json, sha256_hex
from service.errors import ServiceError
from service.exchange.reasons import PackageRefusal

PACKAGE_FORMAT = "fieldscan-exchange-package"
MANIFEST_FORMAT = "fieldscan-exchange-manifest"
ENVELOPE_FORMAT = "fieldscan-exchange-envelope"
FORMAT_VERSION = 1
ENVELOPE_ALG = "X25519-HKDF-SHA256-ChaCha20Poly1305"
#: Record types a package may carry, in the order they are written and imported.
RECORD_TYPES = ("seizure", "item", "field_test", "custody_event", "lab_result")
#: Larger files are refused before parsing.
MAX_PACKAGE_BYTES = 512 * 1024 * 1024
_HKDF_INFO = b"fieldscan-exchange-envelope-v1"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")


# --------------------------------------------------------------------------- errors


class ExchangeError(ServiceError):
    """A package was refused: ``reason`` is its code, ``params`` its data, the message says why.

    ``params`` holds JSON values only (ids as text), as the API returns them.
    """

    reason: ClassVar[str] = "exchange_error"

    def __init__(self, message: str, **params: Any) -> None:
        self.message = message
        self.params: dict[str, Any] = params
        super().__init__(message)


class MalformedPackageError(ExchangeError):
    """Not a package of a known format: truncated, not canonical, a field missing or odd."""

    reason = PackageRefusal.MALFORMED


class UnknownSignerError(ExchangeError):
    """The issuing agency is not a registered partner (no key to check the signature)."""

    reason = PackageRefusal.UNKNOWN_SIGNER

    def __init__(self, message: str, *, issuer_id: uuid.UUID, revoked: bool = False) -> None:
        self.issuer_id = issuer_id
        super().__init__(message, issuer_id=str(issuer_id), revoked=revoked)


class BadSignatureError(ExchangeError):
    """The manifest's signature does not verify with the issuer's registered key."""

    reason = PackageRefusal.BAD_SIGNATURE


class TamperedRecordError(ExchangeError):
    """A record does not match the hash, id or version the signed manifest gives it."""

    reason = PackageRefusal.TAMPERED_RECORD


class WrongRecipientError(ExchangeError):
    """The package is addressed to other agencies than the one importing it."""

    reason = PackageRefusal.WRONG_RECIPIENT


class DecryptionError(ExchangeError):
    """An encrypted package cannot be decrypted with the recipient's key."""

    reason = PackageRefusal.UNDECRYPTABLE


# --------------------------------------------------------------------------- keys


def public_bytes(key: Ed25519PublicKey | X25519PublicKey) -> bytes:
    """The raw 32-byte public key."""
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def fingerprint(key: Ed25519PublicKey | X25519PublicKey | bytes) -> str:
    """SHA-256 (hex) of a raw public key: how keys are named in manifests and the database."""
    raw = key if isinstance(key, bytes) else public_bytes(key)
    return sha256_hex(raw)


def signing_public_key(hex_key: str) -> Ed25519PublicKey:
    """An Ed25519 public key from its 64 hex digits; :class:`ValueError` otherwise."""
    if not _HEX64.match(hex_key):
        raise ValueError("an Ed25519 public key is 64 lower-case hex digits")
    return Ed25519PublicKey.from_public_bytes(bytes.fromhex(hex_key))


def encryption_public_key(hex_key: str) -> X25519PublicKey:
    """An X25519 public key from its 64 hex digits; :class:`ValueError` otherwise."""
    if not _HEX64.match(hex_key):
        raise ValueError("an X25519 public key is 64 lower-case hex digits")
    return X25519PublicKey.from_public_bytes(bytes.fromhex(hex_key))


# --------------------------------------------------------------------------- typed objects


@dataclass(frozen=True, slots=True)
class Issuer:
    """The agency that issues (and signs) a package, as it is known on its home instance."""

    id: uuid.UUID
    name: str
    country: str
    kind: str


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    type: str
    id: uuid.UUID
    version: int
    sha256: str


@dataclass(frozen=True, slots=True)
class Manifest:
    package_id: uuid.UUID
    created_at: datetime
    issuer: Issuer
    recipients: tuple[uuid.UUID, ...]
    signing_key_fingerprint: str
    entries: tuple[ManifestEntry, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": MANIFEST_FORMAT,
            "version": FORMAT_VERSION,
            "package_id": str(self.package_id),
            "created_at": iso(self.created_at),
            "issuer": {
                "id": str(self.issuer.id),
                "name": self.issuer.name,
                "country": self.issuer.country,
                "kind": self.issuer.kind,
            },
            "recipients": [str(r) for r in self.recipients],
            "signing_key_fingerprint": self.signing_key_fingerprint,
            "records": [
                {"type": e.type, "id": str(e.id), "version": e.version, "sha256": e.sha256}
                for e in self.entries
            ],
        }

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_json()).encode("utf-8")


@dataclass(frozen=True, slots=True)
class ExchangeRecord:
    """One record: its type and its columns as JSON values (bytes as base64)."""

    type: str
    data: dict[str, Any]

    @property
    def id(self) -> uuid.UUID:
        return uuid.UUID(str(self.data["id"]))

    @property
    def version(self) -> int:
        return int(self.data["version"])

    @property
    def sha256(self) -> str:
        return record_sha256(self.data)


@dataclass(frozen=True, slots=True)
class Package:
    """A verified package: the manifest, its exact bytes and signature, and the records."""

    manifest: Manifest
    manifest_bytes: bytes
    signature: bytes
    records: tuple[ExchangeRecord, ...]
    #: Whether it arrived encrypted to the recipient.
    encrypted: bool = False
    #: Fingerprint of the key whose signature was verified.
    verified_key_fingerprint: str = field(default="")

    @property
    def manifest_sha256(self) -> str:
        return sha256_hex(self.manifest_bytes)


@dataclass(frozen=True, slots=True)
class BuiltPackage:
    """A package just written: its bytes (unencrypted) and its manifest."""

    data: bytes
    manifest: Manifest
    manifest_bytes: bytes

    @property
    def manifest_sha256(self) -> str:
        return sha256_hex(self.manifest_bytes)


# --------------------------------------------------------------------------- helpers


def iso(value: datetime) -> str:
    """UTC, microseconds, ``Z``: the one timestamp form of packages."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(text: str) -> datetime:
    """The inverse of :func:`iso`; :class:`ValueError` for any other form."""
    value = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    if iso(value) != text:
        raise ValueError(f"{text!r} is not a canonical timestamp")
    return value


def record_sha256(data: Mapping[str, Any]) -> str:
    """SHA-256 of a record's canonical JSON (what a manifest entry holds)."""
    return sha256_hex(canonical_json(data))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str, what: str) -> bytes:
    """Strict base64: only the canonical encoding of some bytes is accepted."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise MalformedPackageError(f"{what} is not valid base64") from None
    if b64(raw) != text:
        raise MalformedPackageError(f"{what} is not canonical base64")
    return raw


def _unhex(text: Any, what: str, size: int) -> bytes:
    if not isinstance(text, str) or not re.fullmatch(f"[0-9a-f]{{{2 * size}}}", text):
        raise MalformedPackageError(f"{what} must be {2 * size} lower-case hex digits")
    return bytes.fromhex(text)


def _uuid(text: Any, what: str) -> uuid.UUID:
    try:
        value = uuid.UUID(text)
    except (TypeError, ValueError, AttributeError):
        raise MalformedPackageError(f"{what} is not a UUID") from None
    if str(value) != text:
        raise MalformedPackageError(f"{what} is not a canonical UUID")
    return value


def _str(obj: Mapping[str, Any], key: str, what: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise MalformedPackageError(f"{what}.{key} must be a string")
    return value


def _keys(obj: Any, expected: set[str], what: str) -> Mapping[str, Any]:
    if not isinstance(obj, dict):
        raise MalformedPackageError(f"{what} must be a JSON object")
    if set(obj) != expected:
        missing = sorted(expected - set(obj))
        extra = sorted(set(obj) - expected)
        raise MalformedPackageError(
            f"{what}: "
            + "; ".join(
                part
                for part in (
                    f"missing {', '.join(missing)}" if missing else "",
                    f"unexpected {', '.join(extra)}" if extra else "",
                )
                if part
            )
        )
    return obj


def _canonical_json(data: bytes, what: str) -> Any:
    """Parse ``data`` as JSON that must be in canonical form (so nothing else can change)."""
    if not data:
        raise MalformedPackageError(f"{what} is empty")
    try:
        text = data.decode("utf-8")
        value = json.loads(text, parse_constant=_no_constants)
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedPackageError(f"{what} is not JSON (truncated or corrupted): {exc}") from None
    try:
        again = canonical_json(value)
    except ValueError:
        raise MalformedPackageError(f"{what} holds numbers JSON cannot carry") from None
    if again != text:
        raise MalformedPackageError(f"{what} is not in canonical form (altered)")
    return value


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _version(obj: Mapping[str, Any], fmt: str, what: str) -> None:
    if obj.get("format") != fmt:
        raise MalformedPackageError(f"{what}: format is {obj.get('format')!r}, expected {fmt!r}")
    if obj.get("version") != FORMAT_VERSION:
        raise MalformedPackageError(
            f"{what}: format version {obj.get('version')!r} is not supported "
            f"(this instance reads version {FORMAT_VERSION})"
        )


# --------------------------------------------------------------------------- writing


def build_package(
    *,
    issuer: Issuer,
    recipients: Sequence[uuid.UUID],
    records: Sequence[ExchangeRecord],
    signing_key: Ed25519PrivateKey,
    package_id: uuid.UUID | None = None,
    created_at: datetime | None = None,
) -> BuiltPackage:
    """The signed package for ``records`` (in the given order).

    Raises
    ------
    ValueError
        For an unknown record type, a record without ``id``/``version``, a duplicate record,
        or no recipient.
    """
    if not recipients:
        raise ValueError("a package needs at least one recipient")
    seen: set[tuple[str, uuid.UUID]] = set()
    entries = []
    for record in records:
        if record.type not in RECORD_TYPES:
            raise ValueError(f"unknown record type {record.type!r}")
        if (record.type, record.id) in seen:
            raise ValueError(f"{record.type} {record.id} appears twice")
        seen.add((record.type, record.id))
        entries.append(
            ManifestEntry(
                type=record.type, id=record.id, version=record.version, sha256=record.sha256
            )
        )
    manifest = Manifest(
        package_id=package_id or uuid.uuid4(),
        created_at=created_at or datetime.now(UTC),
        issuer=issuer,
        recipients=tuple(sorted(set(recipients), key=str)),
        signing_key_fingerprint=fingerprint(signing_key.public_key()),
        entries=tuple(entries),
    )
    manifest_bytes = manifest.to_bytes()
    container = {
        "format": PACKAGE_FORMAT,
        "version": FORMAT_VERSION,
        "manifest": b64(manifest_bytes),
        "signature": signing_key.sign(manifest_bytes).hex(),
        "records": [r.data for r in records],
    }
    return BuiltPackage(
        data=canonical_json(container).encode("utf-8"),
        manifest=manifest,
        manifest_bytes=manifest_bytes,
    )


def _envelope_key(shared: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO + ephemeral + recipient
    ).derive(shared)


def _header_aad(header: Mapping[str, Any]) -> bytes:
    return canonical_json(dict(header)).encode("utf-8")


def encrypt_package(
    plain: bytes, *, recipient_id: uuid.UUID, recipient_key: X25519PublicKey
) -> bytes:
    """Wrap package bytes in an envelope only the holder of ``recipient_key``'s secret opens."""
    ephemeral = X25519PrivateKey.generate()
    ephemeral_pub = public_bytes(ephemeral.public_key())
    recipient_pub = public_bytes(recipient_key)
    key = _envelope_key(ephemeral.exchange(recipient_key), ephemeral_pub, recipient_pub)
    nonce = os.urandom(12)
    header = {
        "format": ENVELOPE_FORMAT,
        "version": FORMAT_VERSION,
        "alg": ENVELOPE_ALG,
        "recipient": str(recipient_id),
        "recipient_key_fingerprint": fingerprint(recipient_pub),
        "ephemeral_key": ephemeral_pub.hex(),
        "nonce": nonce.hex(),
    }
    ciphertext = ChaCha20Poly1305(key).encrypt(nonce, plain, _header_aad(header))
    return canonical_json({**header, "ciphertext": b64(ciphertext)}).encode("utf-8")


_ENVELOPE_KEYS = {
    "format", "version", "alg", "recipient", "recipient_key_fingerprint", "ephemeral_key",
    "nonce", "ciphertext",
}  # fmt: skip


def decrypt_package(
    envelope: Mapping[str, Any],
    *,
    private_key: X25519PrivateKey | None,
    recipient: uuid.UUID | None,
) -> bytes:
    """The package bytes inside a parsed envelope (see :func:`read_package`)."""
    obj = _keys(envelope, _ENVELOPE_KEYS, "envelope")
    _version(obj, ENVELOPE_FORMAT, "envelope")
    if obj["alg"] != ENVELOPE_ALG:
        raise MalformedPackageError(f"envelope: unknown encryption {obj['alg']!r}")
    addressed = _uuid(obj["recipient"], "envelope.recipient")
    fingerprint_in = _unhex(obj["recipient_key_fingerprint"], "envelope key fingerprint", 32)
    ephemeral = _unhex(obj["ephemeral_key"], "envelope.ephemeral_key", 32)
    nonce = _unhex(obj["nonce"], "envelope.nonce", 12)
    ciphertext = unb64(_str(obj, "ciphertext", "envelope"), "envelope.ciphertext")
    if recipient is not None and addressed != recipient:
        raise WrongRecipientError(
            f"the package is encrypted for agency {addressed}, not for agency {recipient}",
            recipients=[str(addressed)],
        )
    if private_key is None:
        raise DecryptionError("the package is encrypted and no decryption key is available")
    own_pub = public_bytes(private_key.public_key())
    if fingerprint(own_pub) != fingerprint_in.hex():
        raise DecryptionError(
            "the package is encrypted to another key "
            f"({fingerprint_in.hex()[:16]}…, ours is {fingerprint(own_pub)[:16]}…)"
        )
    try:
        shared = private_key.exchange(X25519PublicKey.from_public_bytes(ephemeral))
        key = _envelope_key(shared, ephemeral, own_pub)
        header = {k: v for k, v in obj.items() if k != "ciphertext"}
        return ChaCha20Poly1305(key).decrypt(nonce, ciphertext, _header_aad(header))
    except (InvalidTag, ValueError):
        raise DecryptionError(
            "the encrypted package cannot be decrypted (altered, or encrypted to another key)"
        ) from None


# --------------------------------------------------------------------------- reading


def _manifest(data: bytes) -> Manifest:
    obj = _keys(
        _canonical_json(data, "manifest"),
        {
            "format",
            "version",
            "package_id",
            "created_at",
            "issuer",
            "recipients",
            "signing_key_fingerprint",
            "records",
        },
        "manifest",
    )
    _version(obj, MANIFEST_FORMAT, "manifest")
    issuer_obj = _keys(obj["issuer"], {"id", "name", "country", "kind"}, "manifest.issuer")
    country = _str(issuer_obj, "country", "manifest.issuer")
    if not _COUNTRY.match(country):
        raise MalformedPackageError("manifest.issuer.country is not an ISO 3166-1 alpha-2 code")
    issuer = Issuer(
        id=_uuid(issuer_obj["id"], "manifest.issuer.id"),
        name=_str(issuer_obj, "name", "manifest.issuer"),
        country=country,
        kind=_str(issuer_obj, "kind", "manifest.issuer"),
    )
    try:
        created_at = parse_iso(_str(obj, "created_at", "manifest"))
    except ValueError:
        raise MalformedPackageError("manifest.created_at is not a canonical timestamp") from None
    if not isinstance(obj["recipients"], list) or not obj["recipients"]:
        raise MalformedPackageError("manifest.recipients must be a non-empty list")
    recipients = tuple(_uuid(r, "manifest.recipients[]") for r in obj["recipients"])
    if not isinstance(obj["records"], list):
        raise MalformedPackageError("manifest.records must be a list")
    entries = []
    seen: set[tuple[str, uuid.UUID]] = set()
    for n, entry_obj in enumerate(obj["records"]):
        what = f"manifest.records[{n}]"
        entry = _keys(entry_obj, {"type", "id", "version", "sha256"}, what)
        if entry["type"] not in RECORD_TYPES:
            raise MalformedPackageError(f"{what}: unknown record type {entry['type']!r}")
        version = entry["version"]
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise MalformedPackageError(f"{what}: version must be a positive integer")
        item = ManifestEntry(
            type=entry["type"],
            id=_uuid(entry["id"], f"{what}.id"),
            version=version,
            sha256=_unhex(entry["sha256"], f"{what}.sha256", 32).hex(),
        )
        if (item.type, item.id) in seen:
            raise MalformedPackageError(f"{what}: {item.type} {item.id} is listed twice")
        seen.add((item.type, item.id))
        entries.append(item)
    manifest = Manifest(
        package_id=_uuid(obj["package_id"], "manifest.package_id"),
        created_at=created_at,
        issuer=issuer,
        recipients=recipients,
        signing_key_fingerprint=_unhex(
            obj["signing_key_fingerprint"], "manifest.signing_key_fingerprint", 32
        ).hex(),
        entries=tuple(entries),
    )
    if manifest.to_bytes() != data:  # every parsed value written back gives the same bytes
        raise MalformedPackageError("manifest is not in canonical form (altered)")
    return manifest


def read_package(
    data: bytes,
    *,
    signer_key: Callable[[uuid.UUID], Ed25519PublicKey | None],
    recipient: uuid.UUID | None = None,
    decryption_key: X25519PrivateKey | None = None,
) -> Package:
    """Check a package from its bytes and return its verified content.

    Checks, in order: size and canonical JSON; the envelope (recipient, decryption) when
    encrypted; the manifest; the issuer's registered key (``signer_key(issuer id)``, None
    when the issuer is not a partner); the signature over the manifest bytes; the
    recipient; and each record against its manifest entry (count, hash, id, version).

    Raises
    ------
    MalformedPackageError, DecryptionError, UnknownSignerError, BadSignatureError,
    WrongRecipientError, TamperedRecordError
        Each with a sentence saying what is wrong; nothing is returned then.
    """
    if len(data) > MAX_PACKAGE_BYTES:
        raise MalformedPackageError(f"package larger than {MAX_PACKAGE_BYTES} bytes")
    outer = _canonical_json(data, "package")
    encrypted = isinstance(outer, dict) and outer.get("format") == ENVELOPE_FORMAT
    if encrypted:
        data = decrypt_package(outer, private_key=decryption_key, recipient=recipient)
        outer = _canonical_json(data, "decrypted package")
    obj = _keys(outer, {"format", "version", "manifest", "signature", "records"}, "package")
    _version(obj, PACKAGE_FORMAT, "package")
    manifest_bytes = unb64(_str(obj, "manifest", "package"), "package.manifest")
    signature = _unhex(obj["signature"], "package.signature", 64)
    if not isinstance(obj["records"], list):
        raise MalformedPackageError("package.records must be a list")
    manifest = _manifest(manifest_bytes)

    key = signer_key(manifest.issuer.id)
    if key is None:
        raise UnknownSignerError(
            f"agency {manifest.issuer.id} ({manifest.issuer.name}) is not a registered "
            "exchange partner: register its public keys first",
            issuer_id=manifest.issuer.id,
        )
    try:
        key.verify(signature, manifest_bytes)
    except InvalidSignature:
        registered = fingerprint(key)
        hint = (
            ""
            if registered == manifest.signing_key_fingerprint
            else f" (signed with key {manifest.signing_key_fingerprint[:16]}…, "
            f"registered key is {registered[:16]}…)"
        )
        raise BadSignatureError(
            f"the manifest's signature does not verify with the registered key of agency "
            f"{manifest.issuer.id}{hint}: altered or forged",
            issuer_id=str(manifest.issuer.id),
            signed_key_fingerprint=manifest.signing_key_fingerprint,
            registered_key_fingerprint=registered,
        ) from None
    if recipient is not None and recipient not in manifest.recipients:
        raise WrongRecipientError(
            f"the package is addressed to {', '.join(map(str, manifest.recipients))}, "
            f"not to agency {recipient}",
            recipients=[str(r) for r in manifest.recipients],
        )
    records = _records(obj["records"], manifest)
    return Package(
        manifest=manifest,
        manifest_bytes=manifest_bytes,
        signature=signature,
        records=records,
        encrypted=encrypted,
        verified_key_fingerprint=fingerprint(key),
    )


def _records(items: list[Any], manifest: Manifest) -> tuple[ExchangeRecord, ...]:
    if len(items) != len(manifest.entries):
        raise TamperedRecordError(
            f"the package holds {len(items)} records but its signed manifest lists "
            f"{len(manifest.entries)}"
        )
    records = []
    for entry, data in zip(manifest.entries, items, strict=True):
        label = f"{entry.type} {entry.id}"
        if not isinstance(data, dict):
            raise TamperedRecordError(f"{label}: the record is not a JSON object")
        if record_sha256(data) != entry.sha256:
            raise TamperedRecordError(f"{label}: content does not match the signed manifest hash")
        if data.get("id") != str(entry.id) or data.get("version") != entry.version:
            raise TamperedRecordError(f"{label}: id or version differs from the signed manifest")
        records.append(ExchangeRecord(type=entry.type, data=data))
    return tuple(records)
