"""The verdict in the officer's words: what was found, how sure, and what to do next.

Four languages (English, Spanish, French, Portuguese). Substance names stay as the library
spells them: they are the names the laboratory and the seizure report will use.
"""

from __future__ import annotations

import locale
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

LANGUAGES = ("en", "es", "fr", "pt")

#: Library classes whose presence makes a result "positive" for the officer.
_CONTROLLED_CLASSES = frozenset({"narcotic", "psychotropic", "controlled", "drug"})

_TEXT: dict[str, dict[str, str]] = {
    "en": {
        "identified": "presumptive identification: {what} (class not given by the library)",
        "positive": "presumptive positive: {what}",
        "precursor": "presumptive precursor: {what}",
        "feeds": "used to make {drugs}",
        "not_controlled": "no controlled substance detected: {what}",
        "inconclusive": "inconclusive: resembles {what}, not closely enough to name it",
        "no_match": "no match: nothing in the library matches this sample",
        "with": "with",
        "and": "and",
        "next_positive": "seal and send for laboratory confirmation",
        "next_precursor": "seal, send for laboratory confirmation and report a precursor incident",
        "next_not_controlled": "follow local procedure; traces below the limit are not ruled out",
        "next_inconclusive": "scan again (clean the window, hold steady, longer integration) "
        "or seal and send to the laboratory",
        "next_no_match": "the substance may be absent from the library: "
        "if it is suspicious, seal and send to the laboratory",
        "confidence": "confidence {level} (match score {score:.2f})",
        "high": "high",
        "moderate": "moderate",
        "low": "low",
        "demo": "DEMONSTRATION library — not for evidential use",
        "cutting agent": "cutting agent",
    },
    "es": {
        "identified": "identificación presuntiva: {what} (la biblioteca no indica su clase)",
        "positive": "positivo presuntivo: {what}",
        "precursor": "precursor presuntivo: {what}",
        "feeds": "se usa para fabricar {drugs}",
        "not_controlled": "no se detectó sustancia controlada: {what}",
        "inconclusive": "no concluyente: se parece a {what}, pero no lo bastante para nombrarla",
        "no_match": "sin coincidencia: nada en la biblioteca coincide con esta muestra",
        "with": "con",
        "and": "y",
        "next_positive": "precinte y envíe al laboratorio para confirmación",
        "next_precursor": "precinte, envíe al laboratorio para confirmación "
        "e informe un incidente de precursores",
        "next_not_controlled": "siga el procedimiento local; no se descartan trazas "
        "por debajo del límite",
        "next_inconclusive": "repita la medición (limpie la ventana, sostenga firme, "
        "integración más larga) o precinte y envíe al laboratorio",
        "next_no_match": "la sustancia puede no estar en la biblioteca: "
        "si es sospechosa, precinte y envíe al laboratorio",
        "confidence": "confianza {level} (puntuación {score:.2f})",
        "high": "alta",
        "moderate": "media",
        "low": "baja",
        "demo": "biblioteca de DEMOSTRACIÓN — sin valor probatorio",
        "cutting agent": "agente de corte",
    },
    "fr": {
        "identified": (
            "identification présomptive : {what} (classe non indiquée par la bibliothèque)"
        ),
        "positive": "positif présomptif : {what}",
        "precursor": "précurseur présomptif : {what}",
        "feeds": "sert à fabriquer {drugs}",
        "not_controlled": "aucune substance contrôlée détectée : {what}",
        "inconclusive": "non concluant : ressemble à {what}, pas assez pour la nommer",
        "no_match": "aucune correspondance : rien dans la bibliothèque ne correspond",
        "with": "avec",
        "and": "et",
        "next_positive": "placez sous scellé et envoyez au laboratoire pour confirmation",
        "next_precursor": "placez sous scellé, envoyez au laboratoire pour confirmation "
        "et signalez un incident de précurseurs",
        "next_not_controlled": "suivez la procédure locale ; des traces sous le seuil "
        "ne sont pas exclues",
        "next_inconclusive": "refaites la mesure (nettoyez la fenêtre, tenez stable, "
        "intégration plus longue) ou placez sous scellé et envoyez au laboratoire",
        "next_no_match": "la substance est peut-être absente de la bibliothèque : "
        "si elle est suspecte, placez-la sous scellé et envoyez-la au laboratoire",
        "confidence": "confiance {level} (score {score:.2f})",
        "high": "élevée",
        "moderate": "moyenne",
        "low": "faible",
        "demo": "bibliothèque de DÉMONSTRATION — sans valeur de preuve",
        "cutting agent": "produit de coupe",
    },
    "pt": {
        "identified": "identificação presuntiva: {what} (a biblioteca não indica a classe)",
        "positive": "positivo presuntivo: {what}",
        "precursor": "precursor presuntivo: {what}",
        "feeds": "usado para fabricar {drugs}",
        "not_controlled": "nenhuma substância controlada detectada: {what}",
        "inconclusive": "inconclusivo: semelhante a {what}, mas não o bastante para nomeá-la",
        "no_match": "sem correspondência: nada na biblioteca corresponde a esta amostra",
        "with": "com",
        "and": "e",
        "next_positive": "lacre e envie ao laboratório para confirmação",
        "next_precursor": "lacre, envie ao laboratório para confirmação "
        "e comunique um incidente de precursores",
        "next_not_controlled": "siga o procedimento local; vestígios abaixo do limite "
        "não estão descartados",
        "next_inconclusive": "repita a medição (limpe a janela, segure firme, integração "
        "mais longa) ou lacre e envie ao laboratório",
        "next_no_match": "a substância pode não estar na biblioteca: "
        "se for suspeita, lacre e envie ao laboratório",
        "confidence": "confiança {level} (pontuação {score:.2f})",
        "high": "alta",
        "moderate": "média",
        "low": "baixa",
        "demo": "biblioteca de DEMONSTRAÇÃO — sem valor probatório",
        "cutting agent": "agente de corte",
    },
}


@dataclass(frozen=True, slots=True)
class Wording:
    """One verdict for the officer.

    ``level``: positive, precursor, identified (class unknown), negative or unclear.
    """

    level: str
    headline: str
    confidence: str
    next_step: str
    demonstration_note: str | None

    def sentence(self) -> str:
        """Everything on one line: ``headline — next step (confidence)``."""
        text = f"{self.headline} — {self.next_step} ({self.confidence})"
        return f"{text}. {self.demonstration_note}" if self.demonstration_note else text


def language_from_environment(environ: Mapping[str, str] | None = None) -> str:
    """The officer's language from the locale variables (``LC_ALL``, ``LANG``…); else English."""
    env = os.environ if environ is None else environ
    for var in ("LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE"):
        value = env.get(var, "")
        code = value.split(":")[0][:2].lower()
        if code in LANGUAGES:
            return code
        if value and value not in ("C", "POSIX") and not value.startswith("C."):
            return "en"  # a set locale in a language we lack: English, not a later variable
    if environ is None:
        try:
            found = locale.getlocale()[0] or ""
        except ValueError:
            found = ""
        if found[:2].lower() in LANGUAGES:
            return found[:2].lower()
    return "en"


def check_language(lang: str) -> str:
    """``lang`` normalised (``es_ES`` → ``es``); ``ValueError`` naming the choices otherwise."""
    code = lang.strip().lower().replace("-", "_").split("_")[0]
    if code not in LANGUAGES:
        raise ValueError(
            f"language {lang!r} is not available; choose one of {', '.join(LANGUAGES)}"
        )
    return code


def _join(names: Sequence[str], word_and: str) -> str:
    if len(names) <= 1:
        return "".join(names)
    return f"{', '.join(names[:-1])} {word_and} {names[-1]}"


def _level(score: float) -> str:
    # Bands for the officer only; the verdict itself comes from the calibrated thresholds.
    if score >= 0.95:
        return "high"
    if score >= 0.85:
        return "moderate"
    return "low"


def describe(
    identification: Mapping[str, Any],
    metadata: Callable[[str], Mapping[str, Any]] | None = None,
    lang: str = "en",
) -> Wording:
    """Put an identification (``Identification.to_dict()``) in plain words.

    Parameters
    ----------
    identification : mapping
        ``verdict``, ``candidates``, ``components``, optionally ``score``, ``class`` and
        ``demonstration`` as the matcher gives them.
    metadata : callable, optional
        ``name → library metadata`` (``class``, ``precursor_of``), e.g. ``library.metadata``.
    lang : str
        One of :data:`LANGUAGES`.

    Raises
    ------
    ValueError
        For an unknown language or a verdict this module does not know.
    """
    text = _TEXT[check_language(lang)]
    verdict = str(identification.get("verdict", ""))
    components = [str(c["name"]) for c in identification.get("components") or []]
    candidates = [str(c["name"]) for c in identification.get("candidates") or []]
    scores = [float(c.get("score", 0.0)) for c in identification.get("candidates") or []]
    score = float(identification.get("score", scores[0] if scores else 0.0))

    def meta(name: str) -> Mapping[str, Any]:
        if metadata is None:
            return {}
        try:
            return metadata(name)
        except (KeyError, ValueError):
            return {}

    confidence = text["confidence"].format(level=text[_level(score)], score=score)
    demo = text["demo"] if identification.get("demonstration") else None
    if verdict in ("identified", "mixture"):
        names = components or candidates[:1]
        classes = [str(meta(n).get("class") or "") for n in names]
        controlled = [n for n, c in zip(names, classes, strict=True) if c in _CONTROLLED_CLASSES]
        precursors = [n for n, c in zip(names, classes, strict=True) if c == "precursor"]
        if controlled:
            rest = [n for n in names if n not in controlled]
            what = _join(controlled, text["and"])
            if rest:
                what += f" {text['with']} {_join(rest, text['and'])}"
            return Wording(
                "positive",
                text["positive"].format(what=what),
                confidence,
                text["next_positive"],
                demo,
            )
        if precursors:
            parts = []
            for name in precursors:
                drugs = [str(d) for d in meta(name).get("precursor_of") or []]
                feeds = (
                    f" ({text['feeds'].format(drugs=_join(drugs, text['and']))})" if drugs else ""
                )
                parts.append(name + feeds)
            return Wording(
                "precursor",
                text["precursor"].format(what="; ".join(parts)),
                confidence,
                text["next_precursor"],
                demo,
            )
        if any(not c for c in classes):
            # A class the library does not give: never tell the officer it is harmless.
            return Wording(
                "identified",
                text["identified"].format(what=_join(names, text["and"])),
                confidence,
                text["next_positive"],
                demo,
            )
        labelled = [
            f"{n} ({text['cutting agent']})" if c == "cutting agent" else n
            for n, c in zip(names, classes, strict=True)
        ]
        return Wording(
            "negative",
            text["not_controlled"].format(what=_join(labelled, text["and"])),
            confidence,
            text["next_not_controlled"],
            demo,
        )
    if verdict == "inconclusive":
        what = _join(components or candidates[:1], text["and"]) or "?"
        return Wording(
            "unclear",
            text["inconclusive"].format(what=what),
            confidence,
            text["next_inconclusive"],
            demo,
        )
    if verdict == "no_match":
        return Wording("unclear", text["no_match"], confidence, text["next_no_match"], demo)
    raise ValueError(f"unknown verdict {verdict!r}")
