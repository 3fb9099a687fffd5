"""``fieldscan mock`` — emulated instruments for tests and demonstrations.

``fieldscan mock serial --pty`` prints the device path on its first line of
stdout, then serves an emulated OBP Raman module until SIGTERM or SIGINT.
Other transports add their subcommands to :data:`mock_app`.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer

from fieldscan.cli._app import UserError, app

mock_app = typer.Typer(
    help="Emulated instruments (a serial OBP module on a pseudo-terminal, …).",
    no_args_is_help=True,
)
app.add_typer(mock_app, name="mock")


@mock_app.command("serial")
def mock_serial(
    pty: Annotated[bool, typer.Option("--pty", help="Serve on a new pseudo-terminal.")] = False,
    sample: Annotated[
        str | None,
        typer.Option(help="Library sample name or spectrum file (default: cocaine_hcl)."),
    ] = None,
    cut: Annotated[
        str | None, typer.Option(help="Cutting agent mixed into the sample (library name).")
    ] = None,
    cut_fraction: Annotated[float, typer.Option(help="Fraction of the cutting agent.")] = 0.3,
    fluorescence: Annotated[
        float, typer.Option(help="Fluorescence background, counts/ms at its peak.")
    ] = 12.0,
    laser_nm: Annotated[float, typer.Option(help="Laser wavelength, nm.")] = 785.0,
    fault: Annotated[
        list[str] | None,
        typer.Option(
            help="Inject a fault (repeatable): corrupt[:N], badfooter[:N], drop[:N], "
            "garbage[:N], notready[:N], dead[:N], slow:S, chunk1, vanish[:S]."
        ),
    ] = None,
    link: Annotated[
        Path | None,
        typer.Option(help="Keep this symlink pointing at the pty (stable path across vanish)."),
    ] = None,
    baud: Annotated[
        int | None, typer.Option(help="Pace replies at this rate (default: the host's rate).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Noise seed, for repeatable spectra.")] = None,
    control_stdin: Annotated[
        bool,
        typer.Option(
            "--control-stdin",
            help="Read run-time commands from stdin: 'fault SPEC', 'clear', 'sample NAME'.",
        ),
    ] = False,
) -> None:
    """Emulate an OBP Raman module; print its device path, serve until terminated."""
    from firmware_mocks.obp import EmulatedModule, Faults, ModuleSpec, PtyMock, parse_fault
    from firmware_mocks.obp.samples import mix, resolve_sample

    if not pty:
        raise UserError("only --pty is supported: pass --pty")
    if not laser_nm > 0:
        raise UserError(f"--laser-nm must be positive, got {laser_nm}")
    if baud is not None and baud <= 0:
        raise UserError(f"--baud must be positive, got {baud}")
    if fluorescence < 0:
        raise UserError(f"--fluorescence must be >= 0, got {fluorescence}")
    try:
        specs = [parse_fault(f) for f in fault or []]
        spectrum = resolve_sample(sample)
        if cut is not None:
            spectrum = mix(spectrum, resolve_sample(cut), cut_fraction)
    except ValueError as exc:
        raise UserError(str(exc)) from None

    spec = ModuleSpec(laser_nm=laser_nm, fluorescence_rate=fluorescence)
    module = EmulatedModule(spectrum, spec, seed=seed)
    mock = PtyMock(module, Faults(specs), link=link, baudrate=baud)
    stop = threading.Event()

    def _on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    mock.start()
    try:
        sys.stdout.write(mock.path + "\n")
        sys.stdout.flush()
        if control_stdin:
            threading.Thread(target=_control, args=(mock, stop), daemon=True).start()
        while not stop.wait(0.2) and not mock.wait(0):
            pass
    finally:
        mock.stop()
    if mock.error is not None:
        typer.echo(f"error: mock stopped: {mock.error!r}", err=True)
        raise typer.Exit(1)


@mock_app.command("ble")
def mock_ble(
    acquisitions: Annotated[int, typer.Option(help="Spectra the demo central takes.")] = 1,
    integration_ms: Annotated[float, typer.Option(help="Integration time, ms.")] = 100.0,
    mtu: Annotated[int, typer.Option(help="ATT MTU the central asks for.")] = 247,
    sample: Annotated[str | None, typer.Option(help="Library sample name.")] = None,
) -> None:
    """Run the BLE mock and a demo central on one in-process virtual link."""
    try:
        from firmware_mocks.ble.standalone import run_standalone
    except ImportError as exc:
        raise UserError(f"the Bluetooth LE mock is not available: {exc}") from None
    try:
        status = run_standalone(
            acquisitions=acquisitions, integration_time_ms=integration_ms, mtu=mtu, sample=sample
        )
    except ValueError as exc:
        raise UserError(str(exc)) from None
    raise typer.Exit(status)


def _control(mock: object, stop: threading.Event) -> None:
    """Apply run-time commands from stdin; report each on stderr."""
    from firmware_mocks.obp import PtyMock
    from firmware_mocks.obp.samples import resolve_sample

    assert isinstance(mock, PtyMock)
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        try:
            match words:
                case ["fault", spec]:
                    mock.faults.set(spec)
                case ["clear"]:
                    mock.faults.clear()
                case ["sample", name]:
                    mock.module.sample = resolve_sample(name)
                case ["quit"]:
                    stop.set()
                    return
                case _:
                    raise ValueError(f"unknown command {line.strip()!r}")
        except ValueError as exc:
            print(f"mock: {exc}", file=sys.stderr, flush=True)
        else:
            print(f"mock: ok {line.strip()}", file=sys.stderr, flush=True)
