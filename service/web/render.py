"""Jinja2 environments, one per language, with gettext and Babel formatting installed."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from service.web import labels
from service.web.i18n import LANG_COOKIE, LANGUAGES, Formatter, negotiate, translations

TEMPLATES = Path(__file__).parent / "templates"
LANGUAGE_NAMES = {"en": "English", "es": "Español", "fr": "Français", "pt": "Português"}


@lru_cache(maxsize=len(LANGUAGES))
def environment(lang: str) -> Environment:
    """The template environment of ``lang`` (translations bound once, shared by requests)."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    tr = translations(lang)
    env.install_gettext_callables(gettext=tr.gettext, ngettext=tr.ngettext, newstyle=True)  # type: ignore[attr-defined]
    fmt = Formatter(lang)
    env.globals.update(
        fmt=fmt,
        lang=lang,
        languages=LANGUAGES,
        language_names=LANGUAGE_NAMES,
        labels=labels,
        # French sets a narrow no-break space before a colon; the catalogues do it for their
        # own strings, this does it where a template joins a label and a value.
        colon="\u202f:" if lang == "fr" else ":",
    )
    env.filters["label"] = lambda code, table: (
        tr.gettext(getattr(labels, table).get(code, code)) if code else "—"
    )
    return env


def language_of(request: Request) -> str:
    return negotiate(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    lang = language_of(request)
    html = environment(lang).get_template(name).render(request=request, **context)
    return HTMLResponse(
        html, status_code=status_code, headers={**SECURITY_HEADERS, "Content-Language": lang}
    )


#: Pages run only our own script and style, cannot be framed and are never cached.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
