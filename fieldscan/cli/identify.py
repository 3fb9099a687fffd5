"""``fieldscan identify`` — name the substance in one or many spectrum files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from fieldscan.cli._app import app

if TYPE_CHECKING:
    from spectra.library import ReferenceLibrary

#: Queries identified per batch (one matrix product each); bounds memory for huge calls.
BATCH = 256


def open_library(path: Path | None) -> ReferenceLibrary:
    """The library at ``path``, or the demonstration library when ``path`` is None."""
    from spectra.library import load_demo_library, load_library

    return load_demo_library() if path is None else load_library(path)


def identify_files(files: list[Path], library: ReferenceLibrary) -> list[dict[str, Any]]:
    """One result object per file, in order; unreadable files give ``verdict: "error"``."""
    from spectra.errors import SpectraError
    from spectra.identify import identify_prepared, prepare
    from spectra.io import read_spectrum
    from spectra.preprocess import Prepared

    results: list[dict[str, Any] | None] = [None] * len(files)
    ready: list[tuple[int, Prepared]] = []
    for i, path in enumerate(files):
        try:
            spectrum = read_spectrum(path)
            ready.append((i, prepare(spectrum, library)))
        except (SpectraError, ValueError, OSError) as exc:
            results[i] = {"file": str(path), "verdict": "error", "message": str(exc)}
    for k in range(0, len(ready), BATCH):
        chunk = ready[k : k + BATCH]
        found = identify_prepared([p for _, p in chunk], library)
        for (i, _), ident in zip(chunk, found, strict=True):
            results[i] = {"file": str(files[i]), **ident.to_dict()}
    return [r for r in results if r is not None]


def _table(rows: list[dict[str, Any]], library: ReferenceLibrary) -> None:
    from rich.console import Console
    from rich.table import Table

    from spectra.verdict import PLAIN_WORDS, Verdict

    console = Console(highlight=False)
    if library.demonstration:
        console.print(
            "[bold yellow]DEMONSTRATION library — synthetic references, NOT for evidential use.[/]"
        )
    table = Table(title=f"{library.title or 'library'} · version {library.version}")
    table.add_column("File")
    table.add_column("Verdict")
    table.add_column("Substance(s)")
    table.add_column("Score", justify="right")
    table.add_column("Next best")
    for row in rows:
        if row["verdict"] == "error":
            table.add_row(Path(row["file"]).name, "[red]Could not read[/]", row["message"], "", "")
            continue
        verdict = Verdict(row["verdict"])
        colour = {"identified": "green", "mixture": "green", "inconclusive": "yellow"}.get(
            verdict.value, "red"
        )
        if verdict is Verdict.MIXTURE:
            what = ", ".join(f"{c['name']} ~{c['fraction']:.0%}" for c in row["components"])
        elif verdict is Verdict.IDENTIFIED:
            what = row["components"][0]["name"]
        elif verdict is Verdict.INCONCLUSIVE:
            what = f"resembles {row['candidates'][0]['name']} (not confirmed)"
        else:
            what = "—"
        nxt = ", ".join(c["name"] for c in row["candidates"][1:3])
        table.add_row(
            Path(row["file"]).name,
            f"[{colour}]{PLAIN_WORDS[verdict]}[/]",
            what,
            f"{row['score']:.3f}",
            nxt,
        )
    console.print(table)
    console.print(
        "Presumptive results: confirm in the laboratory before evidential use.", style="dim"
    )


@app.command()
def identify(
    files: Annotated[list[Path], typer.Argument(help="Spectrum files (.jdx/.dx/.csv/.spc …).")],
    library: Annotated[
        Path | None,
        typer.Option("--library", "-l", help="Library file (default: the demonstration library)."),
    ] = None,
    json_lines: Annotated[
        bool, typer.Option("--json", help="One JSON object per file, one per line.")
    ] = False,
) -> None:
    """Identify the substance in each spectrum file against a reference library."""
    lib = open_library(library)
    rows = identify_files(files, lib)
    if json_lines:
        for row in rows:
            typer.echo(json.dumps(row, ensure_ascii=False))
    else:
        _table(rows, lib)
    if any(row["verdict"] == "error" for row in rows):
        raise typer.Exit(1)
