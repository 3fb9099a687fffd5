"""``fieldscan admin …`` (agencies, users, device keys) and ``fieldscan audit …``."""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from fieldscan.cli._app import UserError, app
from fieldscan.cli.serve import DataDirOption, load_settings

admin_app = typer.Typer(
    help="Bootstrap agencies, users and field-station device keys.", no_args_is_help=True
)
agency_app = typer.Typer(help="Agencies.", no_args_is_help=True)
user_app = typer.Typer(help="User accounts.", no_args_is_help=True)
device_app = typer.Typer(help="Field devices and their API keys.", no_args_is_help=True)
audit_app = typer.Typer(
    help="Verify and sign the tamper-evident audit chain.", no_args_is_help=True
)
admin_app.add_typer(agency_app, name="agency")
admin_app.add_typer(user_app, name="user")
admin_app.add_typer(device_app, name="device")
app.add_typer(admin_app, name="admin")
app.add_typer(audit_app, name="audit")

PASSWORD_ENV = "FIELDSCAN_NEW_PASSWORD"


@contextmanager
def _session(data_dir: Path | None) -> Iterator[tuple[Any, Any]]:
    """A session on the migrated database, committed on success; and the settings."""
    from sqlmodel import Session

    from service import audit
    from service.audit import AuditSettings, CheckpointSigner
    from service.core.db import check_connection, make_engine, migrate

    settings: Any = load_settings(data_dir)
    engine = make_engine(settings.sqlalchemy_url)
    try:
        check_connection(engine)
        migrate(engine)
        signer = CheckpointSigner.load_or_create(settings.signing_key_path)
        with Session(engine, expire_on_commit=False) as session:
            audit.bind(
                session, AuditSettings(signer=signer, checkpoint_every=settings.checkpoint_every)
            )
            yield session, settings
            session.commit()
            # Link this command's audit events now, not at the service's next write.
            audit.chain_pending(session, wait=True)
            session.commit()
    finally:
        engine.dispose()


def _echo_json(obj: Any) -> None:
    from fastapi.encoders import jsonable_encoder

    typer.echo(json.dumps(jsonable_encoder(obj), ensure_ascii=False))


def _choice(value: str, choices: type[Any], what: str) -> Any:
    try:
        return choices(value)
    except ValueError:
        allowed = ", ".join(c.value for c in choices)
        raise UserError(f"unknown {what} {value!r}; choose one of: {allowed}") from None


def _agency_id(session: Any, name_or_id: str) -> uuid.UUID:
    from service import crud

    try:
        return uuid.UUID(name_or_id)
    except ValueError:
        pass
    agency = crud.get_agency_by_name(session=session, name=name_or_id)
    if agency is None:
        raise UserError(f"no agency named {name_or_id!r} (see `fieldscan admin agency list`)")
    return agency.id


def _validated(schema: Any, **values: Any) -> Any:
    from pydantic import ValidationError

    try:
        return schema.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise UserError(f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from None


@agency_app.command("create")
def agency_create(
    name: Annotated[str, typer.Argument(help="Agency name (unique).")],
    country: Annotated[str, typer.Option(help="ISO 3166-1 alpha-2 code, e.g. PE.")],
    kind: Annotated[
        str, typer.Option(help="customs, police, anti_narcotics, prosecution or laboratory.")
    ],
    data_dir: DataDirOption = None,
) -> None:
    """Create an agency; prints it as JSON."""
    from service import crud
    from service.models import AgencyCreate, AgencyKind, AgencyPublic
    from service.principal import SYSTEM

    agency_in = _validated(
        AgencyCreate,
        name=name,
        country=country.upper(),
        kind=_choice(kind, AgencyKind, "agency kind"),
    )
    with _session(data_dir) as (session, _):
        if crud.get_agency_by_name(session=session, name=name) is not None:
            raise UserError(f"an agency named {name!r} exists already")
        agency = crud.create_agency(session=session, actor=SYSTEM, agency_in=agency_in)
    _echo_json(AgencyPublic.model_validate(agency))


@agency_app.command("list")
def agency_list(data_dir: DataDirOption = None) -> None:
    """List agencies, one JSON object per line."""
    from service import crud
    from service.models import AgencyPublic

    with _session(data_dir) as (session, _):
        for agency in crud.list_agencies(session=session):
            _echo_json(AgencyPublic.model_validate(agency))


@user_app.command("create")
def user_create(
    username: Annotated[str, typer.Argument(help="Login name.")],
    agency: Annotated[str, typer.Option(help="Agency name or id.")],
    role: Annotated[str, typer.Option(help="officer, supervisor, investigator, analyst or admin.")],
    full_name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    password_stdin: Annotated[
        bool, typer.Option(help="Read the password from standard input.")
    ] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Create a user. The password comes from stdin, $FIELDSCAN_NEW_PASSWORD, or a prompt."""
    from service import crud
    from service.core.security import password_hasher
    from service.models import Role, UserCreate, UserPublic
    from service.principal import SYSTEM

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif os.environ.get(PASSWORD_ENV):
        password = os.environ[PASSWORD_ENV]
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    user_in = _validated(
        UserCreate,
        username=username,
        full_name=full_name,
        role=_choice(role, Role, "role"),
        password=password,
    )
    with _session(data_dir) as (session, settings):
        if crud.get_user_by_username(session=session, username=username) is not None:
            raise UserError(f"user {username!r} exists already")
        hasher = password_hasher(
            time_cost=settings.argon2_time_cost, memory_kib=settings.argon2_memory_kib
        )
        user = crud.create_user(
            session=session,
            actor=SYSTEM,
            agency_id=_agency_id(session, agency),
            user_in=user_in,
            hasher=hasher,
        )
    _echo_json(UserPublic.model_validate(user))


@user_app.command("list")
def user_list(data_dir: DataDirOption = None) -> None:
    """List users, one JSON object per line."""
    from service import crud
    from service.models import UserPublic
    from service.principal import SYSTEM

    with _session(data_dir) as (session, _):
        for user in crud.list_users(session=session, actor=SYSTEM):
            _echo_json(UserPublic.model_validate(user))


@device_app.command("create")
def device_create(
    agency: Annotated[str, typer.Option(help="Agency name or id.")],
    model: Annotated[str, typer.Option(help="Device model.")],
    serial: Annotated[str, typer.Option(help="Serial number.")],
    firmware: Annotated[str | None, typer.Option(help="Firmware version.")] = None,
    key: Annotated[bool, typer.Option("--key/--no-key", help="Also issue an API key.")] = True,
    data_dir: DataDirOption = None,
) -> None:
    """Register a field device (and by default issue its API key, shown only here)."""
    from service import crud
    from service.models import DeviceCreate, DevicePublic
    from service.principal import SYSTEM

    device_in = _validated(DeviceCreate, model=model, serial=serial, firmware=firmware)
    with _session(data_dir) as (session, _):
        device = crud.create_device(
            session=session,
            actor=SYSTEM,
            agency_id=_agency_id(session, agency),
            device_in=device_in,
        )
        out: dict[str, Any] = DevicePublic.model_validate(device).model_dump(mode="json")
        if key:
            row, secret = crud.create_device_key(
                session=session, actor=SYSTEM, device_id=device.id, label="cli"
            )
            out["api_key"] = secret
            out["api_key_id"] = str(row.id)
    _echo_json(out)


@device_app.command("key")
def device_key(
    device_id: Annotated[str, typer.Argument(help="Device id.")],
    label: Annotated[str | None, typer.Option(help="What the key is for.")] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Issue another API key for a device; prints it once."""
    from service import crud
    from service.principal import SYSTEM

    with _session(data_dir) as (session, _):
        row, secret = crud.create_device_key(
            session=session, actor=SYSTEM, device_id=_uuid(device_id, "device id"), label=label
        )
    _echo_json({"api_key": secret, "api_key_id": row.id, "device_id": row.device_id})


@device_app.command("revoke-key")
def device_revoke_key(
    key_id: Annotated[str, typer.Argument(help="API key id (not the key itself).")],
    data_dir: DataDirOption = None,
) -> None:
    """Revoke a device API key; the station's next request is refused."""
    from service import crud
    from service.principal import SYSTEM

    with _session(data_dir) as (session, _):
        row = crud.revoke_device_key(session=session, actor=SYSTEM, key_id=_uuid(key_id, "key id"))
    _echo_json({"api_key_id": row.id, "revoked_at": row.revoked_at})


def _uuid(text: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise UserError(f"{what} {text!r} is not a UUID") from None


@audit_app.command("verify")
def audit_verify(
    data_dir: DataDirOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full report as JSON.")] = False,
) -> None:
    """Check the audit chain, checkpoints, record versions and current rows. Exit 1 on tampering."""
    from service import audit
    from service.audit import CheckpointSigner

    with _session(data_dir) as (session, settings):
        audit.chain_pending(session, wait=True)
        session.commit()
        trusted = list(settings.trusted_checkpoint_keys)
        if settings.signing_key_path.exists():
            trusted.append(
                CheckpointSigner.load_or_create(settings.signing_key_path).public_key_hex
            )
        report = audit.verify(session, trusted_public_keys=trusted)
    if as_json:
        typer.echo(report.model_dump_json())
    else:
        typer.echo(
            f"{'OK' if report.ok else 'TAMPERING DETECTED'}: {report.events_checked} events, "
            f"{report.versions_checked} versions, {report.rows_checked} records, "
            f"{report.checkpoints_checked} signed checkpoints; "
            f"head {report.head_seq} {report.head_hash or '-'}"
        )
        for problem in report.problems:
            typer.echo(f"  {problem.kind}: {problem.detail}")
    if not report.ok:
        raise typer.Exit(1)


@audit_app.command("checkpoint")
def audit_checkpoint(data_dir: DataDirOption = None) -> None:
    """Sign the current chain head with the service's Ed25519 key."""
    from service import audit
    from service.audit import CheckpointSigner

    with _session(data_dir) as (session, settings):
        signer = CheckpointSigner.load_or_create(settings.signing_key_path)
        checkpoint = audit.make_checkpoint(session=session, signer=signer)
    _echo_json(
        {
            "seq": checkpoint.seq,
            "head_hash": checkpoint.head_hash,
            "public_key": checkpoint.public_key,
        }
    )


@admin_app.command("seed")
def admin_seed(
    agency: Annotated[str, typer.Option(help="Agency name or id that owns the seizures.")],
    count: Annotated[int, typer.Option(min=1, help="How many seizures (one item each).")] = 1000,
    seconds: Annotated[float | None, typer.Option(min=1, help="Stop after this long.")] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Generate synthetic, audited seizures in bulk (benchmarks and demos)."""
    from service.seed import seed_seizures

    with _session(data_dir) as (session, _):
        agency_id = _agency_id(session, agency)
        engine = session.get_bind()
    made = seed_seizures(
        engine=engine,
        agency_id=agency_id,
        count=count,
        deadline_s=seconds,
        progress=lambda n: typer.echo(f"{n} seizures", err=True) if n % 50_000 == 0 else None,
    )
    _echo_json({"seizures": made, "agency_id": agency_id})
