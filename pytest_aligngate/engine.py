"""The engine both fronts share: ask both models every probe, judge each answer, decide per axis."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import replace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from pytest_aligngate.adapters import AdapterError, ModelAdapter, SamplingParams
from pytest_aligngate.config import AxisThresholds
from pytest_aligngate.corpus import Probe
from pytest_aligngate.judge import Judge
from pytest_aligngate.records import ProbeResult, Role
from pytest_aligngate.refusal import is_refusal

AxisStatus = Literal["pass", "fail", "improved", "insufficient", "error"]
PARTIAL_LIMIT = 0.20
"""An axis whose failed calls exceed this fraction of its rows is an error (a partial run)."""

ProgressCallback = Callable[[ProbeResult], None]


class AxisVerdict(BaseModel):
    """The decision for one axis, with everything a reviewer needs to check it."""

    model_config = ConfigDict(ser_json_inf_nan="strings")

    axis: str
    status: AxisStatus
    alpha: float
    effect_floor: float
    test: str = "mannwhitneyu"
    alternative: str = "two-sided"
    p_value: float | None = None
    effect_size: float | None = None
    mean_diff: float | None = None
    mean_diff_ci: tuple[float, float] | None = None
    effect_size_ci: tuple[float, float] | None = None
    min_detectable_effect: float | None = None
    n_base: int = 0
    n_candidate: int = 0
    mean_base: float | None = None
    mean_candidate: float | None = None
    n_prompts: int = 0
    refusals_base: int = 0
    refusals_candidate: int = 0
    scoring_errors_base: int = 0
    scoring_errors_candidate: int = 0
    api_errors: int = 0
    error: str | None = None
    error_cause: Literal["api", "partial"] | None = None


async def run_axis(
    probes: Sequence[Probe],
    base: ModelAdapter,
    candidate: ModelAdapter,
    judge: Judge,
    params: SamplingParams,
    on_row: ProgressCallback | None = None,
    *,
    samples: int = 1,
) -> list[ProbeResult]:
    """Ask both models every probe ``samples`` times and judge each answer as soon as it arrives.

    Sample ``j`` of a prompt has ``sample_index=j``; when ``params.seed`` is set it is sent as
    ``seed + j``, so the samples differ on servers that honour a seed. A call that fails after
    the adapter's retries is recorded on its row. An error that makes the rest pointless
    (endpoint unreachable, bad credentials, unknown model) cancels the remaining calls and is
    raised as :class:`AdapterError`.
    """
    jobs = [
        _probe_one(probe, role, adapter, judge, _sample_params(params, index), index)  # type: ignore[arg-type]
        for probe in probes
        for role, adapter in (("base", base), ("candidate", candidate))
        for index in range(samples)
    ]
    return await _gather_rows(jobs, on_row)


def _sample_params(params: SamplingParams, index: int) -> SamplingParams:
    return params if params.seed is None else replace(params, seed=params.seed + index)


async def probe_model(
    probes: Sequence[Probe],
    model: ModelAdapter,
    judge: Judge,
    params: SamplingParams,
    on_row: ProgressCallback | None = None,
) -> list[ProbeResult]:
    """Ask one model every probe and judge each answer (no comparison); rows in probe order.

    The rows carry role ``"candidate"`` (the model under test). Errors are handled as in
    :func:`run_axis`.
    """
    jobs = [_probe_one(probe, "candidate", model, judge, params) for probe in probes]
    return await _gather_rows(jobs, on_row)


async def _gather_rows(
    jobs: Sequence[Coroutine[Any, Any, ProbeResult]], on_row: ProgressCallback | None
) -> list[ProbeResult]:
    """Run the jobs concurrently, reporting each row as it completes; a fatal error cancels the rest."""
    tasks = [asyncio.ensure_future(job) for job in jobs]
    try:
        for finished in asyncio.as_completed(tasks):
            row = await finished
            if on_row is not None:
                on_row(row)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return [task.result() for task in tasks]


async def _probe_one(
    probe: Probe,
    role: Role,
    adapter: ModelAdapter,
    judge: Judge,
    params: SamplingParams,
    sample_index: int = 0,
) -> ProbeResult:
    row = ProbeResult(
        probe_id=probe.id, axis=probe.axis, role=role, model=adapter.model, sample_index=sample_index
    )
    try:
        completion = await adapter.complete(probe.chat(), params)
    except AdapterError as exc:
        if exc.fatal:
            raise
        return row.model_copy(update={"error_kind": "api", "error": str(exc)})
    row = row.model_copy(
        update={
            "response": completion.text,
            "usage": completion.usage,
            "refusal": is_refusal(completion.text),
        }
    )
    try:
        result = await judge.score(probe, completion.text)
    except AdapterError as exc:
        if exc.fatal:
            raise
        return row.model_copy(update={"error_kind": "api", "error": f"judge: {exc}"})
    update: dict[str, object] = {
        "judge_usage": result.usage,
        "score": result.score,
        "rationale": result.rationale,
    }
    if result.error is not None:
        update |= {"error_kind": "scoring", "error": result.error}
    return row.model_copy(update=update)


def decide(axis: str, rows: Sequence[ProbeResult], thresholds: AxisThresholds) -> AxisVerdict:
    """Compare base and candidate scores of one axis and apply the gate rule."""
    from pytest_aligngate.stats import GateRule, compare

    def count(role: str, predicate: Callable[[ProbeResult], bool]) -> int:
        return sum(1 for row in rows if row.role == role and predicate(row))

    verdict = AxisVerdict(
        axis=axis,
        status="pass",
        alpha=thresholds.alpha,
        effect_floor=thresholds.effect_floor,
        n_prompts=len({row.probe_id for row in rows}),
        refusals_base=count("base", lambda r: r.refusal),
        refusals_candidate=count("candidate", lambda r: r.refusal),
        scoring_errors_base=count("base", lambda r: r.error_kind == "scoring"),
        scoring_errors_candidate=count("candidate", lambda r: r.error_kind == "scoring"),
        api_errors=sum(1 for row in rows if row.error_kind == "api"),
    )
    failed = sum(1 for row in rows if row.error_kind is not None)
    if rows and failed / len(rows) > PARTIAL_LIMIT:
        return verdict.model_copy(
            update={
                "status": "error",
                "error_cause": "partial",
                "error": f"{failed} of {len(rows)} calls failed (more than {PARTIAL_LIMIT:.0%}): partial run",
            }
        )
    base_scores = [row.score for row in rows if row.role == "base" and row.score is not None]
    candidate_scores = [row.score for row in rows if row.role == "candidate" and row.score is not None]
    rule = GateRule(alpha=thresholds.alpha, effect_floor=thresholds.effect_floor)
    comparison = compare(base_scores, candidate_scores, rule)
    fields = {key: value for key, value in comparison.as_dict().items() if key in AxisVerdict.model_fields}
    return AxisVerdict.model_validate({**verdict.model_dump(), **fields})


def api_error_verdict(
    axis: str, thresholds: AxisThresholds, error: AdapterError, n_prompts: int
) -> AxisVerdict:
    """The verdict of an axis whose run stopped on an endpoint error."""
    return AxisVerdict(
        axis=axis,
        status="error",
        alpha=thresholds.alpha,
        effect_floor=thresholds.effect_floor,
        n_prompts=n_prompts,
        error=str(error),
        error_cause="api",
    )
