"""``fieldscan serve`` — run the seizure log service (SQLite in a data directory by default)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fieldscan.cli._app import UserError, app

DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Where the SQLite database and the checkpoint key live "
        "(default $FIELDSCAN_DATA_DIR or ~/.local/share/fieldscan).",
        file_okay=False,
    ),
]


def load_settings(data_dir: Path | None) -> object:
    """Settings from the environment, with ``--data-dir`` taking precedence."""
    from pydantic import ValidationError

    from service.core.config import Settings

    try:
        settings = Settings() if data_dir is None else Settings(data_dir=data_dir)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise UserError(
            f"invalid setting {'.'.join(map(str, first['loc']))}: {first['msg']}"
        ) from None
    return settings


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    data_dir: DataDirOption = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            help="Server processes. With PostgreSQL, one per CPU core (each process runs "
            "Python on one core); SQLite gains nothing from more than one.",
        ),
    ] = 1,
) -> None:
    """Start the seizure log service; the database is created and migrated on first run.

    DATABASE_URL=postgresql+psycopg://user@host/db switches from SQLite to PostgreSQL.
    """
    import uvicorn

    from service.core.db import safe_url
    from service.main import create_app

    settings = load_settings(data_dir)
    # Built here even with several workers: migrations, keys and any error happen once, up front.
    application = create_app(settings)  # type: ignore[arg-type]  # (the web UI included)
    typer.echo(
        f"fieldscan service on http://{host}:{port}/api/v1 "
        f"(database {safe_url(settings.sqlalchemy_url)}, {workers} worker(s))",  # type: ignore[attr-defined]
        err=True,
    )
    if workers == 1:
        uvicorn.run(application, host=host, port=port, log_level=log_level)
        return
    import os

    application.state.fieldscan.engine.dispose()  # each worker opens its own connections
    if data_dir is not None:  # the workers read their settings from the environment
        os.environ["FIELDSCAN_DATA_DIR"] = str(data_dir)
    uvicorn.run(
        "service.main:create_app",
        factory=True,
        host=host,
        port=port,
        log_level=log_level,
        workers=workers,
    )
