"""Service errors and database errors as JSON responses with a status."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, IntegrityError, OperationalError

from service.errors import (
    AuditChainError,
    AuthenticationError,
    ConfigError,
    ConflictError,
    DatabaseError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionFailedError,
    PreconditionRequiredError,
    ServiceError,
)

log = logging.getLogger("service")

_STATUS: list[tuple[type[ServiceError], int]] = [
    (NotFoundError, 404),
    (AuthenticationError, 401),
    (PermissionDeniedError, 403),
    (InvalidInputError, 422),
    (ConflictError, 409),
    (PreconditionFailedError, 412),
    (PreconditionRequiredError, 428),
    (DatabaseError, 503),
    (AuditChainError, 500),
    (ConfigError, 500),
]


def status_for(exc: ServiceError) -> int:
    for kind, code in _STATUS:
        if isinstance(exc, kind):
            return code
    return 500


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    async def service_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ServiceError)
        code = status_for(exc)
        body: dict[str, Any]
        if isinstance(exc, InvalidInputError):
            body = {
                "detail": [{"loc": ["body", exc.field], "msg": exc.reason, "type": "value_error"}]
            }
        else:
            body = {"detail": str(exc)}
        headers = {"WWW-Authenticate": "Bearer"} if code == 401 else None
        return JSONResponse(body, status_code=code, headers=headers)

    async def integrity_error(_request: Request, exc: Exception) -> JSONResponse:
        log.info("integrity error: %s", exc)
        return JSONResponse({"detail": "conflicts with stored records"}, status_code=409)

    async def data_error(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(
            {"detail": "a value cannot be stored (invalid characters or range)"}, status_code=422
        )

    async def operational_error(_request: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable: %s", exc)
        return JSONResponse({"detail": "database unavailable, retry later"}, status_code=503)

    async def validation_error(_request: Request, exc: Exception) -> JSONResponse:
        # Field-level messages only: echoing the input could return megabytes of spectrum,
        # or NaN, which JSON cannot carry.
        assert isinstance(exc, RequestValidationError)
        detail = [
            {
                "loc": list(e.get("loc", ())),
                "msg": str(e.get("msg", "")),
                "type": str(e.get("type", "")),
            }
            for e in exc.errors()
        ]
        return JSONResponse({"detail": detail}, status_code=422)

    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(ServiceError, service_error)
    app.add_exception_handler(IntegrityError, integrity_error)
    app.add_exception_handler(DataError, data_error)
    app.add_exception_handler(OperationalError, operational_error)
