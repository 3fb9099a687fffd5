"""``fieldscan devices`` — serial ports (and which answer as OBP spectrometers), or BLE devices."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from fieldscan.cli._app import UserError, app


@app.command()
def devices(
    port: Annotated[
        list[str] | None,
        typer.Option(help="Also probe this path (repeatable), e.g. a pty from the mock."),
    ] = None,
    probe: Annotated[
        bool, typer.Option(help="Ask each port for an OBP identity (model, serial).")
    ] = True,
    baud: Annotated[int, typer.Option(help="Serial line rate for probing, bit/s.")] = 115_200,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each port.")] = 0.5,
    ble: Annotated[
        bool, typer.Option("--ble", help="Discover Bluetooth LE spectrometers instead.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """List serial ports and the OBP spectrometers that answer on them."""
    if not timeout > 0:
        raise UserError(f"--timeout must be positive, got {timeout}")
    if baud <= 0:
        raise UserError(f"--baud must be positive, got {baud}")
    rows = _ble_rows(timeout) if ble else _serial_rows(port or [], probe, baud, timeout)
    if as_json:
        typer.echo(json.dumps(rows))
        return
    if not rows:
        typer.echo("no devices found")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table()
    for key in rows[0]:
        table.add_column(key)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row.values()))
    Console(highlight=False).print(table)


def _serial_rows(extra: list[str], probe: bool, baud: int, timeout: float) -> list[dict[str, Any]]:
    from serial.tools import list_ports

    rows: dict[str, dict[str, Any]] = {}
    for info in sorted(list_ports.comports(), key=lambda p: p.device):
        rows[info.device] = {"port": info.device, "description": info.description}
    for path in extra:
        rows.setdefault(path, {"port": path, "description": "given with --port"})
    for row in rows.values():
        row.update(_probe(row["port"], baud, timeout) if probe else {})
    return list(rows.values())


def _probe(port: str, baud: int, timeout: float) -> dict[str, Any]:
    from device.errors import DeviceError
    from device.obp import open_spectrometer

    try:
        with open_spectrometer(
            port, baudrate=baud, timeout=timeout, retries=0, reconnect_timeout=0
        ) as dev:
            info = dev.identify()
    except DeviceError as exc:
        reason = str(exc).removeprefix(f"{port}: ")
        return {"model": None, "serial": None, "status": reason}
    return {"model": info.model, "serial": info.serial, "status": "OBP spectrometer"}


def _ble_rows(timeout: float) -> list[dict[str, Any]]:
    from fieldscan.cli.scan import ble_function

    found = ble_function("discover")(timeout=timeout)
    rows = []
    for item in found:
        to_dict = getattr(item, "to_dict", None)
        rows.append(dict(to_dict()) if callable(to_dict) else {"device": str(item)})
    return rows
