"""Request dependencies (``Annotated`` aliases): settings, session, caller, headers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Annotated, Any

from argon2 import PasswordHasher
from fastapi import Depends, Header, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from sqlalchemy import Engine
from sqlmodel import Session

from service import audit, crud
from service.audit import AuditSettings, CheckpointSigner
from service.core import authcache
from service.core.config import Settings
from service.core.security import decode_access_token
from service.errors import AuthenticationError
from service.models import User
from service.principal import Principal

API_PREFIX = "/api/v1"
DEVICE_KEY_HEADER = "X-Device-Key"

reusable_oauth2 = OAuth2PasswordBearer(
    tokenUrl=f"{API_PREFIX}/login/access-token", auto_error=False
)
device_key_header = APIKeyHeader(
    name=DEVICE_KEY_HEADER, auto_error=False, description="A field station's API key"
)


@dataclass(frozen=True)
class AppState:
    """What the app is built with; one per app, in ``app.state.fieldscan``."""

    settings: Settings
    engine: Engine
    jwt_secret: str
    hasher: PasswordHasher
    signer: CheckpointSigner


# The cheap dependencies are coroutines: FastAPI runs a plain function in its thread pool,
# and each hop there costs more than the work. Database work stays in the thread pool.


async def get_state(request: Request) -> AppState:
    return request.app.state.fieldscan  # type: ignore[no-any-return]


StateDep = Annotated[AppState, Depends(get_state)]


async def get_db(state: StateDep) -> AsyncGenerator[Session, None]:
    # Opening a session does no I/O; the endpoint uses it in its worker thread.
    session = Session(state.engine, expire_on_commit=False)
    audit.bind(
        session,
        AuditSettings(signer=state.signer, checkpoint_every=state.settings.checkpoint_every),
    )
    try:
        yield session
    finally:
        # Leaving without commit rolls back (a round trip, so in the thread pool): an error
        # never leaves half a write behind. After a commit there is nothing to send.
        if session.in_transaction():
            await run_in_threadpool(session.close)
        else:
            session.close()


SessionDep = Annotated[Session, Depends(get_db)]
TokenDep = Annotated[str | None, Depends(reusable_oauth2)]
DeviceKeyDep = Annotated[str | None, Depends(device_key_header)]


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail=detail,
        headers={"WWW-Authenticate": "Bearer"},
    )


def get_current_user(session: SessionDep, state: StateDep, token: TokenDep) -> User:
    if not token:
        raise _unauthorized("not authenticated")
    try:
        user_id = decode_access_token(secret=state.jwt_secret, token=token)
    except AuthenticationError as exc:
        raise _unauthorized(str(exc)) from None
    user = session.get(User, user_id)
    if user is None or not user.is_active:
        raise _unauthorized("user unknown or disabled")
    return user


async def get_principal(
    session: SessionDep, state: StateDep, token: TokenDep, device_key: DeviceKeyDep
) -> Principal:
    """A device key (field stations) or a bearer token (people)."""
    if device_key:
        # Per database: apps of one process (tests, tools) never share an answer.
        cache_key = f"{state.settings.sqlalchemy_url}\n{device_key}"
        cached = authcache.device_keys.get(cache_key)
        if cached is not None:
            return cached
        generation = authcache.device_keys.generation()
        try:
            principal = await run_in_threadpool(
                crud.principal_for_device_key, session=session, key=device_key
            )
        except AuthenticationError as exc:
            raise _unauthorized(str(exc)) from None
        # Valid keys only, briefly: see service.core.authcache for the revocation bound.
        authcache.device_keys.put(cache_key, principal, generation=generation)
        return principal
    user = await run_in_threadpool(get_current_user, session, state, token)
    return crud.principal_for_user(user)


CurrentUser = Annotated[User, Depends(get_current_user)]
CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


async def get_user_principal(user: CurrentUser) -> Principal:
    return crud.principal_for_user(user)


#: People only (no device keys): administration, approvals, audit.
UserPrincipal = Annotated[Principal, Depends(get_user_principal)]

IdempotencyKeyDep = Annotated[
    uuid.UUID | None,
    Header(
        alias="Idempotency-Key",
        description="Client-generated UUID; a retry with the same key returns the first answer. "
        "Defaults to the body's `id` when that is given.",
    ),
]
IfMatchDep = Annotated[
    str | None,
    Header(alias="If-Match", description="The ETag last read; a stale one gets 412. Required."),
]


async def raw_json_body(request: Request) -> Any:
    """The request body parsed as JSON, before model validation (for verbatim storage)."""
    try:
        return await request.json()
    except ValueError:
        return None


RawBodyDep = Annotated[Any, Depends(raw_json_body)]
