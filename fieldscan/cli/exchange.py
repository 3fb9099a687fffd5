"""``fieldscan exchange …``: packages of shared records between agencies on other instances.

Typical use, agency A here and agency X on another instance::

    fieldscan exchange keys --agency A > a-keys.json          # give to X (out of band)
    fieldscan exchange partner-add --agency A --from x-keys.json
    fieldscan exchange export --agency A --partner X --out to-x.json
    fieldscan exchange import from-x.json --agency A

Commands act directly on the database as the system for the named agency (like
``fieldscan admin``); the API offers the same to signed-in users, with roles enforced.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from fieldscan.cli._app import UserError, app
from fieldscan.cli.admin import _agency_id, _echo_json, _session, _validated
from fieldscan.cli.serve import DataDirOption

exchange_app = typer.Typer(
    help="Exchange signed (and encrypted) packages of shared records with partner agencies.",
    no_args_is_help=True,
)
app.add_typer(exchange_app, name="exchange")

AgencyOption = Annotated[str, typer.Option(help="The local agency (name or id).")]


def _actor(agency_id: uuid.UUID) -> Any:
    from service.principal import SYSTEM_ROLE, Principal

    return Principal(agency_id=agency_id, role=SYSTEM_ROLE)


@exchange_app.command("keys")
def keys(agency: AgencyOption, data_dir: DataDirOption = None) -> None:
    """Print the agency's public exchange keys as JSON (made on first use) for partners."""
    from service.exchange.partners import agency_keys

    with _session(data_dir) as (session, settings):
        public = agency_keys(
            session=session,
            actor=_actor(_agency_id(session, agency)),
            key_dir=settings.exchange_keys_path,
        )
    _echo_json(public)


@exchange_app.command("partner-add")
def partner_add(
    agency: AgencyOption,
    from_file: Annotated[
        Path | None,
        typer.Option(
            "--from",
            help="The JSON the partner's `fieldscan exchange keys` printed.",
            dir_okay=False,
        ),
    ] = None,
    partner_id: Annotated[str | None, typer.Option("--id", help="Partner agency id.")] = None,
    name: Annotated[str | None, typer.Option(help="Partner agency name.")] = None,
    country: Annotated[str | None, typer.Option(help="ISO 3166-1 alpha-2 code.")] = None,
    kind: Annotated[str | None, typer.Option(help="customs, police, anti_narcotics, ...")] = None,
    signing_key: Annotated[str | None, typer.Option(help="Ed25519 public key, hex.")] = None,
    encryption_key: Annotated[str | None, typer.Option(help="X25519 public key, hex.")] = None,
    note: Annotated[str | None, typer.Option(help="Why, who vouched for the keys...")] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Register a partner agency's public keys for the local agency; prints the partner."""
    from service.exchange.models import ExchangePartnerCreate
    from service.exchange.partners import register_partner

    values: dict[str, Any] = {}
    if from_file is not None:
        try:
            loaded = json.loads(from_file.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise UserError(f"{from_file}: not JSON ({exc})") from None
        if not isinstance(loaded, dict):
            raise UserError(f"{from_file}: expected the JSON object of `fieldscan exchange keys`")
        values.update(loaded)
    given = {
        "agency_id": partner_id,
        "name": name,
        "country": country.upper() if country else None,
        "kind": kind,
        "signing_key": signing_key,
        "encryption_key": encryption_key,
        "note": note,
    }
    values.update({k: v for k, v in given.items() if v is not None})
    fields = set(ExchangePartnerCreate.model_fields)
    missing = sorted(
        {"agency_id", "name", "country", "kind", "signing_key", "encryption_key"} - set(values)
    )
    if missing:
        raise UserError(f"missing {', '.join(missing)} (give --from FILE or the options)")
    partner_in = _validated(
        ExchangePartnerCreate, **{k: v for k, v in values.items() if k in fields}
    )
    with _session(data_dir) as (session, _):
        partner = register_partner(
            session=session, actor=_actor(_agency_id(session, agency)), partner_in=partner_in
        )
    _echo_json(partner)


@exchange_app.command("partners")
def partners(agency: AgencyOption, data_dir: DataDirOption = None) -> None:
    """List the local agency's partners, one JSON object per line."""
    from service.exchange.partners import list_partners

    with _session(data_dir) as (session, _):
        rows = list_partners(session=session, actor=_actor(_agency_id(session, agency)))
    for row in rows:
        _echo_json(row)


@exchange_app.command("export")
def export(
    agency: AgencyOption,
    partner: Annotated[str, typer.Option(help="The partner agency (name or id).")],
    out: Annotated[Path, typer.Option(help="Where to write the package.", dir_okay=False)],
    encrypt: Annotated[
        bool, typer.Option("--encrypt/--no-encrypt", help="Encrypt to the partner's key.")
    ] = True,
    since: Annotated[
        datetime | None,
        typer.Option(
            help="Only seizures changed since then (UTC), e.g. the last exchange's date.",
            formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"],
        ),
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Write the package of everything the agency shares with the partner; prints a summary."""
    from service.exchange.exporter import export_package

    with _session(data_dir) as (session, settings):
        package = export_package(
            session=session,
            actor=_actor(_agency_id(session, agency)),
            partner_agency_id=_agency_id(session, partner),
            key_dir=settings.exchange_keys_path,
            encrypt=encrypt,
            since=since.replace(tzinfo=UTC) if since else None,
        )
        # Written before the commit: a package that cannot be saved is not recorded as sent.
        out.write_bytes(package.data)
    _echo_json(
        {
            "package_id": package.package_id,
            "recipient_agency_id": package.recipient_id,
            "encrypted": package.encrypted,
            "records": package.counts,
            "file": str(out),
            "bytes": len(package.data),
        }
    )


@exchange_app.command("import")
def import_(
    package: Annotated[Path, typer.Argument(help="The package file.", exists=True, dir_okay=False)],
    agency: AgencyOption,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full report as JSON.")] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Verify a partner's package and store its records; a refused one writes nothing (exit 1).

    With ``--json``, the report (each skipped or rejected record with its ``reason`` code,
    ``params`` and English ``detail``), or for a refused package the API's 422 body
    (``detail``, ``reason``, ``params``) before the one-line error.
    """
    from service.exchange.importer import import_package
    from service.exchange.models import ExchangeRefusal
    from service.exchange.package import ExchangeError

    data = package.read_bytes()
    with _session(data_dir) as (session, settings):
        try:
            report = import_package(
                session=session,
                actor=_actor(_agency_id(session, agency)),
                data=data,
                key_dir=settings.exchange_keys_path,
            )
        except ExchangeError as exc:
            if as_json:
                typer.echo(ExchangeRefusal.of(exc).model_dump_json())
            raise
    if as_json:
        typer.echo(report.model_dump_json())
        return
    console = Console(highlight=False, soft_wrap=True)
    console.print(
        f"package {report.package_id} from {report.issuer_name} "
        f"({'encrypted, ' if report.encrypted else ''}signature verified, key "
        f"{report.key_fingerprint[:16]}…)" + ("" if report.first_receipt else " — received before")
    )
    table = Table("imported", "updated", "unchanged", "skipped", "rejected")
    table.add_row(
        *(
            str(getattr(report, k))
            for k in ("imported", "updated", "unchanged", "skipped", "rejected")
        )
    )
    console.print(table)
    for record in report.records:
        if record.outcome == "rejected":
            console.print(f"rejected {record.type} {record.id} ({record.reason}): {record.detail}")
