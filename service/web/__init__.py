"""The supervisor and investigator web UI: server-rendered pages (Jinja2 + htmx) under ``/ui``.

:func:`mount` adds the pages and the static files to the service's app.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"


def mount(app: FastAPI) -> None:
    """Add the UI routes (``/ui/…``), its static files (``/ui/static``) and ``/`` → ``/ui/``.

    Idempotent: a second call on the same app changes nothing.
    """
    from service.web.routes import PREFIX, router

    if getattr(app.state, "web_mounted", False):
        return
    app.state.web_mounted = True

    app.include_router(router)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=STATIC), name="ui-static")
    if not any(getattr(r, "path", None) == "/" for r in app.router.routes):

        @app.get("/", include_in_schema=False)
        def root() -> RedirectResponse:
            return RedirectResponse(f"{PREFIX}/", status_code=303)
