"""identify(): the result contract, batching, and the bundled examples."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import fieldscan
from spectra.demo import example_spectra
from spectra.identify import Identification, identify, identify_many
from spectra.io import read_spectrum
from spectra.library import load_demo_library
from spectra.spectrum import Spectrum
from spectra.verdict import Verdict

EXAMPLES = Path(fieldscan.__file__).parent / "examples"


def _check_contract(d: dict[str, object], version: str) -> None:
    assert d["verdict"] in {"identified", "mixture", "inconclusive", "no_match"}
    candidates = d["candidates"]
    assert isinstance(candidates, list) and len(candidates) >= 5
    scores = [c["score"] for c in candidates]
    assert scores == sorted(scores, reverse=True)
    assert all(isinstance(c["name"], str) for c in candidates)
    components = d["components"]
    assert isinstance(components, list)
    if d["verdict"] == "no_match":
        assert components == []
    else:
        assert components and sum(c["fraction"] for c in components) == pytest.approx(1, abs=0.01)
    assert d["library_version"] == version
    assert d["demonstration"] is True
    json.dumps(d)  # JSON-able


def test_bundled_examples_are_current_and_identified() -> None:
    lib = load_demo_library()
    expected = example_spectra()
    files = {p.stem: p for p in EXAMPLES.iterdir() if p.suffix in (".jdx", ".csv")}
    assert set(files) == set(expected)
    spectra = [read_spectrum(files[stem]) for stem in sorted(files)]
    stale = "fieldscan/examples is stale: run `python -m spectra.demo examples`"
    for s, stem in zip(spectra, sorted(files), strict=True):
        np.testing.assert_allclose(s.intensities, expected[stem].intensities, err_msg=stale)
    results = dict(zip(sorted(files), identify_many(spectra, lib), strict=True))
    pure = results["cocaine-hcl-field"]
    assert pure.verdict is Verdict.IDENTIFIED
    assert pure.components[0][0] == "cocaine hydrochloride"
    cut = results["cocaine-hcl-cut-levamisole"]
    assert cut.verdict is Verdict.MIXTURE
    assert {n for n, _ in cut.components} == {"cocaine hydrochloride", "levamisole hydrochloride"}
    assert dict(cut.components)["cocaine hydrochloride"] > 0.5
    unknown = results["unknown-ibuprofen"]
    assert unknown.verdict in (Verdict.NO_MATCH, Verdict.INCONCLUSIVE)
    for r in results.values():
        _check_contract(r.to_dict(), lib.version)


def test_identify_equals_batch_and_is_deterministic() -> None:
    lib = load_demo_library()
    spectra = list(example_spectra().values())
    batch = identify_many(spectra, lib)
    for s, b in zip(spectra, batch, strict=True):
        one = identify(s, lib)
        assert isinstance(one, Identification)
        assert one.to_dict() == b.to_dict()


def test_input_spectrum_is_not_modified() -> None:
    lib = load_demo_library()
    s = next(iter(example_spectra().values()))
    before = s.intensities.copy()
    identify(s, lib)
    np.testing.assert_array_equal(s.intensities, before)


def test_a_spectrum_outside_the_library_range_is_a_clear_error() -> None:
    lib = load_demo_library()
    far = Spectrum(np.linspace(5000, 6000, 200), np.ones(200))
    with pytest.raises(ValueError, match="overlaps only"):
        identify(far, lib)


def test_flat_spectrum_is_not_identified() -> None:
    lib = load_demo_library()
    rng = np.random.default_rng(0)
    axis = np.linspace(250, 2000, 1024)
    noise = Spectrum(axis, 1000 + rng.normal(0, 5, axis.size))
    r = identify(noise, lib)
    assert r.verdict in (Verdict.NO_MATCH, Verdict.INCONCLUSIVE)
    _check_contract(r.to_dict(), lib.version)


@pytest.mark.parametrize(
    "values",
    [
        np.linspace(0.0, 1e6, 500),  # a bare background: nothing left after baseline removal
        np.full(500, 7.0),
        np.r_[np.zeros(250), np.ones(250)],
    ],
)
def test_featureless_spectra_are_never_asserted(values: np.ndarray) -> None:
    lib = load_demo_library()
    r = identify(Spectrum(np.linspace(300, 1800, values.size), values), lib)
    assert r.verdict in (Verdict.NO_MATCH, Verdict.INCONCLUSIVE)


def test_too_narrow_a_range_is_a_clear_error() -> None:
    lib = load_demo_library()
    narrow = Spectrum(np.linspace(300, 500, 120), np.ones(120))
    with pytest.raises(ValueError, match="at least 400"):
        identify(narrow, lib)
