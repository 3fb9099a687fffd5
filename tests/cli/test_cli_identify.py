"""``fieldscan identify``: the JSON-lines contract, errors per file, --library, the table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import fieldscan
from fieldscan.cli import app
from spectra.library import load_demo_library

EXAMPLES = sorted(
    p
    for p in (Path(fieldscan.__file__).parent / "examples").iterdir()
    if p.suffix in (".jdx", ".csv")
)
FIELDSCAN = [str(Path(sys.executable).parent / "fieldscan")]
runner = CliRunner()


def _lines(output: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def test_json_one_line_per_file_with_a_bad_file_among_good_ones(tmp_path: Path) -> None:
    bad = tmp_path / "broken.csv"
    bad.write_text("wavenumber,intensity\n100,1\nabc,def\n")
    missing = tmp_path / "missing.jdx"
    files = [EXAMPLES[0], bad, EXAMPLES[1], missing, EXAMPLES[2]]
    result = runner.invoke(app, ["identify", "--json", *map(str, files)])
    assert result.exit_code == 1  # some files failed …
    rows = _lines(result.stdout)
    assert [r["file"] for r in rows] == [str(f) for f in files]  # … but every file has its line
    version = load_demo_library().version
    for row, f in zip(rows, files, strict=True):
        if f in (bad, missing):
            assert row["verdict"] == "error"
            assert str(f.name) in str(row["message"])
            continue
        assert row["verdict"] in {"identified", "mixture", "inconclusive", "no_match"}
        candidates = row["candidates"]
        assert isinstance(candidates, list) and len(candidates) >= 5
        assert all(set(c) == {"name", "score"} for c in candidates)
        assert all(set(c) == {"name", "fraction"} for c in row["components"])  # type: ignore[union-attr]
        assert row["library_version"] == version


def test_json_all_good_exits_zero_and_names_the_examples() -> None:
    result = runner.invoke(app, ["identify", "--json", *map(str, EXAMPLES)])
    assert result.exit_code == 0, result.output
    rows = {Path(str(r["file"])).stem: r for r in _lines(result.stdout)}
    assert rows["cocaine-hcl-field"]["verdict"] == "identified"
    assert rows["cocaine-hcl-field"]["components"] == [
        {"name": "cocaine hydrochloride", "fraction": 1.0}
    ]
    assert rows["cocaine-hcl-cut-levamisole"]["verdict"] == "mixture"
    assert rows["unknown-ibuprofen"]["verdict"] in ("no_match", "inconclusive")


def test_library_option_uses_that_library(tmp_path: Path) -> None:
    lib = load_demo_library().without(["levamisole hydrochloride"])
    path = lib.save(tmp_path / "small.fslib")
    result = runner.invoke(app, ["identify", "--json", "--library", str(path), str(EXAMPLES[0])])
    row = _lines(result.stdout)[0]
    assert row["library_version"] == lib.version != load_demo_library().version
    assert "levamisole hydrochloride" not in {c["name"] for c in row["candidates"]}  # type: ignore[union-attr]


def test_table_output_is_readable_and_labelled() -> None:
    result = runner.invoke(app, ["identify", *map(str, EXAMPLES)], env={"COLUMNS": "160"})
    assert result.exit_code == 0
    assert "DEMONSTRATION" in result.stdout
    assert "Identified" in result.stdout and "Mixture" in result.stdout
    assert "cocaine hydrochloride" in result.stdout


def test_bad_library_is_one_line_and_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.fslib"
    bad.write_bytes(b"not a library")
    proc = subprocess.run(
        [*FIELDSCAN, "identify", "--json", "--library", str(bad), str(EXAMPLES[0])],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "bad.fslib" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert proc.stdout == ""


@pytest.mark.parametrize("args", [["identify"], ["identify", "--json"]])
def test_no_files_is_a_usage_error(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
