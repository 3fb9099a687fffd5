"""Faults the pty mock injects, chosen per run (``--fault``) or at run time (:meth:`Faults.set`).

Spelling of one fault (``N`` counts replies or requests, default 1)::

    corrupt[:N]     flip one byte inside the next N replies (fails their MD5)
    badfooter[:N]   break the footer of the next N replies
    drop[:N]        leave a few bytes out of the next N replies
    garbage[:N]     send junk bytes before the next N replies
    notready[:N]    NACK "device not ready" (error 7) to the next N requests
    dead[:N]        ignore the next N requests; ``dead`` alone: never answer again
    slow:S          wait S seconds before every reply
    chunk1          write replies one byte at a time
    vanish[:S]      close the pty in the middle of the next reply; reappear after
                    S seconds at the same link path (never when S is omitted)
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

COUNTED = ("corrupt", "badfooter", "drop", "garbage", "notready", "dead")
FOREVER = -1


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """One parsed fault: its name and its number (count, seconds, or ``None``)."""

    name: str
    value: float | None = None


def parse_fault(text: str) -> FaultSpec:
    """Parse one ``--fault`` value; raises ValueError with the accepted spellings."""
    name, _, arg = text.strip().partition(":")
    name = name.lower()
    known = (*COUNTED, "slow", "chunk1", "vanish")
    if name not in known:
        raise ValueError(f"unknown fault {text!r}; known: {', '.join(known)}")
    if not arg:
        if name == "slow":
            raise ValueError("fault 'slow' needs seconds, e.g. slow:0.5")
        return FaultSpec(name, None)
    if name == "chunk1":
        raise ValueError("fault 'chunk1' takes no argument")
    try:
        value = float(arg)
    except ValueError:
        raise ValueError(f"fault {name!r} needs a number after ':', got {arg!r}") from None
    if value < 0 or (name in COUNTED and value != int(value)):
        raise ValueError(
            f"fault {name!r} needs a non-negative {'integer' if name in COUNTED else 'number'}"
        )
    return FaultSpec(name, value)


class Faults:
    """The active faults; thread-safe, consumed by the pty server as it answers."""

    def __init__(self, specs: list[FaultSpec] | None = None) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self.slow_s = 0.0
        self.chunk1 = False
        self.vanish_pending = False
        self.reappear_s: float | None = None
        for spec in specs or []:
            self.set(spec)

    def set(self, spec: FaultSpec | str) -> None:
        """Arm one fault (adds to the counts already armed)."""
        if isinstance(spec, str):
            spec = parse_fault(spec)
        with self._lock:
            if spec.name in COUNTED:
                if spec.name == "dead" and spec.value is None:
                    self._counts["dead"] = FOREVER
                else:
                    n = 1 if spec.value is None else int(spec.value)
                    self._counts[spec.name] = self._counts.get(spec.name, 0) + n
            elif spec.name == "slow":
                self.slow_s = float(spec.value or 0.0)
            elif spec.name == "chunk1":
                self.chunk1 = True
            elif spec.name == "vanish":
                self.vanish_pending = True
                self.reappear_s = spec.value

    def clear(self) -> None:
        """Disarm every fault."""
        with self._lock:
            self._counts.clear()
            self.slow_s = 0.0
            self.chunk1 = False
            self.vanish_pending = False
            self.reappear_s = None

    def take(self, name: str) -> bool:
        """Consume one occurrence of ``name``; True when it applies now."""
        with self._lock:
            n = self._counts.get(name, 0)
            if n == 0:
                return False
            if n != FOREVER:
                self._counts[name] = n - 1
            return True

    def take_vanish(self) -> tuple[bool, float | None]:
        """Whether to vanish during this reply, and when to reappear."""
        with self._lock:
            if not self.vanish_pending:
                return False, None
            self.vanish_pending = False
            return True, self.reappear_s

    def pending(self, name: str) -> int:
        """How many occurrences of a counted fault remain (-1: forever)."""
        with self._lock:
            return self._counts.get(name, 0)
