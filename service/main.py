"""The FastAPI application factory."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from sqlmodel import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service import __doc__ as _doc
from service import audit
from service.api import errors
from service.api.deps import API_PREFIX, AppState
from service.api.routes import admin, cases, exchange, links, login, oversight, records, sync
from service.audit import AuditSettings, CheckpointSigner
from service.core.config import Settings
from service.core.db import check_connection, make_engine, migrate, shared_secret
from service.core.security import password_hasher
from service.linking.precursors import library_relations
from service.linking.worker import LinkWorker
from service.web import exchange as exchange_ui
from service.web import mount as mount_ui

log = logging.getLogger("service")


class BodyLimit:
    """Answer 413 to bodies over ``limit`` bytes, by header or while streaming.

    ``path_limits`` gives some paths (exchange package imports) their own limit; ``pages``
    gives some (the UI's upload form) their own answer instead of the API's JSON.
    """

    def __init__(
        self,
        app: ASGIApp,
        limit: int,
        path_limits: Mapping[str, int] | None = None,
        pages: Mapping[str, Callable[[Scope, int], ASGIApp]] | None = None,
    ) -> None:
        self.app = app
        self.limit = limit
        self.path_limits = dict(path_limits or {})
        self.pages = dict(pages or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.path_limits.get(scope["path"], self.limit)
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await self._refuse(scope, receive, send, limit)
                return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
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
                await self._refuse(scope, receive, send, limit)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        page = self.pages.get(scope["path"])
        if page is None:
            await _too_large(send, limit)
        else:
            await page(scope, limit)(scope, receive, send)


class _TooLargeError(Exception):
    pass


#: Exchange package imports (API, and the UI's upload form): their own, larger body limit.
EXCHANGE_IMPORT_PATHS = (f"{API_PREFIX}/exchange/imports", "/ui/exchange/import")


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
    link_worker = LinkWorker(engine, AuditSettings(state.signer, settings.checkpoint_every))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        library_relations()  # load the reference library now, not on the first write
        sweeper.start()
        link_worker.start()  # correlates queued seizures right after their commit
        try:
            yield
        finally:
            link_worker.stop()
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
    for module in (login, admin, records, oversight, links, cases, exchange, sync):
        app.include_router(module.router, prefix=API_PREFIX)

    @app.get(f"{API_PREFIX}/health", tags=["health"])
    def health() -> dict[str, Any]:
        check_connection(engine)
        return {"status": "ok", "database": engine.dialect.name}

    app.add_middleware(
        BodyLimit,
        limit=settings.max_body_bytes,
        path_limits=dict.fromkeys(EXCHANGE_IMPORT_PATHS, settings.exchange_max_package_bytes),
        pages={exchange_ui.IMPORT_PATH: exchange_ui.too_large_page},
    )
    mount_ui(app)
    return app
