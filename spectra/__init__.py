"""fieldscan.spectra — spectrum values, file I/O, preprocessing, reference libraries and matching.

Pure numpy/scipy; imports nothing else of fieldscan's.
"""

from spectra.errors import LibraryError, SpectraError, SpectrumFileError, SpectrumValueError
from spectra.spectrum import Acquisition, Spectrum, SpectrumKind

__all__ = [
    "Acquisition",
    "LibraryError",
    "SpectraError",
    "Spectrum",
    "SpectrumFileError",
    "SpectrumKind",
    "SpectrumValueError",
]
