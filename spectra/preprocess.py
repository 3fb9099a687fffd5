"""Preprocessing steps as pure functions, and the :class:`Pipeline` that chains them.

Every function takes arrays (or array-likes) and returns new arrays: inputs are
never modified, and invalid parameters raise ``ValueError`` before any work.
The pipeline is plain data (a frozen dataclass that round-trips through JSON),
so the exact parameters travel inside a library file and a result can be
reproduced.

Order of the steps (see :meth:`Pipeline.prepare`)::

    despike (raw pixels) → resample onto the library axis (overlap only)
    → baseline removal → optional Savitzky–Golay → broaden to a common
    resolution → normalise
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy.ndimage import gaussian_filter1d
from scipy.signal import medfilt, savgol_filter

from spectra.spectrum import Spectrum

FloatArray = npt.NDArray[np.float64]
Normalisation = Literal["vector", "area", "max", "none"]
BaselineMethod = Literal["arpls", "asls", "iarpls", "aspls", "snip", "none"]

_FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))
#: At least this many library-axis points must overlap for a comparison to mean anything.
MIN_OVERLAP_POINTS = 32


def _vector(values: npt.ArrayLike, what: str = "values", min_size: int = 3) -> FloatArray:
    array = np.array(values, dtype=np.float64)  # always a copy
    if array.ndim != 1:
        raise ValueError(f"{what} must be one-dimensional, got shape {array.shape}")
    if array.size < min_size:
        raise ValueError(f"{what} needs at least {min_size} points, got {array.size}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{what} contains NaN or infinite values")
    return array


def _increasing_axis(axis: npt.ArrayLike, size: int) -> FloatArray:
    x = _vector(axis, "axis")
    if x.size != size:
        raise ValueError(f"axis has {x.size} points but values have {size}")
    if np.any(np.diff(x) <= 0):
        raise ValueError("axis must be strictly increasing")
    return x


def despike(
    values: npt.ArrayLike,
    threshold: float = 8.0,
    window: int = 7,
    sharpness: float = 0.75,
) -> FloatArray:
    """Remove cosmic-ray spikes and replace them by linear interpolation.

    A point is a spike when its residual from a running median is an outlier
    (modified z-score above ``threshold``) *and* the signal two pixels either side
    has fallen by at least ``sharpness`` of the point's height above the window
    minimum. The second test keeps genuine Raman bands (three or more pixels wide)
    intact at very high signal-to-noise, where a z-score alone flags their tops.

    Parameters
    ----------
    values : array_like
        Intensities on the detector's own pixels (spacing need not be uniform).
    threshold : float, default 8.0
        Modified z-score (0.6745 · r / MAD) above which a residual is an outlier.
    window : int, default 7
        Odd running-median window in pixels (>= 5); wider than a spike, about one band wide.
    sharpness : float, default 0.75
        Minimum fall, two pixels away, as a fraction of the height above the local minimum.

    Returns
    -------
    ndarray
        Despiked copy of ``values``.
    """
    if not threshold > 0:
        raise ValueError(f"threshold must be positive, got {threshold}")
    if window < 5 or window % 2 == 0:
        raise ValueError(f"window must be an odd integer >= 5, got {window}")
    if not 0.0 < sharpness <= 1.0:
        raise ValueError(f"sharpness must lie in (0, 1], got {sharpness}")
    y = _vector(values, min_size=window)
    smooth = medfilt(y, window)
    residual = y - smooth
    mad = float(np.median(np.abs(residual - np.median(residual))))
    if mad == 0.0:
        mad = float(np.mean(np.abs(residual))) or 1.0
    z = 0.6745 * residual / mad
    half = window // 2
    padded = np.pad(y, half, mode="edge")
    local_min = np.lib.stride_tricks.sliding_window_view(padded, window).min(axis=1)
    height = np.maximum(y - local_min, np.finfo(float).tiny)
    # A spike (1–2 pixels) has fallen almost to the floor two pixels away; a band has not.
    second = np.maximum(padded[half - 2 : half - 2 + y.size], padded[half + 2 : half + 2 + y.size])
    spikes = (z > threshold) & (y - second >= sharpness * height)
    if not spikes.any():
        return y
    # A cosmic-ray hit often lifts its neighbours too: replace those that stand out as well.
    beside = np.r_[spikes[1:], False] | np.r_[False, spikes[:-1]]
    spikes = spikes | (beside & (z > 3.0))
    good = np.flatnonzero(~spikes)
    if good.size < 2:
        return y
    idx = np.arange(y.size)
    y[spikes] = np.interp(idx[spikes], good, y[good])
    return y


def median_filter(values: npt.ArrayLike, window: int = 3) -> FloatArray:
    """Running median (``scipy.signal.medfilt``) with an odd ``window`` in points."""
    if window < 1 or window % 2 == 0:
        raise ValueError(f"window must be a positive odd integer, got {window}")
    y = _vector(values, min_size=window)
    result: FloatArray = np.asarray(medfilt(y, window), dtype=np.float64)
    return result


def remove_baseline(
    values: npt.ArrayLike,
    axis: npt.ArrayLike | None = None,
    method: BaselineMethod = "arpls",
    lam: float = 1e5,
    half_window: int = 60,
    max_iter: int = 50,
) -> FloatArray:
    """Subtract a fluorescence-robust baseline estimated with :mod:`pybaselines`.

    Parameters
    ----------
    values : array_like
        Intensities, ideally on a uniform axis (the library axis), so that ``lam``
        has the same meaning for every spectrum.
    axis : array_like, optional
        Increasing axis of ``values``; its index is used when omitted.
    method : {"arpls", "asls", "iarpls", "aspls", "snip", "none"}, default "arpls"
        arPLS (asymmetrically reweighted penalised least squares) follows a
        background several times taller than the bands without eating them.
    lam : float, default 1e5
        Whittaker smoothness penalty (for the penalised-least-squares methods).
        The default suits a 2 cm⁻¹ grid and backgrounds that vary over ~100 cm⁻¹.
    half_window : int, default 60
        SNIP half window in points (only for ``method="snip"``).
    max_iter : int, default 50
        Iteration limit of the reweighting methods.

    Returns
    -------
    ndarray
        ``values`` minus the estimated baseline.
    """
    if method not in ("arpls", "asls", "iarpls", "aspls", "snip", "none"):
        raise ValueError(f"unknown baseline method {method!r}")
    if not (np.isfinite(lam) and lam > 0):
        raise ValueError(f"lam must be positive, got {lam}")
    if half_window < 1:
        raise ValueError(f"half_window must be positive, got {half_window}")
    if max_iter < 1:
        raise ValueError(f"max_iter must be positive, got {max_iter}")
    y = _vector(values)
    x = np.arange(y.size, dtype=np.float64) if axis is None else _increasing_axis(axis, y.size)
    if method == "none":
        return y
    from pybaselines import Baseline  # heavy import, only when a baseline is wanted
    from pybaselines.utils import ParameterWarning

    fitter = Baseline(x_data=x)
    with warnings.catch_warnings():
        # Featureless input (a bare background) makes arPLS warn; the result is still right.
        warnings.simplefilter("ignore", ParameterWarning)
        if method == "snip":
            baseline, _ = fitter.snip(y, max_half_window=min(half_window, (y.size - 1) // 2))
        elif method == "asls":
            baseline, _ = fitter.asls(y, lam=lam, p=0.01, max_iter=max_iter)
        else:
            baseline, _ = getattr(fitter, method)(y, lam=lam, max_iter=max_iter)
    result: FloatArray = y - np.asarray(baseline, dtype=np.float64)
    return result


def smooth(values: npt.ArrayLike, window: int = 9, polyorder: int = 3) -> FloatArray:
    """Savitzky–Golay smoothing (``scipy.signal.savgol_filter``).

    Parameters
    ----------
    values : array_like
        Intensities.
    window : int, default 9
        Odd window length in points, larger than ``polyorder``.
    polyorder : int, default 3
        Polynomial order.

    Returns
    -------
    ndarray
        Smoothed copy.
    """
    if window < 3 or window % 2 == 0:
        raise ValueError(f"window must be an odd integer >= 3, got {window}")
    if not 0 <= polyorder < window:
        raise ValueError(f"polyorder must lie in [0, window), got {polyorder}")
    y = _vector(values, min_size=window)
    result: FloatArray = np.asarray(savgol_filter(y, window, polyorder), dtype=np.float64)
    return result


def broaden(values: npt.ArrayLike, fwhm_points: float) -> FloatArray:
    """Convolve with a unit-area Gaussian of ``fwhm_points`` full width (in points).

    Bringing library and query to a common, coarser resolution makes the
    comparison insensitive to each instrument's own resolution and to small shifts.
    ``fwhm_points == 0`` returns a copy.
    """
    if not (np.isfinite(fwhm_points) and fwhm_points >= 0):
        raise ValueError(f"fwhm_points must be >= 0, got {fwhm_points}")
    y = _vector(values)
    if fwhm_points == 0:
        return y
    result: FloatArray = gaussian_filter1d(y, fwhm_points / _FWHM_PER_SIGMA, mode="nearest")
    return result


def normalise(
    values: npt.ArrayLike, method: Normalisation = "vector", axis: npt.ArrayLike | None = None
) -> FloatArray:
    """Scale intensities: unit Euclidean norm, unit area (trapezoid) or unit maximum.

    A spectrum that is all zeros is returned unchanged (there is nothing to scale).
    """
    if method not in ("vector", "area", "max", "none"):
        raise ValueError(f"unknown normalisation {method!r}")
    y = _vector(values)
    if method == "none":
        return y
    if method == "vector":
        scale = float(np.linalg.norm(y))
    elif method == "max":
        scale = float(np.max(np.abs(y)))
    else:
        x = np.arange(y.size, dtype=np.float64) if axis is None else _increasing_axis(axis, y.size)
        scale = float(np.trapezoid(np.abs(y), x))
    return y / scale if scale > 0 else y


@dataclass(frozen=True, slots=True)
class Resampled:
    """Values on the covered part ``[start, stop)`` of a target axis."""

    values: FloatArray
    start: int
    stop: int


def resample(axis: npt.ArrayLike, values: npt.ArrayLike, target_axis: npt.ArrayLike) -> Resampled:
    """Linear interpolation onto the part of ``target_axis`` that ``axis`` covers.

    Nothing is extrapolated: points of ``target_axis`` outside ``[axis[0], axis[-1]]``
    are left out, and the returned ``start``/``stop`` say which slice is covered.

    Raises
    ------
    ValueError
        When fewer than :data:`MIN_OVERLAP_POINTS` target points are covered.
    """
    y = _vector(values)
    x = _increasing_axis(axis, y.size)
    target = _vector(target_axis, "target_axis")
    if np.any(np.diff(target) <= 0):
        raise ValueError("target_axis must be strictly increasing")
    start = int(np.searchsorted(target, x[0], side="left"))
    stop = int(np.searchsorted(target, x[-1], side="right"))
    if stop - start < MIN_OVERLAP_POINTS:
        raise ValueError(
            f"the spectrum ({x[0]:.0f}–{x[-1]:.0f} cm⁻¹) overlaps only {max(stop - start, 0)} "
            f"points of the library axis ({target[0]:.0f}–{target[-1]:.0f} cm⁻¹); "
            f"at least {MIN_OVERLAP_POINTS} are needed"
        )
    return Resampled(np.interp(target[start:stop], x, y), start, stop)


@dataclass(frozen=True, slots=True)
class Prepared:
    """A spectrum ready for matching: values on the covered slice of the library axis."""

    values: FloatArray  # full library length; zero outside [start, stop)
    start: int
    stop: int
    covered_cm1: tuple[float, float]
    #: The same processing applied to the even and to the odd raw pixels alone (values on
    #: ``[start, stop)``): two measurements with independent noise, from which the matcher
    #: estimates how much of the query is noise. ``None`` for references.
    halves: tuple[FloatArray, FloatArray] | None = None


@dataclass(frozen=True, slots=True)
class Pipeline:
    """Every preprocessing and comparison parameter, as data.

    Stored inside a library file, so that the library's references and every
    query are processed identically and a result can be reproduced exactly.
    """

    axis_start: float = 150.0
    axis_stop: float = 3400.0
    axis_points: int = 1626  # 2 cm⁻¹ spacing
    despike_threshold: float = 8.0  # 0 switches despiking off
    despike_window: int = 7
    baseline_method: BaselineMethod = "arpls"
    baseline_lam: float = 1e5
    savgol_window: int = 0  # 0 switches Savitzky–Golay off (broadening already smooths)
    savgol_polyorder: int = 3
    broaden_fwhm_cm1: float = 12.0
    normalisation: Normalisation = "vector"
    compress: Literal["sqrt", "none"] = "sqrt"
    max_shift_cm1: float = 6.0
    shift_step_cm1: float = 1.0

    def __post_init__(self) -> None:
        if not (np.isfinite(self.axis_start) and np.isfinite(self.axis_stop)):
            raise ValueError("axis limits must be finite")
        if self.axis_stop <= self.axis_start:
            raise ValueError("axis_stop must exceed axis_start")
        if self.axis_points < MIN_OVERLAP_POINTS:
            raise ValueError(f"axis_points must be >= {MIN_OVERLAP_POINTS}")
        if self.despike_threshold < 0:
            raise ValueError("despike_threshold must be >= 0")
        if self.despike_window < 5 or self.despike_window % 2 == 0:
            raise ValueError("despike_window must be an odd integer >= 5")
        if self.baseline_method not in ("arpls", "asls", "iarpls", "aspls", "snip", "none"):
            raise ValueError(f"unknown baseline method {self.baseline_method!r}")
        if not self.baseline_lam > 0:
            raise ValueError("baseline_lam must be positive")
        if self.savgol_window and (
            self.savgol_window < 3
            or self.savgol_window % 2 == 0
            or not 0 <= self.savgol_polyorder < self.savgol_window
        ):
            raise ValueError("savgol_window must be 0 or odd >= 3 and > savgol_polyorder")
        if not self.broaden_fwhm_cm1 >= 0:
            raise ValueError("broaden_fwhm_cm1 must be >= 0")
        if self.normalisation not in ("vector", "area", "max", "none"):
            raise ValueError(f"unknown normalisation {self.normalisation!r}")
        if self.compress not in ("sqrt", "none"):
            raise ValueError(f"unknown compression {self.compress!r}")
        if self.max_shift_cm1 < 0 or not self.shift_step_cm1 > 0:
            raise ValueError("max_shift_cm1 must be >= 0 and shift_step_cm1 > 0")

    @property
    def axis(self) -> FloatArray:
        """The library axis (uniform, cm⁻¹)."""
        return np.linspace(self.axis_start, self.axis_stop, self.axis_points)

    @property
    def step(self) -> float:
        """Spacing of the library axis, cm⁻¹."""
        return (self.axis_stop - self.axis_start) / (self.axis_points - 1)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able mapping."""
        return asdict(self)

    def to_json(self) -> str:
        """Canonical JSON (sorted keys)."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Pipeline:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError``."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown pipeline parameter(s): {', '.join(sorted(unknown))}")
        return cls(**dict(data))

    @classmethod
    def from_json(cls, text: str) -> Pipeline:
        """Inverse of :meth:`to_json`."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("a pipeline must be a JSON object")
        return cls.from_dict(data)

    def prepare_arrays(
        self, axis: npt.ArrayLike, values: npt.ArrayLike, *, broadened: bool = True
    ) -> Prepared:
        """Run every step on raw ``values`` measured at ``axis`` (see module docstring).

        ``broadened=False`` stops before the common-resolution broadening: that is
        the form in which a library stores its references (broadened when loaded).
        """
        y = _vector(values)
        x = _increasing_axis(axis, y.size)
        if self.despike_threshold > 0 and y.size >= self.despike_window:
            y = despike(y, self.despike_threshold, self.despike_window)
        target = self.axis
        part = resample(x, y, target)
        seg = part.values
        seg_axis = target[part.start : part.stop]
        background = np.zeros_like(seg)
        if self.baseline_method != "none":
            corrected = remove_baseline(seg, seg_axis, self.baseline_method, self.baseline_lam)
            background = seg - corrected
            seg = corrected
        halves = None
        if broadened and y.size >= 2 * MIN_OVERLAP_POINTS:
            # Each half of the pixels, less the same background, broadened like the whole.
            halves = tuple(
                self._finish(np.interp(seg_axis, x[k::2], y[k::2]) - background, seg_axis)
                for k in (0, 1)
            )
        seg = self._finish(seg, seg_axis, broadened)
        full = np.zeros(self.axis_points)
        full[part.start : part.stop] = seg
        return Prepared(
            full,
            part.start,
            part.stop,
            (float(seg_axis[0]), float(seg_axis[-1])),
            halves,  # type: ignore[arg-type]  # a 2-tuple by construction
        )

    def _finish(self, seg: FloatArray, seg_axis: FloatArray, broadened: bool = True) -> FloatArray:
        if self.savgol_window and seg.size >= self.savgol_window:
            seg = smooth(seg, self.savgol_window, self.savgol_polyorder)
        if broadened:
            seg = broaden(seg, self.broaden_fwhm_cm1 / self.step)
        return normalise(seg, self.normalisation, seg_axis)

    def prepare(self, spectrum: Spectrum, *, broadened: bool = True) -> Prepared:
        """:meth:`prepare_arrays` on a :class:`~spectra.spectrum.Spectrum`."""
        return self.prepare_arrays(spectrum.axis, spectrum.intensities, broadened=broadened)
