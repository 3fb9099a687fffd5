"""Shared route mechanics: idempotent POSTs, ETags and If-Match."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

import pydantic_core
from fastapi import HTTPException, Request, Response, status
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, SQLModel

from service import audit, crud
from service.audit import canonical_json, sha256_hex
from service.errors import ConflictError
from service.models import IdempotencyRecord
from service.principal import Principal

REPLAYED_HEADER = "Idempotent-Replayed"
log = logging.getLogger("service")


def commit(session: Session) -> None:
    """Commit the request's writes, then link their audit events into the chain.

    Linking is a second, short transaction; if another request is linking right now it
    links ours too. A failure there never undoes the committed change (the sweeper links
    it later), so it is logged, not raised.
    """
    session.commit()
    try:
        if audit.chain_pending(session, wait=False):
            session.commit()
        else:
            session.rollback()
    except SQLAlchemyError:
        log.exception("linking audit events failed; the background sweeper will retry")
        session.rollback()


def etag(version: int) -> str:
    return f'"{version}"'


def parse_if_match(if_match: str | None) -> int:
    """The version in an ``If-Match`` header; 428 when missing, 412 when unreadable."""
    if if_match is None:
        raise HTTPException(
            status.HTTP_428_PRECONDITION_REQUIRED,
            "If-Match header required (the ETag you last read)",
        )
    text = if_match.strip()
    if text.startswith("W/"):
        text = text[2:]
    text = text.strip('"')
    try:
        return int(text)
    except ValueError:
        raise HTTPException(
            status.HTTP_412_PRECONDITION_FAILED, f"If-Match {if_match!r} is not an ETag of this API"
        ) from None


def _replay(record: IdempotencyRecord, fingerprint: str) -> JSONResponse:
    if record.request_sha256 != fingerprint:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            [
                {
                    "loc": ["header", "Idempotency-Key"],
                    "msg": "this key was already used for a different request",
                    "type": "idempotency_key_reused",
                }
            ],
        )
    stored = json.loads(record.response)
    return JSONResponse(
        stored["body"],
        status_code=record.status_code,
        headers={**stored["headers"], REPLAYED_HEADER: "true"},
    )


def idempotent_post(
    *,
    session: Session,
    principal: Principal,
    request: Request,
    key: uuid.UUID | None,
    body: SQLModel | dict[str, Any] | None,
    action: Callable[[], tuple[int, Any, dict[str, str]]],
) -> JSONResponse:
    """Run ``action`` (which writes and returns status, JSON-able body, headers) once per key.

    The key is the ``Idempotency-Key`` header, else the body's ``id``. The first answer is
    stored with the writes in one transaction; a retry with the same key and the same
    request gets that answer again (header ``Idempotent-Replayed: true``); the same key
    with another request is refused with 422. Concurrent first tries are settled by the
    unique constraint on the stored answer (and on the record's id): the loser's writes
    are rolled back and it answers with the winner's result.

    The key is not looked up first: a first try (nearly every request) then costs no
    extra round trip, and a retry fails on the stored answer's (or the record's) unique
    constraint, or on any other error, whereupon the stored answer is looked up and
    replayed; only when there is none does the error stand.
    """
    if key is None and isinstance(body, SQLModel):
        key = getattr(body, "id", None)
    if key is None:
        code, payload, headers = action()
        commit(session)
        return _json_response(_encode(payload), code, headers)
    # pydantic's serialiser is fast and deterministic for a validated body (spectra are big).
    request_repr = body.model_dump_json() if isinstance(body, SQLModel) else canonical_json(body)
    fingerprint = sha256_hex(request.url.path + "\n" + request_repr)
    scope = principal.scope
    try:
        code, payload, headers = action()
        encoded = _encode(payload)
        stored = crud.store_idempotent_response(
            session=session,
            scope=scope,
            key=key,
            method=request.method,
            path=request.url.path,
            request_sha256=fingerprint,
            status_code=code,
            response=f'{{"body":{encoded},"headers":{json.dumps(headers)}}}',
        )
    except Exception:
        winner = _stored_answer(session, scope, key)
        if winner is None:
            raise
        return _replay(winner, fingerprint)
    if not stored:
        session.rollback()
        winner = crud.find_idempotent(session=session, scope=scope, key=key)
        if winner is None:  # the other request failed after all; the client may retry
            raise ConflictError("a concurrent request with this idempotency key failed; retry")
        return _replay(winner, fingerprint)
    commit(session)
    return _json_response(encoded, code, headers)


def _stored_answer(session: Session, scope: uuid.UUID, key: uuid.UUID) -> IdempotencyRecord | None:
    """After a failed try: the answer stored for ``key``, if any (None if it cannot be read)."""
    try:
        session.rollback()
        return crud.find_idempotent(session=session, scope=scope, key=key)
    except SQLAlchemyError:
        log.exception("looking up a stored answer after a failed request failed")
        return None


def _encode(payload: Any) -> str:
    """Compact JSON text of a response body (pydantic's own serialiser for models)."""
    if isinstance(payload, BaseModel):
        return payload.model_dump_json()
    return json.dumps(jsonable_encoder(payload), ensure_ascii=False, separators=(",", ":"))


class _RenderedJSONResponse(JSONResponse):
    """A JSON response whose body is already JSON text (rendered once, stored as is)."""

    def render(self, content: Any) -> bytes:
        return content.encode("utf-8") if isinstance(content, str) else bytes(content)


def _json_response(text: str, code: int, headers: dict[str, str]) -> JSONResponse:
    return _RenderedJSONResponse(text, status_code=code, headers=headers)


class FastJSONRequest(Request):
    """A request whose JSON body is parsed by pydantic-core (four times faster on spectra).

    Floats come out exactly as the standard library parses them; a body it refuses is
    handed to the standard library, whose error (position and all) FastAPI reports.
    """

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                self._json = pydantic_core.from_json(body)
            except ValueError:
                self._json = json.loads(body)  # raises the JSONDecodeError FastAPI expects
        return self._json


class FastJSONRoute(APIRoute):
    """Routes whose request bodies are parsed with :class:`FastJSONRequest`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            return await handler(FastJSONRequest(request.scope, request.receive))

        return route_handler
