"""The FastAPI application factory."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from sqlmodel import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service import __doc__ as _doc
from service import audit
from service.api import errors
from service.api.deps import API_PREFIX, AppState
from service.api.routes import admin, links, login, oversight, records
from service.audit import AuditSettings, CheckpointSigner
from service.core.config import Settings
from service.core.db import check_connection, make_engine, migrate, shared_secret
from service.core.security import password_hasher
from service.linking.precursors import library_relations
from service.web import mount as mount_ui

log = logging.getLogger("service")


class BodyLimit:
    """Answer 413 to bodies over ``limit`` bytes, by header or while streaming."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await _too_large(send, self.limit)
                return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLargeError
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLargeError:
            if not started:
                await _too_large(send, self.limit)


class _TooLargeError(Exception):
    pass


async def _too_large(send: Send, limit: int) -> None:
    body = f'{{"detail":"request body larger than {limit} bytes"}}'.encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class AuditSweeper:
    """Links audit events left pending (a crash between commit and linking, a busy chainer)."""

    def __init__(self, state: AppState, interval_s: float = 1.0) -> None:
        self.state = state
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="audit-sweeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def sweep(self) -> int:
        settings = AuditSettings(
            signer=self.state.signer, checkpoint_every=self.state.settings.checkpoint_every
        )
        with Session(self.state.engine) as session:
            audit.bind(session, settings)
            linked = audit.chain_pending(session, wait=False)
            session.commit()
            return linked

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.sweep()
            except Exception:  # the sweeper must outlive a database hiccup
                log.exception("audit sweeper failed; retrying")


def create_app(settings: Settings | None = None, *, run_migrations: bool = True) -> FastAPI:
    """Build the app: connect, migrate (unless told not to), load keys, mount ``/api/v1``.

    Raises
    ------
    service.errors.ServiceError
        When the database is unreachable, a migration fails or a key cannot be read.
    """
    settings = settings or Settings()
    engine = make_engine(settings.sqlalchemy_url, echo=settings.sql_echo)
    check_connection(engine)
    if run_migrations:
        migrate(engine)
    state = AppState(
        settings=settings,
        engine=engine,
        jwt_secret=settings.secret_key or shared_secret(engine, "jwt"),
        hasher=password_hasher(
            time_cost=settings.argon2_time_cost, memory_kib=settings.argon2_memory_kib
        ),
        signer=CheckpointSigner.load_or_create(settings.signing_key_path),
    )
    sweeper = AuditSweeper(state)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        library_relations()  # load the reference library now, not on the first write
        sweeper.start()
        try:
            yield
        finally:
            sweeper.stop()

    app = FastAPI(
        lifespan=lifespan,
        title="fieldscan seizure log",
        description=(_doc or "").strip(),
        version="1",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    app.state.fieldscan = state
    errors.install(app)
    for module in (login, admin, records, oversight, links):
        app.include_router(module.router, prefix=API_PREFIX)

    @app.get(f"{API_PREFIX}/health", tags=["health"])
    def health() -> dict[str, Any]:
        check_connection(engine)
        return {"status": "ok", "database": engine.dialect.name}

    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    mount_ui(app)
    return app
