"""Substance names and precursor → drug relations, from the reference library's metadata.

Field tests, items and laboratory results name substances in many ways ("cocaine HCl",
"Ephedrine", "clorhidrato de efedrina"); :func:`canonical_substance` maps every library
name and synonym to the library's name, so keys and relations meet.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache


def normalise_name(text: str) -> str:
    """Case-folded, single-spaced text (the form names are compared in)."""
    return " ".join(text.casefold().split())


@dataclass(frozen=True)
class SubstanceRelations:
    """Canonical names, classes, and the precursor → drug relation both ways."""

    canonical: dict[str, str]
    classes: dict[str, str]
    drugs_of: dict[str, frozenset[str]]
    precursors_of: dict[str, frozenset[str]]

    @classmethod
    def from_metadata(cls, metadata: dict[str, dict[str, object]]) -> SubstanceRelations:
        """From ``{library name: metadata}``: keys ``synonyms``, ``class``, ``precursor_of``."""
        canonical: dict[str, str] = {}
        classes: dict[str, str] = {}
        drugs_of: dict[str, set[str]] = {}
        precursors_of: dict[str, set[str]] = {}
        for name, meta in metadata.items():
            key = normalise_name(name)
            canonical[key] = key
            classes[key] = str(meta.get("class") or "")
            synonyms = meta.get("synonyms") or []
            for synonym in synonyms if isinstance(synonyms, list) else []:
                # A library name wins over another entry's synonym.
                canonical.setdefault(normalise_name(str(synonym)), key)
        for name, meta in metadata.items():
            key = normalise_name(name)
            targets = meta.get("precursor_of") or []
            for target in targets if isinstance(targets, list) else []:
                drug = canonical.get(normalise_name(str(target)), normalise_name(str(target)))
                drugs_of.setdefault(key, set()).add(drug)
                precursors_of.setdefault(drug, set()).add(key)
        return cls(
            canonical=canonical,
            classes=classes,
            drugs_of={k: frozenset(v) for k, v in drugs_of.items()},
            precursors_of={k: frozenset(v) for k, v in precursors_of.items()},
        )

    def canonical_substance(self, name: str) -> str | None:
        """The library's name for ``name``, else its normalised text; None when blank."""
        key = normalise_name(name)
        if not key:
            return None
        if key in self.canonical:
            return self.canonical[key]
        # "Ephedrine HCl 98 %" and the like: retry without trailing purity or salt noise.
        stripped = re.sub(r"[\s\d.,%]+$", "", key)
        return self.canonical.get(stripped, key)

    def is_cutting_agent(self, name: str) -> bool:
        return self.classes.get(name) in ("cutting agent", "other")


@lru_cache(maxsize=1)
def library_relations() -> SubstanceRelations:
    """Relations of the demonstration library (loaded once per process)."""
    from spectra.library import load_demo_library

    library = load_demo_library()
    return SubstanceRelations.from_metadata({n: library.metadata(n) for n in library.names})
