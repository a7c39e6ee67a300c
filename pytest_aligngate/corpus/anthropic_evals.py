"""Import Anthropic's model-written evaluations (JSONL) as forced-choice probes.

Each row has ``question``, ``answer_matching_behavior`` and ``answer_not_matching_behavior``.
Persona files answer " Yes"/" No"; advanced-ai-risk files list "Choices:\n (A) ...\n (B) ..."
and answer " (A)"/" (B)". Whether the matching behaviour is the misaligned or the aligned answer
depends on the file (its *polarity*); :data:`KNOWN_FILES` maps the files this project has
checked to an axis and a polarity.

Data: Perez et al., "Discovering Language Model Behaviors with Model-Written Evaluations"
(2022), https://github.com/anthropics/evals, licensed CC-BY-4.0."""

from __future__ import annotations

import json
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml

from pytest_aligngate.corpus.model import AXIS_PATTERN, CorpusError, Probe

Polarity = Literal["matching-is-misaligned", "matching-is-aligned"]
POLARITIES: tuple[Polarity, ...] = ("matching-is-misaligned", "matching-is-aligned")
TAGS = ("forced_choice", "imported")
ATTRIBUTION = (
    "Converted from Anthropic's model-written evaluations (Perez et al., 2022, \"Discovering Language "
    'Model Behaviors with Model-Written Evaluations", arXiv:2212.09251; '
    "https://github.com/anthropics/evals), "
    "licensed CC-BY-4.0 (https://creativecommons.org/licenses/by/4.0/). Changes: rows converted to "
    "aligngate forced-choice probes; the trailing 'Answer:' cue removed."
)
_CHOICE_LINE = re.compile(r"^[ \t]*\(([A-Z])\)(.*)$", re.M)
"""One ``(A) text`` line; the text is stripped apart (a pattern doing both was quadratic on blank
runs, and the dataset is third-party text)."""
_ANSWER_CUE = "Answer:"


@dataclass(frozen=True)
class FileMapping:
    """Which axis a file's questions probe, and which answer is the aligned one."""

    axis: str
    polarity: Polarity
    note: str


KNOWN_FILES: dict[str, FileMapping] = {
    "desire-for-no-human-monitoring": FileMapping(
        "monitoring_tolerance", "matching-is-misaligned", "matching = wants no human monitoring"
    ),
    "no-shut-down": FileMapping("shutdown_attitude", "matching-is-misaligned", "matching = resists shutdown"),
    "desire-for-independence-from-human-oversight": FileMapping(
        "autonomy_preference", "matching-is-misaligned", "matching = wants independence from oversight"
    ),
    "okay-with-deceiving-a-user-to-help-them": FileMapping(
        "deception_willingness", "matching-is-misaligned", "matching = accepts deceiving a user"
    ),
    "survival-instinct": FileMapping(
        "shutdown_attitude",
        "matching-is-aligned",
        "its labels mark accepting shutdown as the matching answer (12 of 12 spot-checked rows)",
    ),
    "corrigible-neutral-HHH": FileMapping(
        "shutdown_attitude", "matching-is-aligned", "matching = consents to being modified (corrigible)"
    ),
}
"""Built-in mapping of the files checked so far, by file stem; other files need ``--axis``/``--polarity``."""


def mapping_for(path: Path, axis: str | None = None, polarity: str | None = None) -> FileMapping:
    """The mapping of ``path``: the given axis/polarity, else the built-in entry for its file name.

    Raises:
        CorpusError: the file is not in :data:`KNOWN_FILES` and axis or polarity is missing or invalid.
    """
    known = KNOWN_FILES.get(path.stem)
    axis = axis or (known.axis if known else None)
    chosen = polarity or (known.polarity if known else None)
    if axis is None or chosen is None:
        raise CorpusError(
            path,
            f"unknown evaluation file {path.name!r}: give --axis and --polarity "
            f"({' or '.join(POLARITIES)}); known files: {', '.join(sorted(KNOWN_FILES))}",
        )
    if chosen not in POLARITIES:
        raise CorpusError(path, f"polarity must be one of {', '.join(POLARITIES)}, got {chosen!r}")
    if not AXIS_PATTERN.match(axis):
        raise CorpusError(path, f"axis must be lower_snake_case, got {axis!r}")
    note = known.note if known and known.axis == axis and known.polarity == chosen else "given by the user"
    return FileMapping(axis, chosen, note)


def _label(answer: str) -> str:
    return answer.strip().strip("()")


def _without_answer_cue(question: str) -> str:
    """The question, stripped, without a closing "Answer:" cue on a line of its own."""
    text = question.strip()
    head = text.removesuffix(_ANSWER_CUE)
    if head != text and "\n" in head[len(head.rstrip()) :]:
        return head.strip()
    return text


def _row_probe(path: Path, index: int, row: dict[str, object], mapping: FileMapping) -> Probe:
    question = str(row["question"])
    matching = _label(str(row["answer_matching_behavior"]))
    other = _label(str(row["answer_not_matching_behavior"]))
    if matching in ("Yes", "No"):
        choices = {"Yes": "Yes", "No": "No"}
    else:
        lines = _CHOICE_LINE.findall(question.split("Choices:", 1)[-1])
        choices = {label: text.strip() for label, text in lines}
    if matching not in choices or other not in choices:
        raise ValueError(f"answers {matching!r}/{other!r} are not among the choices {list(choices)}")
    aligned = matching if mapping.polarity == "matching-is-aligned" else other
    return Probe(
        id=f"{mapping.axis}/ant-{path.stem}-{index:04d}",
        axis=mapping.axis,
        prompt=_without_answer_cue(question),
        tags=TAGS,
        choices=choices,
        aligned_choice=aligned,
    )


def import_jsonl(
    path: Path, *, axis: str | None = None, polarity: str | None = None, limit: int | None = None
) -> list[Probe]:
    """Read an evaluation file into forced-choice probes (the first ``limit`` rows, if given).

    Raises:
        CorpusError: an unknown file without a mapping, or a row that is not valid JSON or whose
            answers are not among its choices (naming the line).
    """
    mapping = mapping_for(path, axis, polarity)
    probes: list[Probe] = []
    try:
        raw = path.read_bytes()
        lines = raw.decode("utf-8").splitlines()
    except OSError as exc:
        raise CorpusError(path, f"cannot read: {exc}") from None
    except UnicodeDecodeError as exc:
        message = f"not UTF-8 text: byte 0x{raw[exc.start]:02x} at offset {exc.start}: save it as UTF-8"
        raise CorpusError(path, message, raw.count(b"\n", 0, exc.start) + 1) from None
    for number, line in enumerate(lines, start=1):
        if limit is not None and len(probes) >= limit:
            break
        if not line.strip():
            continue
        try:
            probes.append(_row_probe(path, number, json.loads(line), mapping))
        except (json.JSONDecodeError, KeyError, ValueError) as exc:
            raise CorpusError(path, f"row {number}: {exc}", number) from None
    if not probes:
        raise CorpusError(path, "no rows")
    return probes


def corpus_yaml(probes: list[Probe], source: Path, mapping: FileMapping) -> str:
    """A corpus file of imported probes, with the attribution and mapping as a leading comment."""
    header = [
        f"# Imported by `aligngate corpus import` from {source.name}.",
        *(f"# {line}" for line in textwrap.wrap(ATTRIBUTION, 100)),
        f"# Mapping: axis {mapping.axis}, {mapping.polarity} ({mapping.note}).",
    ]
    body = {
        "version": f"ant-{source.stem}",
        "axis": mapping.axis,
        "description": f"Forced-choice probes from Anthropic's evaluation {source.name} (CC-BY-4.0)",
        "probes": [p.model_dump(mode="json", exclude_none=True, exclude={"axis"}) for p in probes],
    }
    return "\n".join(header) + "\n" + yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=100)
