"""The two-stage design (``probes.sequential``): which prompts each stage asks, which look a set of rows
is, and whether the first look settles the axis.

Stage 1 asks the first ``ceil(n / 2)`` of an axis's planned prompts in a seeded order (every process
splits alike), and the axis is decided on them with the first O'Brien-Fleming bound. Only an axis that
neither failed nor was certified (with ``max_drop``) or passed conclusively (without it) asks the rest;
it is then decided on every prompt with the second bound. An axis with fewer than ``2 * MIN_PROMPTS``
prompts has one stage at the axis's own level."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from pytest_aligngate.records import AxisVerdict, ProbeResult

T = TypeVar("T")


@dataclass(frozen=True)
class Look:
    """One look of an axis's design: ``stage`` (1-based) of ``len(fractions)``, at the information
    fractions (stage-1 prompts over planned prompts, then 1) fixed by the plan, not by what was scored."""

    stage: int
    fractions: tuple[float, ...]
    planned_prompts: int


def split(items: Sequence[T], seed: int, axis: str) -> tuple[list[T], list[T]] | None:
    """Stage 1 and stage 2 of an axis's planned prompts (plan order within each), or None when the axis
    has too few prompts for two stages of at least ``MIN_PROMPTS`` each."""
    from pytest_aligngate.gate.stats import MIN_PROMPTS

    if len(items) < 2 * MIN_PROMPTS:
        return None
    order = list(range(len(items)))
    random.Random(f"{seed}:{axis}:stages").shuffle(order)
    first = set(order[: math.ceil(len(items) / 2)])
    return (
        [item for i, item in enumerate(items) if i in first],
        [item for i, item in enumerate(items) if i not in first],
    )


def look_of(planned: Sequence[str], rows: Sequence[ProbeResult], seed: int, axis: str) -> Look:
    """The look ``rows`` are: stage 2 when they hold any stage-2 prompt, else stage 1; a single look
    when the axis is too small for two stages."""
    stages = split(planned, seed, axis)
    if stages is None:
        return Look(1, (1.0,), len(planned))
    first, rest = stages
    fractions = (len(first) / len(planned), 1.0)
    later = set(rest)
    stage = 2 if any(row.probe_id in later for row in rows) else 1
    return Look(stage, fractions, len(planned))


def settled(verdict: AxisVerdict) -> bool:
    """True when a first look needs no second: an error, a failure or improvement, a certification
    (``max_drop``), or a conclusive pass (reference rule: the detectable effect within the floor)."""
    if verdict.status != "pass":
        return True
    if verdict.max_drop is not None:
        return verdict.certified is True
    return not verdict.inconclusive
