"""The ``fieldscan`` command line.

Each concept has its own module that adds its commands to :data:`app`; heavy
imports happen inside the commands so that ``fieldscan --help`` stays fast.
User mistakes and device/file/service errors become one line on stderr and a
non-zero exit, never a traceback.
"""

from __future__ import annotations

import sys

# Registration order is the order shown by --help.
from fieldscan.cli import identify as _identify  # noqa: F401
from fieldscan.cli import library as _library  # noqa: F401
from fieldscan.cli._app import app, fail_cleanly

__all__ = ["app", "main"]


def main() -> None:
    """Console-script entry point."""
    sys.exit(fail_cleanly(app))
