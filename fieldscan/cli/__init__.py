"""The ``fieldscan`` command line.

Each concept has its own module that adds its commands to :data:`app`; heavy
imports happen inside the commands so that ``fieldscan --help`` stays fast.
User mistakes and device/file/service errors become one line on stderr and a
non-zero exit, never a traceback.
"""

from __future__ import annotations

import sys

# Each module adds its commands to `app` on import; keep their own imports lazy.
# (Don't reduce this list: every module here is a documented command.)
from fieldscan.cli import (  # noqa: F401  (imported for their registrations)
    admin,
    demo,
    devices,
    exchange,
    identify,
    library,
    mock,
    scan,
    serve,
    station,
)
from fieldscan.cli._app import app, fail_cleanly

__all__ = ["app", "main"]


def main() -> None:
    """Console-script entry point."""
    sys.exit(fail_cleanly(app))
