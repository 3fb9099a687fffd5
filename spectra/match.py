"""Fast, field-robust search of a reference library.

Both references and queries go through the library's
:class:`~spectra.preprocess.Pipeline` (so fluorescence, spikes and the detector
axis are dealt with before comparing), then:

1. **Common resolution** — references are broadened with the same Gaussian as
   queries, so instrument resolution (6–10 cm⁻¹) matters little.
2. **Compressed features** — ``sign(y)·sqrt(|y|)`` lowers the weight of the
   tallest bands, so relative-intensity differences between instruments cost
   less than missing or extra bands.
3. **Covered range only** — the score is the Pearson correlation over the part
   of the library axis that the query covers. A coarse pass ranks every
   reference on every d-th point (d ≈ half the common FWHM): per-reference sums
   and sums of squares are kept cumulatively at block boundaries, so restricting
   the comparison to any range costs O(entries), and a whole batch of queries is
   one matrix product.
4. **Drift** — the best :data:`REFINE` candidates are re-scored at full
   resolution with the query shifted by up to ``max_shift_cm1`` (±6 cm⁻¹ by
   default, in 1 cm⁻¹ steps) and keep their best score.
5. **Noise** — :meth:`Matcher.reliability` estimates how much of the query is
   signal from its even and odd pixels; :meth:`SearchResult.corrected` divides a
   score by its square root (correction for attenuation), so that a noisy
   measurement of a library substance and a clean one of an absent analogue are
   not confused by one threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from scipy.ndimage import gaussian_filter1d

from spectra.preprocess import Prepared

if TYPE_CHECKING:
    from spectra.library import ReferenceLibrary

FloatArray = npt.NDArray[np.float64]
#: Coverage is trimmed inward to multiples of this many coarse points (small cumulative tables).
BLOCK = 8
#: Candidates re-scored with drift search.
REFINE = 32
#: Smallest reliability the noise correction uses (at most a 1/sqrt(0.5) ≈ 1.41 boost).
RELIABILITY_FLOOR = 0.5

_FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))


def compress(values: npt.ArrayLike) -> FloatArray:
    """``sign(y)·sqrt(|y|)``: compresses tall bands, keeps sign and zero."""
    y = np.asarray(values, dtype=np.float64)
    result: FloatArray = np.sign(y) * np.sqrt(np.abs(y))
    return result


@dataclass(frozen=True, slots=True)
class SearchResult:
    """Best candidates of one query, best first."""

    indices: npt.NDArray[np.int64]
    scores: FloatArray
    shift_cm1: float  # drift estimate: the query was best matched shifted by this much
    start: int  # covered (block-trimmed) slice of the library axis
    stop: int
    reliability: float  # estimated share of the query's feature variance that is signal, [0, 1]

    def corrected(self, score: float) -> float:
        """``score`` corrected for the query's noise (correction for attenuation), at most 1.

        The correction never exceeds ``1/sqrt(RELIABILITY_FLOOR)``: a query that is
        mostly noise is not boosted (and cannot be asserted, see ``spectra.verdict``).
        """
        return float(min(1.0, score / np.sqrt(max(self.reliability, RELIABILITY_FLOOR))))


class Matcher:
    """Search structure over one :class:`~spectra.library.ReferenceLibrary`."""

    def __init__(self, library: ReferenceLibrary) -> None:
        pipeline = library.pipeline
        self.pipeline = pipeline
        self.size = len(library)
        step = pipeline.step
        sigma = pipeline.broaden_fwhm_cm1 / _FWHM_PER_SIGMA / step
        refs = np.asarray(library.matrix, dtype=np.float64)
        broad = gaussian_filter1d(refs, sigma, axis=1, mode="constant") if sigma > 0 else refs
        #: Broadened references (linear intensity), used for mixture fitting.
        self.linear: npt.NDArray[np.float32] = np.ascontiguousarray(broad, dtype=np.float32)
        feats = self._features(broad)
        #: Compressed features used for scoring.
        self.features: npt.NDArray[np.float32] = np.ascontiguousarray(feats, dtype=np.float32)
        # The coarse pass compares every reference on every d-th point: the features are
        # broadened, so sampling them at about half the common FWHM loses nothing that
        # ranks the best candidates, and the matrix product is d times smaller.
        m = pipeline.axis_points
        d = max(1, round(pipeline.broaden_fwhm_cm1 / (2.0 * step)))
        self.decimation = d
        coarse = feats[:, ::d]
        #: Decimated features for the coarse pass (one matrix product per batch).
        self.coarse: npt.NDArray[np.float32] = np.ascontiguousarray(coarse, dtype=np.float32)
        md = coarse.shape[1]
        self._edges = np.r_[np.arange(0, md, BLOCK), md]  # block edges, coarse indices
        # Cumulative sums at block edges, (edges, entries): a query's range is two row reads.
        zero = np.zeros((1, self.size))
        starts = self._edges[:-1]
        sums = np.add.reduceat(coarse, starts, axis=1).T
        squares = np.add.reduceat(coarse * coarse, starts, axis=1).T
        self._cum1 = np.ascontiguousarray(np.vstack([zero, sums.cumsum(axis=0)]))
        self._cum2 = np.ascontiguousarray(np.vstack([zero, squares.cumsum(axis=0)]))
        self._m = m
        self._max_shift_pts = int(np.ceil(pipeline.max_shift_cm1 / step))
        n_shift = int(np.floor(pipeline.max_shift_cm1 / pipeline.shift_step_cm1))
        self._shifts_pts = np.arange(-n_shift, n_shift + 1) * pipeline.shift_step_cm1 / step

    def _features(self, linear: FloatArray) -> FloatArray:
        return compress(linear) if self.pipeline.compress == "sqrt" else linear

    def _trim(self, start: int, stop: int) -> tuple[int, int]:
        # Inward to block edges (coarse indices), and off the ends by the largest shift so
        # that shifted reads never leave the covered range.
        d = self.decimation
        lo = -(-(start + self._max_shift_pts) // d)
        hi = (stop - self._max_shift_pts) // d
        b0 = int(np.searchsorted(self._edges, lo, side="left"))
        b1 = int(np.searchsorted(self._edges, hi, side="right")) - 1
        if b1 - b0 < 2:  # too short for block trimming: fall back to two blocks around the middle
            mid = int(np.searchsorted(self._edges, (start + stop) // (2 * d)))
            b0, b1 = max(mid - 1, 0), min(mid + 1, self._edges.size - 1)
        return b0, b1

    def _full_range(self, b0: int, b1: int) -> tuple[int, int]:
        d = self.decimation
        return int(self._edges[b0]) * d, min(int(self._edges[b1]) * d, self._m)

    def _query_matrix(
        self, prepared: Sequence[Prepared]
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        q = np.zeros((len(prepared), self.coarse.shape[1]), dtype=np.float32)
        blocks = np.empty((len(prepared), 2), dtype=np.int64)
        d = self.decimation
        for row, p in enumerate(prepared):
            b0, b1 = self._trim(p.start, p.stop)
            c0, c1 = int(self._edges[b0]), int(self._edges[b1])
            f = self._features(p.values[c0 * d : c1 * d : d])
            f = f - f.mean()
            norm = float(np.linalg.norm(f))
            if norm > 0:
                q[row, c0 : c0 + f.size] = f / norm
            blocks[row] = (b0, b1)
        return q, blocks

    def _ref_norms(self, b0: int, b1: int) -> FloatArray:
        # Centred norm of every reference over blocks [b0, b1): two row reads per table.
        n = float(self._edges[b1] - self._edges[b0])
        s1 = self._cum1[b1] - self._cum1[b0]
        s2 = self._cum2[b1] - self._cum2[b0]
        result: FloatArray = np.sqrt(np.maximum(s2 - s1 * s1 / n, 1e-20))
        return result

    def coarse_scores(self, prepared: Sequence[Prepared]) -> npt.NDArray[np.float32]:
        """Pearson correlation of each query with each reference on the query's range.

        Computed on every ``decimation``-th point, without drift search: it only
        ranks candidates for :meth:`search`, which re-scores the best at full resolution.
        """
        q, blocks = self._query_matrix(prepared)
        scores = q @ self.coarse.T  # one matrix product for the whole batch
        # Queries share few distinct ranges: scale each group in place.
        pairs, groups = np.unique(blocks, axis=0, return_inverse=True)
        for g, (b0, b1) in enumerate(pairs):
            rows = np.flatnonzero(groups.ravel() == g)
            scores[rows] /= self._ref_norms(int(b0), int(b1)).astype(np.float32)
        return scores

    def _refine(
        self, p: Prepared, i0: int, i1: int, candidates: npt.NDArray[np.int64]
    ) -> tuple[FloatArray, FloatArray]:
        # The query read at index + s: a spectrum drifted by +s points is pulled back into place.
        pos = np.arange(i0, i1, dtype=np.float64)[None, :] + self._shifts_pts[:, None]
        pos = np.clip(pos, p.start, p.stop - 1)
        j = pos.astype(np.int64)
        frac = pos - j
        full = p.values
        shifted = (1.0 - frac) * full[j] + frac * full[np.minimum(j + 1, p.stop - 1)]
        feats = self._features(shifted)
        feats -= feats.mean(axis=1, keepdims=True)
        feats /= np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-20)
        refs = self.features[candidates, i0:i1].astype(np.float64)
        refs -= refs.mean(axis=1, keepdims=True)
        refs /= np.maximum(np.linalg.norm(refs, axis=1, keepdims=True), 1e-20)
        corr = feats @ refs.T  # (shifts, candidates)
        best = np.argmax(corr, axis=0)
        return corr[best, np.arange(candidates.size)], self._shifts_pts[best]

    def search(self, prepared: Sequence[Prepared], top: int = 10) -> list[SearchResult]:
        """Best ``top`` candidates of each prepared query, drift-refined, best first."""
        if top < 1:
            raise ValueError(f"top must be >= 1, got {top}")
        if not prepared:
            return []
        coarse = self.coarse_scores(prepared)
        keep = min(max(REFINE, top), self.size)
        if keep < self.size:
            shortlist = np.argpartition(-coarse, keep - 1, axis=1)[:, :keep]
        else:
            shortlist = np.broadcast_to(np.arange(self.size), coarse.shape)
        results = []
        for row, p in enumerate(prepared):
            i0, i1 = self._full_range(*self._trim(p.start, p.stop))
            cand = np.asarray(shortlist[row], dtype=np.int64)
            refined, shifts = self._refine(p, i0, i1, cand)
            order = np.argsort(-refined, kind="stable")[: min(top, cand.size)]
            results.append(
                SearchResult(
                    cand[order],
                    refined[order],
                    float(shifts[order[0]] * self.pipeline.step),
                    i0,
                    i1,
                    self.reliability(p, i0, i1),
                )
            )
        return results

    def reliability(self, p: Prepared, start: int, stop: int) -> float:
        """How much of the query's feature variance on ``[start, stop)`` is signal.

        The even and the odd detector pixels are two measurements of the same
        spectrum with independent noise; the correlation ``r`` of their features,
        stepped up to the full set by the Spearman–Brown formula ``2r / (1 + r)``,
        estimates the reliability. 1 when the halves are unavailable.
        """
        if p.halves is None:
            return 1.0
        a = self._features(p.halves[0][start - p.start : stop - p.start])
        b = self._features(p.halves[1][start - p.start : stop - p.start])
        a = a - a.mean()
        b = b - b.mean()
        den = float(np.linalg.norm(a) * np.linalg.norm(b))
        r = float(a @ b) / den if den > 0 else 0.0
        return float(np.clip(2.0 * r / (1.0 + r), 0.0, 1.0)) if r > 0 else 0.0

    def shifted_query(self, p: Prepared, shift_cm1: float, start: int, stop: int) -> FloatArray:
        """The query's linear values on ``[start, stop)`` read ``shift_cm1`` away (drift undone)."""
        idx = np.arange(start, stop, dtype=np.float64) + shift_cm1 / self.pipeline.step
        axis_idx = np.arange(p.start, p.stop, dtype=np.float64)
        result: FloatArray = np.interp(idx, axis_idx, p.values[p.start : p.stop])
        return result
