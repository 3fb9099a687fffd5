"""Samples the emulated module can look at: the reference library when present, else band tables.

The band positions (cm⁻¹) and relative heights are rounded literature values,
enough for a recognisable fingerprint; the reference library proper lives in
:mod:`spectra.library`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from spectra.errors import SpectraError
from spectra.spectrum import Spectrum, SpectrumKind
from spectra.synth import Band, synthesise

DEFAULT_SAMPLE = "cocaine_hcl"
DEFAULT_LIBRARY_SAMPLE = "cocaine hydrochloride"

_BANDS: dict[str, tuple[Band, ...]] = {
    "cocaine_hcl": (
        Band(616, 0.3),
        Band(787, 0.3),
        Band(870, 0.6),
        Band(1004, 1.0, 6),
        Band(1026, 0.5, 6),
        Band(1277, 0.3),
        Band(1450, 0.3, 12),
        Band(1600, 0.6),
        Band(1712, 0.5, 10),
    ),
    "paracetamol": (
        Band(390, 0.3),
        Band(465, 0.3),
        Band(651, 0.5),
        Band(797, 0.6),
        Band(857, 1.0),
        Band(1168, 0.6),
        Band(1236, 0.5),
        Band(1323, 0.5),
        Band(1371, 0.3),
        Band(1561, 0.3),
        Band(1610, 0.6),
        Band(1648, 0.5),
    ),
    "caffeine": (
        Band(483, 0.3),
        Band(555, 1.0),
        Band(741, 0.3),
        Band(1285, 0.5),
        Band(1330, 0.6),
        Band(1600, 0.3),
        Band(1659, 0.3),
        Band(1699, 0.4),
    ),
    "polystyrene": (
        Band(621, 0.3, 6),
        Band(1001, 1.0, 5),
        Band(1031, 0.3, 6),
        Band(1155, 0.2),
        Band(1583, 0.2),
        Band(1602, 0.4),
    ),
}


def builtin_names() -> list[str]:
    """Names of the built-in band-table samples."""
    return sorted(_BANDS)


def builtin_sample(name: str) -> Spectrum:
    """A synthetic Raman spectrum (50–3200 cm⁻¹, 1 cm⁻¹ step) of a built-in sample."""
    try:
        bands = _BANDS[name]
    except KeyError:
        raise ValueError(
            f"unknown sample {name!r}; built in: {', '.join(builtin_names())}"
        ) from None
    axis = np.arange(50.0, 3200.0, 1.0)
    return Spectrum(axis, synthesise(axis, bands), SpectrumKind.RAMAN, name=name)


def resolve_sample(name_or_file: str | None) -> Spectrum:
    """The sample for ``--sample``: a spectrum file, a reference-library name, or a built-in.

    Raises
    ------
    ValueError
        When nothing of that name or path can be found or read.
    """
    if name_or_file is not None:
        path = Path(name_or_file)
        if path.suffix and path.exists():
            return _read_file(path)
    try:
        from spectra.library import load_demo_library
    except ImportError:  # the reference library is optional for the mock
        return builtin_sample(name_or_file or DEFAULT_SAMPLE)
    try:
        library = load_demo_library()
    except SpectraError as exc:  # a damaged library must not stop the mock from serving
        if name_or_file is None or name_or_file in _BANDS:
            return builtin_sample(name_or_file or DEFAULT_SAMPLE)
        raise ValueError(f"sample {name_or_file!r} needs the reference library: {exc}") from None
    key = name_or_file or DEFAULT_LIBRARY_SAMPLE
    if key in library:
        found: Spectrum = library.spectrum(key)
        return found
    if key in _BANDS or name_or_file is None:
        return builtin_sample(key if key in _BANDS else DEFAULT_SAMPLE)
    raise ValueError(
        f"unknown sample {key!r}: not a file, not in the reference library "
        f"({', '.join(library.names)}), not built in ({', '.join(builtin_names())})"
    )


def mix(main: Spectrum, other: Spectrum, fraction: float) -> Spectrum:
    """``main`` cut with ``other``: ``(1 − fraction)·main + fraction·other`` on main's axis.

    Both are first scaled to a tallest point of 1, as a rough stand-in for equal
    Raman cross-sections.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"cut fraction must lie in [0, 1], got {fraction}")
    a = main.intensities / max(float(np.max(main.intensities)), 1e-12)
    b = np.interp(main.axis, other.axis, other.intensities, left=0.0, right=0.0)
    b = b / max(float(np.max(b)), 1e-12)
    return main.with_values((1.0 - fraction) * a + fraction * b).renamed(
        f"{main.name} + {fraction:.0%} {other.name}"
    )


def _read_file(path: Path) -> Spectrum:
    try:
        from spectra import io as spectra_io
    except ImportError:
        raise ValueError(f"cannot read {path}: spectra.io is not available") from None
    reader = getattr(spectra_io, "read_spectrum", None)
    if reader is None:
        raise ValueError(f"cannot read {path}: spectra.io has no read_spectrum")
    spectrum = reader(path)
    if not isinstance(spectrum, Spectrum):
        raise ValueError(f"{path} did not give one spectrum")
    return spectrum
