"""Spectrum overlays and small charts as self-made SVG (no plotting library, deterministic output).

The measured spectrum is put through the reference library's own preprocessing, so that it is
drawn exactly as the matcher compared it with the references (tallest point 1 for each curve).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from html import escape
from typing import Any

import numpy as np

from service.crud import decode_spectrum
from service.models import FieldTest

#: Curve colours: measured first, then references (colour-blind-safe Okabe–Ito).
COLOURS = ("#000000", "#E69F00", "#0072B2", "#009E73", "#CC79A7", "#D55E00")
MAX_POINTS = 600


@dataclass(frozen=True, slots=True)
class Series:
    label: str
    x: tuple[float, ...]
    y: tuple[float, ...]
    #: Mixture fraction or match score shown in the legend, when known.
    weight: float | None = None


@dataclass(frozen=True, slots=True)
class SpectrumPlot:
    """What a field test's plot shows: measured (first) and matched references."""

    series: tuple[Series, ...]
    library_version: str
    #: False when the test's library is not on this server (references cannot be drawn).
    library_found: bool
    missing: tuple[str, ...] = ()


@lru_cache(maxsize=1)
def reference_library() -> Any:
    """The server's reference library (the demonstration library), or None if it cannot be had.

    The committed library file is used when it loads; when it does not (damaged, or built by
    another version of ``spectra``) the library is rebuilt from its band tables.
    """
    from spectra.errors import SpectraError
    from spectra.library import load_demo_library

    try:
        return load_demo_library()
    except SpectraError:
        try:
            from spectra.demo import build_demo_library

            return build_demo_library()
        except (SpectraError, OSError, ValueError):
            return None


def _library(version: str) -> Any:
    """The reference library with this content version, if this server has it."""
    lib = reference_library()
    return lib if lib is not None and lib.version == version else None


def _decimate(x: np.ndarray, y: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    # Keep each bin's extreme point so narrow peaks survive the thinning.
    if x.size <= MAX_POINTS:
        return tuple(np.round(x, 3).tolist()), tuple(np.round(y, 5).tolist())
    edges = np.linspace(0, x.size, MAX_POINTS // 2 + 1).astype(int)
    xs: list[float] = []
    ys: list[float] = []
    for a, b in itertools.pairwise(edges):
        if b <= a:
            continue
        seg = y[a:b]
        lo, hi = int(np.argmin(seg)) + a, int(np.argmax(seg)) + a
        for k in sorted({lo, hi}):
            xs.append(round(float(x[k]), 3))
            ys.append(round(float(y[k]), 5))
    return tuple(xs), tuple(ys)


def _unit_peak(values: np.ndarray) -> np.ndarray:
    peak = float(np.max(np.abs(values))) if values.size else 0.0
    return values / peak if peak > 0 else values


def matched_references(identification: dict[str, Any]) -> list[tuple[str, float | None]]:
    """Names to overlay: mixture components with fractions, else the best candidate and score."""
    components = identification.get("components") or []
    if components:
        return [(str(c["name"]), float(c["fraction"])) for c in components]
    candidates = identification.get("candidates") or []
    if candidates:
        return [(str(candidates[0]["name"]), float(candidates[0]["score"]))]
    return []


def spectrum_plot(test: FieldTest, measured_label: str) -> SpectrumPlot:
    """The measured spectrum of ``test`` and its matched references on the library axis."""
    raw = decode_spectrum(test)
    ident = json.loads(test.identification_json)
    lib = _library(test.library_version)
    x = np.asarray(raw.axis, dtype=float)
    y = np.asarray(raw.intensities, dtype=float)
    order = np.argsort(x)
    x, y = x[order], y[order]
    if lib is None:
        y = y - float(np.min(y))
        mx, my = _decimate(x, _unit_peak(y))
        return SpectrumPlot((Series(measured_label, mx, my),), test.library_version, False)
    prepared = lib.pipeline.prepare_arrays(x, y)
    axis = np.asarray(lib.axis, dtype=float)
    sl = slice(prepared.start, prepared.stop)
    mx, my = _decimate(axis[sl], _unit_peak(np.asarray(prepared.values[sl], dtype=float)))
    series = [Series(measured_label, mx, my)]
    missing = []
    for name, weight in matched_references(ident):
        if name not in lib.names:
            missing.append(name)
            continue
        ref = lib.spectrum(name)
        rx, ry = _decimate(np.asarray(ref.axis)[sl], _unit_peak(np.asarray(ref.intensities)[sl]))
        series.append(Series(name, rx, ry, weight))
    return SpectrumPlot(tuple(series), test.library_version, True, tuple(missing))


def spectrum_svg(
    plot: SpectrumPlot,
    *,
    x_label: str,
    y_label: str,
    title: str,
    width: int = 720,
    height: int = 300,
) -> str:
    """An accessible inline SVG of the overlay (each reference offset upwards for legibility)."""
    left, right, top, bottom = 50, 10, 24, 40
    pw, ph = width - left - right, height - top - bottom
    allx = [v for s in plot.series for v in s.x] or [0.0, 1.0]
    x0, x1 = min(allx), max(allx)
    if x1 <= x0:
        x1 = x0 + 1
    n = len(plot.series)
    y0, y1 = -0.05, 1.05 + 0.6 * (n - 1)

    def px(v: float) -> float:
        return left + (v - x0) / (x1 - x0) * pw

    def py(v: float) -> float:
        return top + (1 - (v - y0) / (y1 - y0)) * ph

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="plot-title" class="spectrum-plot">',
        f'<title id="plot-title">{escape(title)}</title>',
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fff" stroke="#999"/>',
    ]
    for k in range(6):
        v = x0 + (x1 - x0) * k / 5
        parts.append(
            f'<text x="{px(v):.1f}" y="{top + ph + 14}" font-size="10" '
            f'text-anchor="middle">{v:.0f}</text>'
        )
    parts.append(
        f'<text x="{left + pw / 2:.1f}" y="{height - 6}" font-size="11" '
        f'text-anchor="middle">{escape(x_label)}</text>'
    )
    parts.append(
        f'<text x="12" y="{top + ph / 2:.1f}" font-size="11" text-anchor="middle" '
        f'transform="rotate(-90 12 {top + ph / 2:.1f})">{escape(y_label)}</text>'
    )
    for i, s in enumerate(plot.series):
        offset = 0.6 * i
        pts = " ".join(f"{px(a):.1f},{py(b + offset):.1f}" for a, b in zip(s.x, s.y, strict=True))
        colour = COLOURS[i % len(COLOURS)]
        dash = ' stroke-dasharray="5 3"' if i else ""
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="1.2"{dash} points="{pts}"/>'
        )
        legend = s.label + (f" ({s.weight:.2f})" if s.weight is not None else "")
        parts.append(
            f'<text x="{left + 6}" y="{py(offset + 0.95):.1f}" font-size="11" '
            f'fill="{colour}">{escape(legend)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def bar_chart_svg(
    labels: Sequence[str],
    stacks: Mapping[str, Sequence[int]],
    *,
    title: str,
    width: int = 720,
    height: int = 240,
) -> str:
    """A stacked bar chart: ``labels`` along x, one stack per key of ``stacks`` with a legend."""
    left, right, top, bottom = 40, 160, 20, 40
    pw, ph = width - left - right, height - top - bottom
    totals = [sum(v[i] for v in stacks.values()) for i in range(len(labels))]
    peak = max(totals, default=0) or 1
    bw = pw / max(len(labels), 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="#999"/>',
        f'<text x="{left - 4}" y="{top + 4}" font-size="10" text-anchor="end">{peak}</text>',
    ]
    for i, label in enumerate(labels):
        base = 0
        for j, (_key, values) in enumerate(stacks.items()):
            v = values[i]
            if v:
                h = v / peak * ph
                y = top + ph - (base + v) / peak * ph
                parts.append(
                    f'<rect x="{left + i * bw + 2:.1f}" y="{y:.1f}" width="{max(bw - 4, 1):.1f}" '
                    f'height="{h:.1f}" fill="{COLOURS[(j + 1) % len(COLOURS)]}"/>'
                )
            base += v
        parts.append(
            f'<text x="{left + (i + 0.5) * bw:.1f}" y="{top + ph + 14}" font-size="9" '
            f'text-anchor="middle">{escape(label)}</text>'
        )
    for j, key in enumerate(stacks):
        y = top + 12 + j * 14
        parts.append(
            f'<rect x="{left + pw + 10}" y="{y - 9}" width="10" height="10" '
            f'fill="{COLOURS[(j + 1) % len(COLOURS)]}"/>'
        )
        parts.append(f'<text x="{left + pw + 24}" y="{y}" font-size="10">{escape(key)}</text>')
    parts.append("</svg>")
    return "".join(parts)
