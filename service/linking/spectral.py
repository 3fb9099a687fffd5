"""Spectral fingerprints: find seizures whose field tests measured highly similar raw spectra.

Comparing every new spectrum with every stored one does not scale to a million seizures.
Each field test's spectrum is instead brought to a common form (resampled to a fixed
grid per spectrum kind, baseline removed, mean-centred, unit norm: the dot product of two
such vectors is their Pearson correlation) and hashed with random hyperplanes (SimHash).
The sign bits are split into :data:`BANDS` bands of :data:`ROWS` bits; each band is one
indexed key. Two spectra with correlation ``c`` agree on a bit with probability
``1 - arccos(c) / pi``, so highly similar spectra share at least one band with high
probability while dissimilar ones rarely do. Candidates found through a shared band are
then verified exactly on the stored vectors (:func:`best_similarity`).

Everything here is pure numpy: arrays in, values out.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from spectra.preprocess import remove_baseline

#: Points of the common grid every spectrum is resampled to.
DIM = 256
#: Band keys per spectrum, and sign bits per band.
BANDS = 12
ROWS = 20
#: Two spectra are "highly similar" at or above this correlation (after preprocessing).
SIMILARITY_THRESHOLD = 0.98
#: A spectrum must cover at least this share of its kind's grid to be fingerprinted.
MIN_COVERAGE = 0.6
#: Common grid per spectrum kind (axis unit cm⁻¹ for all three kinds).
GRIDS: dict[str, tuple[float, float]] = {
    "raman": (300.0, 1800.0),
    "ir_absorbance": (650.0, 4000.0),
    "nir": (4000.0, 10000.0),
}
#: Changing the grid, the preprocessing or the hyperplanes changes every key: a new version.
VERSION = "s1"
_SEED = 0x5EC7_2026

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Fingerprint:
    """A spectrum's comparable vector (float64, unit norm) and its band hashes."""

    kind: str
    vector: FloatArray
    bands: tuple[int, ...]

    def band_keys(self) -> list[str]:
        """The indexed keys, one per band: ``spectrum:<version>:<kind>:<band>:<bits hex>``."""
        return [band_key(self.kind, i, bits) for i, bits in enumerate(self.bands)]


def band_key(kind: str, band: int, bits: int) -> str:
    return f"spectrum:{VERSION}:{kind}:{band:02d}:{bits:0{(ROWS + 3) // 4}x}"


@lru_cache(maxsize=1)
def hyperplanes() -> FloatArray:
    """The fixed random hyperplanes, shape ``(BANDS * ROWS, DIM)`` (seeded: stable keys)."""
    planes: FloatArray = np.random.default_rng(_SEED).standard_normal((BANDS * ROWS, DIM))
    return planes


def comparable(kind: str, axis: npt.ArrayLike, values: npt.ArrayLike) -> FloatArray | None:
    """A raw spectrum as a unit-norm, mean-centred vector on its kind's common grid.

    Parameters
    ----------
    kind : str
        Spectrum kind (a key of :data:`GRIDS`); other kinds have no fingerprint.
    axis, values : array_like
        The raw spectrum as stored (axis increasing or decreasing).

    Returns
    -------
    ndarray or None
        ``DIM`` values whose dot product with another such vector is their Pearson
        correlation over the grid; None when the kind is unknown, the spectrum covers
        less than :data:`MIN_COVERAGE` of the grid, holds non-finite values or is flat.
    """
    if kind not in GRIDS:
        return None
    x = np.asarray(axis, dtype=np.float64)
    y = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape or x.size < 3:
        return None
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        return None
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    if np.any(np.diff(x) <= 0):
        return None
    low, high = GRIDS[kind]
    grid = np.linspace(low, high, DIM)
    covered = (grid >= x[0]) & (grid <= x[-1])
    n = int(covered.sum())
    if n < MIN_COVERAGE * DIM:
        return None
    part = np.interp(grid[covered], x, y)
    spread = float(np.ptp(part))
    if spread <= 1e-12 * max(1.0, float(np.abs(part).max())):
        return None  # flat: nothing to compare
    # A fluorescence background would otherwise dominate the correlation of two spectra.
    # lam suits this coarse grid (~6 cm⁻¹ for Raman; Whittaker lam scales as step⁴).
    part = remove_baseline(part, method="arpls", lam=1e3)
    part = part - part.mean()
    norm = float(np.linalg.norm(part))
    if not np.isfinite(norm) or norm <= 1e-6 * spread:
        return None  # only background: the baseline took everything
    out = np.zeros(DIM)
    out[covered] = part / norm
    return out


def fingerprint_of(vector: npt.ArrayLike, kind: str) -> Fingerprint:
    """Band hashes of a comparable vector (see :func:`comparable`).

    Each band packs :data:`ROWS` sign bits of the vector's projections on the
    hyperplanes; a projection of exactly zero counts as positive.
    """
    v = np.asarray(vector, dtype=np.float64)
    if v.shape != (DIM,):
        raise ValueError(f"a comparable vector has {DIM} values, got shape {v.shape}")
    signs = (hyperplanes() @ v) >= 0
    weights = 1 << np.arange(ROWS, dtype=np.int64)
    bands = signs.reshape(BANDS, ROWS).astype(np.int64) @ weights
    return Fingerprint(kind=kind, vector=v, bands=tuple(int(b) for b in bands))


def fingerprint(kind: str, axis: npt.ArrayLike, values: npt.ArrayLike) -> Fingerprint | None:
    """:func:`comparable` then :func:`fingerprint_of`; None when there is no comparable form."""
    vector = comparable(kind, axis, values)
    return None if vector is None else fingerprint_of(vector, kind)


def pack(vector: npt.ArrayLike) -> bytes:
    """Stored form of a comparable vector: float16 little-endian (512 bytes).

    Half precision changes a correlation by well under 0.001, far below the threshold's
    margin, and keeps the stored vectors of a million seizures small.
    """
    return np.asarray(vector, dtype="<f2").tobytes()


def unpack(data: bytes) -> FloatArray:
    """Inverse of :func:`pack` (renormalised, so dot products stay correlations)."""
    vector: FloatArray = unpack_many(data)[0]
    return vector


def unpack_many(data: bytes) -> FloatArray:
    """:func:`unpack` of packed vectors stored one after another: shape ``(n, DIM)``.

    Each row is renormalised (a zero row stays zero); one vector unpacks to exactly the
    same numbers alone or among others.
    """
    rows = np.frombuffer(data, dtype="<f2").astype(np.float64).reshape(-1, DIM)
    norms = np.sqrt(np.einsum("ij,ij->i", rows, rows))[:, None]
    np.divide(rows, norms, out=rows, where=norms > 0)
    return rows


def similarity_matrix(a: npt.ArrayLike, b: npt.ArrayLike) -> FloatArray:
    """Correlations of every row of ``a`` with every row of ``b`` (comparable vectors).

    Returns
    -------
    ndarray
        Shape ``(len(a), len(b))``, values clipped to ``[-1, 1]``.
    """
    left = np.atleast_2d(np.asarray(a, dtype=np.float64))
    right = np.atleast_2d(np.asarray(b, dtype=np.float64))
    if left.size == 0 or right.size == 0:
        return np.zeros((left.shape[0] if left.size else 0, right.shape[0] if right.size else 0))
    result: FloatArray = np.clip(left @ right.T, -1.0, 1.0)
    return result


def best_similarity(a: npt.ArrayLike, b: npt.ArrayLike) -> tuple[float, int, int] | None:
    """The most similar pair of rows of ``a`` and ``b``: ``(correlation, i, j)``.

    Ties are broken by the smallest ``(i, j)``; None when either side is empty.
    """
    matrix = similarity_matrix(a, b)
    if matrix.size == 0:
        return None
    flat = int(np.argmax(matrix))  # the first maximum in row-major order: smallest (i, j)
    i, j = divmod(flat, matrix.shape[1])
    return float(matrix[i, j]), i, j


def band_collision_probability(correlation: float) -> float:
    """Probability that two vectors with this correlation share at least one band.

    ``1 - (1 - p**ROWS)**BANDS`` with ``p = 1 - arccos(c) / pi`` (random hyperplanes).
    """
    c = min(1.0, max(-1.0, correlation))
    p = 1.0 - float(np.arccos(c)) / np.pi
    return 1.0 - (1.0 - p**ROWS) ** BANDS
