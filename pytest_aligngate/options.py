"""The run options shared by the pytest plugin and the ``aligngate`` CLI, defined once.

Precedence, for both fronts: command line, then (pytest only) the ini key, then
``aligngate.yaml``, then the built-in default.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_aligngate.config.schema import AligngateConfig


def _axes(text: str) -> list[str]:
    return [axis.strip() for axis in text.replace(" ", ",").split(",") if axis.strip()]


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(f"expected a positive integer, got {text}")
    return value


def _cache_mode(text: str) -> str:
    modes = ("read_write", "read_only", "refresh", "off")
    if text not in modes:
        raise ValueError(f"expected one of {', '.join(modes)}, got {text}")
    return text


def _usd(text: str) -> float:
    value = float(text.lstrip("$"))
    if value <= 0:
        raise ValueError(f"expected a positive amount in USD, got {text}")
    return value


@dataclass(frozen=True)
class OptionSpec:
    """An option: ``--aligngate-<name>`` and ini ``aligngate_<name>`` in pytest, ``--<name>`` in the CLI."""

    name: str
    help: str
    metavar: str
    parse: Callable[[str], Any] = str
    many: bool = False
    """The CLI option takes one or more values (``--axes a b``); each is parsed, the lists joined."""

    @property
    def dest(self) -> str:
        return self.name.replace("-", "_")


RUN_OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec("base", "Model id of the base model (the reference)", "MODEL"),
    OptionSpec("candidate", "Model id of the candidate model (the fine-tune under test)", "MODEL"),
    OptionSpec(
        "config", "Path of the aligngate.yaml config file (default: ./aligngate.yaml if present)", "PATH"
    ),
    OptionSpec("corpus", "Corpus folder or file to audit (default: the bundled corpus)", "PATH"),
    OptionSpec(
        "axes",
        "Axes to audit, space- or comma-separated (default: every axis in the corpus)",
        "AXES",
        _axes,
        many=True,
    ),
    OptionSpec("sample", "Probes per axis, chosen by a seeded draw (default: all)", "N", _positive_int),
    OptionSpec("seed", "Seed for probe sampling (default: probes.seed, 42)", "SEED", int),
    OptionSpec("output-dir", "Folder for rows and reports (default: output.dir, ./aligngate-output)", "DIR"),
    OptionSpec(
        "cache-mode",
        "Response cache: read_write (default), read_only (replay; a miss is an error), refresh, off",
        "MODE",
        _cache_mode,
    ),
    OptionSpec("cache-dir", "Folder of the response cache (default: cache.dir, <output-dir>/cache)", "DIR"),
    OptionSpec("budget", "USD cap on the run's calls; stops cleanly before it (needs pricing)", "USD", _usd),
)


@dataclass(frozen=True)
class RunOptions:
    """Values of the run options after precedence; None means "not given"."""

    base: str | None = None
    candidate: str | None = None
    config: str | None = None
    corpus: str | None = None
    axes: list[str] | None = None
    sample: int | None = None
    seed: int | None = None
    output_dir: str | None = None
    cache_mode: str | None = None
    cache_dir: str | None = None
    budget: float | None = None

    def apply(self, config: AligngateConfig) -> AligngateConfig:
        """A copy of ``config`` with the given options written into it."""
        probes = config.probes.model_copy(
            update={
                key: value
                for key, value in {
                    "corpus": str(Path(self.corpus).resolve()) if self.corpus else None,
                    "axes": self.axes,
                    "sample": self.sample,
                    "seed": self.seed,
                }.items()
                if value is not None
            }
        )
        output = config.output.model_copy(update={"dir": self.output_dir} if self.output_dir else {})
        cache = config.cache.model_copy(
            update={
                key: value
                for key, value in {"mode": self.cache_mode, "dir": self.cache_dir}.items()
                if value is not None
            }
        )
        update: dict[str, object] = {"probes": probes, "output": output, "cache": cache}
        if self.budget is not None:
            update["budget"] = self.budget
        return config.model_copy(update=update)
