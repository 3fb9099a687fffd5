"""The matcher's scores against an independent computation, batching, drift search."""

from __future__ import annotations

import numpy as np
import pytest

from spectra.demo import demo_bands
from spectra.field import CLEAN, FieldConditions, field_spectrum, truth_from_bands
from spectra.library import load_demo_library
from spectra.match import compress
from spectra.spectrum import Spectrum

BANDS = demo_bands()


def _query(name: str, seed: int, conditions: FieldConditions | None = None) -> Spectrum:
    rng = np.random.default_rng(seed)
    return field_spectrum(truth_from_bands(BANDS[name]), rng, conditions or FieldConditions())


def test_coarse_scores_equal_a_direct_pearson_correlation() -> None:
    lib = load_demo_library()
    matcher = lib.matcher()
    prepared = [
        lib.pipeline.prepare(_query("caffeine", 1)),
        lib.pipeline.prepare(_query("sucrose", 2)),
    ]
    scores = matcher.coarse_scores(prepared)
    d = matcher.decimation
    for row, p in enumerate(prepared):
        found = matcher.search([p], top=3)[0]
        i0, i1 = found.start, found.stop
        assert p.start <= i0 < i1 <= p.stop
        # Coarse scores: every d-th point of the compared range.
        q = compress(p.values[i0:i1:d])
        for j in (0, 7, 20):
            ref = compress(matcher.linear[j, i0:i1:d].astype(float))
            assert scores[row, j] == pytest.approx(np.corrcoef(q, ref)[0, 1], abs=1e-4)
        # Refined scores (best shift): at least the unshifted full-resolution correlation.
        q = compress(p.values[i0:i1])
        for k, s in zip(found.indices, found.scores, strict=True):
            ref = compress(matcher.linear[k, i0:i1].astype(float))
            assert s >= np.corrcoef(q, ref)[0, 1] - 1e-4


def test_batch_equals_one_at_a_time_and_is_sorted() -> None:
    lib = load_demo_library()
    matcher = lib.matcher()
    prepared = [
        lib.pipeline.prepare(_query(n, 3))
        for n in ("morphine", "mannitol", "ketamine hydrochloride")
    ]
    batch = matcher.search(prepared, top=5)
    for p, b in zip(prepared, batch, strict=True):
        single = matcher.search([p], top=5)[0]
        np.testing.assert_array_equal(single.indices, b.indices)
        np.testing.assert_allclose(single.scores, b.scores, rtol=1e-6)
        assert np.all(np.diff(b.scores) <= 0)
    with pytest.raises(ValueError, match="top"):
        matcher.search(prepared, top=0)
    assert matcher.search([], top=5) == []


@pytest.mark.parametrize("drift", [-5.0, -2.0, 3.0, 5.0])
def test_drift_is_found_and_undone(drift: float) -> None:
    lib = load_demo_library()
    conditions = FieldConditions(
        fluorescence=(0.0, 0.0), snr=(300.0, 300.0), drift_cm1=(drift, drift), spikes=(0, 0)
    )
    p = lib.pipeline.prepare(_query("cocaine hydrochloride", 4, conditions))
    found = lib.matcher().search([p], top=5)[0]
    assert lib.names[int(found.indices[0])] == "cocaine hydrochloride"
    assert found.shift_cm1 == pytest.approx(drift, abs=1.01)


def test_noise_correction_scales_with_noise() -> None:
    lib = load_demo_library()
    matcher = lib.matcher()

    def reliability(snr: float) -> float:
        conditions = FieldConditions(snr=(snr, snr))
        p = lib.pipeline.prepare(_query("caffeine", 5, conditions))
        found = matcher.search([p], top=5)[0]
        return found.reliability

    clean, noisy = reliability(1000.0), reliability(10.0)
    assert clean > 0.97
    assert 0.05 <= noisy < clean
    p = lib.pipeline.prepare(_query("caffeine", 6, CLEAN))
    assert matcher.search([p], top=1)[0].corrected(0.5) >= 0.5
