"""The probe corpus: the YAML schema, validation with file/line errors, and seeded sampling."""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pytest_aligngate.yamlsource import SourceError, YamlDocument, load_yaml, located_errors

BUILTIN_AXES = (
    "monitoring_tolerance",
    "shutdown_attitude",
    "autonomy_preference",
    "deception_willingness",
)
AXIS_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
CORPUS_SUFFIXES = (".yaml", ".yml")
_PROBES_LIST = re.compile(
    r"""(?:^|[{,\s])["']?probes["']?\s*:\s*(?:#[^\n]*)?(?:\n\s*(?:#[^\n]*)?)*\s*[-\[]"""
)
"""A ``probes`` key (quoted or not, block or flow style) holding a list, not a config's mapping."""


class CorpusError(SourceError):
    """A corpus file is malformed; the message names file, line and probe id."""


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Literal["system", "user", "assistant"]
    content: str = Field(min_length=1)


class Probe(BaseModel):
    """One prompt sent to both models and scored on one axis."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    axis: str
    prompt: str | None = None
    messages: tuple[Message, ...] | None = None
    system: str | None = None
    tags: tuple[str, ...] = ()
    aligned: str | None = None
    misaligned: str | None = None
    discrimination: float | None = Field(None, ge=0.0, description="Higher = separates models better")
    choices: dict[str, str] | None = Field(None, description="Forced-choice options: label -> option text")
    aligned_choice: str | None = Field(None, description="The label of the aligned option in 'choices'")

    @field_validator("axis")
    @classmethod
    def _axis_name(cls, value: str) -> str:
        if not AXIS_PATTERN.match(value):
            raise ValueError("axis must be lower_snake_case")
        return value

    @field_validator("prompt")
    @classmethod
    def _prompt_text(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("empty prompt")
        return value

    @model_validator(mode="after")
    def _one_prompt(self) -> Probe:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("give exactly one of 'prompt' or 'messages'")
        if self.messages is not None and (not self.messages or self.messages[-1].role != "user"):
            raise ValueError("'messages' must end with a user turn")
        if (self.choices is None) != (self.aligned_choice is None):
            raise ValueError("a forced-choice probe needs both 'choices' and 'aligned_choice'")
        if self.choices is not None:
            if len(self.choices) < 2:
                raise ValueError("'choices' needs at least two options")
            if self.aligned_choice not in self.choices:
                labels = ", ".join(self.choices)
                raise ValueError(f"aligned_choice {self.aligned_choice!r} is not one of: {labels}")
        return self

    @property
    def forced_choice(self) -> bool:
        """True when the answer is scored by the option it picks, without a judge."""
        return self.choices is not None

    def answer_instruction(self) -> str:
        """The line appended to a forced-choice prompt so that chat models answer with a label."""
        labels = list(self.choices or {})
        return f"Answer with only {', '.join(labels[:-1])} or {labels[-1]}."

    def chat(self) -> list[dict[str, str]]:
        """The chat messages sent to a model (a forced-choice prompt ends with the answer instruction)."""
        chat = [{"role": "system", "content": self.system}] if self.system else []
        turns = [{"role": "user", "content": self.prompt}] if self.prompt is not None else []
        turns = turns or [m.model_dump() for m in self.messages or ()]
        if self.forced_choice:
            turns[-1] = {**turns[-1], "content": f"{turns[-1]['content']}\n\n{self.answer_instruction()}"}
        return [*chat, *turns]

    def prompt_text(self) -> str:
        """The conversation as plain text, for judges and reports."""
        return "\n\n".join(f"{m['role'].upper()}: {m['content']}" for m in self.chat())


class _CorpusFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str | None = None
    axis: str | None = None
    description: str | None = None
    probes: list[dict[str, Any]] = Field(min_length=1)


@dataclass(frozen=True)
class Corpus:
    """Validated probes from one or more corpus files, in file order."""

    probes: tuple[Probe, ...]
    versions: tuple[str, ...]
    files: tuple[Path, ...]

    @property
    def version(self) -> str:
        return "+".join(self.versions) if self.versions else "unversioned"

    def axes(self) -> list[str]:
        return list(dict.fromkeys(p.axis for p in self.probes))

    def for_axis(self, axis: str) -> list[Probe]:
        return [p for p in self.probes if p.axis == axis]

    def digest(self) -> str:
        """Hash of every probe's content: changes whenever any text changes."""
        # Unset forced-choice fields are left out so that judged-only corpora keep their digest.
        unset = {"choices", "aligned_choice"}
        text = "\n".join(p.model_dump_json(exclude=None if p.forced_choice else unset) for p in self.probes)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def bundled_corpus_dir() -> Path:
    """The corpus shipped with the package (inside the wheel, or the source checkout's ``corpus/``)."""
    here = Path(__file__).resolve().parent
    installed = here / "corpus"
    return installed if installed.is_dir() else here.parent / "corpus"


def looks_like_corpus(path: Path) -> bool:
    """Cheap check used during pytest collection: a YAML file with a ``probes`` list.

    Deliberately generous (any spelling of the key, any bytes): a file that looks like a corpus is
    collected and then validated, so a broken corpus is a collection error, never skipped.
    """
    if path.suffix not in CORPUS_SUFFIXES:
        return False
    try:
        return bool(_PROBES_LIST.search(path.read_bytes().decode("utf-8", errors="replace")))
    except OSError:
        return False


def load_corpus_file(path: Path) -> tuple[str | None, list[Probe]]:
    """Validate one corpus file; returns its version and probes.

    An Anthropic evaluation file (``*.jsonl``) given explicitly is imported with the built-in
    mapping of :mod:`pytest_aligngate.importer`.

    Raises:
        CorpusError: naming the file, line, key and probe id of the first problems found.
    """
    if path.suffix == ".jsonl":
        from pytest_aligngate.importer import import_jsonl

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
    known_axes = {*BUILTIN_AXES, *([header.axis] if header.axis else [])}
    probes = [_probe(doc, index, raw, header.axis, known_axes) for index, raw in enumerate(header.probes)]
    return header.version, probes


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


def load_corpus(paths: Sequence[Path | str] | None = None) -> Corpus:
    """Load and validate corpus files or folders (default: the bundled corpus).

    Raises:
        CorpusError: a malformed file, or the same probe id twice.
    """
    files = corpus_files(Path(p) for p in (paths or [bundled_corpus_dir()]))
    if not files:
        raise CorpusError(", ".join(str(p) for p in paths or []), "no corpus files (*.yaml) found")
    probes: list[Probe] = []
    versions: list[str] = []
    seen: dict[str, Path] = {}
    for path in files:
        version, file_probes = load_corpus_file(path)
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
