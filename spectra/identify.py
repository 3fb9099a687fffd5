"""Identify spectra against a reference library: candidates, mixture, calibrated verdict."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from spectra.library import ReferenceLibrary
from spectra.match import SearchResult, compress
from spectra.mixture import fit_mixture
from spectra.preprocess import Prepared
from spectra.spectrum import Spectrum
from spectra.verdict import Verdict, decide

#: Candidates reported per query (the contract asks for at least five).
CANDIDATES = 10
#: Best matches offered to the mixture fit (cutting agents are always offered too).
MIXTURE_POOL = 12
#: Libraries with at most this many cutting agents offer all of them to every mixture fit.
MAX_AGENTS_IN_POOL = 40
#: A fingerprint needs at least this much of the axis (cm⁻¹) to be compared at all.
MIN_COVERED_CM1 = 400.0

_ADVICE = {
    Verdict.IDENTIFIED: (
        "Presumptive identification. Confirm in the laboratory before evidential use."
    ),
    Verdict.MIXTURE: "Presumptive mixture. Confirm components and proportions in the laboratory.",
    Verdict.INCONCLUSIVE: (
        "Resembles a library entry but not closely enough to name it. "
        "Take another measurement or send the sample to the laboratory."
    ),
    Verdict.NO_MATCH: "Nothing in this library matches. The substance may be absent from it.",
}


@dataclass(frozen=True, slots=True)
class Identification:
    """The answer for one spectrum.

    Candidate scores are the plain correlations that rank the candidates;
    ``score`` (what the verdict rests on) is corrected for the query's noise
    (see :mod:`spectra.match`), so it can exceed the top candidate's score.
    """

    verdict: Verdict
    candidates: tuple[tuple[str, float], ...]  # best first
    components: tuple[
        tuple[str, float], ...
    ]  # what the verdict asserts (tentative if inconclusive)
    score: float  # the score the verdict rests on (single match or mixture fit)
    library_version: str
    library_title: str
    demonstration: bool
    drift_cm1: float
    covered_cm1: tuple[float, float]
    classes: tuple[str | None, ...]  # class of each component
    controls: tuple[Any, ...]  # international control status of each component
    single_score: float  # noise-corrected score of the best single candidate
    mixture_score: float | None  # noise-corrected score of the accepted mixture fit, if any
    reliability: float = 1.0  # estimated share of the query that is signal, not noise
    noisy: bool = False  # too noisy to assert anything

    @property
    def advice(self) -> str:
        """One sentence for the officer."""
        text = _ADVICE[self.verdict]
        if self.noisy:
            text += " The measurement is mostly noise: measure again with a longer integration."
        if self.demonstration:
            text += " DEMONSTRATION library: not for evidential use."
        return text

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract (see ``fieldscan identify --json``) plus useful extras."""
        components = [] if self.verdict is Verdict.NO_MATCH else self.components
        return {
            "verdict": self.verdict.value,
            "candidates": [{"name": n, "score": round(s, 4)} for n, s in self.candidates],
            "components": [{"name": n, "fraction": round(f, 3)} for n, f in components],
            "library_version": self.library_version,
            "library": self.library_title,
            "demonstration": self.demonstration,
            "score": round(self.score, 4),
            "reliability": round(self.reliability, 3),
            "class": [c for c in self.classes[: len(components)]],
            "control": [c for c in self.controls[: len(components)]],
            "drift_cm1": round(self.drift_cm1, 1),
            "covered_cm1": [round(self.covered_cm1[0], 1), round(self.covered_cm1[1], 1)],
            "advice": self.advice,
        }


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    den = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b) / den if den > 0 else 0.0


def _agents(library: ReferenceLibrary) -> np.ndarray:
    rows = [i for i, e in enumerate(library.entries) if e.metadata.get("class") == "cutting agent"]
    return np.asarray(rows if len(rows) <= MAX_AGENTS_IN_POOL else [], dtype=np.int64)


def _decide_one(
    library: ReferenceLibrary,
    prepared: Prepared,
    found: SearchResult,
    agents: np.ndarray,
    names: list[str],
    mixtures: bool = True,
) -> Identification:
    matcher = library.matcher()
    thresholds = library.thresholds
    best = found.corrected(float(found.scores[0]))
    pool = list(dict.fromkeys([*found.indices[:MIXTURE_POOL].tolist(), *agents.tolist()]))
    query = matcher.shifted_query(prepared, found.shift_cm1, found.start, found.stop)
    refs = matcher.linear[pool, found.start : found.stop].astype(np.float64).T
    feats = matcher.features[pool, found.start : found.stop].astype(np.float64)
    feats -= feats.mean(axis=1, keepdims=True)
    feats /= np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-20)
    fit = fit_mixture(
        query,
        refs,
        first=0,
        exclusive=feats @ feats.T >= thresholds.max_similarity,
        max_components=3 if mixtures else 1,
        min_gain=thresholds.min_gain,
        min_fraction=thresholds.min_fraction,
    )
    mixture_score: float | None = None
    if len(fit.components) >= 2:
        mixture_score = found.corrected(_pearson(compress(fit.fitted), compress(query)))
    verdict = decide(best, mixture_score, len(fit.components), thresholds, found.reliability)
    if len(fit.components) >= 2:
        components = tuple(
            (names[pool[c]], f) for c, f in zip(fit.components, fit.fractions, strict=True)
        )
        score = mixture_score if mixture_score is not None else best
    else:
        components = ((names[int(found.indices[0])], 1.0),)
        score = best
    metas = [library.metadata(n) for n, _ in components]
    axis = library.axis
    return Identification(
        verdict=verdict,
        candidates=tuple(
            (names[int(i)], float(s))
            for i, s in zip(found.indices[:CANDIDATES], found.scores[:CANDIDATES], strict=True)
        ),
        components=components,
        score=float(score),
        library_version=library.version,
        library_title=library.title,
        demonstration=library.demonstration,
        drift_cm1=found.shift_cm1,
        covered_cm1=(float(axis[prepared.start]), float(axis[prepared.stop - 1])),
        classes=tuple(m.get("class") for m in metas),
        controls=tuple(m.get("control") for m in metas),
        single_score=best,
        mixture_score=mixture_score,
        reliability=found.reliability,
        noisy=found.reliability < thresholds.min_reliability,
    )


def prepare(spectrum: Spectrum, library: ReferenceLibrary) -> Prepared:
    """Run the library's pipeline on ``spectrum``.

    Raises
    ------
    ValueError
        When the spectrum covers less than :data:`MIN_COVERED_CM1` of the library axis.
    """
    prepared = library.pipeline.prepare(spectrum)
    lo, hi = prepared.covered_cm1
    if hi - lo < MIN_COVERED_CM1:
        raise ValueError(
            f"the spectrum covers only {lo:.0f}–{hi:.0f} cm⁻¹ of the library axis; "
            f"at least {MIN_COVERED_CM1:.0f} cm⁻¹ are needed to identify anything"
        )
    return prepared


def prepare_many(spectra: Sequence[Spectrum], library: ReferenceLibrary) -> list[Prepared]:
    """:func:`prepare` for each spectrum."""
    return [prepare(s, library) for s in spectra]


def identify_prepared(
    prepared: Sequence[Prepared], library: ReferenceLibrary, mixtures: bool = True
) -> list[Identification]:
    """Identify already-prepared queries in one batch (one matrix product for the search).

    ``mixtures=False`` skips mixture analysis (every verdict then rests on the best
    single match).
    """
    matcher = library.matcher()
    found = matcher.search(prepared, top=max(CANDIDATES, MIXTURE_POOL))
    agents = _agents(library)
    names = library.names
    return [
        _decide_one(library, p, f, agents, names, mixtures)
        for p, f in zip(prepared, found, strict=True)
    ]


def identify_many(spectra: Sequence[Spectrum], library: ReferenceLibrary) -> list[Identification]:
    """Identify a batch of spectra against ``library``.

    Raises
    ------
    ValueError
        When a spectrum does not overlap the library axis enough to be compared.
    """
    return identify_prepared(prepare_many(spectra, library), library)


def identify(spectrum: Spectrum, library: ReferenceLibrary) -> Identification:
    """Identify one spectrum against ``library`` (see :func:`identify_many`)."""
    return identify_many([spectrum], library)[0]
