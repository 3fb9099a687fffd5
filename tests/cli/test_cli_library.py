"""``fieldscan library build`` and ``fieldscan library info``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from fieldscan.cli import app
from spectra.io import write_csv, write_jcamp
from spectra.library import load_library
from spectra.spectrum import Spectrum
from spectra.synth import Band, synthesise

runner = CliRunner()
FIELDSCAN = str(Path(sys.executable).parent / "fieldscan")
AXIS = np.linspace(200.0, 2000.0, 901)


def _refs(folder: Path) -> Path:
    folder.mkdir()
    write_jcamp(
        Spectrum(AXIS, synthesise(AXIS, [Band(1003, 1.0), Band(620, 0.4)]), name="One"),
        folder / "1.jdx",
    )
    write_csv(
        Spectrum(AXIS, synthesise(AXIS, [Band(850, 1.0), Band(1450, 0.6)])), folder / "two.csv"
    )
    (folder / "meta.json").write_text(
        json.dumps(
            {"entries": {"One": {"class": "narcotic", "cas": "50-36-2"}, "two": {"class": "other"}}}
        )
    )
    return folder


def test_build_then_info(tmp_path: Path) -> None:
    src = _refs(tmp_path / "refs")
    out = tmp_path / "lib.fslib"
    result = runner.invoke(
        app, ["library", "build", str(src), "--out", str(out), "--manifest", str(src / "meta.json")]
    )
    assert result.exit_code == 0, result.output
    lib = load_library(out)
    assert lib.version in result.stdout
    assert sorted(lib.names) == ["One", "two"]
    assert lib.metadata("One")["cas"] == "50-36-2"
    info = runner.invoke(app, ["library", "info", str(out)], env={"COLUMNS": "200"})
    assert info.exit_code == 0
    assert (
        lib.version in info.stdout
        and "narcotic" in info.stdout
        and "DEMONSTRATION" not in info.stdout
    )
    as_json = json.loads(runner.invoke(app, ["library", "info", "--json", str(out)]).stdout)
    assert as_json["version"] == lib.version and as_json["entries"] == 2
    assert as_json["pipeline"]["baseline_method"] == lib.pipeline.baseline_method


def test_info_on_the_demo_library_shows_the_banner() -> None:
    info = runner.invoke(app, ["library", "info"], env={"COLUMNS": "200"})
    assert info.exit_code == 0
    assert "DEMONSTRATION" in info.stdout and "cocaine hydrochloride" in info.stdout


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([FIELDSCAN, *args], capture_output=True, text=True, timeout=60)


def test_build_errors_are_one_line(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = _cli("library", "build", str(empty), "--out", str(tmp_path / "x.fslib"))
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "no spectrum files" in proc.stderr
    src = _refs(tmp_path / "refs")
    (src / "junk.jdx").write_bytes(b"\x00\xff" * 100)
    proc = _cli("library", "build", str(src), "--out", str(tmp_path / "x.fslib"))
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "junk.jdx" in proc.stderr
    assert not (tmp_path / "x.fslib").exists()


def test_info_on_a_tampered_file_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.fslib"
    bad.write_text("hello")
    proc = _cli("library", "info", str(bad))
    assert proc.returncode != 0 and "Traceback" not in proc.stderr and "bad.fslib" in proc.stderr
