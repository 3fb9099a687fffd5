"""The demonstration library and the bundled example spectra.

DEMONSTRATION ONLY — NOT FOR EVIDENTIAL USE. The references are synthesised
from published band positions (``spectra/data/demo_bands.csv``, each band with
its literature source), not measured.

Command line (maintainers)::

    python -m spectra.demo build      # rebuild spectra/data/demo-library.fslib
    python -m spectra.demo examples   # regenerate fieldscan/examples/
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from spectra.errors import LibraryError
from spectra.field import TRUTH_AXIS, FieldConditions, field_spectrum, truth_from_bands
from spectra.library import DEMO_LIBRARY_PATH, ReferenceLibrary, read_manifest
from spectra.preprocess import Pipeline
from spectra.spectrum import Acquisition, Spectrum
from spectra.synth import Band

DATA = Path(__file__).parent / "data"
BANDS_CSV = DATA / "demo_bands.csv"
UNKNOWNS_CSV = DATA / "demo_unknowns.csv"
MANIFEST_JSON = DATA / "demo_manifest.json"
TITLE = "fieldscan demonstration library (synthetic, NOT for evidential use)"


def read_band_table(path: str | Path) -> dict[str, list[Band]]:
    """Band lists by substance from a ``substance,position_cm1,relative_intensity,fwhm_cm1,…`` CSV.

    Raises
    ------
    LibraryError
        Naming the file and line for a missing column or a bad number.
    """
    source = Path(path)
    out: dict[str, list[Band]] = {}
    try:
        with source.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = {"substance", "position_cm1", "relative_intensity", "fwhm_cm1"} - set(
                reader.fieldnames or []
            )
            if missing:
                raise LibraryError(f"missing column(s) {', '.join(sorted(missing))}", source)
            for row in reader:
                try:
                    band = Band(
                        float(row["position_cm1"]),
                        float(row["relative_intensity"]),
                        float(row["fwhm_cm1"]),
                    )
                except (TypeError, ValueError) as exc:
                    raise LibraryError(f"line {reader.line_num}: {exc}", source) from None
                out.setdefault(row["substance"].strip(), []).append(band)
    except OSError as exc:
        raise LibraryError(f"cannot read band table: {exc.strerror or exc}", source) from None
    if not out:
        raise LibraryError("the band table has no bands", source)
    return out


def demo_bands() -> dict[str, list[Band]]:
    """Band lists of every demonstration-library substance."""
    return read_band_table(BANDS_CSV)


def unknown_bands() -> dict[str, list[Band]]:
    """Band lists of substances deliberately absent from the demonstration library."""
    return read_band_table(UNKNOWNS_CSV)


def library_from_bands(
    bands: Mapping[str, list[Band]],
    metadata: Mapping[str, Mapping[str, Any]] | None = None,
    pipeline: Pipeline = Pipeline(),  # noqa: B008  # frozen value
    title: str = TITLE,
    demonstration: bool = True,
) -> ReferenceLibrary:
    """Synthesise each band list on the fine truth axis and build a library from them."""
    from spectra.verdict import DEFAULT

    spectra = [
        Spectrum(TRUTH_AXIS, truth_from_bands(b), name=name) for name, b in sorted(bands.items())
    ]
    return ReferenceLibrary.from_spectra(
        spectra, metadata or {}, pipeline, DEFAULT, title, demonstration
    )


def build_demo_library() -> ReferenceLibrary:
    """Build the demonstration library from the committed band tables and manifest."""
    return library_from_bands(demo_bands(), read_manifest(MANIFEST_JSON))


#: The bundled examples: file stem → (components with weights, seed).
EXAMPLES: dict[str, tuple[dict[str, float], int]] = {
    "cocaine-hcl-field": ({"cocaine hydrochloride": 1.0}, 11),
    "cocaine-hcl-cut-levamisole": (
        {"cocaine hydrochloride": 0.6, "levamisole hydrochloride": 0.4},
        12,
    ),
    "unknown-ibuprofen": ({"ibuprofen": 1.0}, 13),
}

#: Moderate field conditions for the examples: some fluorescence, drift and noise.
EXAMPLE_CONDITIONS = FieldConditions(
    fluorescence=(1.0, 2.0), snr=(40.0, 60.0), drift_cm1=(-3.0, 3.0), spikes=(1, 2)
)


def example_spectra() -> dict[str, Spectrum]:
    """The example measurements (deterministic: fixed seeds)."""
    bands = {**demo_bands(), **unknown_bands()}
    out = {}
    for stem, (parts, seed) in EXAMPLES.items():
        truth = np.zeros_like(TRUTH_AXIS)
        for name, weight in parts.items():
            pure = truth_from_bands(bands[name])
            truth += weight * pure / np.linalg.norm(pure)
        rng = np.random.default_rng(seed)
        s = field_spectrum(truth, rng, EXAMPLE_CONDITIONS, name=stem.replace("-", " "))
        out[stem] = Spectrum(
            s.axis,
            np.round(s.intensities, 1),
            name=s.name,
            acquisition=Acquisition(
                device_model="simulated handheld Raman (example)", laser_nm=785.0
            ),
        )
    return out


def write_examples(folder: str | Path) -> list[Path]:
    """Write the examples: pure and cut as JCAMP-DX, the unknown as CSV."""
    from spectra.io import write_csv, write_jcamp

    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for stem, spectrum in example_spectra().items():
        if stem.startswith("unknown"):
            path = target / f"{stem}.csv"
            write_csv(spectrum, path)
        else:
            path = target / f"{stem}.jdx"
            write_jcamp(spectrum, path, form="XYPOINTS")
        written.append(path)
    return written


def _main(argv: list[str]) -> int:
    if argv[:1] == ["build"]:
        library = build_demo_library()
        library.save(DEMO_LIBRARY_PATH)
        print(f"{DEMO_LIBRARY_PATH}: {len(library)} entries, version {library.version}")
        return 0
    if argv[:1] == ["examples"]:
        folder = (
            Path(argv[1]) if len(argv) > 1 else Path(__file__).parents[1] / "fieldscan" / "examples"
        )
        for path in write_examples(folder):
            print(path)
        return 0
    print(json.dumps({"usage": "python -m spectra.demo build | examples [FOLDER]"}))
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
