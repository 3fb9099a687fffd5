"""Keyword-only data operations. Every write is versioned and audited in the caller's transaction.

Functions raise :mod:`service.errors` (never HTTP errors). Reads see the actor's agency's
records and the seizures (with their items, tests, custody, lab results, attachments and
history) that another agency shares with it (:mod:`service.sharing`); anything else is
simply "not found". Writes change only the actor's agency's records: a shared record is
refused with :class:`PermissionDeniedError` (403), any other agency's is "not found".
"""

from __future__ import annotations

import hashlib
import itertools
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import numpy as np
from argon2 import PasswordHasher
from sqlalchemy import (
    ColumnElement,
    and_,
    bindparam,
    event,
    exists,
    func,
    insert,
    or_,
    select,
    union,
)
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel, col

from service import audit
from service.core import authcache
from service.core.security import hash_device_key, hash_password, new_device_key, verify_password
from service.core.types import utcnow
from service.errors import (
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionFailedError,
)
from service.models import (
    GRAMS_PER_UNIT,
    Agency,
    AgencyCreate,
    Approval,
    ApprovalDecision,
    ApprovalStatus,
    Attachment,
    Blob,
    CustodyEvent,
    CustodyEventCreate,
    CustodyKind,
    Device,
    DeviceCreate,
    DeviceKey,
    Discrepancy,
    FieldTest,
    FieldTestCreate,
    FieldTestPublic,
    IdempotencyRecord,
    Item,
    ItemCreate,
    ItemUpdate,
    LabResult,
    LabResultCreate,
    MassUnit,
    RawSpectrum,
    RecordVersion,
    Role,
    Seizure,
    SeizureCreate,
    SeizureUpdate,
    SpectrumKindName,
    User,
    UserCreate,
    UserUpdate,
    Verdict,
)
from service.principal import (
    ADMINS,
    APPROVERS,
    CUSTODY_WRITERS,
    DEVICE_ROLE,
    EDITORS,
    FIELD_WRITERS,
    LAB_WRITERS,
    SYSTEM_ROLE,
    Principal,
)
from service.sharing import (
    SharingLevel,
    can_read,
    partner_ids,
    readable,
    shared_with_agency,
    sync_shares,
)

R = TypeVar("R", bound=SQLModel)

#: The action refused when an agency tries to change a record another agency shares with it.
SHARED_READ_ONLY = "change records another agency shares"

#: Item fields whose change needs a second person (four eyes).
FOUR_EYES_ITEM_FIELDS = ("gross_mass", "net_mass", "mass_unit", "substance")


# --------------------------------------------------------------------------- helpers


def _seizure_of(session: Session, row: SQLModel) -> Seizure | None:
    """The seizure whose sharing governs ``row`` (None for records that are never shared)."""
    if isinstance(row, Seizure):
        return row
    if isinstance(row, Item | FieldTest):
        return session.get(Seizure, row.seizure_id)
    if isinstance(row, CustodyEvent | LabResult | Attachment):
        item = session.get(Item, row.item_id)
        return None if item is None else session.get(Seizure, item.seizure_id)
    return None


def _readable(session: Session, row: SQLModel, actor: Principal) -> bool:
    """Own agency's records, and another agency's seizure records it shares with the actor."""
    if actor.role == SYSTEM_ROLE or row.agency_id == actor.scope:  # type: ignore[attr-defined]
        return True
    seizure = _seizure_of(session, row)
    return seizure is not None and can_read(seizure, actor)


#: Records readable exactly when their seizure is (by versioned entity type).
SHARED_WITH_SEIZURE: dict[str, type[SQLModel]] = {
    "seizure": Seizure,
    "item": Item,
    "field_test": FieldTest,
    "custody_event": CustodyEvent,
    "lab_result": LabResult,
    "attachment": Attachment,
}


def _get_readable(session: Session, model: type[R], entity_id: uuid.UUID, actor: Principal) -> R:
    """A record for reading: the actor's agency's, or shared with it (else "not found")."""
    row = session.get(model, entity_id)
    if row is None or not _readable(session, row, actor):
        raise NotFoundError(str(model.__tablename__), entity_id)
    return row


def _get_scoped(session: Session, model: type[R], entity_id: uuid.UUID, actor: Principal) -> R:
    """A record for writing: only the actor's agency's own.

    A record another agency shares with the actor is refused with 403 (the actor can read
    it, so "not found" would be a lie); any other agency's record stays "not found".
    """
    row = session.get(model, entity_id)
    if row is None:
        raise NotFoundError(str(model.__tablename__), entity_id)
    if actor.role == SYSTEM_ROLE or row.agency_id == actor.scope:  # type: ignore[attr-defined]
        return row
    if _readable(session, row, actor):
        raise PermissionDeniedError(actor.role, SHARED_READ_ONLY)
    raise NotFoundError(str(model.__tablename__), entity_id)


def add_record(
    session: Session, row: SQLModel, actor: Principal, *, reason: str | None = None
) -> None:
    """Insert a new record (version 1) and audit it; a duplicate id is a conflict."""
    session.add(row)
    try:
        # No savepoint (it costs two round trips per write): a failed flush fails the
        # whole request, whose transaction is then rolled back by the caller.
        session.flush()
    except IntegrityError as exc:
        raise ConflictError(
            # Every table has an id, but SQLModel (the declared type) does not.
            f"{row.__tablename__} {getattr(row, 'id', None)} cannot be created: {_reason(exc)}"
        ) from None
    audit.record_change(session=session, actor=actor, row=row, action="create", reason=reason)


def _insert_new(
    session: Session, row: SQLModel, actor: Principal, *, reason: str | None = None
) -> None:
    """:func:`add_record` for the frequent creates (station records): no ORM unit of work.

    The row, its first version and its pending audit event are written with plain
    inserts (one statement on PostgreSQL); ``row`` stays a detached value (later reads
    in the transaction load the stored row). A duplicate id or a missing parent is a
    conflict, and fails the whole transaction as in :func:`add_record`.
    """
    table = row.__table__  # type: ignore[attr-defined]
    values = {c.key: getattr(row, c.key) for c in table.columns}
    try:
        audit.insert_audited(
            session=session, actor=actor, table=table, values=values, reason=reason
        )
    except IntegrityError as exc:
        what = f"{table.name} {values['id']}"
        raise ConflictError(f"{what} cannot be created: {_reason(exc)}") from None


def _reason(exc: IntegrityError) -> str:
    """A database-neutral reason (the driver's text names internals and differs per database)."""
    text = str(exc.orig).lower() if exc.orig else str(exc).lower()
    if "unique" in text or "duplicate" in text:
        return "a record with the same id or unique value exists already"
    if "foreign key" in text:
        return "it refers to a record that does not exist"
    return "the database refused it"


def check_version(row: SQLModel, if_match: int) -> None:
    current = row.version  # type: ignore[attr-defined]
    if if_match != current:
        raise PreconditionFailedError(str(row.__tablename__), if_match, current)


def apply_changes(
    session: Session, row: SQLModel, changes: dict[str, Any], actor: Principal, reason: str
) -> bool:
    """Make a new version of ``row`` with ``changes``; False (and nothing written) if no-op."""
    changed = {k: v for k, v in changes.items() if getattr(row, k) != v}
    if not changed:
        return False
    before = audit.digest_of(row)
    table = row.__table__  # type: ignore[attr-defined]
    old_version = row.version  # type: ignore[attr-defined]
    values = dict(changed, version=old_version + 1)
    if "updated_at" in table.c:
        values["updated_at"] = utcnow()
    # Compare-and-set on the version: after a concurrent writer this touches no row.
    result = session.execute(
        table.update()
        .where(table.c.id == row.id, table.c.version == old_version)  # type: ignore[attr-defined]
        .values(**values)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise PreconditionFailedError(str(row.__tablename__), old_version, "newer")
    session.refresh(row)  # the stored form (database types) is what gets versioned
    audit.record_change(
        session=session, actor=actor, row=row, action="update", reason=reason, before_digest=before
    )
    return True


# --------------------------------------------------------------------------- agencies, users


def create_agency(*, session: Session, actor: Principal, agency_in: AgencyCreate) -> Agency:
    """A new agency (bootstrap by the system; no user may create agencies)."""
    if actor.role != SYSTEM_ROLE:
        raise PermissionDeniedError(actor.role, "create agencies")
    agency = Agency.model_validate(agency_in)
    add_record(session, agency, actor)
    return agency


def get_agency(*, session: Session, actor: Principal, agency_id: uuid.UUID) -> Agency:
    agency = session.get(Agency, agency_id)
    if agency is None or (actor.role != SYSTEM_ROLE and agency.id != actor.agency_id):
        raise NotFoundError("agency", agency_id)
    return agency


def get_agency_by_name(*, session: Session, name: str) -> Agency | None:
    return session.scalars(select(Agency).where(col(Agency.name) == name)).first()


def list_agencies(*, session: Session) -> Sequence[Agency]:
    return session.scalars(select(Agency).order_by(Agency.name)).all()


def create_user(
    *,
    session: Session,
    actor: Principal,
    agency_id: uuid.UUID,
    user_in: UserCreate,
    hasher: PasswordHasher,
) -> User:
    """A user of ``agency_id``; only the system or that agency's admin may create one."""
    if actor.role != SYSTEM_ROLE:
        actor.require(ADMINS, "create users")
        if agency_id != actor.scope:
            raise NotFoundError("agency", agency_id)
    if session.get(Agency, agency_id) is None:
        raise NotFoundError("agency", agency_id)
    data = user_in.model_dump(exclude={"password", "id"})
    user = User(
        **data,
        id=user_in.id or uuid.uuid4(),
        agency_id=agency_id,
        hashed_password=hash_password(hasher, user_in.password),
    )
    add_record(session, user, actor)
    return user


def get_user(*, session: Session, actor: Principal, user_id: uuid.UUID) -> User:
    return _get_scoped(session, User, user_id, actor)


def get_user_by_username(*, session: Session, username: str) -> User | None:
    return session.scalars(select(User).where(col(User.username) == username)).first()


def list_users(*, session: Session, actor: Principal) -> Sequence[User]:
    query = select(User).order_by(User.username)
    if actor.role != SYSTEM_ROLE:
        query = query.where(col(User.agency_id) == actor.scope)
    return session.scalars(query).all()


def update_user(
    *,
    session: Session,
    actor: Principal,
    user_id: uuid.UUID,
    user_in: UserUpdate,
    if_match: int,
    hasher: PasswordHasher,
) -> User:
    if actor.role != SYSTEM_ROLE:
        actor.require(ADMINS, "change users")
    user = _get_scoped(session, User, user_id, actor)
    check_version(user, if_match)
    changes = user_in.model_dump(exclude_unset=True, exclude={"reason", "password"})
    if user_in.password is not None:
        changes["hashed_password"] = hash_password(hasher, user_in.password)
    apply_changes(session, user, changes, actor, user_in.reason)
    return user


def authenticate(*, session: Session, username: str, password: str, hasher: PasswordHasher) -> User:
    """The active user with these credentials; :class:`AuthenticationError` otherwise."""
    user = get_user_by_username(session=session, username=username)
    if user is None:
        hasher.hash(password)  # same work as a real check: no timing hint that the name is unknown
        raise AuthenticationError("incorrect username or password")
    if not verify_password(hasher, password, user.hashed_password):
        raise AuthenticationError("incorrect username or password")
    if not user.is_active:
        raise AuthenticationError("account disabled")
    return user


def principal_for_user(user: User) -> Principal:
    return Principal(agency_id=user.agency_id, role=Role(user.role).value, user_id=user.id)


# --------------------------------------------------------------------------- devices and keys


def create_device(
    *, session: Session, actor: Principal, agency_id: uuid.UUID, device_in: DeviceCreate
) -> Device:
    if actor.role != SYSTEM_ROLE:
        actor.require(ADMINS, "register devices")
        if agency_id != actor.scope:
            raise NotFoundError("agency", agency_id)
    if session.get(Agency, agency_id) is None:
        raise NotFoundError("agency", agency_id)
    device = Device(
        **device_in.model_dump(exclude={"id"}), id=device_in.id or uuid.uuid4(), agency_id=agency_id
    )
    add_record(session, device, actor)
    return device


def get_device(*, session: Session, actor: Principal, device_id: uuid.UUID) -> Device:
    return _get_scoped(session, Device, device_id, actor)


def list_devices(*, session: Session, actor: Principal) -> Sequence[Device]:
    query = select(Device).order_by(Device.serial)
    if actor.role != SYSTEM_ROLE:
        query = query.where(col(Device.agency_id) == actor.scope)
    return session.scalars(query).all()


def create_device_key(
    *, session: Session, actor: Principal, device_id: uuid.UUID, label: str | None = None
) -> tuple[DeviceKey, str]:
    """A new API key for a device: the stored row and the key itself (shown only once)."""
    if actor.role != SYSTEM_ROLE:
        actor.require(ADMINS, "issue device keys")
    device = _get_scoped(session, Device, device_id, actor)
    key = new_device_key()
    row = DeviceKey(
        device_id=device.id, agency_id=device.agency_id, key_hash=hash_device_key(key), label=label
    )
    add_record(session, row, actor)
    return row, key


def revoke_device_key(*, session: Session, actor: Principal, key_id: uuid.UUID) -> DeviceKey:
    if actor.role != SYSTEM_ROLE:
        actor.require(ADMINS, "revoke device keys")
    row = _get_scoped(session, DeviceKey, key_id, actor)
    if row.revoked_at is None:
        apply_changes(session, row, {"revoked_at": utcnow()}, actor, "revoked")
        # Forget cached keys now, and again once the revocation is visible to every
        # lookup (one started in between must not re-cache the key for a whole TTL).
        authcache.device_keys.clear()
        event.listen(session, "after_commit", lambda _s: authcache.device_keys.clear(), once=True)
    return row


def list_device_keys(
    *, session: Session, actor: Principal, device_id: uuid.UUID
) -> Sequence[DeviceKey]:
    device = _get_scoped(session, Device, device_id, actor)
    return session.scalars(
        select(DeviceKey)
        .where(col(DeviceKey.device_id) == device.id)
        .order_by(col(DeviceKey.created_at))
    ).all()


def principal_for_device_key(*, session: Session, key: str) -> Principal:
    """The field station a device key belongs to; revoked or unknown keys are refused."""
    # Three columns with Core: this runs for every station request.
    row = (
        session.connection().execute(_DEVICE_KEY_LOOKUP, {"key_hash": hash_device_key(key)}).first()
    )
    if row is None:
        raise AuthenticationError("unknown device key")
    if row.revoked_at is not None:
        raise AuthenticationError("device key revoked")
    return Principal(agency_id=row.agency_id, role=DEVICE_ROLE, device_id=row.device_id)


_DEVICE_KEY_LOOKUP = select(
    DeviceKey.__table__.c.agency_id,  # type: ignore[attr-defined]
    DeviceKey.__table__.c.device_id,  # type: ignore[attr-defined]
    DeviceKey.__table__.c.revoked_at,  # type: ignore[attr-defined]
).where(DeviceKey.__table__.c.key_hash == bindparam("key_hash"))  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- seizures


@dataclass(frozen=True, slots=True)
class SeizureFilter:
    """Search criteria; all optional and combined with AND."""

    date_from: datetime | None = None
    date_to: datetime | None = None
    substance: str | None = None
    verdict: Verdict | None = None
    agency_id: uuid.UUID | None = None
    country: str | None = None
    transport_mode: str | None = None
    status: str | None = None
    q: str | None = None


def queue_correlation(session: Session, seizure_id: uuid.UUID) -> None:
    """Correlate a seizure on arrival or change (issue 8); the link engine acts as the system."""
    from service.linking.worker import enqueue_correlation  # the engine imports these models

    enqueue_correlation(session, seizure_id)  # correlated after the commit (durable queue)


def create_seizure(*, session: Session, actor: Principal, seizure_in: SeizureCreate) -> Seizure:
    actor.require(FIELD_WRITERS, "record seizures")
    data = seizure_in.model_dump(exclude={"id", "persons", "companies", "shared_with"})
    seizure = Seizure(
        **data,
        id=seizure_in.id or uuid.uuid4(),
        agency_id=actor.scope,
        created_by_user_id=actor.user_id,
        created_by_device_id=actor.device_id,
    )
    seizure.persons = [p.model_dump(mode="json") for p in seizure_in.persons]  # type: ignore[misc]
    seizure.companies = [c.model_dump(mode="json") for c in seizure_in.companies]  # type: ignore[misc]
    partners = validated_partners(session, actor, seizure_in.sharing, seizure_in.shared_with)
    seizure.shared_with = partners  # type: ignore[assignment]  # stored as strings (JSON)
    _insert_new(session, seizure, actor)
    if seizure.shared_with:  # a new record has no share rows yet: nothing to rebuild
        sync_shares(session, entity_type="seizure", row=seizure)
    queue_correlation(session, seizure.id)
    return seizure


def validated_partners(
    session: Session, actor: Principal, level: SharingLevel, partners: Sequence[uuid.UUID]
) -> list[str]:
    """The stored partner list; each must be another agency of this instance."""
    if level != SharingLevel.PARTNERS and partners:
        raise InvalidInputError("shared_with", "partners are named only with sharing 'partners'")
    stored = partner_ids(level, partners)
    for partner in stored:
        if uuid.UUID(partner) == actor.scope:
            raise InvalidInputError("shared_with", "the owning agency always sees its records")
        if session.get(Agency, uuid.UUID(partner)) is None:
            raise InvalidInputError("shared_with", f"no agency {partner}")
    return stored


def sharing_changes(session: Session, actor: Principal, row: Any, changes: dict[str, Any]) -> bool:
    """Validate a change of ``sharing``/``shared_with`` of ``row`` in ``changes`` (in place).

    Returns whether sharing changes, so the caller rebuilds the share index after writing.
    """
    if "sharing" not in changes and "shared_with" not in changes:
        return False
    level = SharingLevel(changes.get("sharing", row.sharing))
    # Without new partners, a level other than partners drops the named ones.
    kept = row.shared_with if level == SharingLevel.PARTNERS else []
    partners = changes.get("shared_with", kept)
    changes["shared_with"] = validated_partners(session, actor, level, partners)
    return True


def get_seizure(*, session: Session, actor: Principal, seizure_id: uuid.UUID) -> Seizure:
    """A seizure of the actor's agency, or one another agency shares with it."""
    return _get_readable(session, Seizure, seizure_id, actor)


def seizure_scopes(
    actor: Principal, agency_id: uuid.UUID | None = None, *, shared: bool = True
) -> tuple[ColumnElement[bool], ...]:
    """The seizures ``actor`` may read, as disjoint conditions each served by an index.

    Own agency (``ix_seizure_agency_seized_at``), named partner (``record_share``), shared
    with all (``ix_seizure_sharing_seized_at``). Queries run one branch per condition and
    merge them: a single OR of the three would make the planner scan every seizure.
    ``agency_id`` keeps one owning agency; ``shared=False`` keeps only the actor's own.
    """
    scope = actor.scope
    if agency_id is not None and agency_id != scope:
        if not shared:
            return ()
        # One other agency: its date index, and of its seizures those shared with us.
        return (and_(col(Seizure.agency_id) == agency_id, readable(Seizure, "seizure", actor)),)
    own = col(Seizure.agency_id) == scope
    if agency_id is not None or not shared:
        return (own,)
    partners = and_(
        col(Seizure.id).in_(shared_with_agency("seizure", scope)),
        col(Seizure.sharing) == SharingLevel.PARTNERS.value,
        col(Seizure.agency_id) != scope,
    )
    everyone = and_(col(Seizure.sharing) == SharingLevel.ALL.value, col(Seizure.agency_id) != scope)
    return own, partners, everyone


def like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def list_seizures(
    *, session: Session, actor: Principal, filters: SeizureFilter, skip: int = 0, limit: int = 50
) -> tuple[Sequence[Seizure], bool]:
    """Newest first (own and shared seizures); returns the page and whether more rows follow."""
    where: list[Any] = []
    if filters.date_from is not None:
        where.append(Seizure.seized_at >= filters.date_from)
    if filters.date_to is not None:
        where.append(Seizure.seized_at <= filters.date_to)
    if filters.country:
        c = filters.country.upper()
        where.append(
            or_(
                col(Seizure.country) == c,
                col(Seizure.origin_country) == c,
                col(Seizure.departure_country) == c,
                col(Seizure.destination_country) == c,
            )
        )
    if filters.transport_mode:
        where.append(Seizure.transport_mode == filters.transport_mode)
    if filters.status:
        where.append(Seizure.status == filters.status)
    if filters.verdict:
        where.append(
            exists().where(
                col(FieldTest.seizure_id) == Seizure.id,
                col(FieldTest.verdict) == filters.verdict.value,
            )
        )
    # Criteria met in one of several tables: each alternative becomes its own branch.
    alternatives: list[list[Any]] = []
    if filters.substance:
        name = filters.substance.lower()
        alternatives.append(
            [
                exists().where(
                    col(Item.seizure_id) == Seizure.id, func.lower(Item.substance) == name
                ),
                exists().where(
                    col(FieldTest.seizure_id) == Seizure.id,
                    func.lower(FieldTest.main_substance) == name,
                ),
            ]
        )
    if filters.q:
        pattern = like_pattern(filters.q)
        alternatives.append(
            [
                col(Seizure.narrative).ilike(pattern, escape="\\"),
                exists().where(
                    col(Item.seizure_id) == Seizure.id,
                    col(Item.description).ilike(pattern, escape="\\"),
                ),
            ]
        )
    order = (col(Seizure.seized_at).desc(), col(Seizure.id).desc())
    # Own and shared seizures are alternatives too (disjoint ones, each with its own index).
    alternatives.insert(0, list(seizure_scopes(actor, filters.agency_id)))
    if not alternatives[0]:
        return [], False
    branches = [list(combo) for combo in itertools.product(*alternatives)]
    if len(branches) == 1:
        query = select(Seizure).where(*where, *branches[0])
    else:
        # "A or B" over two tables defeats the planner (it hashes every match of each
        # side); a union of per-branch newest pages lets each branch walk an index and stop.
        # Each branch holds the whole requested window, so the union holds the answer.
        window = skip + limit + 1
        pages = [
            select(col(Seizure.id), col(Seizure.seized_at))
            .where(*where, *combo)
            .order_by(*order)
            .limit(window)
            .subquery()
            for combo in branches
        ]
        found = union(*(select(page.c.id) for page in pages)).subquery()
        query = select(Seizure).join(found, found.c.id == Seizure.id)
    query = query.order_by(*order).offset(skip).limit(limit + 1)
    rows = session.scalars(query).all()
    return rows[:limit], len(rows) > limit


def update_seizure(
    *,
    session: Session,
    actor: Principal,
    seizure_id: uuid.UUID,
    seizure_in: SeizureUpdate,
    if_match: int,
) -> Seizure:
    actor.require(EDITORS, "edit seizures")
    seizure = _get_scoped(session, Seizure, seizure_id, actor)
    check_version(seizure, if_match)
    changes = seizure_in.model_dump(exclude_unset=True, exclude={"reason"}, mode="python")
    for key in ["persons", "companies"]:  # a list: str keys, as model_dump(include=) takes
        if key in changes and changes[key] is not None:
            changes[key] = [dict(v) for v in seizure_in.model_dump(mode="json", include={key})[key]]
    for key in [k for k, v in changes.items() if v is None]:
        column = Seizure.__table__.c[key]  # type: ignore[attr-defined]
        if not column.nullable:
            raise InvalidInputError(key, "cannot be cleared")
    sharing = sharing_changes(session, actor, seizure, changes)
    if apply_changes(session, seizure, changes, actor, seizure_in.reason) and sharing:
        sync_shares(session, entity_type="seizure", row=seizure)
    queue_correlation(session, seizure.id)
    return seizure


# --------------------------------------------------------------------------- items


def create_item(
    *, session: Session, actor: Principal, seizure_id: uuid.UUID, item_in: ItemCreate
) -> Item:
    actor.require(FIELD_WRITERS, "record items")
    seizure = _get_scoped(session, Seizure, seizure_id, actor)
    item = Item(
        **item_in.model_dump(exclude={"id"}),
        id=item_in.id or uuid.uuid4(),
        seizure_id=seizure.id,
        agency_id=seizure.agency_id,
    )
    _insert_new(session, item, actor)
    queue_correlation(session, item.seizure_id)
    return item


def get_item(*, session: Session, actor: Principal, item_id: uuid.UUID) -> Item:
    return _get_readable(session, Item, item_id, actor)


def list_items(*, session: Session, actor: Principal, seizure_id: uuid.UUID) -> Sequence[Item]:
    seizure = _get_readable(session, Seizure, seizure_id, actor)
    return session.scalars(
        select(Item)
        .where(col(Item.seizure_id) == seizure.id)
        .order_by(col(Item.created_at), col(Item.id))
    ).all()


def update_item(
    *, session: Session, actor: Principal, item_id: uuid.UUID, item_in: ItemUpdate, if_match: int
) -> Item | Approval:
    """Apply the change, or, when it alters a recorded mass or substance, file it for approval."""
    actor.require(EDITORS, "edit items")
    item = _get_scoped(session, Item, item_id, actor)
    check_version(item, if_match)
    changes = item_in.model_dump(exclude_unset=True, exclude={"reason"})
    if "description" in changes and changes["description"] is None:
        raise InvalidInputError("description", "cannot be cleared")
    guarded = [
        k
        for k in FOUR_EYES_ITEM_FIELDS
        if k in changes and changes[k] != getattr(item, k) and getattr(item, k) is not None
    ]
    if guarded:
        payload = {k: (v.value if hasattr(v, "value") else v) for k, v in changes.items()}
        approval = Approval(
            agency_id=item.agency_id,
            entity_type="item",
            entity_id=item.id,
            action="update",
            payload=payload,
            reason=item_in.reason,
            base_version=item.version,
            requested_by_user_id=actor.user_id,
            requested_by_device_id=actor.device_id,
        )
        add_record(session, approval, actor, reason=item_in.reason)
        return approval
    apply_changes(session, item, changes, actor, item_in.reason)
    queue_correlation(session, item.seizure_id)
    return item


# --------------------------------------------------------------------------- field tests


def _main_substance(identification: dict[str, Any]) -> str | None:
    components = identification.get("components") or []
    if components:
        return str(components[0]["name"])
    if identification.get("verdict") == Verdict.IDENTIFIED.value and identification.get(
        "candidates"
    ):
        return str(identification["candidates"][0]["name"])
    return None


def spectrum_bytes(spectrum: RawSpectrum) -> tuple[bytes, bytes, str]:
    """float64 little-endian bytes of axis and intensities and their joint SHA-256."""
    axis, values = spectrum.f64le()
    digest = hashlib.sha256(axis)
    digest.update(values)
    return axis, values, digest.hexdigest()


def decode_spectrum(test: FieldTest) -> RawSpectrum:
    """The stored raw spectrum, exactly the numbers that were sent."""
    axis = np.frombuffer(test.axis_f64le, dtype="<f8")
    values = np.frombuffer(test.intensities_f64le, dtype="<f8")
    return RawSpectrum.model_construct(
        kind=SpectrumKindName(test.spectrum_kind), axis=axis.tolist(), intensities=values.tolist()
    )


def create_field_test(
    *,
    session: Session,
    actor: Principal,
    item_id: uuid.UUID,
    test_in: FieldTestCreate,
    identification_raw: dict[str, Any] | None = None,
) -> FieldTest:
    """Record a field test; ``identification_raw`` is the matcher's JSON as received (verbatim)."""
    actor.require(FIELD_WRITERS, "record field tests")
    item = _get_scoped(session, Item, item_id, actor)
    device_id = test_in.device_id or actor.device_id
    if device_id is not None and device_id != actor.device_id:
        _get_scoped(session, Device, device_id, actor)  # the device must be ours
    operator_id = test_in.operator_id or actor.user_id
    if operator_id is not None:
        _get_scoped(session, User, operator_id, actor)
    ident = (
        identification_raw
        if identification_raw is not None
        else test_in.identification.model_dump(mode="json")
    )
    axis, values, digest = spectrum_bytes(test_in.spectrum)
    test = FieldTest(
        **test_in.model_dump(
            exclude={"id", "spectrum", "identification", "device_id", "operator_id"}
        ),
        id=test_in.id or uuid.uuid4(),
        device_id=device_id,
        operator_id=operator_id,
        item_id=item.id,
        seizure_id=item.seizure_id,
        agency_id=item.agency_id,
        verdict=test_in.identification.verdict.value,
        main_substance=_main_substance(ident),
        library_version=test_in.identification.library_version,
        identification_json=json.dumps(ident, ensure_ascii=False, allow_nan=False),
        spectrum_kind=test_in.spectrum.kind.value,
        n_points=len(test_in.spectrum.axis),
        axis_f64le=axis,
        intensities_f64le=values,
        spectrum_sha256=digest,
    )
    _insert_new(session, test, actor)
    queue_correlation(session, test.seizure_id)
    return test


def get_field_test(*, session: Session, actor: Principal, test_id: uuid.UUID) -> FieldTest:
    return _get_readable(session, FieldTest, test_id, actor)


def list_field_tests(
    *, session: Session, actor: Principal, item_id: uuid.UUID
) -> Sequence[FieldTest]:
    item = _get_readable(session, Item, item_id, actor)
    return session.scalars(
        select(FieldTest)
        .where(col(FieldTest.item_id) == item.id)
        .order_by(col(FieldTest.tested_at), col(FieldTest.id))
    ).all()


def field_test_public(test: FieldTest, *, with_spectrum: bool = True) -> FieldTestPublic:
    data = {c.key: getattr(test, c.key) for c in FieldTest.__table__.columns}  # type: ignore[attr-defined]
    data["identification"] = json.loads(test.identification_json)
    data["spectrum"] = decode_spectrum(test) if with_spectrum else None
    return FieldTestPublic.model_validate(data)


# --------------------------------------------------------------------------- custody


def create_custody_event(
    *, session: Session, actor: Principal, item_id: uuid.UUID, event_in: CustodyEventCreate
) -> CustodyEvent | Approval:
    """Record a custody event; destruction is filed for a supervisor's approval instead."""
    actor.require(CUSTODY_WRITERS, "record custody events")
    item = _get_scoped(session, Item, item_id, actor)
    event_id = event_in.id or uuid.uuid4()
    if event_in.kind == CustodyKind.DESTROYED:
        if not event_in.reason:
            raise InvalidInputError("reason", "recording destruction needs a reason")
        payload = event_in.model_dump(mode="json", exclude={"reason"})
        payload["id"] = str(event_id)
        approval = Approval(
            agency_id=item.agency_id,
            entity_type="item",
            entity_id=item.id,
            action="custody_destroyed",
            payload=payload,
            reason=event_in.reason,
            requested_by_user_id=actor.user_id,
            requested_by_device_id=actor.device_id,
        )
        add_record(session, approval, actor, reason=event_in.reason)
        return approval
    event = _custody_row(item, event_in, event_id, actor)
    _insert_new(session, event, actor, reason=event_in.reason)
    return event


def _custody_row(
    item: Item, event_in: CustodyEventCreate, event_id: uuid.UUID, actor: Principal
) -> CustodyEvent:
    return CustodyEvent(
        **event_in.model_dump(exclude={"id", "reason"}),
        id=event_id,
        item_id=item.id,
        agency_id=item.agency_id,
        recorded_by_user_id=actor.user_id,
        recorded_by_device_id=actor.device_id,
    )


def list_custody_events(
    *, session: Session, actor: Principal, item_id: uuid.UUID
) -> Sequence[CustodyEvent]:
    """The custody timeline of an item, oldest first."""
    item = _get_readable(session, Item, item_id, actor)
    return session.scalars(
        select(CustodyEvent)
        .where(col(CustodyEvent.item_id) == item.id)
        .order_by(col(CustodyEvent.occurred_at), col(CustodyEvent.created_at))
    ).all()


# --------------------------------------------------------------------------- laboratory


def create_lab_result(
    *, session: Session, actor: Principal, item_id: uuid.UUID, result_in: LabResultCreate
) -> LabResult:
    actor.require(LAB_WRITERS, "record laboratory results")
    item = _get_scoped(session, Item, item_id, actor)
    result = LabResult(
        **result_in.model_dump(exclude={"id"}),
        id=result_in.id or uuid.uuid4(),
        item_id=item.id,
        agency_id=item.agency_id,
        analyst_id=actor.user_id,
    )
    _insert_new(session, result, actor)
    queue_correlation(session, item.seizure_id)
    return result


def list_lab_results(
    *, session: Session, actor: Principal, item_id: uuid.UUID
) -> Sequence[LabResult]:
    item = _get_readable(session, Item, item_id, actor)
    return session.scalars(
        select(LabResult)
        .where(col(LabResult.item_id) == item.id)
        .order_by(col(LabResult.analysed_at), col(LabResult.id))
    ).all()


def _grams(mass: float | None, unit: str | None) -> float | None:
    if mass is None or unit is None:
        return None
    factor = GRAMS_PER_UNIT.get(MassUnit(unit))
    return None if factor is None else mass * factor


def _same_substance(a: str | None, b: str) -> bool:
    return a is not None and a.strip().casefold() == b.strip().casefold()


def discrepancy(
    *, item: Item, field_substance: str | None, result: LabResult, tolerance_percent: float
) -> Discrepancy:
    """Compare an item's field record with a laboratory result (pure)."""
    field_g = _grams(item.net_mass, item.mass_unit)
    lab_g = _grams(result.net_mass, result.mass_unit)
    loss = None
    if field_g is not None and lab_g is not None and field_g > 0:
        loss = (field_g - lab_g) / field_g * 100.0
    return Discrepancy(
        item_id=item.id,
        seizure_id=item.seizure_id,
        lab_result_id=result.id,
        field_substance=field_substance,
        lab_substance=result.substance,
        identity_differs=not _same_substance(field_substance, result.substance),
        field_net_mass_g=field_g,
        lab_net_mass_g=lab_g,
        mass_loss_percent=loss,
        mass_lost_beyond_tolerance=loss is not None and loss > tolerance_percent,
        tolerance_percent=tolerance_percent,
    )


def _field_substance(session: Session, item: Item) -> str | None:
    if item.substance:
        return item.substance
    latest = session.scalars(
        select(col(FieldTest.main_substance))
        .where(col(FieldTest.item_id) == item.id)
        .order_by(col(FieldTest.tested_at).desc())
    ).first()
    return latest


def item_discrepancies(
    *, session: Session, actor: Principal, item_id: uuid.UUID, tolerance_percent: float
) -> list[Discrepancy]:
    item = _get_readable(session, Item, item_id, actor)
    field = _field_substance(session, item)
    results = list_lab_results(session=session, actor=actor, item_id=item_id)
    return [
        discrepancy(item=item, field_substance=field, result=r, tolerance_percent=tolerance_percent)
        for r in results
    ]


def list_discrepancies(
    *,
    session: Session,
    actor: Principal,
    tolerance_percent: float,
    only_flagged: bool = True,
    limit: int = 500,
) -> list[Discrepancy]:
    """Field-versus-laboratory comparisons over the agency's items with lab results.

    An agency's own quality report: seizures other agencies share are left out (their
    discrepancies are the owning agency's to act on; per item they are readable).
    """
    rows = session.execute(
        select(Item, LabResult)
        .join(LabResult, col(LabResult.item_id) == Item.id)
        .where(col(Item.agency_id) == actor.scope)
        .order_by(col(LabResult.analysed_at).desc())
        .limit(limit)
    ).all()
    out = []
    for item, result in rows:
        found = discrepancy(
            item=item,
            field_substance=_field_substance(session, item),
            result=result,
            tolerance_percent=tolerance_percent,
        )
        if not only_flagged or found.identity_differs or found.mass_lost_beyond_tolerance:
            out.append(found)
    return out


# --------------------------------------------------------------------------- approvals


def list_approvals(
    *, session: Session, actor: Principal, status: ApprovalStatus | None = None
) -> Sequence[Approval]:
    query = select(Approval).where(col(Approval.agency_id) == actor.scope)
    if status is not None:
        query = query.where(col(Approval.status) == status.value)
    return session.scalars(query.order_by(col(Approval.created_at).desc())).all()


def get_approval(*, session: Session, actor: Principal, approval_id: uuid.UUID) -> Approval:
    return _get_scoped(session, Approval, approval_id, actor)


def decide_approval(
    *, session: Session, actor: Principal, approval_id: uuid.UUID, decision: ApprovalDecision
) -> Approval:
    """A supervisor other than the requester approves (and the change is applied) or rejects."""
    actor.require(APPROVERS, "approve changes")
    approval = _get_scoped(session, Approval, approval_id, actor)
    if approval.status != ApprovalStatus.PENDING.value:
        raise ConflictError(f"approval {approval.id} is already {approval.status}")
    if actor.user_id is not None and actor.user_id == approval.requested_by_user_id:
        raise PermissionDeniedError(actor.role, "approve their own request (four eyes)")
    result_id: uuid.UUID | None = None
    if decision.approve:
        item = _get_scoped(session, Item, approval.entity_id, actor)
        requester = Principal(
            agency_id=approval.agency_id,
            role="requester",
            user_id=approval.requested_by_user_id,
            device_id=approval.requested_by_device_id,
        )
        if approval.action == "update":
            if approval.base_version is not None and item.version != approval.base_version:
                raise PreconditionFailedError("item", approval.base_version, item.version)
            changes = ItemUpdate.model_validate({**approval.payload, "reason": approval.reason})
            apply_changes(
                session,
                item,
                changes.model_dump(exclude_unset=True, exclude={"reason"}),
                requester,
                f"{approval.reason} (approved by {actor.user_id}, approval {approval.id})",
            )
            result_id = item.id
            queue_correlation(session, item.seizure_id)
        elif approval.action == "custody_destroyed":
            event_in = CustodyEventCreate.model_validate(approval.payload)
            event = _custody_row(item, event_in, uuid.UUID(approval.payload["id"]), requester)
            add_record(session, event, actor, reason=f"{approval.reason} (approval {approval.id})")
            result_id = event.id
        else:  # pragma: no cover - only the two actions above are ever filed
            raise ConflictError(f"unknown approval action {approval.action!r}")
    apply_changes(
        session,
        approval,
        {
            "status": (
                ApprovalStatus.APPROVED if decision.approve else ApprovalStatus.REJECTED
            ).value,
            "decided_by_user_id": actor.user_id,
            "decided_at": utcnow(),
            "decision_reason": decision.reason,
            "result_entity_id": result_id,
        },
        actor,
        decision.reason or ("approved" if decision.approve else "rejected"),
    )
    return approval


# --------------------------------------------------------------------------- attachments


def store_blob(session: Session, data: bytes) -> str:
    """Store bytes once, content-addressed; return their SHA-256 (hex)."""
    digest = hashlib.sha256(data).hexdigest()
    if session.get(Blob, digest) is None:
        try:
            with session.begin_nested():
                session.execute(insert(Blob).values(sha256=digest, size=len(data), data=data))
        except IntegrityError:
            pass  # stored concurrently by another request: same bytes, same key
    return digest


def stored_file_fields(
    session: Session, *, filename: str, media_type: str, data: bytes
) -> dict[str, Any]:
    """Store a file's bytes once (:func:`store_blob`); the fields of a record naming them."""
    return {
        "sha256": store_blob(session, data),
        "filename": filename[:255] or "file",
        "media_type": media_type[:100] or "application/octet-stream",
        "size": len(data),
    }


def add_attachment(
    *,
    session: Session,
    actor: Principal,
    item_id: uuid.UUID,
    filename: str,
    media_type: str,
    data: bytes,
    attachment_id: uuid.UUID | None = None,
) -> Attachment:
    """Store bytes once by SHA-256 and link them to an item."""
    actor.require(FIELD_WRITERS | LAB_WRITERS, "attach files")
    if not data:
        raise InvalidInputError("file", "is empty")
    item = _get_scoped(session, Item, item_id, actor)
    attachment = Attachment(
        id=attachment_id or uuid.uuid4(),
        item_id=item.id,
        agency_id=item.agency_id,
        **stored_file_fields(session, filename=filename, media_type=media_type, data=data),
    )
    add_record(session, attachment, actor)
    return attachment


def list_attachments(
    *, session: Session, actor: Principal, item_id: uuid.UUID
) -> Sequence[Attachment]:
    item = _get_readable(session, Item, item_id, actor)
    return session.scalars(
        select(Attachment)
        .where(col(Attachment.item_id) == item.id)
        .order_by(col(Attachment.created_at))
    ).all()


def attachment_content(
    *, session: Session, actor: Principal, attachment_id: uuid.UUID
) -> tuple[Attachment, bytes]:
    attachment = _get_readable(session, Attachment, attachment_id, actor)
    blob = session.get(Blob, attachment.sha256)
    if blob is None:
        raise NotFoundError("blob", attachment.sha256)
    return attachment, bytes(blob.data)


# --------------------------------------------------------------------------- history


def list_versions(
    *, session: Session, actor: Principal, entity_type: str, entity_id: uuid.UUID
) -> Sequence[RecordVersion]:
    """Every version of one record the actor may read, oldest first.

    The history of a seizure record shared with the actor's agency is shared with it.
    """
    query = select(RecordVersion).where(
        col(RecordVersion.entity_type) == entity_type, col(RecordVersion.entity_id) == entity_id
    )
    shared_model = SHARED_WITH_SEIZURE.get(entity_type)
    if actor.role == SYSTEM_ROLE:
        pass
    elif shared_model is not None:
        _get_readable(session, shared_model, entity_id, actor)  # "not found" unless readable
    else:
        query = query.where(col(RecordVersion.agency_id) == actor.scope)
    rows = session.scalars(query.order_by(col(RecordVersion.version))).all()
    if not rows:
        raise NotFoundError(entity_type, entity_id)
    return rows


# --------------------------------------------------------------------------- idempotency


def find_idempotent(
    *, session: Session, scope: uuid.UUID, key: uuid.UUID
) -> IdempotencyRecord | None:
    return session.scalars(
        select(IdempotencyRecord).where(
            col(IdempotencyRecord.scope) == scope, col(IdempotencyRecord.key) == key
        )
    ).first()


def store_idempotent_response(
    *,
    session: Session,
    scope: uuid.UUID,
    key: uuid.UUID,
    method: str,
    path: str,
    request_sha256: str,
    status_code: int,
    response: str,
) -> bool:
    """Insert the first answer for ``key``; False if another request stored one first.

    The unique constraint on (scope, key) decides, never a prior check: on PostgreSQL a
    concurrent holder makes this statement wait for its commit and then do nothing.
    """
    values = {
        "scope": scope,
        "key": key,
        "method": method,
        "path": path,
        "request_sha256": request_sha256,
        "status_code": status_code,
        "response": response,
        "created_at": utcnow(),
    }
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        return conn.exec_driver_sql(_PG_STORE_IDEMPOTENT, values).first() is not None
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    table = IdempotencyRecord.__table__  # type: ignore[attr-defined]
    statement = (
        sqlite_insert(table)
        .values(values)
        .on_conflict_do_nothing(index_elements=["scope", "key"])
        .returning(table.c.id)
    )
    return conn.execute(statement).first() is not None


_PG_STORE_IDEMPOTENT = (
    "INSERT INTO idempotency_record (scope, key, method, path, request_sha256, status_code,"
    " response, created_at) VALUES (%(scope)s, %(key)s, %(method)s, %(path)s,"
    " %(request_sha256)s, %(status_code)s, %(response)s, %(created_at)s)"
    " ON CONFLICT (scope, key) DO NOTHING RETURNING id"
)
