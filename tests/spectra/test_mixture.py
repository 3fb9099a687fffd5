"""NNLS mixture fitting: recovers known fractions, asserts nothing spurious, validates input."""

from __future__ import annotations

import numpy as np
import pytest

from spectra.field import random_bands, truth_from_bands
from spectra.mixture import fit_mixture


def _pool(seed: int = 0, k: int = 8) -> np.ndarray:
    rng = np.random.default_rng(seed)
    cols = [truth_from_bands(random_bands(rng))[::4] for _ in range(k)]
    refs = np.stack(cols, axis=1)
    return refs / np.linalg.norm(refs, axis=0)


def test_recovers_the_fractions_of_a_noiseless_mixture() -> None:
    refs = _pool()
    query = 0.6 * refs[:, 2] + 0.3 * refs[:, 5] + 0.1 * refs[:, 7]
    fit = fit_mixture(query, refs, first=2, min_gain=0.3, min_fraction=0.05)
    assert fit.components == (2, 5, 7)
    np.testing.assert_allclose(fit.fractions, [0.6, 0.3, 0.1], atol=0.01)
    assert sum(fit.fractions) == pytest.approx(1.0)
    assert fit.residual < 1e-3


def test_a_pure_noisy_spectrum_gets_no_extra_component() -> None:
    refs = _pool(1)
    rng = np.random.default_rng(2)
    for _ in range(20):
        query = refs[:, 3] * 5.0 + 0.2 + rng.normal(0, 0.002, refs.shape[0])
        fit = fit_mixture(query, refs, first=3)
        assert fit.components == (3,)
        assert fit.fractions == (1.0,)


def test_offset_does_not_become_a_component() -> None:
    refs = _pool(3)
    fit = fit_mixture(0.7 * refs[:, 0] + 0.3 * refs[:, 1] - 0.05, refs, first=0)
    assert set(fit.components) == {0, 1}
    np.testing.assert_allclose(sorted(fit.fractions), [0.3, 0.7], atol=0.02)


def test_inputs_are_not_modified_and_results_are_deterministic() -> None:
    refs = _pool(4)
    query = 0.5 * refs[:, 1] + 0.5 * refs[:, 2]
    before_q, before_r = query.copy(), refs.copy()
    a = fit_mixture(query, refs, first=1)
    b = fit_mixture(list(query), refs.tolist(), first=1)
    np.testing.assert_array_equal(query, before_q)
    np.testing.assert_array_equal(refs, before_r)
    assert a.components == b.components and a.fractions == b.fractions


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"query": np.ones(5)}, "need query"),
        ({"first": 99}, "first"),
        ({"max_components": 0}, "max_components"),
        ({"min_gain": 1.5}, "min_gain"),
        ({"min_fraction": 0.7}, "min_fraction"),
        ({"query": np.full(1750, np.nan)}, "finite"),
    ],
)
def test_invalid_input(kwargs: dict[str, object], message: str) -> None:
    refs = _pool()
    args: dict[str, object] = {"query": refs[:, 0], "references": refs, **kwargs}
    with pytest.raises(ValueError, match=message):
        fit_mixture(**args)  # type: ignore[arg-type]


def test_exclusive_columns_are_never_both_components() -> None:
    refs = _pool(5)
    query = 0.6 * refs[:, 0] + 0.4 * refs[:, 1]
    assert set(fit_mixture(query, refs, first=0).components) == {0, 1}
    exclusive = np.zeros((refs.shape[1], refs.shape[1]), dtype=bool)
    exclusive[0, 1] = exclusive[1, 0] = True
    fit = fit_mixture(query, refs, first=0, exclusive=exclusive)
    assert 1 not in fit.components and fit.components[0] == 0
    with pytest.raises(ValueError, match="exclusive"):
        fit_mixture(query, refs, exclusive=np.zeros((2, 2), dtype=bool))
