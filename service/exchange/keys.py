"""Exchange keys of this instance's agencies: kept in files, never in the database.

Each local agency has an Ed25519 key (signs the manifests of its packages) and an X25519 key
(partners encrypt packages to it). Both live as PEM files (mode 0600) in
``Settings.exchange_keys_path`` (default ``data_dir/exchange_keys``), named by the
agency's id, and are made on first use, like the audit checkpoint key. A database dump
therefore never carries the private keys; back the key directory up separately.
Instances behind a balancer share one key directory.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from service.core.keyfile import K, KeyFileError, load_or_create
from service.errors import ConfigError
from service.exchange.package import fingerprint, public_bytes


def _load_or_create(path: Path, generate: Callable[[], K]) -> K:
    try:
        return load_or_create(path, generate)
    except KeyFileError as exc:
        raise ConfigError(f"exchange key {exc}") from None


@dataclass(frozen=True)
class AgencyKeys:
    """The private exchange keys of one local agency."""

    agency_id: uuid.UUID
    signing: Ed25519PrivateKey
    encryption: X25519PrivateKey

    @classmethod
    def load_or_create(cls, key_dir: Path, agency_id: uuid.UUID) -> AgencyKeys:
        """Read the agency's keys from ``key_dir``, making them on first use.

        Raises
        ------
        ConfigError
            When a key file cannot be read or written, or holds another kind of key.
        """
        return cls(
            agency_id=agency_id,
            signing=_load_or_create(
                key_dir / f"{agency_id}.ed25519.pem", Ed25519PrivateKey.generate
            ),
            encryption=_load_or_create(
                key_dir / f"{agency_id}.x25519.pem", X25519PrivateKey.generate
            ),
        )

    @property
    def signing_public_hex(self) -> str:
        return public_bytes(self.signing.public_key()).hex()

    @property
    def encryption_public_hex(self) -> str:
        return public_bytes(self.encryption.public_key()).hex()

    @property
    def signing_fingerprint(self) -> str:
        return fingerprint(self.signing.public_key())
