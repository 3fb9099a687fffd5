"""The supervisor and investigator web UI: server-rendered pages (Jinja2 + htmx) under ``/ui``.

:func:`mount` adds the pages and the static files to the service's app.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"


def mount(app: FastAPI) -> None:
    """Add the UI routes (``/ui/…``), its static files (``/ui/static``) and ``/`` → ``/ui/``.

    Idempotent: a second call on the same app changes nothing.
    """
    from service.web.alerts import router as alerts_router
    from service.web.cases import router as cases_router
    from service.web.exchange import router as exchange_router
    from service.web.pages import PREFIX
    from service.web.routes import router

    if getattr(app.state, "web_mounted", False):
        return
    app.state.web_mounted = True

    app.include_router(router)
    app.include_router(cases_router)
    app.include_router(alerts_router)
    app.include_router(exchange_router)
    install_error_pages(app)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=STATIC), name="ui-static")
    if not any(getattr(r, "path", None) == "/" for r in app.router.routes):

        @app.get("/", include_in_schema=False)
        def root() -> RedirectResponse:
            return RedirectResponse(f"{PREFIX}/", status_code=303)


def install_error_pages(app: FastAPI) -> None:
    """Errors under ``/ui`` become translated HTML pages; the API keeps its JSON handlers.

    Wraps whatever handlers the app has (the service's), so only UI paths change.
    """
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException as StarletteHTTPException
    from starlette.requests import Request
    from starlette.responses import Response

    from service.errors import ServiceError
    from service.web.errortext import http_message, message, validation_messages
    from service.web.pages import PREFIX
    from service.web.render import language_of, render

    def ui_path(request: Request) -> bool:
        path = request.url.path
        return (path == PREFIX or path.startswith(PREFIX + "/")) and not path.startswith(
            f"{PREFIX}/static/"
        )

    def page(request: Request, status: int, lines: list[str]) -> Response:
        # No user in the header: the failure may be before or about signing in.
        return render(request, "error.html", status, messages=lines, back=None)

    def wrap(kind: type[Exception], ui: Callable[[Request, Exception], Response | None]) -> None:
        fallback = app.exception_handlers.get(kind)

        async def handler(request: Request, exc: Exception) -> Response:
            if ui_path(request):
                response = ui(request, exc)
                if response is not None:
                    return response
            if fallback is None:  # pragma: no cover - FastAPI always registers these
                raise exc
            result = fallback(request, exc)
            return await result if inspect.isawaitable(result) else result

        app.add_exception_handler(kind, handler)

    def http_error(request: Request, exc: Exception) -> Response | None:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code < 400:  # redirects (sign-in) keep their own handling
            return None
        _ = translations(language_of(request)).gettext
        return page(request, exc.status_code, [http_message(exc.status_code, _)])

    def invalid(request: Request, exc: Exception) -> Response | None:
        assert isinstance(exc, RequestValidationError)
        _ = translations(language_of(request)).gettext
        return page(request, 422, validation_messages(exc.errors(), _))

    def service_error(request: Request, exc: Exception) -> Response | None:
        from service.api.errors import status_for

        assert isinstance(exc, ServiceError)
        _ = translations(language_of(request)).gettext
        return page(request, status_for(exc), [message(exc, _)])

    from service.web.i18n import translations

    wrap(StarletteHTTPException, http_error)
    wrap(RequestValidationError, invalid)
    wrap(ServiceError, service_error)
