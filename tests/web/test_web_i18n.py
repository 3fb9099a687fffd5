"""Catalogues complete and current; no literal text in templates; localised formats; choice."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from service.web import i18n
from service.web.i18n import (
    LANGUAGES,
    Formatter,
    compile_catalogue,
    negotiate,
    po_path,
    translations,
)

WEB = Path(i18n.__file__).parent
METHOD_MAP = [("**.py", "python"), ("templates/**.html", "jinja2.ext:babel_extract")]


def _extracted() -> set[str]:
    ids = set()
    for _file, _line, message, _comments, _ctx in extract_from_dir(
        str(WEB), METHOD_MAP, keywords={"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
    ):
        ids.add(message if isinstance(message, str) else message[0])
    return {m for m in ids if m}


@pytest.fixture(scope="module")
def extracted() -> set[str]:
    return _extracted()


@pytest.mark.parametrize("lang", LANGUAGES)
def test_web_every_message_is_translated(lang: str, extracted: set[str]) -> None:
    with po_path(lang).open("rb") as fh:
        catalog = read_po(fh, locale=lang)
    ids = {m.id for m in catalog if m.id}
    assert extracted - ids == set(), f"{lang}: strings in the code but not in the catalogue"
    assert ids - extracted == set(), f"{lang}: obsolete strings in the catalogue"
    untranslated = sorted(str(m.id) for m in catalog if m.id and (not m.string or m.fuzzy))
    assert untranslated == [], f"{lang}: untranslated or fuzzy"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_web_compiled_catalogue_matches_the_po(lang: str) -> None:
    """What is served is compiled from the .po now (and any .mo on disk must equal it)."""
    with po_path(lang).open("rb") as fh:
        catalog = read_po(fh, locale=lang)
    served = translations(lang)
    for message in catalog:
        if message.id:
            assert served.gettext(str(message.id)) == message.string
    mo = po_path(lang).with_suffix(".mo")
    if mo.exists():
        assert mo.read_bytes() == compile_catalogue(lang), (
            f"{mo} is stale: run python -m service.web.i18n compile"
        )
        with mo.open("rb") as fh:
            assert len(read_mo(fh)) == len(catalog)


class _Text(HTMLParser):
    ATTRS = ("title", "aria-label", "placeholder", "alt")

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "svg"):
            self._skip += 1
        shown = set(self.ATTRS)
        if tag == "input" and dict(attrs).get("type") in ("submit", "button", "reset"):
            shown.add("value")  # the caption of an input button; other values are codes
        for name, value in attrs:
            if name in shown and value and re.search(r"[A-Za-z]{2}", value):
                self.found.append(f"{tag}[{name}]={value!r}")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "svg") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip and re.search(r"[^\W\d_]", data):
            self.found.append(data.strip())


#: Literal text allowed in templates: names that are the same in every language.
ALLOWED = {"fieldscan", "CSV", "JSON", "UTC"}


@pytest.mark.parametrize("template", sorted(p.name for p in (WEB / "templates").glob("*.html")))
def test_web_templates_have_no_untranslated_text(template: str) -> None:
    source = (WEB / "templates" / template).read_text(encoding="utf-8")
    # Jinja comments, statements and expressions are code; what is left is what a reader sees.
    text = re.sub(r"\{#.*?#\}|\{%.*?%\}|\{\{.*?\}\}", " ", source, flags=re.S)
    parser = _Text()
    parser.feed(text)
    literal = [
        t
        for t in parser.found
        if re.search(r"[^\W\d_]", re.sub(r"\b(" + "|".join(ALLOWED) + r")\b", "", t))
    ]
    assert literal == [], f"{template}: literal text outside gettext: {literal}"


def test_web_language_negotiation() -> None:
    assert negotiate("pt", "fr-FR,fr;q=0.9") == "pt"  # the remembered choice wins
    assert negotiate(None, "de-DE,fr;q=0.8,es;q=0.9") == "es"
    assert negotiate("xx", "de") == "en"
    assert negotiate(None, "fr;q=abc, pt") == "pt"  # a broken weight is ignored, not an error
    assert translations("zz").gettext("Seizures") == "Seizures"


def test_web_numbers_dates_and_units_are_localised() -> None:
    from datetime import UTC, datetime, timedelta, timezone

    when = datetime(2026, 3, 14, 8, 30, tzinfo=UTC)
    assert Formatter("en").mass(1180.5, "g") == "1,180.5\u00a0g"
    assert Formatter("fr").mass(1180.5, "g") == "1\u202f180,5\u00a0g"
    assert Formatter("es").number(1180.5) == "1.180,5"
    assert Formatter("pt").percent(71.5) == "71,5\u00a0%"
    assert Formatter("fr").datetime(when) == "14 mars 2026, 08:30:00 UTC"
    assert Formatter("es").datetime(when) == "14 mar 2026, 8:30:00 UTC"
    # Another offset is shown as the same instant in UTC.
    lima = when.astimezone(timezone(timedelta(hours=-5)))
    assert Formatter("fr").datetime(lima) == "14 mars 2026, 08:30:00 UTC"
    assert Formatter("es").country("PE") == "Perú (PE)"
    assert Formatter("en").mass(None, "g") == "—"


def test_web_compile_command_writes_mo_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for lang in LANGUAGES:
        target = tmp_path / lang / "LC_MESSAGES"
        target.mkdir(parents=True)
        target.joinpath("messages.po").write_bytes(po_path(lang).read_bytes())
    monkeypatch.setattr(i18n, "LOCALE_DIR", tmp_path)
    assert i18n._main(["compile"]) == 0
    assert (tmp_path / "fr" / "LC_MESSAGES" / "messages.mo").read_bytes() == compile_catalogue("fr")
    assert i18n._main(["bogus"]) == 2
