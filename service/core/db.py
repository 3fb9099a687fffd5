"""Engine creation for SQLite (embedded) and PostgreSQL, and schema migration with Alembic."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, insert, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlmodel import Session, col

from service.errors import ConfigError, DatabaseError

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def safe_url(url: str) -> str:
    """``url`` without its password, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is reported as given, it holds no parsed password
        return "<unparsable database URL>"


def make_engine(url: str, *, echo: bool = False, pool_size: int = 10) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys and serialised write transactions.

    Raises
    ------
    ConfigError
        When the URL names an unsupported database or the SQLite directory cannot be made.
    """
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise ConfigError(f"invalid database URL: {exc}") from None
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, parsed.database, echo=echo)
    if parsed.get_backend_name() == "postgresql":
        # No pre-ping: it costs a round trip on every checkout (two per write, which checks
        # out again to link the audit chain). A connection the server dropped fails one
        # request; SQLAlchemy then sees the disconnect and discards the whole pool.
        return create_engine(
            url, echo=echo, pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800
        )
    raise ConfigError(
        f"unsupported database {parsed.get_backend_name()!r}: use sqlite or postgresql"
    )


def _sqlite_engine(url: str, database: str | None, *, echo: bool) -> Engine:
    if database and database != ":memory:":
        try:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"cannot create data directory {Path(database).parent}: {exc}"
            ) from None
    engine = create_engine(url, echo=echo, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN IMMEDIATE itself (pysqlite's own
        # deferred BEGIN would let two writers read the same audit chain head).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def alembic_config(engine: Engine) -> Any:
    """A programmatic Alembic config for the migrations shipped inside the package."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (idempotent; safe on every start)."""
    from alembic import command

    try:
        command.upgrade(alembic_config(engine), "head")
    except OperationalError as exc:
        raise DatabaseError(str(exc.orig), url=safe_url(str(engine.url))) from None
    except SQLAlchemyError as exc:
        raise DatabaseError(f"migration failed: {exc}", url=safe_url(str(engine.url))) from None


def check_connection(engine: Engine) -> None:
    """Raise :class:`DatabaseError` unless the database answers."""
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise DatabaseError(reason, url=safe_url(str(engine.url))) from None


def shared_secret(engine: Engine, name: str) -> str:
    """A random secret kept in the database, made by whichever instance asks first."""
    from service.models import ServiceSecret

    with Session(engine) as session:
        query = select(col(ServiceSecret.value)).where(col(ServiceSecret.name) == name)
        found = session.scalar(query)
        if found is not None:
            return str(found)
        try:
            session.execute(insert(ServiceSecret).values(name=name, value=secrets.token_hex(32)))
            session.commit()
        except IntegrityError:  # another instance won the race; use theirs
            session.rollback()
        return str(session.scalars(query).one())
