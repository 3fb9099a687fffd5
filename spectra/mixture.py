"""Mixture analysis: which references, in which proportions, explain a query.

Greedy forward selection with non-negative least squares (``scipy.optimize.nnls``)
— at each step the few columns most correlated with the residual are tried —
over a candidate pool (the best matches plus, when the library says so, the
cutting agents). The fit works on linear (baseline-removed, broadened) spectra,
each reference scaled to unit norm over the compared range, plus a free
constant offset. A component is added only when it removes at least
``min_gain`` of the remaining squared residual and carries at least
``min_fraction`` of the signal. Fractions are the shares of the fitted,
normalised signal contributions and sum to 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import nnls

FloatArray = npt.NDArray[np.float64]
#: Columns tried (by affinity with the residual) each time a component is considered.
SHORTLIST = 4


@dataclass(frozen=True, slots=True)
class MixtureFit:
    """Chosen components (indices into the pool given), their fractions, and the fitted curve."""

    components: tuple[int, ...]
    fractions: tuple[float, ...]
    fitted: FloatArray
    residual: float  # relative residual norm, ||q - fit|| / ||q - mean(q)||


def _solve(
    query: FloatArray, refs: FloatArray, chosen: Sequence[int]
) -> tuple[FloatArray, FloatArray, float]:
    ones = np.ones((query.size, 1))
    design = np.hstack([refs[:, list(chosen)], ones, -ones])
    coef, rnorm = nnls(design, query, maxiter=50 * design.shape[1])
    return coef[: len(chosen)], design @ coef, float(rnorm)


def fit_mixture(
    query: npt.ArrayLike,
    references: npt.ArrayLike,
    first: int = 0,
    max_components: int = 3,
    min_gain: float = 0.3,
    min_fraction: float = 0.1,
    exclusive: npt.ArrayLike | None = None,
) -> MixtureFit:
    """Greedy NNLS mixture fit of ``query`` by columns of ``references``.

    Parameters
    ----------
    query : array_like
        Query spectrum over the compared range, shape ``(n,)``.
    references : array_like
        Candidate pool, shape ``(n, k)``: one column per reference.
    first : int, default 0
        Column that starts the fit (the best single match).
    max_components : int, default 3
        A drug with up to two cutting agents.
    min_gain : float, default 0.3
        Fraction of the remaining squared residual a new component must remove.
    min_fraction : float, default 0.1
        Smallest signal share of an accepted component.
    exclusive : array_like of bool, optional
        ``(k, k)``: ``exclusive[i, j]`` means columns i and j are too alike to be
        told apart in a mixture, so they are never both components.

    Returns
    -------
    MixtureFit
    """
    q = np.array(query, dtype=np.float64)
    refs = np.array(references, dtype=np.float64)
    if q.ndim != 1 or refs.ndim != 2 or refs.shape[0] != q.size:
        raise ValueError(f"need query (n,) and references (n, k); got {q.shape} and {refs.shape}")
    if not (np.all(np.isfinite(q)) and np.all(np.isfinite(refs))):
        raise ValueError("query and references must be finite")
    if not 0 <= first < refs.shape[1]:
        raise ValueError(f"first must index a column of references, got {first}")
    if max_components < 1:
        raise ValueError(f"max_components must be >= 1, got {max_components}")
    if not (0.0 <= min_gain < 1.0 and 0.0 <= min_fraction < 0.5):
        raise ValueError("min_gain must lie in [0, 1) and min_fraction in [0, 0.5)")
    k = refs.shape[1]
    apart = np.zeros((k, k), dtype=bool) if exclusive is None else np.array(exclusive, dtype=bool)
    if apart.shape != (k, k):
        raise ValueError(f"exclusive must have shape ({k}, {k}), got {apart.shape}")
    norms = np.linalg.norm(refs, axis=0)
    refs = refs / np.where(norms > 0, norms, 1.0)
    spread = float(np.linalg.norm(q - q.mean())) or 1.0
    chosen = [first]
    coef, fitted, rnorm = _solve(q, refs, chosen)
    while len(chosen) < min(max_components, refs.shape[1]):
        best: tuple[float, int, FloatArray, FloatArray] | None = None
        # Only the columns that best explain what is still unexplained are worth a solve.
        residual = q - fitted
        residual -= residual.mean()
        affinity = refs.T @ residual
        affinity[chosen] = -np.inf
        affinity[apart[chosen].any(axis=0)] = -np.inf
        shortlist = np.argsort(-affinity, kind="stable")[:SHORTLIST]
        for j in (int(c) for c in shortlist if affinity[c] > 0):
            c, f, r = _solve(q, refs, [*chosen, j])
            if best is None or r < best[0]:
                best = (r, j, c, f)
        if best is None:
            break
        r, j, c, f = best
        gain = 1.0 - (r * r) / max(rnorm * rnorm, 1e-30)
        total = float(c.sum())
        if gain < min_gain or total <= 0 or c.min() / total < min_fraction:
            break
        chosen.append(j)
        coef, fitted, rnorm = c, f, r
    # Drop components the final fit gave (almost) nothing; keep at least the first.
    total = float(coef.sum())
    keep = [i for i, c in enumerate(coef) if total > 0 and c / total >= min_fraction] or [0]
    picked = [chosen[i] for i in keep]
    weights = np.array([coef[i] for i in keep])
    wsum = float(weights.sum())
    fractions = weights / wsum if wsum > 0 else np.full(len(keep), 1.0 / len(keep))
    order = np.argsort(-fractions, kind="stable")
    return MixtureFit(
        tuple(picked[i] for i in order),
        tuple(float(fractions[i]) for i in order),
        fitted,
        rnorm / spread,
    )
