"""Damaged files of every format: a reader raises SpectrumFileError or returns valid spectra.

Random byte edits (overwrite, delete, insert) on valid files must never escape as
another exception (a traceback for the officer) or exhaust memory.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spectra import Spectrum, SpectrumFileError
from spectra.io import read_spectra, write_csv, write_jcamp

_NOISE = b"0123456789.,;-+eE #$=\n\t@%JKjkSTUnai?"


def _sources(tmp_path: Path) -> dict[str, bytes]:
    axis = np.linspace(200.0, 1800.0, 40)
    s = Spectrum(axis, np.sin(axis / 70.0) * 900 + 1000, name="fuzz")
    out: dict[str, bytes] = {}
    write_jcamp(s, tmp_path / "a.jdx")
    write_jcamp(s, tmp_path / "b.jdx", form="XYPOINTS")
    write_csv(s, tmp_path / "c.csv")
    write_csv(s, tmp_path / "d.csv", delimiter=";", decimal=",")
    for name in ("a.jdx", "b.jdx", "c.csv", "d.csv"):
        out[name] = (tmp_path / name).read_bytes()
    # A minimal new-format SPC: 512-byte header, 32-byte subheader, float32 Y.
    header = bytearray(512)
    struct.pack_into("<BBBBIddI", header, 0, 0, 0x4B, 11, 0x80, 40, 200.0, 1800.0, 1)
    header[28] = 13  # fxtype: Raman shift
    y = (np.sin(axis / 70.0) * 900 + 1000).astype("<f4").tobytes()
    sub = bytearray(32)
    sub[1] = 0x80
    out["e.spc"] = bytes(header) + bytes(sub) + y
    return out


_edit = st.tuples(
    st.sampled_from(["overwrite", "delete", "insert"]),
    st.floats(0.0, 1.0, exclude_max=True),
    st.binary(min_size=1, max_size=6) | st.sampled_from([bytes([c]) for c in _NOISE]),
)


@pytest.mark.parametrize("name", ["a.jdx", "b.jdx", "c.csv", "d.csv", "e.spc"])
@settings(
    max_examples=120,
    deadline=None,
    derandomize=True,  # the same cases every run: CI stays reproducible
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(edits=st.lists(_edit, min_size=1, max_size=3))
def test_damaged_file_fails_cleanly_or_reads_valid_spectra(
    tmp_path: Path, name: str, edits: list[tuple[str, float, bytes]]
) -> None:
    data = bytearray(_sources(tmp_path)[name])
    for op, where, chunk in edits:
        at = int(where * len(data)) if data else 0
        if op == "overwrite" and data:
            data[at : at + len(chunk)] = chunk
        elif op == "delete":
            del data[at : at + len(chunk) * 3]
        else:
            data[at:at] = chunk
    path = tmp_path / f"damaged_{name}"
    path.write_bytes(bytes(data))
    try:
        spectra = read_spectra(path)
    except SpectrumFileError as exc:
        assert exc.path == path
        assert "\n" not in exc.reason
        return
    for s in spectra:  # what is returned is complete and valid
        assert len(s) >= 16
        assert np.all(np.isfinite(s.axis)) and np.all(np.isfinite(s.intensities))
