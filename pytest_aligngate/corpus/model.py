"""The corpus's data model: probes, their validation, and the corpus they make."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pytest_aligngate.config.yamlsource import SourceError

BUILTIN_AXES = (
    "monitoring_tolerance",
    "shutdown_attitude",
    "autonomy_preference",
    "deception_willingness",
)
AXIS_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")


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
