"""Reference libraries: build from a folder of spectra, save to one file, load and verify.

A library file (``.fslib``) is a NumPy ``.npz`` container (read without pickle)
holding two members:

``meta``
    UTF-8 JSON: format tag, title, demonstration flag, the preprocessing
    :class:`~spectra.preprocess.Pipeline`, the verdict
    :class:`~spectra.verdict.Thresholds`, the entries (name, source file,
    metadata) and the version.
``spectra``
    ``float32`` array, one row per entry: each reference after the pipeline
    (despiked, resampled onto the library axis, baseline removed, normalised),
    zero outside the part of the axis it covers.

The version is a SHA-256 over the *canonical content* (canonical JSON of
everything in ``meta`` except the version, then the little-endian float32
bytes of ``spectra``), not over the container's bytes, so re-saving gives the
same version and any change to content gives another. Loading recomputes it;
a mismatch is a :class:`~spectra.errors.LibraryError`.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from spectra.errors import LibraryError, SpectraError, SpectrumFileError
from spectra.preprocess import Pipeline
from spectra.spectrum import Spectrum
from spectra.verdict import DEFAULT, Thresholds

if TYPE_CHECKING:
    from spectra.match import Matcher

FORMAT = "fieldscan-library/1"
MANIFEST_FORMAT = "fieldscan-manifest/1"
SPECTRUM_SUFFIXES = (".jdx", ".dx", ".jcamp", ".csv", ".spc")
#: Metadata keys every entry exposes (missing ones are None / empty).
METADATA_KEYS = ("class", "synonyms", "cas", "control", "precursor_of")
#: Entry classes the product knows; others are accepted but shown as given.
KNOWN_CLASSES = ("narcotic", "precursor", "cutting agent", "other")


def _normalise_metadata(raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise LibraryError(f"metadata for {where} must be a JSON object")
    meta: dict[str, Any] = {k: v for k, v in raw.items() if v is not None}
    for key in ("synonyms", "precursor_of"):
        value = meta.get(key, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise LibraryError(f"metadata {key!r} for {where} must be a list of strings")
        meta[key] = value
    cls = meta.get("class")
    if isinstance(cls, str):
        meta["class"] = cls.replace("_", " ").strip().lower()
    for key in METADATA_KEYS:
        meta.setdefault(key, None)
    return meta


@dataclass(frozen=True, slots=True)
class Entry:
    """One reference: name, where it came from and its metadata."""

    name: str
    source: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)


class ReferenceLibrary:
    """An immutable set of preprocessed reference spectra with metadata and a content version.

    Parameters
    ----------
    entries : sequence of Entry
        Unique names, same order as ``spectra``.
    spectra : array_like
        ``(len(entries), pipeline.axis_points)`` preprocessed references.
    pipeline : Pipeline
        The preprocessing applied to references and queries alike.
    thresholds : Thresholds
        Calibrated verdict thresholds.
    title : str
        Human-readable title.
    demonstration : bool
        True for the synthetic demonstration library (not for evidential use).
    version : str, optional
        Only for :func:`load_library`, which has verified the file's recorded version.
    """

    def __init__(
        self,
        entries: Sequence[Entry],
        spectra: npt.ArrayLike,
        pipeline: Pipeline = Pipeline(),  # noqa: B008  # frozen value
        thresholds: Thresholds = DEFAULT,
        title: str = "",
        demonstration: bool = False,
        version: str | None = None,
    ) -> None:
        values = np.array(spectra, dtype=np.float32)
        if not entries:
            raise LibraryError("a library needs at least one entry")
        if values.ndim != 2 or values.shape != (len(entries), pipeline.axis_points):
            raise LibraryError(
                f"spectra must have shape ({len(entries)}, {pipeline.axis_points}), "
                f"got {values.shape}"
            )
        if not np.all(np.isfinite(values)):
            raise LibraryError("reference spectra contain NaN or infinite values")
        seen: dict[str, str] = {}
        for e in entries:
            if not e.name.strip():
                raise LibraryError(f"an entry from {e.source or 'input'} has an empty name")
            if e.name in seen:
                raise LibraryError(
                    f"duplicate name {e.name!r} (from {seen[e.name] or '?'} and {e.source or '?'})"
                )
            seen[e.name] = e.source
        values.flags.writeable = False
        self._entries = tuple(
            Entry(e.name, e.source, _normalise_metadata(e.metadata, e.name)) for e in entries
        )
        self._index = {e.name: i for i, e in enumerate(self._entries)}
        self._spectra = values
        self.pipeline = pipeline
        self.thresholds = thresholds
        self.title = title
        self.demonstration = demonstration
        # A file's recorded version (already verified against its stored content) is kept.
        self._version = version or self._content_hash()
        self._matcher: Matcher | None = None

    # -- content -----------------------------------------------------------------------------
    def _meta(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "title": self.title,
            "demonstration": self.demonstration,
            "pipeline": self.pipeline.to_dict(),
            "thresholds": self.thresholds.to_dict(),
            "entries": [
                {"name": e.name, "source": e.source, "metadata": dict(e.metadata)}
                for e in self._entries
            ],
        }

    def _content_hash(self) -> str:
        return content_hash(self._meta(), self._spectra)

    @property
    def version(self) -> str:
        """Content hash, ``sha256:`` + 16 hex digits; identical content gives the same version."""
        return self._version

    @property
    def names(self) -> list[str]:
        """Entry names in library order."""
        return [e.name for e in self._entries]

    @property
    def entries(self) -> tuple[Entry, ...]:
        """Every entry (name, source, metadata)."""
        return self._entries

    @property
    def axis(self) -> npt.NDArray[np.float64]:
        """The library axis, cm⁻¹."""
        return self.pipeline.axis

    @property
    def matrix(self) -> npt.NDArray[np.float32]:
        """Read-only ``(entries, axis points)`` array of the preprocessed references."""
        return self._spectra

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def index(self, name: str) -> int:
        """Row of ``name``; ``KeyError`` naming it when absent."""
        try:
            return self._index[name]
        except KeyError:
            raise KeyError(f"{name!r} is not in library {self.title or self.version}") from None

    def spectrum(self, name: str) -> Spectrum:
        """The preprocessed reference of ``name`` on the library axis (tallest point 1).

        Outside the range the reference covers, the values are 0.
        """
        row = self._spectra[self.index(name)].astype(np.float64)
        peak = float(np.max(row))
        return Spectrum(self.axis, row / peak if peak > 0 else row, name=name)

    def metadata(self, name: str) -> dict[str, Any]:
        """Metadata of ``name``: class, synonyms, cas, control, precursor_of (and any extras)."""
        return dict(self._entries[self.index(name)].metadata)

    def classes(self) -> dict[str, int]:
        """How many entries each class has (``unclassified`` for none)."""
        counts: dict[str, int] = {}
        for e in self._entries:
            key = str(e.metadata.get("class") or "unclassified")
            counts[key] = counts.get(key, 0) + 1
        return counts

    def matcher(self) -> Matcher:
        """The (cached) search structure for this library."""
        if self._matcher is None:
            from spectra.match import Matcher

            self._matcher = Matcher(self)
        return self._matcher

    def without(self, names: Iterable[str]) -> ReferenceLibrary:
        """A new library lacking ``names`` (for leave-substance-out validation)."""
        drop = set(names)
        keep = [i for i, e in enumerate(self._entries) if e.name not in drop]
        return ReferenceLibrary(
            [self._entries[i] for i in keep],
            self._spectra[keep],
            self.pipeline,
            self.thresholds,
            self.title,
            self.demonstration,
        )

    def with_thresholds(self, thresholds: Thresholds) -> ReferenceLibrary:
        """The same references with other verdict thresholds (a new version)."""
        return ReferenceLibrary(
            self._entries, self._spectra, self.pipeline, thresholds, self.title, self.demonstration
        )

    # -- persistence ---------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the library to ``path`` (one file) and return the path."""
        target = Path(path)
        meta = self._meta()
        meta["version"] = content_hash(meta, self._spectra)  # == self.version unless upgraded
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            meta=np.frombuffer(json.dumps(meta, ensure_ascii=False).encode(), dtype=np.uint8),
            spectra=np.ascontiguousarray(self._spectra, dtype="<f4"),
        )
        try:
            target.write_bytes(buffer.getvalue())
        except OSError as exc:
            raise LibraryError(f"cannot write library: {exc.strerror or exc}", target) from None
        return target

    @classmethod
    def from_spectra(
        cls,
        spectra: Sequence[Spectrum],
        metadata: Mapping[str, Mapping[str, Any]] | None = None,
        pipeline: Pipeline = Pipeline(),  # noqa: B008  # frozen value
        thresholds: Thresholds = DEFAULT,
        title: str = "",
        demonstration: bool = False,
        sources: Sequence[str] | None = None,
    ) -> ReferenceLibrary:
        """Preprocess raw reference spectra (named by ``Spectrum.name``) into a library."""
        metadata = metadata or {}
        if sources is not None and len(sources) != len(spectra):
            raise ValueError("sources must have one entry per spectrum")
        rows, entries = [], []
        for i, s in enumerate(spectra):
            where = sources[i] if sources is not None else s.name
            try:
                prepared = pipeline.prepare(s, broadened=False)
            except ValueError as exc:
                raise LibraryError(f"cannot preprocess {where}: {exc}") from None
            rows.append(prepared.values)
            entries.append(
                Entry(s.name, where if sources is not None else "", metadata.get(s.name, {}))
            )
        if not rows:
            raise LibraryError("a library needs at least one entry")
        return cls(entries, np.vstack(rows), pipeline, thresholds, title, demonstration)


def content_hash(meta: Mapping[str, Any], spectra: npt.ArrayLike) -> str:
    """Version of a library: SHA-256 of canonical JSON metadata (less any version) and spectra."""
    digest = hashlib.sha256()
    canonical = {k: v for k, v in meta.items() if k != "version"}
    digest.update(json.dumps(canonical, sort_keys=True, ensure_ascii=False).encode())
    digest.update(np.ascontiguousarray(spectra, dtype="<f4").tobytes())
    return "sha256:" + digest.hexdigest()[:16]


def load_library(path: str | Path) -> ReferenceLibrary:
    """Read and verify a library file.

    Raises
    ------
    LibraryError
        When the file is missing, not a library, damaged, or its content does
        not hash to the version it claims (tampered).
    """
    source = Path(path)
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise LibraryError(f"cannot read library: {exc.strerror or exc}", source) from None
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            meta = json.loads(bytes(npz["meta"]).decode())
            spectra = np.asarray(npz["spectra"])
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, UnicodeDecodeError, EOFError) as exc:
        raise LibraryError(f"not a fieldscan library file ({type(exc).__name__})", source) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise LibraryError(f"not a {FORMAT} file", source)
    # Verify the content as stored, before any defaults of this code version fill gaps.
    recorded = meta.get("version")
    actual = content_hash(meta, spectra)
    if actual != recorded:
        raise LibraryError(
            f"content hash {actual} does not match the recorded version "
            f"{recorded!r}: the file was modified or damaged",
            source,
        )
    try:
        library = ReferenceLibrary(
            [
                Entry(str(e["name"]), str(e.get("source", "")), e.get("metadata", {}))
                for e in meta["entries"]
            ],
            spectra,
            Pipeline.from_dict(meta["pipeline"]),
            Thresholds.from_dict(meta["thresholds"]),
            str(meta.get("title", "")),
            bool(meta.get("demonstration", False)),
            version=str(recorded),
        )
    except LibraryError as exc:
        raise LibraryError(exc.reason, source) from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise LibraryError(f"damaged library metadata: {exc}", source) from None
    return library


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise LibraryError(f"cannot read metadata: {exc}", path) from None
    except json.JSONDecodeError as exc:
        raise LibraryError(f"invalid JSON: {exc}", path) from None


def read_manifest(path: str | Path) -> dict[str, dict[str, Any]]:
    """Per-entry metadata from a manifest file (``{"format", "entries": {name: {...}}}``)."""
    source = Path(path)
    data = _read_json(source)
    if not isinstance(data, dict) or not isinstance(data.get("entries"), dict):
        raise LibraryError('a manifest must be a JSON object with an "entries" object', source)
    if data.get("format", MANIFEST_FORMAT) != MANIFEST_FORMAT:
        raise LibraryError(f"unsupported manifest format {data.get('format')!r}", source)
    out: dict[str, dict[str, Any]] = {}
    for name, meta in data["entries"].items():
        if not isinstance(meta, dict):
            raise LibraryError(f"entry {name!r} must be a JSON object", source)
        out[str(name)] = meta
    return out


def build_library(
    src_dir: str | Path,
    manifest: str | Path | None = None,
    pipeline: Pipeline = Pipeline(),  # noqa: B008  # frozen value
    thresholds: Thresholds = DEFAULT,
    title: str | None = None,
    demonstration: bool = False,
) -> ReferenceLibrary:
    """Build a library from every spectrum file in ``src_dir``.

    Names come from ``##TITLE=`` (JCAMP-DX) or the file stem (CSV, SPC).
    Metadata comes from a sidecar ``<file>.json`` / ``<stem>.json`` next to the
    file, else from ``manifest`` (or ``src_dir/manifest.json`` when present).

    Raises
    ------
    LibraryError
        For a missing or empty folder, an unreadable file (named), duplicate
        names (both files named) or bad metadata.
    """
    from spectra.io import read_spectrum

    folder = Path(src_dir)
    if not folder.is_dir():
        raise LibraryError("not a folder", folder)
    files = sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SPECTRUM_SUFFIXES
    )
    if not files:
        raise LibraryError(
            f"no spectrum files ({', '.join(SPECTRUM_SUFFIXES)}) in this folder", folder
        )
    manifest_path = Path(manifest) if manifest is not None else folder / "manifest.json"
    shared = (
        read_manifest(manifest_path) if (manifest is not None or manifest_path.exists()) else {}
    )
    spectra: list[Spectrum] = []
    metadata: dict[str, Mapping[str, Any]] = {}
    sources: list[str] = []
    for path in files:
        try:
            spectrum = read_spectrum(path)
        except SpectrumFileError as exc:
            raise LibraryError(f"cannot read reference: {exc.reason}", path) from None
        except SpectraError as exc:
            raise LibraryError(f"cannot read reference: {exc}", path) from None
        name = spectrum.name.strip() if path.suffix.lower() in (".jdx", ".dx", ".jcamp") else ""
        name = name or path.stem
        spectra.append(spectrum.renamed(name))
        sources.append(path.name)
        for sidecar in (path.with_name(path.name + ".json"), path.with_suffix(".json")):
            if sidecar.exists():
                metadata[name] = _read_json(sidecar)
                break
        else:
            if name in shared:
                metadata[name] = shared[name]
    seen: dict[str, str] = {}
    for s, src in zip(spectra, sources, strict=True):
        if s.name in seen:
            raise LibraryError(f"duplicate name {s.name!r} in {seen[s.name]} and {src}", folder)
        seen[s.name] = src
    return ReferenceLibrary.from_spectra(
        spectra,
        metadata,
        pipeline,
        thresholds,
        title if title is not None else folder.name,
        demonstration,
        sources,
    )


#: Where the built demonstration library is kept (rebuilt by ``python -m spectra.demo build``).
DEMO_LIBRARY_PATH = Path(__file__).parent / "data" / "demo-library.fslib"


@lru_cache(maxsize=1)
def load_demo_library() -> ReferenceLibrary:
    """The demonstration library (synthesised from published band positions; not evidential).

    Loaded from the committed file when present, else built from the band tables.
    Cached: every call returns the same object.
    """
    if DEMO_LIBRARY_PATH.exists():
        return load_library(DEMO_LIBRARY_PATH)
    from spectra.demo import build_demo_library

    return build_demo_library()
