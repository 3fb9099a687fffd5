"""``fieldscan library`` — build a reference library from spectra files, and describe one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from fieldscan.cli._app import UserError, app

if TYPE_CHECKING:
    from spectra.library import ReferenceLibrary

library_app = typer.Typer(
    help="Build and inspect reference libraries.", no_args_is_help=True, add_completion=False
)
app.add_typer(library_app, name="library")


def describe(library: ReferenceLibrary) -> dict[str, Any]:
    """A JSON-able summary of ``library``."""
    return {
        "title": library.title,
        "version": library.version,
        "demonstration": library.demonstration,
        "entries": len(library),
        "classes": library.classes(),
        "pipeline": library.pipeline.to_dict(),
        "thresholds": library.thresholds.to_dict(),
        "names": library.names,
    }


@library_app.command("build")
def build(
    src_dir: Annotated[Path, typer.Argument(help="Folder of .jdx/.dx/.jcamp/.csv/.spc files.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Library file to write.")],
    manifest: Annotated[
        Path | None,
        typer.Option("--manifest", "-m", help="Metadata manifest (default SRC_DIR/manifest.json)."),
    ] = None,
    title: Annotated[str | None, typer.Option(help="Title (default: the folder name).")] = None,
) -> None:
    """Build a library file from a folder of reference spectra."""
    from spectra.library import build_library

    if out.exists() and out.is_dir():
        raise UserError(f"{out} is a folder; --out must name a file")
    library = build_library(src_dir, manifest=manifest, title=title)
    library.save(out)
    typer.echo(f"{out}: {len(library)} entries, version {library.version}")


@library_app.command("info")
def info(
    lib_file: Annotated[
        Path | None, typer.Argument(help="Library file (default: the demonstration library).")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
) -> None:
    """Describe a library: version, pipeline, thresholds, classes and entries."""
    from rich.console import Console
    from rich.table import Table

    from spectra.library import load_demo_library, load_library

    library = load_demo_library() if lib_file is None else load_library(lib_file)
    if json_out:
        typer.echo(json.dumps(describe(library), ensure_ascii=False))
        return
    console = Console(highlight=False)
    if library.demonstration:
        console.print(
            "[bold yellow]DEMONSTRATION library — synthesised from published band positions, "
            "NOT for evidential use.[/]"
        )
    console.print(f"[bold]{library.title or '(untitled)'}[/]")
    console.print(f"version  {library.version}    entries  {len(library)}")
    console.print(
        "classes  " + ", ".join(f"{k}: {v}" for k, v in sorted(library.classes().items()))
    )
    p = library.pipeline
    console.print(
        f"pipeline axis {p.axis_start:g}–{p.axis_stop:g} cm⁻¹ ({p.axis_points} points); "
        f"despike z>{p.despike_threshold:g}; baseline {p.baseline_method} λ={p.baseline_lam:g}; "
        f"broaden {p.broaden_fwhm_cm1:g} cm⁻¹; {p.normalisation} norm; {p.compress} features; "
        f"shift search ±{p.max_shift_cm1:g} cm⁻¹"
    )
    t = library.thresholds
    console.print(
        f"verdicts identify ≥ {t.identify:g}, mixture ≥ {t.mixture:g}, "
        f"inconclusive ≥ {t.inconclusive:g} ({t.calibration})"
    )
    table = Table()
    for column in ("Name", "Class", "CAS", "Control", "Precursor of", "Synonyms"):
        table.add_column(column)
    for entry in library.entries:
        m = entry.metadata
        control = m.get("control")
        table.add_row(
            entry.name,
            str(m.get("class") or ""),
            str(m.get("cas") or ""),
            "; ".join(control) if isinstance(control, list) else str(control or ""),
            ", ".join(m.get("precursor_of") or []),
            ", ".join((m.get("synonyms") or [])[:3]),
        )
    console.print(table)
