"""A short-lived, process-wide cache of device-key lookups (every station request needs one).

Only keys found valid are kept, for :data:`TTL_S` seconds. Revoking a key through this
process (API, web or crud in the same process) empties the cache at once and again when
the revocation commits; a revocation made by another process (another instance behind a
balancer, the CLI) is honoured by this one within :data:`TTL_S` seconds.
"""

from __future__ import annotations

import hashlib
import threading
import time
from typing import Generic, TypeVar

from service.principal import Principal

V = TypeVar("V")

#: How long a valid key is trusted without asking the database again (the revocation bound).
TTL_S = 2.0
#: Entries kept at most (a flood of distinct valid keys only costs lookups).
MAX_ENTRIES = 10_000


class TtlCache(Generic[V]):
    """Values by secret, kept for ``ttl_s`` seconds; the secrets are held only as SHA-256."""

    def __init__(self, ttl_s: float = TTL_S, max_entries: int = MAX_ENTRIES) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, V]] = {}
        self._lock = threading.Lock()
        self._generation = 0

    @staticmethod
    def _key(secret: str) -> str:
        return hashlib.sha256(secret.encode("utf-8")).hexdigest()

    def generation(self) -> int:
        """A counter bumped by :meth:`clear`: a lookup started before a clear is not cached."""
        return self._generation

    def get(self, secret: str, now: float | None = None) -> V | None:
        """The cached value, or None when absent or expired."""
        found = self._entries.get(self._key(secret))
        if found is None:
            return None
        expires, value = found
        if (time.monotonic() if now is None else now) >= expires:
            return None
        return value

    def put(
        self, secret: str, value: V, *, generation: int | None = None, now: float | None = None
    ) -> None:
        """Keep ``value``, unless the cache was cleared since ``generation`` was read."""
        with self._lock:
            if generation is not None and generation != self._generation:
                return  # a revocation happened while this lookup ran: do not keep its answer
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            at = time.monotonic() if now is None else now
            self._entries[self._key(secret)] = (at + self.ttl_s, value)

    def clear(self) -> None:
        """Forget everything (a key was revoked)."""
        with self._lock:
            self._generation += 1
            self._entries.clear()


#: Device key → principal, shared by every app in this process.
device_keys: TtlCache[Principal] = TtlCache()
