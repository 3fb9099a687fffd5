"""Bad input common to every format: each gives SpectrumFileError naming the file."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import pytest

from spectra import Spectrum, SpectrumFileError
from spectra.io import SUPPORTED_SUFFIXES, read_spectra, read_spectrum, write_csv, write_jcamp

ALL_SUFFIXES = [".jdx", ".dx", ".jcamp", ".csv", ".tsv", ".txt", ".spc", ".JDX", ".CSV", ".SPC"]


def _spectrum() -> Spectrum:
    axis = np.linspace(300.0, 1700.0, 50)
    return Spectrum(axis, np.cos(axis / 90.0) + 2.0, name="probe")


def test_supported_suffixes_are_the_documented_ones() -> None:
    assert set(SUPPORTED_SUFFIXES) == {".jdx", ".dx", ".jcamp", ".csv", ".tsv", ".txt", ".spc"}


@pytest.mark.parametrize("suffix", ALL_SUFFIXES)
def test_missing_file(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"absent{suffix}"
    with pytest.raises(SpectrumFileError, match="file not found") as info:
        read_spectrum(path)
    assert info.value.path == path and str(path) in str(info.value)


@pytest.mark.parametrize("suffix", ALL_SUFFIXES)
def test_directory(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"folder{suffix}"
    path.mkdir()
    with pytest.raises(SpectrumFileError, match="is a folder") as info:
        read_spectra(path)
    assert info.value.path == path


@pytest.mark.parametrize("suffix", ALL_SUFFIXES)
@pytest.mark.parametrize("content", [b"", b"\n\n \r\n\t"])
def test_empty_file(tmp_path: Path, suffix: str, content: bytes) -> None:
    path = tmp_path / f"empty{suffix}"
    path.write_bytes(content)
    with pytest.raises(SpectrumFileError, match="empty") as info:
        read_spectrum(path)
    assert info.value.path == path


@pytest.mark.parametrize("suffix", ALL_SUFFIXES)
def test_binary_garbage(tmp_path: Path, suffix: str) -> None:
    rng = np.random.default_rng(sum(suffix.encode()))
    path = tmp_path / f"garbage{suffix}"
    for size in (1, 3, 100, 511, 512, 513, 5000):
        path.write_bytes(rng.integers(0, 256, size, dtype=np.uint8).tobytes())
        with pytest.raises(SpectrumFileError) as info:
            read_spectrum(path)
        assert info.value.path == path


@pytest.mark.parametrize("name", ["spectrum.pdf", "spectrum", "spectrum.jdx.bak", "x.xlsx"])
def test_unsupported_suffix(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    write_jcamp(_spectrum(), tmp_path / "ok.jdx")
    path.write_bytes((tmp_path / "ok.jdx").read_bytes())
    with pytest.raises(SpectrumFileError, match="unsupported file type") as info:
        read_spectrum(path)
    assert ".jdx" in str(info.value) and info.value.path == path


def test_files_under_the_wrong_suffix(tmp_path: Path) -> None:
    write_csv(_spectrum(), tmp_path / "real.csv")
    (tmp_path / "csv_as.jdx").write_bytes((tmp_path / "real.csv").read_bytes())
    with pytest.raises(SpectrumFileError, match="not a JCAMP-DX file"):
        read_spectrum(tmp_path / "csv_as.jdx")
    (tmp_path / "csv_as.spc").write_bytes((tmp_path / "real.csv").read_bytes())
    with pytest.raises(SpectrumFileError, match="not an SPC file"):
        read_spectrum(tmp_path / "csv_as.spc")
    spc = bytearray(512 + 32 + 4 * 20)
    spc[1] = 0x4B
    struct.pack_into("<i", spc, 4, 20)
    (tmp_path / "spc_as.csv").write_bytes(bytes(spc))
    with pytest.raises(SpectrumFileError, match="binary file"):
        read_spectrum(tmp_path / "spc_as.csv")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores permissions")
def test_permission_denied(tmp_path: Path) -> None:
    path = tmp_path / "locked.jdx"
    write_jcamp(_spectrum(), path)
    path.chmod(0)
    try:
        with pytest.raises(SpectrumFileError, match="permission denied"):
            read_spectrum(path)
    finally:
        path.chmod(0o600)


def test_writers_do_not_leave_partial_files_when_they_fail(tmp_path: Path) -> None:
    uneven = Spectrum(np.geomspace(100, 3000, 40), np.ones(40), name="u")
    target = tmp_path / "keep.jdx"
    write_jcamp(_spectrum(), target)
    before = target.read_bytes()
    with pytest.raises(SpectrumFileError):
        write_jcamp(uneven, target)  # XYDATA refuses an uneven axis
    assert target.read_bytes() == before  # the old file is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.jdx"]


def test_error_is_a_spectra_error_with_a_one_line_message(tmp_path: Path) -> None:
    from spectra import SpectraError

    path = tmp_path / "bad.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(SpectraError) as info:
        read_spectrum(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (PermissionError(13, "Permission denied"), "permission denied"),
        (OSError(5, "Input/output error"), "cannot be read \\(Input/output error\\)"),
    ],
)
def test_os_errors_while_reading_are_translated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: OSError, message: str
) -> None:
    path = tmp_path / "x.jdx"
    write_jcamp(_spectrum(), path)

    def fail(self: Path) -> bytes:
        raise error

    monkeypatch.setattr(Path, "read_bytes", fail)
    with pytest.raises(SpectrumFileError, match=message) as info:
        read_spectrum(path)
    assert info.value.path == path


def test_os_errors_while_writing_are_translated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    def fail(*args: object, **kwargs: object) -> tuple[int, str]:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", fail)
    for write in (write_jcamp, write_csv):
        with pytest.raises(SpectrumFileError, match="permission denied"):
            write(_spectrum(), tmp_path / "out.dat")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_named_pipe_is_refused_without_blocking(tmp_path: Path) -> None:
    path = tmp_path / "pipe.csv"
    os.mkfifo(path)
    with pytest.raises(SpectrumFileError, match="not a regular file"):
        read_spectrum(path)


def test_written_files_are_readable_by_others_and_keep_an_existing_mode(tmp_path: Path) -> None:
    new = tmp_path / "new.csv"
    write_csv(_spectrum(), new)
    assert new.stat().st_mode & 0o777 == 0o644
    old = tmp_path / "old.jdx"
    old.write_text("placeholder")
    old.chmod(0o640)
    write_jcamp(_spectrum(), old)
    assert old.stat().st_mode & 0o777 == 0o640
    assert read_spectrum(old).name == "probe"
