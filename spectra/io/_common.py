"""Helpers shared by the format modules: safe reading, atomic writing, building spectra.

Every failure is turned into :class:`SpectrumFileError` here so that the format
modules only need to describe what is wrong with the content.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import stat
import tempfile
from pathlib import Path

import numpy as np
import numpy.typing as npt

from spectra.errors import SpectrumFileError, SpectrumValueError
from spectra.spectrum import MIN_POINTS, Acquisition, FloatArray, Spectrum, SpectrumKind

PathLike = str | os.PathLike[str]

#: Refuse to load anything bigger: no spectrum file is this large, and a wrong
#: path to a disk image should fail fast instead of filling memory.
MAX_FILE_BYTES = 256 * 1024 * 1024


def read_bytes(path: PathLike) -> bytes:
    """The whole file, or :class:`SpectrumFileError` saying why it cannot be read."""
    p = Path(path)
    try:
        if p.is_dir():
            raise SpectrumFileError(p, "is a folder, not a spectrum file")
        if p.exists() and not p.is_file():
            # A pipe or device could block forever or never end.
            raise SpectrumFileError(p, "is not a regular file (a pipe or device?)")
        size = p.stat().st_size
        if size > MAX_FILE_BYTES:
            raise SpectrumFileError(p, f"is {size} bytes, too large to be a spectrum file")
        data = p.read_bytes()
    except FileNotFoundError:
        raise SpectrumFileError(p, "file not found") from None
    except PermissionError:
        raise SpectrumFileError(p, "permission denied: the file cannot be opened") from None
    except OSError as exc:
        raise SpectrumFileError(p, f"cannot be read ({exc.strerror or exc})") from None
    if not data.strip():
        raise SpectrumFileError(p, "file is empty")
    return data


_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0e-\x1f]")


def decode_text(path: Path, data: bytes) -> str:
    """Text of a text-format file; binary content is refused instead of mis-parsed."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        # UTF-16 with a byte-order mark: what spreadsheets save as "Unicode text".
        try:
            data = data.decode("utf-16").encode("utf-8")
        except UnicodeDecodeError:
            raise SpectrumFileError(path, "is not valid UTF-16 text") from None
    if b"\x00" in data:
        raise SpectrumFileError(path, "is a binary file, not a text spectrum file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Older instrument software writes Windows-1252; Latin-1 decodes any byte.
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError:
            text = data.decode("latin-1")
    controls = len(_CONTROL_CHARS.findall(text))
    if controls > max(2, len(text) // 200):
        raise SpectrumFileError(path, "is a binary file, not a text spectrum file")
    return text


def write_atomically(path: PathLike, payload: bytes) -> None:
    """Write ``payload`` to ``path`` via a temporary file, so no half-written file is left."""
    p = Path(path)
    if p.is_dir():
        raise SpectrumFileError(p, "is a folder; give a file name to write to")
    folder = p.parent
    tmp_name: str | None = None
    try:
        # mkstemp makes owner-only files; keep an existing file's mode, else rw-r--r--.
        mode = stat.S_IMODE(p.stat().st_mode) if p.exists() else 0o644
        fd, tmp_name = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=folder)
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, p)
        tmp_name = None
    except FileNotFoundError:
        raise SpectrumFileError(p, f"cannot write: folder {folder} does not exist") from None
    except PermissionError:
        raise SpectrumFileError(p, "cannot write: permission denied") from None
    except OSError as exc:
        raise SpectrumFileError(p, f"cannot write ({exc.strerror or exc})") from None
    finally:
        if tmp_name is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)


def build_spectrum(
    path: Path,
    axis: npt.ArrayLike,
    values: npt.ArrayLike,
    *,
    kind: SpectrumKind,
    name: str,
    acquisition: Acquisition | None = None,
) -> Spectrum:
    """A validated :class:`Spectrum`, with validation failures phrased for the file."""
    x = np.asarray(axis, dtype=np.float64)
    y = np.asarray(values, dtype=np.float64)
    if x.size != y.size:
        raise SpectrumFileError(path, f"has {x.size} x values but {y.size} y values")
    if x.size < MIN_POINTS:
        raise SpectrumFileError(
            path, f"has only {x.size} data point(s); a spectrum needs at least {MIN_POINTS}"
        )
    for what, array in (("x (axis)", x), ("y (intensity)", y)):
        bad = np.flatnonzero(~np.isfinite(array))
        if bad.size:
            raise SpectrumFileError(
                path,
                f"{bad.size} {what} value(s) are not numbers (NaN or infinite), "
                f"first at data point {int(bad[0]) + 1}",
            )
    try:
        return Spectrum(x, y, kind=kind, name=name, acquisition=acquisition or Acquisition())
    except SpectrumValueError as exc:
        raise SpectrumFileError(path, f"does not hold a valid spectrum: {exc}") from None


#: Fractional transmittance cannot physically exceed 1 (noise allows a little
#: more); a larger maximum means the values are percent.
PERCENT_T_THRESHOLD = 1.5


def transmittance_to_absorbance(
    path: Path, values: FloatArray, *, percent: bool | None
) -> FloatArray:
    """Absorbance A = −log10(T).

    ``percent`` True divides by 100 first; None decides from the values: files
    often label percent transmittance just "transmittance", and a maximum
    above 1.5 can only be percent. Refuses T ≤ 0 (no finite absorbance) and
    percent values above 150.
    """
    peak = float(np.max(values)) if values.size else 0.0
    if percent is None:
        percent = peak > PERCENT_T_THRESHOLD
    if percent and peak > 100.0 * PERCENT_T_THRESHOLD:
        raise SpectrumFileError(
            path, f"transmittance values reach {peak:g}, above 100 %: not a transmittance"
        )
    if not percent and peak > PERCENT_T_THRESHOLD:
        raise SpectrumFileError(
            path, f"transmittance values reach {peak:g}, far above 1 for a fraction"
        )
    t = values / 100.0 if percent else values
    bad = int(np.count_nonzero(t <= 0.0))
    if bad:
        raise SpectrumFileError(
            path,
            f"{bad} transmittance value(s) are 0 or below, where absorbance (−log10 T) "
            "is undefined; transmittance values must be above 0 to convert to absorbance",
        )
    absorbance: FloatArray = -np.log10(t)
    return absorbance


#: Shortest wavelength (nm) accepted as near-infrared; below it is visible or UV light.
MIN_INFRARED_NM = 650.0


def wavelength_to_wavenumber(
    path: Path, x: FloatArray, *, unit_per_cm: float, unit: str
) -> FloatArray:
    """cm⁻¹ from a wavelength axis: ν̃ = ``unit_per_cm`` / λ (1e4 for µm, 1e7 for nm)."""
    if x.size and float(np.min(x)) <= 0.0:
        raise SpectrumFileError(path, f"wavelengths in {unit} must be positive to convert to cm⁻¹")
    nm = x * (1e7 / unit_per_cm)
    if x.size and float(np.min(nm)) < MIN_INFRARED_NM:
        raise SpectrumFileError(
            path,
            f"wavelengths go down to {float(np.min(nm)):g} nm, visible or ultraviolet light: "
            "not an infrared or NIR spectrum",
        )
    out: FloatArray = unit_per_cm / x
    return out


def format_float(value: float) -> str:
    """Shortest text that reads back to the identical float64 (``repr``)."""
    if not math.isfinite(value):
        raise ValueError(f"cannot write non-finite value {value!r}")
    return repr(float(value))
