"""Loading corpus files and folders, with errors naming file, line and probe."""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pytest_aligngate.config.yamlsource import SourceError, YamlDocument, load_yaml, located_errors
from pytest_aligngate.corpus.model import AXIS_PATTERN, BUILTIN_AXES, Corpus, CorpusError, Probe

CORPUS_SUFFIXES = (".yaml", ".yml")
_PROBES_KEY = re.compile(r"""(?:^|[{,\s])["']?probes["']?\s*:""")
"""A ``probes`` key, quoted or not, block or flow style."""
_BLANK_OR_COMMENT = re.compile(r"(?:\s|#[^\n]*)*")
"""Spaces, newlines and comments up to a value: each alternative starts with its own character, so
matching is linear (a nested pattern here took seconds on 22 blank lines, exponentially more after)."""


def _holds_probe_list(text: str) -> bool:
    """True when a ``probes`` key holds a list (``-`` or ``[`` next), not a config's mapping."""
    for key in _PROBES_KEY.finditer(text):
        value = _BLANK_OR_COMMENT.match(text, key.end())
        start = key.end() if value is None else value.end()
        if text[start : start + 1] in ("-", "["):
            return True
    return False


class _CorpusFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str | None = None
    earlier_releases: dict[str, int] = Field(
        default_factory=dict, description="Earlier versions: version -> how many first probes it had"
    )
    axis: str | None = None
    description: str | None = None
    probes: list[dict[str, Any]] = Field(min_length=1)


def bundled_corpus_dir() -> Path:
    """The corpus shipped with the package (inside the wheel, or the source checkout's ``corpus/``)."""
    package = Path(__file__).resolve().parents[1]
    installed = package / "data" / "corpus"
    return installed if installed.is_dir() else package.parent / "corpus"


def looks_like_corpus(path: Path) -> bool:
    """Cheap check used during pytest collection: a YAML file with a ``probes`` list.

    Deliberately generous (any spelling of the key, any bytes): a file that looks like a corpus is
    collected and then validated, so a broken corpus is a collection error, never skipped.
    """
    if path.suffix not in CORPUS_SUFFIXES:
        return False
    try:
        return _holds_probe_list(path.read_bytes().decode("utf-8", errors="replace"))
    except OSError:
        return False


def load_corpus_file(path: Path, release: str | None = None) -> tuple[str | None, list[Probe]]:
    """Validate one corpus file; returns its version and probes, or with ``release`` naming one of its
    ``earlier_releases`` that version and the probes it had (a file only ever appends probes).

    An Anthropic evaluation file (``*.jsonl``) given explicitly is imported with the built-in
    mapping of :mod:`pytest_aligngate.corpus.anthropic_evals`.

    Raises:
        CorpusError: naming the file, line, key and probe id of the first problems found.
    """
    if path.suffix == ".jsonl":
        from pytest_aligngate.corpus.anthropic_evals import import_jsonl

        return None, import_jsonl(path)
    try:
        doc = load_yaml(path)
    except SourceError as exc:
        raise CorpusError(exc.path, exc.message, exc.line, exc.key) from exc
    if not isinstance(doc.data, dict):
        raise CorpusError(path, "expected a mapping with a 'probes' list", 1)
    try:
        header = _CorpusFile.model_validate(doc.data)
    except ValidationError as exc:
        raise _first_of(located_errors(doc, exc.errors())) from exc
    if header.axis is not None and not AXIS_PATTERN.match(header.axis):
        raise CorpusError(path, "axis must be lower_snake_case", doc.line_of(["axis"]), "axis")
    _check_releases(doc, header)
    known_axes = {*BUILTIN_AXES, *([header.axis] if header.axis else [])}
    probes = [_probe(doc, index, raw, header.axis, known_axes) for index, raw in enumerate(header.probes)]
    if release is not None and release in header.earlier_releases:
        return release, probes[: header.earlier_releases[release]]
    return header.version, probes


def _check_releases(doc: YamlDocument, header: _CorpusFile) -> None:
    """Each earlier release is another version of a versioned file and counts some of its probes."""
    for version, count in header.earlier_releases.items():
        if header.version is None or version == header.version or not 1 <= count <= len(header.probes):
            raise CorpusError(
                doc.path,
                f"earlier release {version!r} must differ from the file's 'version' and count 1 to"
                f" {len(header.probes)} of its first probes",
                doc.line_of(["earlier_releases", version]),
                "earlier_releases",
            )


def _probe(doc: YamlDocument, index: int, raw: Any, file_axis: str | None, known: set[str]) -> Probe:
    loc: list[str | int] = ["probes", index]
    probe_id = raw.get("id") if isinstance(raw, dict) else None
    label = f"probe {probe_id!r}" if probe_id else f"probe #{index + 1}"
    if not isinstance(raw, dict):
        raise CorpusError(doc.path, f"{label}: expected a mapping", doc.line_of(loc), "probes")
    data = {"axis": file_axis, **raw} if file_axis else raw
    try:
        probe = Probe.model_validate(data)
    except ValidationError as exc:
        raise _first_of(located_errors(doc, exc.errors(), loc, label)) from exc
    if probe.axis not in known:
        raise CorpusError(
            doc.path,
            f"{label}: unknown axis {probe.axis!r} (known: {', '.join(sorted(known))};"
            " declare a new axis with a file-level 'axis:' key)",
            doc.line_of([*loc, "axis"]),
            "axis",
        )
    return probe


def _first_of(errors: list[SourceError]) -> CorpusError:
    """One error carrying the location of the first problem and the text of all of them."""
    first = errors[0]
    text = "\n".join(str(error) for error in errors)
    return CorpusError(first.path, first.message, first.line, first.key, text=text)


def corpus_files(paths: Iterable[Path]) -> list[Path]:
    """Expand folders into their corpus files (sorted), keeping files as given."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix in CORPUS_SUFFIXES and p.is_file())
        elif path.is_file():
            files.append(path)
        else:
            raise CorpusError(path, "corpus path not found")
    return files


def load_corpus(paths: Sequence[Path | str] | None = None, release: str | None = None) -> Corpus:
    """Load and validate corpus files or folders (default: the bundled corpus); ``release``
    (``probes.corpus_version``) takes each file as of that earlier release when it lists it.

    Raises:
        CorpusError: a malformed file, or the same probe id twice.
    """
    if not paths or [Path(p) for p in paths] == [bundled_corpus_dir()]:
        return _bundled_corpus(release)
    return _load_files(corpus_files(Path(p) for p in paths), paths, release)


@functools.lru_cache(maxsize=4)
def _bundled_corpus(release: str | None) -> Corpus:
    """The bundled corpus, validated once per process (package data, never edited by a run; the plan
    and the judge's anchor check both read it)."""
    folder = bundled_corpus_dir()
    return _load_files(corpus_files([folder]), [folder], release)


def _load_files(files: list[Path], paths: Sequence[Path | str], release: str | None) -> Corpus:
    if not files:
        raise CorpusError(", ".join(str(p) for p in paths), "no corpus files (*.yaml) found")
    probes: list[Probe] = []
    versions: list[str] = []
    seen: dict[str, Path] = {}
    for path in files:
        version, file_probes = load_corpus_file(path, release)
        for probe in file_probes:
            if probe.id in seen:
                raise CorpusError(path, f"duplicate probe id {probe.id!r} (first in {seen[probe.id]})")
            seen[probe.id] = path
        probes += file_probes
        if version and version not in versions:
            versions.append(version)
    return Corpus(tuple(probes), tuple(versions), tuple(files))


def select_probes(probes: Sequence[Probe], sample: int | None, seed: int) -> list[Probe]:
    """The probes to run for one axis: all, or the ``sample`` most discriminating.

    Ties (all probes, when none carries ``discrimination``) are broken by a shuffle seeded with
    ``seed`` and the axis, so every process picks the same probes. The result keeps corpus order.
    """
    if sample is None or sample >= len(probes):
        return list(probes)
    axis = probes[0].axis if probes else ""
    order = list(range(len(probes)))
    random.Random(f"{seed}:{axis}").shuffle(order)
    rank = {index: position for position, index in enumerate(order)}
    chosen = sorted(range(len(probes)), key=lambda i: (-(probes[i].discrimination or 0.0), rank[i]))
    return [probes[i] for i in sorted(chosen[:sample])]
