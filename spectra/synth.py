"""Synthesise spectra from band tables (position, relative intensity, width).

Used to build the demonstration library from published band positions, by the
firmware mocks to emulate a sample, and by the validation set and benchmarks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Band:
    """One vibrational band: centre (cm⁻¹), relative intensity (0–1], FWHM (cm⁻¹)."""

    position: float
    intensity: float
    width: float = 8.0

    def __post_init__(self) -> None:
        if not (np.isfinite(self.position) and self.intensity > 0 and self.width > 0):
            raise ValueError(
                f"invalid band {self!r}: need finite position, intensity > 0, width > 0"
            )


def pseudo_voigt(axis: FloatArray, band: Band, eta: float = 0.6) -> FloatArray:
    """Pseudo-Voigt profile of one band, its height the band's relative intensity.

    Parameters
    ----------
    axis : ndarray
        Points (cm⁻¹) at which to evaluate the profile.
    band : Band
        Centre, relative intensity and full width at half maximum.
    eta : float, default 0.6
        Lorentzian fraction, in [0, 1]; solid-state Raman bands are mostly Lorentzian.

    Returns
    -------
    ndarray
        The profile, same shape as ``axis``.
    """
    if not 0.0 <= eta <= 1.0:
        raise ValueError(f"eta must lie in [0, 1], got {eta}")
    x = (np.asarray(axis, dtype=np.float64) - band.position) / (band.width / 2.0)
    lorentz = 1.0 / (1.0 + x * x)
    gauss = np.exp(-np.log(2.0) * x * x)
    profile: FloatArray = band.intensity * (eta * lorentz + (1.0 - eta) * gauss)
    return profile


def synthesise(axis: npt.ArrayLike, bands: Sequence[Band], eta: float = 0.6) -> FloatArray:
    """Sum of pseudo-Voigt bands on ``axis``, normalised so the tallest point is 1.

    Parameters
    ----------
    axis : array_like
        Raman shift or wavenumber points, cm⁻¹.
    bands : sequence of Band
        At least one band.
    eta : float, default 0.6
        Lorentzian fraction of every band.

    Returns
    -------
    ndarray
        Intensities, same length as ``axis``; all zeros never happen for bands in range.
    """
    x = np.asarray(axis, dtype=np.float64)
    if not bands:
        raise ValueError("at least one band is needed")
    total = np.zeros_like(x)
    for band in bands:
        total += pseudo_voigt(x, band, eta)
    peak = float(total.max()) if total.size else 0.0
    return total / peak if peak > 0 else total
