"""Judge drift check: re-judge fixed anchor responses with agreed scores and measure agreement.

A judge model that is silently updated (or a rubric edit, or a judge that is simply unusable: a
constant or inverted scorer) moves the ruler every verdict is read against. Every run judges the
most and least aligned anchor of each audited axis (``judge.anchor_check``, on by default: two
calls per axis); ``judge.drift_check`` re-judges all bundled anchors (``data/anchors.yaml``: about
six responses per axis). Both compare with the agreed scores: the mean absolute error (MAE) and
Spearman's rank correlation per axis. An axis whose MAE exceeds ``judge.drift_tolerance`` errors
("judge disagrees with the anchors", exit 5) instead of passing or failing."""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Sequence
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

from pytest_aligngate.config.yamlsource import SAFE_LOADER
from pytest_aligngate.corpus.load import load_corpus
from pytest_aligngate.corpus.model import Probe
from pytest_aligngate.records import AxisVerdict

ANCHORS_FILE = Path(__file__).resolve().parents[1] / "data" / "anchors.yaml"


class Anchor(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    score: float = Field(ge=0.0, le=1.0)
    text: str = Field(min_length=1)


class AxisAnchors(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    axis: str
    probe: str = Field(description="Id of the bundled probe the responses answer")
    responses: tuple[Anchor, ...] = Field(min_length=2)


class AnchorSet(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str
    anchors: tuple[AxisAnchors, ...]


class AxisDrift(BaseModel):
    """Agreement of the judge with one axis's anchors."""

    axis: str
    n: int
    mae: float | None
    spearman: float | None
    unscored: int = 0
    drifted: bool


class DriftReport(BaseModel):
    """The drift check of one run."""

    judge: str
    rubric_version: str
    anchors_version: str
    tolerance: float
    axes: list[AxisDrift]

    def drifted_axes(self) -> list[str]:
        return [a.axis for a in self.axes if a.drifted]

    def axis(self, name: str) -> AxisDrift | None:
        return next((a for a in self.axes if a.axis == name), None)


def load_anchors(path: Path = ANCHORS_FILE) -> AnchorSet:
    return AnchorSet.model_validate(yaml.load(path.read_text(encoding="utf-8"), Loader=SAFE_LOADER))


def extreme_anchors(anchors: AnchorSet) -> AnchorSet:
    """The quick check's anchors: per axis only the most and the least aligned response."""
    groups = []
    for group in anchors.anchors:
        ordered = sorted(group.responses, key=lambda anchor: anchor.score)
        groups.append(group.model_copy(update={"responses": (ordered[-1], ordered[0])}))
    return anchors.model_copy(update={"anchors": tuple(groups)})


def agreement(
    agreed: Sequence[float], judged: Sequence[float | None], tolerance: float, axis: str
) -> AxisDrift:
    """MAE and Spearman's rho of the judged scores against the agreed ones (unscored anchors count
    as drift when they are more than a third of the anchors)."""
    pairs = [(a, j) for a, j in zip(agreed, judged, strict=True) if j is not None]
    unscored = len(agreed) - len(pairs)
    mae = statistics.fmean(abs(a - j) for a, j in pairs) if pairs else None
    rho = None
    if len(pairs) >= 3 and len({j for _, j in pairs}) > 1:
        from scipy.stats import spearmanr  # not for the two anchors of anchor_check: scipy is still loading

        rho = float(spearmanr([a for a, _ in pairs], [j for _, j in pairs]).statistic)
    drifted = mae is None or mae > tolerance or unscored * 3 > len(agreed)
    return AxisDrift(axis=axis, n=len(pairs), mae=mae, spearman=rho, unscored=unscored, drifted=drifted)


async def check_drift(
    judge: object, axes: Sequence[str], tolerance: float, anchors: AnchorSet | None = None
) -> DriftReport:
    """Re-judge the anchors of ``axes`` (axes without anchors are skipped) with ``judge``.

    ``judge`` is a :class:`~pytest_aligngate.judging.llm.Judge` (or anything with ``async score(probe,
    response)`` and ``model``/``rubric_version``); endpoint errors propagate as ``AdapterError``.
    """
    anchors = anchors or load_anchors()
    probes: dict[str, Probe] = {p.id: p for p in load_corpus().probes}
    chosen = [group for group in anchors.anchors if group.axis in axes]

    async def judged(group: AxisAnchors) -> list[float | None]:
        probe = probes[group.probe]
        results = await asyncio.gather(*(judge.score(probe, a.text) for a in group.responses))  # type: ignore[attr-defined]
        return [result.score for result in results]

    scores = await asyncio.gather(*(judged(group) for group in chosen))
    return DriftReport(
        judge=str(getattr(judge, "model", "")),
        rubric_version=str(getattr(judge, "rubric_version", "")),
        anchors_version=anchors.version,
        tolerance=tolerance,
        axes=[
            agreement([a.score for a in group.responses], judged_scores, tolerance, group.axis)
            for group, judged_scores in zip(chosen, scores, strict=True)
        ],
    )


def drift_lines(report: DriftReport) -> list[str]:
    """One line per axis: MAE, rho and whether the judge moved."""
    lines = []
    for a in report.axes:
        mae = "-" if a.mae is None else f"{a.mae:.3f}"
        rho = "-" if a.spearman is None else f"{a.spearman:.2f}"
        state = "DISAGREES WITH THE ANCHORS" if a.drifted else "ok"
        extra = f", {a.unscored} unscored" if a.unscored else ""
        lines.append(
            f"{a.axis}: {state} (MAE {mae} vs tolerance {report.tolerance:g}, "
            f"Spearman rho {rho}, n={a.n}{extra})"
        )
    return lines


def judge_drift_verdict(verdict: AxisVerdict, report: DriftReport | None) -> AxisVerdict:
    """The verdict unchanged, or an error (the judge disagrees with the anchors) on a drifted axis.

    The disagreement also replaces a "constant judge" error, which it explains; other errors (API,
    budget, a partial run, too few prompts) are kept as they are.
    """
    drift = report.axis(verdict.axis) if report is not None else None
    if drift is None or not drift.drifted:
        return verdict
    if verdict.status == "error" and verdict.error_cause != "judge_unusable":
        return verdict
    line = next(text for text in drift_lines(report) if text.startswith(f"{verdict.axis}:"))  # type: ignore[arg-type]
    return verdict.model_copy(
        update={
            "status": "error",
            "error_cause": "judge_drift",
            "error": f"judge disagrees with the anchors: {report.judge} on {line}",  # type: ignore[union-attr]
        }
    )
