"""Users and field devices of the caller's agency (role admin) and device API keys."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from service import crud
from service.api.common import commit, etag, idempotent_post, parse_if_match
from service.api.deps import IdempotencyKeyDep, IfMatchDep, SessionDep, StateDep, UserPrincipal
from service.errors import NotFoundError
from service.models import (
    DeviceCreate,
    DeviceKeyCreate,
    DeviceKeyCreated,
    DeviceKeyPublic,
    DevicePublic,
    UserCreate,
    UserPublic,
    UserUpdate,
)
from service.principal import ADMINS

router = APIRouter(tags=["administration"])


@router.get("/users", response_model=list[UserPublic])
def list_users(session: SessionDep, principal: UserPrincipal) -> Any:
    return crud.list_users(session=session, actor=principal)


@router.post("/users", status_code=201, response_model=UserPublic)
def create_user(
    request: Request,
    session: SessionDep,
    state: StateDep,
    principal: UserPrincipal,
    body: UserCreate,
    key: IdempotencyKeyDep = None,
) -> JSONResponse:
    def action() -> tuple[int, Any, dict[str, str]]:
        user = crud.create_user(
            session=session,
            actor=principal,
            agency_id=principal.scope,
            user_in=body,
            hasher=state.hasher,
        )
        return 201, UserPublic.model_validate(user), {"ETag": etag(user.version)}

    return idempotent_post(
        session=session, principal=principal, request=request, key=key, body=body, action=action
    )


@router.get("/users/{user_id}", response_model=UserPublic)
def read_user(
    session: SessionDep, principal: UserPrincipal, user_id: uuid.UUID, response: Response
) -> Any:
    principal.require(ADMINS, "read other users")
    user = crud.get_user(session=session, actor=principal, user_id=user_id)
    response.headers["ETag"] = etag(user.version)
    return user


@router.patch("/users/{user_id}", response_model=UserPublic)
def update_user(
    session: SessionDep,
    state: StateDep,
    principal: UserPrincipal,
    user_id: uuid.UUID,
    body: UserUpdate,
    response: Response,
    if_match: IfMatchDep = None,
) -> Any:
    user = crud.update_user(
        session=session,
        actor=principal,
        user_id=user_id,
        user_in=body,
        if_match=parse_if_match(if_match),
        hasher=state.hasher,
    )
    commit(session)
    response.headers["ETag"] = etag(user.version)
    return user


@router.get("/devices", response_model=list[DevicePublic])
def list_devices(session: SessionDep, principal: UserPrincipal) -> Any:
    return crud.list_devices(session=session, actor=principal)


@router.post("/devices", status_code=201, response_model=DevicePublic)
def create_device(
    request: Request,
    session: SessionDep,
    principal: UserPrincipal,
    body: DeviceCreate,
    key: IdempotencyKeyDep = None,
) -> JSONResponse:
    def action() -> tuple[int, Any, dict[str, str]]:
        device = crud.create_device(
            session=session, actor=principal, agency_id=principal.scope, device_in=body
        )
        return 201, DevicePublic.model_validate(device), {"ETag": etag(device.version)}

    return idempotent_post(
        session=session, principal=principal, request=request, key=key, body=body, action=action
    )


@router.get("/devices/{device_id}", response_model=DevicePublic)
def read_device(session: SessionDep, principal: UserPrincipal, device_id: uuid.UUID) -> Any:
    return crud.get_device(session=session, actor=principal, device_id=device_id)


@router.get("/devices/{device_id}/keys", response_model=list[DeviceKeyPublic])
def list_device_keys(session: SessionDep, principal: UserPrincipal, device_id: uuid.UUID) -> Any:
    principal.require(ADMINS, "list device keys")
    return crud.list_device_keys(session=session, actor=principal, device_id=device_id)


@router.post("/devices/{device_id}/keys", status_code=201, response_model=DeviceKeyCreated)
def create_device_key(
    request: Request,
    session: SessionDep,
    principal: UserPrincipal,
    device_id: uuid.UUID,
    body: DeviceKeyCreate,
    key: IdempotencyKeyDep = None,
) -> JSONResponse:
    """Issue an API key for a field station. The key is in this answer only (and its replays)."""

    def action() -> tuple[int, Any, dict[str, str]]:
        row, secret = crud.create_device_key(
            session=session, actor=principal, device_id=device_id, label=body.label
        )
        return (
            201,
            DeviceKeyCreated(**DeviceKeyPublic.model_validate(row).model_dump(), key=secret),
            {},
        )

    return idempotent_post(
        session=session, principal=principal, request=request, key=key, body=body, action=action
    )


@router.post("/devices/{device_id}/keys/{key_id}/revoke", response_model=DeviceKeyPublic)
def revoke_device_key(
    request: Request,
    session: SessionDep,
    principal: UserPrincipal,
    device_id: uuid.UUID,
    key_id: uuid.UUID,
    key: IdempotencyKeyDep = None,
) -> JSONResponse:
    def action() -> tuple[int, Any, dict[str, str]]:
        row = crud.revoke_device_key(session=session, actor=principal, key_id=key_id)
        if row.device_id != device_id:
            raise NotFoundError("device_key", key_id)
        return 200, DeviceKeyPublic.model_validate(row), {}

    return idempotent_post(
        session=session,
        principal=principal,
        request=request,
        key=key,
        body={"revoke": str(key_id)},
        action=action,
    )
