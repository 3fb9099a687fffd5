"""Browser sessions: the service's JWT in an HttpOnly, SameSite=Strict cookie.

The cookie carries the same short-lived access token the API issues, so the UI and the
API share one authentication and one expiry. Writes from the browser must come from our own
origin (SameSite=Strict, plus an Origin/Referer check against cross-site form posts).
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from fastapi import Request, Response
from sqlmodel import Session

from service import crud
from service.api.deps import AppState
from service.core.security import create_access_token, decode_access_token
from service.errors import AuthenticationError
from service.models import User
from service.principal import Principal

SESSION_COOKIE = "fieldscan_session"


def start_session(response: Response, state: AppState, user: User, *, secure: bool) -> None:
    """Issue a token for ``user`` and set it as the session cookie."""
    minutes = state.settings.access_token_expire_minutes
    token = create_access_token(
        secret=state.jwt_secret, user_id=user.id, expires_delta=timedelta(minutes=minutes)
    )
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=minutes * 60,
        httponly=True,
        samesite="strict",
        secure=secure,
        path="/",
    )


def end_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")


def session_user(request: Request, session: Session, state: AppState) -> User | None:
    """The active user whose valid token is in the cookie, or None."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    try:
        user_id = decode_access_token(secret=state.jwt_secret, token=token)
    except AuthenticationError:
        return None
    user = session.get(User, user_id)
    if user is None or not user.is_active:
        return None
    return user


def principal_of(user: User) -> Principal:
    """The service's principal for ``user``: role checks and agency isolation come from crud."""
    return crud.principal_for_user(user)


def same_origin(request: Request) -> bool:
    """Whether a state-changing request comes from a page of this site."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source:
        # Browsers send Origin on form posts; its absence means a non-browser client,
        # which cannot hold our SameSite=Strict cookie cross-site anyway.
        return True
    host = request.headers.get("host", "")
    return urlsplit(source).netloc == host
