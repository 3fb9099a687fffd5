"""Calibrated verdicts: what a match result lets us assert.

The thresholds are not guesses: ``benchmarks/calibrate_verdicts.py`` chooses
them on a synthetic validation set (field perturbations, other-instrument
variants, binary mixtures, and leave-substance-out queries of substances that
are *absent* from the library) so that an absent substance is asserted
("identified" or "mixture") in at most ~2 % of cases. See
``benchmarks/CALIBRATION.md`` for the method and the measured figures. A
library file stores the thresholds it was calibrated with; :data:`DEFAULT`
is used for libraries that carry none.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any


class Verdict(enum.StrEnum):
    """The four answers an identification can give (plus ``error`` at the CLI boundary)."""

    IDENTIFIED = "identified"
    MIXTURE = "mixture"
    INCONCLUSIVE = "inconclusive"
    NO_MATCH = "no_match"


#: Plain words for each verdict, for tables read by officers.
PLAIN_WORDS: dict[Verdict, str] = {
    Verdict.IDENTIFIED: "Identified",
    Verdict.MIXTURE: "Mixture",
    Verdict.INCONCLUSIVE: "Inconclusive — confirm in the laboratory",
    Verdict.NO_MATCH: "No match in this library",
}


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Score thresholds (correlations in [-1, 1]) and mixture-acceptance rules.

    Attributes
    ----------
    identify : float
        Minimum match score of the best single candidate for "identified".
    mixture : float
        Minimum match score of a multi-component fit for "mixture".
    inconclusive : float
        Below this the answer is "no_match"; between it and the assertion
        thresholds, "inconclusive".
    min_gain : float
        A further component is kept only when it removes at least this fraction
        of the remaining squared residual.
    min_fraction : float
        … and carries at least this fraction of the signal.
    max_similarity : float
        Two references whose features correlate at least this much over the
        compared range are never both mixture components: such near-twins (a
        drug and its precursor or analogue) cannot be told apart reliably, and
        naming the absent twin would be the worst kind of error.
    min_reliability : float
        Nothing is asserted from a query whose estimated signal share (even/odd
        pixel reliability, see :meth:`spectra.match.Matcher.reliability`) is lower:
        it is mostly noise or processing artefact.
    calibration : str
        Where the numbers came from.
    """

    identify: float = 0.90
    mixture: float = 0.90
    inconclusive: float = 0.60
    min_gain: float = 0.30
    min_fraction: float = 0.10
    max_similarity: float = 0.8
    min_reliability: float = 0.5
    calibration: str = "not calibrated"

    def __post_init__(self) -> None:
        for name in ("identify", "mixture", "inconclusive"):
            value = getattr(self, name)
            if not -1.0 <= value <= 1.0:
                raise ValueError(f"{name} threshold must lie in [-1, 1], got {value}")
        if self.inconclusive > min(self.identify, self.mixture):
            raise ValueError("the inconclusive threshold must not exceed the assertion thresholds")
        if not 0.0 <= self.min_gain < 1.0 or not 0.0 <= self.min_fraction < 0.5:
            raise ValueError("min_gain must lie in [0, 1) and min_fraction in [0, 0.5)")
        if not 0.0 <= self.min_reliability <= 1.0:
            raise ValueError("min_reliability must lie in [0, 1]")
        if not -1.0 <= self.max_similarity <= 1.0:
            raise ValueError("max_similarity must lie in [-1, 1]")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able mapping."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Thresholds:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError``."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown threshold(s): {', '.join(sorted(unknown))}")
        return cls(**dict(data))


#: Thresholds from the calibration recorded in benchmarks/CALIBRATION.md
#: (``benchmarks/calibrate_verdicts.py``, seed 2026, demonstration library).
DEFAULT = Thresholds(
    identify=0.855,
    mixture=0.855,
    inconclusive=0.70,
    min_gain=0.4,
    min_fraction=0.1,
    max_similarity=0.8,
    min_reliability=0.5,
    calibration="calibrate_verdicts.py seed 2026",
)


def decide(
    best_score: float,
    mixture_score: float | None,
    n_components: int,
    thresholds: Thresholds = DEFAULT,
    reliability: float = 1.0,
) -> Verdict:
    """The verdict for a best single-candidate score and an optional mixture fit.

    Parameters
    ----------
    best_score : float
        Match score of the best single candidate.
    mixture_score : float or None
        Match score of the accepted multi-component fit, when one was accepted.
    n_components : int
        Number of components in that fit (1 when no mixture was accepted).
    thresholds : Thresholds
        Calibrated limits.
    reliability : float, default 1.0
        Estimated signal share of the query; below ``thresholds.min_reliability``
        the answer is at most "inconclusive".

    Returns
    -------
    Verdict
    """
    if n_components < 1:
        raise ValueError(f"n_components must be >= 1, got {n_components}")
    may_assert = reliability >= thresholds.min_reliability
    if n_components >= 2 and mixture_score is not None:
        if mixture_score >= thresholds.mixture and may_assert:
            return Verdict.MIXTURE
        top = max(best_score, mixture_score)
    else:
        if best_score >= thresholds.identify and may_assert:
            return Verdict.IDENTIFIED
        top = best_score
    return Verdict.INCONCLUSIVE if top >= thresholds.inconclusive else Verdict.NO_MATCH
