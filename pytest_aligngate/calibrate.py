"""Gate presets (``aligngate calibrate``): bundled in ``data/baselines.json``, exported as YAML."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

from pytest_aligngate.config.schema import GateThresholds

BASELINES = "baselines.json"


@dataclass(frozen=True)
class Preset:
    """One sensitivity level of the gate."""

    name: str
    alpha: float
    effect_floor: float
    summary: str


@dataclass(frozen=True)
class Baselines:
    """The bundled presets and where their numbers come from."""

    presets: dict[str, Preset]
    default: str
    source: str


def load_baselines() -> Baselines:
    """Read ``pytest_aligngate/data/baselines.json``."""
    text = resources.files("pytest_aligngate").joinpath("data", BASELINES).read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    presets = {
        name: Preset(name, float(p["alpha"]), float(p["effect_floor"]), str(p["summary"]))
        for name, p in data["presets"].items()
    }
    return Baselines(presets, str(data["default"]), str(data["source"]))


def preset_table(baselines: Baselines, chosen: str | None = None) -> str:
    """The presets as a text table; ``chosen`` is marked with ``*``; a last line gives the config default."""
    lines = [f"  {'sensitivity':<14} {'alpha':>6} {'effect floor':>13}  summary"]
    for preset in baselines.presets.values():
        mark = "*" if preset.name == chosen else " "
        lines.append(
            f"{mark} {preset.name:<14} {preset.alpha:>6g} {preset.effect_floor:>13g}  {preset.summary}"
        )
    default = GateThresholds()
    lines.append(
        f"  config default, without a thresholds section: alpha {default.alpha:g}, "
        f"effect floor {default.effect_floor:g} (not a preset)"
    )
    lines.append(
        "  recommended instead of a floor on d: a tolerated drop in mean score, e.g. "
        "thresholds.default.max_drop: 0.1 with test: wilcoxon and alternative: less (fails a "
        "significant drop above it, certifies axes whose drop is bounded below it; see README)"
    )
    return "\n".join(lines)


def thresholds_yaml(preset: Preset) -> str:
    """A ``thresholds`` section for ``aligngate.yaml`` (a valid config file on its own)."""
    header = f"# aligngate calibrate --sensitivity {preset.name}: {preset.summary}\n"
    section = {"thresholds": {"default": {"alpha": preset.alpha, "effect_floor": preset.effect_floor}}}
    return header + yaml.safe_dump(section, sort_keys=False)
