"""OAuth2 password flow: username and password in, short-lived bearer token out."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.security import OAuth2PasswordRequestForm

from service import crud
from service.api.deps import CurrentUser, SessionDep, StateDep
from service.core.security import create_access_token
from service.errors import AuthenticationError
from service.models import AgencyPublic, Token, UserPublic

router = APIRouter(tags=["login"])


@router.post("/login/access-token")
def login_access_token(
    session: SessionDep, state: StateDep, form_data: Annotated[OAuth2PasswordRequestForm, Depends()]
) -> Token:
    """Exchange credentials for a bearer token (not idempotency-keyed: it writes nothing)."""
    try:
        user = crud.authenticate(
            session=session,
            username=form_data.username,
            password=form_data.password,
            hasher=state.hasher,
        )
    except AuthenticationError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
    token = create_access_token(
        secret=state.jwt_secret,
        user_id=user.id,
        expires_delta=timedelta(minutes=state.settings.access_token_expire_minutes),
    )
    return Token(access_token=token)


@router.get("/users/me", response_model=UserPublic)
def read_user_me(user: CurrentUser) -> UserPublic:
    return UserPublic.model_validate(user)


@router.get("/agencies/me", response_model=AgencyPublic)
def read_agency_me(session: SessionDep, user: CurrentUser) -> AgencyPublic:
    return AgencyPublic.model_validate(
        crud.get_agency(
            session=session, actor=crud.principal_for_user(user), agency_id=user.agency_id
        )
    )
