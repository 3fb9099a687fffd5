"""Speed of identification: a 10,000-entry library of 2,048-point spectra, 1,000 field queries.

Prints queries per second for
* preprocessing (despike, resample, arPLS baseline, broaden, normalise),
* top-5 search on preprocessed queries (one matrix product per batch + drift refinement),
* full verdicts with mixture analysis,
* end to end (preprocessing + full verdicts),
and the same search done by a plain numpy baseline — the same preprocessing and
features, then one matrix–vector product per query — with the ratio of the two.

Usage::

    .venv/bin/python benchmarks/bench_identify.py [--entries 10000] [--queries 1000] [--points 2048]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from typing import TypeVar

import numpy as np

from spectra.field import (
    TRUTH_AXIS,
    FieldConditions,
    field_spectrum,
    random_bands,
    truth_from_bands,
)
from spectra.identify import identify_prepared
from spectra.library import Entry, ReferenceLibrary
from spectra.match import compress
from spectra.preprocess import Pipeline
from spectra.synth import synthesise

T = TypeVar("T")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=1_000)
    parser.add_argument("--points", type=int, default=2_048)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3, help="timing runs per stage (best kept)")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    pipeline = Pipeline(axis_points=args.points)
    axis = pipeline.axis

    t0 = time.perf_counter()
    bands = [random_bands(rng) for _ in range(args.entries)]
    # References are clean synthetic spectra already on the library axis: they need no
    # baseline removal, so the library is assembled directly (preprocessing is timed below).
    rows = np.stack([synthesise(axis, b) for b in bands])
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    entries = [Entry(f"substance-{i:05d}") for i in range(args.entries)]
    library = ReferenceLibrary(entries, rows, pipeline, title="benchmark")
    matcher = library.matcher()
    build_s = time.perf_counter() - t0

    truth_idx = rng.integers(0, args.entries, args.queries)
    conditions = FieldConditions()
    queries = [
        field_spectrum(truth_from_bands(bands[i], TRUTH_AXIS), rng, conditions) for i in truth_idx
    ]

    # Each stage is timed --repeat times and the best run kept: on a shared machine the
    # best run is the one least disturbed by other work.
    def best_of(stage: Callable[[], T]) -> tuple[float, T]:
        times, out = [], None
        for _ in range(args.repeat):
            t = time.perf_counter()
            out = stage()
            times.append(time.perf_counter() - t)
        assert out is not None
        return min(times), out

    prep_s, prepared = best_of(lambda: [pipeline.prepare(q) for q in queries])
    search_s, found = best_of(lambda: matcher.search(prepared, top=5))
    top1 = np.mean([int(f.indices[0]) == i for f, i in zip(found, truth_idx, strict=True)])
    full_s, results = best_of(lambda: identify_prepared(prepared, library))
    verdicts: dict[str, int] = {}
    for r in results:
        verdicts[r.verdict.value] = verdicts.get(r.verdict.value, 0) + 1

    # Plain numpy baseline: same preprocessed queries and features, one mat-vec per query.
    feats = matcher.features

    def baseline() -> list[np.ndarray]:
        tops = []
        for p in prepared:
            f = compress(p.values[p.start : p.stop])
            q = np.zeros(args.points, dtype=np.float32)
            q[p.start : p.stop] = (f - f.mean()) / (np.linalg.norm(f - f.mean()) or 1.0)
            scores = feats @ q
            best = np.argpartition(-scores, 5)[:5]
            tops.append(best[np.argsort(-scores[best])])
        return tops

    base_s, base_top = best_of(baseline)
    base_top1 = np.mean([int(b[0]) == i for b, i in zip(base_top, truth_idx, strict=True)])

    n = args.queries
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU(s)")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"timings: best of {args.repeat} runs per stage; load average at the end {load:.1f}")
    print(f"library: {args.entries} entries x {args.points} points (built in {build_s:.1f} s)")
    print(f"queries: {n} field spectra (1024 non-uniform pixels, partial range)")
    print(f"preprocessing          {n / prep_s:9.0f} queries/s")
    print(f"top-5 search           {n / search_s:9.0f} queries/s   (top-1 {top1:.3f})")
    print(f"full verdicts+mixtures {n / full_s:9.0f} queries/s   {verdicts}")
    print(f"end to end             {n / (prep_s + full_s):9.0f} queries/s")
    print(f"numpy mat-vec baseline {n / base_s:9.0f} queries/s   (top-1 {base_top1:.3f})")
    print(f"search time / numpy baseline time: {search_s / base_s:.2f}x")
    print(
        "with preprocessing, (preprocessing + search) / (preprocessing + baseline): "
        f"{(prep_s + search_s) / (prep_s + base_s):.2f}x"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
