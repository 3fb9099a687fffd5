"""Spectral fingerprints (pure): the comparable form, the band hashes, and that the indexed
search finds what a brute-force comparison of every pair finds."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.linking import spectral
from spectra.synth import Band, synthesise

AXIS = np.linspace(200.0, 2000.0, 1024)


def raman(seed: int, *, noise: float = 0.0, background: float = 0.0) -> np.ndarray:
    """A synthetic Raman spectrum with random bands (one substance per seed)."""
    rng = np.random.default_rng(seed)
    bands = [
        Band(float(rng.uniform(320, 1780)), float(rng.uniform(0.1, 1.0)), float(rng.uniform(6, 20)))
        for _ in range(int(rng.integers(6, 14)))
    ]
    values = synthesise(AXIS, bands) * 1000.0
    values += background * np.exp(-(((AXIS - 1500.0) / 900.0) ** 2))  # fluorescence hump
    if noise:
        values += np.random.default_rng(seed + 10_000).normal(0.0, noise, AXIS.size)
    return values


def test_comparable_vectors_have_unit_norm_and_zero_mean_and_dot_is_correlation() -> None:
    a = spectral.comparable("raman", AXIS, raman(1))
    b = spectral.comparable("raman", AXIS, raman(1, noise=20.0))
    assert a is not None and b is not None
    assert a.shape == (spectral.DIM,)
    assert np.linalg.norm(a) == pytest.approx(1.0)
    assert a.sum() == pytest.approx(0.0, abs=1e-9)
    assert float(a @ b) == pytest.approx(float(np.corrcoef(a, b)[0, 1]), abs=1e-9)


def test_same_substance_with_noise_and_background_is_highly_similar_others_are_not() -> None:
    clean = spectral.comparable("raman", AXIS, raman(7))
    measured = spectral.comparable("raman", AXIS, raman(7, noise=5.0, background=800.0))
    other = spectral.comparable("raman", AXIS, raman(8))
    assert clean is not None and measured is not None and other is not None
    assert float(clean @ measured) >= spectral.SIMILARITY_THRESHOLD
    assert float(clean @ other) < 0.5


@pytest.mark.parametrize(
    ("kind", "axis", "values", "why"),
    [
        ("uv_vis", AXIS, raman(1), "kind without a grid"),
        ("raman", np.linspace(1500, 2000, 300), np.ones(300), "covers too little of the grid"),
        ("raman", AXIS, np.full(AXIS.size, 5.0), "flat"),
        ("raman", AXIS, np.where(AXIS > 900, np.nan, 1.0), "not finite"),
        ("raman", AXIS[:10], np.ones(11), "axis and values differ in length"),
        ("raman", np.r_[AXIS[:5], AXIS[4:]], np.ones(AXIS.size + 1), "repeated axis point"),
    ],
)
def test_no_comparable_form(kind: str, axis: np.ndarray, values: np.ndarray, why: str) -> None:
    assert spectral.comparable(kind, axis, values) is None, why
    assert spectral.fingerprint(kind, axis, values) is None


def test_decreasing_axis_gives_the_same_vector() -> None:
    forward = spectral.comparable("raman", AXIS, raman(3))
    backward = spectral.comparable("raman", AXIS[::-1], raman(3)[::-1])
    assert forward is not None and backward is not None
    np.testing.assert_allclose(forward, backward, atol=1e-12)


def test_fingerprint_of_rejects_a_vector_of_the_wrong_size() -> None:
    with pytest.raises(ValueError, match="256 values"):
        spectral.fingerprint_of(np.ones(10), "raman")


def test_band_keys_name_version_kind_and_band() -> None:
    print_ = spectral.fingerprint("raman", AXIS, raman(2))
    assert print_ is not None
    keys = print_.band_keys()
    assert len(keys) == spectral.BANDS == len(set(keys))
    assert all(k.startswith(f"spectrum:{spectral.VERSION}:raman:") for k in keys)
    assert all(0 <= b < 2**spectral.ROWS for b in print_.bands)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    scale=st.floats(0.01, 1e4),
    offset=st.floats(-1e4, 1e4),
)
def test_gain_and_offset_do_not_change_the_vector(seed: int, scale: float, offset: float) -> None:
    """An instrument's gain and dark offset must not make the same sample look different."""
    base = spectral.comparable("raman", AXIS, raman(seed))
    scaled = spectral.comparable("raman", AXIS, scale * raman(seed) + offset)
    assert base is not None and scaled is not None
    assert float(base @ scaled) > 0.999


@settings(max_examples=60, deadline=None)
@given(data=st.data(), rows=st.integers(1, 5), cols=st.integers(1, 5))
def test_best_similarity_matches_brute_force(data: st.DataObject, rows: int, cols: int) -> None:
    seed = data.draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)

    def unit(n: int) -> np.ndarray:
        v = rng.standard_normal((n, spectral.DIM))
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    a, b = unit(rows), unit(cols)
    if data.draw(st.booleans()):
        b[-1] = a[0]  # a duplicate: correlation 1
    best = spectral.best_similarity(a, b)
    assert best is not None
    brute = max((float(np.dot(a[i], b[j])), i, j) for i in range(rows) for j in range(cols))
    assert best[0] == pytest.approx(brute[0], abs=1e-12)
    assert float(np.dot(a[best[1]], b[best[2]])) == pytest.approx(best[0], abs=1e-12)


def test_best_similarity_of_nothing_is_none() -> None:
    assert spectral.best_similarity(np.zeros((0, spectral.DIM)), np.ones((1, spectral.DIM))) is None


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_pack_round_trip_keeps_correlations(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal((2, spectral.DIM))
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    packed = float(spectral.unpack(spectral.pack(a)) @ spectral.unpack(spectral.pack(b)))
    assert packed == pytest.approx(float(a @ b), abs=2e-3)


def _shares_a_band(x: spectral.Fingerprint, y: spectral.Fingerprint) -> bool:
    return any(p == q for p, q in zip(x.bands, y.bands, strict=True))


def test_banded_search_finds_what_brute_force_finds() -> None:
    """Against every pair compared exactly: the bands find (nearly) all highly similar pairs
    and few of the others. Spectra: 40 substances, each measured 1–4 times with noise."""
    rng = np.random.default_rng(42)
    prints: list[spectral.Fingerprint] = []
    for substance in range(40):
        for _ in range(int(rng.integers(1, 5))):
            noise = float(rng.choice([2.0, 8.0, 40.0]))
            values = raman(substance, background=float(rng.uniform(0, 500)))
            values = values + rng.normal(0, noise, AXIS.size)
            print_ = spectral.fingerprint("raman", AXIS, values)
            assert print_ is not None
            prints.append(print_)
    vectors = np.array([p.vector for p in prints])
    similar = vectors @ vectors.T
    truth = {
        (i, j)
        for i in range(len(prints))
        for j in range(i + 1, len(prints))
        if similar[i, j] >= spectral.SIMILARITY_THRESHOLD
    }
    found = {
        (i, j)
        for i in range(len(prints))
        for j in range(i + 1, len(prints))
        if _shares_a_band(prints[i], prints[j])
    }
    assert len(truth) >= 20  # the test means something
    verified = {pair for pair in found if similar[pair] >= spectral.SIMILARITY_THRESHOLD}
    assert verified <= truth  # verification never adds a pair brute force rejects
    recall = len(verified) / len(truth)
    assert recall >= 0.9
    dissimilar = {pair for pair in found if similar[pair] < 0.5}
    assert len(dissimilar) <= 0.01 * len(prints) ** 2


def test_collision_probability_is_monotonic_and_high_at_the_threshold() -> None:
    values = [spectral.band_collision_probability(c) for c in (0.0, 0.5, 0.9, 0.98, 1.0)]
    assert values == sorted(values)
    assert values[-1] == pytest.approx(1.0)
    assert spectral.band_collision_probability(spectral.SIMILARITY_THRESHOLD) > 0.9
    assert spectral.band_collision_probability(0.5) < 0.01


def test_vectors_unpack_alike_alone_or_stored_one_after_another() -> None:
    """The stored vectors of a linked seizure are unpacked together: exactly as one by one."""
    rng = np.random.default_rng(11)
    vectors = [rng.normal(size=spectral.DIM) for _ in range(5)] + [np.zeros(spectral.DIM)]
    packed = [spectral.pack(v / (np.linalg.norm(v) or 1.0)) for v in vectors]
    together = spectral.unpack_many(b"".join(packed))
    assert together.shape == (6, spectral.DIM)
    for row, one in zip(together, packed, strict=True):
        assert np.array_equal(row, spectral.unpack(one))
    assert np.allclose(np.linalg.norm(together[:5], axis=1), 1.0) and not together[5].any()
