"""Exchange between agencies (issue 8): partners' keys, packages out and in, provenance.

A refused package answers 422 with ``{"detail": <why>, "reason": <code>, "params": {...}}``
(:class:`~service.exchange.models.ExchangeRefusal`); the codes are those of
:class:`~service.exchange.reasons.PackageRefusal` (``malformed``, ``unknown_signer``,
``bad_signature``, ``tampered_record``, ``wrong_recipient``, ``undecryptable``). An accepted
package's report gives each skipped or rejected record a
:class:`~service.exchange.reasons.RecordReason` code with its ``params`` and ``detail``.
"""

from __future__ import annotations

import tempfile
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from service.api.common import commit, etag, parse_if_match
from service.api.deps import IfMatchDep, SessionDep, StateDep, UserPrincipal
from service.exchange import exporter, importer, partners
from service.exchange.models import (
    ExchangeKeysPublic,
    ExchangePackagePublic,
    ExchangePartnerCreate,
    ExchangePartnerPublic,
    ExchangePartnerUpdate,
    ExchangeProvenancePublic,
    ExchangeRefusal,
    ExportRequest,
    ImportReport,
)
from service.exchange.package import PACKAGE_FORMAT, ExchangeError

router = APIRouter(prefix="/exchange", tags=["exchange"])

PACKAGE_MEDIA_TYPE = "application/json"


def _refused(exc: ExchangeError) -> JSONResponse:
    return JSONResponse(ExchangeRefusal.of(exc).model_dump(mode="json"), status_code=422)


@router.get("/keys", response_model=ExchangeKeysPublic)
def read_keys(session: SessionDep, state: StateDep, principal: UserPrincipal) -> Any:
    """This agency's public exchange keys: give them to partners (out of band)."""
    return partners.agency_keys(
        session=session, actor=principal, key_dir=state.settings.exchange_keys_path
    )


@router.get("/partners", response_model=list[ExchangePartnerPublic])
def list_partners(session: SessionDep, principal: UserPrincipal) -> Any:
    return partners.list_partners(session=session, actor=principal)


@router.post("/partners", status_code=201, response_model=ExchangePartnerPublic)
def register_partner(
    session: SessionDep, principal: UserPrincipal, body: ExchangePartnerCreate
) -> Any:
    """Trust a partner agency's keys (admin). The same keys again change nothing."""
    partner = partners.register_partner(session=session, actor=principal, partner_in=body)
    commit(session)
    return partner


@router.patch("/partners/{partner_agency_id}", response_model=ExchangePartnerPublic)
def update_partner(
    session: SessionDep,
    principal: UserPrincipal,
    partner_agency_id: uuid.UUID,
    body: ExchangePartnerUpdate,
    response: Response,
    if_match: IfMatchDep = None,
) -> Any:
    """Rotate a partner's keys, or revoke (``active: false``) or restore it (admin)."""
    partner = partners.update_partner(
        session=session,
        actor=principal,
        partner_agency_id=partner_agency_id,
        partner_in=body,
        if_match=parse_if_match(if_match),
    )
    commit(session)
    response.headers["ETag"] = etag(partner.version)
    return partner


@router.post(
    "/exports",
    response_class=Response,
    responses={
        200: {
            "content": {PACKAGE_MEDIA_TYPE: {}},
            "description": f"The package file ({PACKAGE_FORMAT}, signed; encrypted unless "
            "`encrypt` is false)",
        }
    },
)
def export_package(
    session: SessionDep, state: StateDep, principal: UserPrincipal, body: ExportRequest
) -> Response:
    """The package of all this agency shares with the partner (investigator, supervisor)."""
    package = exporter.export_package(
        session=session,
        actor=principal,
        partner_agency_id=body.partner_agency_id,
        key_dir=state.settings.exchange_keys_path,
        encrypt=body.encrypt,
        since=body.since,
    )
    commit(session)
    return Response(
        package.data,
        media_type=PACKAGE_MEDIA_TYPE,
        headers={
            "Content-Disposition": f'attachment; filename="{package.filename}"',
            "X-Package-Id": str(package.package_id),
            "X-Record-Count": str(sum(package.counts.values())),
        },
    )


async def package_body(request: Request) -> bytes:
    """The body, spooled to a temporary file past 8 MiB: one copy in memory, not two."""
    with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as spool:
        async for chunk in request.stream():
            spool.write(chunk)
        spool.seek(0)
        return spool.read()


PackageBody = Annotated[bytes, Depends(package_body)]


@router.post(
    "/imports",
    response_model=ImportReport,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                PACKAGE_MEDIA_TYPE: {"schema": {"type": "object"}},
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            },
            "description": "A package file exactly as exported (the request body, not a form).",
        }
    },
    responses={
        413: {"description": "The package is larger than the exchange body limit"},
        422: {
            "model": ExchangeRefusal,
            "description": "The package is refused (nothing written); `reason` says why",
        },
    },
)
def import_package(
    session: SessionDep, state: StateDep, principal: UserPrincipal, data: PackageBody
) -> Any:
    """Verify a partner's package and store its records (investigator, supervisor, admin).

    Nothing is written when the package is refused; the report lists each record's outcome.
    The body may be up to ``FIELDSCAN_EXCHANGE_MAX_PACKAGE_BYTES`` (512 MiB by default, not
    the general ``FIELDSCAN_MAX_BODY_BYTES``); larger ones get 413.
    """
    try:
        report = importer.import_package(
            session=session,
            actor=principal,
            data=data,
            key_dir=state.settings.exchange_keys_path,
        )
    except ExchangeError as exc:
        session.rollback()
        return _refused(exc)
    commit(session)
    return report


@router.get("/packages", response_model=list[ExchangePackagePublic])
def list_packages(session: SessionDep, principal: UserPrincipal) -> Any:
    """Packages this agency issued or received, newest first."""
    return partners.list_packages(session=session, actor=principal)


@router.get("/seizures/{seizure_id}/provenance", response_model=list[ExchangeProvenancePublic])
def seizure_provenance(session: SessionDep, principal: UserPrincipal, seizure_id: uuid.UUID) -> Any:
    """Which partner said what about this seizure and its records, in which package, when."""
    return partners.seizure_provenance(session=session, actor=principal, seizure_id=seizure_id)
