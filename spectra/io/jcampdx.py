"""JCAMP-DX 5.01 infrared/Raman spectra: read (through the ``jcamp`` package) and write.

The ``jcamp`` package decodes the numbers (AFFN and the compressed ASDF forms)
but is lenient: it prints warnings, skips lines it cannot parse and never checks
the point count. So this module splits the file into labelled blocks itself,
checks every label and data line, hands ``jcamp`` only a clean data table to
decode, and cross-checks its result (``##NPOINTS``, ``##FIRSTX``/``##LASTX``,
the X value that starts each data line, finiteness).

Units: x must be 1/CM, or MICROMETERS/NANOMETERS for (near-)infrared
(converted to cm⁻¹, refused below 650 nm), or NANOMETERS for Raman when
``##$LASER WAVELENGTH=`` gives the excitation (converted to Raman shift).
Infrared transmittance (fraction or percent, decided from the values when
the label does not say) is converted to absorbance, A = −log10(T).

Acquisition metadata is stored in these labels::

    ##SPECTROMETER/DATA SYSTEM=   device model
    ##$DEVICE SERIAL=             device serial
    ##$FIRMWARE=                  firmware version
    ##$LASER WAVELENGTH=          laser wavelength, "785.0 nm"
    ##$INTEGRATION TIME=          integration time, "100.0 ms" (s and us also read)
    ##$AVERAGES=                  number of averaged scans
    ##$OPERATOR=                  operator
    ##LONG DATE=                  timestamp, YYYY/MM/DD HH:MM:SS[.ffffff] [+HHMM]
"""

from __future__ import annotations

import contextlib
import io
import math
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

import jcamp
import numpy as np

from spectra.errors import SpectrumFileError, SpectrumValueError
from spectra.io._common import (
    PathLike,
    build_spectrum,
    decode_text,
    format_float,
    read_bytes,
    transmittance_to_absorbance,
    wavelength_to_wavenumber,
    write_atomically,
)
from spectra.spectrum import Acquisition, FloatArray, Spectrum, SpectrumKind

JcampForm = Literal["XYDATA", "XYPOINTS"]

_XYDATA_FORM = "(X++(Y..Y))"
_XYPOINTS_FORM = "(XY..XY)"
_DATA_LABELS = ("XYDATA", "XYPOINTS", "PEAKTABLE", "XYPAIRS", "DATATABLE", "NTUPLES")
#: XYDATA stores only FIRSTX, LASTX and NPOINTS; an axis may differ from that
#: linspace by at most this fraction of one step.
EVEN_AXIS_TOLERANCE = 1e-6
_MAX_LINE = 80  # JCAMP-DX lines must not exceed 80 characters
MAX_POINTS = 10_000_000  # far beyond any vibrational spectrum; guards memory

_KIND_DATA_TYPE = {
    SpectrumKind.RAMAN: "RAMAN SPECTRUM",
    SpectrumKind.IR_ABSORBANCE: "INFRARED SPECTRUM",
    SpectrumKind.NIR: "NEAR INFRARED SPECTRUM",
}
_KIND_Y_UNITS = {
    SpectrumKind.RAMAN: "ARBITRARY UNITS",
    SpectrumKind.IR_ABSORBANCE: "ABSORBANCE",
    SpectrumKind.NIR: "ABSORBANCE",
}
_WAVENUMBER_UNITS = {"1/CM", "CM-1", "CM^-1", "CM**-1", "CM-¹", "CM⁻¹", "WAVENUMBER", "WAVENUMBERS"}
_MICROMETER_UNITS = {"MICROMETERS", "MICROMETER", "MICRONS", "MICRON", "UM", "µM", "μM"}
_NANOMETER_UNITS = {"NANOMETERS", "NANOMETER", "NM"}
_ABSORBANCE_UNITS = {"ABSORBANCE", "ABS", "A", "LOG(1/T)", "LOG(1/R)", "LOG1/R", "LOG1/T"}
_TRANSMITTANCE_UNITS = {"TRANSMITTANCE", "TRANSMISSION", "T"}
_PERCENT_TRANSMITTANCE_UNITS = {"%T", "%TRANSMITTANCE", "PERCENTTRANSMITTANCE", "%TRANSMISSION"}
_REFLECTANCE_UNITS = {"REFLECTANCE", "R"}
_NAN_TOKEN = re.compile(r"^[+-]?(nan|inf|infinity)$", re.IGNORECASE)
_XYDATA_CHARS = re.compile(r"^[0-9 .,+\-eE@A-Za-z%]*$")


def normalise_label(label: str) -> str:
    """JCAMP label names compare without spaces, dashes, slashes and underscores."""
    return re.sub(r"[\s\-/_]", "", label).upper()


@dataclass
class _Block:
    """One ``##TITLE= … ##END=`` block; LINK blocks hold child blocks."""

    first_line: int
    labels: dict[str, str] = field(default_factory=dict)
    raw_labels: dict[str, str] = field(default_factory=dict)
    data_label: str | None = None
    data_lines: list[tuple[int, str]] = field(default_factory=list)
    children: list[_Block] = field(default_factory=list)
    last_label: str | None = None

    @property
    def title(self) -> str:
        return " ".join(self.labels.get("TITLE", "").split("\n")).strip()

    @property
    def is_link(self) -> bool:
        return self.labels.get("DATATYPE", "").strip().upper() == "LINK"


# ----------------------------------------------------------------------------- reading


def read_jcamp(path: PathLike) -> list[Spectrum]:
    """Every spectrum in a JCAMP-DX file (one, or the blocks of a LINK file).

    Raises
    ------
    SpectrumFileError
        When the file is missing, unreadable, not JCAMP-DX, truncated, or holds
        data that is inconsistent, non-numeric or in units we cannot convert.
    """
    p = Path(path)
    text = decode_text(p, read_bytes(p))
    return read_jcamp_text(p, text)


def read_jcamp_text(path: Path, text: str) -> list[Spectrum]:
    """Parse JCAMP-DX ``text`` read from ``path`` (used for errors and the default name)."""
    text = text.split("\x1a", 1)[0]  # Ctrl-Z: the DOS end-of-file mark of old files
    blocks = _split_blocks(path, text)
    leaves = list(_leaves(path, blocks))
    return [
        _block_to_spectrum(path, block, index, len(leaves)) for index, block in enumerate(leaves)
    ]


def _split_blocks(path: Path, text: str) -> list[_Block]:
    top: list[_Block] = []
    stack: list[_Block] = []
    seen_any = False
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("$$", 1)[0].rstrip()  # "$$" starts a comment anywhere on a line
        if not line.strip():
            continue
        stripped = line.lstrip()
        if stripped.startswith("##"):
            if "=" not in stripped:
                raise SpectrumFileError(
                    path, f"line {number}: label without '=' ({stripped[:40]!r})"
                )
            label_text, value = stripped[2:].split("=", 1)
            label = normalise_label(label_text)
            if label == "TITLE":
                if stack and not stack[-1].is_link:
                    raise SpectrumFileError(
                        path,
                        f"line {number}: a new ##TITLE= starts before block "
                        f"{stack[-1].title!r} was closed with ##END= (file damaged or cut)",
                    )
                block = _Block(first_line=number)
                block.labels["TITLE"] = value.strip()
                block.raw_labels["TITLE"] = label_text
                block.last_label = "TITLE"
                (stack[-1].children if stack else top).append(block)
                stack.append(block)
                seen_any = True
                continue
            if not stack:
                if not seen_any:
                    break  # reported below as "not JCAMP-DX"
                raise SpectrumFileError(
                    path, f"line {number}: label {stripped[:40]!r} after ##END="
                )
            block = stack[-1]
            if label == "END":
                stack.pop()
                continue
            if "NTUPLES" in block.labels:
                continue  # multi-page data: refused as a whole in _decode_data
            if label in block.labels and block.labels[label] == value.strip():
                continue  # repeated with the same value: harmless
            if label in block.labels:
                raise SpectrumFileError(
                    path, f"line {number}: label ##{label_text.strip()}= appears twice in one block"
                )
            block.labels[label] = value.strip()
            block.raw_labels[label] = label_text.strip()
            block.last_label = label
            if label in _DATA_LABELS:
                if block.data_label is not None:
                    raise SpectrumFileError(
                        path, f"line {number}: block {block.title!r} has more than one data table"
                    )
                block.data_label = label
            continue
        if not stack:
            if not seen_any:
                break
            raise SpectrumFileError(path, f"line {number}: unexpected text after ##END=")
        block = stack[-1]
        if "NTUPLES" in block.labels:
            continue
        if block.data_label is not None and block.last_label == block.data_label:
            block.data_lines.append((number, line.strip()))
        elif block.last_label is not None:
            # A value continued on the next line.
            block.labels[block.last_label] += "\n" + line.strip()
        else:
            raise SpectrumFileError(path, f"line {number}: text that is not a ##LABEL=")
    if not seen_any:
        raise SpectrumFileError(path, "is not a JCAMP-DX file (it does not start with ##TITLE=)")
    if stack:
        raise SpectrumFileError(
            path, f"is truncated: block {stack[-1].title!r} has no closing ##END="
        )
    return top


def _leaves(path: Path, blocks: list[_Block]) -> Iterator[_Block]:
    for block in blocks:
        if block.is_link:
            if not block.children:
                raise SpectrumFileError(path, f"LINK block {block.title!r} holds no spectra")
            yield from _leaves(path, block.children)
        elif block.children:
            raise SpectrumFileError(
                path, f"block {block.title!r} contains other blocks but is not ##DATA TYPE=LINK"
            )
        else:
            yield block


def _number(path: Path, block: _Block, label: str, *, required: bool) -> float | None:
    value = block.labels.get(label)
    if value is None or not value.strip():
        if required:
            raise SpectrumFileError(path, f"{_where(block)}has no ##{label}= label")
        return None
    text = value.strip()
    if "," in text and "." not in text:
        text = text.replace(",", ".")  # some writers use a decimal comma in labels
    try:
        number = float(text)
    except ValueError:
        raise SpectrumFileError(
            path, f"{_where(block)}##{label}={value.strip()!r} is not a number"
        ) from None
    if not math.isfinite(number):
        raise SpectrumFileError(path, f"{_where(block)}##{label}= is not a finite number")
    return number


def _where(block: _Block) -> str:
    return f"block {block.title!r} (line {block.first_line}): " if block.title else ""


def _block_to_spectrum(path: Path, block: _Block, index: int, count: int) -> Spectrum:
    kind, y_transform, x_transform = _kind_and_units(path, block)
    x, y = _decode_data(path, block)
    x = x_transform(x)
    y = y_transform(y)
    name = block.title or (path.stem if count == 1 else f"{path.stem} #{index + 1}")
    acquisition = _acquisition(path, block)
    return build_spectrum(path, x, y, kind=kind, name=name, acquisition=acquisition)


def _unit(text: str) -> str:
    return re.sub(r"\s+", "", text).upper()


def _kind_and_units(path: Path, block: _Block) -> tuple[SpectrumKind, Any, Any]:
    data_type = " ".join(block.labels.get("DATATYPE", "").upper().split())
    if not data_type:
        raise SpectrumFileError(
            path, f"{_where(block)}has no ##DATA TYPE= label: cannot tell Raman from infrared"
        )
    if "INTERFEROGRAM" in data_type:
        raise SpectrumFileError(
            path, f"{_where(block)}holds an interferogram, not a transformed spectrum"
        )
    if "PEAK" in data_type:
        raise SpectrumFileError(
            path, f"{_where(block)}holds a peak table ({data_type}), not a full spectrum"
        )
    if "RAMAN" in data_type:
        kind = SpectrumKind.RAMAN
    elif "NEAR INFRARED" in data_type or "NIR" in data_type.split() or "NEAR IR" in data_type:
        kind = SpectrumKind.NIR
    elif (
        "INFRARED" in data_type
        or data_type.startswith("IR")
        or "FTIR" in data_type.replace("-", "")
    ):
        kind = SpectrumKind.IR_ABSORBANCE
    else:
        raise SpectrumFileError(
            path, f"{_where(block)}data type {data_type!r} is not Raman, infrared or near-infrared"
        )

    x_units = _unit(block.labels.get("XUNITS", ""))
    y_units = _unit(block.labels.get("YUNITS", ""))

    def identity(values: FloatArray) -> FloatArray:
        return values

    x_transform: Any = identity
    if x_units in _WAVENUMBER_UNITS:
        pass
    elif kind is SpectrumKind.RAMAN and x_units in _NANOMETER_UNITS:
        laser = _measure(path, block, "$LASERWAVELENGTH", {"": 1.0, "NM": 1.0})
        if laser is None or laser <= 0:
            raise SpectrumFileError(
                path,
                f"{_where(block)}Raman x axis in nanometres needs the laser wavelength "
                "(##$LASER WAVELENGTH=) to convert to Raman shift",
            )
        excitation = laser

        def x_transform(values: FloatArray) -> FloatArray:
            # Raman shift = 1/λ_laser − 1/λ_scattered (nm → cm⁻¹: 1e7/nm).
            if values.size and float(np.min(values)) <= 0.0:
                raise SpectrumFileError(path, "wavelengths in nanometres must be positive")
            shift: FloatArray = 1e7 / excitation - 1e7 / values
            return shift
    elif kind is not SpectrumKind.RAMAN and x_units in _MICROMETER_UNITS | _NANOMETER_UNITS:
        per_cm = 1e4 if x_units in _MICROMETER_UNITS else 1e7
        unit_name = "micrometres" if per_cm == 1e4 else "nanometres"

        def x_transform(values: FloatArray) -> FloatArray:
            return wavelength_to_wavenumber(path, values, unit_per_cm=per_cm, unit=unit_name)
    else:
        shown = block.labels.get("XUNITS", "").strip() or "(none)"
        raise SpectrumFileError(
            path,
            f"{_where(block)}x units {shown!r} are not supported; "
            "the axis must be in 1/CM"
            + (
                " (or NANOMETERS with the laser wavelength)"
                if kind is SpectrumKind.RAMAN
                else " (or MICROMETERS/NANOMETERS for IR)"
            ),
        )

    y_transform: Any = identity
    if kind is not SpectrumKind.RAMAN:
        if y_units in _ABSORBANCE_UNITS or (
            kind is SpectrumKind.NIR and y_units in {"", "ARBITRARYUNITS"}
        ):
            pass
        elif y_units in _TRANSMITTANCE_UNITS | _PERCENT_TRANSMITTANCE_UNITS or (
            kind is SpectrumKind.NIR and y_units in _REFLECTANCE_UNITS
        ):
            # Stored as transmittance (or NIR reflectance): we keep absorbance,
            # A = −log10(T), the quantity that adds up linearly in mixtures.
            # "%T" is percent; plain "TRANSMITTANCE" is decided from the values.
            percent = True if y_units in _PERCENT_TRANSMITTANCE_UNITS else None

            def y_transform(values: FloatArray) -> FloatArray:
                return transmittance_to_absorbance(path, values, percent=percent)
        else:
            shown = block.labels.get("YUNITS", "").strip() or "(none)"
            raise SpectrumFileError(
                path,
                f"{_where(block)}infrared y units {shown!r} are not ABSORBANCE or TRANSMITTANCE",
            )
    return kind, y_transform, x_transform


def _decode_data(path: Path, block: _Block) -> tuple[FloatArray, FloatArray]:
    if "NTUPLES" in block.labels:
        raise SpectrumFileError(
            path, f"{_where(block)}holds ##NTUPLES= (multi-page) data, which is not supported"
        )
    label = block.data_label
    if label is None:
        raise SpectrumFileError(path, f"{_where(block)}has no data (no ##XYDATA= or ##XYPOINTS=)")
    form = re.sub(r"\s+", "", block.labels[label]).upper()
    if label == "XYDATA" and form == _XYDATA_FORM:
        return _decode_xydata(path, block)
    if label in ("XYPOINTS", "XYDATA") and form == _XYPOINTS_FORM:
        # XYDATA=(XY..XY) is not in the standard but common: x, y pairs as in XYPOINTS.
        return _decode_xypoints(path, block)
    raise SpectrumFileError(
        path,
        f"{_where(block)}data table ##{block.raw_labels[label]}={block.labels[label]} is not "
        f"supported (only XYDATA={_XYDATA_FORM} and XYPOINTS={_XYPOINTS_FORM})",
    )


def _factors(path: Path, block: _Block) -> tuple[float, float, int]:
    xfactor = _number(path, block, "XFACTOR", required=False)
    yfactor = _number(path, block, "YFACTOR", required=False)
    npoints = _number(path, block, "NPOINTS", required=True)
    assert npoints is not None
    for name, factor in (("XFACTOR", xfactor), ("YFACTOR", yfactor)):
        if factor == 0.0:
            raise SpectrumFileError(path, f"{_where(block)}##{name}= is zero")
    if npoints != int(npoints) or npoints < 1:
        raise SpectrumFileError(path, f"{_where(block)}##NPOINTS={npoints:g} is not a count")
    if npoints > MAX_POINTS:
        raise SpectrumFileError(
            path, f"{_where(block)}##NPOINTS={npoints:g} is implausibly large (file damaged?)"
        )
    return (xfactor or 1.0), (yfactor or 1.0), int(npoints)


def _run_jcamp(path: Path, block: _Block, lines: list[str]) -> dict[str, Any]:
    """Decode ``lines`` with the jcamp package; its printed warnings become errors."""
    captured = io.StringIO()
    try:
        with contextlib.redirect_stdout(captured):
            result: dict[str, Any] = jcamp.read(lines)
    except Exception as exc:  # the package raises bare Exception on bad characters
        raise SpectrumFileError(path, f"{_where(block)}data cannot be decoded: {exc}") from None
    warnings = captured.getvalue().strip()
    if warnings:
        first = warnings.splitlines()[0]
        raise SpectrumFileError(path, f"{_where(block)}data are inconsistent: {first}")
    return result


def _check_tokens(path: Path, number: int, line: str) -> None:
    for token in line.replace(",", " ").split():
        if _NAN_TOKEN.match(token):
            raise SpectrumFileError(path, f"line {number}: value {token!r} is not a number")
        if "?" in token:
            raise SpectrumFileError(path, f"line {number}: missing value ('?') in the data")


def _decode_xydata(path: Path, block: _Block) -> tuple[FloatArray, FloatArray]:
    xfactor, yfactor, npoints = _factors(path, block)
    firstx = _number(path, block, "FIRSTX", required=True)
    lastx = _number(path, block, "LASTX", required=True)
    assert firstx is not None and lastx is not None
    if not block.data_lines:
        raise SpectrumFileError(path, f"{_where(block)}the ##XYDATA= table is empty")
    if npoints < 2:
        raise SpectrumFileError(path, f"{_where(block)}##NPOINTS={npoints} is too few points")
    deltax = _number(path, block, "DELTAX", required=False)
    step = (lastx - firstx) / (npoints - 1)
    if deltax is not None and abs(deltax - step) > 1e-3 * abs(step):
        raise SpectrumFileError(
            path,
            f"{_where(block)}##DELTAX={deltax:g} disagrees with ##FIRSTX, ##LASTX and "
            f"##NPOINTS, which give a step of {step:g}",
        )
    for number, line in block.data_lines:
        _check_tokens(path, number, line)
        if not _XYDATA_CHARS.match(line):
            bad = next(c for c in line if not _XYDATA_CHARS.match(c))
            raise SpectrumFileError(path, f"line {number}: unexpected character {bad!r} in data")
    data_lines = [
        (number, expand_dup(path, number, line, npoints)) for number, line in block.data_lines
    ]
    _check_xydata_lines(path, block, data_lines, xfactor, firstx, lastx, npoints)
    lines = [
        "##TITLE=block\n",
        f"##FIRSTX={firstx!r}\n",
        f"##LASTX={lastx!r}\n",
        f"##NPOINTS={npoints}\n",
        f"##XFACTOR={xfactor!r}\n",
        f"##YFACTOR={yfactor!r}\n",
        f"##XYDATA={_XYDATA_FORM}\n",
        *(f"{line}\n" for _, line in data_lines),
        "##END=\n",
    ]
    result = _run_jcamp(path, block, lines)
    x = np.asarray(result["x"], dtype=np.float64)
    y = np.asarray(result["y"], dtype=np.float64)
    if y.size != npoints:
        raise SpectrumFileError(
            path,
            f"{_where(block)}##NPOINTS={npoints} but the data hold {y.size} values "
            "(file damaged or cut)",
        )
    return x, y


_DUP_COUNTS = {c: i for i, c in enumerate("STUVWXYZs", start=1)}
_DUP_CHARS = re.compile("[STUVWXYZs]")
_AFFN_NUMBER = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_AFFN_LINE = re.compile(rf"{_AFFN_NUMBER}(?:\s+{_AFFN_NUMBER})*")


def expand_dup(path: Path, number: int, line: str, limit: int) -> str:
    """``line`` with every DUP count written out as repeated tokens.

    DUP (``S``…``Z``, ``s`` = 1…9, more digits may follow: ``S6`` is 16) repeats
    the preceding ordinate or difference that many times in total. The jcamp
    package only handles a one-letter count after a DIF token, so we expand
    DUP here and hand it plain SQZ/DIF/AFFN tokens. A count above ``limit``
    (the point count) is refused before it can exhaust memory.
    """
    if not _DUP_CHARS.search(line):
        return line
    out: list[str] = []
    previous: str | None = None
    expanded = 0  # values added by DUP on this line
    i = 0
    while i < len(line):
        j = i + 1
        if line[i] in " ,":
            while j < len(line) and line[j] in " ,":
                j += 1
            out.append(line[i:j])
            i = j
            continue
        while j < len(line) and (line[j].isdigit() or line[j] == "."):
            j += 1
        token = line[i:j]
        if token[0] in _DUP_COUNTS:
            if previous is None or out[-1].isspace():
                raise SpectrumFileError(path, f"line {number}: a DUP count repeats nothing")
            count = int(str(_DUP_COUNTS[token[0]]) + token[1:])
            expanded += count - 1
            if expanded > limit:
                raise SpectrumFileError(
                    path, f"line {number}: DUP counts add more values than ##NPOINTS={limit}"
                )
            # A plain (AFFN) number needs a separator before each copy.
            copy = " " + previous if previous[0] in "0123456789." else previous
            out.append(copy * (count - 1))
        else:
            out.append(token)
            previous = token
        i = j
    return "".join(out)


def _check_xydata_lines(
    path: Path,
    block: _Block,
    data_lines: list[tuple[int, str]],
    xfactor: float,
    firstx: float,
    lastx: float,
    npoints: int,
) -> None:
    """Each line's leading X must sit where its first new point belongs on the axis."""
    step = (lastx - firstx) / (npoints - 1)
    # X on a data line is often rounded to the XFACTOR resolution; allow that plus a step.
    tolerance = 1.01 * abs(step) + 0.5 * abs(xfactor) + 1e-9 * max(abs(firstx), abs(lastx))
    difference_form = False
    index = 0
    for position, (number, line) in enumerate(data_lines):
        try:
            # Plain space-separated numbers need no decoding; the rest goes to jcamp.
            values = (
                [float(v) for v in line.split()]
                if _AFFN_LINE.fullmatch(line)
                else jcamp.parse(line)
            )
        except Exception:  # bare Exception from the package on an unknown character
            raise SpectrumFileError(path, f"line {number}: data line cannot be decoded") from None
        if not values:
            continue
        if position == 0:
            # Same rule as the decoder: a DIF character on the first line means ASDF
            # with a Y check value repeated at the start of each later line.
            difference_form = any(c in jcamp.DIF_digits for c in line)
        line_x = values[0] * xfactor
        new_values = len(values) - 1
        expected = firstx + index * step
        if difference_form and position > 0:
            new_values -= 1
            expected = firstx + (index - 1) * step
        if abs(line_x - expected) > tolerance:
            raise SpectrumFileError(
                path,
                f"line {number}: starts at x={line_x:g} but the header (##FIRSTX, ##LASTX, "
                f"##NPOINTS) puts that point at x={expected:g}",
            )
        index += new_values
    if index != npoints:
        raise SpectrumFileError(
            path,
            f"{_where(block)}##NPOINTS={npoints} but the data hold {index} values "
            "(file damaged or cut)",
        )


def _decode_xypoints(path: Path, block: _Block) -> tuple[FloatArray, FloatArray]:
    xfactor, yfactor, npoints = _factors(path, block)
    if not block.data_lines:
        raise SpectrumFileError(path, f"{_where(block)}the ##XYPOINTS= table is empty")
    tokens: list[str] = []
    for number, line in block.data_lines:
        _check_tokens(path, number, line)
        for token in re.split(r"[,;\s]+", line.strip()):
            if not token:
                continue
            try:
                float(token)
            except ValueError:
                raise SpectrumFileError(
                    path, f"line {number}: {token[:30]!r} is not a number"
                ) from None
            tokens.append(token)
    count = len(tokens)
    if count % 2:
        raise SpectrumFileError(
            path, f"{_where(block)}##XYPOINTS= table has an x value without its y value"
        )
    # Pairs may wrap across lines; the jcamp package reads pairs line by line, so
    # hand it one pair per line.
    lines = [
        "##TITLE=block\n",
        f"##NPOINTS={npoints}\n",
        f"##XFACTOR={xfactor!r}\n",
        f"##YFACTOR={yfactor!r}\n",
        f"##XYPOINTS={_XYPOINTS_FORM}\n",
        *(f"{tokens[i]}, {tokens[i + 1]}\n" for i in range(0, count, 2)),
        "##END=\n",
    ]
    result = _run_jcamp(path, block, lines)
    x = np.asarray(result["x"], dtype=np.float64)
    y = np.asarray(result["y"], dtype=np.float64)
    if x.size != count // 2 or y.size != count // 2:
        raise SpectrumFileError(path, f"{_where(block)}the jcamp decoder lost data points")
    if x.size != npoints:
        raise SpectrumFileError(
            path,
            f"{_where(block)}##NPOINTS={npoints} but the data hold {x.size} points "
            "(file damaged or cut)",
        )
    finite = x[np.isfinite(x)]
    if finite.size >= 2:
        step = float(np.median(np.abs(np.diff(finite)))) if finite.size > 1 else 0.0
        tolerance = 0.5 * step + 1e-9 * float(np.max(np.abs(finite)))
        for label, actual in (("FIRSTX", x[0]), ("LASTX", x[-1])):
            declared = _number(path, block, label, required=False)
            if declared is not None and abs(declared - actual) > tolerance:
                raise SpectrumFileError(
                    path,
                    f"{_where(block)}##{label}={declared:g} but the data "
                    f"{'start' if label == 'FIRSTX' else 'end'} at x={actual:g}",
                )
    return x, y


# ----------------------------------------------------------------------------- metadata


def _text_label(block: _Block, label: str) -> str | None:
    value = " ".join(block.labels.get(label, "").split("\n")).strip()  # continued lines
    return value or None


def _acquisition(path: Path, block: _Block) -> Acquisition:
    laser = _measure(path, block, "$LASERWAVELENGTH", {"": 1.0, "NM": 1.0})
    integration = _measure(
        path,
        block,
        "$INTEGRATIONTIME",
        {"": 1.0, "MS": 1.0, "S": 1000.0, "SEC": 1000.0, "US": 1e-3, "µS": 1e-3, "μS": 1e-3},
    )
    averages_value = _measure(path, block, "$AVERAGES", {"": 1.0})
    averages: int | None = None
    if averages_value is not None:
        if averages_value != int(averages_value):
            raise SpectrumFileError(
                path, f"{_where(block)}##$AVERAGES={averages_value:g} is not a whole number"
            )
        averages = int(averages_value)
    timestamp = None
    if _text_label(block, "LONGDATE"):
        timestamp = parse_long_date(path, block.labels["LONGDATE"].strip())
    try:
        return Acquisition(
            device_model=_text_label(block, "SPECTROMETERDATASYSTEM"),
            device_serial=_text_label(block, "$DEVICESERIAL"),
            firmware=_text_label(block, "$FIRMWARE"),
            laser_nm=laser,
            integration_time_ms=integration,
            averages=averages,
            timestamp=timestamp,
            operator=_text_label(block, "$OPERATOR"),
        )
    except SpectrumValueError as exc:
        raise SpectrumFileError(
            path, f"{_where(block)}invalid acquisition metadata: {exc}"
        ) from None


def _measure(path: Path, block: _Block, label: str, units: dict[str, float]) -> float | None:
    value = _text_label(block, label)
    if value is None:
        return None
    match = re.fullmatch(r"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(\S*)", value)
    unit = match.group(2).upper() if match else ""
    if match is None or unit not in units:
        raise SpectrumFileError(
            path, f"{_where(block)}##{block.raw_labels[label]}={value!r} is not understood"
        )
    return float(match.group(1)) * units[unit]


_LONG_DATE = re.compile(
    r"(\d{4})[/-](\d{1,2})[/-](\d{1,2})"
    r"(?:[ T]+(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?"
    r"\s*(?:(Z|UTC|GMT)|([+-])(\d{2}):?(\d{2}))?"
)


def parse_long_date(path: Path, text: str) -> datetime:
    """A ``##LONG DATE=`` value (``YYYY/MM/DD HH:MM:SS.SSSS ±UUUU``) as a datetime."""
    match = _LONG_DATE.fullmatch(text.strip())
    try:
        if match is None:
            raise ValueError(text)
        year, month, day, hour, minute, second, fraction, utc, sign, off_h, off_m = match.groups()
        tz: timezone | None = None
        if utc:
            tz = UTC
        elif sign:
            offset = timedelta(hours=int(off_h), minutes=int(off_m))
            tz = timezone(-offset if sign == "-" else offset)
        # ".SSSS" is a decimal fraction of a second; keep microseconds.
        micro = int((fraction or "0").ljust(6, "0")[:6])
        return datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            micro,
            tzinfo=tz,
        )
    except ValueError:
        raise SpectrumFileError(
            path, f"##LONG DATE={text!r} is not a date (expected YYYY/MM/DD HH:MM:SS)"
        ) from None


def format_long_date(value: datetime) -> str:
    """``YYYY/MM/DD HH:MM:SS[.ffffff][ ±HHMM]``, exact to the microsecond."""
    offset = value.utcoffset()
    if offset is not None and offset % timedelta(minutes=1):
        value = value.astimezone(UTC)  # ±HHMM cannot carry seconds; same instant in UTC
        offset = timedelta(0)
    text = value.strftime("%Y/%m/%d %H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}"
    if offset is not None:
        minutes = int(offset.total_seconds()) // 60
        sign = "-" if minutes < 0 else "+"
        text += f" {sign}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"
    return text


# ----------------------------------------------------------------------------- writing


def _clean_text(path: Path, what: str, value: str) -> str:
    # Control characters and Unicode line/paragraph separators would split the line.
    if any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in value):
        raise SpectrumFileError(
            path, f"cannot write: {what} contains a line break or control character"
        )
    if "$$" in value:
        raise SpectrumFileError(path, f"cannot write: {what} contains '$$', a JCAMP comment marker")
    return value.strip()


def jcamp_text(spectrum: Spectrum, form: JcampForm = "XYDATA", *, path: Path) -> str:
    """The JCAMP-DX 5.01 text of ``spectrum`` (``path`` only names errors)."""
    if form not in ("XYDATA", "XYPOINTS"):
        raise ValueError(f"form must be 'XYDATA' or 'XYPOINTS', got {form!r}")
    axis, values = spectrum.axis, spectrum.intensities
    acq = spectrum.acquisition
    lines = [
        f"##TITLE={_clean_text(path, 'the name', spectrum.name)}",
        "##JCAMP-DX=5.01",
        f"##DATA TYPE={_KIND_DATA_TYPE[spectrum.kind]}",
        "##ORIGIN=fieldscan",
        "##OWNER=",
    ]
    if acq.timestamp is not None:
        lines.append(f"##LONG DATE={format_long_date(acq.timestamp)}")
    for label, text, what in (
        ("SPECTROMETER/DATA SYSTEM", acq.device_model, "the device model"),
        ("$DEVICE SERIAL", acq.device_serial, "the device serial"),
        ("$FIRMWARE", acq.firmware, "the firmware version"),
        ("$OPERATOR", acq.operator, "the operator"),
    ):
        if text:
            lines.append(f"##{label}={_clean_text(path, what, text)}")
    if acq.laser_nm is not None:
        lines.append(f"##$LASER WAVELENGTH={format_float(acq.laser_nm)} nm")
    if acq.integration_time_ms is not None:
        lines.append(f"##$INTEGRATION TIME={format_float(acq.integration_time_ms)} ms")
    if acq.averages is not None:
        lines.append(f"##$AVERAGES={int(acq.averages)}")
    lines += [
        "##XUNITS=1/CM",
        f"##YUNITS={_KIND_Y_UNITS[spectrum.kind]}",
        "##XFACTOR=1",
        "##YFACTOR=1",
        f"##FIRSTX={format_float(axis[0])}",
        f"##LASTX={format_float(axis[-1])}",
        f"##NPOINTS={axis.size}",
        f"##FIRSTY={format_float(values[0])}",
        f"##MAXX={format_float(axis.max())}",
        f"##MINX={format_float(axis.min())}",
        f"##MAXY={format_float(values.max())}",
        f"##MINY={format_float(values.min())}",
    ]
    if form == "XYDATA":
        even = np.linspace(axis[0], axis[-1], axis.size)
        step = (axis[-1] - axis[0]) / (axis.size - 1)
        if np.max(np.abs(axis - even)) > EVEN_AXIS_TOLERANCE * step:
            raise SpectrumFileError(
                path,
                "cannot write XYDATA: the axis is not evenly spaced "
                "(write with form='XYPOINTS' to keep every x value)",
            )
        lines.append(f"##XYDATA={_XYDATA_FORM}")
        lines += _xydata_lines(axis, values)
    else:
        lines.append(f"##XYPOINTS={_XYPOINTS_FORM}")
        lines += [
            f"{format_float(x)}, {format_float(y)}" for x, y in zip(axis, values, strict=True)
        ]
    lines.append("##END=")
    return "\n".join(lines) + "\n"


def _xydata_lines(axis: FloatArray, values: FloatArray) -> list[str]:
    """AFFN (X++(Y..Y)) lines of at most 80 characters, each led by its X value."""
    out: list[str] = []
    i = 0
    while i < values.size:
        line = format_float(axis[i])
        count = 0
        while i < values.size:
            token = " " + format_float(values[i])
            if count and len(line) + len(token) > _MAX_LINE:
                break
            line += token
            count += 1
            i += 1
        out.append(line)
    return out


def write_jcamp(spectrum: Spectrum, path: PathLike, *, form: JcampForm = "XYDATA") -> None:
    """Write ``spectrum`` as a JCAMP-DX 5.01 file.

    Values are written with ``repr`` (XFACTOR = YFACTOR = 1), so reading the file
    back gives identical float64 values. ``XYDATA`` stores the axis as FIRSTX,
    LASTX and NPOINTS, so it needs an evenly spaced axis (to within 1e-6 of a
    step; it reads back as the exact ``linspace``); ``XYPOINTS`` keeps every x.
    Surrounding whitespace of text metadata is not kept; empty strings read
    back as ``None``.

    Raises
    ------
    SpectrumFileError
        When the file cannot be written, the axis is uneven for XYDATA, or a
        text field holds a line break or ``$$``.
    ValueError
        When ``form`` is not one of the two forms.
    """
    p = Path(path)
    text = jcamp_text(spectrum, form, path=p)
    write_atomically(p, text.encode("utf-8"))
