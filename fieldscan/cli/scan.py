"""``fieldscan scan`` — acquire one spectrum from an instrument, identify it, print or save it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from fieldscan.cli._app import UserError, app, err_console

if TYPE_CHECKING:
    from device.base import AcquisitionSettings, DeviceInfo, Spectrometer
    from spectra.spectrum import Spectrum

JCAMP_SUFFIXES = (".jdx", ".dx", ".jcamp")


@app.command()
def scan(
    port: Annotated[
        str | None, typer.Option(help="Serial port of an OBP module (e.g. /dev/ttyUSB0).")
    ] = None,
    ble: Annotated[
        str | None, typer.Option("--ble", help="Bluetooth LE address, instead of --port.")
    ] = None,
    baud: Annotated[int, typer.Option(help="Serial line rate, bit/s.")] = 115_200,
    integration_ms: Annotated[float, typer.Option(help="Integration time, ms.")] = 100.0,
    averages: Annotated[int, typer.Option(help="Spectra to average.")] = 1,
    no_laser: Annotated[bool, typer.Option("--no-laser", help="Leave the laser off.")] = False,
    no_dark: Annotated[
        bool, typer.Option("--no-dark", help="Skip the dark (laser-off) acquisition.")
    ] = False,
    laser_nm: Annotated[float, typer.Option(help="Laser wavelength of the module, nm.")] = 785.0,
    laser_power: Annotated[
        float | None, typer.Option(help="Laser power, fraction of full (0–1), serial only.")
    ] = None,
    timeout: Annotated[
        float | None, typer.Option(help="Seconds the module may take to start answering.")
    ] = None,
    library: Annotated[
        Path | None, typer.Option(help="Reference library file (default: the demo library).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    out: Annotated[
        Path | None, typer.Option(help="Save the spectrum: .jdx (JCAMP-DX) or .csv.")
    ] = None,
) -> None:
    """Acquire a Raman spectrum, identify it against the library, print a summary."""
    from device.base import AcquisitionSettings

    if (port is None) == (ble is None):
        raise UserError("give exactly one of --port PATH or --ble ADDRESS")
    if baud <= 0:
        raise UserError(f"--baud must be positive, got {baud}")
    if not laser_nm > 0:
        raise UserError(f"--laser-nm must be positive, got {laser_nm}")
    if laser_power is not None and not 0.0 <= laser_power <= 1.0:
        raise UserError(f"--laser-power must lie in [0, 1], got {laser_power}")
    if timeout is not None and not timeout > 0:
        raise UserError(f"--timeout must be positive, got {timeout}")
    if out is not None and out.suffix.lower() not in (*JCAMP_SUFFIXES, ".csv"):
        raise UserError(f"--out must end in .jdx or .csv, got {out.name!r}")
    try:
        settings = AcquisitionSettings(
            integration_time_ms=integration_ms,
            averages=averages,
            laser=not no_laser,
            dark_subtract=not no_dark,
        )
    except ValueError as exc:
        raise UserError(str(exc)) from None

    lib = _load_library(library)  # before touching the instrument: fail fast on a bad path
    device = _open(
        port, ble, baud=baud, timeout=timeout, laser_nm=laser_nm, laser_power=laser_power
    )
    with device:
        info, spectrum = _acquire(device, settings, quiet=as_json)
    result = _identify(spectrum, lib)
    if out is not None:
        _save(spectrum, out)
    if as_json:
        typer.echo(json.dumps(_as_json(info, settings, spectrum, result, laser_nm)))
    else:
        _print_summary(info, settings, spectrum, result, out)


def _open(
    port: str | None,
    ble: str | None,
    *,
    baud: int,
    timeout: float | None,
    laser_nm: float,
    laser_power: float | None,
) -> Spectrometer:
    if port is not None:
        from device.obp import open_spectrometer

        return open_spectrometer(
            port, baudrate=baud, timeout=timeout, laser_nm=laser_nm, laser_power=laser_power
        )
    open_ble = ble_function("open_spectrometer")
    assert ble is not None
    device: Spectrometer = open_ble(ble)
    return device


def ble_function(name: str) -> Any:
    """``device.ble.<name>``, imported only when asked for (it pulls in bleak)."""
    import importlib

    try:
        module = importlib.import_module("device.ble")
    except ImportError as exc:
        raise UserError(f"Bluetooth LE support is not available: {exc}") from None
    function = getattr(module, name, None)
    if function is None:
        raise UserError(f"Bluetooth LE support is not available: device.ble has no {name}()")
    return function


def _acquire(
    device: Spectrometer, settings: AcquisitionSettings, *, quiet: bool
) -> tuple[DeviceInfo, Spectrum]:
    if quiet:
        return device.identify(), device.acquire(settings)
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=True) as progress:
        task = progress.add_task("identifying the instrument…", total=None)
        info = device.identify()
        progress.update(task, description=f"acquiring from {info.model} {info.serial}…")
        spectrum = device.acquire(settings)
    return info, spectrum


def _load_library(path: Path | None) -> Any:
    try:
        from spectra.library import load_demo_library, load_library
    except ImportError:
        if path is not None:
            raise UserError("--library needs spectra.library, which is not available") from None
        return None
    return load_demo_library() if path is None else load_library(path)


def _identify(spectrum: Spectrum, library: Any) -> dict[str, Any] | None:
    if library is None:
        return None
    try:
        from spectra.identify import identify
    except ImportError:
        err_console.print("note: identification unavailable (spectra.identify missing)")
        return None
    result: dict[str, Any] = identify(spectrum, library).to_dict()
    return result


def _save(spectrum: Spectrum, path: Path) -> None:
    from spectra.io import write_csv, write_jcamp

    if path.suffix.lower() in JCAMP_SUFFIXES:
        write_jcamp(spectrum, path, form="XYPOINTS")  # the pixel axis is not evenly spaced
    else:
        write_csv(spectrum, path)


def _as_json(
    info: DeviceInfo,
    settings: AcquisitionSettings,
    spectrum: Spectrum,
    result: dict[str, Any] | None,
    laser_nm: float,
) -> dict[str, Any]:
    from device.calibration import wavelength_for_shift

    shift = [float(x) for x in spectrum.axis]
    laser = spectrum.acquisition.laser_nm or info.laser_nm or laser_nm  # BLE modules report it
    return {
        "device": info.to_dict(),
        "settings": {
            "integration_time_ms": settings.integration_time_ms,
            "averages": settings.averages,
            "laser": settings.laser,
            "dark_subtract": settings.dark_subtract,
            "laser_nm": laser,
        },
        "integration_time_us": round(settings.integration_time_ms * 1000),
        "acquisition": spectrum.acquisition.to_dict(),
        "axis": shift,
        "raman_shift_cm1": shift,
        "wavelengths_nm": [float(x) for x in wavelength_for_shift(spectrum.axis, laser)],
        "counts": [float(x) for x in spectrum.intensities],
        "result": result,
    }


def _print_summary(
    info: DeviceInfo,
    settings: AcquisitionSettings,
    spectrum: Spectrum,
    result: dict[str, Any] | None,
    out: Path | None,
) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_row("instrument", f"{info.model}  serial {info.serial}  firmware {info.firmware}")
    table.add_row("port", info.transport)
    table.add_row(
        "acquisition",
        f"{settings.integration_time_ms:g} ms × {settings.averages}"
        f"{'' if settings.laser else ', laser off'}"
        f"{', dark subtracted' if settings.dark_subtract else ''}",
    )
    peak = int(spectrum.intensities.argmax())
    table.add_row(
        "spectrum",
        f"{len(spectrum)} points, {spectrum.axis[0]:.0f}–{spectrum.axis[-1]:.0f} cm⁻¹, "
        f"max {spectrum.intensities[peak]:.0f} counts at {spectrum.axis[peak]:.0f} cm⁻¹",
    )
    if result is not None:
        table.add_row("verdict", f"[bold]{result.get('verdict')}[/]")
        for cand in result.get("candidates", [])[:3]:
            table.add_row("", f"{cand['name']}  {cand['score']:.3f}")
        if result.get("advice"):
            table.add_row("advice", str(result["advice"]))
    else:
        table.add_row("verdict", "(identification unavailable)")
    if out is not None:
        table.add_row("saved", str(out))
    console.print(table)
