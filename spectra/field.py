"""A model of field measurement conditions, used to validate and calibrate the matcher.

:func:`field_spectrum` turns a clean reference (a "truth" on a fine axis) into
what a handheld Raman spectrometer would record: instrument resolution,
calibration drift, a non-uniform detector axis covering only part of the range,
a fluorescence background several times the Raman signal, shot noise, a dark
offset, an uncorrected instrument response and cosmic-ray spikes.
:func:`other_instrument_bands` perturbs a band table the way a different
instrument (another laser, optics, sample form) changes relative intensities,
widths and positions. Validation, tests, benchmarks and mocks share this model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from spectra.spectrum import Acquisition, Spectrum
from spectra.synth import Band, synthesise

FloatArray = npt.NDArray[np.float64]

#: Fine axis on which clean "truth" spectra are synthesised before degradation.
TRUTH_AXIS: FloatArray = np.arange(100.0, 3600.0, 0.5)


@dataclass(frozen=True, slots=True)
class FieldConditions:
    """Ranges from which each simulated measurement draws its conditions."""

    fluorescence: tuple[float, float] = (0.0, 5.0)  # background peak / tallest Raman band
    snr: tuple[float, float] = (10.0, 200.0)  # tallest band / shot noise there (log-uniform)
    drift_cm1: tuple[float, float] = (-5.0, 5.0)
    resolution_cm1: tuple[float, float] = (6.0, 10.0)
    spikes: tuple[int, int] = (0, 3)
    start_cm1: tuple[float, float] = (200.0, 350.0)
    stop_cm1: tuple[float, float] = (1800.0, 2100.0)
    pixels: int = 1024
    laser_nm: float = 785.0
    response_tilt: float = 0.2  # uncorrected instrument response, ± relative over the range
    peak_counts: float = 4000.0

    def __post_init__(self) -> None:
        for name in ("fluorescence", "snr", "drift_cm1", "resolution_cm1", "start_cm1", "stop_cm1"):
            lo, hi = getattr(self, name)
            if not (np.isfinite(lo) and np.isfinite(hi) and lo <= hi):
                raise ValueError(f"{name} must be an ordered (low, high) pair, got {(lo, hi)}")
        if self.snr[0] <= 0 or self.resolution_cm1[0] <= 0 or self.fluorescence[0] < 0:
            raise ValueError("snr and resolution must be positive, fluorescence >= 0")
        if self.spikes[0] < 0 or self.spikes[0] > self.spikes[1]:
            raise ValueError(f"spikes must be an ordered non-negative pair, got {self.spikes}")
        if self.pixels < 64:
            raise ValueError(f"pixels must be >= 64, got {self.pixels}")
        if self.start_cm1[1] >= self.stop_cm1[0]:
            raise ValueError("the covered range would be empty")
        if not (self.peak_counts > 0 and 0 <= self.response_tilt < 1 and self.laser_nm > 0):
            raise ValueError("peak_counts and laser_nm must be positive, response_tilt in [0, 1)")


#: Benign conditions: high SNR, no fluorescence or drift, full range (for sanity checks).
CLEAN = FieldConditions(
    fluorescence=(0.0, 0.0),
    snr=(500.0, 500.0),
    drift_cm1=(0.0, 0.0),
    resolution_cm1=(6.0, 6.0),
    spikes=(0, 0),
    response_tilt=0.0,
)


def detector_axis(
    start_cm1: float, stop_cm1: float, pixels: int, laser_nm: float, curvature: float = 0.0
) -> FloatArray:
    """Raman-shift axis of a grating spectrometer: uniform-ish in wavelength, so not in cm⁻¹.

    The pixel → wavelength map is quadratic (``curvature`` bends it), as real
    wavelength calibrations are; the shift then follows from the laser line.
    """
    if not stop_cm1 > start_cm1 or pixels < 2 or not laser_nm > 0:
        raise ValueError("need stop > start, pixels >= 2 and a positive laser wavelength")
    nu0 = 1e7 / laser_nm
    wl0, wl1 = 1e7 / (nu0 - start_cm1), 1e7 / (nu0 - stop_cm1)
    t = np.linspace(0.0, 1.0, pixels)
    wl = wl0 + (wl1 - wl0) * (t + curvature * t * (t - 1.0))
    axis: FloatArray = nu0 - 1e7 / wl
    return axis


def _fluorescence_shape(axis: FloatArray, rng: np.random.Generator) -> FloatArray:
    # A broad emission: one or two wide Gaussians plus a slope, peak scaled to 1.
    span = axis[-1] - axis[0]
    shape = np.zeros_like(axis)
    for _ in range(int(rng.integers(1, 3))):
        centre = rng.uniform(axis[0] - 0.3 * span, axis[-1] + 0.5 * span)
        width = rng.uniform(0.4, 1.2) * span
        shape += rng.uniform(0.5, 1.0) * np.exp(-0.5 * ((axis - centre) / width) ** 2)
    shape += rng.uniform(0.0, 0.3) * (axis - axis[0]) / span
    peak = float(shape.max())
    return shape / peak if peak > 0 else shape


def field_spectrum(
    truth: npt.ArrayLike,
    rng: np.random.Generator,
    conditions: FieldConditions = FieldConditions(),  # frozen, safe default
    truth_axis: npt.ArrayLike = TRUTH_AXIS,
    name: str = "",
) -> Spectrum:
    """Degrade a clean spectrum the way a field measurement would.

    Parameters
    ----------
    truth : array_like
        Clean Raman spectrum (no background) sampled on ``truth_axis``; a finer
        axis than any detector's (default 0.5 cm⁻¹).
    rng : numpy.random.Generator
        Source of every random draw (seed it for reproducible sets).
    conditions : FieldConditions
        Ranges of the conditions drawn for this measurement.
    truth_axis : array_like
        Uniform increasing axis of ``truth``.
    name : str
        Name carried by the returned spectrum.

    Returns
    -------
    Spectrum
        Raw detector counts on a non-uniform pixel axis.
    """
    x = np.array(truth_axis, dtype=np.float64)
    y = np.array(truth, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape or x.size < 16:
        raise ValueError("truth and truth_axis must be equal-length 1-D arrays (>= 16 points)")
    if not (np.all(np.isfinite(y)) and np.all(np.diff(x) > 0)):
        raise ValueError("truth must be finite on a strictly increasing axis")
    c = conditions
    step = float(x[1] - x[0])
    resolution = rng.uniform(*c.resolution_cm1)
    from scipy.ndimage import gaussian_filter1d

    sigma = resolution / (2.0 * np.sqrt(2.0 * np.log(2.0))) / step
    y = gaussian_filter1d(y, sigma, mode="constant")
    peak = float(np.max(y))
    if peak <= 0:
        raise ValueError("truth has no positive signal")
    y = y / peak
    start, stop = rng.uniform(*c.start_cm1), rng.uniform(*c.stop_cm1)
    start, stop = max(start, float(x[0])), min(stop, float(x[-1]))
    axis = detector_axis(start, stop, c.pixels, c.laser_nm, rng.uniform(-0.08, 0.08))
    drift = rng.uniform(*c.drift_cm1)
    # The instrument reports `axis`, but the light at each pixel is really `axis - drift`.
    raman = np.interp(axis - drift, x, y, left=0.0, right=0.0)
    t = (axis - axis[0]) / (axis[-1] - axis[0]) - 0.5
    response = 1.0 + c.response_tilt * (rng.uniform(-1, 1) * 2 * t + rng.uniform(-1, 1) * t * t)
    raman = raman * np.clip(response, 0.2, None)
    fluorescence = rng.uniform(*c.fluorescence) * _fluorescence_shape(axis, rng)
    snr = float(np.exp(rng.uniform(np.log(c.snr[0]), np.log(c.snr[1]))))
    signal_peak = float(raman.max()) or 1.0
    # Shot noise: variance proportional to the counts, scaled so the tallest band has `snr`.
    expected = (raman + fluorescence) * c.peak_counts / signal_peak
    at_peak = int(np.argmax(raman))
    gain = (c.peak_counts / snr) ** 2 / max(float(expected[at_peak]), 1e-12)
    noise = rng.normal(0.0, 1.0, axis.size) * np.sqrt(gain * np.maximum(expected, 0.0))
    dark = rng.uniform(200.0, 800.0)
    counts = expected + noise + dark + rng.normal(0.0, 2.0, axis.size)
    for _ in range(int(rng.integers(c.spikes[0], c.spikes[1] + 1))):
        where = int(rng.integers(2, axis.size - 2))
        width = int(rng.integers(1, 3))
        counts[where : where + width] += rng.uniform(1.0, 10.0) * c.peak_counts
    return Spectrum(
        axis,
        counts,
        name=name,
        acquisition=Acquisition(device_model="simulated field unit", laser_nm=c.laser_nm),
    )


def other_instrument_bands(
    bands: Sequence[Band],
    rng: np.random.Generator,
    intensity_sigma: float = 0.35,
    position_jitter_cm1: float = 2.0,
) -> list[Band]:
    """The same substance as another instrument and sample form would show it.

    Relative intensities change (log-normal, ``intensity_sigma``), bands broaden or
    narrow (×0.8–1.5) and each moves by up to ``position_jitter_cm1``.
    """
    if intensity_sigma < 0 or position_jitter_cm1 < 0:
        raise ValueError("intensity_sigma and position_jitter_cm1 must be >= 0")
    if not bands:
        raise ValueError("at least one band is needed")
    out = []
    for b in bands:
        out.append(
            Band(
                position=b.position + rng.uniform(-position_jitter_cm1, position_jitter_cm1),
                intensity=b.intensity * float(np.exp(rng.normal(0.0, intensity_sigma))),
                width=b.width * rng.uniform(0.8, 1.5),
            )
        )
    return out


def truth_from_bands(bands: Sequence[Band], axis: npt.ArrayLike = TRUTH_AXIS) -> FloatArray:
    """Clean spectrum of ``bands`` on the fine truth axis (tallest point 1)."""
    return synthesise(axis, bands)


def random_bands(rng: np.random.Generator, lo: float = 200.0, hi: float = 3200.0) -> list[Band]:
    """A random but plausible band set (8–30 bands) — for benchmarks and generic validation."""
    n = int(rng.integers(8, 31))
    positions = rng.uniform(lo, hi, n)
    intensities = rng.uniform(0.05, 1.0, n) ** 2
    intensities[int(rng.integers(n))] = 1.0
    widths = rng.uniform(5.0, 16.0, n)
    return [
        Band(float(p), float(i), float(w))
        for p, i, w in zip(positions, intensities, widths, strict=True)
    ]


@dataclass(frozen=True, slots=True)
class Case:
    """One validation query and what a correct answer must contain."""

    kind: str  # "field" | "other" | "mixture" | "absent"
    spectrum: Spectrum
    truth: tuple[str, ...]  # substances present, main first (empty for "absent")
    withheld: str | None = None  # library entry to leave out for this query (leave-substance-out)


def validation_cases(
    bands: Mapping[str, Sequence[Band]],
    rng: np.random.Generator,
    *,
    n_field: int = 100,
    n_other: int = 100,
    n_mixture: int = 100,
    n_ternary: int = 0,
    absent_per_substance: int = 2,
    unknowns: Mapping[str, Sequence[Band]] | None = None,
    agents: Sequence[str] = (),
    conditions: FieldConditions = FieldConditions(),  # frozen value
    other_sigma: float = 0.35,
    other_jitter_cm1: float = 3.0,
) -> list[Case]:
    """A seeded validation set drawn from band tables.

    ``field``: a library substance under field conditions. ``other``: the same
    through :func:`other_instrument_bands` first. ``mixture``: a main component
    (50–70 % of the normalised signal; not one of ``agents``) cut with one of
    ``agents`` (any other substance when none are given). ``ternary``: the same
    with two agents sharing the rest. ``absent``: every
    substance queried against the library without it (``withheld``), plus the
    ``unknowns`` that no library contains; every other absent query is first
    passed through :func:`other_instrument_bands`, as a real unknown would be.
    ``other_sigma`` and ``other_jitter_cm1`` set the other-instrument perturbation.
    """
    names = sorted(bands)
    if len(names) < 2:
        raise ValueError("need at least two substances")
    truths = {n: truth_from_bands(bands[n]) for n in names}
    cases: list[Case] = []
    for _ in range(n_field):
        n = names[int(rng.integers(len(names)))]
        cases.append(Case("field", field_spectrum(truths[n], rng, conditions, name=n), (n,)))
    for _ in range(n_other):
        n = names[int(rng.integers(len(names)))]
        varied = other_instrument_bands(bands[n], rng, other_sigma, other_jitter_cm1)
        truth = truth_from_bands(varied)
        cases.append(Case("other", field_spectrum(truth, rng, conditions, name=n), (n,)))
    agent_set = [a for a in agents if a in bands]
    mains = [n for n in names if n not in agent_set] or names
    for _ in range(n_mixture):
        main = mains[int(rng.integers(len(mains)))]
        others = [a for a in (agent_set or names) if a != main]
        cut = others[int(rng.integers(len(others)))]
        w = rng.uniform(0.5, 0.7)
        a, b = truths[main], truths[cut]
        mix = w * a / np.linalg.norm(a) + (1.0 - w) * b / np.linalg.norm(b)
        cases.append(Case("mixture", field_spectrum(mix, rng, conditions), (main, cut)))
    for _ in range(n_ternary):
        main = mains[int(rng.integers(len(mains)))]
        others = [a for a in (agent_set or names) if a != main]
        picks = rng.choice(len(others), 2, replace=False)
        cuts = [others[int(k)] for k in picks]
        w, u = rng.uniform(0.5, 0.7), rng.uniform(0.3, 0.7)
        weights = (w, (1.0 - w) * u, (1.0 - w) * (1.0 - u))
        mix = np.zeros_like(truths[main])
        for n, f in zip([main, *cuts], weights, strict=True):
            mix += f * truths[n] / np.linalg.norm(truths[n])
        spectrum = field_spectrum(mix, rng, conditions)
        cases.append(Case("ternary", spectrum, (main, *cuts)))

    def absent(band_list: Sequence[Band], k: int) -> Spectrum:
        if k % 2:
            band_list = other_instrument_bands(band_list, rng, other_sigma, other_jitter_cm1)
        return field_spectrum(truth_from_bands(band_list), rng, conditions)

    for n in names:
        for k in range(absent_per_substance):
            cases.append(Case("absent", absent(bands[n], k), (), n))
    for _name, unknown in sorted((unknowns or {}).items()):
        for k in range(max(2 * absent_per_substance, 1)):
            cases.append(Case("absent", absent(unknown, k), ()))
    return cases
