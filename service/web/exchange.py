"""Exchange page of the web UI (``/ui/exchange``) and the provenance panel of seizures.

Partner agencies and their key fingerprints (admins register, revoke and restore them from
the partner's ``fieldscan exchange keys`` file), packages out (download) and in (upload,
with the per-record report), and the history of both. All data goes through
:mod:`service.exchange`, so roles and agency isolation are exactly the API's.

The service's English texts (refusal details, record details) are never shown: a refusal
and a record's reason are named by their codes (:mod:`service.exchange.reasons`) and said in
the user's language, with only language-neutral parameters (versions, ids) carried over.
An upload over the exchange limit gets :func:`too_large_page` from the body limit.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import select
from sqlmodel import col
from starlette.types import Scope

from service.api.common import commit
from service.api.deps import SessionDep, StateDep
from service.errors import ConflictError, InvalidInputError, PermissionDeniedError, ServiceError
from service.exchange import exporter, importer, partners
from service.exchange.models import (
    ExchangePartnerCreate,
    ExchangePartnerUpdate,
    ImportReport,
)
from service.exchange.package import ExchangeError, fingerprint
from service.exchange.package import signing_public_key as parse_signing_key
from service.exchange.reasons import PackageRefusal, RecordReason
from service.models import Agency
from service.principal import ADMINS
from service.web.errortext import Gettext, field_label
from service.web.i18n import Formatter, translations
from service.web.labels import N_
from service.web.pages import (
    PREFIX,
    Ctx,
    error_page,
    flash_message,
    parse_date,
    render_page,
    signed_in,
    user_names,
)
from service.web.render import language_of, render

router = APIRouter(prefix=PREFIX, include_in_schema=False)

#: The upload form's path; ``service.main.EXCHANGE_IMPORT_PATHS`` gives it the larger limit.
IMPORT_PATH = f"{PREFIX}/exchange/import"
BACK = f"{PREFIX}/exchange"
#: Rows of history shown (newest first).
HISTORY_ROWS = 200

AGENCY_KIND = {
    "customs": N_("Customs"),
    "police": N_("Police"),
    "anti_narcotics": N_("Anti-narcotics agency"),
    "prosecution": N_("Prosecution"),
    "laboratory": N_("Laboratory"),
}
RECORD_TYPE = {
    "seizure": N_("Seizure"),
    "item": N_("Item"),
    "field_test": N_("Field test"),
    "custody_event": N_("Custody event"),
    "lab_result": N_("Laboratory result"),
}
OUTCOME = {
    "imported": N_("Imported"),
    "updated": N_("Updated"),
    "unchanged": N_("Unchanged"),
    "skipped": N_("Skipped"),
    "rejected": N_("Rejected"),
}
DIRECTION = {"export": N_("Sent"), "import": N_("Received")}

#: Why a whole package is refused, by :class:`ExchangeError` ``reason`` code.
REFUSAL: dict[str, str] = {
    PackageRefusal.MALFORMED: N_(
        "The file is not an exchange package of fieldscan, or it was truncated or altered "
        "on the way."
    ),
    PackageRefusal.UNKNOWN_SIGNER: N_(
        "The package is signed by an agency that is not a registered partner of your agency "
        "(or whose partnership was revoked). An administrator must register its public key "
        "file first."
    ),
    PackageRefusal.BAD_SIGNATURE: N_(
        "The signature does not match the key registered for the issuing agency: the package "
        "was altered or forged, or the partner has new keys. Compare the key fingerprint with "
        "the partner by phone."
    ),
    PackageRefusal.TAMPERED_RECORD: N_(
        "A record in the package differs from what the issuing agency signed: the package "
        "was altered after it was signed."
    ),
    PackageRefusal.WRONG_RECIPIENT: N_("The package is addressed to another agency, not to yours."),
    PackageRefusal.UNDECRYPTABLE: N_(
        "The package is encrypted, but not for your agency's key (or it was altered): it "
        "cannot be opened."
    ),
}
REFUSAL_OTHER = N_("The package was refused.")

#: Why a record was rejected or skipped, by :class:`RecordReason` code (a test checks that
#: every code has its text). ``%(type)s`` is the parent's record type, translated.
RECORD_REASON: dict[str, str] = {
    RecordReason.INVALID_CONTENT: N_("The record's content is not valid."),
    RecordReason.FIELDS_DIFFER: N_(
        "The record's fields differ from this server's (missing: %(missing)s; unexpected: "
        "%(unexpected)s): the two servers may run different versions of fieldscan."
    ),
    RecordReason.NOT_ISSUER_OWNED: N_(
        "The record belongs to another agency than the issuer, which speaks only for its own."
    ),
    RecordReason.MISSING_PARENT: N_("Its %(type)s is neither in the package nor received before."),
    RecordReason.PARENT_REJECTED: N_("Its %(type)s was rejected."),
    RecordReason.SEIZURE_MISMATCH: N_("Its seizure is not its item's seizure."),
    RecordReason.UUID_COLLISION: N_(
        "Its identifier is already used by a record of another agency on this server."
    ),
    RecordReason.NOT_FROM_EXCHANGE: N_(
        "A record with this identifier exists here and was not received by exchange."
    ),
    RecordReason.ALREADY_RECEIVED: N_("Version %(version)s was received before."),
    RecordReason.OLDER_VERSION: N_(
        "Version %(version)s is older than version %(newer)s, received before."
    ),
}
#: Invalid content, naming the field at fault.
INVALID_FIELD = N_("The record's content is not valid (field: %(field)s).")
#: Which parameter of a reason is shown beside its text (an id: the same in every language).
REASON_REF = {
    RecordReason.NOT_ISSUER_OWNED: "agency_id",
    RecordReason.MISSING_PARENT: "parent_id",
    RecordReason.PARENT_REJECTED: "parent_id",
    RecordReason.SEIZURE_MISMATCH: "seizure_id",
}
RECORD_REASON_OTHER = N_("No further detail.")

#: Conflicts of partner registration and use, by the service's wording.
CONFLICTS: list[tuple[str, str]] = [
    ("is a revoked partner", N_("This agency is a revoked partner: restore it to trust it again.")),
    (
        "already a partner with other keys",
        N_(
            "This agency is already a partner with other keys. If the partner changed its "
            "keys, confirm the new fingerprint by phone and have the keys rotated."
        ),
    ),
    (
        "is a local agency",
        N_("This agency is an agency of this server, not a partner on another server."),
    ),
    (
        "is known here as",
        N_("This agency is known here with another name, country or kind: check the file."),
    ),
    (
        "exists here with another id",
        N_("An agency with this name exists here with another identifier: check the file."),
    ),
    ("is revoked", N_("This partner is revoked: nothing is sent to it.")),
]

FLASH = {
    "registered": N_("Partner agency registered."),
    "revoked": N_("Partner agency revoked: its packages are refused from now on."),
    "restored": N_("Partner agency restored."),
}
KEY_FILE_INVALID = N_(
    "This is not a public key file made by “fieldscan exchange keys” (problems: %(fields)s)."
)
KEY_FILE_FINGERPRINT = N_(
    "The key file's fingerprint does not match its signing key: the file is damaged or altered."
)
KEY_FILE_MISSING = N_("Choose the partner's key file, or paste its content.")
NOTHING_STORED = N_("Nothing was stored.")
TOO_LARGE = N_(
    "The file is larger than %(size)s MiB, the largest package this server accepts. Ask the "
    "partner agency for packages of fewer seizures (changed since a date)."
)


def _fingerprint_groups(value: str) -> str:
    """A fingerprint in groups of four, to be read aloud and compared by phone."""
    return " ".join(value[i : i + 4] for i in range(0, len(value), 4))


def record_reason(reason: str | None, params: Mapping[str, Any], _: Gettext) -> str | None:
    """A record's reason code (with its parameters) in the language of ``_``; None when none."""
    if not reason:
        return None
    msgid = RECORD_REASON.get(reason)
    if msgid is None:  # a code newer than this page: say so, never show the English text
        return _(RECORD_REASON_OTHER)
    if reason == RecordReason.INVALID_CONTENT and params.get("field"):
        field = str(params["field"])
        return _(INVALID_FIELD) % {"field": field_label(field, _) or field}
    values: dict[str, str] = {}
    if "parent_type" in params:
        kind = str(params["parent_type"])
        values["type"] = _(RECORD_TYPE[kind]).lower() if kind in RECORD_TYPE else kind
    if reason == RecordReason.FIELDS_DIFFER:
        for key in ("missing", "unexpected"):
            values[key] = ", ".join(map(str, params.get(key) or [])) or "—"
    if "version" in params:
        values["version"] = str(params["version"])
    if "received_version" in params:
        values["newer"] = str(params["received_version"])
    try:
        return _(msgid) % values if "%(" in msgid else _(msgid)
    except KeyError:  # parameters missing: the reason without its details
        return _(RECORD_REASON_OTHER)


def refusal_message(exc: ExchangeError, _: Gettext) -> str:
    """Why a whole package was refused, in the language of ``_``."""
    return _(REFUSAL.get(exc.reason, REFUSAL_OTHER))


def too_large_page(scope: Scope, limit: int) -> Response:
    """The upload form's answer to a file over ``limit`` bytes (from ``service.main.BodyLimit``).

    The body limit answers before any route (and before the sign-in check), so the page is
    the anonymous error page, in the language of the request; nothing was read or stored.
    """
    request = Request(scope)
    lang = language_of(request)
    _ = translations(lang).gettext
    size = Formatter(lang).number(limit / (1024 * 1024), 1)
    lines = [_(TOO_LARGE) % {"size": size}, _(NOTHING_STORED)]
    return render(request, "error.html", 413, messages=lines, back=BACK)


def _service_error(ctx: Ctx, exc: ServiceError) -> HTMLResponse:
    if isinstance(exc, ConflictError):
        text = str(exc)
        for marker, msgid in CONFLICTS:
            if marker in text:
                return render_page(ctx, "error.html", 409, messages=[ctx._(msgid)], back=BACK)
    return error_page(ctx, exc)


def _labels(ctx: Ctx, table: dict[str, str]) -> dict[str, str]:
    return {code: ctx._(text) for code, text in table.items()}


# --------------------------------------------------------------------------- the page


@router.get("/exchange", response_class=HTMLResponse)
def exchange_page(request: Request, session: SessionDep, state: StateDep) -> HTMLResponse:
    ctx = signed_in(request, session, state)
    try:
        keys = partners.agency_keys(
            session=session, actor=ctx.principal, key_dir=state.settings.exchange_keys_path
        )
        rows = partners.list_partners(session=session, actor=ctx.principal)
        packages = list(partners.list_packages(session=session, actor=ctx.principal))
    except ServiceError as exc:
        return error_page(ctx, exc)
    shown = packages[:HISTORY_ROWS]
    agencies = {
        a.id: a
        for a in session.scalars(
            select(Agency).where(col(Agency.id).in_({p.partner_agency_id for p in shown}))
        )
    }
    history = [
        {
            "package": p,
            "partner": agencies.get(p.partner_agency_id),
            "counts": [
                (ctx._(OUTCOME.get(k) or RECORD_TYPE.get(k) or k), v)
                for k, v in p.summary.items()
                if isinstance(v, int) and v
            ],
            "since": p.summary.get("since"),
        }
        for p in shown
    ]
    return render_page(
        ctx,
        "exchange.html",
        keys=keys,
        keys_fingerprint=_fingerprint_groups(keys.signing_key_fingerprint),
        partners=[(p, _fingerprint_groups(p.signing_key_fingerprint)) for p in rows],
        active=[p for p in rows if p.active],
        history=history,
        more=len(packages) > len(shown),
        names=user_names(session, ctx, {p.user_id for p in shown}),
        kinds=_labels(ctx, AGENCY_KIND),
        directions=_labels(ctx, DIRECTION),
        can_register=ctx.can(ADMINS),
        can_export=ctx.can(exporter.EXPORTERS),
        can_import=ctx.can(importer.IMPORTERS),
        max_mib=state.settings.exchange_max_package_bytes // (1024 * 1024),
        import_path=IMPORT_PATH,
        flash=flash_message(ctx, FLASH),
    )


@router.get("/exchange/keys.json")
def download_keys(request: Request, session: SessionDep, state: StateDep) -> Response:
    """This agency's public key file, as ``fieldscan exchange keys`` prints it."""
    ctx = signed_in(request, session, state)
    try:
        keys = partners.agency_keys(
            session=session, actor=ctx.principal, key_dir=state.settings.exchange_keys_path
        )
    except ServiceError as exc:
        return error_page(ctx, exc)
    return Response(
        json.dumps(keys.model_dump(mode="json"), indent=2, ensure_ascii=False).encode() + b"\n",
        media_type="application/json",
        headers={
            "Content-Disposition": (
                f'attachment; filename="fieldscan-exchange-keys-{keys.agency_id}.json"'
            ),
            "Cache-Control": "no-store",
        },
    )


# --------------------------------------------------------------------------- partners (admin)


def _key_file(ctx: Ctx, text: str) -> ExchangePartnerCreate | HTMLResponse:
    """The partner described by a key file's text, or the page saying what is wrong with it."""

    def invalid(fields: str) -> HTMLResponse:
        line = ctx._(KEY_FILE_INVALID) % {"fields": fields}
        return render_page(ctx, "error.html", 422, messages=[line], back=BACK)

    try:
        loaded = json.loads(text)
    except ValueError:
        return invalid("JSON")
    if not isinstance(loaded, dict):
        return invalid("JSON")
    fields = set(ExchangePartnerCreate.model_fields)
    try:
        partner_in = ExchangePartnerCreate.model_validate(
            {k: v for k, v in loaded.items() if k in fields}
        )
    except ValidationError as exc:
        names = sorted({str(e["loc"][0]) for e in exc.errors() if e.get("loc")})
        return invalid(", ".join(names) or "JSON")
    given = loaded.get("signing_key_fingerprint")
    if given is not None:
        try:
            actual = fingerprint(parse_signing_key(partner_in.signing_key))
        except ValueError:
            return invalid("signing_key")
        if given != actual:
            return render_page(
                ctx, "error.html", 422, messages=[ctx._(KEY_FILE_FINGERPRINT)], back=BACK
            )
    return partner_in


@router.post("/exchange/partners")
def register_partner(
    request: Request,
    session: SessionDep,
    state: StateDep,
    key_file: Annotated[UploadFile | None, File()] = None,
    key_text: Annotated[str, Form(max_length=20_000)] = "",
    note: Annotated[str, Form(max_length=500)] = "",
    confirmed: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    """Step 1: show the partner and its fingerprint; step 2 (``confirmed``): trust it."""
    ctx = signed_in(request, session, state, write=True)
    if not ctx.can(ADMINS):  # before reading anything: the service says the same
        return error_page(ctx, _denied(ctx, "register exchange partners"))
    text = key_text
    if key_file is not None and key_file.filename:
        raw = key_file.file.read(20_001)
        if len(raw) > 20_000:
            return render_page(
                ctx,
                "error.html",
                422,
                messages=[ctx._(KEY_FILE_INVALID) % {"fields": "JSON"}],
                back=BACK,
            )
        text = raw.decode("utf-8", errors="replace")
    if not text.strip():
        return render_page(ctx, "error.html", 422, messages=[ctx._(KEY_FILE_MISSING)], back=BACK)
    parsed = _key_file(ctx, text)
    if isinstance(parsed, HTMLResponse):
        return parsed
    if note.strip():
        parsed.note = note.strip()
    if confirmed != "yes":
        return render_page(
            ctx,
            "exchange_confirm.html",
            partner=parsed,
            fingerprint=_fingerprint_groups(fingerprint(parse_signing_key(parsed.signing_key))),
            kinds=_labels(ctx, AGENCY_KIND),
            key_text=parsed.model_dump_json(),
        )
    try:
        partners.register_partner(session=session, actor=ctx.principal, partner_in=parsed)
    except ServiceError as exc:
        session.rollback()
        return _service_error(ctx, exc)
    commit(session)
    return RedirectResponse(f"{PREFIX}/exchange?done=registered#partners", status_code=303)


def _denied(ctx: Ctx, action: str) -> ServiceError:
    return PermissionDeniedError(ctx.role, action)


@router.post("/exchange/partners/{partner_agency_id}/status")
def change_partner_status(
    request: Request,
    session: SessionDep,
    state: StateDep,
    partner_agency_id: uuid.UUID,
    action: Annotated[str, Form(max_length=10)],
    version: Annotated[int, Form()],
    reason: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    """Revoke (packages refused, nothing sent) or restore a partner; the reason is kept."""
    ctx = signed_in(request, session, state, write=True)
    try:
        if action not in ("revoke", "restore"):
            raise InvalidInputError("action", "unknown value")
        if not reason.strip():
            raise InvalidInputError("reason", "must not be blank")
        partners.update_partner(
            session=session,
            actor=ctx.principal,
            partner_agency_id=partner_agency_id,
            partner_in=ExchangePartnerUpdate(active=action == "restore", reason=reason.strip()),
            if_match=version,
        )
    except ServiceError as exc:
        session.rollback()
        return _service_error(ctx, exc)
    commit(session)
    done = "revoked" if action == "revoke" else "restored"
    return RedirectResponse(f"{PREFIX}/exchange?done={done}#partners", status_code=303)


# --------------------------------------------------------------------------- packages


@router.post("/exchange/export")
def export_package(
    request: Request,
    session: SessionDep,
    state: StateDep,
    partner: Annotated[str, Form(max_length=40)],
    encrypt: Annotated[str, Form(max_length=5)] = "",
    since: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """The package of everything the agency shares with the partner, as a download."""
    ctx = signed_in(request, session, state, write=True)
    try:
        try:
            partner_id = uuid.UUID(partner)
        except ValueError:
            raise InvalidInputError("partner_agency_id", "is not a valid identifier") from None
        package = exporter.export_package(
            session=session,
            actor=ctx.principal,
            partner_agency_id=partner_id,
            key_dir=state.settings.exchange_keys_path,
            encrypt=encrypt == "yes",
            since=parse_date(since.strip() or None, "since"),
        )
    except ServiceError as exc:
        session.rollback()
        return _service_error(ctx, exc)
    commit(session)
    return Response(
        package.data,
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="{package.filename}"',
            "Cache-Control": "no-store",
            "X-Package-Id": str(package.package_id),
            "X-Record-Count": str(sum(package.counts.values())),
        },
    )


@router.post("/exchange/import", response_class=HTMLResponse)
def import_package(
    request: Request,
    session: SessionDep,
    state: StateDep,
    file: Annotated[UploadFile, File()],
) -> HTMLResponse:
    """Verify an uploaded package and store its records; the report says what became of each."""
    ctx = signed_in(request, session, state, write=True)
    if not ctx.can(importer.IMPORTERS):  # before reading the upload
        return error_page(ctx, _denied(ctx, "import exchange packages"))
    # The upload is spooled to disk by the form parser; one copy in memory from here.
    data = file.file.read()
    try:
        if not data:
            raise InvalidInputError("file", "is empty")
        report = importer.import_package(
            session=session,
            actor=ctx.principal,
            data=data,
            key_dir=state.settings.exchange_keys_path,
        )
    except ExchangeError as exc:
        session.rollback()
        issuer = (
            exc.params.get("issuer_id") if exc.reason == PackageRefusal.UNKNOWN_SIGNER else None
        )
        return render_page(
            ctx,
            "exchange_report.html",
            422,
            refused=refusal_message(exc, ctx._),
            reason_code=exc.reason,
            issuer_id=issuer,
            filename=file.filename,
            nothing_stored=ctx._(NOTHING_STORED),
        )
    except ServiceError as exc:
        session.rollback()
        return _service_error(ctx, exc)
    commit(session)
    return render_page(ctx, "exchange_report.html", **_report_view(ctx, report, file.filename))


def _report_view(ctx: Ctx, report: ImportReport, filename: str | None) -> dict[str, Any]:
    outcomes = _labels(ctx, OUTCOME)
    types = _labels(ctx, RECORD_TYPE)
    return {
        "report": report,
        "filename": filename,
        "fingerprint": _fingerprint_groups(report.key_fingerprint),
        "counts": [(outcomes[k], getattr(report, k), k) for k in OUTCOME],
        "rows": [
            {
                "type": types.get(r.type, r.type),
                "id": r.id,
                "remote_version": r.remote_version,
                "local_version": r.local_version,
                "outcome": r.outcome,
                "outcome_label": outcomes.get(r.outcome, r.outcome),
                "reason": record_reason(r.reason, r.params, ctx._),
                "reason_code": r.reason,
                "reason_ref": r.params.get(REASON_REF[r.reason])
                if r.reason in REASON_REF
                else None,
                "seizure": r.type == "seizure"
                and r.outcome in ("imported", "updated", "unchanged"),
            }
            for r in report.records
        ],
    }


# --------------------------------------------------------------------------- provenance


@router.get("/seizures/{seizure_id}/provenance", response_class=HTMLResponse)
def seizure_provenance(
    request: Request, session: SessionDep, state: StateDep, seizure_id: uuid.UUID
) -> HTMLResponse:
    """The seizure page's panel (loaded by htmx): which partner sent what, when, signed how.

    Empty for a seizure recorded here, so the panel disappears.
    """
    ctx = signed_in(request, session, state)
    try:
        rows = partners.seizure_provenance(
            session=session, actor=ctx.principal, seizure_id=seizure_id
        )
    except ServiceError as exc:
        return error_page(ctx, exc)
    if not rows:
        return HTMLResponse("", headers={"Cache-Control": "no-store"})
    grouped: dict[uuid.UUID, list[Any]] = defaultdict(list)
    for row in rows:
        grouped[row.package_id].append(row)
    packages = []
    for package_id, items in grouped.items():
        first = min(items, key=lambda r: r.received_at)
        seizure_rows = [r for r in items if r.entity_type == "seizure"]
        received: datetime = first.received_at
        packages.append(
            {
                "package_id": package_id,
                "issuer": first.issuer_name or str(first.issuer_agency_id),
                "received_at": received,
                "fingerprint": _fingerprint_groups(first.key_fingerprint),
                "records": len(items),
                "version": seizure_rows[0].remote_version if seizure_rows else None,
            }
        )
    return render(request, "exchange_provenance.html", packages=packages, seizure_id=seizure_id)
