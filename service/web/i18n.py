"""Languages of the web UI and the PDF report: gettext catalogues compiled on the fly, Babel.

The ``.po`` files under ``locale/`` are the source of truth. They are compiled in memory
when first used (so a compiled catalogue can never be stale); ``python -m service.web.i18n
compile`` also writes ``.mo`` files beside them for tools that want them.
"""

from __future__ import annotations

import gettext
import io
import sys
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

from babel import Locale
from babel.dates import format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "messages"
LANGUAGES: tuple[str, ...] = ("en", "es", "fr", "pt")
DEFAULT_LANGUAGE = "en"
#: Cookie that remembers the user's language choice.
LANG_COOKIE = "fieldscan_lang"


def po_path(lang: str) -> Path:
    """Where the catalogue of ``lang`` lives."""
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def compile_catalogue(lang: str) -> bytes:
    """The ``.mo`` bytes of ``lang``'s catalogue (fuzzy entries excluded, as msgfmt does)."""
    with po_path(lang).open("rb") as fh:
        catalog = read_po(fh, locale=lang)
    out = io.BytesIO()
    write_mo(out, catalog, use_fuzzy=False)
    return out.getvalue()


@lru_cache(maxsize=len(LANGUAGES))
def translations(lang: str) -> gettext.GNUTranslations:
    """Compiled translations of ``lang`` (an unknown code gets the default language)."""
    if lang not in LANGUAGES:
        lang = DEFAULT_LANGUAGE
    return gettext.GNUTranslations(io.BytesIO(compile_catalogue(lang)))


def negotiate(cookie: str | None, accept_language: str | None) -> str:
    """The language to use: the remembered choice, else the browser's best match, else English."""
    if cookie in LANGUAGES:
        return cookie
    if accept_language:
        wanted = []
        for part in accept_language.split(","):
            tag, _, q = part.strip().partition(";q=")
            try:
                weight = float(q) if q else 1.0
            except ValueError:
                continue
            wanted.append((weight, tag.strip().lower()))
        for _, tag in sorted(wanted, key=lambda w: -w[0]):
            base = tag.split("-")[0]
            if base in LANGUAGES:
                return base
    return DEFAULT_LANGUAGE


class Formatter:
    """Dates, numbers and masses in one language's conventions (Babel CLDR data)."""

    def __init__(self, lang: str) -> None:
        self.lang = lang if lang in LANGUAGES else DEFAULT_LANGUAGE
        self.locale = Locale.parse(self.lang)

    def datetime(self, value: datetime | None) -> str:
        if value is None:
            return "—"
        # Evidence times are shown in UTC, stated, so that every reader sees the same time.
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return (
            format_datetime(aware.astimezone(UTC), "medium", tzinfo=UTC, locale=self.locale)
            + " UTC"
        )

    def number(self, value: float | int | None, digits: int = 3) -> str:
        if value is None:
            return "—"
        return format_decimal(
            value, format=f"#,##0.{'#' * digits}" if digits else "#,##0", locale=self.locale
        )

    def mass(self, value: float | None, unit: str | None) -> str:
        if value is None:
            return "—"
        return f"{self.number(value)}\u00a0{unit or ''}".strip()

    def percent(self, value: float | None) -> str:
        return "—" if value is None else f"{self.number(value, 1)}\u00a0%"

    def country(self, code: str | None) -> str:
        if not code:
            return "—"
        name = self.locale.territories.get(code.upper())
        return f"{name} ({code})" if name else code


def _main(argv: list[str]) -> int:
    if argv[:1] != ["compile"]:
        print("usage: python -m service.web.i18n compile", file=sys.stderr)
        return 2
    for lang in LANGUAGES:
        target = po_path(lang).with_suffix(".mo")
        target.write_bytes(compile_catalogue(lang))
        print(target)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(_main(sys.argv[1:]))
