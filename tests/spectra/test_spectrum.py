"""Contracts of the Spectrum value: validation up front, immutability, sorting."""

from __future__ import annotations

import numpy as np
import pytest

from spectra import Acquisition, Spectrum, SpectrumKind, SpectrumValueError


def _axis(n: int = 32) -> np.ndarray:
    return np.linspace(200.0, 1800.0, n)


def test_descending_axis_is_sorted_with_intensities() -> None:
    axis = _axis()
    values = np.arange(axis.size, dtype=float)
    s = Spectrum(axis[::-1], values[::-1])
    assert np.all(np.diff(s.axis) > 0)
    np.testing.assert_array_equal(s.intensities, values)


def test_inputs_are_copied_and_result_is_read_only() -> None:
    axis, values = _axis(), np.ones(32)
    s = Spectrum(axis, values)
    values[0] = 99.0
    assert s.intensities[0] == 1.0
    with pytest.raises(ValueError):
        s.intensities[0] = 5.0
    with pytest.raises(AttributeError):
        s.name = "x"  # type: ignore[misc]


def test_lists_and_arrays_give_equal_spectra() -> None:
    axis = _axis()
    assert Spectrum(list(axis), [1.0] * 32) == Spectrum(axis, np.ones(32))


@pytest.mark.parametrize(
    ("axis", "values", "message"),
    [
        (np.arange(32.0), np.ones(31), "31"),
        (np.arange(8.0), np.ones(8), "at least 16"),
        (np.arange(32.0), np.r_[np.ones(31), np.nan], "non-finite"),
        (np.r_[np.arange(31.0), np.inf], np.ones(32), "non-finite"),
        (np.r_[np.arange(31.0), 3.0], np.ones(32), "monotonic"),
        (np.ones((4, 8)), np.ones((4, 8)), "one-dimensional"),
        (["a"] * 32, np.ones(32), "not numeric"),
    ],
)
def test_invalid_spectra_are_refused_with_a_reason(axis, values, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SpectrumValueError, match=message):
        Spectrum(axis, values)


def test_kind_and_acquisition_are_validated() -> None:
    with pytest.raises(ValueError):
        Spectrum(_axis(), np.ones(32), kind="uv")  # type: ignore[arg-type]
    with pytest.raises(SpectrumValueError, match="laser_nm"):
        Acquisition(laser_nm=-785.0)
    meta = Acquisition(device_model="STS", laser_nm=785.0, averages=3)
    assert Acquisition.from_dict(meta.to_dict()) == meta
    ir = Spectrum(_axis(), np.ones(32), kind=SpectrumKind.IR_ABSORBANCE)
    assert ir.kind is SpectrumKind.IR_ABSORBANCE
