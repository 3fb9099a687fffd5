"""Spectrum files: JCAMP-DX and CSV read/write, Galactic/Thermo SPC read.

Every failure to read or write raises :class:`spectra.errors.SpectrumFileError`
naming the file and saying what is wrong; a reader either returns complete,
validated spectra or raises.

>>> from spectra.io import read_spectrum, write_jcamp  # doctest: +SKIP
>>> spectrum = read_spectrum("cocaine.jdx")  # doctest: +SKIP
"""

from __future__ import annotations

import re
from pathlib import Path

from spectra.errors import SpectrumFileError
from spectra.io._common import PathLike, decode_text, read_bytes
from spectra.io.delimited import read_delimited_text, write_csv
from spectra.io.jcampdx import read_jcamp_text, write_jcamp
from spectra.io.spc import read_spc_bytes
from spectra.spectrum import Spectrum

JCAMP_SUFFIXES = (".jdx", ".dx", ".jcamp")
DELIMITED_SUFFIXES = (".csv", ".tsv", ".txt")
SPC_SUFFIXES = (".spc",)
#: File name endings :func:`read_spectrum` understands (compared case-insensitively).
SUPPORTED_SUFFIXES: tuple[str, ...] = JCAMP_SUFFIXES + DELIMITED_SUFFIXES + SPC_SUFFIXES
_JCAMP_START = re.compile(r"\s*(\$\$[^\n]*\n\s*)*##\s*TITLE\s*=", re.IGNORECASE)

__all__ = [
    "SUPPORTED_SUFFIXES",
    "read_spectra",
    "read_spectrum",
    "write_csv",
    "write_jcamp",
]


def read_spectra(path: PathLike) -> list[Spectrum]:
    """Every spectrum in a file: several for SPC multifiles and JCAMP LINK files.

    The format is chosen by the suffix (see :data:`SUPPORTED_SUFFIXES`); a
    ``.txt``/``.csv`` file whose text starts with ``##TITLE=`` is read as JCAMP-DX.

    Raises
    ------
    SpectrumFileError
        For an unsupported suffix and for every failure to read the file.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        shown = suffix or "(none)"
        raise SpectrumFileError(
            p,
            f"unsupported file type {shown!r}; spectrum files must end in "
            + ", ".join(SUPPORTED_SUFFIXES),
        )
    data = read_bytes(p)
    if suffix in SPC_SUFFIXES:
        return read_spc_bytes(p, data)
    text = decode_text(p, data)
    if suffix in JCAMP_SUFFIXES or _JCAMP_START.match(text):
        return read_jcamp_text(p, text)
    return [read_delimited_text(p, text)]


def read_spectrum(path: PathLike) -> Spectrum:
    """The one spectrum in a file.

    Raises
    ------
    SpectrumFileError
        For every failure to read the file, and when it holds several spectra
        (use :func:`read_spectra` for those).
    """
    spectra = read_spectra(path)
    if len(spectra) != 1:
        raise SpectrumFileError(
            Path(path),
            f"holds {len(spectra)} spectra, not one; read it with read_spectra()",
        )
    return spectra[0]
