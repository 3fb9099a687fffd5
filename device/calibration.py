"""Pixel → wavelength → Raman shift, shared by every driver and mock."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def pixel_wavelengths(coeffs: Sequence[float], pixel_count: int) -> FloatArray:
    """Wavelengths (nm) of each pixel from the polynomial ``Σ c[i] · pixel**i``.

    Parameters
    ----------
    coeffs : sequence of float
        Polynomial coefficients, constant term first (as instruments store them).
    pixel_count : int
        Number of detector pixels.

    Returns
    -------
    ndarray
        ``pixel_count`` wavelengths in nm.
    """
    if pixel_count < 1:
        raise ValueError(f"pixel_count must be positive, got {pixel_count}")
    if not coeffs or not all(np.isfinite(c) for c in coeffs):
        raise ValueError(
            f"wavelength coefficients must be finite and non-empty, got {list(coeffs)}"
        )
    pixels = np.arange(pixel_count, dtype=np.float64)
    poly = np.polynomial.polynomial.polyval(pixels, np.asarray(coeffs, dtype=np.float64))
    return np.asarray(poly, dtype=np.float64)


def raman_shift(wavelengths_nm: npt.ArrayLike, laser_nm: float) -> FloatArray:
    """Raman shift (cm⁻¹) of scattered light at ``wavelengths_nm`` for excitation at ``laser_nm``.

    Parameters
    ----------
    wavelengths_nm : array_like
        Scattered wavelengths, nm; must be positive.
    laser_nm : float
        Excitation wavelength, nm; must be positive.

    Returns
    -------
    ndarray
        ``1e7 / laser_nm − 1e7 / wavelength`` for each wavelength.
    """
    wl = np.asarray(wavelengths_nm, dtype=np.float64)
    if not (np.isfinite(laser_nm) and laser_nm > 0):
        raise ValueError(f"laser wavelength must be positive, got {laser_nm}")
    if np.any(~np.isfinite(wl)) or np.any(wl <= 0):
        raise ValueError("wavelengths must be finite and positive")
    return 1e7 / laser_nm - 1e7 / wl


def wavelength_for_shift(shift_cm1: npt.ArrayLike, laser_nm: float) -> FloatArray:
    """Inverse of :func:`raman_shift`: the wavelength (nm) at which a shift is observed."""
    shift = np.asarray(shift_cm1, dtype=np.float64)
    if not (np.isfinite(laser_nm) and laser_nm > 0):
        raise ValueError(f"laser wavelength must be positive, got {laser_nm}")
    return 1e7 / (1e7 / laser_nm - shift)
