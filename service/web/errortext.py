"""What the UI says when something fails: service errors as translatable messages.

The service's errors carry English text for logs and the API; the UI never shows that text.
It picks a message by the error's class and the data it carries (entity, field, action), so
every word on an error page comes from the catalogues. A reason or action this module does
not know yet still gets its class's translated message, never the English one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from service.errors import (
    ApprovalRequiredError,
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
from service.web import labels
from service.web.labels import N_

Gettext = Callable[[str], str]

#: One message per error class of :mod:`service.errors` (a test checks none is missing).
BY_CLASS: dict[type[ServiceError], str] = {
    ServiceError: N_("The service could not complete this request."),
    ConfigError: N_("The service is not configured correctly; tell its administrator."),
    DatabaseError: N_("The database is unavailable; try again later."),
    NotFoundError: N_("This record does not exist or is not visible to you."),
    AuthenticationError: N_("You are not signed in, or your session has expired."),
    PermissionDeniedError: N_("Your role does not allow this action."),
    InvalidInputError: N_("A value is not acceptable."),
    ConflictError: N_(
        "This conflicts with the stored records (it may have been done already, "
        "or by someone else)."
    ),
    PreconditionFailedError: N_(
        "Someone changed this record while you were looking at it. "
        "Reload the page to see the current version, then try again."
    ),
    PreconditionRequiredError: N_(
        "This change must say which version you saw. Reload the page and try again."
    ),
    ApprovalRequiredError: N_("This change needs the approval of a second person."),
    AuditChainError: N_("The audit chain cannot be read or written; tell an administrator."),
}

#: Records named by :class:`NotFoundError` (its ``entity``, a table name).
ENTITY = {
    "seizure": N_("Seizure"),
    "item": N_("Item"),
    "field_test": N_("Field test"),
    "custody_event": N_("Custody event"),
    "lab_result": N_("Laboratory result"),
    "attachment": N_("Attachment"),
    "blob": N_("Attachment"),
    "approval": N_("Approval"),
    "agency": N_("Agency"),
    "device": N_("Device"),
    "user": N_("User"),
    # Cases (issue 8).
    "case": N_("Case"),
    "case_seizure": N_("Member seizure"),
    "case_entity": N_("Person or company"),
    "case_document": N_("Document"),
    "case_task": N_("Task"),
    "case_note": N_("Note"),
    # Linking (issue 8).
    "seizure_link": N_("Suggested link"),
    "link_alert": N_("Alert"),
}

#: Actions named by :class:`PermissionDeniedError` (the phrases given to ``require``).
ACTION = {
    "record seizures": N_("record seizures"),
    "record items": N_("record items"),
    "record field tests": N_("record field tests"),
    "record custody events": N_("record custody events"),
    "record laboratory results": N_("record laboratory results"),
    "edit seizures": N_("edit seizures"),
    "edit items": N_("edit items"),
    "review field results": N_("review field results"),
    "approve changes": N_("approve changes"),
    "approve their own request (four eyes)": N_(
        "decide on a change you requested yourself (four eyes)"
    ),
    "read the oversight report": N_("read the oversight report"),
    "read the audit log": N_("read the audit log"),
    "verify the audit chain": N_("verify the audit chain"),
    "read checkpoints": N_("read checkpoints"),
    "sign checkpoints": N_("sign checkpoints"),
    "correlate seizures": N_("correlate seizures"),
    "accept or dismiss links": N_("accept or dismiss links"),
    "create agencies": N_("create agencies"),
    "create users": N_("create users"),
    "change users": N_("change users"),
    "read other users": N_("read other users"),
    "register devices": N_("register devices"),
    "issue device keys": N_("issue device keys"),
    "list device keys": N_("list device keys"),
    "revoke device keys": N_("revoke device keys"),
    "act without an agency": N_("act without an agency"),
    # Cases (issue 8).
    "read case files": N_("read case files"),
    "open cases": N_("open cases"),
    "change cases": N_("change cases"),
    "add seizures to cases": N_("add seizures to cases"),
    "take seizures off cases": N_("take seizures off cases"),
    "add persons or companies": N_("name persons or companies in cases"),
    "take persons or companies off": N_("take persons or companies off cases"),
    "file documents": N_("file documents in cases"),
    "take documents off": N_("take documents off cases"),
    "assign tasks": N_("assign tasks"),
    "write case notes": N_("write case notes"),
    "correct case notes": N_("correct case notes"),
    "change another agency's case (shared to read)": N_(
        "change another agency's case (it is shared with yours to read)"
    ),
    "change more of a task than its status": N_("change more of a task than its status"),
    "correct another person's note": N_("correct another person's note"),
    # Linking alerts (issue 8).
    "read alerts": N_("read alerts"),
    "mark alerts read": N_("mark alerts read"),
    # Exchange between agencies (issue 8).
    "read exchange keys": N_("read the agency's exchange keys"),
    "register exchange partners": N_("register partner agencies"),
    "change exchange partners": N_("change partner agencies"),
    "list exchange partners": N_("list partner agencies"),
    "list exchange packages": N_("list exchange packages"),
    "export records to partner agencies": N_("send packages to partner agencies"),
    "import exchange packages": N_("receive packages from partner agencies"),
    "read provenance": N_("read where records came from"),
}

#: Fields named by :class:`InvalidInputError` and by form validation (``loc``).
FIELD = {
    "date_from": N_("From"),
    "date_to": N_("To"),
    "since": N_("Since"),
    "analysed_on": N_("Analysed on"),
    "occurred_on": N_("Date"),
    "occurred_at": N_("Date"),
    "verdict": N_("Verdict"),
    "status": N_("Status"),
    "transport_mode": N_("Transport mode"),
    "country": N_("Country"),
    "agency": N_("Agency"),
    "substance": N_("Substance"),
    "q": N_("Search"),
    "after": N_("Page"),
    "limit": N_("Page size"),
    "action": N_("Action"),
    "reason": N_("Reason"),
    "version": N_("Version"),
    "decision": N_("Decision"),
    "description": N_("Description"),
    "net_mass": N_("Net mass"),
    "mass_unit": N_("Unit"),
    "purity_percent": N_("Purity (percent)"),
    "method": N_("Method"),
    "laboratory": N_("Laboratory"),
    "lab_reference": N_("Laboratory reference"),
    "correction": N_("Correction"),
    "kind": N_("Event"),
    "seal_number": N_("Seal number"),
    "from_party": N_("From (person or unit)"),
    "to_party": N_("To (person or unit)"),
    "place": N_("Place"),
    "notes": N_("Notes"),
    "file": N_("File"),
    "username": N_("Username"),
    "password": N_("Password"),
    "sharing": N_("Sharing"),
    "shared_with": N_("Partner agencies"),
    # Batch sync: the seizure or item an operation belongs to.
    "parent_id": N_("Parent record"),
    # Cases (issue 8).
    "reference": N_("Reference"),
    "title": N_("Title"),
    "summary": N_("Summary"),
    "seizure_id": N_("Seizure"),
    "lead_investigator_id": N_("Lead investigator"),
    "owner_user_id": N_("Owner"),
    "due_date": N_("Due date"),
    "details": N_("Details"),
    "text": N_("Note"),
    # Exchange (issue 8).
    "agency_id": N_("Agency"),
    "partner_agency_id": N_("Partner agency"),
    "signing_key": N_("Signing key"),
    "encryption_key": N_("Encryption key"),
}

#: Reasons of :class:`InvalidInputError`, by the English text (or its start, for f-strings).
REASON = {
    "must be a date (YYYY-MM-DD)": N_("must be a date (YYYY-MM-DD)"),
    "unknown value": N_("is not one of the offered values"),
    "must be a two-letter ISO code": N_("must be a two-letter ISO country code"),
    "is longer than 200 characters": N_("is longer than 200 characters"),
    "not a page cursor from this site": N_("is not a page link of this site"),
    "must be between 1 and 500": N_("must be between 1 and 500"),
    "unknown review action": N_("is not one of the offered actions"),
    "rejecting a field result needs a reason": N_("rejecting a field result needs a reason"),
    "recording destruction needs a reason": N_("recording a destruction needs a reason"),
    "must be a number": N_("must be a number"),
    "must be a finite number": N_("must be a finite number"),
    "give a new substance or a new net mass": N_("give a new substance or a new net mass"),
    "cannot be cleared": N_("cannot be cleared"),
    "is empty": N_("is empty"),
    "is not an agency whose records you may see": N_("is not an agency whose records you may see"),
    "partners are named only with sharing 'partners'": N_(
        "partner agencies are named only for the level “named partner agencies”"
    ),
    "the owning agency always sees its records": N_("the owning agency always reads its records"),
    "no agency": N_("is not an agency of this server"),
    "changing who may read a seizure needs a reason": N_(
        "changing who may read a seizure needs a reason"
    ),
    # Cases (issue 8).
    "must be an active user of the case's agency": N_(
        "must be an active user of the case's agency"
    ),
    "this person's role cannot take this on": N_("this person's role cannot take this on"),
    "must not be blank": N_("must not be blank"),
    "no seizure you may read has this id": N_("is not a seizure you may read"),
    "choose a seizure": N_("choose a seizure"),
    "is not a valid identifier": N_("is not a valid identifier"),
    "taking a seizure off a case needs a reason": N_("taking a seizure off a case needs a reason"),
    "taking a record off a case needs a reason": N_("taking a record off a case needs a reason"),
    "name at least one partner agency": N_("name at least one partner agency"),
    "due_date must be between the years 2000 and 2100": N_(
        "must be between the years 2000 and 2100"
    ),
    # Exchange (issue 8).
    "an agency cannot be its own exchange partner": N_(
        "is your own agency, which cannot be its own partner"
    ),
    # Model validators of the service (pydantic prefixes them with "Value error, ").
    "a 'sealed' event needs seal_number": N_("a seal needs its seal number"),
    "mass_unit is required when net_mass is given": N_("a mass needs its unit"),
    "mass_unit is required when a mass is given": N_("a mass needs its unit"),
    "a 'handed_over' event needs from_party and to_party": N_(
        "a hand-over needs who handed it over and who received it"
    ),
    "a 'transferred_to_lab' event needs from_party and to_party": N_(
        "a transfer to a laboratory needs who sent it and who received it"
    ),
}

#: Pydantic's error types, for form values the service's models refuse.
PYDANTIC = {
    "missing": N_("is required"),
    "string_too_short": N_("is too short"),
    "string_too_long": N_("is too long"),
    "greater_than": N_("is too small"),
    "greater_than_equal": N_("is too small"),
    "less_than": N_("is too large"),
    "less_than_equal": N_("is too large"),
    "enum": N_("is not one of the offered values"),
    "literal_error": N_("is not one of the offered values"),
    "string_pattern_mismatch": N_("is not one of the offered values"),
    "int_parsing": N_("must be a whole number"),
    "float_parsing": N_("must be a number"),
    "finite_number": N_("must be a finite number"),
    "datetime_parsing": N_("must be a date"),
    "datetime_from_date_parsing": N_("must be a date"),
    "uuid_parsing": N_("is not a valid identifier"),
}

#: Texts of HTTP statuses the UI itself answers with (no service error behind them).
HTTP = {
    400: N_("The request is malformed."),
    403: N_("This request was refused: forms must be sent from this site's pages."),
    404: N_("This page does not exist."),
    405: N_("This page cannot be used that way."),
    422: N_("A value is not acceptable."),
}
HTTP_OTHER = N_("The request could not be completed.")

_FIELD_REASON = N_("%(field)s: %(reason)s")
_NOT_FOUND = N_("%(entity)s not found, or not visible to you.")
_DENIED = N_("Your role (%(role)s) may not do this: %(action)s.")
_INVALID = N_("%(field)s: this value is not acceptable.")


def class_message(exc: ServiceError) -> str:
    """The msgid for ``exc``'s nearest class in :data:`BY_CLASS`."""
    for kind in type(exc).__mro__:
        if kind in BY_CLASS:
            return BY_CLASS[kind]
    return BY_CLASS[ServiceError]  # pragma: no cover - every ServiceError has ServiceError


def _reason_msgid(reason: str) -> str | None:
    text = re.sub(r"^Value error, ", "", reason.strip())
    if text in REASON:
        return REASON[text]
    for known, msgid in REASON.items():
        if text.startswith(known + " "):  # f-string reasons: "unknown value 'x'"
            return msgid
    return None


def field_label(field: str, _: Gettext) -> str | None:
    """The translated label of a form or model field, or None when it is not known."""
    msgid = FIELD.get(field.split(".")[-1])
    return _(msgid) if msgid else None


def message(exc: ServiceError, _: Gettext) -> str:
    """What the UI shows for ``exc``, in the language of ``_`` (never the English text)."""
    if isinstance(exc, NotFoundError) and exc.entity in ENTITY:
        return _(_NOT_FOUND) % {"entity": _(ENTITY[exc.entity])}
    if isinstance(exc, PermissionDeniedError):
        role = _(labels.ROLE[exc.role]) if exc.role in labels.ROLE else None
        if role and exc.action in ACTION:
            return _(_DENIED) % {"role": role, "action": _(ACTION[exc.action])}
    if isinstance(exc, InvalidInputError):
        label = field_label(exc.field, _)
        reason = _reason_msgid(exc.reason)
        if label and reason:
            return _(_FIELD_REASON) % {"field": label, "reason": _(reason)}
        if label:
            return _(_INVALID) % {"field": label}
    return _(class_message(exc))


def validation_messages(errors: Sequence[Mapping[str, Any]], _: Gettext) -> list[str]:
    """Pydantic/FastAPI validation errors as translated lines (one per error, no input echo)."""
    out: list[str] = []
    for error in errors:
        loc = [str(p) for p in error.get("loc", ()) if str(p) not in ("body", "query", "path")]
        label = next((lbl for p in reversed(loc) if (lbl := field_label(p, _))), None)
        kind = str(error.get("type", ""))
        reason = _reason_msgid(str(error.get("msg", ""))) or PYDANTIC.get(kind)
        if label and reason:
            line = _(_FIELD_REASON) % {"field": label, "reason": _(reason)}
        elif label:
            line = _(_INVALID) % {"field": label}
        elif reason:
            line = _(reason)
        else:
            line = _(HTTP[422])
        if line not in out:
            out.append(line)
    return out or [_(HTTP[422])]


def http_message(status: int, _: Gettext) -> str:
    """The text of an HTTP error status the UI answers with."""
    return _(HTTP.get(status, HTTP_OTHER))
