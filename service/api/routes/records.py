"""Seizures, their items, field tests, custody events, laboratory results and attachments."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile
from fastapi.responses import JSONResponse

from service import crud
from service.api.common import FastJSONRoute, commit, etag, idempotent_post, parse_if_match
from service.api.deps import (
    CurrentPrincipal,
    IdempotencyKeyDep,
    IfMatchDep,
    RawBodyDep,
    SessionDep,
    StateDep,
)
from service.models import (
    Approval,
    ApprovalPublic,
    AttachmentPublic,
    CustodyEventCreate,
    CustodyEventPublic,
    Discrepancy,
    FieldTestCreate,
    FieldTestPublic,
    ItemCreate,
    ItemPublic,
    ItemUpdate,
    LabResultCreate,
    LabResultPublic,
    SeizureCreate,
    SeizurePublic,
    SeizuresPublic,
    SeizureStatus,
    SeizureUpdate,
    TransportMode,
    Verdict,
)

# Station bodies carry spectra: parse them with pydantic-core (see FastJSONRoute).
router = APIRouter(tags=["records"], route_class=FastJSONRoute)

_202: dict[int | str, dict[str, Any]] = {
    202: {"model": ApprovalPublic, "description": "Filed for a supervisor's approval (four eyes)"}
}


# --------------------------------------------------------------------------- seizures


@router.post("/seizures", status_code=201, response_model=SeizurePublic)
def create_seizure(
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    body: SeizureCreate,
    key: IdempotencyKeyDep = None,
) -> JSONResponse:
    def action() -> tuple[int, Any, dict[str, str]]:
        seizure = crud.create_seizure(session=session, actor=principal, seizure_in=body)
        return 201, SeizurePublic.model_validate(seizure), {"ETag": etag(seizure.version)}

    return idempotent_post(
        session=session, principal=principal, request=request, key=key, body=body, action=action
    )


@router.get("/seizures", response_model=SeizuresPublic)
def list_seizures(
    session: SessionDep,
    principal: CurrentPrincipal,
    date_from: datetime | None = None,
    date_to: datetime | None = None,
    substance: Annotated[str | None, Query(max_length=200)] = None,
    verdict: Verdict | None = None,
    agency_id: uuid.UUID | None = None,
    country: Annotated[str | None, Query(pattern=r"^[A-Za-z]{2}$")] = None,
    transport_mode: TransportMode | None = None,
    status: SeizureStatus | None = None,
    q: Annotated[
        str | None,
        Query(min_length=2, max_length=200, description="Text in narratives and item descriptions"),
    ] = None,
    skip: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Any:
    filters = crud.SeizureFilter(
        date_from=date_from,
        date_to=date_to,
        substance=substance,
        verdict=verdict,
        agency_id=agency_id,
        country=country,
        transport_mode=transport_mode.value if transport_mode else None,
        status=status.value if status else None,
        q=q,
    )
    rows, more = crud.list_seizures(
        session=session, actor=principal, filters=filters, skip=skip, limit=limit
    )
    return SeizuresPublic(data=[SeizurePublic.model_validate(r) for r in rows], has_more=more)


@router.get("/seizures/{seizure_id}", response_model=SeizurePublic)
def read_seizure(
    session: SessionDep, principal: CurrentPrincipal, seizure_id: uuid.UUID, response: Response
) -> Any:
    seizure = crud.get_seizure(session=session, actor=principal, seizure_id=seizure_id)
    response.headers["ETag"] = etag(seizure.version)
    return seizure


@router.patch("/seizures/{seizure_id}", response_model=SeizurePublic)
def update_seizure(
    session: SessionDep,
    principal: CurrentPrincipal,
    seizure_id: uuid.UUID,
    body: SeizureUpdate,
    response: Response,
    if_match: IfMatchDep = None,
) -> Any:
    """Make a new version (the old one stays in the history) with the given reason."""
    seizure = crud.update_seizure(
        session=session,
        actor=principal,
        seizure_id=seizure_id,
        seizure_in=body,
        if_match=parse_if_match(if_match),
    )
    commit(session)
    response.headers["ETag"] = etag(seizure.version)
    return seizure


# --------------------------------------------------------------------------- items


@router.post("/seizures/{seizure_id}/items", status_code=201, response_model=ItemPublic)
def create_item(
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    seizure_id: uuid.UUID,
    body: ItemCreate,
    key: IdempotencyKeyDep = None,
) -> JSONResponse:
    def action() -> tuple[int, Any, dict[str, str]]:
        item = crud.create_item(
            session=session, actor=principal, seizure_id=seizure_id, item_in=body
        )
        return 201, ItemPublic.model_validate(item), {"ETag": etag(item.version)}

    return idempotent_post(
        session=session, principal=principal, request=request, key=key, body=body, action=action
    )


@router.get("/seizures/{seizure_id}/items", response_model=list[ItemPublic])
def list_items(session: SessionDep, principal: CurrentPrincipal, seizure_id: uuid.UUID) -> Any:
    return crud.list_items(session=session, actor=principal, seizure_id=seizure_id)


@router.get("/items/{item_id}", response_model=ItemPublic)
def read_item(
    session: SessionDep, principal: CurrentPrincipal, item_id: uuid.UUID, response: Response
) -> Any:
    item = crud.get_item(session=session, actor=principal, item_id=item_id)
    response.headers["ETag"] = etag(item.version)
    return item


@router.patch("/items/{item_id}", response_model=ItemPublic, responses=_202)
def update_item(
    session: SessionDep,
    principal: CurrentPrincipal,
    item_id: uuid.UUID,
    body: ItemUpdate,
    if_match: IfMatchDep,
) -> JSONResponse:
    """Change an item; a change of a recorded mass or substance is filed for approval (202)."""
    result = crud.update_item(
        session=session,
        actor=principal,
        item_id=item_id,
        item_in=body,
        if_match=parse_if_match(if_match),
    )
    commit(session)
    if isinstance(result, Approval):
        return JSONResponse(
            ApprovalPublic.model_validate(result).model_dump(mode="json"), status_code=202
        )
    return JSONResponse(
        ItemPublic.model_validate(result).model_dump(mode="json"),
        headers={"ETag": etag(result.version)},
    )


# --------------------------------------------------------------------------- field tests


@router.post("/items/{item_id}/field-tests", status_code=201, response_model=FieldTestPublic)
def create_field_test(
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    item_id: uuid.UUID,
    body: FieldTestCreate,
    raw: RawBodyDep,
    key: IdempotencyKeyDep = None,
) -> JSONResponse:
    """Log a field test: raw spectrum (stored losslessly) and the matcher's result verbatim."""
    identification = raw.get("identification") if isinstance(raw, dict) else None

    def action() -> tuple[int, Any, dict[str, str]]:
        test = crud.create_field_test(
            session=session,
            actor=principal,
            item_id=item_id,
            test_in=body,
            identification_raw=identification,
        )
        # The answer leaves the spectrum out (the client has it); GET returns it.
        return 201, crud.field_test_public(test, with_spectrum=False), {"ETag": etag(test.version)}

    return idempotent_post(
        session=session, principal=principal, request=request, key=key, body=body, action=action
    )


@router.get("/items/{item_id}/field-tests", response_model=list[FieldTestPublic])
def list_field_tests(
    session: SessionDep,
    principal: CurrentPrincipal,
    item_id: uuid.UUID,
    with_spectrum: bool = False,
) -> Any:
    tests = crud.list_field_tests(session=session, actor=principal, item_id=item_id)
    return [crud.field_test_public(t, with_spectrum=with_spectrum) for t in tests]


@router.get("/field-tests/{test_id}", response_model=FieldTestPublic)
def read_field_test(session: SessionDep, principal: CurrentPrincipal, test_id: uuid.UUID) -> Any:
    return crud.field_test_public(
        crud.get_field_test(session=session, actor=principal, test_id=test_id)
    )


# --------------------------------------------------------------------------- custody


@router.post(
    "/items/{item_id}/custody-events",
    status_code=201,
    response_model=CustodyEventPublic,
    responses=_202,
)
def create_custody_event(
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    item_id: uuid.UUID,
    body: CustodyEventCreate,
    key: IdempotencyKeyDep = None,
) -> JSONResponse:
    """Record a custody event; 'destroyed' is filed for a supervisor's approval (202)."""

    def action() -> tuple[int, Any, dict[str, str]]:
        result = crud.create_custody_event(
            session=session, actor=principal, item_id=item_id, event_in=body
        )
        if isinstance(result, Approval):
            return 202, ApprovalPublic.model_validate(result), {}
        return 201, CustodyEventPublic.model_validate(result), {"ETag": etag(result.version)}

    return idempotent_post(
        session=session, principal=principal, request=request, key=key, body=body, action=action
    )


@router.get("/items/{item_id}/custody-events", response_model=list[CustodyEventPublic])
def list_custody_events(
    session: SessionDep, principal: CurrentPrincipal, item_id: uuid.UUID
) -> Any:
    """The custody timeline of an item, oldest first."""
    return crud.list_custody_events(session=session, actor=principal, item_id=item_id)


# --------------------------------------------------------------------------- laboratory


@router.post("/items/{item_id}/lab-results", status_code=201, response_model=LabResultPublic)
def create_lab_result(
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    item_id: uuid.UUID,
    body: LabResultCreate,
    key: IdempotencyKeyDep = None,
) -> JSONResponse:
    def action() -> tuple[int, Any, dict[str, str]]:
        result = crud.create_lab_result(
            session=session, actor=principal, item_id=item_id, result_in=body
        )
        return 201, LabResultPublic.model_validate(result), {"ETag": etag(result.version)}

    return idempotent_post(
        session=session, principal=principal, request=request, key=key, body=body, action=action
    )


@router.get("/items/{item_id}/lab-results", response_model=list[LabResultPublic])
def list_lab_results(session: SessionDep, principal: CurrentPrincipal, item_id: uuid.UUID) -> Any:
    return crud.list_lab_results(session=session, actor=principal, item_id=item_id)


@router.get("/items/{item_id}/discrepancies", response_model=list[Discrepancy])
def item_discrepancies(
    session: SessionDep, state: StateDep, principal: CurrentPrincipal, item_id: uuid.UUID
) -> Any:
    """Each laboratory result of the item compared with the field record."""
    return crud.item_discrepancies(
        session=session,
        actor=principal,
        item_id=item_id,
        tolerance_percent=state.settings.mass_tolerance_percent,
    )


@router.get("/discrepancies", response_model=list[Discrepancy])
def list_discrepancies(
    session: SessionDep,
    state: StateDep,
    principal: CurrentPrincipal,
    only_flagged: bool = True,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> Any:
    """Identity differs or mass lost beyond the tolerance, over the agency's items."""
    return crud.list_discrepancies(
        session=session,
        actor=principal,
        tolerance_percent=state.settings.mass_tolerance_percent,
        only_flagged=only_flagged,
        limit=limit,
    )


# --------------------------------------------------------------------------- attachments


@router.post("/items/{item_id}/attachments", status_code=201, response_model=AttachmentPublic)
def create_attachment(
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    item_id: uuid.UUID,
    file: Annotated[UploadFile, File(description="Photo or document")],
    attachment_id: Annotated[uuid.UUID | None, Form(alias="id")] = None,
    key: IdempotencyKeyDep = None,
) -> JSONResponse:
    """Attach a photo or document; bytes are stored once, addressed by their SHA-256."""
    data = file.file.read()
    filename = file.filename or "file"
    media_type = file.content_type or "application/octet-stream"
    from service.audit import sha256_hex

    fingerprint = {
        "item_id": str(item_id),
        "filename": filename,
        "sha256": sha256_hex(data),
        "id": str(attachment_id) if attachment_id else None,
    }
    if key is None:
        key = attachment_id

    def action() -> tuple[int, Any, dict[str, str]]:
        row = crud.add_attachment(
            session=session,
            actor=principal,
            item_id=item_id,
            filename=filename,
            media_type=media_type,
            data=data,
            attachment_id=attachment_id,
        )
        return 201, AttachmentPublic.model_validate(row), {}

    return idempotent_post(
        session=session,
        principal=principal,
        request=request,
        key=key,
        body=fingerprint,
        action=action,
    )


@router.get("/items/{item_id}/attachments", response_model=list[AttachmentPublic])
def list_attachments(session: SessionDep, principal: CurrentPrincipal, item_id: uuid.UUID) -> Any:
    return crud.list_attachments(session=session, actor=principal, item_id=item_id)


@router.get("/attachments/{attachment_id}/content", response_class=Response)
def attachment_content(
    session: SessionDep, principal: CurrentPrincipal, attachment_id: uuid.UUID
) -> Response:
    row, data = crud.attachment_content(
        session=session, actor=principal, attachment_id=attachment_id
    )
    return Response(
        data,
        media_type=row.media_type,
        headers={"ETag": f'"{row.sha256}"', "Digest": f"sha-256={row.sha256}"},
    )
