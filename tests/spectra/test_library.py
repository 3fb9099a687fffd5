"""Reference libraries: build from files, round trip, content version, tampering, bad input."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from spectra.errors import LibraryError
from spectra.field import TRUTH_AXIS
from spectra.io import write_csv, write_jcamp
from spectra.library import (
    ReferenceLibrary,
    build_library,
    load_demo_library,
    load_library,
)
from spectra.preprocess import Pipeline
from spectra.spectrum import Spectrum
from spectra.synth import Band, synthesise

AXIS = np.linspace(200.0, 3200.0, 1501)
SETS = {
    "alpha": [Band(480, 0.5, 10), Band(1003, 1.0, 8), Band(1600, 0.4, 10)],
    "beta": [Band(620, 1.0, 12), Band(1250, 0.6, 10), Band(2930, 0.5, 25)],
    "gamma": [Band(850, 0.7, 9), Band(1450, 1.0, 14)],
}


def _spectrum(name: str) -> Spectrum:
    return Spectrum(AXIS, 100.0 + 1000.0 * synthesise(AXIS, SETS[name]), name=name)


@pytest.fixture
def src(tmp_path: Path) -> Path:
    folder = tmp_path / "refs"
    folder.mkdir()
    write_jcamp(_spectrum("alpha").renamed("Alpha HCl"), folder / "a.jdx")
    write_csv(_spectrum("beta"), folder / "beta.csv")
    write_jcamp(_spectrum("gamma"), folder / "g.dx")
    (folder / "g.dx.json").write_text(json.dumps({"class": "cutting_agent", "cas": "1-2-3"}))
    (folder / "manifest.json").write_text(
        json.dumps(
            {
                "format": "fieldscan-manifest/1",
                "entries": {
                    "Alpha HCl": {
                        "class": "narcotic",
                        "synonyms": ["alpha"],
                        "control": ["1961 Schedule I"],
                    },
                    "beta": {"class": "precursor", "precursor_of": ["Alpha HCl"]},
                },
            }
        )
    )
    return folder


def test_build_names_metadata_and_round_trip(src: Path, tmp_path: Path) -> None:
    lib = build_library(src)
    assert sorted(lib.names) == ["Alpha HCl", "beta", "gamma"]  # TITLE for JCAMP, stem for CSV
    assert lib.metadata("Alpha HCl")["class"] == "narcotic"
    assert lib.metadata("Alpha HCl")["synonyms"] == ["alpha"]
    assert lib.metadata("beta")["precursor_of"] == ["Alpha HCl"]
    assert lib.metadata("gamma") == {
        "class": "cutting agent",
        "cas": "1-2-3",
        "synonyms": [],
        "precursor_of": [],
        "control": None,
    }
    assert lib.version.startswith("sha256:")
    assert not lib.demonstration
    path = lib.save(tmp_path / "refs.fslib")
    back = load_library(path)
    assert back.version == lib.version
    assert back.names == lib.names
    assert back.pipeline == lib.pipeline
    assert back.thresholds == lib.thresholds
    np.testing.assert_array_equal(back.matrix, lib.matrix)
    for name in lib.names:
        assert back.metadata(name) == lib.metadata(name)
        s = back.spectrum(name)
        assert s.name == name and np.max(s.intensities) == pytest.approx(1.0)
    # Re-saving gives the same version (a hash of content, not of container bytes).
    assert load_library(back.save(tmp_path / "again.fslib")).version == lib.version


def test_version_changes_with_content(src: Path) -> None:
    lib = build_library(src)
    assert lib.without(["beta"]).version != lib.version
    assert build_library(src, title="other").version != lib.version
    assert build_library(src, pipeline=Pipeline(baseline_lam=1e6)).version != lib.version
    assert build_library(src).version == lib.version  # deterministic


def _rewrite(
    path: Path, meta: dict[str, object] | None = None, spectra: np.ndarray | None = None
) -> None:
    with np.load(path) as npz:
        old_meta = json.loads(bytes(npz["meta"]).decode())
        old_spectra = np.array(npz["spectra"])
    meta = old_meta if meta is None else meta
    buf = io.BytesIO()
    np.savez_compressed(
        buf,
        meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
        spectra=old_spectra if spectra is None else spectra,
    )
    path.write_bytes(buf.getvalue())


def test_tampered_spectra_are_detected(src: Path, tmp_path: Path) -> None:
    path = build_library(src).save(tmp_path / "lib.fslib")
    with np.load(path) as npz:
        spectra = np.array(npz["spectra"])
    spectra[0, 500] += 0.01
    _rewrite(path, spectra=spectra)
    with pytest.raises(LibraryError, match="modified or damaged") as err:
        load_library(path)
    assert err.value.path == path


def test_tampered_metadata_is_detected(src: Path, tmp_path: Path) -> None:
    path = build_library(src).save(tmp_path / "lib.fslib")
    with np.load(path) as npz:
        meta = json.loads(bytes(npz["meta"]).decode())
    meta["entries"][0]["metadata"]["class"] = "other"
    _rewrite(path, meta=meta)
    with pytest.raises(LibraryError, match="modified or damaged"):
        load_library(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not a fieldscan library"),
        (b"\x00\x01garbage" * 50, "not a fieldscan library"),
        (b"PK\x03\x04truncated zip", "not a fieldscan library"),
    ],
)
def test_garbage_library_files(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.fslib"
    path.write_bytes(content)
    with pytest.raises(LibraryError, match=message):
        load_library(path)


def test_wrong_format_and_missing_file(src: Path, tmp_path: Path) -> None:
    with pytest.raises(LibraryError, match="cannot read library"):
        load_library(tmp_path / "absent.fslib")
    path = build_library(src).save(tmp_path / "lib.fslib")
    with np.load(path) as npz:
        meta = json.loads(bytes(npz["meta"]).decode())
    _rewrite(path, meta={**meta, "format": "something-else/9"})
    with pytest.raises(LibraryError, match="not a fieldscan-library/1"):
        load_library(path)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("other.npy", b"x")
    path.write_bytes(buf.getvalue())
    with pytest.raises(LibraryError, match="not a fieldscan library"):
        load_library(path)


def test_build_errors_name_the_file(src: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(LibraryError, match="no spectrum files"):
        build_library(empty)
    with pytest.raises(LibraryError, match="not a folder"):
        build_library(tmp_path / "nope")
    (src / "broken.csv").write_text("1,2\n3,nan\nfoo\n")
    with pytest.raises(LibraryError, match=r"broken\.csv"):
        build_library(src)


def test_duplicate_names_are_refused(src: Path) -> None:
    write_jcamp(_spectrum("beta").renamed("Alpha HCl"), src / "z.jdx")
    with pytest.raises(LibraryError, match=r"duplicate name 'Alpha HCl' in a\.jdx and z\.jdx"):
        build_library(src)


def test_bad_manifest_and_sidecar(src: Path, tmp_path: Path) -> None:
    (src / "manifest.json").write_text("{not json")
    with pytest.raises(LibraryError, match=r"manifest\.json: invalid JSON"):
        build_library(src)
    other = tmp_path / "m.json"
    other.write_text(json.dumps({"entries": {"beta": {"synonyms": 5}}}))
    with pytest.raises(LibraryError, match="synonyms"):
        build_library(src, manifest=other)
    other.write_text(json.dumps({"entries": []}))
    with pytest.raises(LibraryError, match="entries"):
        build_library(src, manifest=other)


def test_spectrum_outside_the_library_axis_is_refused() -> None:
    far = Spectrum(np.linspace(4000, 5000, 100), np.ones(100), name="far")
    with pytest.raises(LibraryError, match="cannot preprocess far"):
        ReferenceLibrary.from_spectra([far])


def test_constructor_validation() -> None:
    with pytest.raises(LibraryError, match="at least one"):
        ReferenceLibrary([], np.zeros((0, Pipeline().axis_points)))
    lib = ReferenceLibrary.from_spectra([_spectrum("alpha"), _spectrum("beta")])
    with pytest.raises(KeyError, match="zeta"):
        lib.spectrum("zeta")
    with pytest.raises(LibraryError, match="shape"):
        ReferenceLibrary(lib.entries, lib.matrix[:, :10])


REQUIRED = [
    "cocaine hydrochloride",
    "cocaine base",
    "heroin hydrochloride",
    "morphine",
    "methamphetamine hydrochloride",
    "fentanyl hydrochloride",
    "ketamine hydrochloride",
    "levamisole hydrochloride",
    "caffeine",
]


def test_demo_library_is_labelled_cached_and_current() -> None:
    lib = load_demo_library()
    assert lib is load_demo_library()
    assert lib.demonstration
    assert "NOT for evidential use" in lib.title
    for name in REQUIRED:
        assert name in lib.names
    assert lib.metadata("cocaine hydrochloride")["class"] == "narcotic"
    assert lib.metadata("caffeine")["class"] == "cutting agent"
    # The committed file matches a fresh build from the band tables.
    from spectra.demo import build_demo_library

    fresh = build_demo_library()
    stale = "spectra/data/demo-library.fslib is stale: run `python -m spectra.demo build`"
    assert fresh.names == lib.names, stale
    assert fresh.pipeline == lib.pipeline, stale
    assert fresh.thresholds == lib.thresholds, stale
    assert [fresh.metadata(n) for n in fresh.names] == [lib.metadata(n) for n in lib.names], stale
    np.testing.assert_allclose(fresh.matrix, lib.matrix, atol=1e-5, err_msg=stale)


def test_reference_covering_part_of_the_axis_is_zero_elsewhere() -> None:
    axis = TRUTH_AXIS[(TRUTH_AXIS > 400) & (TRUTH_AXIS < 1800)]
    s = Spectrum(axis, synthesise(axis, SETS["alpha"]), name="part")
    lib = ReferenceLibrary.from_spectra([s])
    ref = lib.spectrum("part")
    assert np.all(ref.intensities[ref.axis < 400] == 0)
    assert np.all(ref.intensities[ref.axis > 1800] == 0)
    assert ref.intensities[np.argmin(np.abs(ref.axis - 1003))] == pytest.approx(1.0, abs=0.05)
