"""Exports of a filtered seizure list: CSV, JSON, UNODC drug seizures, INCB PICS incidents.

Field names of the two international records follow the forms' own headings
(UNODC individual drug seizure report; INCB PICS/IONICS incident communication), one row
per item, so that a national focal point can copy them without re-typing.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Sequence
from typing import Any

from service.models import Agency, FieldTest, Item, Seizure

SEIZURE_COLUMNS = (
    "id",
    "seized_at",
    "incident_type",
    "status",
    "country",
    "place",
    "checkpoint",
    "latitude",
    "longitude",
    "transport_mode",
    "conveyance",
    "concealment_method",
    "origin_country",
    "departure_country",
    "transit_countries",
    "destination_country",
    "air_waybill",
    "container_number",
    "tracking_number",
    "substances",
    "verdicts",
    "narrative",
    "version",
)

UNODC_COLUMNS = (
    "reporting_country",
    "seizing_agency",
    "case_reference",
    "date_of_seizure",
    "drug",
    "quantity",
    "unit",
    "number_of_units",
    "unit_form",
    "purity_percent",
    "place_of_seizure",
    "country_of_seizure",
    "mode_of_transport",
    "conveyance",
    "concealment",
    "country_of_origin",
    "country_of_departure",
    "transit_countries",
    "country_of_destination",
    "nationality_of_offenders",
    "identification_basis",
)

#: Precursors under international control (1988 Convention, Tables I and II), lower case.
INCB_PRECURSORS = frozenset(
    {
        "acetic anhydride",
        "n-acetylanthranilic acid",
        "anthranilic acid",
        "ephedrine",
        "pseudoephedrine",
        "ergometrine",
        "ergotamine",
        "isosafrole",
        "lysergic acid",
        "3,4-mdp-2-p",
        "norephedrine",
        "phenylacetic acid",
        "1-phenyl-2-propanone",
        "p-2-p",
        "piperonal",
        "potassium permanganate",
        "safrole",
        "apaan",
        "apaa",
        "mapa",
        "npp",
        "4-anpp",
        "anpp",
        "gbl",
        "gamma-butyrolactone",
        "acetone",
        "ethyl ether",
        "hydrochloric acid",
        "methyl ethyl ketone",
        "piperidine",
        "sulphuric acid",
        "sulfuric acid",
        "toluene",
        "red phosphorus",
        "1-boc-4-ap",
        "norfentanyl",
        "4-ap",
    }
)


def _substance(item: Item, tests: Sequence[FieldTest]) -> str | None:
    if item.substance:
        return item.substance
    mine = [t for t in tests if t.item_id == item.id and t.main_substance]
    return mine[-1].main_substance if mine else None


def is_precursor(name: str | None) -> bool:
    """Whether ``name`` is a precursor under international control (library metadata first)."""
    if not name:
        return False
    from service.web.plots import reference_library

    lib = reference_library()  # an aid here, never required
    if lib is not None and name in lib.names:
        meta = lib.metadata(name)
        if meta.get("precursor_of") or meta.get("class") == "precursor":
            return True
    return name.strip().lower() in INCB_PRECURSORS


def seizure_rows(
    seizures: Sequence[Seizure],
    items: dict[uuid.UUID, list[Item]],
    tests: dict[uuid.UUID, list[FieldTest]],
) -> list[dict[str, Any]]:
    """One flat dict per seizure with the columns of :data:`SEIZURE_COLUMNS`."""
    rows = []
    for s in seizures:
        mine = tests.get(s.id, [])
        substances = sorted({x for x in (_substance(i, mine) for i in items.get(s.id, [])) if x})
        rows.append(
            {
                **{c: getattr(s, c) for c in SEIZURE_COLUMNS if hasattr(s, c)},
                "id": str(s.id),
                "seized_at": s.seized_at.isoformat(),
                "transit_countries": " ".join(s.transit_countries or []),
                "substances": "; ".join(substances),
                "verdicts": "; ".join(sorted({t.verdict for t in mine})),
            }
        )
    return rows


def to_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """CSV text with a header; cells that a spreadsheet would run as a formula are quoted inert."""
    out = io.StringIO()
    writer = csv.DictWriter(
        out, fieldnames=list(columns), extrasaction="ignore", lineterminator="\r\n"
    )
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _inert(row.get(k)) for k in columns})
    return out.getvalue()


def _inert(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


def to_json(rows: Sequence[dict[str, Any]]) -> str:
    return json.dumps(rows, ensure_ascii=False, indent=2, default=str)


def _nationalities(s: Seizure) -> str:
    persons: list[Any] = s.persons or []  # the JSON column gives dicts, not PersonRef
    found = {p.get("nationality") for p in persons if isinstance(p, dict)}
    return " ".join(sorted(n for n in found if n))


def unodc_rows(
    seizures: Sequence[Seizure],
    items: dict[uuid.UUID, list[Item]],
    tests: dict[uuid.UUID, list[FieldTest]],
    agency: Agency,
    purity: dict[uuid.UUID, float],
) -> list[dict[str, Any]]:
    """UNODC individual drug seizure rows, one per item; ``purity`` by item id (laboratory)."""
    rows = []
    for s in seizures:
        mine = tests.get(s.id, [])
        for item in items.get(s.id, []):
            drug = _substance(item, mine)
            rows.append(
                {
                    "reporting_country": agency.country,
                    "seizing_agency": agency.name,
                    "case_reference": str(s.id),
                    "date_of_seizure": s.seized_at.date().isoformat(),
                    "drug": drug,
                    "quantity": item.net_mass if item.net_mass is not None else item.gross_mass,
                    "unit": item.mass_unit,
                    "number_of_units": item.unit_count,
                    "unit_form": item.unit_form,
                    "purity_percent": purity.get(item.id),
                    "place_of_seizure": s.place,
                    "country_of_seizure": s.country,
                    "mode_of_transport": s.transport_mode,
                    "conveyance": s.conveyance,
                    "concealment": s.concealment_method,
                    "country_of_origin": s.origin_country,
                    "country_of_departure": s.departure_country,
                    "transit_countries": " ".join(s.transit_countries or []),
                    "country_of_destination": s.destination_country,
                    "nationality_of_offenders": _nationalities(s),
                    "identification_basis": "laboratory"
                    if item.id in purity
                    else ("field test (presumptive)" if drug else None),
                }
            )
    return rows


def incb_incidents(
    seizures: Sequence[Seizure],
    items: dict[uuid.UUID, list[Item]],
    tests: dict[uuid.UUID, list[FieldTest]],
    agency: Agency,
) -> list[dict[str, Any]]:
    """INCB PICS-style incident records for the items that are controlled precursors."""
    out = []
    for s in seizures:
        mine = tests.get(s.id, [])
        for item in items.get(s.id, []):
            name = _substance(item, mine)
            if not is_precursor(name):
                continue
            out.append(
                {
                    "incident_type": s.incident_type,
                    "incident_date": s.seized_at.date().isoformat(),
                    "reporting_country": agency.country,
                    "reporting_authority": agency.name,
                    "substance": name,
                    "quantity": item.net_mass if item.net_mass is not None else item.gross_mass,
                    "unit": item.mass_unit,
                    "packaging": item.packaging,
                    "country_of_incident": s.country,
                    "place": s.place,
                    "country_of_origin": s.origin_country,
                    "country_of_departure": s.departure_country,
                    "transit_countries": list(s.transit_countries or []),
                    "country_of_destination": s.destination_country,
                    "mode_of_transport": s.transport_mode,
                    "modus_operandi": s.concealment_method,
                    "shipment_references": {
                        "air_waybill": s.air_waybill,
                        "container": s.container_number,
                        "tracking": s.tracking_number,
                    },
                    "companies": list(s.companies or []),
                    "persons": list(s.persons or []),
                    "case_reference": str(s.id),
                    "description": item.description,
                }
            )
    return out
