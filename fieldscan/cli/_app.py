"""The root typer app and the boundary where errors become one clear line."""

from __future__ import annotations

from collections.abc import Callable

import typer
from rich.console import Console

app = typer.Typer(
    name="fieldscan",
    help="Field drug-testing spectrometers to a seizure log investigators can trust.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


@app.callback()
def _root() -> None:
    """Field drug-testing spectrometers to a seizure log investigators can trust."""


@app.command()
def version() -> None:
    """Print the fieldscan version."""
    from fieldscan import __version__

    typer.echo(__version__)


class UserError(Exception):
    """A mistake in what the user asked for; reported as one line, exit code 2."""


def _known_errors() -> tuple[type[BaseException], ...]:
    from device.errors import DeviceError
    from fieldscan.station.errors import StationError
    from spectra.errors import SpectraError

    known: list[type[BaseException]] = [UserError, SpectraError, DeviceError, StationError, OSError]
    try:
        from service.errors import ServiceError
    except ImportError:  # the service package may not define its errors yet
        pass
    else:
        known.append(ServiceError)
    return tuple(known)


def fail_cleanly(command: Callable[[], object]) -> int:
    """Run ``command`` (the typer app, standalone) and turn known errors into one line on stderr.

    Usage errors are handled by typer itself (exit code 2); ours are caught here.
    """
    try:
        command()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130
    except _known_errors() as exc:
        err_console.print(f"[bold red]error:[/] {exc}", markup=True)
        return 2 if isinstance(exc, UserError) else 1
    return 0
