"""SPC (Galactic/Thermo GRAMS, new LSB format 0x4B): files built here from the published layout.

The builder below is independent of the reader: it packs every field with its own
``struct`` calls, following the Thermo Galactic "SPC file format" description.
"""

from __future__ import annotations

import struct
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from spectra import SpectrumFileError, SpectrumKind
from spectra.io import read_spectra, read_spectrum

# ftflgs bits
TSPREC, TMULTI, TALABS, TXYXYS, TXVALS = 0x01, 0x04, 0x20, 0x40, 0x80


def _main_header(
    *,
    flags: int = 0,
    version: int = 0x4B,
    experiment: int = 11,
    exponent: int = 0x80,
    npoints: int = 0,
    first: float = 0.0,
    last: float = 0.0,
    nsub: int = 1,
    xtype: int = 13,
    ytype: int = 0,
    date: int = 0,
    source: bytes = b"",
    comment: bytes = b"",
    labels: bytes = b"",
) -> bytes:
    parts = [
        struct.pack("<B", flags),  # ftflgs: data type flags
        struct.pack("<B", version),  # fversn: 0x4B new LSB, 0x4C new MSB, 0x4D old
        struct.pack("<B", experiment),  # fexper: 11 Raman, 4 FT-IR, 5 NIR, 9 mass spec …
        struct.pack("<B", exponent),  # fexp: Y exponent, 0x80 = float32 Y
        struct.pack("<I", npoints),  # fnpts: points (or directory offset for XYXY)
        struct.pack("<d", first),  # ffirst: first X (evenly spaced X)
        struct.pack("<d", last),  # flast: last X
        struct.pack("<I", nsub),  # fnsub: number of subfiles
        struct.pack("<B", xtype),  # fxtype: 1 wavenumber, 2 µm, 3 nm, 13 Raman shift …
        struct.pack("<B", ytype),  # fytype: 2 absorbance, 4 counts, 128 transmission …
        struct.pack("<B", 0),  # fztype
        struct.pack("<B", 0),  # fpost: posting disposition
        struct.pack("<I", date),  # fdate: packed min(6) hour(5) day(5) month(4) year(12)
        b"\0" * 9,  # fres: resolution text
        source.ljust(9, b"\0")[:9],  # fsource: instrument source text
        struct.pack("<H", 0),  # fpeakpt: peak point number
        b"\0" * 32,  # fspare: 8 spare floats
        comment.ljust(130, b"\0")[:130],  # fcmnt: memo
        labels.ljust(30, b"\0")[:30],  # fcatxt: x, y, z axis labels (used with TALABS)
        struct.pack("<i", 0),  # flogoff: log block offset
        struct.pack("<i", 0),  # fmods: modification flags
        struct.pack("<B", 0),  # fprocs: processing code
        struct.pack("<B", 0),  # flevel: calibration level
        struct.pack("<H", 0),  # fsampin: sub-method sample injection number
        struct.pack("<f", 0.0),  # ffactor: floating data multiplier concentration factor
        b"\0" * 48,  # fmethod: method file
        struct.pack("<f", 0.0),  # fzinc: Z subfile increment
        struct.pack("<i", 0),  # fwplanes: number of planes for 4D
        struct.pack("<f", 0.0),  # fwinc: W plane increment
        struct.pack("<B", 0),  # fwtype: W axis units
        b"\0" * 187,  # freserv: reserved
    ]
    header = b"".join(parts)
    assert len(header) == 512
    return header


def _subheader(*, exponent: int = 0x80, index: int = 0, npoints: int = 0) -> bytes:
    header = b"".join(
        [
            struct.pack("<B", 0),  # subflgs
            struct.pack("<B", exponent),  # subexp: Y exponent for this subfile (0x80 float)
            struct.pack("<H", index),  # subindx: subfile index
            struct.pack("<f", 0.0),  # subtime: starting Z value
            struct.pack("<f", 0.0),  # subnext: ending Z value
            struct.pack("<f", 0.0),  # subnois: noise value
            struct.pack("<I", npoints),  # subnpts: points (XYXY multifiles only)
            struct.pack("<i", 0),  # subscan: co-added scans
            struct.pack("<f", 0.0),  # subwlevel: W axis value
            b"\0" * 4,  # subresv
        ]
    )
    assert len(header) == 32
    return header


def _f32(values: np.ndarray) -> bytes:
    return np.asarray(values, dtype="<f4").tobytes()


def _even_float_file(
    y: np.ndarray, first: float = 200.0, last: float = 1800.0, **header: object
) -> bytes:
    return (
        _main_header(npoints=y.size, first=first, last=last, **header)  # type: ignore[arg-type]
        + _subheader()
        + _f32(y)
    )


def _old_file(
    ints: np.ndarray,
    *,
    flags: int = 0,
    exponent: int = 0,
    npoints: float | None = None,
    first: float = 100.0,
    last: float = 139.0,
    xtype: int = 13,
    year: int = 1994,
) -> bytes:
    """An old-format (0x4D) file: 224-byte header, a subheader, word-swapped int32 Y."""
    header = b"".join(
        [
            struct.pack("<B", flags),  # oftflgs
            struct.pack("<B", 0x4D),  # oversn: old format
            struct.pack("<h", exponent),  # oexp: int16 exponent (128 = float Y)
            struct.pack("<f", ints.size if npoints is None else npoints),  # onpts: float32!
            struct.pack("<f", first),  # ofirst
            struct.pack("<f", last),  # olast
            struct.pack("<B", xtype),  # oxtype
            struct.pack("<B", 0),  # oytype: arbitrary intensity
            struct.pack("<H", year),  # oyear (top 4 bits: Z type)
            struct.pack("<BBBB", 3, 9, 17, 45),  # omonth, oday, ohour, ominute
            b"4 cm-1".ljust(8, b"\0"),  # ores
            struct.pack("<H", 0),  # opeakpt
            struct.pack("<H", 16),  # onscans
            b"\0" * 28,  # ospare: 7 floats
            b"old Raman".ljust(130, b"\0"),  # ocmnt
            b"\0" * 30,  # ocatxt
        ]
    )
    assert len(header) == 224
    if exponent == 128:
        y = _f32(ints)
    else:
        # 32-bit integers stored high 16-bit word first, each word little-endian.
        u = np.asarray(ints, dtype=np.int64).astype(np.int32).view(np.uint32)
        y = b"".join(struct.pack("<HH", int(v) >> 16, int(v) & 0xFFFF) for v in u)
    return header + _subheader(exponent=0) + y


def _write(tmp_path: Path, data: bytes, name: str = "s.spc") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


_Y = (np.sin(np.linspace(0, 12, 100)) * 1000 + 2000).astype(np.float32)


# ----------------------------------------------------------------------------- good files


def test_single_float_y_evenly_spaced_x(tmp_path: Path) -> None:
    date = (2025 << 20) | (7 << 16) | (14 << 11) | (9 << 6) | 41
    data = _even_float_file(_Y, comment=b"Cocaine base, 785 nm", source=b"RamanRx", date=date)
    s = read_spectrum(_write(tmp_path, data))
    assert s.kind is SpectrumKind.RAMAN
    assert s.name == "Cocaine base, 785 nm"
    np.testing.assert_array_equal(s.axis, np.linspace(200.0, 1800.0, 100))
    np.testing.assert_array_equal(s.intensities, _Y.astype(np.float64))
    assert s.acquisition.device_model == "RamanRx"
    assert s.acquisition.timestamp == datetime(2025, 7, 14, 9, 41)


def test_descending_x_is_sorted_and_empty_memo_uses_stem(tmp_path: Path) -> None:
    s = read_spectrum(_write(tmp_path, _even_float_file(_Y, first=1800.0, last=200.0), "X9.SPC"))
    np.testing.assert_array_equal(s.axis, np.linspace(1800.0, 200.0, 100)[::-1])
    np.testing.assert_array_equal(s.intensities, _Y[::-1].astype(np.float64))
    assert s.name == "X9"


def test_explicit_x_array(tmp_path: Path) -> None:
    x = np.sort(np.random.default_rng(1).uniform(150, 2000, 100)).astype(np.float32)
    data = (
        _main_header(flags=TXVALS, npoints=100, comment=b"xy")
        + _f32(x)  # X array right after the main header
        + _subheader()
        + _f32(_Y)
    )
    s = read_spectrum(_write(tmp_path, data))
    np.testing.assert_array_equal(s.axis, x.astype(np.float64))
    np.testing.assert_array_equal(s.intensities, _Y.astype(np.float64))


@pytest.mark.parametrize("exponent", [0, 5, 17, 250])  # 250 = −6 as a signed byte
def test_scaled_int32_y(tmp_path: Path, exponent: int) -> None:
    ints = np.random.default_rng(2).integers(-(2**31), 2**31 - 1, 50, dtype=np.int64)
    signed = exponent - 256 if exponent > 127 else exponent
    data = (
        _main_header(exponent=exponent, npoints=50, first=100.0, last=149.0)
        + _subheader(exponent=exponent)
        + ints.astype("<i4").tobytes()
    )
    s = read_spectrum(_write(tmp_path, data))
    np.testing.assert_array_equal(s.intensities, ints * 2.0 ** (signed - 32))


def test_scaled_int16_y(tmp_path: Path) -> None:
    ints = np.arange(-40, 40, 2, dtype=np.int64) * 700
    data = (
        _main_header(flags=TSPREC, exponent=3, npoints=ints.size, first=100.0, last=139.0)
        + _subheader(exponent=3)
        + ints.astype("<i2").tobytes()
    )
    s = read_spectrum(_write(tmp_path, data))
    np.testing.assert_array_equal(s.intensities, ints * 2.0 ** (3 - 16))


def test_subfile_exponent_zero_defers_to_the_main_exponent(tmp_path: Path) -> None:
    ints = np.arange(-20, 20, dtype=np.int64) * 12345
    data = _main_header(exponent=0x80, npoints=40, first=0.0, last=39.0)
    s = read_spectrum(_write(tmp_path, data + _subheader(exponent=0) + _f32(ints)))
    np.testing.assert_array_equal(s.intensities, ints.astype(np.float32).astype(np.float64))
    data = _main_header(exponent=7, npoints=40, first=0.0, last=39.0)
    s = read_spectrum(
        _write(tmp_path, data + _subheader(exponent=0) + ints.astype("<i4").tobytes())
    )
    np.testing.assert_array_equal(s.intensities, ints * 2.0 ** (7 - 32))


@pytest.mark.parametrize("exponent", [0, 9, -3])
def test_old_format_word_swapped_integers(tmp_path: Path, exponent: int) -> None:
    ints = np.array([0, 1, -1, 65535, 65536, -65536, 2**31 - 1, -(2**31), 123456789] * 5)[:40]
    s = read_spectrum(_write(tmp_path, _old_file(ints, exponent=exponent)))
    np.testing.assert_array_equal(s.intensities, ints * 2.0 ** (exponent - 32))
    np.testing.assert_array_equal(s.axis, np.linspace(100.0, 139.0, 40))
    assert s.name == "old Raman" and s.kind is SpectrumKind.RAMAN
    assert s.acquisition.timestamp == datetime(1994, 3, 9, 17, 45)


def test_old_format_float_y(tmp_path: Path) -> None:
    y = np.linspace(-5, 5, 40)
    s = read_spectrum(_write(tmp_path, _old_file(y, exponent=128)))
    np.testing.assert_array_equal(s.intensities, y.astype(np.float32).astype(np.float64))


def test_multifile_with_shared_evenly_spaced_x(tmp_path: Path) -> None:
    ys = [_Y * k for k in (1.0, 2.0, 0.5)]
    data = _main_header(flags=TMULTI, nsub=3, npoints=100, first=300.0, last=1500.0, comment=b"map")
    for i, y in enumerate(ys):
        data += _subheader(index=i) + _f32(y)
    path = _write(tmp_path, data)
    spectra = read_spectra(path)
    assert [s.name for s in spectra] == ["map #1", "map #2", "map #3"]
    for s, y in zip(spectra, ys, strict=True):
        np.testing.assert_array_equal(s.intensities, y.astype(np.float32).astype(np.float64))
        np.testing.assert_array_equal(s.axis, np.linspace(300.0, 1500.0, 100))
    with pytest.raises(SpectrumFileError, match="holds 3 spectra"):
        read_spectrum(path)


def test_multifile_each_subfile_own_exponent(tmp_path: Path) -> None:
    ints = np.arange(20, dtype=np.int64) * 1000
    data = _main_header(flags=TMULTI, nsub=2, npoints=20, first=0.0, last=19.0, exponent=0x80)
    data += _subheader(exponent=0x80) + _f32(ints.astype(np.float32))
    data += _subheader(exponent=8) + ints.astype("<i4").tobytes()
    first, second = read_spectra(_write(tmp_path, data))
    np.testing.assert_array_equal(first.intensities, ints.astype(np.float64))
    np.testing.assert_array_equal(second.intensities, ints * 2.0 ** (8 - 32))


def test_multifile_xyxy(tmp_path: Path) -> None:
    xs = [np.linspace(200, 1000, 30), np.linspace(500, 3000, 45)]
    ys = [np.arange(30.0), np.arange(45.0) * -2]
    data = _main_header(flags=TMULTI | TXYXYS | TXVALS, nsub=2, npoints=0, comment=b"xyxy")
    for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
        data += _subheader(index=i, npoints=x.size) + _f32(x) + _f32(y)
    spectra = read_spectra(_write(tmp_path, data))
    assert len(spectra) == 2
    for s, x, y in zip(spectra, xs, ys, strict=True):
        np.testing.assert_array_equal(s.axis, x.astype(np.float32).astype(np.float64))
        np.testing.assert_array_equal(s.intensities, y)


def test_ir_transmission_in_micrometres_becomes_absorbance_in_wavenumbers(tmp_path: Path) -> None:
    t = np.linspace(0.05, 0.95, 40).astype(np.float32)
    data = _even_float_file(t, first=2.5, last=12.5, experiment=4, xtype=2, ytype=128)
    s = read_spectrum(_write(tmp_path, data))
    assert s.kind is SpectrumKind.IR_ABSORBANCE
    um = np.linspace(2.5, 12.5, 40)
    order = np.argsort(1e4 / um)
    np.testing.assert_allclose(s.axis, (1e4 / um)[order], rtol=1e-12)
    np.testing.assert_allclose(s.intensities, -np.log10(t.astype(np.float64))[order], rtol=1e-12)


def test_percent_transmission_is_recognised_from_the_values(tmp_path: Path) -> None:
    t = np.linspace(0.05, 0.95, 40)
    fraction = _even_float_file(t.astype(np.float32), experiment=4, xtype=1, ytype=128)
    percent = _even_float_file((t * 100).astype(np.float32), experiment=4, xtype=1, ytype=128)
    a = read_spectrum(_write(tmp_path, fraction, "f.spc"))
    b = read_spectrum(_write(tmp_path, percent, "p.spc"))
    expected = -np.log10(t.astype(np.float32).astype(np.float64))
    np.testing.assert_allclose(a.intensities, expected, rtol=1e-12)
    np.testing.assert_allclose(b.intensities, a.intensities, rtol=1e-6)


def test_nir_in_nanometres(tmp_path: Path) -> None:
    data = _even_float_file(
        _Y[:50] / 4000, first=1000.0, last=2500.0, experiment=5, xtype=3, ytype=2
    )
    s = read_spectrum(_write(tmp_path, data))
    assert s.kind is SpectrumKind.NIR
    assert s.axis[0] == pytest.approx(1e7 / 2500.0) and s.axis[-1] == pytest.approx(1e7 / 1000.0)


def test_counts_on_a_wavenumber_axis_from_general_experiment_is_raman(tmp_path: Path) -> None:
    s = read_spectrum(_write(tmp_path, _even_float_file(_Y, experiment=0, xtype=1, ytype=4)))
    assert s.kind is SpectrumKind.RAMAN


def test_axis_label_text_overrides_unit_codes(tmp_path: Path) -> None:
    raman = _even_float_file(
        _Y, flags=TALABS, experiment=0, xtype=0, labels=b"Raman Shift (cm-1)\0Counts\0"
    )
    assert read_spectrum(_write(tmp_path, raman, "r.spc")).kind is SpectrumKind.RAMAN
    t = np.linspace(0.1, 0.9, 50).astype(np.float32)
    ir = _even_float_file(
        t, flags=TALABS, experiment=4, xtype=1, ytype=0, labels=b"\0Transmittance\0"
    )
    s = read_spectrum(_write(tmp_path, ir, "t.spc"))
    assert s.kind is SpectrumKind.IR_ABSORBANCE
    np.testing.assert_allclose(np.sort(s.intensities), np.sort(-np.log10(t.astype(float))))
    nm = _even_float_file(_Y, flags=TALABS, experiment=11, xtype=13, labels=b"Wavelength (nm)")
    with pytest.raises(SpectrumFileError, match="Raman spectrum with x in nanometres"):
        read_spectrum(_write(tmp_path, nm, "n.spc"))
    time = _even_float_file(_Y, flags=TALABS, xtype=13, labels=b"Time (s)")
    with pytest.raises(SpectrumFileError, match="labelled 'Time \\(s\\)'"):
        read_spectrum(_write(tmp_path, time, "s.spc"))


def test_absolute_wavenumbers_without_a_technique_are_not_taken_for_raman(
    tmp_path: Path,
) -> None:
    # A HeNe laser line recorded on an absolute cm⁻¹ axis (632.8 nm ≈ 15803 cm⁻¹).
    line = _even_float_file(_Y, first=15790.0, last=15820.0, experiment=0, xtype=1, ytype=4)
    with pytest.raises(SpectrumFileError, match="not Raman shifts"):
        read_spectrum(_write(tmp_path, line))
    stated = _even_float_file(_Y, first=15790.0, last=15820.0, experiment=11, xtype=1)
    assert read_spectrum(_write(tmp_path, stated, "r.spc")).kind is SpectrumKind.RAMAN


# ----------------------------------------------------------------------------- bad files


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_even_float_file(_Y, version=0x4C), "big-endian"),
        (_even_float_file(_Y, version=0x99), "not an SPC file"),
        (b"\x00\x4b", "truncated"),
        (b"\x00\x4d" + bytes(100), "truncated: 102 bytes, shorter than the 224-byte old"),
        (_old_file(np.arange(40), flags=TMULTI), "old-format"),
        (_old_file(np.arange(40), npoints=40.5), "declares 40.5 points"),
        (_old_file(np.arange(40), npoints=1e9), "declares 1000000000 points"),
        (b"\x00", "too short"),
        (_even_float_file(_Y, experiment=9), "mass spectrum"),
        (_even_float_file(_Y, experiment=0, xtype=4), "seconds"),
        (_even_float_file(_Y, experiment=11, xtype=3), "Raman spectrum with x in nanometres"),
        (_even_float_file(_Y, experiment=7), "UV-VIS"),
        (_even_float_file(_Y, experiment=0, xtype=1, ytype=5), "cannot tell"),
        (_even_float_file(_Y[:10], first=100.0, last=109.0), "only 10 data point"),
        (_even_float_file(_Y, first=float("nan")), "not numbers"),
        (_main_header(npoints=2**30) + _subheader() + _f32(_Y), "declares 1073741824 points"),
        (_main_header(npoints=0) + _subheader() + _f32(_Y), "declares 0 points"),
        (
            _main_header(flags=TMULTI, nsub=10**7, npoints=100) + _subheader() + _f32(_Y),
            "declares 10000000 subfiles",
        ),
        (
            _main_header(flags=TMULTI, nsub=3, npoints=100, first=1.0, last=2.0)
            + (_subheader() + _f32(_Y)) * 2,
            "truncated: the header of subfile 3 of 3",
        ),
        (
            _main_header(flags=TXYXYS | TXVALS, npoints=0) + _subheader(npoints=100) + _f32(_Y),
            "not a multifile",
        ),
        (
            _main_header(flags=TMULTI | TXYXYS | TXVALS, nsub=1) + _subheader(npoints=0),
            "declares 0 points",
        ),
        (_even_float_file(_Y, experiment=4, xtype=1, ytype=128), "above 100 %"),
        (_even_float_file(_Y / 100 - 15, experiment=4, xtype=1, ytype=128), "must be above 0"),
        (
            _even_float_file(_Y[:50] / 4000, first=400.0, last=2500.0, experiment=5, xtype=3),
            "visible or ultraviolet",
        ),
    ],
)
def test_bad_files_raise_clear_errors(tmp_path: Path, data: bytes, message: str) -> None:
    path = _write(tmp_path, data)
    with pytest.raises(SpectrumFileError, match=message) as info:
        read_spectra(path)
    assert info.value.path == path


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_y_is_refused(tmp_path: Path, bad: float) -> None:
    y = _Y.copy()
    y[37] = bad
    with pytest.raises(SpectrumFileError, match="first at data point 38"):
        read_spectrum(_write(tmp_path, _even_float_file(y)))


def test_non_finite_x_array_is_refused(tmp_path: Path) -> None:
    x = np.linspace(100, 1000, 100).astype(np.float32)
    x[5] = np.nan
    data = _main_header(flags=TXVALS, npoints=100) + _f32(x) + _subheader() + _f32(_Y)
    with pytest.raises(SpectrumFileError, match="NaN or infinite"):
        read_spectrum(_write(tmp_path, data))


@pytest.mark.parametrize("flags", [0, TXVALS, TMULTI, TMULTI | TXYXYS | TXVALS, -1])
def test_every_truncation_point_is_an_error(tmp_path: Path, flags: int) -> None:
    n = 40
    x = np.linspace(100, 900, n)
    if flags == -1:
        data = _old_file(np.arange(n) * 1000)
    elif flags & TXYXYS:
        data = _main_header(flags=flags, nsub=2)
        for i in range(2):
            data += _subheader(index=i, npoints=n) + _f32(x) + _f32(_Y[:n])
    elif flags & TMULTI:
        data = _main_header(flags=flags, nsub=2, npoints=n, first=100.0, last=900.0)
        data += (_subheader() + _f32(_Y[:n])) * 2
    elif flags & TXVALS:
        data = _main_header(flags=flags, npoints=n) + _f32(x) + _subheader() + _f32(_Y[:n])
    else:
        data = _even_float_file(_Y[:n], first=100.0, last=900.0)
    full = _write(tmp_path, data, "full.spc")
    assert read_spectra(full)  # the untruncated file is fine
    cut_file = tmp_path / "cut.spc"
    for cut in range(1, len(data), 13):
        cut_file.write_bytes(data[:cut])
        with pytest.raises(SpectrumFileError) as info:
            read_spectra(cut_file)
        assert info.value.path == cut_file


def test_random_garbage_is_refused(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    for i in range(30):
        blob = bytearray(rng.integers(0, 256, int(rng.integers(1, 3000)), dtype=np.uint8).tobytes())
        if i % 2 and len(blob) > 1:
            blob[1] = 0x4B  # right version byte, garbage everywhere else
        path = _write(tmp_path, bytes(blob), f"g{i}.spc")
        with pytest.raises(SpectrumFileError) as info:
            read_spectra(path)
        assert info.value.path == path
