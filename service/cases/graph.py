"""The case graph (pure): member seizures, the attributes they share, and links between them.

:func:`build_case_graph` turns plain facts into nodes and edges; :func:`layout` places
them deterministically (the same case always draws the same picture, so a printed graph
and a screenshot agree). Nothing here touches the database or the web layer.

Nodes are seizures (``s:<id>``) and attributes (``a:<key>``): consignment references,
persons, companies, routes and substances. An attribute is drawn when at least two member
seizures share it, or when the case names it (a person or company of the case). Edges
join a seizure to each drawn attribute it has, and two seizures that the linking engine
suggested linking, or an investigator accepted as linked.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

#: Attribute kinds, in the order the legend lists them.
ATTRIBUTE_KINDS = ("consignment", "person", "company", "route", "substance")
#: Link statuses that are drawn (dismissed and withdrawn links are not links).
LINK_STATUSES = ("suggested", "accepted")


@dataclass(frozen=True, order=True)
class Attribute:
    """One normalised attribute: ``key`` compares, ``label`` is shown."""

    kind: str
    key: str
    label: str


@dataclass(frozen=True)
class SeizureFacts:
    id: str
    label: str
    seized_at: datetime | None = None
    attributes: tuple[Attribute, ...] = ()


@dataclass(frozen=True)
class LinkFacts:
    a: str
    b: str
    status: str
    strength: float
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class Node:
    id: str
    #: ``seizure`` or an attribute kind.
    kind: str
    label: str
    #: The seizure's id (seizure nodes only): pages link to it.
    seizure_id: str | None = None
    #: How many member seizures have it (attributes), or how many links (seizures).
    weight: int = 0
    #: Named by the case itself (a person or company of the case).
    named: bool = False


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    #: ``attribute``, ``suggested`` or ``accepted``.
    kind: str
    strength: float | None = None
    reasons: tuple[str, ...] = ()


@dataclass
class CaseGraph:
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    #: Member seizures left out because the reader may not see them.
    hidden_seizures: int = 0

    def node(self, node_id: str) -> Node:
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(node_id)

    def as_dict(self) -> dict[str, object]:
        """Plain JSON-able form (the API's answer)."""
        return {
            "nodes": [
                {
                    "id": n.id,
                    "kind": n.kind,
                    "label": n.label,
                    "seizure_id": n.seizure_id,
                    "weight": n.weight,
                    "named": n.named,
                }
                for n in self.nodes
            ],
            "edges": [
                {
                    "source": e.source,
                    "target": e.target,
                    "kind": e.kind,
                    "strength": e.strength,
                    "reasons": list(e.reasons),
                }
                for e in self.edges
            ],
            "hidden_seizures": self.hidden_seizures,
        }


# --------------------------------------------------------------------------- attributes


def _reference(text: str | None) -> str:
    """Consignment numbers compare on letters and digits ('045-1234 5675' = '04512345675')."""
    return re.sub(r"[^0-9A-Z]", "", (text or "").upper())


def _words(text: str) -> str:
    return " ".join(re.sub(r"[^0-9a-z]", " ", text.casefold()).split())


def seizure_attributes(
    *,
    air_waybill: str | None = None,
    container_number: str | None = None,
    tracking_number: str | None = None,
    persons: Iterable[str] = (),
    companies: Iterable[str] = (),
    origin: str | None = None,
    destination: str | None = None,
    substances: Iterable[str] = (),
) -> list[Attribute]:
    """The attributes of one seizure, normalised so that equal things compare equal."""
    found: dict[str, Attribute] = {}

    def add(kind: str, key: str, label: str) -> None:
        found.setdefault(key, Attribute(kind, key, label))

    for prefix, value in (
        ("awb", air_waybill),
        ("ctr", container_number),
        ("trk", tracking_number),
    ):
        norm = _reference(value)
        if len(norm) >= 4:  # shorter "numbers" are placeholders, not references
            add("consignment", f"{prefix}:{norm}", (value or "").strip())
    for ref in persons:
        norm = re.sub(r"[^0-9a-z]", "", ref.casefold())
        if norm:
            add("person", f"person:{norm}", ref.strip())
    for name in companies:
        norm = _words(name)
        if norm:
            add("company", f"company:{norm}", name.strip())
    if origin and destination:
        add("route", f"route:{origin.upper()}>{destination.upper()}", f"{origin} → {destination}")
    for name in substances:
        norm = _words(name)
        if norm:
            add("substance", f"substance:{norm}", name.strip())
    return sorted(found.values())


# --------------------------------------------------------------------------- graph


def _seizure_order(seizure: SeizureFacts) -> tuple[bool, str, str]:
    when = seizure.seized_at.isoformat() if seizure.seized_at else ""
    return (seizure.seized_at is None, when, seizure.id)


def build_case_graph(
    seizures: Sequence[SeizureFacts],
    links: Sequence[LinkFacts],
    *,
    named: Iterable[Attribute] = (),
    hidden_seizures: int = 0,
) -> CaseGraph:
    """Nodes and edges of a case; the order of the inputs does not matter.

    Links whose two seizures are not both given, and links of other statuses than
    suggested or accepted, are left out. Attributes only one seizure has are left out
    unless the case names them.
    """
    ordered = sorted({s.id: s for s in seizures}.values(), key=_seizure_order)
    ids = {s.id for s in ordered}
    holders: dict[str, list[str]] = {}
    labels: dict[str, Attribute] = {}
    for s in ordered:
        for attr in s.attributes:
            holders.setdefault(attr.key, [])
            if s.id not in holders[attr.key]:
                holders[attr.key].append(s.id)
            labels.setdefault(attr.key, attr)
    named_keys = set()
    for attr in named:
        named_keys.add(attr.key)
        labels.setdefault(attr.key, attr)
        holders.setdefault(attr.key, [])
    shown = sorted(
        (k for k in holders if len(holders[k]) >= 2 or k in named_keys),
        key=lambda k: (ATTRIBUTE_KINDS.index(labels[k].kind), k),
    )
    # One edge per pair (each agency may hold its own row of a pair): the strongest word wins.
    best: dict[tuple[str, str], LinkFacts] = {}
    for link in links:
        if link.a not in ids or link.b not in ids or link.a == link.b:
            continue
        if link.status not in LINK_STATUSES:
            continue
        pair = (min(link.a, link.b), max(link.a, link.b))
        rank = (link.status == "accepted", link.strength)
        held = best.get(pair)
        if held is None or rank > (held.status == "accepted", held.strength):
            best[pair] = link
    kept_links = [best[pair] for pair in sorted(best)]
    degree = {s.id: 0 for s in ordered}
    for link in kept_links:
        degree[link.a] += 1
        degree[link.b] += 1
    graph = CaseGraph(hidden_seizures=hidden_seizures)
    for s in ordered:
        graph.nodes.append(
            Node(
                id=f"s:{s.id}", kind="seizure", label=s.label, seizure_id=s.id, weight=degree[s.id]
            )
        )
    for key in shown:
        attr = labels[key]
        graph.nodes.append(
            Node(
                id=f"a:{key}",
                kind=attr.kind,
                label=attr.label,
                weight=len(holders[key]),
                named=key in named_keys,
            )
        )
    for link in kept_links:
        a, b = sorted((link.a, link.b))
        graph.edges.append(
            Edge(f"s:{a}", f"s:{b}", link.status, strength=link.strength, reasons=link.reasons)
        )
    for key in shown:
        for sid in holders[key]:
            graph.edges.append(Edge(f"s:{sid}", f"a:{key}", "attribute"))
    return graph


# --------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class Point:
    x: float
    y: float


def layout(
    graph: CaseGraph, *, width: float = 760.0, height: float = 560.0, spacing: float = 46.0
) -> dict[str, Point]:
    """Deterministic positions: seizures on a circle, attributes among the seizures that share them.

    Seizures sit on a circle in date order, starting on the left (two seizures face
    each other across the width). Each attribute starts at the mean position of its
    seizures (so it lies between them); attributes held by the same seizures line up
    across the line from the centre to that point; then attributes closer than
    ``spacing`` are pushed apart for a fixed number of rounds in a fixed order.
    Attributes that no seizure has (named by the case only) line up along the bottom.

    Parameters
    ----------
    graph
        The graph to place.
    width, height
        Size of the drawing area; every position lies inside it with a margin.
    spacing
        Smallest distance wanted between two attribute nodes.

    Returns
    -------
    dict
        Node id to :class:`Point`.
    """
    margin = 40.0
    centre = Point(width / 2, (height - margin) / 2)
    radius = max(40.0, min(width, height - margin) / 2 - margin - 30)
    seizures = [n for n in graph.nodes if n.kind == "seizure"]
    out: dict[str, Point] = {}
    count = len(seizures)
    for i, node in enumerate(seizures):
        if count == 1:
            out[node.id] = Point(centre.x, centre.y - radius / 2)
            continue
        angle = math.pi + 2 * math.pi * i / count
        out[node.id] = Point(
            centre.x + radius * math.cos(angle), centre.y + radius * math.sin(angle)
        )
    neighbours: dict[str, list[str]] = {}
    for edge in graph.edges:
        if edge.kind == "attribute":
            neighbours.setdefault(edge.target, []).append(edge.source)
    groups: dict[tuple[str, ...], list[str]] = {}
    loose: list[str] = []
    for node in graph.nodes:
        if node.kind == "seizure":
            continue
        held = tuple(sorted(s for s in neighbours.get(node.id, []) if s in out))
        if held:
            groups.setdefault(held, []).append(node.id)
        else:
            loose.append(node.id)
    placed: list[str] = []
    for held, members in sorted(groups.items()):
        around = [out[s] for s in held]
        base = Point(sum(p.x for p in around) / len(around), sum(p.y for p in around) / len(around))
        if len(around) == 1:  # named by the case and held by one seizure: just inside it
            base = Point(centre.x + (base.x - centre.x) * 0.7, centre.y + (base.y - centre.y) * 0.7)
        dx, dy = base.x - centre.x, base.y - centre.y
        norm = math.hypot(dx, dy)
        # Across the line from the centre; at the centre itself, across the first two seizures.
        if norm < 1.0:
            ax, ay = (around[-1].x - around[0].x, around[-1].y - around[0].y)
            norm_a = math.hypot(ax, ay) or 1.0
            ux, uy = -ay / norm_a, ax / norm_a
        else:
            ux, uy = -dy / norm, dx / norm
        if abs(ux) < 1e-9 and abs(uy) < 1e-9:
            ux, uy = 0.0, 1.0
        for k, node_id in enumerate(members):
            offset = spacing * (k - (len(members) - 1) / 2)
            out[node_id] = Point(base.x + ux * offset, base.y + uy * offset)
            placed.append(node_id)
    _spread(out, placed, spacing, centre, radius * 0.85)
    for i, node_id in enumerate(loose):
        step = (width - 2 * margin) / max(1, len(loose))
        out[node_id] = Point(margin + step * (i + 0.5), height - margin / 2)
    return out


def _spread(
    points: dict[str, Point], ids: list[str], spacing: float, centre: Point, limit: float
) -> None:
    """Push attribute nodes apart (fixed rounds, fixed order: deterministic)."""
    for _round in range(60):
        moved = False
        for i, a in enumerate(ids):
            for j in range(i + 1, len(ids)):
                b = ids[j]
                pa, pb = points[a], points[b]
                dx, dy = pb.x - pa.x, pb.y - pa.y
                dist = math.hypot(dx, dy)
                if dist >= spacing:
                    continue
                if dist < 1e-6:  # same spot: separate along a direction fixed by the pair's order
                    angle = 2.399963 * (i + j + 1)  # golden angle
                    dx, dy, dist = math.cos(angle), math.sin(angle), 1.0
                push = (spacing - dist) / 2
                ux, uy = dx / dist, dy / dist
                points[a] = _clamp(Point(pa.x - ux * push, pa.y - uy * push), centre, limit)
                points[b] = _clamp(Point(pb.x + ux * push, pb.y + uy * push), centre, limit)
                moved = True
        if not moved:
            return


def _clamp(p: Point, centre: Point, limit: float) -> Point:
    dx, dy = p.x - centre.x, p.y - centre.y
    dist = math.hypot(dx, dy)
    if dist <= limit:
        return p
    return Point(centre.x + dx / dist * limit, centre.y + dy / dist * limit)
