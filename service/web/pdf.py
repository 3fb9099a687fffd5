"""The PDF field-test report for prosecutors and laboratories, reproducible byte for byte.

ReportLab's ``invariant`` mode fixes the creation date and document id, and every value
printed comes from the stored record, so the same record always gives the same bytes.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape as _xml_escape

from reportlab.graphics.shapes import Drawing, PolyLine, Rect, String
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from service.models import Agency, CustodyEvent, Device, FieldTest, Item, Seizure, User
from service.web.i18n import Formatter
from service.web.labels import CUSTODY as CUSTODY_LABELS
from service.web.labels import VERDICT as VERDICT_LABELS
from service.web.plots import COLOURS, SpectrumPlot


@dataclass(frozen=True)
class ReportInput:
    """Everything the report prints, read from the record by the caller."""

    test: FieldTest
    item: Item
    seizure: Seizure
    agency: Agency
    device: Device | None
    operator: User | None
    custody: Sequence[CustodyEvent]
    plot: SpectrumPlot
    #: Hash of the audit event that recorded this field test (the chain link).
    audit_hash: str | None
    audit_seq: int | None


def _plot(plot: SpectrumPlot, width: float, height: float, x_label: str) -> Drawing:
    d = Drawing(width, height)
    left, bottom, top = 30.0, 24.0, 8.0
    pw, ph = width - left - 6, height - bottom - top
    d.add(Rect(left, bottom, pw, ph, strokeColor=colors.grey, fillColor=None, strokeWidth=0.5))
    allx = [v for s in plot.series for v in s.x] or [0.0, 1.0]
    x0, x1 = min(allx), max(allx)
    x1 = x1 if x1 > x0 else x0 + 1
    n = len(plot.series)
    y0, y1 = -0.05, 1.05 + 0.6 * (n - 1)
    for k in range(6):
        v = x0 + (x1 - x0) * k / 5
        d.add(
            String(
                left + (v - x0) / (x1 - x0) * pw,
                bottom - 10,
                f"{v:.0f}",
                fontSize=7,
                textAnchor="middle",
            )
        )
    d.add(String(left + pw / 2, 2, x_label, fontSize=8, textAnchor="middle"))
    for i, s in enumerate(plot.series):
        off = 0.6 * i
        pts: list[float] = []
        for a, b in zip(s.x, s.y, strict=True):
            pts += [left + (a - x0) / (x1 - x0) * pw, bottom + (b + off - y0) / (y1 - y0) * ph]
        colour = colors.HexColor(COLOURS[i % len(COLOURS)])
        d.add(
            PolyLine(
                pts, strokeColor=colour, strokeWidth=0.7, strokeDashArray=[3, 2] if i else None
            )
        )
        label = s.label + (f" ({s.weight:.2f})" if s.weight is not None else "")
        d.add(
            String(
                left + 4,
                bottom + (off + 0.9 - y0) / (y1 - y0) * ph,
                label,
                fontSize=7,
                fillColor=colour,
            )
        )
    return d


def _device_line(device: Device | None, _: Callable[[str], str]) -> str:
    if device is None:
        return "—"
    serial, firmware = _("serial"), _("firmware")
    return f"{device.model}, {serial} {device.serial}, {firmware} {device.firmware or '—'}"


def escape(text: str) -> str:
    """Text for a Paragraph: XML-escaped, and in the Latin-1 range of the PDF base fonts.

    French puts a narrow no-break space (U+202F) before ``:`` and in numbers; Helvetica has
    no glyph for it, so the PDF uses the ordinary no-break space, which it has.
    """
    return _xml_escape(text.replace("\u202f", "\u00a0"))


def field_test_report(data: ReportInput, *, _: Callable[[str], str], fmt: Formatter) -> bytes:
    """The report as PDF bytes, in the language of ``_`` and ``fmt``."""
    styles = getSampleStyleSheet()
    body, small = styles["BodyText"], styles["BodyText"].clone("small", fontSize=8, leading=10)
    t, item, seizure = data.test, data.item, data.seizure
    ident: dict[str, Any] = json.loads(t.identification_json)

    def p(text: str, style: Any = body) -> Paragraph:
        return Paragraph(escape(text), style)

    def table(rows: list[list[str]], widths: list[float]) -> Table:
        tbl = Table([[p(c, small) for c in r] for r in rows], colWidths=widths, repeatRows=1)
        tbl.setStyle(
            TableStyle(
                [
                    ("GRID", (0, 0), (-1, -1), 0.3, colors.grey),
                    ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eeeeee")),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ]
            )
        )
        return tbl

    story: list[Any] = [
        Paragraph(escape(_("Field test report")), styles["Title"]),
        Paragraph(
            escape(
                _(
                    "PRESUMPTIVE RESULT: a field test indicates, a laboratory confirms. "
                    "This result must be confirmed by a laboratory before it is relied on "
                    "as proof of identity."
                )
            ),
            styles["Heading4"],
        ),
        Spacer(1, 3 * mm),
    ]
    kv = [
        [_("Field"), _("Value")],
        [_("Agency"), f"{data.agency.name} ({data.agency.country})"],
        [_("Seizure"), str(seizure.id)],
        [_("Seized at"), fmt.datetime(seizure.seized_at)],
        [_("Place"), ", ".join(x for x in (seizure.place, seizure.checkpoint) if x) or "—"],
        [_("Item"), f"{item.description} ({item.id})"],
        [_("Net mass"), fmt.mass(item.net_mass, item.mass_unit)],
        [_("Field test"), str(t.id)],
        [_("Tested at"), fmt.datetime(t.tested_at)],
        [
            _("Operator"),
            (data.operator.full_name or data.operator.username)
            if data.operator
            else (t.operator_name or "—"),
        ],
        [_("Device"), _device_line(data.device, _)],
        [
            _("Calibration"),
            json.dumps(data.device.calibration, sort_keys=True)
            if data.device and data.device.calibration
            else _("not recorded"),
        ],
        [_("Library version (content hash)"), t.library_version],
        [_("Spectrum SHA-256"), t.spectrum_sha256],
        [
            _("Audit event"),
            f"#{data.audit_seq} {data.audit_hash}" if data.audit_hash else _("not found"),
        ],
        [
            _("Record versions"),
            f"{_('Seizure')} v{seizure.version} · {_('Item')} v{item.version} · "
            f"{_('Field test')} v{t.version}",
        ],
    ]
    story += [table(kv, [45 * mm, 125 * mm]), Spacer(1, 4 * mm)]
    story.append(Paragraph(escape(_("Verdict")), styles["Heading3"]))
    presumptive = _("presumptive")
    story.append(p(f"{_(VERDICT_LABELS.get(t.verdict, t.verdict))} — {presumptive}"))
    cand_rows = [[_("Candidate"), _("Score")]] + [
        [str(c["name"]), fmt.number(float(c["score"]), 3)] for c in ident.get("candidates", [])[:5]
    ]
    comp_rows = [[_("Component"), _("Fraction")]] + [
        [str(c["name"]), fmt.percent(100 * float(c["fraction"]))]
        for c in ident.get("components", [])
    ]
    story += [table(cand_rows, [100 * mm, 40 * mm]), Spacer(1, 2 * mm)]
    if len(comp_rows) > 1:
        story += [table(comp_rows, [100 * mm, 40 * mm]), Spacer(1, 2 * mm)]
    story.append(
        Paragraph(escape(_("Measured spectrum and matched reference")), styles["Heading3"])
    )
    if not data.plot.library_found:
        story.append(
            p(
                _(
                    "The reference library of this test is not available on this server; "
                    "only the measured spectrum is drawn."
                )
            )
        )
    story.append(_plot(data.plot, 170 * mm, 70 * mm, _("Raman shift (cm-1)")))
    story.append(Paragraph(escape(_("Chain of custody")), styles["Heading3"]))
    rows = [[_("When"), _("Event"), _("Place"), _("From"), _("To"), _("Seal")]]
    rows += [
        [
            fmt.datetime(e.occurred_at),
            _(CUSTODY_LABELS.get(e.kind, e.kind)),
            e.place or "",
            e.from_party or "",
            e.to_party or "",
            e.seal_number or "",
        ]
        for e in data.custody
    ]
    if len(rows) == 1:
        rows.append([_("No custody event recorded."), "", "", "", "", ""])
    story.append(table(rows, [36 * mm, 28 * mm, 30 * mm, 26 * mm, 26 * mm, 24 * mm]))
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        invariant=1,
        title=_("Field test report"),
        author=data.agency.name,
        subject=str(t.id),
        creator="fieldscan",
        leftMargin=20 * mm,
        rightMargin=20 * mm,
        topMargin=15 * mm,
        bottomMargin=15 * mm,
    )
    doc.build(story)
    return out.getvalue()
