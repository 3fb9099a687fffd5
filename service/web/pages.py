"""What every page of the web UI shares: the signed-in user, rendering, errors, redirects.

Page modules (routes, cases, exchange, alerts) build on these, so a user sees the same
sign-in rules, language and translated errors everywhere.
"""

from __future__ import annotations

import unicodedata
import uuid
from datetime import UTC, date, datetime, time
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session, col, select

from service import crud
from service.api.deps import AppState
from service.api.errors import status_for
from service.errors import InvalidInputError, PermissionDeniedError, ServiceError
from service.models import Agency, User
from service.principal import Principal
from service.web import errortext
from service.web.i18n import Formatter, translations
from service.web.labels import N_
from service.web.render import language_of, render
from service.web.session import principal_of, same_origin, session_user

PREFIX = "/ui"


class Ctx:
    """The signed-in user of a request, with their principal and language."""

    def __init__(self, request: Request, user: User, agency: Agency) -> None:
        self.request = request
        self.user = user
        self.agency = agency
        self.principal: Principal = principal_of(user)
        self.lang = language_of(request)
        self._ = translations(self.lang).gettext
        self.fmt = Formatter(self.lang)

    @property
    def role(self) -> str:
        return str(self.user.role)

    def can(self, roles: frozenset[str]) -> bool:
        return self.role in roles


def login_redirect(request: Request) -> HTTPException:
    target = f"{PREFIX}/login?" + urlencode(
        {"next": request.url.path + (f"?{request.url.query}" if request.url.query else "")}
    )
    return HTTPException(status_code=303, headers={"Location": target, "HX-Redirect": target})


def signed_in(request: Request, session: Session, state: AppState, *, write: bool = False) -> Ctx:
    """The request's user, or a redirect to the login page; ``write`` also checks the origin."""
    if write and not same_origin(request):
        raise HTTPException(status_code=403, detail="cross-site request refused")
    user = session_user(request, session, state)
    if user is None:
        raise login_redirect(request)
    agency = session.get(Agency, user.agency_id)
    if agency is None:  # pragma: no cover - a user always has an agency (foreign key)
        raise login_redirect(request)
    return Ctx(request, user, agency)


def render_page(ctx: Ctx, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A template with the signed-in user, their agency and role in its context."""
    return render(
        ctx.request,
        name,
        status_code,
        user=ctx.user,
        agency=ctx.agency,
        role=ctx.role,
        ctx=ctx,
        **context,
    )


def back_link(ctx: Ctx) -> str | None:
    referer = urlsplit(ctx.request.headers.get("referer", ""))
    if referer.netloc != ctx.request.headers.get("host"):
        return None
    return safe_next(referer.path + (f"?{referer.query}" if referer.query else ""))


def error_page(ctx: Ctx, exc: ServiceError) -> HTMLResponse:
    """A service error as a page in the user's language (never the service's English text)."""
    if isinstance(exc, PermissionDeniedError) and exc.action == crud.SHARED_READ_ONLY:
        # Not a matter of role: the record is another agency's, shared for reading.
        lines = [ctx._(READ_ONLY)]
    else:
        lines = [errortext.message(exc, ctx._)]
    return render_page(ctx, "error.html", status_for(exc), messages=lines, back=back_link(ctx))


def invalid_page(ctx: Ctx, exc: ValueError) -> HTMLResponse:
    """A form the service's models refused (pydantic), one translated line per problem."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return error_page(ctx, InvalidInputError("form", str(exc)))
    lines = errortext.validation_messages(errors(), ctx._)
    return render_page(ctx, "error.html", 422, messages=lines, back=back_link(ctx))


READ_ONLY = N_(
    "Another agency shares this record with yours for reading only: only that agency can change it."
)


def done_redirect(url: str, code: str) -> RedirectResponse:
    """Back to ``url`` after an action, with a confirmation code (never free text: a link
    must not be able to put arbitrary words on a page)."""
    return RedirectResponse(url + ("&" if "?" in url else "?") + urlencode({"done": code}), 303)


def flash_message(ctx: Ctx, table: dict[str, str]) -> str | None:
    """The confirmation named by the ``done`` code of the URL (see :func:`done_redirect`)."""
    code = ctx.request.query_params.get("done")
    return ctx._(table[code]) if code in table else None


def stored_file(data: bytes, filename: str, media_type: str) -> Response:
    """A stored file (an item's photo, a case document) as a download, never shown inline,
    so no uploaded content runs in the page's origin.

    The name keeps only letters, digits and ``._- `` (no quotes, slashes or control
    characters reach the header); a name with non-ASCII letters is also sent UTF-8 encoded
    (RFC 6266), with an ASCII fallback.
    """
    safe = "".join(c for c in filename if c.isalnum() or c in "._- ").strip() or "file"
    disposition = f'attachment; filename="{safe}"'
    if not safe.isascii():
        # Accents dropped for old clients: "España" is "Espana".
        plain = unicodedata.normalize("NFKD", safe).encode("ascii", "ignore").decode()
        fallback = plain.strip() or "file"
        disposition = f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(safe)}"
    return Response(
        data,
        media_type=media_type,
        headers={
            "Content-Disposition": disposition,
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        },
    )


def user_names(
    session: Session, ctx: Ctx, ids: set[uuid.UUID | None]
) -> dict[uuid.UUID | None, str]:
    """Display names of the signed-in agency's users among ``ids`` (others are left out)."""
    wanted = [i for i in ids if i is not None]
    if not wanted:
        return {}
    rows = session.scalars(
        select(User).where(col(User.id).in_(wanted), col(User.agency_id) == ctx.principal.scope)
    ).all()
    return {u.id: u.full_name or u.username for u in rows}


def safe_next(target: str | None) -> str:
    # Only paths of this site: never an absolute URL (open redirect).
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return f"{PREFIX}/seizures"


def parse_date(value: str | None, field: str, *, end: bool = False) -> datetime | None:
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise InvalidInputError(field, "must be a date (YYYY-MM-DD)") from None
    return datetime.combine(day, time.max if end else time.min, tzinfo=UTC)
