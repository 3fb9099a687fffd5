"""The sample the BLE mock "sees": a demo-library spectrum, or a synthetic one until it exists."""

from __future__ import annotations

import numpy as np

from spectra.spectrum import Spectrum, SpectrumKind
from spectra.synth import Band, synthesise

DEFAULT_SAMPLE = "paracetamol"

#: Paracetamol (acetaminophen) bands, cm⁻¹, with rough relative intensities: the
#: stand-in sample when the demo library is not available.
PARACETAMOL_BANDS = (
    Band(1648, 0.55, 10),
    Band(1610, 0.45, 10),
    Band(1561, 0.30, 10),
    Band(1371, 0.25, 10),
    Band(1324, 0.50, 10),
    Band(1236, 0.45, 10),
    Band(1168, 0.55, 8),
    Band(857, 1.00, 8),
    Band(797, 0.60, 8),
    Band(651, 0.35, 8),
    Band(465, 0.30, 8),
    Band(390, 0.30, 8),
)


def synthetic_sample() -> Spectrum:
    """Paracetamol synthesised from :data:`PARACETAMOL_BANDS` on 100–3200 cm⁻¹."""
    axis = np.linspace(100.0, 3200.0, 3101)
    return Spectrum(axis, synthesise(axis, PARACETAMOL_BANDS), SpectrumKind.RAMAN, DEFAULT_SAMPLE)


def default_sample(name: str = DEFAULT_SAMPLE) -> Spectrum:
    """``name`` from the demo library when it can be loaded, else the synthetic stand-in."""
    try:
        from spectra.library import load_demo_library

        spectrum: Spectrum = load_demo_library().spectrum(name)
        return spectrum
    except Exception as exc:  # library missing or name unknown: the stand-in, or a clear error
        if name != DEFAULT_SAMPLE:
            raise ValueError(f"sample {name!r} is not available: {exc}") from None
        return synthetic_sample()
