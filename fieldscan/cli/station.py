"""``fieldscan station …`` (log at the checkpoint, offline) and ``fieldscan sync …`` (send later).

Everything is written to the station's outbox first (SQLite, WAL) and survives crashes;
``fieldscan sync run`` sends it when the link allows. The outbox lives in
``$FIELDSCAN_OUTBOX`` or ``$XDG_DATA_HOME/fieldscan/station/outbox.sqlite3``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from fieldscan.cli._app import UserError, app, err_console

if TYPE_CHECKING:
    from fieldscan.station.outbox import Outbox

station_app = typer.Typer(
    help="Log seizures, scans, custody events and photos on this station (works offline).",
    no_args_is_help=True,
)
sync_app = typer.Typer(
    help="Send this station's records to the service; see what is pending, sent or refused.",
    no_args_is_help=True,
)
app.add_typer(station_app, name="station")
app.add_typer(sync_app, name="sync")

OUTBOX_ENV = "FIELDSCAN_OUTBOX"
URL_ENV = "FIELDSCAN_SERVICE_URL"
KEY_ENV = "FIELDSCAN_DEVICE_KEY"
SETTING_KEY = "device_key"

OutboxOpt = Annotated[
    Path | None,
    typer.Option("--outbox", help=f"Station outbox file (default ${OUTBOX_ENV} or the data dir)."),
]
LangOpt = Annotated[
    str | None,
    typer.Option("--lang", help="Language of the verdict: en, es, fr, pt (default: locale)."),
]


def default_outbox_path() -> Path:
    """``$FIELDSCAN_OUTBOX``, else ``$XDG_DATA_HOME/fieldscan/station/outbox.sqlite3``."""
    if os.environ.get(OUTBOX_ENV):
        return Path(os.environ[OUTBOX_ENV])
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "fieldscan" / "station" / "outbox.sqlite3"


def open_outbox(path: Path | None) -> Outbox:
    """The station outbox (tests replace this to simulate a full disk)."""
    from fieldscan.station.outbox import Outbox

    return Outbox(path or default_outbox_path())


@contextmanager
def station_errors() -> Iterator[None]:
    """Station errors and bad input as one clear line (the records already kept stay kept).

    Handled here as well as in ``fail_cleanly`` so that in-process runners see the same line.
    """
    from fieldscan.station.errors import StationError

    try:
        yield
    except StationError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", markup=True)
        raise typer.Exit(1) from None
    except ValueError as exc:
        raise UserError(str(exc)) from None


def _language(lang: str | None) -> str:
    from fieldscan.station.wording import check_language, language_from_environment

    try:
        return check_language(lang) if lang is not None else language_from_environment()
    except ValueError as exc:
        raise UserError(str(exc)) from None


def _echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False))


# --------------------------------------------------------------------------- station


@station_app.command("log-seizure")
def log_seizure(
    country: Annotated[str, typer.Option(help="Country of the seizure (ISO 3166 alpha-2).")],
    place: Annotated[str | None, typer.Option(help="Where (town, port, road).")] = None,
    checkpoint: Annotated[str | None, typer.Option(help="Checkpoint name.")] = None,
    transport_mode: Annotated[
        str | None, typer.Option(help="air, sea, road, rail, postal, courier…")
    ] = None,
    concealment: Annotated[str | None, typer.Option(help="Concealment method.")] = None,
    conveyance: Annotated[str | None, typer.Option(help="Vehicle, flight or vessel.")] = None,
    narrative: Annotated[str | None, typer.Option(help="Free-text account.")] = None,
    latitude: Annotated[float | None, typer.Option(help="Latitude, degrees.")] = None,
    longitude: Annotated[float | None, typer.Option(help="Longitude, degrees.")] = None,
    item: Annotated[
        list[str] | None, typer.Option(help="An item's description (repeatable).")
    ] = None,
    outbox: OutboxOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the UUIDs as JSON.")] = False,
) -> None:
    """Record a seizure (and its items) on this station; prints the UUIDs to scan against."""
    from fieldscan.station.capture import Station

    seizure: dict[str, Any] = {
        "country": country.upper(),
        "place": place,
        "checkpoint": checkpoint,
        "transport_mode": transport_mode,
        "concealment_method": concealment,
        "conveyance": conveyance,
        "narrative": narrative,
        "latitude": latitude,
        "longitude": longitude,
    }
    seizure = {k: v for k, v in seizure.items() if v is not None}
    with station_errors(), open_outbox(outbox) as box:
        logged = Station(box).log_seizure(seizure, [{"description": d} for d in item or []])
    if as_json:
        _echo_json({"seizure": logged.seizure, "items": list(logged.items)})
        return
    typer.echo(f"seizure {logged.seizure}")
    for uid, desc in zip(logged.items, item or [], strict=True):
        typer.echo(f"item    {uid}  {desc}")


@station_app.command("log-item")
def log_item(
    seizure: Annotated[str, typer.Argument(help="UUID of the seizure.")],
    description: Annotated[str, typer.Option(help="What the item is.")],
    packaging: Annotated[str | None, typer.Option(help="Packaging.")] = None,
    net_mass: Annotated[float | None, typer.Option(help="Net mass.")] = None,
    gross_mass: Annotated[float | None, typer.Option(help="Gross mass.")] = None,
    mass_unit: Annotated[str | None, typer.Option(help="g, kg, mg, …")] = None,
    unit_count: Annotated[int | None, typer.Option(help="Number of units.")] = None,
    outbox: OutboxOpt = None,
) -> None:
    """Record one more item of a seizure; prints its UUID."""
    from fieldscan.station.capture import Station

    body = {
        "description": description,
        "packaging": packaging,
        "net_mass": net_mass,
        "gross_mass": gross_mass,
        "mass_unit": mass_unit,
        "unit_count": unit_count,
    }
    with station_errors(), open_outbox(outbox) as box:
        uid = Station(box).log_item(seizure, {k: v for k, v in body.items() if v is not None})
    typer.echo(uid)


@station_app.command("custody")
def custody(
    item: Annotated[str, typer.Argument(help="UUID of the item.")],
    kind: Annotated[
        str, typer.Option(help="sealed, handed_over, transferred_to_lab, received, stored, …")
    ],
    seal_number: Annotated[str | None, typer.Option(help="Seal number (for 'sealed').")] = None,
    from_party: Annotated[str | None, typer.Option("--from", help="Handed over by.")] = None,
    to_party: Annotated[str | None, typer.Option("--to", help="Handed over to.")] = None,
    place: Annotated[str | None, typer.Option(help="Where.")] = None,
    notes: Annotated[str | None, typer.Option(help="Notes.")] = None,
    outbox: OutboxOpt = None,
) -> None:
    """Record a custody event of an item; prints its UUID."""
    from fieldscan.station.capture import Station

    with station_errors(), open_outbox(outbox) as box:
        uid = Station(box).log_custody_event(
            item,
            kind,
            seal_number=seal_number,
            from_party=from_party,
            to_party=to_party,
            place=place,
            notes=notes,
        )
    typer.echo(uid)


@station_app.command("photo")
def photo(
    item: Annotated[str, typer.Argument(help="UUID of the item.")],
    file: Annotated[Path, typer.Argument(help="Photo or document file.")],
    outbox: OutboxOpt = None,
) -> None:
    """Attach a photo to an item (kept byte for byte until sent); prints its UUID."""
    from fieldscan.station.capture import Station

    try:
        data = file.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read {file}: {exc.strerror or exc}") from None
    with station_errors(), open_outbox(outbox) as box:
        uid = Station(box).log_photo(item, data, file.name)
    typer.echo(uid)


@station_app.command("scan")
def station_scan(
    port: Annotated[str, typer.Option(help="Serial port of the OBP module.")],
    seizure: Annotated[str, typer.Option(help="UUID of the seizure (from log-seizure).")],
    item: Annotated[
        str | None, typer.Option(help="UUID of an item already logged (else a new item).")
    ] = None,
    description: Annotated[
        str, typer.Option(help="Description of the new item when --item is not given.")
    ] = "sample scanned at the checkpoint",
    baud: Annotated[int, typer.Option(help="Serial line rate, bit/s.")] = 115_200,
    integration_ms: Annotated[float, typer.Option(help="Integration time, ms.")] = 100.0,
    averages: Annotated[int, typer.Option(help="Spectra to average.")] = 1,
    laser_nm: Annotated[float, typer.Option(help="Laser wavelength, nm.")] = 785.0,
    library: Annotated[
        Path | None, typer.Option(help="Reference library file (default: the demo library).")
    ] = None,
    operator: Annotated[str | None, typer.Option(help="Operator name.")] = None,
    place: Annotated[str | None, typer.Option(help="Where the test was made.")] = None,
    lang: LangOpt = None,
    outbox: OutboxOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Guided scan: acquire (with progress), say the verdict in plain words, record it."""
    from device.base import AcquisitionSettings

    language = _language(lang)
    if baud <= 0:
        raise UserError(f"--baud must be positive, got {baud}")
    try:
        settings = AcquisitionSettings(integration_time_ms=integration_ms, averages=averages)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    with station_errors(), open_outbox(outbox) as box:
        # Check the seizure/item before touching the instrument.
        from fieldscan.station.capture import Station

        station = Station(box, operator_name=operator, place=place)
        station.require(seizure, "seizure")
        if item is not None:
            station.require(item, "item")
        lib = _load_library(library)
        result = guided_scan(
            station,
            port=port,
            baud=baud,
            laser_nm=laser_nm,
            settings=settings,
            library=lib,
            seizure=seizure,
            item=item,
            description=description,
            lang=language,
            quiet=as_json,
        )
    if as_json:
        _echo_json(result)


def _load_library(path: Path | None) -> Any:
    from spectra.library import load_demo_library, load_library

    return load_demo_library() if path is None else load_library(path)


def guided_scan(
    station: Any,
    *,
    port: str,
    baud: int,
    laser_nm: float,
    settings: Any,
    library: Any,
    seizure: str,
    item: str | None,
    description: str,
    lang: str,
    quiet: bool = False,
) -> dict[str, Any]:
    """Acquire → identify → word the verdict → log it; returns what was recorded."""
    from device.obp import open_spectrometer
    from fieldscan.station.wording import describe
    from spectra.identify import identify

    with open_spectrometer(port, baudrate=baud, laser_nm=laser_nm) as device:
        if quiet:
            info = device.identify()
            spectrum = device.acquire(settings)
        else:
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
            with Progress(*columns, console=err_console, transient=True) as progress:
                task = progress.add_task("connecting to the instrument…", total=None)
                info = device.identify()
                progress.update(task, description=f"acquiring from {info.model} {info.serial}…")
                spectrum = device.acquire(settings)
    ident = identify(spectrum, library).to_dict()
    words = describe(ident, library.metadata, lang)
    info_json = {
        "device": info.to_dict(),
        "acquisition": spectrum.acquisition.to_dict(),
        "wording": {"lang": lang, "text": words.sentence()},
    }
    logged = station.log_field_test(
        spectrum,
        ident,
        item_uuid=item,
        new_item=None if item is not None else (seizure, {"description": description}),
        station_info=info_json,
    )
    if not quiet:
        print_verdict(words)
        err_console.print(
            f"recorded field test {logged.uuid} (item {logged.item}); "
            "it will be sent with `fieldscan sync run`"
        )
    return {
        "field_test": logged.uuid,
        "item": logged.item,
        "seizure": seizure,
        "spectrum_sha256": logged.spectrum_sha256,
        "verdict": ident["verdict"],
        "wording": words.sentence(),
        "result": ident,
    }


_STYLE = {
    "positive": "bold red",
    "precursor": "bold yellow",
    "negative": "green",
    "identified": "bold yellow",
    "unclear": "bold",
}


def print_verdict(words: Any) -> None:
    """The verdict, large and plain, with what to do next."""
    from rich.console import Console
    from rich.panel import Panel

    lines = [
        f"[{_STYLE.get(words.level, 'bold')}]{words.headline}[/]",
        f"→ {words.next_step}",
        f"[dim]{words.confidence}[/]",
    ]
    if words.demonstration_note:
        lines.append(f"[yellow]{words.demonstration_note}[/]")
    Console(highlight=False).print(Panel("\n".join(lines), expand=False))


# --------------------------------------------------------------------------- sync


def _credentials(box: Outbox, url: str | None, key: str | None) -> tuple[str, str]:
    from fieldscan.station.sync import SETTING_URL

    url = url or os.environ.get(URL_ENV) or box.get_setting(SETTING_URL)
    key = key or os.environ.get(KEY_ENV) or box.get_setting(SETTING_KEY)
    if not url:
        raise UserError(f"no service URL: give --url, set {URL_ENV} or run `fieldscan sync config`")
    if not key:
        raise UserError(
            f"no device key: give --device-key, set {KEY_ENV} or run `fieldscan sync config`"
        )
    return url, key


@sync_app.command("config")
def sync_config(
    url: Annotated[str | None, typer.Option(help="Service base URL, e.g. https://host")] = None,
    device_key: Annotated[
        str | None, typer.Option(help="This station's API key (kept in the outbox file).")
    ] = None,
    outbox: OutboxOpt = None,
) -> None:
    """Remember the service URL and this station's device key."""
    from fieldscan.station.sync import SETTING_URL

    if url is None and device_key is None:
        raise UserError("give --url and/or --device-key")
    if url is not None and not url.startswith(("http://", "https://")):
        raise UserError(f"--url must start with http:// or https://, got {url!r}")
    with station_errors(), open_outbox(outbox) as box:
        if url is not None:
            box.set_setting(SETTING_URL, url)
        if device_key is not None:
            box.set_setting(SETTING_KEY, device_key)
            # The key is a credential: only this user may read the outbox file.
            for path in (box.path, *box.path.parent.glob(box.path.name + "-*")):
                path.chmod(0o600)
    typer.echo("saved")


@sync_app.command("run")
def sync_run(
    once: Annotated[
        bool, typer.Option("--once", help="Send what can be sent now, then exit.")
    ] = False,
    url: Annotated[str | None, typer.Option(help=f"Service base URL (or ${URL_ENV}).")] = None,
    device_key: Annotated[str | None, typer.Option(help=f"Device key (or ${KEY_ENV}).")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds per request.")] = 10.0,
    workers: Annotated[int, typer.Option(help="Parallel connections.")] = 1,
    max_failures: Annotated[
        int, typer.Option(help="With --once: give up after this many failed tries in a row.")
    ] = 6,
    outbox: OutboxOpt = None,
) -> None:
    """Send pending records (parents first), retrying with backoff; never duplicates."""
    from fieldscan.station.sync import SyncClient, pending_summary

    if timeout <= 0 or workers < 1 or max_failures < 1:
        raise UserError("--timeout must be > 0, --workers and --max-failures ≥ 1")
    with station_errors(), open_outbox(outbox) as box:
        base, key = _credentials(box, url, device_key)

        def waiting(seconds: float, why: str) -> None:
            err_console.print(f"{why}; retrying in {seconds:.1f} s (records are kept)")

        with SyncClient(box, base, key, timeout=timeout, workers=workers) as client:
            try:
                report = client.run(once=once, max_failures=max_failures, on_wait=waiting)
            except KeyboardInterrupt:
                err_console.print("sync stopped; unsent records are kept")
                raise typer.Exit(130) from None
        summary = pending_summary(box)
    typer.echo(
        f"sent {report.sent}, refused {report.refused}; now pending {summary['pending']}, "
        f"sent {summary['sent']}, refused {summary['refused']}"
    )
    for uid, reason in report.refused_reasons.items():
        typer.echo(f"refused {uid}: {reason}  (fix with `fieldscan sync correct {uid} …`)")
    if report.last_error:
        err_console.print(
            f"[bold red]error:[/] {report.last_error}; {summary['pending']} record(s) kept "
            "pending: run `fieldscan sync run` again when the service is reachable",
            markup=True,
        )
        raise typer.Exit(1)


@sync_app.command("status")
def sync_status(
    outbox: OutboxOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """What is pending, sent and refused (with the service's reasons)."""
    from fieldscan.station.sync import pending_summary

    with station_errors(), open_outbox(outbox) as box:
        summary = pending_summary(box)
    if as_json:
        _echo_json(summary)
        return
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    console.print(
        f"pending [bold]{summary['pending']}[/]   sent [bold green]{summary['sent']}[/]   "
        f"refused [bold red]{summary['refused']}[/]"
    )
    if summary["refused_records"]:
        table = Table(title="refused by the service (kept; correct and resend)")
        table.add_column("uuid", no_wrap=True, min_width=36)
        table.add_column("kind", no_wrap=True)
        table.add_column("reason", overflow="fold")
        for r in summary["refused_records"]:
            table.add_row(r["uuid"], r["kind"], r["reason"] or "")
        console.print(table)
    blocked = [r for r in summary["pending_records"] if r["waiting_for_refused"]]
    if blocked:
        console.print(f"{len(blocked)} pending record(s) wait for a refused parent to be corrected")
    failing = [r for r in summary["pending_records"] if r["last_error"]]
    if failing:
        console.print(f"last send error: {failing[-1]['last_error']}")
    if summary["last_stop"]:
        console.print(f"last sync stopped: {summary['last_stop']}")
    offset = summary["clock_offset_s"]
    if offset is not None and abs(offset) >= 120:
        console.print(
            f"[yellow]station clock differs from the service by {offset / 60:+.0f} min[/]: "
            "times are kept as recorded on this station; the service stamps its own"
        )


def _set_path(body: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    target: Any = body
    for key in keys[:-1]:
        if not isinstance(target, dict) or key not in target:
            raise UserError(f"--set {dotted}: no field {key!r} in this record")
        target = target[key]
    if not isinstance(target, dict):
        raise UserError(f"--set {dotted}: {keys[-2]!r} is not an object")
    target[keys[-1]] = value


@sync_app.command("correct")
def sync_correct(
    record: Annotated[str, typer.Argument(help="UUID of a refused record.")],
    reason: Annotated[str, typer.Option(help="Why it is changed (kept with the old version).")],
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="FIELD=VALUE (VALUE as JSON if it parses), repeatable."),
    ] = None,
    payload: Annotated[
        Path | None, typer.Option(help="A JSON file with the whole corrected body.")
    ] = None,
    outbox: OutboxOpt = None,
) -> None:
    """Correct a refused record and queue it again (same UUID; the old body is kept)."""
    from fieldscan.station.outbox import RecordStatus

    if (payload is None) == (not set_):
        raise UserError("give --set FIELD=VALUE (repeatable) or --payload FILE.json")
    with station_errors(), open_outbox(outbox) as box:
        current = box.get(record)
        if current.status is not RecordStatus.REFUSED:
            raise UserError(
                f"record {record} is {current.status.value}, not refused: only refused records "
                "can be corrected here (a pending one may already be on the service)"
            )
        if payload is not None:
            try:
                body = json.loads(payload.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise UserError(f"cannot read {payload}: {exc}") from None
            if not isinstance(body, dict):
                raise UserError(f"{payload} must hold a JSON object")
        else:
            body = json.loads(json.dumps(current.payload))
            for assignment in set_ or []:
                field, sep, text = assignment.partition("=")
                if not sep or not field:
                    raise UserError(f"--set wants FIELD=VALUE, got {assignment!r}")
                try:
                    value = json.loads(text)
                except ValueError:
                    value = text
                _set_path(body, field.strip(), value)
        body["id"] = record  # the UUID is the record's identity; a correction keeps it
        box.correct(record, body, reason)
    typer.echo(f"corrected {record}; it will be sent with the next `fieldscan sync run`")
