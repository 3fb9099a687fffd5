"""Stable codes of the exchange: why a package is refused, what became of each record and why.

Every refusal and every record's outcome carries one of these codes (and the English
sentence for logs and people reading JSON), so the API, the CLI's ``--json`` and the web UI
(which says it in the user's language) never depend on wording. The values are part of the
API: add codes, never rename them.

Package refusals (the whole package, nothing written) answer
``{"detail": <English>, "reason": <PackageRefusal>, "params": {...}}``; a record of an
accepted package gets ``{"outcome": <RecordOutcomeKind>, "reason": <RecordReason> | null,
"detail": <English> | null, "params": {...}}``. The parameters of each code are listed with
it; ids are canonical UUID text, versions integers.
"""

from __future__ import annotations

from enum import StrEnum


class PackageRefusal(StrEnum):
    """Why a whole package is refused (:class:`~service.exchange.package.ExchangeError`)."""

    #: Not a package of a known format: truncated, not canonical, a field missing or odd.
    MALFORMED = "malformed"
    #: The issuer is not a registered partner (``issuer_id``; ``revoked``: it was, and was
    #: revoked).
    UNKNOWN_SIGNER = "unknown_signer"
    #: The signature does not verify with the issuer's registered key (``issuer_id``,
    #: ``signed_key_fingerprint``, ``registered_key_fingerprint``).
    BAD_SIGNATURE = "bad_signature"
    #: A record differs from what the signed manifest says of it.
    TAMPERED_RECORD = "tampered_record"
    #: Addressed to other agencies (``recipients``).
    WRONG_RECIPIENT = "wrong_recipient"
    #: Encrypted, and it cannot be decrypted with the recipient's key.
    UNDECRYPTABLE = "undecryptable"


class RecordOutcomeKind(StrEnum):
    """What became of one record of an accepted package."""

    #: New here: stored with its original id, owned by the issuing agency.
    IMPORTED = "imported"
    #: A newer issuer version of a record received before: a new local version.
    UPDATED = "updated"
    #: A newer issuer version whose exchanged fields are the same: nothing written.
    UNCHANGED = "unchanged"
    #: This version, or a newer one, was received before (a :class:`RecordReason` says which).
    SKIPPED = "skipped"
    #: Not stored (a :class:`RecordReason` says why).
    REJECTED = "rejected"


class RecordReason(StrEnum):
    """Why a record was rejected or skipped; ``params`` of each code in its comment."""

    # Rejected.
    #: The content fails this instance's rules (``field``: the column or model field, when
    #: one is at fault).
    INVALID_CONTENT = "invalid_content"
    #: The record's fields are not this instance's (``missing``, ``unexpected``: lists of
    #: field names): the two instances run different versions.
    FIELDS_DIFFER = "fields_differ"
    #: Owned by another agency than the issuer, which speaks only for its own
    #: (``agency_id``: the owner the record names).
    NOT_ISSUER_OWNED = "not_issuer_owned"
    #: Its parent (``parent_type``, ``parent_id``) is neither in the package nor received
    #: before from the issuer.
    MISSING_PARENT = "missing_parent"
    #: Its parent (``parent_type``, ``parent_id``) was rejected in this package.
    PARENT_REJECTED = "parent_rejected"
    #: A field test whose ``seizure_id`` is not its item's seizure (``seizure_id``,
    #: ``item_seizure_id``).
    SEIZURE_MISMATCH = "seizure_mismatch"
    #: Its id is taken by a record of another agency on this instance (no parameters: the
    #: other agency is not the importer's business).
    UUID_COLLISION = "uuid_collision"
    #: A record of the issuer with this id exists here but was not received by exchange.
    NOT_FROM_EXCHANGE = "not_from_exchange"
    # Skipped.
    #: This very version was received before (``version``).
    ALREADY_RECEIVED = "already_received"
    #: Older than the version received before (``version``, ``received_version``).
    OLDER_VERSION = "older_version"


#: The codes that go with each outcome (the others carry none).
SKIP_REASONS = frozenset({RecordReason.ALREADY_RECEIVED, RecordReason.OLDER_VERSION})
REJECT_REASONS = frozenset(RecordReason) - SKIP_REASONS
