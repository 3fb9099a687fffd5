"""JCAMP-DX: write → read round trips, hand-written files in the spec's forms, bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spectra import Acquisition, Spectrum, SpectrumFileError, SpectrumKind
from spectra.io import read_spectra, read_spectrum, write_jcamp

FULL_ACQ = Acquisition(
    device_model="Acme RS-785",
    device_serial="SN-0042",
    firmware="2.1.7",
    laser_nm=785.0,
    integration_time_ms=250.5,
    averages=8,
    timestamp=datetime(2026, 3, 14, 15, 9, 26, 535897, tzinfo=timezone(timedelta(hours=-5))),
    operator="Officer Ana Núñez",
)


def _spectrum(kind: SpectrumKind = SpectrumKind.RAMAN, n: int = 301) -> Spectrum:
    axis = np.linspace(200.0, 1800.0, n)
    rng = np.random.default_rng(7)
    values = np.exp(-(((axis - 1000.0) / 30.0) ** 2)) + rng.normal(0, 0.01, n)
    if kind is not SpectrumKind.RAMAN:
        values = np.abs(values) * 1.5
    return Spectrum(axis, values, kind=kind, name="Cocaine HCl (demo)", acquisition=FULL_ACQ)


def _jdx(tmp_path: Path, body: str, name: str = "s.jdx") -> Path:
    path = tmp_path / name
    path.write_text(body)
    return path


# ----------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("form", ["XYDATA", "XYPOINTS"])
@pytest.mark.parametrize("kind", list(SpectrumKind))
def test_round_trip_is_exact_with_all_metadata(
    tmp_path: Path, form: str, kind: SpectrumKind
) -> None:
    original = _spectrum(kind)
    path = tmp_path / "out.jdx"
    write_jcamp(original, path, form=form)  # type: ignore[arg-type]
    back = read_spectrum(path)
    assert back == original  # axis, intensities, kind, name and acquisition, exactly
    text = path.read_text()
    assert text.startswith("##TITLE=Cocaine HCl (demo)\n##JCAMP-DX=5.01\n")
    assert text.rstrip().endswith("##END=")
    assert all(len(line) <= 80 for line in text.splitlines() if not line.startswith("##"))


def test_written_file_uses_the_labels_documented_for_metadata(tmp_path: Path) -> None:
    path = tmp_path / "out.jdx"
    write_jcamp(_spectrum(), path)
    text = path.read_text()
    for line in (
        "##SPECTROMETER/DATA SYSTEM=Acme RS-785",
        "##$DEVICE SERIAL=SN-0042",
        "##$FIRMWARE=2.1.7",
        "##$LASER WAVELENGTH=785.0 nm",
        "##$INTEGRATION TIME=250.5 ms",
        "##$AVERAGES=8",
        "##$OPERATOR=Officer Ana Núñez",
        "##LONG DATE=2026/03/14 15:09:26.535897 -0500",
        "##DATA TYPE=RAMAN SPECTRUM",
        "##XUNITS=1/CM",
        "##NPOINTS=301",
    ):
        assert line in text.splitlines()


def test_spectrum_without_metadata_round_trips(tmp_path: Path) -> None:
    s = Spectrum(np.arange(16.0) * 10 + 100, np.arange(16.0), name="bare")
    path = tmp_path / "bare.jdx"
    write_jcamp(s, path)
    assert read_spectrum(path) == s


_text = (
    st.text(
        alphabet=st.characters(
            max_codepoint=0x3FF, exclude_categories=("Cc", "Cs", "Zl", "Zp"), exclude_characters="$"
        ),
        min_size=1,
        max_size=30,
    )
    .map(str.strip)
    .filter(bool)
)
_finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
_positive = st.floats(min_value=1e-6, max_value=1e6, allow_nan=False, allow_infinity=False)
_timestamps = st.builds(
    lambda dt, tz: dt.replace(tzinfo=tz),
    st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1)),
    st.one_of(
        st.none(),
        st.just(UTC),
        st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m))),
    ),
)
_acquisitions = st.builds(
    Acquisition,
    device_model=st.none() | _text,
    device_serial=st.none() | _text,
    firmware=st.none() | _text,
    laser_nm=st.none() | _positive,
    integration_time_ms=st.none() | _positive,
    averages=st.none() | st.integers(1, 10**6),
    timestamp=st.none() | _timestamps,
    operator=st.none() | _text,
)


@st.composite
def _spectra(draw: st.DrawFn, even: bool) -> Spectrum:
    n = draw(st.integers(16, 200))
    if even:
        start = draw(st.floats(-500, 5000))
        span = draw(st.floats(1.0, 5000))
        axis = np.linspace(start, start + span, n)
    else:
        axis = np.array(
            draw(
                st.lists(
                    _finite.filter(lambda v: abs(v) < 1e300), min_size=n, max_size=n, unique=True
                )
            )
        )
    values = np.array(draw(st.lists(_finite, min_size=n, max_size=n)))
    return Spectrum(
        axis,
        values,
        kind=draw(st.sampled_from(list(SpectrumKind))),
        name=draw(_text),
        acquisition=draw(_acquisitions),
    )


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(spectrum=_spectra(even=True))
def test_hypothesis_xydata_round_trip(tmp_path: Path, spectrum: Spectrum) -> None:
    path = tmp_path / "h.jdx"
    write_jcamp(spectrum, path, form="XYDATA")
    assert read_spectrum(path) == spectrum


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(spectrum=_spectra(even=False))
def test_hypothesis_xypoints_round_trip(tmp_path: Path, spectrum: Spectrum) -> None:
    path = tmp_path / "h.jdx"
    write_jcamp(spectrum, path, form="XYPOINTS")
    assert read_spectrum(path) == spectrum


def test_nearly_even_axis_is_written_as_xydata_within_documented_tolerance(tmp_path: Path) -> None:
    axis = np.arange(100.0, 1700.0, 0.1)  # arange drifts from linspace in the last bits
    s = Spectrum(axis, np.sin(axis / 50), name="arange")
    path = tmp_path / "a.jdx"
    write_jcamp(s, path)
    back = read_spectrum(path)
    np.testing.assert_array_equal(back.intensities, s.intensities)
    assert np.max(np.abs(back.axis - axis)) <= 1e-6 * 0.1


def test_uneven_axis_cannot_be_written_as_xydata(tmp_path: Path) -> None:
    axis = np.linspace(0, 1, 64) ** 2 * 1500 + 200
    s = Spectrum(axis, np.ones(64), name="uneven")
    path = tmp_path / "u.jdx"
    with pytest.raises(SpectrumFileError, match=r"not evenly spaced.*XYPOINTS"):
        write_jcamp(s, path)
    assert not path.exists()
    write_jcamp(s, path, form="XYPOINTS")
    assert read_spectrum(path) == s


@pytest.mark.parametrize("bad", ["two\nlines", "tab\there", "cost $$ 5"])
def test_writer_refuses_text_that_would_not_read_back(tmp_path: Path, bad: str) -> None:
    s = _spectrum().renamed(bad)
    with pytest.raises(SpectrumFileError, match="cannot write"):
        write_jcamp(s, tmp_path / "x.jdx")
    assert list(tmp_path.iterdir()) == []


def test_writer_reports_missing_folder_and_folder_target(tmp_path: Path) -> None:
    with pytest.raises(SpectrumFileError, match="does not exist") as info:
        write_jcamp(_spectrum(), tmp_path / "nope" / "x.jdx")
    assert info.value.path == tmp_path / "nope" / "x.jdx"
    with pytest.raises(SpectrumFileError, match="folder"):
        write_jcamp(_spectrum(), tmp_path)


def test_writer_rejects_unknown_form(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="form"):
        write_jcamp(_spectrum(), tmp_path / "x.jdx", form="PEAKS")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- real-world forms

_IR_TRANSMITTANCE = """\
##TITLE=Lidocaine film
##JCAMP-DX=4.24
##DATA TYPE=INFRARED SPECTRUM
##ORIGIN=test
##OWNER=public domain
##XUNITS=1/CM
##YUNITS=TRANSMITTANCE
##XFACTOR=0.5
##YFACTOR=0.001
##FIRSTX=4000
##LASTX=3620
##NPOINTS=20
##FIRSTY=0.9
##XYDATA=(X++(Y..Y))
8000 900 800 700 600 500
7800 400 300 200 100 150
7600 250 350 450 550 650
7400 750 850 950 990 999
##END=
"""


def test_ir_transmittance_with_factors_is_converted_to_absorbance(tmp_path: Path) -> None:
    s = read_spectrum(_jdx(tmp_path, _IR_TRANSMITTANCE))
    assert s.kind is SpectrumKind.IR_ABSORBANCE
    assert s.name == "Lidocaine film"
    t = (
        np.array(
            [
                900,
                800,
                700,
                600,
                500,
                400,
                300,
                200,
                100,
                150,
                250,
                350,
                450,
                550,
                650,
                750,
                850,
                950,
                990,
                999,
            ]
        )
        * 0.001
    )
    x = np.linspace(4000, 3620, 20)
    # the reader sorts the axis ascending; absorbance = −log10(T)
    np.testing.assert_allclose(s.axis, x[::-1])
    np.testing.assert_allclose(s.intensities, -np.log10(t)[::-1], rtol=1e-12)


def test_ir_in_micrometres_is_converted_to_wavenumbers(tmp_path: Path) -> None:
    ys = " ".join(f"{v:.3f}" for v in np.linspace(0.1, 0.9, 16))
    body = f"""##TITLE=um
##JCAMP-DX=5.01
##DATA TYPE=INFRARED SPECTRUM
##XUNITS=MICROMETERS
##YUNITS=ABSORBANCE
##FIRSTX=2.5
##LASTX=10
##NPOINTS=16
##XYDATA=(X++(Y..Y))
2.5 {ys}
##END=
"""
    s = read_spectrum(_jdx(tmp_path, body))
    np.testing.assert_allclose(s.axis, np.sort(1e4 / np.linspace(2.5, 10, 16)))
    np.testing.assert_allclose(s.intensities, np.linspace(0.1, 0.9, 16)[::-1], atol=1e-3)


def test_raman_in_nanometres_needs_and_uses_the_laser_wavelength(tmp_path: Path) -> None:
    shifts = np.linspace(200.0, 1800.0, 33)
    nm = 1e7 / (1e7 / 785.0 - shifts)  # scattered wavelengths for a 785 nm laser
    points = "\n".join(f"{float(x)!r}, {y}" for x, y in zip(nm, range(33), strict=True))
    body = f"""##TITLE=nm raman
##JCAMP-DX=5.01
##DATA TYPE=RAMAN SPECTRUM
##XUNITS=NANOMETERS
##$LASER WAVELENGTH=785 nm
##NPOINTS=33
##XYPOINTS=(XY..XY)
{points}
##END=
"""
    s = read_spectrum(_jdx(tmp_path, body))
    np.testing.assert_allclose(s.axis, shifts, rtol=1e-9)
    np.testing.assert_array_equal(s.intensities, np.arange(33.0))
    assert s.acquisition.laser_nm == 785.0
    no_laser = body.replace("##$LASER WAVELENGTH=785 nm\n", "")
    with pytest.raises(SpectrumFileError, match="needs the laser wavelength"):
        read_spectrum(_jdx(tmp_path, no_laser, "n.jdx"))
    hertz = body.replace("##XUNITS=NANOMETERS", "##XUNITS=HZ")
    with pytest.raises(SpectrumFileError, match="x units 'HZ'"):
        read_spectrum(_jdx(tmp_path, hertz, "h.jdx"))


def test_percent_transmittance_is_recognised_by_label_or_by_value(tmp_path: Path) -> None:
    # YFACTOR 0.1 turns the same numbers into 10 … 99.9: percent, though labelled
    # TRANSMITTANCE (common in old files); a fraction can never reach 1.5.
    percent = _IR_TRANSMITTANCE.replace("##YFACTOR=0.001", "##YFACTOR=0.1")
    s = read_spectrum(_jdx(tmp_path, percent))
    fraction = read_spectrum(_jdx(tmp_path, _IR_TRANSMITTANCE, "f.jdx"))
    np.testing.assert_allclose(s.intensities, fraction.intensities, rtol=1e-12)
    labelled = percent.replace("##YUNITS=TRANSMITTANCE", "##YUNITS=%T")
    np.testing.assert_allclose(
        read_spectrum(_jdx(tmp_path, labelled, "p.jdx")).intensities, s.intensities, rtol=1e-12
    )
    too_big = _IR_TRANSMITTANCE.replace("##YFACTOR=0.001", "##YFACTOR=1")
    with pytest.raises(SpectrumFileError, match="above 100 %"):
        read_spectrum(_jdx(tmp_path, too_big, "b.jdx"))
    zero = _IR_TRANSMITTANCE.replace("7400 750 850", "7400 0 850")
    with pytest.raises(SpectrumFileError, match=r"1 transmittance value.*0 or below"):
        read_spectrum(_jdx(tmp_path, zero, "z.jdx"))


def test_ir_in_visible_nanometres_is_refused(tmp_path: Path) -> None:
    ys = " ".join(f"{v:.3f}" for v in np.linspace(0.1, 0.9, 16))
    body = f"""##TITLE=uv-vis really
##JCAMP-DX=5.01
##DATA TYPE=INFRARED SPECTRUM
##XUNITS=NANOMETERS
##YUNITS=ABSORBANCE
##FIRSTX=400
##LASTX=1900
##NPOINTS=16
##XYDATA=(X++(Y..Y))
400 {ys}
##END=
"""
    with pytest.raises(SpectrumFileError, match="visible or ultraviolet"):
        read_spectrum(_jdx(tmp_path, body))
    nir = body.replace("400 ", "1000 ").replace("##FIRSTX=400", "##FIRSTX=1000")
    nir = nir.replace("##LASTX=1900", "##LASTX=2500").replace("INFRARED", "NEAR INFRARED")
    s = read_spectrum(_jdx(tmp_path, nir, "nir.jdx"))
    assert s.kind is SpectrumKind.NIR
    np.testing.assert_allclose(s.axis, np.sort(1e7 / np.linspace(1000, 2500, 16)))


# A small ASDF encoder following the JCAMP-DX spec (McDonald & Wilks 1988, section 5.9):
# SQZ replaces the sign and leading digit by a letter, DIF stores differences, DUP counts
# repeats; DIF lines repeat the last Y of the previous line as a Y check.
_SQZ_POS, _SQZ_NEG = "@ABCDEFGHI", "@abcdefghi"
_DIF_POS, _DIF_NEG = "%JKLMNOPQR", "%jklmnopqr"
_DUP = "STUVWXYZs"


def _code(value: int, pos: str, neg: str) -> str:
    digits = str(abs(value))
    return (pos if value >= 0 else neg)[int(digits[0])] + digits[1:]


def _asdf_lines(xs: list[int], ys: list[int], form: str, per_line: int = 9) -> list[str]:
    lines: list[str] = []
    i = 0
    while i < len(ys):
        j = min(i + per_line, len(ys))
        tokens = [_code(ys[i], _SQZ_POS, _SQZ_NEG)]
        if form == "SQZ":
            tokens += [_code(v, _SQZ_POS, _SQZ_NEG) for v in ys[i + 1 : j]]
            lines.append(f"{xs[i]}" + "".join(tokens))
            i = j
            continue
        diffs = [ys[k] - ys[k - 1] for k in range(i + 1, j)]
        k = 0
        while k < len(diffs):
            run = k
            while form == "DIFDUP" and run + 1 < len(diffs) and diffs[run + 1] == diffs[k]:
                run += 1
            tokens.append(_code(diffs[k], _DIF_POS, _DIF_NEG))
            if run > k:
                count = str(run - k + 1)
                tokens.append(_DUP[int(count[0]) - 1] + count[1:])
            k = run + 1
        lines.append(f"{xs[i]}" + "".join(tokens))
        if j >= len(ys):
            break
        i = j - 1  # the next line starts with the Y check value
    return lines


@pytest.mark.parametrize("form", ["SQZ", "DIF", "DIFDUP"])
def test_compressed_asdf_forms_decode_exactly(tmp_path: Path, form: str) -> None:
    rng = np.random.default_rng(3)
    ys = [int(v) for v in rng.integers(-3000, 3000, 60)]
    ys[10:18] = [42] * 8  # a run, so DUP is exercised
    ys[30:36] = [5, 10, 15, 20, 25, 30]  # equal differences
    xs = list(range(400, 460))
    data = "\n".join(_asdf_lines(xs, ys, form))
    body = f"""##TITLE=asdf {form}
##JCAMP-DX=5.01
##DATA TYPE=RAMAN SPECTRUM
##XUNITS=1/CM
##YUNITS=COUNTS
##XFACTOR=1
##YFACTOR=0.5
##FIRSTX=400
##LASTX=459
##NPOINTS=60
##XYDATA=(X++(Y..Y))
{data}
##END=
"""
    s = read_spectrum(_jdx(tmp_path, body))
    np.testing.assert_array_equal(s.axis, np.arange(400.0, 460.0))
    np.testing.assert_array_equal(s.intensities, np.array(ys) * 0.5)
    if form != "SQZ":
        # A damaged Y check (the repeated value at a line start) must not pass.
        lines = data.splitlines()
        check = str(xs[8]) + _code(ys[8], _SQZ_POS, _SQZ_NEG)  # line 2 repeats point 9
        assert lines[1].startswith(check)
        lines[1] = str(xs[8]) + _code(ys[8] + 1, _SQZ_POS, _SQZ_NEG) + lines[1][len(check) :]
        broken = body.replace(data, "\n".join(lines))
        with pytest.raises(SpectrumFileError):
            read_spectrum(_jdx(tmp_path, broken, "broken.jdx"))


def test_dup_after_sqz_and_multi_digit_dup_counts(tmp_path: Path) -> None:
    # The jcamp package itself mis-decodes both; the reader expands DUP first.
    # D2 = 42, S3 = 13 copies in all; L = +3, U = 3 times; % = +0, T = twice; j = -1;
    # line 2 repeats 50 (E0) as its Y check, then J = +1 twice.
    body = """##TITLE=dup
##JCAMP-DX=5.01
##DATA TYPE=RAMAN SPECTRUM
##XUNITS=1/CM
##FIRSTX=100
##LASTX=120
##NPOINTS=21
##XYDATA=(X++(Y..Y))
100D2S3LU%Tj
118E0JT
##END=
"""
    s = read_spectrum(_jdx(tmp_path, body))
    expected = [42] * 13 + [45, 48, 51, 51, 51, 50, 51, 52]
    np.testing.assert_array_equal(s.intensities, expected)
    # One value short (S2 = 12 copies) shifts every later X: refused, not misread.
    with pytest.raises(SpectrumFileError, match=r"NPOINTS|starts at x"):
        read_spectrum(_jdx(tmp_path, body.replace("D2S3", "D2S2"), "short.jdx"))


def test_xypoints_pairs_may_wrap_across_lines(tmp_path: Path) -> None:
    pairs = [(100.0 + i, float(i * i)) for i in range(20)]
    tokens = [t for x, y in pairs for t in (f"{x},", f"{y};")]
    wrapped = "\n".join(" ".join(tokens[i : i + 3]) for i in range(0, len(tokens), 3))
    body = f"""##TITLE=wrapped
##JCAMP-DX=5.01
##DATA TYPE=INFRARED SPECTRUM
##XUNITS=1/CM
##YUNITS=ABSORBANCE
##NPOINTS=20
##XYPOINTS=(XY..XY)
{wrapped}
##END=
"""
    assert any(line.rstrip().endswith(",") for line in wrapped.splitlines())
    s = read_spectrum(_jdx(tmp_path, body))
    np.testing.assert_array_equal(s.axis, [x for x, _ in pairs])
    np.testing.assert_array_equal(s.intensities, [y for _, y in pairs])
    # The common non-standard spelling XYDATA=(XY..XY) reads the same way.
    s2 = read_spectrum(_jdx(tmp_path, body.replace("##XYPOINTS=", "##XYDATA="), "b.jdx"))
    np.testing.assert_array_equal(s2.intensities, s.intensities)


def test_old_file_quirks_are_tolerated(tmp_path: Path) -> None:
    # A repeated label with the same value, an FTIR data type, CRLF and a DOS Ctrl-Z.
    body = _GOOD.replace("##NPOINTS=16", "##NPOINTS=16\n##NPOINTS= 16\n##DELTAX=1.0")
    body = body.replace("RAMAN SPECTRUM", "FTIR").replace("##YUNITS=COUNTS", "##YUNITS=ABSORBANCE")
    path = tmp_path / "old.dx"
    path.write_bytes(body.replace("\n", "\r\n").encode() + b"\x1a")
    s = read_spectrum(path)
    assert s.kind is SpectrumKind.IR_ABSORBANCE and len(s) == 16
    conflicting = _GOOD.replace("##NPOINTS=16", "##NPOINTS=16\n##NPOINTS=17")
    with pytest.raises(SpectrumFileError, match="appears twice"):
        read_spectrum(_jdx(tmp_path, conflicting, "c.jdx"))


def test_link_file_gives_every_block(tmp_path: Path) -> None:
    a = _spectrum().renamed("first")
    b = _spectrum(SpectrumKind.IR_ABSORBANCE).renamed("second")
    write_jcamp(a, tmp_path / "a.jdx")
    write_jcamp(b, tmp_path / "b.jdx", form="XYPOINTS")
    body = (
        "##TITLE=two spectra\n##JCAMP-DX=5.01\n##DATA TYPE=LINK\n##BLOCKS=2\n"
        + (tmp_path / "a.jdx").read_text()
        + (tmp_path / "b.jdx").read_text()
        + "##END=\n"
    )
    path = _jdx(tmp_path, body, "link.jdx")
    assert read_spectra(path) == [a, b]
    with pytest.raises(SpectrumFileError, match=r"2 spectra.*read_spectra"):
        read_spectrum(path)


def test_comments_blank_lines_and_label_spelling_are_tolerated(tmp_path: Path) -> None:
    ys = " ".join(str(v) for v in range(16))
    body = f"""$$ exported by hand
##TITLE= spaced title   $$ comment after the title

##JCAMP-DX=5.01
##DATATYPE=Raman Spectrum
##X_UNITS=1/cm
##NPOINTS=16
##FIRST X=100
##LAST-X=250
##XYDATA=(X++(Y..Y))   $$ AFFN
100 {ys}
##END=
"""
    s = read_spectrum(_jdx(tmp_path, body))
    assert s.name == "spaced title"
    np.testing.assert_array_equal(s.intensities, np.arange(16.0))
    np.testing.assert_array_equal(s.axis, np.linspace(100, 250, 16))


def test_title_and_metadata_continued_on_the_next_line_are_joined(tmp_path: Path) -> None:
    body = _GOOD.replace("##TITLE=good", "##TITLE=Cocaine hydrochloride,\n  street sample 7")
    body = body.replace("##XUNITS=1/CM", "##XUNITS=1/CM\n##$OPERATOR=A. Officer\n  (night shift)")
    s = read_spectrum(_jdx(tmp_path, body))
    assert s.name == "Cocaine hydrochloride, street sample 7"
    assert s.acquisition.operator == "A. Officer (night shift)"


def test_windows_1252_text_is_decoded(tmp_path: Path) -> None:
    path = tmp_path / "w.jdx"
    path.write_bytes(_GOOD.replace("##TITLE=good", "##TITLE=Cocaína – muestra").encode("cp1252"))
    assert read_spectrum(path).name == "Cocaína – muestra"


def test_empty_title_falls_back_to_file_stem(tmp_path: Path) -> None:
    path = tmp_path / "Sample 12.jdx"
    write_jcamp(_spectrum().renamed(""), path)
    assert read_spectrum(path).name == "Sample 12"


# ----------------------------------------------------------------------------- bad input

_GOOD = """\
##TITLE=good
##JCAMP-DX=5.01
##DATA TYPE=RAMAN SPECTRUM
##XUNITS=1/CM
##YUNITS=COUNTS
##FIRSTX=100
##LASTX=115
##NPOINTS=16
##XYDATA=(X++(Y..Y))
100 1 2 3 4 5 6 7 8
108 9 10 11 12 13 14 15 16
##END=
"""


def test_the_good_fixture_reads(tmp_path: Path) -> None:
    assert len(read_spectrum(_jdx(tmp_path, _GOOD))) == 16


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("##END=\n", "", "no closing ##END="),
        ("##NPOINTS=16", "##NPOINTS=17", "NPOINTS=17 but the data hold 16"),
        ("##NPOINTS=16\n", "", "no ##NPOINTS="),
        ("##FIRSTX=100", "##FIRSTX=50", "starts at x=100"),
        ("##LASTX=115", "##LASTX=abc", "LASTX='abc' is not a number"),
        ("9 10 11", "9 nan 11", "'nan' is not a number"),
        ("9 10 11", "9 inf 11", "'inf' is not a number"),
        ("9 10 11", "9 ? 11", "missing value"),
        ("9 10 11", "9 1#0 11", "unexpected character '#'"),
        ("108 9 10 11 12 13 14 15 16\n", "", "NPOINTS=16 but the data hold 8"),
        ("##DATA TYPE=RAMAN SPECTRUM", "##DATA TYPE=MASS SPECTRUM", "not Raman, infrared"),
        ("##DATA TYPE=RAMAN SPECTRUM\n", "", "no ##DATA TYPE="),
        ("##DATA TYPE=RAMAN SPECTRUM", "##DATA TYPE=RAMAN PEAK TABLE", "peak table"),
        ("##XUNITS=1/CM", "##XUNITS=HZ", "x units 'HZ'"),
        ("##XYDATA=(X++(Y..Y))", "##XYDATA=(X++(R..R))", "not supported"),
        ("##XYDATA=(X++(Y..Y))\n100 1 2 3 4 5 6 7 8\n108 9 10 11 12 13 14 15 16\n", "", "no data"),
        ("##TITLE=good", "TITLE=good", "not a JCAMP-DX file"),
        ("##YUNITS=COUNTS", "##YUNITS=COUNTS\n##YUNITS=VOLTS", "appears twice"),
        ("##END=\n", "##TITLE=next\n##END=\n", "new ##TITLE= starts before"),
        ("##END=\n", "##END=\nstray text\n", "after ##END="),
        ("##XUNITS=1/CM", "##XUNITS=1/CM\n##$LASER WAVELENGTH=green", "not understood"),
        ("##XUNITS=1/CM", "##XUNITS=1/CM\n##$LASER WAVELENGTH=-785", "laser_nm"),
        ("##XUNITS=1/CM", "##XUNITS=1/CM\n##LONG DATE=yesterday", "not a date"),
        ("##XUNITS=1/CM", "##XUNITS=1/CM\n##$AVERAGES=2.5", "whole number"),
        ("##NPOINTS=16", "##NPOINTS=16\n##YFACTOR=0", "YFACTOR= is zero"),
        ("##NPOINTS=16", "##NPOINTS=16\n##DELTAX=-1", "DELTAX=-1 disagrees"),
        ("##NPOINTS=16", "##NPOINTS=1e12", "implausibly large"),
        ("100 1 2 3 4 5 6 7 8", "100 1 2 3 4 5 6 7 8S99999999999", "DUP counts add more"),
    ],
)
def test_damaged_files_raise_clear_errors(tmp_path: Path, old: str, new: str, message: str) -> None:
    assert old in _GOOD
    path = _jdx(tmp_path, _GOOD.replace(old, new, 1))
    with pytest.raises(SpectrumFileError, match=message) as info:
        read_spectrum(path)
    assert info.value.path == path
    assert str(path) in str(info.value)


def test_too_few_points_is_refused(tmp_path: Path) -> None:
    body = _GOOD.replace("##NPOINTS=16", "##NPOINTS=8").replace("##LASTX=115", "##LASTX=107")
    body = body.replace("108 9 10 11 12 13 14 15 16\n", "")
    with pytest.raises(SpectrumFileError, match="only 8 data point"):
        read_spectrum(_jdx(tmp_path, body))


def test_xypoints_with_a_text_line_is_refused_not_skipped(tmp_path: Path) -> None:
    path = tmp_path / "p.jdx"
    write_jcamp(_spectrum(), path, form="XYPOINTS")
    lines = path.read_text().splitlines()
    at = lines.index("##XYPOINTS=(XY..XY)") + 5
    lines[at] = "1034.5, n/a"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(SpectrumFileError, match=f"line {at + 1}: 'n/a' is not a number"):
        read_spectrum(path)


def test_xypoints_firstx_must_match_the_data(tmp_path: Path) -> None:
    path = tmp_path / "p.jdx"
    write_jcamp(_spectrum(), path, form="XYPOINTS")
    path.write_text(path.read_text().replace("##FIRSTX=200.0", "##FIRSTX=180.0"))
    with pytest.raises(SpectrumFileError, match="FIRSTX=180 but the data start at x=200"):
        read_spectrum(path)


@pytest.mark.parametrize("form", ["XYDATA", "XYPOINTS"])
def test_every_truncation_point_is_an_error(tmp_path: Path, form: str) -> None:
    source = tmp_path / "full.jdx"
    write_jcamp(_spectrum(n=120), source, form=form)  # type: ignore[arg-type]
    data = source.read_bytes()
    cut_file = tmp_path / "cut.jdx"
    # Cuts everywhere except the final "##END=" line's trailing newline.
    for cut in [*range(1, len(data) - 8, max(1, len(data) // 97)), len(data) - 5]:
        cut_file.write_bytes(data[:cut])
        with pytest.raises(SpectrumFileError) as info:
            read_spectrum(cut_file)
        assert info.value.path == cut_file


def test_binary_garbage_and_random_text_are_refused(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    for i in range(20):
        path = tmp_path / f"g{i}.jdx"
        path.write_bytes(rng.integers(0, 256, 2000, dtype=np.uint8).tobytes())
        with pytest.raises(SpectrumFileError):
            read_spectrum(path)
        alphabet = np.frombuffer(b"##=ABCXYZ0123456789 .,-+\n$()TITLEND", dtype=np.uint8)
        path.write_bytes(rng.choice(alphabet, 3000).tobytes())
        with pytest.raises(SpectrumFileError):
            read_spectrum(path)
