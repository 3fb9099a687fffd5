"""An offline, tile-free world map: country outlines from the ``world-atlas`` npm package.

``data/countries-110m.json`` is world-atlas 2.0.2's TopoJSON (Natural Earth 1:110m, public
domain; package licence ISC in ``data/world-atlas.LICENSE``). It is decoded here (quantised
arcs, delta-encoded) and drawn in an equirectangular projection with the seizure points.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable
from functools import lru_cache
from html import escape
from pathlib import Path
from typing import Any

ATLAS = Path(__file__).parent / "data" / "countries-110m.json"
WIDTH, HEIGHT = 720, 360


def _project(lon: float, lat: float) -> tuple[float, float]:
    return (lon + 180.0) / 360.0 * WIDTH, (90.0 - lat) / 180.0 * HEIGHT


def decode_arcs(topology: dict[str, Any]) -> list[list[tuple[float, float]]]:
    """Absolute (lon, lat) points of every arc of a quantised TopoJSON topology."""
    sx, sy = topology["transform"]["scale"]
    tx, ty = topology["transform"]["translate"]
    arcs = []
    for arc in topology["arcs"]:
        x = y = 0
        pts = []
        for dx, dy in arc:
            x += dx
            y += dy
            pts.append((x * sx + tx, y * sy + ty))
        arcs.append(pts)
    return arcs


def _ring(
    arcs: list[list[tuple[float, float]]], indexes: Iterable[int]
) -> list[tuple[float, float]]:
    ring: list[tuple[float, float]] = []
    for i in indexes:
        # A negative index ~i means arc i reversed; consecutive arcs share their end point.
        pts = arcs[i] if i >= 0 else arcs[~i][::-1]
        ring.extend(pts[1:] if ring else pts)
    return ring


def _ring_path(ring: list[tuple[float, float]]) -> str:
    """Path data of one ring; a ring crossing the antimeridian is cut there instead of
    being drawn across the whole map."""
    pieces: list[list[tuple[float, float]]] = [[ring[0]]]
    for prev, cur in itertools.pairwise(ring):
        if abs(cur[0] - prev[0]) > 180.0:
            pieces.append([])
        pieces[-1].append(cur)
    closed = len(pieces) == 1
    out = []
    for piece in pieces:
        pts = [_project(lon, lat) for lon, lat in piece]
        out.append("M" + "L".join(f"{x:.1f},{y:.1f}" for x, y in pts) + ("Z" if closed else ""))
    return "".join(out)


@lru_cache(maxsize=1)
def outline_paths() -> str:
    """SVG ``<path>`` elements of every country, computed once."""
    topology = json.loads(ATLAS.read_text(encoding="utf-8"))
    arcs = decode_arcs(topology)
    out = []
    for geom in topology["objects"]["countries"]["geometries"]:
        polys = geom.get("arcs") or []
        if geom["type"] == "Polygon":
            polys = [polys]
        d = []
        for poly in polys:
            for ring_idx in poly:
                ring = _ring(arcs, ring_idx)
                if len(ring) < 3:
                    continue
                d.append(_ring_path(ring))
        if d:
            name = escape(str(geom.get("properties", {}).get("name", "")))
            out.append(f'<path d="{"".join(d)}"><title>{name}</title></path>')
    return "".join(out)


def map_svg(points: Iterable[tuple[float, float, str]], *, title: str) -> str:
    """The world map with one dot per ``(latitude, longitude, label)``."""
    dots = []
    for lat, lon, label in points:
        x, y = _project(lon, lat)
        dots.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5"><title>{escape(label)}</title></circle>'
        )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" class="world-map"><title>{escape(title)}</title>'
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#eaf2f8"/>'
        f'<g fill="#d9d9d9" stroke="#fff" stroke-width="0.4">{outline_paths()}</g>'
        '<g fill="#D55E00" fill-opacity="0.8" stroke="#fff" stroke-width="0.6">'
        f"{''.join(dots)}</g></svg>"
    )
