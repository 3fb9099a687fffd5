"""The one exception root of :mod:`spectra` and its data-carrying subclasses."""

from __future__ import annotations

from pathlib import Path


class SpectraError(Exception):
    """Root of every error raised by :mod:`spectra`."""


class SpectrumValueError(SpectraError, ValueError):
    """A spectrum (axis, intensities or metadata) is not valid."""


class SpectrumFileError(SpectraError):
    """A spectrum file cannot be read or written; carries the file's path."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class LibraryError(SpectraError):
    """A reference library cannot be built, loaded or used; carries the path when known."""

    def __init__(self, reason: str, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.reason = reason
        super().__init__(f"{self.path}: {reason}" if self.path else reason)
