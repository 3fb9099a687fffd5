"""Password hashing (argon2), access tokens (JWT) and device API keys."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import UTC, datetime, timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from service.errors import AuthenticationError

ALGORITHM = "HS256"
#: Device keys start with this so that a leaked one is recognisable in logs and scanners.
DEVICE_KEY_PREFIX = "fsdk_"


def password_hasher(*, time_cost: int = 3, memory_kib: int = 65536) -> PasswordHasher:
    """An argon2id hasher with the given cost."""
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1)


def hash_password(hasher: PasswordHasher, password: str) -> str:
    """The argon2id hash of ``password``."""
    return hasher.hash(password)


def verify_password(hasher: PasswordHasher, password: str, hashed: str) -> bool:
    """Whether ``password`` matches ``hashed`` (never raises on a wrong password)."""
    try:
        return hasher.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


def create_access_token(
    *, secret: str, user_id: uuid.UUID, expires_delta: timedelta, now: datetime | None = None
) -> str:
    """A signed, short-lived JWT whose subject is the user id."""
    issued = now or datetime.now(UTC)
    payload = {"sub": str(user_id), "iat": issued, "exp": issued + expires_delta}
    return jwt.encode(payload, secret, algorithm=ALGORITHM)


def decode_access_token(*, secret: str, token: str) -> uuid.UUID:
    """The user id in a valid token; :class:`AuthenticationError` otherwise."""
    try:
        payload = jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["exp"]})
        return uuid.UUID(str(payload["sub"]))
    except jwt.ExpiredSignatureError:
        raise AuthenticationError("access token expired") from None
    except (jwt.InvalidTokenError, KeyError, ValueError):
        raise AuthenticationError("invalid access token") from None


def new_device_key() -> str:
    """A fresh device API key (shown once, stored only as its hash)."""
    return DEVICE_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_device_key(key: str) -> str:
    """SHA-256 hex of a device key: the key has 256 bits of entropy, so no salt/stretching."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()
