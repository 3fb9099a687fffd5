"""Preprocessing contracts: pure functions, validation up front, and agreement with known truth."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse.linalg import spsolve

from spectra.field import FieldConditions, field_spectrum
from spectra.preprocess import (
    Pipeline,
    broaden,
    despike,
    median_filter,
    normalise,
    remove_baseline,
    resample,
    smooth,
)
from spectra.synth import Band, synthesise

AXIS = np.linspace(200.0, 1800.0, 801)  # 2 cm⁻¹
BANDS = [Band(520, 0.4, 10), Band(1003, 1.0, 8), Band(1030, 0.5, 9), Band(1600, 0.6, 12)]
CLEAN = synthesise(AXIS, BANDS)
BACKGROUND = 4.0 * np.exp(-0.5 * ((AXIS - 1300.0) / 700.0) ** 2) + 0.5 * (AXIS - 200) / 1600


def _noisy(seed: int = 0, sigma: float = 0.01) -> np.ndarray:
    return CLEAN + BACKGROUND + np.random.default_rng(seed).normal(0, sigma, AXIS.size)


STEPS: list[tuple[str, Callable[[Any], np.ndarray]]] = [
    ("despike", lambda y: despike(y)),
    ("median_filter", lambda y: median_filter(y, 5)),
    ("remove_baseline", lambda y: remove_baseline(y, AXIS)),
    ("remove_baseline_snip", lambda y: remove_baseline(y, AXIS, method="snip")),
    ("smooth", lambda y: smooth(y, 11, 3)),
    ("broaden", lambda y: broaden(y, 5.0)),
    ("normalise", lambda y: normalise(y, "area", AXIS)),
]


@pytest.mark.parametrize(("name", "step"), STEPS)
def test_step_does_not_modify_input_and_accepts_lists(
    name: str, step: Callable[[Any], np.ndarray]
) -> None:
    y = _noisy()
    before = y.copy()
    out = step(y)
    np.testing.assert_array_equal(y, before)
    assert out is not y
    np.testing.assert_array_equal(step(list(y)), out)  # list == array
    np.testing.assert_array_equal(step(y), out)  # deterministic


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: despike(CLEAN, threshold=0), "threshold"),
        (lambda: despike(CLEAN, window=4), "window"),
        (lambda: despike(CLEAN, window=3), "window"),
        (lambda: despike(CLEAN, sharpness=0), "sharpness"),
        (lambda: despike([1.0, np.nan, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]), "NaN"),
        (lambda: median_filter(CLEAN, 4), "odd"),
        (lambda: remove_baseline(CLEAN, method="magic"), "unknown"),  # type: ignore[arg-type]
        (lambda: remove_baseline(CLEAN, lam=-1), "lam"),
        (lambda: remove_baseline(CLEAN, AXIS[::-1]), "increasing"),
        (lambda: remove_baseline(CLEAN, AXIS[:10]), "points"),
        (lambda: smooth(CLEAN, 8), "odd"),
        (lambda: smooth(CLEAN, 5, 5), "polyorder"),
        (lambda: broaden(CLEAN, -1), "fwhm"),
        (lambda: normalise(CLEAN, "l3"), "unknown"),  # type: ignore[arg-type]
        (lambda: normalise(np.ones((3, 3))), "one-dimensional"),
        (lambda: resample(AXIS, CLEAN, np.linspace(3000, 3400, 100)), "overlaps only"),
        (lambda: resample(AXIS, CLEAN[:-1], AXIS), "points"),
    ],
)
def test_invalid_parameters_raise_value_error(call: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def _asls_reference(y: np.ndarray, lam: float, p: float, iterations: int = 50) -> np.ndarray:
    """Eilers & Boelens' asymmetric least squares, written out with scipy.sparse."""
    n = y.size
    d = sp.diags([1.0, -2.0, 1.0], [0, 1, 2], shape=(n - 2, n))
    penalty = lam * (d.T @ d)
    w = np.ones(n)
    z = y
    for _ in range(iterations):
        z = spsolve(sp.csc_matrix(sp.diags(w) + penalty), w * y)
        new_w = np.where(y > z, p, 1.0 - p)
        if np.array_equal(new_w, w):
            break
        w = new_w
    return np.asarray(z)


def test_asls_baseline_agrees_with_an_independent_implementation() -> None:
    y = _noisy(1)
    ours = y - remove_baseline(y, AXIS, method="asls", lam=1e5)
    reference = _asls_reference(y, 1e5, 0.01)
    assert np.max(np.abs(ours - reference)) < 0.02 * np.ptp(BACKGROUND)


@pytest.mark.parametrize("method", ["arpls", "asls", "iarpls"])
def test_baseline_recovers_bands_under_a_background_four_times_taller(method: str) -> None:
    corrected = remove_baseline(_noisy(2), AXIS, method=method)  # type: ignore[arg-type]
    r = np.corrcoef(corrected, CLEAN)[0, 1]
    assert r > 0.97
    # The band heights survive within 15 %.
    i = int(np.argmin(np.abs(AXIS - 1003)))
    assert corrected[i] == pytest.approx(1.0, rel=0.15)


def test_despike_removes_cosmic_rays_and_keeps_sharp_bands() -> None:
    rng = np.random.default_rng(3)
    y = 1000.0 * CLEAN + 200.0 + rng.normal(0, 3.0, AXIS.size)  # SNR ~ 300: tall, sharp bands
    spiked = y.copy()
    where = [100, 333, 700]
    spiked[where] += [4000.0, 2500.0, 6000.0]
    spiked[334] += 1500.0
    out = despike(spiked)
    off_band = np.ones(AXIS.size, dtype=bool)
    off_band[690:711] = False
    # Every spike gone: to within a few noise sigmas off the bands …
    assert np.max(np.abs(out - y)[off_band]) < 20.0
    # … and, for the hit on top of the 1600 cm⁻¹ band, to within a third of the band's height.
    assert np.max(np.abs(out - y)[~off_band]) < 200.0
    np.testing.assert_allclose(despike(y), y)  # nothing to remove: bands untouched


def test_despike_independent_check_against_median_reference() -> None:
    # Hand check: a lone spike is replaced by the mean of its neighbours' neighbours.
    y = np.full(50, 10.0)
    y[25] = 500.0
    out = despike(y)
    assert out[25] == pytest.approx(10.0)
    assert np.all(out[np.arange(50) != 25] == 10.0)


def test_resample_covers_only_the_overlap_without_extrapolating() -> None:
    target = np.arange(150.0, 3400.0 + 1, 2.0)
    x = np.linspace(250.5, 1999.5, 1024) + 0.0001 * np.arange(1024) ** 2 / 1024  # non-uniform
    y = 3.0 * x + 7.0
    part = resample(x, y, target)
    covered = target[part.start : part.stop]
    assert covered[0] >= x[0] and covered[-1] <= x[-1]
    assert target[part.start - 1] < x[0] and target[part.stop] > x[-1]
    np.testing.assert_allclose(part.values, 3.0 * covered + 7.0)  # linear data: exact


def test_normalisations() -> None:
    y = CLEAN * 7.0
    assert np.linalg.norm(normalise(y, "vector")) == pytest.approx(1.0)
    assert np.max(normalise(y, "max")) == pytest.approx(1.0)
    assert np.trapezoid(normalise(y, "area", AXIS), AXIS) == pytest.approx(1.0)
    np.testing.assert_array_equal(normalise(np.zeros(10)), np.zeros(10))


def test_broaden_preserves_area_and_lowers_peaks() -> None:
    out = broaden(CLEAN, 6.0)
    assert out.sum() == pytest.approx(CLEAN.sum(), rel=1e-3)
    assert out.max() < CLEAN.max()
    np.testing.assert_array_equal(broaden(CLEAN, 0), CLEAN)


def test_pipeline_round_trips_through_json_and_validates() -> None:
    p = Pipeline(broaden_fwhm_cm1=10.0, baseline_method="iarpls", axis_points=2048)
    assert Pipeline.from_json(p.to_json()) == p
    with pytest.raises(ValueError, match="unknown pipeline parameter"):
        Pipeline.from_dict({**p.to_dict(), "colour": "red"})
    with pytest.raises(ValueError):
        Pipeline(axis_stop=100.0)
    with pytest.raises(ValueError):
        Pipeline(despike_window=4)
    with pytest.raises(ValueError):
        Pipeline(compress="cube")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Pipeline.from_json("[1, 2]")


def test_pipeline_makes_a_field_measurement_look_like_its_reference() -> None:
    """Strong fluorescence, noise, spikes, a partial non-uniform axis → close to the reference."""
    pipeline = Pipeline()
    from spectra.field import TRUTH_AXIS

    truth = synthesise(TRUTH_AXIS, BANDS)
    conditions = FieldConditions(fluorescence=(5.0, 5.0), snr=(50.0, 50.0), spikes=(3, 3))
    raw = field_spectrum(truth, np.random.default_rng(4), conditions)
    query = pipeline.prepare(raw)
    ref = pipeline.prepare_arrays(TRUTH_AXIS, truth)
    s = slice(query.start, query.stop)
    assert query.covered_cm1[0] >= raw.axis[0] and query.covered_cm1[1] <= raw.axis[-1]
    assert np.all(query.values[: query.start] == 0) and np.all(query.values[query.stop :] == 0)
    assert np.corrcoef(query.values[s], ref.values[s])[0, 1] > 0.95
    again = pipeline.prepare(raw)
    np.testing.assert_array_equal(again.values, query.values)  # deterministic


@settings(max_examples=60, deadline=None)
@given(
    values=hnp.arrays(
        np.float64,
        st.integers(64, 400),
        elements=st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
    ),
    start=st.floats(100.0, 1500.0),
    span=st.floats(450.0, 2000.0),
)
def test_prepare_is_pure_and_total_on_arbitrary_finite_data(
    values: np.ndarray, start: float, span: float
) -> None:
    axis = np.linspace(start, start + span, values.size)
    before = values.copy()
    pipeline = Pipeline()
    out = pipeline.prepare_arrays(axis, values)
    np.testing.assert_array_equal(values, before)  # input untouched
    assert np.all(np.isfinite(out.values))
    assert 0 <= out.start < out.stop <= pipeline.axis_points
    again = pipeline.prepare_arrays(list(axis), list(values))
    np.testing.assert_array_equal(again.values, out.values)  # list == array, deterministic
