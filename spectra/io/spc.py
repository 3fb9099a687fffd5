"""Galactic/Thermo GRAMS SPC files (new format 0x4B, old format 0x4D): read.

Layout (Thermo Galactic "SPC file format"): a 512-byte main header; for a
shared X array (flag TXVALS without TXYXYS) ``fnpts`` float32 X values follow
it, otherwise X is evenly spaced from ``ffirst`` to ``flast``; then ``fnsub``
subfiles (1 unless TMULTI), each a 32-byte subheader, its own float32 X array
when TXYXYS, then Y: float32 when the exponent byte is 0x80, otherwise
integers scaled by 2**(exp − 32) (int32) or 2**(exp − 16) (int16, flag TSPREC).
The old format (0x4D: a 224-byte header, float32 point count and X range,
32-bit Y integers stored high word first) is read for single spectra. Only
what a vibrational spectrum needs is interpreted; the big-endian variant
(0x4C) is refused with a clear error.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from spectra.errors import SpectrumFileError, SpectrumValueError
from spectra.io._common import (
    PathLike,
    build_spectrum,
    read_bytes,
    transmittance_to_absorbance,
    wavelength_to_wavenumber,
)
from spectra.spectrum import Acquisition, FloatArray, Spectrum, SpectrumKind

HEADER = struct.Struct("<BBBBIddIBBBBI9s9sH32s130s30sIIBBHf48sfIfB187s")
SUBHEADER = struct.Struct("<BBHfffIIf4s")
# Old format (0x4D): flags, version, exponent (int16), npoints/first/last as float32,
# x and y type, year (low 12 bits), month, day, hour, minute, resolution text,
# peak point, scans, 7 spare floats, memo, axis labels.
OLD_HEADER = struct.Struct("<BBhfffBBHBBBB8sHH28s130s30s")
assert HEADER.size == 512 and SUBHEADER.size == 32 and OLD_HEADER.size == 224

# ftflgs bits
TSPREC = 0x01  # Y stored as 16-bit integers
TCGRAM = 0x02
TMULTI = 0x04  # several subfiles
TRANDM = 0x08
TORDRD = 0x10
TALABS = 0x20
TXYXYS = 0x40  # every subfile carries its own X array
TXVALS = 0x80  # an X array (shared, or per subfile with TXYXYS)

VERSION_NEW_LSB = 0x4B
VERSION_NEW_MSB = 0x4C
VERSION_OLD = 0x4D
FLOAT_EXPONENT = 0x80

# fxtype codes we understand (the others are times, masses, temperatures …)
XTYPE_WAVENUMBER = 1
XTYPE_MICROMETERS = 2
XTYPE_NANOMETERS = 3
XTYPE_RAMAN_SHIFT = 13
_XTYPE_NAMES = {
    0: "arbitrary units",
    4: "seconds",
    5: "minutes",
    6: "hertz",
    9: "mass (m/z)",
    10: "ppm",
    16: "diode number",
    17: "channel",
    22: "data points",
}
# fexper codes
EXP_GENERAL = 0
EXP_FTIR = 4  # FT-IR, FT-NIR or FT-Raman
EXP_NIR = 5
EXP_RAMAN = 11
_EXP_NOT_VIBRATIONAL = {
    1: "gas chromatogram",
    2: "chromatogram",
    3: "HPLC chromatogram",
    7: "UV-VIS spectrum",
    8: "X-ray diffraction",
    9: "mass spectrum",
    10: "NMR spectrum",
    12: "fluorescence spectrum",
    13: "atomic spectrum",
    14: "diode-array chromatogram",
}
# fytype codes
YTYPE_ABSORBANCE = 2
YTYPE_LOG_1_R = 10
YTYPE_TRANSMISSION = 128
YTYPE_REFLECTANCE = 129
_YTYPE_INTENSITY = {0, 4, 12, 13}  # arbitrary, counts, intensity, relative intensity

_MAX_SUBFILES = 100_000
#: A Raman-shift axis starts below this (cm⁻¹); used when the file does not say "Raman".
MAX_RAMAN_SHIFT_START = 4500.0


@dataclass(frozen=True, slots=True)
class _Header:
    flags: int
    experiment: int
    exponent: int  # as the unsigned byte: 0x80 float, else a signed power of two
    npoints: int
    first: float
    last: float
    nsub: int
    xtype: int
    ytype: int
    timestamp: datetime | None
    source: str
    comment: str
    size: int  # bytes before the first X array or subheader
    old: bool = False  # old format: 32-bit Y integers stored high word first


def _text(raw: bytes) -> str:
    return raw.split(b"\x00", 1)[0].decode("latin-1").strip()


def _parse_header(path: Path, data: bytes) -> _Header:
    if len(data) < 2:
        raise SpectrumFileError(path, "is too short to be an SPC file")
    version = data[1]
    if version == VERSION_OLD:
        return _parse_old_header(path, data)
    if version == VERSION_NEW_MSB:
        raise SpectrumFileError(
            path, "is a big-endian SPC file (version 0x4C), which is not supported"
        )
    if version != VERSION_NEW_LSB:
        raise SpectrumFileError(
            path, f"is not an SPC file (version byte 0x{version:02X}, expected 0x4B or 0x4D)"
        )
    if len(data) < HEADER.size:
        raise SpectrumFileError(
            path, f"is truncated: {len(data)} bytes, shorter than the 512-byte SPC header"
        )
    fields = HEADER.unpack_from(data, 0)
    (flags, _version, experiment, exponent, npoints, first, last, nsub, xtype, ytype) = fields[:10]
    date, _res, source, _peak, _spare, comment, labels = fields[12:19]
    if flags & TALABS:
        # Axis label text in fcatxt overrides the unit codes it names.
        xtype, ytype = _labelled_units(path, labels, xtype, ytype)
    return _Header(
        flags=flags,
        experiment=experiment,
        exponent=exponent,
        npoints=npoints,
        first=first,
        last=last,
        nsub=nsub,
        xtype=xtype,
        ytype=ytype,
        timestamp=_timestamp(path, date),
        source=_text(source),
        comment=_text(comment),
        size=HEADER.size,
    )


def _labelled_units(path: Path, labels: bytes, xtype: int, ytype: int) -> tuple[int, int]:
    """Unit codes from TALABS axis labels ("x\\0y\\0z"); an empty label keeps the code."""
    parts = [p.decode("latin-1").strip() for p in labels.split(b"\x00")]
    x_label = parts[0].lower() if parts else ""
    y_label = parts[1].lower() if len(parts) > 1 else ""
    if x_label:
        if "raman" in x_label:
            xtype = XTYPE_RAMAN_SHIFT
        elif any(k in x_label for k in ("cm-1", "cm^-1", "1/cm", "cm-¹", "cm⁻¹", "wavenumber")):
            xtype = XTYPE_WAVENUMBER
        elif "nm" in x_label.split("(")[-1] or "nanomet" in x_label:
            xtype = XTYPE_NANOMETERS
        elif any(k in x_label for k in ("µm", "micromet", "micron", "(um)")):
            xtype = XTYPE_MICROMETERS
        else:
            raise SpectrumFileError(
                path,
                f"x axis is labelled {parts[0]!r}; only cm⁻¹ (wavenumber or Raman shift) "
                "and, for infrared, micrometres or nanometres are supported",
            )
    if "absorb" in y_label:
        ytype = YTYPE_ABSORBANCE
    elif "transm" in y_label or "%t" in y_label:
        ytype = YTYPE_TRANSMISSION
    return xtype, ytype


def _parse_old_header(path: Path, data: bytes) -> _Header:
    if len(data) < OLD_HEADER.size:
        raise SpectrumFileError(
            path, f"is truncated: {len(data)} bytes, shorter than the 224-byte old SPC header"
        )
    (
        flags,
        _version,
        exponent,
        npoints,
        first,
        last,
        xtype,
        ytype,
        year,
        month,
        day,
        hour,
        minute,
        _res,
        _peak,
        _scans,
        _spare,
        comment,
        _labels,
    ) = OLD_HEADER.unpack_from(data, 0)
    if flags & (TMULTI | TXVALS | TXYXYS):
        raise SpectrumFileError(
            path,
            "is an old-format (0x4D) SPC file with several subfiles or an X array, "
            "which is not supported; re-save it in the current SPC format",
        )
    if not (np.isfinite(npoints) and npoints == int(npoints)):
        raise SpectrumFileError(path, f"declares {npoints!r} points (file damaged?)")
    if exponent != FLOAT_EXPONENT and not -128 <= exponent <= 127:
        raise SpectrumFileError(path, f"has an invalid Y exponent {exponent} (file damaged?)")
    timestamp: datetime | None = None
    year &= 0x0FFF  # the top 4 bits hold the Z axis type
    if year:
        try:
            timestamp = datetime(year, month, day, hour, minute)
        except ValueError:
            raise SpectrumFileError(path, "the date fields are not a valid date") from None
    return _Header(
        flags=flags,
        experiment=EXP_GENERAL,  # the old format does not record the technique
        exponent=exponent & 0xFF,
        npoints=int(npoints),
        first=first,
        last=last,
        nsub=1,
        xtype=xtype,
        ytype=ytype,
        timestamp=timestamp,
        source="",
        comment=_text(comment),
        size=OLD_HEADER.size,
        old=True,
    )


def _take(path: Path, data: bytes, offset: int, size: int, what: str) -> bytes:
    if size < 0 or offset + size > len(data):
        raise SpectrumFileError(
            path,
            f"is truncated: {what} needs bytes {offset}–{offset + size} "
            f"but the file has only {len(data)} bytes",
        )
    return data[offset : offset + size]


def _floats(path: Path, data: bytes, offset: int, count: int, what: str) -> FloatArray:
    raw = _take(path, data, offset, 4 * count, what)
    return np.frombuffer(raw, dtype="<f4").astype(np.float64)


def _y_values(
    path: Path,
    data: bytes,
    offset: int,
    count: int,
    exponent: int,
    *,
    short: bool,
    word_swapped: bool,
    what: str,
) -> tuple[FloatArray, int]:
    """Y values and the number of bytes they take."""
    if exponent == FLOAT_EXPONENT:
        return _floats(path, data, offset, count, what), 4 * count
    signed = exponent - 256 if exponent > 127 else exponent
    if short:
        raw = _take(path, data, offset, 2 * count, what)
        ints = np.frombuffer(raw, dtype="<i2").astype(np.float64)
        return ints * 2.0 ** (signed - 16), 2 * count
    raw = _take(path, data, offset, 4 * count, what)
    if word_swapped:
        # Old format: the high 16-bit word comes first, each word little-endian.
        words = np.frombuffer(raw, dtype="<u2").reshape(-1, 2).astype(np.uint32)
        ints = ((words[:, 0] << 16) | words[:, 1]).view(np.int32).astype(np.float64)
    else:
        ints = np.frombuffer(raw, dtype="<i4").astype(np.float64)
    return ints * 2.0 ** (signed - 32), 4 * count


def _kind(path: Path, head: _Header) -> SpectrumKind:
    if head.experiment in _EXP_NOT_VIBRATIONAL:
        raise SpectrumFileError(
            path,
            f"holds a {_EXP_NOT_VIBRATIONAL[head.experiment]}, not a Raman or infrared spectrum",
        )
    absorbance_like = {YTYPE_ABSORBANCE, YTYPE_LOG_1_R, YTYPE_TRANSMISSION, YTYPE_REFLECTANCE}
    if head.xtype == XTYPE_RAMAN_SHIFT or (
        head.xtype == XTYPE_WAVENUMBER and head.experiment == EXP_RAMAN
    ):
        return SpectrumKind.RAMAN
    if head.experiment == EXP_RAMAN:
        raise SpectrumFileError(
            path,
            f"Raman spectrum with x in {_xtype_name(head.xtype)}; only Raman shift in cm⁻¹ "
            "is supported",
        )
    if head.xtype in (XTYPE_WAVENUMBER, XTYPE_MICROMETERS, XTYPE_NANOMETERS):
        if head.ytype in absorbance_like or head.experiment == EXP_NIR:
            return SpectrumKind.NIR if head.experiment == EXP_NIR else SpectrumKind.IR_ABSORBANCE
        if (
            head.xtype == XTYPE_WAVENUMBER
            and head.ytype in _YTYPE_INTENSITY
            and (head.experiment in (EXP_GENERAL, EXP_FTIR))
        ):
            # Intensities on a cm⁻¹ axis without a stated technique: a Raman spectrum,
            # checked against the axis range in read_spc_bytes.
            return SpectrumKind.RAMAN
        raise SpectrumFileError(
            path,
            f"cannot tell what this spectrum is (experiment type {head.experiment}, "
            f"y type {head.ytype}); only Raman, infrared absorbance/transmission and NIR "
            "are supported",
        )
    raise SpectrumFileError(
        path,
        f"x axis is in {_xtype_name(head.xtype)}; only cm⁻¹ (wavenumber or Raman shift) "
        "and, for infrared, micrometres or nanometres are supported",
    )


def _xtype_name(code: int) -> str:
    known = {
        XTYPE_WAVENUMBER: "wavenumber (cm⁻¹)",
        XTYPE_MICROMETERS: "micrometres",
        XTYPE_NANOMETERS: "nanometres",
        XTYPE_RAMAN_SHIFT: "Raman shift (cm⁻¹)",
    }
    return known.get(code, _XTYPE_NAMES.get(code, f"units code {code}"))


def _convert(
    path: Path, head: _Header, x: FloatArray, y: FloatArray
) -> tuple[FloatArray, FloatArray]:
    if head.xtype == XTYPE_MICROMETERS:
        x = wavelength_to_wavenumber(path, x, unit_per_cm=1e4, unit="micrometres")
    elif head.xtype == XTYPE_NANOMETERS:
        x = wavelength_to_wavenumber(path, x, unit_per_cm=1e7, unit="nanometres")
    if head.ytype in (YTYPE_TRANSMISSION, YTYPE_REFLECTANCE):
        # We keep absorbance, A = −log10(T) (log10(1/R) for NIR reflectance),
        # which adds up linearly in mixtures.
        # GRAMS files store transmission as a fraction or in percent under the same
        # code; the values decide (see transmittance_to_absorbance).
        y = transmittance_to_absorbance(path, y, percent=None)
    return x, y


def _timestamp(path: Path, packed: int) -> datetime | None:
    if packed == 0:
        return None
    year, month, day = packed >> 20, (packed >> 16) & 0xF, (packed >> 11) & 0x1F
    hour, minute = (packed >> 6) & 0x1F, packed & 0x3F
    if year == 0:
        return None
    try:
        return datetime(year, month, day, hour, minute)
    except ValueError:
        raise SpectrumFileError(
            path, f"the date field (0x{packed:08X}) is not a valid date"
        ) from None


def read_spc(path: PathLike) -> list[Spectrum]:
    """Every spectrum in an SPC file (several for a multifile).

    Raises
    ------
    SpectrumFileError
        When the file is missing, unreadable, not SPC, in an unsupported SPC
        variant, truncated, or holds invalid values or unsupported units.
    """
    p = Path(path)
    return read_spc_bytes(p, read_bytes(p))


def read_spc_bytes(path: Path, data: bytes) -> list[Spectrum]:
    """Parse SPC ``data`` read from ``path``."""
    head = _parse_header(path, data)
    kind = _kind(path, head)
    multi = bool(head.flags & TMULTI)
    xyxy = bool(head.flags & TXYXYS)
    nsub = head.nsub if multi else 1
    if nsub < 1 or nsub > _MAX_SUBFILES:
        raise SpectrumFileError(path, f"declares {nsub} subfiles (file damaged?)")
    if xyxy and not multi:
        raise SpectrumFileError(path, "has per-subfile X arrays (TXYXYS) but is not a multifile")
    offset = head.size
    shared_x: FloatArray | None = None
    if not xyxy:
        if head.npoints < 1 or 4 * head.npoints > len(data):
            raise SpectrumFileError(
                path, f"declares {head.npoints} points, impossible for a {len(data)}-byte file"
            )
        if head.flags & TXVALS:
            shared_x = _floats(path, data, offset, head.npoints, "the X array")
            offset += 4 * head.npoints
        else:
            if not (np.isfinite(head.first) and np.isfinite(head.last)):
                raise SpectrumFileError(path, "first/last x values in the header are not numbers")
            shared_x = np.linspace(head.first, head.last, head.npoints)
    base_name = head.comment or path.stem
    try:
        acquisition = Acquisition(device_model=head.source or None, timestamp=head.timestamp)
    except SpectrumValueError as exc:
        raise SpectrumFileError(path, f"invalid acquisition metadata: {exc}") from None

    spectra: list[Spectrum] = []
    for index in range(nsub):
        what = f"subfile {index + 1} of {nsub}"
        sub = SUBHEADER.unpack(_take(path, data, offset, SUBHEADER.size, f"the header of {what}"))
        offset += SUBHEADER.size
        sub_exponent, sub_npoints = sub[1], sub[6]
        if xyxy:
            if sub_npoints < 1 or 8 * sub_npoints > len(data):
                raise SpectrumFileError(
                    path, f"{what} declares {sub_npoints} points (file damaged?)"
                )
            x = _floats(path, data, offset, sub_npoints, f"the X values of {what}")
            offset += 4 * sub_npoints
            count = sub_npoints
        else:
            assert shared_x is not None
            x = shared_x
            count = head.npoints
        # The subfile's exponent governs its Y values; 0 there means "use the file's fexp".
        exponent = sub_exponent or head.exponent
        y, size = _y_values(
            path,
            data,
            offset,
            count,
            exponent,
            short=bool(head.flags & TSPREC),
            word_swapped=head.old,
            what=f"the Y values of {what}",
        )
        offset += size
        x_cm, y_abs = _convert(path, head, x, y)
        inferred_raman = (
            kind is SpectrumKind.RAMAN
            and head.xtype == XTYPE_WAVENUMBER
            and (head.experiment != EXP_RAMAN)
        )
        if inferred_raman and x_cm.size and float(np.nanmin(x_cm)) > MAX_RAMAN_SHIFT_START:
            # Absolute wavenumbers (a laser or lamp line), not Raman shifts.
            raise SpectrumFileError(
                path,
                f"cannot tell what this spectrum is: intensities from {float(np.nanmin(x_cm)):g} "
                "cm⁻¹ upward are not Raman shifts, and no technique is stated",
            )
        name = base_name if nsub == 1 else f"{base_name} #{index + 1}"
        spectra.append(
            build_spectrum(path, x_cm, y_abs, kind=kind, name=name, acquisition=acquisition)
        )
    return spectra
