"""The officer's verdict in plain words, in four languages."""

from __future__ import annotations

from typing import Any

import pytest

from fieldscan.station.wording import (
    LANGUAGES,
    check_language,
    describe,
    language_from_environment,
)
from spectra.library import load_demo_library


class _Lazy:
    """The demo library, loaded on first use (not at collection)."""

    def __getattr__(self, name: str) -> Any:
        library = load_demo_library()
        return getattr(library, name)


LIB: Any = _Lazy()


def _ident(verdict: str, components: list[tuple[str, float]], score: float = 0.97) -> Any:
    names = [n for n, _ in components] or ["cocaine hydrochloride"]
    return {
        "verdict": verdict,
        "candidates": [{"name": n, "score": score} for n in names],
        "components": [{"name": n, "fraction": f} for n, f in components],
        "score": score,
        "demonstration": True,
    }


def test_a_cut_drug_is_a_presumptive_positive_naming_the_cutting_agent() -> None:
    words = describe(
        _ident("mixture", [("cocaine hydrochloride", 0.6), ("levamisole hydrochloride", 0.4)]),
        LIB.metadata,
    )
    assert words.level == "positive"
    assert words.headline == (
        "presumptive positive: cocaine hydrochloride with levamisole hydrochloride"
    )
    assert words.next_step == "seal and send for laboratory confirmation"
    assert "confidence high" in words.confidence
    assert "DEMONSTRATION" in words.sentence()


def test_a_precursor_names_the_drugs_it_feeds_from_the_library_metadata() -> None:
    words = describe(_ident("identified", [("safrole", 1.0)]), LIB.metadata)
    assert words.level == "precursor"
    fed = LIB.metadata("safrole")["precursor_of"]
    assert fed and all(drug in words.headline for drug in fed)
    assert "used to make" in words.headline and "precursor incident" in words.next_step


def test_cutting_agents_alone_inconclusive_and_no_match() -> None:
    agent = describe(_ident("identified", [("caffeine", 1.0)]), LIB.metadata)
    assert agent.level == "negative" and "caffeine (cutting agent)" in agent.headline
    unclear = describe(_ident("inconclusive", [("cocaine hydrochloride", 1.0)], 0.8), LIB.metadata)
    assert unclear.level == "unclear" and "resembles cocaine hydrochloride" in unclear.headline
    assert "confidence low" in unclear.confidence and "scan again" in unclear.next_step
    nothing = describe(_ident("no_match", [], 0.5), LIB.metadata)
    assert nothing.headline.startswith("no match") and "laboratory" in nothing.next_step


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        ("es", "positivo presuntivo: cocaine hydrochloride"),
        ("fr", "positif présomptif : cocaine hydrochloride"),
        ("pt", "positivo presuntivo: cocaine hydrochloride"),
    ],
)
def test_other_languages(lang: str, expected: str) -> None:
    words = describe(_ident("identified", [("cocaine hydrochloride", 1.0)]), LIB.metadata, lang)
    english = describe(_ident("identified", [("cocaine hydrochloride", 1.0)]), LIB.metadata)
    assert words.headline == expected
    assert words.next_step != english.next_step and words.demonstration_note


def test_every_language_words_every_verdict() -> None:
    cases = [
        _ident("identified", [("heroin hydrochloride", 1.0)]),
        _ident("mixture", [("cocaine hydrochloride", 0.7), ("caffeine", 0.3)]),
        _ident("identified", [("pmk", 1.0)]),
        _ident("identified", [("sucrose", 1.0)]),
        _ident("inconclusive", [("ketamine hydrochloride", 1.0)], 0.85),
        _ident("no_match", [], 0.4),
    ]
    for lang in LANGUAGES:
        lines = [describe(c, LIB.metadata, lang).sentence() for c in cases]
        assert len(set(lines)) == len(cases)


def test_language_choice_from_the_environment_and_bad_choices() -> None:
    assert language_from_environment({"LANG": "es_PE.UTF-8"}) == "es"
    assert language_from_environment({"LC_ALL": "fr_FR.UTF-8", "LANG": "es_ES"}) == "fr"
    assert language_from_environment({"LANG": "pt_BR.UTF-8"}) == "pt"
    assert language_from_environment({"LANG": "de_DE.UTF-8"}) == "en"
    assert language_from_environment({"LANG": "C.UTF-8"}) == "en"
    assert check_language("es-PE") == "es"
    with pytest.raises(ValueError, match="en, es, fr, pt"):
        check_language("de")
    with pytest.raises(ValueError, match="unknown verdict"):
        describe({"verdict": "maybe", "candidates": [], "components": []})


def test_without_metadata_an_identification_is_not_called_positive() -> None:
    # Unknown class: the wording must not claim a controlled drug it cannot vouch for.
    words = describe(_ident("identified", [("cocaine hydrochloride", 1.0)]))
    assert words.level == "identified"
    assert "no controlled" not in words.headline
    assert words.next_step == "seal and send for laboratory confirmation"
