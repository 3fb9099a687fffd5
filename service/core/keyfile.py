"""Private keys kept in PEM files beside the database, never in it (audit, exchange)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

K = TypeVar("K", Ed25519PrivateKey, X25519PrivateKey)


class KeyFileError(Exception):
    """A key file that cannot be read, written, or holds another kind of key."""


def load_or_create(path: Path, generate: Callable[[], K]) -> K:
    """Read the PEM private key at ``path``, making one with ``generate`` (mode 0600) if absent.

    Safe when several processes start at once: the file is created exclusively, and a
    process that loses the race reads the winner's key.
    """
    kind = type(generate())  # the concrete key class of this cryptography backend
    try:
        if path.exists():
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(key, kind):
                name = kind.__name__.strip("_").removesuffix("PrivateKey")
                raise KeyFileError(f"{path}: not an {name} private key")
            return key
        new = generate()
        pem = new.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        return new
    except FileExistsError:  # another process made it between exists() and open()
        return load_or_create(path, generate)
    except (OSError, ValueError) as exc:
        raise KeyFileError(f"{path}: {exc}") from None
