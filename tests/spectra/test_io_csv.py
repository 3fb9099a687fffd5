"""CSV/TSV/TXT: round trips for every writer option, sniffing of real-world layouts, bad input."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spectra import Spectrum, SpectrumFileError, SpectrumKind
from spectra.io import read_spectra, read_spectrum, write_csv


def _spectrum(kind: SpectrumKind = SpectrumKind.RAMAN, n: int = 64) -> Spectrum:
    axis = np.linspace(150.0, 3200.0, n)
    rng = np.random.default_rng(5)
    values = rng.normal(1000.0, 300.0, n) * np.array([1e-6, 1.0, -3.5e4, 0.1])[np.arange(n) % 4]
    return Spectrum(axis, values, kind=kind, name="ignored")


_OPTIONS = [
    (delimiter, decimal, header, descending)
    for delimiter, decimal, header, descending in itertools.product(
        [",", ";", "\t"], [".", ","], [True, False], [True, False]
    )
    if not (delimiter == "," and decimal == ",")
]


@pytest.mark.parametrize(("delimiter", "decimal", "header", "descending"), _OPTIONS)
@pytest.mark.parametrize("suffix", [".csv", ".txt"])
def test_every_option_combination_round_trips_exactly(
    tmp_path: Path, delimiter: str, decimal: str, header: bool, descending: bool, suffix: str
) -> None:
    original = _spectrum(SpectrumKind.IR_ABSORBANCE)
    path = tmp_path / f"Sample A7{suffix}"
    write_csv(
        original, path, delimiter=delimiter, decimal=decimal, header=header, descending=descending
    )
    back = read_spectrum(path)
    np.testing.assert_array_equal(back.axis, original.axis)
    np.testing.assert_array_equal(back.intensities, original.intensities)
    assert back.name == "Sample A7"  # CSV names come from the file stem
    # The header row records the kind; without it a CSV reads as Raman.
    assert back.kind is (SpectrumKind.IR_ABSORBANCE if header else SpectrumKind.RAMAN)
    lines = path.read_text().splitlines()
    first_x = lines[1 if header else 0].split(delimiter)[0]
    assert float(first_x.replace(",", ".")) == (3200.0 if descending else 150.0)
    if decimal == ",":
        assert "." not in "".join(lines[1 if header else 0 :])


@pytest.mark.parametrize("kind", list(SpectrumKind))
def test_kind_round_trips_through_the_header(tmp_path: Path, kind: SpectrumKind) -> None:
    path = tmp_path / "k.csv"
    write_csv(_spectrum(kind), path)
    assert read_spectrum(path).kind is kind


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    axis=st.lists(
        st.floats(allow_nan=False, allow_infinity=False), min_size=16, max_size=120, unique=True
    ),
    data=st.data(),
    option=st.sampled_from(_OPTIONS),
)
def test_hypothesis_round_trip(
    tmp_path: Path,
    axis: list[float],
    data: st.DataObject,
    option: tuple[str, str, bool, bool],
) -> None:
    values = data.draw(
        st.lists(
            st.floats(allow_nan=False, allow_infinity=False),
            min_size=len(axis),
            max_size=len(axis),
        )
    )
    original = Spectrum(np.array(axis), np.array(values), name="h")
    delimiter, decimal, header, descending = option
    path = tmp_path / "h.csv"
    write_csv(
        original, path, delimiter=delimiter, decimal=decimal, header=header, descending=descending
    )
    back = read_spectrum(path)
    np.testing.assert_array_equal(back.axis, original.axis)
    np.testing.assert_array_equal(back.intensities, original.intensities)


def test_writer_rejects_inconsistent_options(tmp_path: Path) -> None:
    s = _spectrum()
    with pytest.raises(ValueError, match="decimal ','"):
        write_csv(s, tmp_path / "x.csv", delimiter=",", decimal=",")
    with pytest.raises(ValueError, match="delimiter"):
        write_csv(s, tmp_path / "x.csv", delimiter="|")
    with pytest.raises(ValueError, match="decimal"):
        write_csv(s, tmp_path / "x.csv", decimal=":")
    assert list(tmp_path.iterdir()) == []


def test_writer_reports_unwritable_targets(tmp_path: Path) -> None:
    with pytest.raises(SpectrumFileError, match="does not exist"):
        write_csv(_spectrum(), tmp_path / "missing" / "x.csv")
    with pytest.raises(SpectrumFileError, match="folder"):
        write_csv(_spectrum(), tmp_path)


# ----------------------------------------------------------------------------- real-world layouts


def _write(tmp_path: Path, text: str, name: str = "s.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def _rows(n: int = 20, start: float = 100.0) -> list[tuple[float, float]]:
    return [(start + 2.5 * i, 10.0 * i + 0.25) for i in range(n)]


def test_decimal_comma_with_semicolons(tmp_path: Path) -> None:
    text = "".join(f"{x:.1f};{y:.2f}\n".replace(".", ",") for x, y in _rows())
    assert "1234,5" not in text and "102,5;10,25" in text
    s = read_spectrum(_write(tmp_path, text))
    np.testing.assert_array_equal(s.axis, [x for x, _ in _rows()])
    np.testing.assert_array_equal(s.intensities, [y for _, y in _rows()])


def test_header_names_choose_columns_in_any_order(tmp_path: Path) -> None:
    text = "Sample;Counts;Raman Shift (cm-1)\n" + "".join(f"7;{y};{x}\n" for x, y in _rows())
    s = read_spectrum(_write(tmp_path, text))
    np.testing.assert_array_equal(s.axis, [x for x, _ in _rows()])
    np.testing.assert_array_equal(s.intensities, [y for _, y in _rows()])


def test_absorbance_header_gives_ir_kind(tmp_path: Path) -> None:
    text = "Wavenumber,Absorbance\n" + "".join(f"{x},{y}\n" for x, y in _rows())
    assert read_spectrum(_write(tmp_path, text)).kind is SpectrumKind.IR_ABSORBANCE


def test_comments_blank_lines_preamble_crlf_bom_and_trailing_delimiters(tmp_path: Path) -> None:
    body = "".join(f"{x:.4e}\t{y}\t\r\n" for x, y in reversed(_rows()))
    text = (
        "\ufeff# exported by SpectraTool 3.1\r\n"
        "Instrument: handheld\r\n"
        "\r\n"
        "x\ty\r\n" + body.replace("\r\n", "\r\n\r\n# mid-file comment\r\n", 1)
    )
    s = read_spectrum(_write(tmp_path, text, "export.tsv"))
    np.testing.assert_allclose(s.axis, [x for x, _ in _rows()])
    np.testing.assert_array_equal(s.intensities, [y for _, y in _rows()])
    assert s.name == "export"


def test_quoted_fields_and_a_text_column(tmp_path: Path) -> None:
    # Quotes keep a field together; the text column is skipped.
    text = '"id";"Raman shift";"Counts"\n' + "".join(
        f'"S-{i}";"{x + 1000}";{y}\n' for i, (x, y) in enumerate(_rows())
    )
    s = read_spectrum(_write(tmp_path, text))
    np.testing.assert_array_equal(s.axis, [x + 1000 for x, _ in _rows()])
    np.testing.assert_array_equal(s.intensities, [y for _, y in _rows()])
    # A thousands separator is ambiguous: refused, never read as 1 or 1100.
    text = '"Raman shift","Counts"\n' + "".join(f'"{x + 1000:,.2f}",{y}\n' for x, y in _rows())
    assert '"1,100.00"' in text
    with pytest.raises(SpectrumFileError, match="no rows of numbers"):
        read_spectrum(_write(tmp_path, text))


@pytest.mark.parametrize(
    "x_name", ["Wavelength (nm)", "wavelength", "Pixel", "Time (s)", "lambda / nm"]
)
def test_x_column_in_other_units_is_refused(tmp_path: Path, x_name: str) -> None:
    text = f"{x_name},Intensity\n" + "".join(f"{x},{y}\n" for x, y in _rows())
    with pytest.raises(SpectrumFileError, match="not in cm⁻¹"):
        read_spectrum(_write(tmp_path, text))


@pytest.mark.parametrize(("y_name", "scale"), [("Transmittance", 1.0), ("%T", 100.0)])
def test_transmittance_column_becomes_absorbance(tmp_path: Path, y_name: str, scale: float) -> None:
    t = np.linspace(0.05, 0.95, 20)
    text = f"Wavenumber (cm-1),{y_name}\n" + "".join(
        f"{x},{float(v) * scale!r}\n" for (x, _), v in zip(_rows(), t, strict=True)
    )
    s = read_spectrum(_write(tmp_path, text))
    assert s.kind is SpectrumKind.IR_ABSORBANCE
    np.testing.assert_allclose(s.intensities, -np.log10(t), rtol=1e-12)


def test_utf16_unicode_text_export(tmp_path: Path) -> None:
    text = "Raman shift\tIntensity\r\n" + "".join(f"{x}\t{y}\r\n" for x, y in _rows())
    path = tmp_path / "excel.txt"
    path.write_bytes(text.encode("utf-16"))  # with a byte-order mark
    s = read_spectrum(path)
    np.testing.assert_array_equal(s.intensities, [y for _, y in _rows()])
    path.write_bytes(text.encode("utf-16")[:-1])  # odd length: cut inside a character
    with pytest.raises(SpectrumFileError):
        read_spectrum(path)


def test_whitespace_separated_txt(tmp_path: Path) -> None:
    text = "".join(f"  {x}    {y}\n" for x, y in _rows())
    s = read_spectrum(_write(tmp_path, text, "plain.txt"))
    assert len(s) == 20


def test_double_hash_comment_does_not_make_a_csv_jcamp(tmp_path: Path) -> None:
    text = "## exported 2026-01-02\nx,y\n" + "".join(f"{x},{y}\n" for x, y in _rows())
    assert len(read_spectrum(_write(tmp_path, text, "c.txt"))) == 20


def test_txt_holding_jcamp_is_read_as_jcamp(tmp_path: Path) -> None:
    ys = " ".join(str(v) for v in range(16))
    text = (
        "##TITLE=in a txt\n##JCAMP-DX=5.01\n##DATA TYPE=RAMAN SPECTRUM\n##XUNITS=1/CM\n"
        f"##FIRSTX=0\n##LASTX=15\n##NPOINTS=16\n##XYDATA=(X++(Y..Y))\n0 {ys}\n##END=\n"
    )
    assert read_spectra(_write(tmp_path, text, "j.txt"))[0].name == "in a txt"


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("\n\n   \n", "empty"),
        ("# only a comment\n# and another\n", "no data"),
        ("wavenumber,intensity\n", "no rows of numbers"),
        ("hello world\nthis is not a spectrum\n", "no rows of numbers"),
        ("".join(f"{x},{y}\n" for x, y in _rows(10)), "only 10 data point"),
        ("".join(f"{x}\n" for x, _ in _rows()), "no rows of numbers"),
        (
            "".join(f"{x},{y}\n" for x, y in _rows()) + "1000,abc\n",
            "line 21: 'abc' is not a number",
        ),
        ("".join(f"{x},{y}\n" for x, y in _rows()) + "1000,nan\n", "line 21: value 'nan'"),
        ("".join(f"{x},{y}\n" for x, y in _rows()) + "inf,1\n", "line 21: value 'inf'"),
        ("".join(f"{x},{y}\n" for x, y in _rows()) + "1000,1,2\n", "line 21: has 3 column"),
        ("".join(f"{x},{y}\n" for x, y in _rows()) + "1000,\n", "line 21: has 1 column"),
        ("".join(f"{x},{y}\n" for x, y in _rows()) + "100.0,1\n", "not strictly monotonic"),
    ],
)
def test_bad_content_raises_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(SpectrumFileError, match=message) as info:
        read_spectrum(path)
    assert info.value.path == path


def test_every_truncation_point_is_an_error_or_a_valid_prefix(tmp_path: Path) -> None:
    # A CSV has no end marker: a cut exactly at a line break leaves a shorter valid file.
    # Any other cut must be refused, never read as a shortened last value.
    source = tmp_path / "full.csv"
    original = _spectrum(n=40)
    write_csv(original, source)
    data = source.read_bytes()
    cut_file = tmp_path / "cut.csv"
    accepted = 0
    for cut in range(1, len(data) + 1):
        if cut % 3 and data[cut - 1 : cut] != b"\n":
            continue  # every third byte and every line end keep the test quick
        cut_file.write_bytes(data[:cut])
        if data[cut - 1 : cut] != b"\n":
            with pytest.raises(SpectrumFileError) as info:
                read_spectrum(cut_file)
            assert info.value.path == cut_file
            continue
        rows = data[:cut].count(b"\n") - 1  # minus the header
        if rows < 16:
            with pytest.raises(SpectrumFileError, match=r"only|no rows"):
                read_spectrum(cut_file)
            continue
        back = read_spectrum(cut_file)
        np.testing.assert_array_equal(back.axis, original.axis[:rows])
        np.testing.assert_array_equal(back.intensities, original.intensities[:rows])
        accepted += 1
    assert accepted == 40 - 16 + 1


def test_missing_final_line_break_is_refused_but_a_trailing_comment_is_fine(
    tmp_path: Path,
) -> None:
    text = "".join(f"{x},{y}\n" for x, y in _rows())
    with pytest.raises(SpectrumFileError, match="cut short"):
        read_spectrum(_write(tmp_path, text.rstrip("\n")))
    assert len(read_spectrum(_write(tmp_path, text + "# end"))) == 20


def test_binary_garbage_is_refused(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    for i in range(20):
        path = tmp_path / f"g{i}.csv"
        path.write_bytes(rng.integers(0, 256, 1500, dtype=np.uint8).tobytes())
        with pytest.raises(SpectrumFileError):
            read_spectrum(path)
