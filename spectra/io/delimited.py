"""Two-column text spectra (CSV, TSV, plain text): read with sniffing, write with options.

Reading accepts comma, semicolon, tab or whitespace delimiters, a decimal comma
(``1234,5;0,25``), an optional header row, ``#`` comment lines, blank lines and
x ascending or descending. Columns: x and y are taken from a header that names
them (wavenumber / raman shift / x, intensity / counts / absorbance / y), else
from the first two columns. The spectrum's name is the file stem. The kind is
IR absorbance when the y column is named absorbance (NIR when named
nir_absorbance), otherwise Raman. A CSV has no end marker, so the last line
must end with a line break: otherwise the file may have been cut inside a
number, which would change a value silently.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spectra.errors import SpectrumFileError
from spectra.io._common import (
    PathLike,
    build_spectrum,
    decode_text,
    format_float,
    read_bytes,
    transmittance_to_absorbance,
    write_atomically,
)
from spectra.spectrum import Spectrum, SpectrumKind

DELIMITERS = (",", ";", "\t")
DECIMALS = (".", ",")

_HEADER = {
    SpectrumKind.RAMAN: ("raman_shift_cm-1", "intensity"),
    SpectrumKind.IR_ABSORBANCE: ("wavenumber_cm-1", "absorbance"),
    SpectrumKind.NIR: ("wavenumber_cm-1", "nir_absorbance"),
}
_X_NAMES = re.compile(r"wave ?numbers?|raman ?shift|shift|^x$|cm-?1|cm\^-1|1/cm|^axis$", re.I)
_Y_NAMES = re.compile(r"intensit|counts?|absorbance|transmi|%t\b|^y$|signal|^abs$", re.I)
# An x column named like this is not in cm⁻¹; reading it as cm⁻¹ would be silently wrong.
_WRONG_X_UNITS = re.compile(
    r"wavelength|\bnm\b|nanomet|micromet|µm|μm|\bum\b|pixel|\btime\b|\bsec|\bs\b", re.I
)
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_NON_FINITE = re.compile(r"^[+-]?(nan|inf|infinity)$", re.I)


@dataclass(frozen=True, slots=True)
class _Layout:
    delimiter: str | None  # None: runs of whitespace
    decimal: str
    width: int | None  # columns per data row, when every sampled row agrees
    numeric: tuple[int, ...]  # columns that hold numbers in every sampled row


def _split(line: str, delimiter: str | None) -> list[str]:
    if delimiter is None:
        fields = line.split()
    elif '"' not in line:
        fields = [f.strip() for f in line.split(delimiter)]
    else:
        # The csv module keeps quoted fields such as "1,234.5" together.
        fields = [f.strip() for f in next(csv.reader([line], delimiter=delimiter))]
    while fields and fields[-1] == "":
        fields.pop()  # a trailing delimiter (spreadsheet exports) adds no column
    return fields


def _is_number(text: str, decimal: str) -> bool:
    if decimal == ",":
        if "." in text:
            return False
        text = text.replace(",", ".")
    return bool(_NUMBER.match(text)) or bool(_NON_FINITE.match(text))


def _numeric_columns(fields: Sequence[str], decimal: str) -> tuple[int, ...]:
    return tuple(i for i, f in enumerate(fields) if _is_number(f, decimal))


def _sniff(lines: Sequence[str]) -> _Layout:
    """The delimiter and decimal mark that make the data lines consistent rows of numbers."""
    sample = lines[-min(len(lines), 50) :]  # the tail: past any header or preamble
    candidates: list[tuple[str | None, str]] = [
        ("\t", "."),
        ("\t", ","),
        (";", "."),
        (";", ","),
        (",", "."),
        (None, "."),
        (None, ","),
    ]
    for delimiter, decimal in candidates:
        if delimiter is not None and not all(delimiter in line for line in sample):
            continue
        rows = [_split(line, delimiter) for line in sample]
        widths = {len(row) for row in rows}
        numeric = {_numeric_columns(row, decimal) for row in rows}
        if len(widths) == 1 and len(numeric) == 1:
            columns = numeric.pop()
            if len(columns) >= 2:
                return _Layout(delimiter, decimal, widths.pop(), columns)
    # No layout fits every line: keep the likely delimiter so the row checks can say
    # which line is wrong.
    for delimiter in ("\t", ";", ","):
        if all(delimiter in line for line in sample):
            joined = "".join(sample)
            decimal = "," if delimiter != "," and "," in joined and "." not in joined else "."
            return _Layout(delimiter, decimal, None, ())
    return _Layout(None, ".", None, ())


def _to_float(text: str, decimal: str) -> float:
    return float(text.replace(",", ".") if decimal == "," else text)


def _pick_columns(header: list[str] | None, numeric: Sequence[int]) -> tuple[int, int]:
    if header is None:
        return numeric[0], numeric[1]
    named = [i for i in numeric if i < len(header)]
    x_col = next((i for i in named if _X_NAMES.search(header[i])), None)
    y_col = next((i for i in named if i != x_col and _Y_NAMES.search(header[i])), None)
    if x_col is None:
        x_col = next(i for i in numeric if i != y_col)
    if y_col is None:
        y_col = next(i for i in numeric if i != x_col)
    return x_col, y_col


def read_delimited(path: PathLike) -> Spectrum:
    """One spectrum from a CSV/TSV/TXT file of x, y columns.

    Raises
    ------
    SpectrumFileError
        When the file is missing, unreadable, binary, has no numeric rows, has
        rows of differing width or non-numeric, NaN or infinite values, too few
        points, or an x column named as a wavelength, pixel or time.
    """
    p = Path(path)
    text = decode_text(p, read_bytes(p))
    return read_delimited_text(p, text)


def read_delimited_text(path: Path, text: str) -> Spectrum:
    """Parse delimited ``text`` read from ``path``."""
    numbered = [
        (number, line.strip())
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not numbered:
        raise SpectrumFileError(path, "holds no data (only blank or comment lines)")
    if text[-1] not in "\r\n" and not text.splitlines()[-1].lstrip().startswith("#"):
        # Every CSV writer ends rows with a line break; without one the last value may
        # have been cut short (1234.5678 → 1234.5) and would be read silently wrong.
        raise SpectrumFileError(
            path,
            "the last line has no line break, so the file may have been cut short "
            "(if it is complete, end it with a line break)",
        )
    layout = _sniff([line for _, line in numbered])
    delimiter, decimal = layout.delimiter, layout.decimal

    # Leading lines without numbers in the data columns are a preamble, the last of
    # them the header; from the first data row on, every row must be complete.
    first_data: int | None = None
    for index, (_, line) in enumerate(numbered):
        fields = _split(line, delimiter)
        columns = _numeric_columns(fields, decimal)
        if layout.width is None and len(columns) >= 2:
            layout = _Layout(delimiter, decimal, len(fields), columns)
        if (
            layout.width is not None
            and len(fields) == layout.width
            and (set(layout.numeric) <= set(columns))
        ):
            first_data = index
            break
    if first_data is None or layout.width is None:
        raise SpectrumFileError(
            path, "holds no rows of numbers (expected two columns: x and intensity)"
        )
    header = _split(numbered[first_data - 1][1], delimiter) if first_data > 0 else None
    if header is not None and len(header) != layout.width:
        header = None  # a preamble line, not column names
    x_col, y_col = _pick_columns(header, layout.numeric)
    x_name = header[x_col] if header else ""
    y_name = header[y_col].lower() if header else ""
    if _WRONG_X_UNITS.search(x_name) and not _X_NAMES.search(x_name):
        raise SpectrumFileError(
            path, f"x column {x_name!r} is not in cm⁻¹ (Raman shift or wavenumber)"
        )
    xs: list[float] = []
    ys: list[float] = []
    for number, line in numbered[first_data:]:
        fields = _split(line, delimiter)
        if len(fields) != layout.width:
            raise SpectrumFileError(
                path, f"line {number}: has {len(fields)} column(s), expected {layout.width}"
            )
        row: list[float] = []
        for col in (x_col, y_col):
            cell = fields[col]
            if not _is_number(cell, decimal):
                shown = cell[:30] if cell else "(empty)"
                raise SpectrumFileError(path, f"line {number}: {shown!r} is not a number")
            if _NON_FINITE.match(cell):
                raise SpectrumFileError(
                    path, f"line {number}: value {cell!r} is not a finite number"
                )
            row.append(_to_float(cell, decimal))
        xs.append(row[0])
        ys.append(row[1])
    values = np.asarray(ys, dtype=np.float64)
    kind = SpectrumKind.RAMAN
    if "transmi" in y_name or re.search(r"%t\b", y_name):
        # We keep absorbance, A = −log10(T), which adds up linearly in mixtures.
        kind = SpectrumKind.NIR if "nir" in y_name else SpectrumKind.IR_ABSORBANCE
        if len(values) and np.all(np.isfinite(values)):
            percent = True if "%" in y_name else None
            values = transmittance_to_absorbance(path, values, percent=percent)
    elif "absorbance" in y_name or y_name == "abs":
        kind = SpectrumKind.NIR if "nir" in y_name else SpectrumKind.IR_ABSORBANCE
    return build_spectrum(path, xs, values, kind=kind, name=path.stem)


def delimited_text(
    spectrum: Spectrum,
    *,
    delimiter: str = ",",
    decimal: str = ".",
    header: bool = True,
    descending: bool = False,
) -> str:
    """The text :func:`write_csv` writes (values exact to float64)."""
    if delimiter not in DELIMITERS:
        raise ValueError(f"delimiter must be one of {DELIMITERS!r}, got {delimiter!r}")
    if decimal not in DECIMALS:
        raise ValueError(f"decimal must be '.' or ',', got {decimal!r}")
    if decimal == delimiter:
        raise ValueError("decimal ',' cannot be used with delimiter ','; use ';' or a tab")

    def number(value: float) -> str:
        text = format_float(value)
        return text.replace(".", ",") if decimal == "," else text

    order = np.arange(len(spectrum))[::-1] if descending else np.arange(len(spectrum))
    lines = [delimiter.join(_HEADER[spectrum.kind])] if header else []
    lines += [
        f"{number(spectrum.axis[i])}{delimiter}{number(spectrum.intensities[i])}" for i in order
    ]
    return "\n".join(lines) + "\n"


def write_csv(
    spectrum: Spectrum,
    path: PathLike,
    *,
    delimiter: str = ",",
    decimal: str = ".",
    header: bool = True,
    descending: bool = False,
) -> None:
    """Write ``spectrum`` as two delimited columns, x then intensity.

    Parameters
    ----------
    spectrum : Spectrum
        What to write; values are written with ``repr``, so they read back exactly.
    path : str or PathLike
        Destination; written via a temporary file, so no half-written file is left.
    delimiter : {',', ';', '\\t'}
        Column separator.
    decimal : {'.', ','}
        Decimal mark; ``','`` needs ``';'`` or tab as delimiter.
    header : bool
        Write a header row naming the columns (it also records the kind).
    descending : bool
        Write x from high to low (common for IR exports).

    Raises
    ------
    ValueError
        For an unknown delimiter or decimal, or decimal ',' with delimiter ','.
    SpectrumFileError
        When the file cannot be written.
    """
    text = delimited_text(
        spectrum, delimiter=delimiter, decimal=decimal, header=header, descending=descending
    )
    write_atomically(path, text.encode("utf-8"))
