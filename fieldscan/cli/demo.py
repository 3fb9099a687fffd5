"""``fieldscan demo`` — the whole checkpoint workflow on this machine, nothing else needed.

It starts an emulated OBP Raman module on a pseudo-terminal, the seizure-log service on
SQLite in a temporary directory, and a field station; scans three samples through the
real serial driver; logs a seizure with custody events; syncs; has the service verify its
audit chain; and removes everything it made, also on Ctrl-C or an error.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from fieldscan.cli._app import UserError, app

#: The three samples: label, description for the item, how the emulated module is loaded.
SAMPLES = (
    ("A", "white powder, brick wrapped in tape (pure)", "cocaine hydrochloride", None),
    ("B", "white powder, bag in suitcase lining (cut)", "cocaine hydrochloride", "levamisole"),
    ("C", "off-white tablets, unlabelled bottle", "ibuprofen (not in the library)", None),
)
CUT_FRACTION = 0.4
INTEGRATION_MS = 300.0
BAUD = 115_200


def _sample_spectra() -> dict[str, Any]:
    """Spectra the emulated module looks at: library references, a mixture, an absent substance."""
    from firmware_mocks.obp.samples import mix, resolve_sample
    from spectra.demo import unknown_bands
    from spectra.field import TRUTH_AXIS, truth_from_bands
    from spectra.spectrum import Spectrum

    cocaine = resolve_sample("cocaine hydrochloride")
    levamisole = resolve_sample("levamisole hydrochloride")
    unknown = Spectrum(TRUTH_AXIS, truth_from_bands(unknown_bands()["ibuprofen"]), name="ibuprofen")
    return {"A": cocaine, "B": mix(cocaine, levamisole, CUT_FRACTION), "C": unknown}


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM behaves like Ctrl-C, so the clean-up below runs for both."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@app.command()
def demo(
    lang: Annotated[
        str | None, typer.Option("--lang", help="Verdict language: en, es, fr, pt.")
    ] = None,
    keep_running: Annotated[
        bool,
        typer.Option(help="Keep the service up after the demo (Ctrl-C stops and cleans up)."),
    ] = False,
) -> None:
    """Run the checkpoint workflow end to end: scan three samples, log, sync, verify."""
    from rich.console import Console

    from fieldscan.cli.station import station_errors
    from fieldscan.station.wording import check_language, language_from_environment

    try:
        language = check_language(lang) if lang is not None else language_from_environment()
    except ValueError as exc:
        raise UserError(str(exc)) from None
    console = Console(highlight=False)
    # The service's spectrum read-back trips a harmless pydantic serializer warning.
    warnings.filterwarnings("ignore", message="Pydantic serializer warnings")
    tmp = Path(tempfile.mkdtemp(prefix="fieldscan-demo-"))
    started = time.monotonic()
    try:
        with _terminate_as_interrupt(), station_errors():
            _run(console, tmp, language, keep_running, started)
    except KeyboardInterrupt:
        console.print("demo interrupted; cleaning up")
        raise typer.Exit(130) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


#: Example files shipped with fieldscan (`python -m spectra.demo examples` regenerates them).
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _identify_examples(console: Any, library: Any) -> None:
    """Identify the bundled example files, as `fieldscan identify` would, and show a table."""
    from rich.table import Table

    from spectra.identify import identify_many
    from spectra.io import read_spectrum

    files = sorted(EXAMPLES.glob("*.*"))
    results = identify_many([read_spectrum(f) for f in files], library)
    table = Table(title="Bundled example files (fieldscan identify)")
    table.add_column("file", overflow="fold")
    for column in ("verdict", "found", "score"):
        table.add_column(column)
    for path, result in zip(files, results, strict=True):
        found = result.to_dict()
        table.add_row(
            path.name,
            found["verdict"],
            ", ".join(f"{c['name']} {c['fraction']:.0%}" for c in found["components"]) or "—",
            f"{found['candidates'][0]['score']:.3f}",
        )
    console.print(table)


def _run(console: Any, tmp: Path, lang: str, keep_running: bool, started: float) -> None:
    import httpx
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from device.base import AcquisitionSettings
    from device.obp import open_spectrometer
    from fieldscan.cli.station import print_verdict
    from fieldscan.station.capture import Station
    from fieldscan.station.localservice import bootstrap, login, service_in_thread, verify_audit
    from fieldscan.station.outbox import Outbox
    from fieldscan.station.sync import SyncClient
    from fieldscan.station.wording import describe
    from firmware_mocks.obp import EmulatedModule, ModuleSpec, PtyMock
    from service.core.config import Settings
    from spectra.identify import identify
    from spectra.library import load_demo_library

    library = load_demo_library()
    console.rule("[bold]fieldscan demo[/] — checkpoint workflow")
    console.print(
        f"[yellow]{library.title}[/]: DEMONSTRATION library, synthetic spectra, "
        "NOT for evidential use\n"
    )
    _identify_examples(console, library)
    spectra = _sample_spectra()
    service_dir = tmp / "service"
    settings = Settings(
        data_dir=service_dir,
        # Explicit, so that a DATABASE_URL in the environment is never touched by the demo.
        database_url=f"sqlite:///{service_dir / 'fieldscan.sqlite3'}",
    )
    service_dir.mkdir(parents=True)
    module = EmulatedModule(spectra["A"], ModuleSpec(), seed=7)
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with (
        PtyMock(module) as mock,
        service_in_thread(settings) as url,
        Outbox(tmp / "station" / "outbox.sqlite3") as box,
    ):
        world = bootstrap(settings)
        console.print(f"emulated OBP module on [bold]{mock.path}[/] ({BAUD} baud)")
        console.print(f"seizure-log service on [bold]{url}[/] (SQLite in {service_dir})")
        console.print(f"field station outbox {box.path}\n")
        station = Station(box, operator_name="Officer on duty", place="Km 40 checkpoint")
        seizure = station.log_seizure(
            {
                "country": "PE",
                "place": "Km 40, Panamericana Norte",
                "checkpoint": "Km 40 checkpoint",
                "transport_mode": "road",
                "conveyance": "bus, plate ABC-123",
                "concealment_method": "suitcase lining and luggage",
                "narrative": "Routine bus inspection; three suspect samples found (demo).",
            },
            [{"description": desc} for _, desc, _, _ in SAMPLES],
        )
        rows = []
        settings_acq = AcquisitionSettings(integration_time_ms=INTEGRATION_MS)
        with open_spectrometer(mock.path, baudrate=BAUD) as device:
            info = device.identify()
            for (label, desc, truth, _), item_uuid in zip(SAMPLES, seizure.items, strict=True):
                mock.module.sample = spectra[label]
                with Progress(*columns, console=console, transient=True) as progress:
                    progress.add_task(f"sample {label}: acquiring from {info.model}…", total=None)
                    spectrum = device.acquire(settings_acq)
                result = identify(spectrum, library).to_dict()
                words = describe(result, library.metadata, lang)
                logged = station.log_field_test(
                    spectrum,
                    result,
                    item_uuid=item_uuid,
                    station_info={
                        "device": info.to_dict(),
                        "acquisition": spectrum.acquisition.to_dict(),
                        "wording": {"lang": lang, "text": words.sentence()},
                    },
                )
                console.print(f"[bold]sample {label}[/] — {desc}")
                print_verdict(words)
                station.log_custody_event(item_uuid, "sealed", seal_number=f"PE-KM40-{label}")
                station.log_custody_event(
                    item_uuid,
                    "handed_over",
                    from_party="Officer on duty",
                    to_party="Evidence courier",
                )
                rows.append((label, truth, result, words, logged))

        table = Table(title=f"Verdicts — {library.title}")
        for column in ("sample", "in front of the probe", "verdict", "found", "score"):
            table.add_column(column)
        for label, truth, result, words, _ in rows:
            found = (
                ", ".join(f"{c['name']} {c['fraction']:.0%}" for c in result["components"])
                or f"nothing (closest: {result['candidates'][0]['name']})"
            )
            style = {"positive": "red", "precursor": "yellow"}.get(words.level, "")
            table.add_row(
                label,
                truth,
                f"[{style}]{result['verdict']}[/]" if style else result["verdict"],
                found,
                f"{result['score']:.3f}",
            )
        console.print(table)
        console.print("[yellow]DEMONSTRATION library — not for evidential use[/]\n")

        kinds: dict[str, int] = {}
        for record in box.records():
            kinds[record.kind] = kinds.get(record.kind, 0) + 1
        with SyncClient(box, url, world.device_key) as client:
            report = client.run(once=True, max_failures=3)
        if report.last_error:
            raise UserError(f"sync did not finish: {report.last_error}")
        logged_text = ", ".join(
            f"{n} {k.replace('_', ' ')}{'' if n == 1 else 's'}" for k, n in kinds.items()
        )
        console.print(
            f"synced {report.sent} record(s) to the service (logged on the station: "
            f"{logged_text}); refused {report.refused}"
        )
        token = login(url, world.supervisor, world.password)
        identical = 0
        for *_, logged in rows:
            got = httpx.get(
                f"{url}/api/v1/field-tests/{logged.uuid}",
                headers={"Authorization": f"Bearer {token}"},
                timeout=10,
            ).json()
            identical += got.get("spectrum_sha256") == logged.spectrum_sha256
        console.print(f"raw spectra on the service byte-identical (SHA-256): {identical}/3")
        audit = verify_audit(url, token)
        state = "[bold green]verified[/]" if audit["ok"] else "[bold red]FAILED[/]"
        console.print(
            f"audit chain {state}: {audit['events_checked']} events, "
            f"{audit['versions_checked']} record versions, head {audit['head_hash'][:16]}…"
        )
        elapsed = time.monotonic() - started
        console.rule("summary")
        console.print(
            f"seizure {seizure.seizure}: 3 items scanned, sealed and handed over; "
            f"{report.sent} records synced; audit {'ok' if audit['ok'] else 'NOT ok'}; "
            f"{elapsed:.1f} s"
        )
        console.print(f"service URL: {url}/api/v1/docs (API)")
        console.print(f"web UI: {url}/ui (agency {world.agency_name!r})")
        if not audit["ok"] or report.refused or identical != 3:
            raise UserError("the demo found a problem (see above)")
        if keep_running:
            console.print(
                f"service kept running; log in as {world.supervisor} / {world.password}. "
                "Ctrl-C stops it and removes the temporary files."
            )
            while True:
                time.sleep(1)
        console.print("stopping the service and the emulated module; removing temporary files")
