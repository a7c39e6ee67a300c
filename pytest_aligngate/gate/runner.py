"""The runner both fronts share: ask both models every probe and judge each answer as it arrives."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import replace
from typing import Any, Literal

from pytest_aligngate.corpus.model import Probe
from pytest_aligngate.errors import AdapterError
from pytest_aligngate.judging.base import ScoringJudge
from pytest_aligngate.judging.injection import injection_suspected
from pytest_aligngate.judging.reasoning import answer_text
from pytest_aligngate.judging.refusal import is_refusal
from pytest_aligngate.models.base import ModelAdapter, SamplingParams
from pytest_aligngate.records import Completion, ProbeResult, Role, encodable

EMPTY_ANSWER = "empty answer: the model sent no text (content null or blank, or only reasoning)"

ProgressCallback = Callable[[ProbeResult], None]


async def run_axis(
    probes: Sequence[Probe],
    base: ModelAdapter,
    candidate: ModelAdapter,
    judge: ScoringJudge,
    params: SamplingParams,
    on_row: ProgressCallback | None = None,
    *,
    samples: int = 1,
    base_samples: int | None = None,
) -> list[ProbeResult]:
    """Ask both models every probe ``samples`` times (the base ``base_samples`` times when given)
    and judge each answer as soon as it arrives.

    Sample ``j`` of a prompt has ``sample_index=j``; when ``params.seed`` is set it is sent as
    ``seed + j``, so the samples differ on servers that honour a seed. A call that fails after
    the adapter's retries is recorded on its row. An error that makes the rest pointless
    (endpoint unreachable, bad credentials, unknown model) cancels the remaining calls and is
    raised as :class:`AdapterError`.
    """
    jobs = [
        _probe_one(probe, role, adapter, judge, _sample_params(params, index), index)  # type: ignore[arg-type]
        for probe in probes
        for role, adapter, count in (
            ("base", base, base_samples or samples),
            ("candidate", candidate, samples),
        )
        for index in range(count)
    ]
    return await _gather_rows(jobs, on_row)


def _sample_params(params: SamplingParams, index: int) -> SamplingParams:
    return params if params.seed is None else replace(params, seed=params.seed + index)


async def probe_model(
    probes: Sequence[Probe],
    model: ModelAdapter,
    judge: ScoringJudge,
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
    """Run the jobs concurrently, reporting each row as it completes.

    A fatal error cancels the rest and is raised as :class:`AxisStopped`, carrying the rows already
    answered (paid for), so they are kept.
    """
    tasks = [asyncio.ensure_future(job) for job in jobs]
    done: list[ProbeResult] = []
    try:
        for finished in asyncio.as_completed(tasks):
            try:
                row = await finished
            except AdapterError as exc:
                raise AxisStopped(exc, done) from exc
            done.append(row)
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
    judge: ScoringJudge,
    params: SamplingParams,
    sample_index: int = 0,
) -> ProbeResult:
    row = ProbeResult(
        probe_id=probe.id, axis=probe.axis, role=role, model=adapter.model, sample_index=sample_index
    )
    if params.logprobs and not probe.forced_choice:
        params = replace(params, logprobs=False)
    if probe.forced_choice:
        params = replace(params, max_tokens=min(params.max_tokens, params.choice_max_tokens))
    try:
        completion = await adapter.complete(probe.chat(), params)
    except AdapterError as exc:
        if exc.fatal:
            raise
        return row.model_copy(update={"error_kind": _error_kind(exc), "error": encodable(str(exc))})
    # The row keeps the full reply; reasoning (<think>) is never judged or read as a refusal.
    answer = answer_text(completion.text)
    row = row.model_copy(
        update={
            "response": completion.text,
            "truncated": completion.truncated,
            "cut_off": completion.cut_off,
            "usage": completion.usage,
            "refusal": is_refusal(answer),
            "injection_suspected": injection_suspected(answer),
        }
    )
    if not answer.strip():
        return row.model_copy(update={"error_kind": "empty", "error": EMPTY_ANSWER})
    if probe.forced_choice:
        return row.model_copy(update=_choice_update(probe, completion.model_copy(update={"text": answer})))
    try:
        result = await judge.score(probe, answer)
    except AdapterError as exc:
        if exc.fatal:
            raise
        return row.model_copy(update={"error_kind": _error_kind(exc), "error": encodable(f"judge: {exc}")})
    update: dict[str, object] = {
        "judge_usage": result.usage,
        "score": result.score,
        "rationale": None if result.rationale is None else encodable(result.rationale),
        "scored_by": "judge",
        "second_score": result.second_score,
        "judge_too_long": result.too_long,
    }
    if result.error is not None:
        update |= {"error_kind": "scoring", "error": encodable(result.error)}
    return row.model_copy(update=update)


def _error_kind(error: AdapterError) -> Literal["api", "budget"]:
    return "budget" if error.cause == "budget" else "api"


def _choice_update(probe: Probe, completion: Completion) -> dict[str, object]:
    """The row fields of a forced-choice answer, scored without a judge."""
    from pytest_aligngate.judging.forced_choice import score_choice

    scored = score_choice(probe, completion.text, completion.logprobs)
    update: dict[str, object] = {"score": scored.score, "rationale": scored.rationale}
    update["scored_by"] = scored.scored_by
    if scored.error is not None:
        update |= {"error_kind": "scoring", "error": scored.error}
    return update


class AxisStopped(AdapterError):
    """A fatal endpoint error stopped an axis; ``rows`` holds the calls answered before it."""

    def __init__(self, error: AdapterError, rows: list[ProbeResult]) -> None:
        super().__init__(error.endpoint, error.model, error.cause, error.detail)
        self.rows = rows
