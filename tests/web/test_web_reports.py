"""PDF report (reproducible, complete), exports, the oversight report, plots and the map."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections import Counter
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader
from sqlalchemy import select, text
from sqlmodel import Session

from service.core.db import make_engine
from service.models import AuditEvent, FieldTest, Seizure
from service.web import exports, geo, plots


def _login(client: TestClient, world: Any, role: str) -> None:
    r = client.post(
        "/ui/login",
        data={"username": world.users["A"][role], "password": world.password},
        follow_redirects=False,
    )
    assert r.status_code == 303


def _pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def test_web_pdf_report_is_reproducible_byte_for_byte(
    ui_client: TestClient, web_world: Any, scenario: Any
) -> None:
    _login(ui_client, web_world, "investigator")
    first = ui_client.get(f"/ui/field-tests/{scenario.test_id}/report.pdf")
    second = ui_client.get(f"/ui/field-tests/{scenario.test_id}/report.pdf")
    assert first.status_code == 200 and first.headers["content-type"] == "application/pdf"
    assert first.content == second.content
    assert (
        first.headers["content-disposition"]
        == f'attachment; filename="field-test-{scenario.test_id}.pdf"'
    )


def test_web_pdf_report_states_the_evidence(
    ui_client: TestClient, web_world: Any, scenario: Any, web_settings: Any
) -> None:
    _login(ui_client, web_world, "investigator")
    body = _pdf_text(ui_client.get(f"/ui/field-tests/{scenario.test_id}/report.pdf").content)
    engine = make_engine(web_settings.sqlalchemy_url)
    with Session(engine) as session:
        test = session.get(FieldTest, scenario.test_id)
        event = session.scalars(
            select(AuditEvent).where(
                AuditEvent.entity_type == "field_test", AuditEvent.entity_id == scenario.test_id
            )
        ).one()
        assert test is not None
        expected = [test.library_version, event.hash, test.spectrum_sha256, "SN-A-"]
    engine.dispose()
    flat = body.replace("\n", "")
    for needle in expected:
        assert needle in flat, needle
    for needle in (
        "PRESUMPTIVE RESULT",
        "Record versions",
        "Identified",
        "presumptive",
        scenario.reference,
        "S-0001",
        "Evidence store",
        "National lab",
        web_world.users["A"]["officer"],
        "Chain of custody",
    ):
        assert needle in body, needle


def test_web_pdf_report_in_spanish(ui_client: TestClient, web_world: Any, scenario: Any) -> None:
    ui_client.cookies.set("fieldscan_lang", "es")
    _login(ui_client, web_world, "supervisor")
    body = _pdf_text(ui_client.get(f"/ui/field-tests/{scenario.test_id}/report.pdf").content)
    assert (
        "RESULTADO PRESUNTIVO" in body and "Cadena de custodia" in body and "Identificado" in body
    )
    assert "1.180,5 g" in body.replace("\u00a0", " ")  # the net mass in Spanish notation


def test_web_csv_and_json_exports_follow_the_filters(
    ui_client: TestClient, web_world: Any, scenario: Any
) -> None:
    _login(ui_client, web_world, "officer")
    r = ui_client.get("/ui/seizures.csv", params={"transport_mode": "sea"})
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert rows and {row["transport_mode"] for row in rows} == {"sea"}
    assert list(rows[0]) == list(exports.SEIZURE_COLUMNS)
    data = json.loads(
        ui_client.get("/ui/seizures.json", params={"substance": scenario.reference}).text
    )
    assert [d["id"] for d in data] == [str(scenario.seizure_id)]
    assert scenario.reference in data[0]["substances"] and data[0]["verdicts"] == "identified"
    assert ui_client.get("/ui/seizures.csv", params={"verdict": "nope"}).status_code == 422


def test_web_csv_cells_cannot_run_as_formulas() -> None:
    out = exports.to_csv(
        [{"a": '=HYPERLINK("x")', "b": "+1", "c": "plain", "d": None}], ["a", "b", "c", "d"]
    )
    row = next(csv.DictReader(io.StringIO(out)))
    assert row == {"a": '\'=HYPERLINK("x")', "b": "'+1", "c": "plain", "d": ""}


def test_web_unodc_and_incb_exports(ui_client: TestClient, web_world: Any, scenario: Any) -> None:
    _login(ui_client, web_world, "officer")
    rows = list(
        csv.DictReader(
            io.StringIO(
                ui_client.get(
                    "/ui/seizures.unodc.csv", params={"substance": scenario.reference}
                ).text
            )
        )
    )
    assert list(rows[0]) == list(exports.UNODC_COLUMNS)
    drugs = {r["drug"]: r for r in rows}
    cocaine = drugs[scenario.reference]
    assert cocaine["country_of_seizure"] == "PE" and cocaine["country_of_destination"] == "ES"
    assert cocaine["mode_of_transport"] == "air" and cocaine["transit_countries"] == "BR"
    assert cocaine["nationality_of_offenders"] == "PE" and cocaine["unit"] == "g"
    assert cocaine["purity_percent"] == "71.5" and cocaine["identification_basis"] == "laboratory"
    incidents = json.loads(ui_client.get("/ui/seizures.incb.json").text)
    assert [i["substance"] for i in incidents] == ["acetic anhydride"]  # cocaine is not a precursor
    inc = incidents[0]
    assert inc["shipment_references"]["air_waybill"] == "045-12345675"
    assert inc["companies"][0]["name"] == "Andes Freight SAC" and inc["transit_countries"] == ["BR"]


def test_web_precursor_detection() -> None:
    assert exports.is_precursor("Acetic anhydride") and exports.is_precursor(
        "potassium permanganate"
    )
    assert not exports.is_precursor("caffeine") and not exports.is_precursor(None)


def test_web_oversight_report_finds_the_problems(
    ui_client: TestClient, web_world: Any, scenario: Any
) -> None:
    _login(ui_client, web_world, "supervisor")
    rows = json.loads(ui_client.get("/ui/oversight", params={"format": "json"}).text)
    kinds = {r["finding"] for r in rows}
    assert "discrepancy" in kinds  # cocaine in the field, levamisole in the laboratory
    assert "late_custody_event" in kinds  # seeded events are recorded long after they happened
    assert "custody_gap_party_mismatch" in kinds  # 'Courier X' never received the item
    audit = [r for r in rows if r["finding"] == "audit_chain"]
    assert audit == [
        {
            "finding": "audit_chain",
            "entity": "audit",
            "id": audit[0]["id"],
            "when": "",
            "detail": "ok",
        }
    ]
    csv_text = ui_client.get("/ui/oversight", params={"format": "csv"}).text
    assert csv_text.startswith("finding,entity,id,when,detail")
    page = ui_client.get("/ui/oversight")
    assert 'id="audit-status">Intact' in page.text.replace("\n", "")
    _login(ui_client, web_world, "officer")
    assert ui_client.get("/ui/oversight").status_code == 403
    _login(ui_client, web_world, "supervisor")
    assert ui_client.get("/ui/oversight", params={"since": "last week"}).status_code == 422


def test_web_oversight_shows_edits_and_tampering(
    ui_client: TestClient, web_world: Any, scenario: Any, web_settings: Any
) -> None:
    _login(ui_client, web_world, "supervisor")
    target = scenario.bulk_ids[7]
    engine = make_engine(web_settings.sqlalchemy_url)
    with Session(engine) as session:
        version = session.get(Seizure, target).version  # type: ignore[union-attr]
    r = ui_client.post(
        f"/ui/seizures/{target}/review",
        data={"action": "confirm", "version": version, "reason": "matches lab"},
    )
    assert r.status_code == 200
    rows = json.loads(ui_client.get("/ui/oversight", params={"format": "json"}).text)
    assert any(
        r["finding"] == "edit_after_the_fact"
        and r["id"] == str(target)
        and "matches lab" in r["detail"]
        for r in rows
    )
    # Someone edits the database directly: the report says the chain is broken.
    with engine.begin() as conn:
        conn.execute(text("UPDATE seizure SET place = 'moved' WHERE id = :id"), {"id": target.hex})
    engine.dispose()
    page = ui_client.get("/ui/oversight").text
    assert 'id="audit-status">Problems found' in page.replace("\n", "")


def test_web_spectrum_plot_overlays_the_matched_reference(web_settings: Any, scenario: Any) -> None:
    engine = make_engine(web_settings.sqlalchemy_url)
    with Session(engine) as session:
        test = session.get(FieldTest, scenario.test_id)
        assert test is not None
        plot = plots.spectrum_plot(test, "measured")
        assert plot.library_found and [s.label for s in plot.series] == [
            "measured",
            scenario.reference,
        ]
        measured, reference = (
            np.interp(plot.series[1].x, s.x, s.y) for s in plot.series[:1] + plot.series[1:]
        )
        assert np.corrcoef(measured, reference)[0, 1] > 0.9  # the measured sample is that reference
        svg = plots.spectrum_svg(plot, x_label="x", y_label="y", title="t <&>")
        assert svg.count("<polyline") == 2 and "t &lt;&amp;&gt;" in svg
        # A mixture: every component is drawn, with its fraction; unknown names are listed.
        test.identification_json = json.dumps(
            {
                "verdict": "mixture",
                "candidates": [],
                "components": [
                    {"name": scenario.reference, "fraction": 0.7},
                    {"name": "caffeine", "fraction": 0.2},
                    {"name": "not in the library", "fraction": 0.1},
                ],
                "library_version": test.library_version,
            }
        )
        mixture = plots.spectrum_plot(test, "measured")
        assert [(s.label, s.weight) for s in mixture.series[1:]] == [
            (scenario.reference, 0.7),
            ("caffeine", 0.2),
        ]
        assert mixture.missing == ("not in the library",)
        test.library_version = "sha256:unknown"
        other = plots.spectrum_plot(test, "measured")
        assert not other.library_found and len(other.series) == 1
        session.rollback()
    engine.dispose()


def test_web_matched_references() -> None:
    assert plots.matched_references(
        {"components": [{"name": "a", "fraction": 0.6}], "candidates": [{"name": "b", "score": 1}]}
    ) == [("a", 0.6)]
    assert plots.matched_references(
        {"components": [], "candidates": [{"name": "b", "score": 0.5}]}
    ) == [("b", 0.5)]
    assert plots.matched_references({}) == []


def test_web_map_outlines_and_points() -> None:
    topo = {
        "transform": {"scale": [1.0, 1.0], "translate": [-10.0, 5.0]},
        "arcs": [[[0, 0], [2, 0], [0, 3], [-2, -3]]],
    }
    assert geo.decode_arcs(topo) == [[(-10.0, 5.0), (-8.0, 5.0), (-8.0, 8.0), (-10.0, 5.0)]]
    svg = geo.map_svg([(-12.02, -77.11, "Lima <airport>")], title="Map")
    assert svg.count("<path") > 150  # every country of the 1:110m atlas
    assert 'cx="205.8" cy="204.0"' in svg and "Lima &lt;airport&gt;" in svg
    # A ring crossing the antimeridian is cut, never drawn across the map.
    path = geo._ring_path([(179.0, 0.0), (-179.0, 1.0), (-179.0, 0.0)])
    assert path.count("M") == 2 and "Z" not in path


def test_web_dashboard_counts(ui_client: TestClient, web_world: Any, scenario: Any) -> None:
    _login(ui_client, web_world, "analyst")
    page = ui_client.get("/ui/dashboard").text
    # Main seizure (via BR) + bulk 0, 6, 12, 18, 24 via BR; bulk 3, 9, 15, 21, 27 direct.
    assert "<td>PE → BR → ES</td><td>6</td>" in page and "<td>PE → ES</td><td>5</td>" in page
    assert "<circle" in page
    assert page.count("<circle") == len(scenario.bulk_ids) + 1


@pytest.mark.parametrize("kind", ["csv", "json"])
def test_web_exports_need_a_session(ui_client: TestClient, kind: str) -> None:
    assert ui_client.get(f"/ui/seizures.{kind}", follow_redirects=False).status_code == 303


def test_web_report_of_unknown_test_is_404(ui_client: TestClient, web_world: Any) -> None:
    _login(ui_client, web_world, "officer")
    assert ui_client.get(f"/ui/field-tests/{uuid.uuid4()}/report.pdf").status_code == 404


def test_web_dashboard_aggregates(web_settings: Any, web_world: Any, scenario: Any) -> None:
    from service import crud
    from service.web import queries

    engine = make_engine(web_settings.sqlalchemy_url)
    with Session(engine) as session:
        user = crud.get_user_by_username(session=session, username=web_world.users["A"]["officer"])
        assert user is not None
        actor = crud.principal_for_user(user)
        data = queries.dashboard_data(session=session, actor=actor, filters=crud.SeizureFilter())
        air = queries.dashboard_data(
            session=session, actor=actor, filters=crud.SeizureFilter(transport_mode="sea")
        )
    engine.dispose()
    assert data.total == len(scenario.bulk_ids) + 1
    assert sum(data.by_mode["air"]) == 11 and sum(data.by_mode["sea"]) == 10
    assert data.months == sorted(data.months) and data.months[-1] == "2026-03"
    # One seizure holds the cocaine item (also found by its field test: counted once).
    assert {k: sum(v) for k, v in data.by_substance.items()} == {
        "acetic anhydride": 1,
        scenario.reference: 1,
    }
    # Counted here from the rows themselves, transit countries included, for comparison.
    with Session(engine) as session:
        rows = session.scalars(select(Seizure).where(Seizure.agency_id == actor.agency_id)).all()
        expected = Counter(
            (s.origin_country or s.departure_country, *s.transit_countries, s.destination_country)
            for s in rows
        )
    engine.dispose()
    assert dict(data.routes) == dict(expected.most_common(10))
    assert data.routes == sorted(data.routes, key=lambda r: (-r[1], r[0]))
    assert ("PE", "BR", "ES") in dict(data.routes) and ("PE", "ES") in dict(data.routes)
    assert len(data.points) == data.total
    assert air.total == 10 and set(air.by_mode) == {"sea"}


def test_web_dashboard_filters(ui_client: TestClient, web_world: Any, scenario: Any) -> None:
    _login(ui_client, web_world, "supervisor")
    page = ui_client.get("/ui/dashboard", params={"date_from": "2026-03-01"}).text
    assert page.count("<circle") == 6  # the main seizure and bulk 0-4 (Mar 13, 10, 7, 4, 1)
    assert 'value="2026-03-01"' in page
    assert ui_client.get("/ui/dashboard", params={"country": "Peru"}).status_code == 422
