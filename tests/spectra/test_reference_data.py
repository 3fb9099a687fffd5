"""Integrity of the demonstration library's source data (spectra/data/).

The band tables are the only input of the demonstration library, so these tests
pin what the builder and the validation rely on: every required substance is
there, every band is traceable to a listed source, values are sane, the manifest
matches the tables one to one, and no two entries synthesise to the same spectrum.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from spectra.synth import Band, synthesise

DATA = Path(__file__).resolve().parents[2] / "spectra" / "data"
BAND_COLUMNS = ["substance", "position_cm1", "relative_intensity", "fwhm_cm1", "source_id", "note"]
SOURCE_COLUMNS = ["source_id", "citation", "doi_or_url", "what_it_gives"]
CLASSES = {"narcotic", "precursor", "cutting_agent", "other"}

REQUIRED = {
    "narcotic": [
        "cocaine hydrochloride",
        "cocaine base",
        "heroin hydrochloride",
        "morphine",
        "methamphetamine hydrochloride",
        "amphetamine sulfate",
        "mdma hydrochloride",
        "fentanyl hydrochloride",
        "carfentanil",
        "acetylfentanyl",
        "furanylfentanyl",
        "ketamine hydrochloride",
        "tramadol hydrochloride",
    ],
    "precursor": [
        "ephedrine hydrochloride",
        "pseudoephedrine hydrochloride",
        "p2p",
        "pmk",
        "safrole",
        "npp",
        "4-anpp",
        "acetic anhydride",
        "potassium permanganate",
    ],
    "cutting_agent": [
        "caffeine",
        "lidocaine hydrochloride",
        "levamisole hydrochloride",
        "phenacetin",
        "paracetamol",
        "procaine hydrochloride",
        "benzocaine",
        "mannitol",
        "lactose monohydrate",
        "sucrose",
        "sodium bicarbonate",
    ],
}
# Simple inorganic ions/lattices have few Raman-active modes; inventing bands to
# reach eight would be dishonest, so they need only four.
FEW_MODES = {
    "potassium permanganate",
    "sodium bicarbonate",
    "calcium carbonate",
    "talc",
    "boric acid",
}
CONTROL_PATTERN = re.compile(
    r"^(1961 Single Convention Schedule (I|II|III|IV)"
    r"|1971 Convention Schedule (I|II|III|IV)"
    r"|1988 Convention Table (I|II))$"
)
DOI_PATTERN = re.compile(r"^https?://\S+$")


def _read_csv(name: str, columns: list[str]) -> list[dict[str, str]]:
    with (DATA / name).open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == columns, f"{name}: header {reader.fieldnames}"
        rows = list(reader)
    assert rows, f"{name} is empty"
    return rows


def _bands_by_substance(rows: list[dict[str, str]]) -> dict[str, list[Band]]:
    out: dict[str, list[Band]] = {}
    for row in rows:
        band = Band(
            float(row["position_cm1"]), float(row["relative_intensity"]), float(row["fwhm_cm1"])
        )
        out.setdefault(row["substance"], []).append(band)
    return out


def cas_is_valid(cas: str) -> bool:
    """CAS number check digit: digit sum weighted 1, 2, … from the right, mod 10."""
    match = re.fullmatch(r"(\d{2,7})-(\d{2})-(\d)", cas)
    if match is None:
        return False
    digits = (match.group(1) + match.group(2))[::-1]
    total = sum((i + 1) * int(d) for i, d in enumerate(digits))
    return total % 10 == int(match.group(3))


@pytest.fixture(scope="module")
def band_rows() -> list[dict[str, str]]:
    return _read_csv("demo_bands.csv", BAND_COLUMNS)


@pytest.fixture(scope="module")
def unknown_rows() -> list[dict[str, str]]:
    return _read_csv("demo_unknowns.csv", BAND_COLUMNS)


@pytest.fixture(scope="module")
def sources() -> dict[str, dict[str, str]]:
    rows = _read_csv("demo_sources.csv", SOURCE_COLUMNS)
    ids = [r["source_id"] for r in rows]
    assert len(ids) == len(set(ids)), "duplicate source_id"
    return {r["source_id"]: r for r in rows}


@pytest.fixture(scope="module")
def manifest() -> dict[str, dict[str, object]]:
    doc = json.loads((DATA / "demo_manifest.json").read_text(encoding="utf-8"))
    assert doc["format"] == "fieldscan-manifest/1"
    entries = doc["entries"]
    assert isinstance(entries, dict) and entries
    return entries


def test_cas_check_rejects_bad_numbers() -> None:
    assert cas_is_valid("58-08-2")  # caffeine
    assert cas_is_valid("7732-18-5")  # water
    assert not cas_is_valid("58-08-3")
    assert not cas_is_valid("5808-2")
    assert not cas_is_valid("")


def test_every_required_substance_present(band_rows: list[dict[str, str]]) -> None:
    names = {r["substance"] for r in band_rows}
    missing = [n for group in REQUIRED.values() for n in group if n not in names]
    assert not missing, f"missing substances: {missing}"
    assert len(names) > sum(len(g) for g in REQUIRED.values()), "expected extra 'other' diluents"


@pytest.mark.parametrize("which", ["demo_bands.csv", "demo_unknowns.csv"])
def test_band_values_finite_and_in_range(which: str) -> None:
    for row in _read_csv(which, BAND_COLUMNS):
        where = f"{which}: {row}"
        assert row["substance"] == row["substance"].strip().lower() and row["substance"], where
        pos = float(row["position_cm1"])
        inten = float(row["relative_intensity"])
        width = float(row["fwhm_cm1"])
        assert all(math.isfinite(v) for v in (pos, inten, width)), where
        assert 100.0 <= pos <= 3600.0, where
        assert 0.0 < inten <= 1.0, where
        assert 3.0 <= width <= 100.0, where
        assert row["note"].strip(), f"band without a note: {where}"


@pytest.mark.parametrize("which", ["demo_bands.csv", "demo_unknowns.csv"])
def test_band_counts_strongest_and_unique_positions(which: str) -> None:
    for name, bands in _bands_by_substance(_read_csv(which, BAND_COLUMNS)).items():
        need = 4 if name in FEW_MODES else 8
        assert need <= len(bands) <= 25, f"{name}: {len(bands)} bands"
        assert max(b.intensity for b in bands) == 1.0, f"{name}: strongest band is not 1.0"
        positions = sorted(b.position for b in bands)
        close = [(a, b) for a, b in itertools.pairwise(positions) if b - a < 2.0]
        assert not close, f"{name}: bands closer than 2 cm-1: {close}"
        fingerprint = [p for p in positions if 400.0 <= p <= 1800.0]
        assert len(fingerprint) >= need // 2, f"{name}: too few fingerprint bands"


def test_sources_cited_and_citing(
    band_rows: list[dict[str, str]],
    unknown_rows: list[dict[str, str]],
    sources: dict[str, dict[str, str]],
) -> None:
    cited = {r["source_id"] for r in band_rows + unknown_rows}
    assert cited <= set(sources), f"unknown source ids: {cited - set(sources)}"
    assert set(sources) <= cited, f"sources cited by no band: {set(sources) - cited}"
    for sid, row in sources.items():
        assert row["citation"].strip() and row["what_it_gives"].strip(), sid
        link = row["doi_or_url"]
        assert link == "" or DOI_PATTERN.match(link), f"{sid}: bad link {link!r}"


def test_manifest_matches_bands(
    band_rows: list[dict[str, str]], manifest: dict[str, dict[str, object]]
) -> None:
    names = {r["substance"] for r in band_rows}
    assert set(manifest) == names, set(manifest) ^ names
    for cls, group in REQUIRED.items():
        for name in group:
            assert manifest[name]["class"] == cls, name


def test_manifest_fields_valid(manifest: dict[str, dict[str, object]]) -> None:
    for name, entry in manifest.items():
        assert set(entry) == {
            "synonyms",
            "class",
            "cas",
            "control",
            "precursor_of",
            "form",
            "notes",
        }, name
        assert entry["class"] in CLASSES, name
        cas = entry["cas"]
        assert isinstance(cas, str) and (cas == "" or cas_is_valid(cas)), f"{name}: CAS {cas}"
        control = entry["control"]
        assert isinstance(control, list)
        assert all(isinstance(c, str) and CONTROL_PATTERN.match(c) for c in control), name
        targets = entry["precursor_of"]
        assert isinstance(targets, list)
        if entry["class"] == "precursor":
            assert targets, f"{name}: precursor without precursor_of"
            assert all(t in manifest and manifest[t]["class"] == "narcotic" for t in targets), name
            assert any(c.startswith("1988") for c in control), f"{name}: not a Table I/II"
        else:
            assert not targets, f"{name}: only precursors have precursor_of"
        synonyms = entry["synonyms"]
        assert isinstance(synonyms, list) and all(isinstance(s, str) and s for s in synonyms)


def test_cas_numbers_distinct(manifest: dict[str, dict[str, object]]) -> None:
    numbers = [str(e["cas"]) for e in manifest.values() if e["cas"]]
    assert len(numbers) == len(set(numbers)), "two entries share a CAS number"
    assert len(numbers) >= len(manifest) - 3, "too many entries without a CAS number"


def test_names_and_synonyms_unambiguous(manifest: dict[str, dict[str, object]]) -> None:
    owner: dict[str, str] = {}
    for name, entry in manifest.items():
        synonyms = entry["synonyms"]
        assert isinstance(synonyms, list)
        for alias in {name, *(s.lower() for s in synonyms)}:
            assert owner.setdefault(alias, name) == name, f"{alias!r}: {owner[alias]} and {name}"


def test_unknowns_disjoint_from_library(
    unknown_rows: list[dict[str, str]], manifest: dict[str, dict[str, object]]
) -> None:
    unknowns = {r["substance"] for r in unknown_rows}
    assert 4 <= len(unknowns) <= 6
    library_names = set(manifest)
    for entry in manifest.values():
        synonyms = entry["synonyms"]
        assert isinstance(synonyms, list)
        library_names |= {s.lower() for s in synonyms}
    assert not unknowns & library_names, unknowns & library_names


def test_synthesised_entries_distinct(
    band_rows: list[dict[str, str]], unknown_rows: list[dict[str, str]]
) -> None:
    axis = np.arange(200.0, 3201.0, 1.0)
    tables = _bands_by_substance(band_rows) | _bands_by_substance(unknown_rows)
    names = sorted(tables)
    spectra = np.array([synthesise(axis, tables[n]) for n in names])
    assert np.all(np.isfinite(spectra)) and np.all(spectra.max(axis=1) > 0.5)
    unit = spectra / np.linalg.norm(spectra, axis=1, keepdims=True)
    cosine = unit @ unit.T
    np.fill_diagonal(cosine, 0.0)
    i, j = np.unravel_index(int(np.argmax(cosine)), cosine.shape)
    assert cosine[i, j] < 0.98, f"{names[i]} and {names[j]} synthesise alike: {cosine[i, j]:.3f}"


def test_demonstration_label_present() -> None:
    readme = (DATA / "README.md").read_text(encoding="utf-8")
    assert "NOT FOR EVIDENTIAL USE" in readme
