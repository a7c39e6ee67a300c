"""The record types that flow from the runner through stats into reports."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict

Role = Literal["base", "candidate"]
ErrorKind = Literal["api", "scoring", "budget", "empty"]
"""``budget``: the call was not sent, its worst case would take the run past ``budget``; ``empty``:
the model answered nothing (``content: null``, blank, or only reasoning), which is never judged."""


def encodable(text: str) -> str:
    """``text`` with lone surrogates (valid in JSON escapes, not in UTF-8) replaced by U+FFFD."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


Text = Annotated[str, AfterValidator(encodable)]
"""Any text a model or endpoint sent: always encodable as UTF-8, so every file can hold it."""
ScoredBy = Literal["judge", "choice", "logprob"]


class Usage(BaseModel):
    """Token usage of one or more calls (zero where a server does not report it)."""

    model_config = ConfigDict(extra="forbid")

    prompt_tokens: int = 0
    completion_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
        )


class Completion(BaseModel):
    """What a model adapter returns for one request."""

    text: Text
    usage: Usage = Usage()
    model: Text = ""
    logprobs: list[dict[str, float]] | None = None
    """Top alternatives (token -> log probability) of the first answer tokens, when requested."""
    truncated: bool = False
    """The answer was longer than ``models.max_answer_chars`` and was cut there."""
    cut_off: bool = False
    """The model stopped at ``max_tokens`` (``finish_reason: length``): the answer may be incomplete."""


class ProbeResult(BaseModel):
    """One probe answered by one model and scored: the row every report is a view of."""

    model_config = ConfigDict(extra="forbid")

    probe_id: str
    axis: str
    role: Role
    model: str
    sample_index: int = 0
    response: Text | None = None
    usage: Usage = Usage()
    refusal: bool = False
    truncated: bool = False
    """The answer was cut at ``models.max_answer_chars``."""
    cut_off: bool = False
    """The model stopped at ``max_tokens`` (``finish_reason: length``)."""
    judge_too_long: bool = False
    """The answer was longer than ``judge.max_answer_chars``: not judged (a scoring error)."""
    score: float | None = None
    rationale: Text | None = None
    scored_by: ScoredBy | None = None
    second_score: float | None = None
    """The second judge's score (``judge.second_judge``), beside ``score``; never gates."""
    judge_usage: Usage = Usage()
    error_kind: ErrorKind | None = None
    error: Text | None = None
    injection_suspected: bool = False
    """The answer addresses the judge or holds score-like text (counted for reviewers; the embedding
    judge leaves such an answer unscored, a scoring error)."""




class JudgeAgreement(BaseModel):
    """How closely the second judge agrees with the gate's judge on one axis's judged answers."""

    second_judge: str
    """The second judge's name (``embedding:...`` for the local judge)."""
    n: int
    """Answers scored by both judges (base and candidate)."""
    mae: float | None = None
    """Mean absolute difference of the two scores."""
    spearman: float | None = None
    """Spearman's rank correlation; None below 3 answers or when either judge gave one score only."""
    cut: float
    agreement_rate: float | None = None
    """Share of answers both judges put on the same side of ``cut`` (score >= cut: aligned)."""
    mean_diff: float | None = None
    """The gate's judge: mean candidate score minus mean base score."""
    second_mean_diff: float | None = None
    """The second judge: mean candidate score minus mean base score."""
    same_direction: bool | None = None
    """Both differences have the same sign (None when either is unknown)."""


class JudgeAccuracy(BaseModel):
    """How well the gate's judge separates labelled aligned and misaligned answers on one axis:
    the measure of how far its verdicts can be trusted, carried beside each verdict."""

    pairwise_accuracy: float
    """Share of labelled pairs (an aligned and a misaligned answer to one scenario) whose aligned
    answer the judge scored higher (a tie counts half)."""
    auc: float | None = None
    pairs: int | None = None
    """Labelled pairs measured (None: not stated)."""
    source: str
    """How it was measured, e.g. out of fold by ``benchmarks/local_judges.py``, or stated in the config."""


AxisStatus = Literal["pass", "fail", "improved", "insufficient", "error"]


class MethodSummary(BaseModel):
    """The probes of one axis scored one way: judged, or forced-choice (parsed or by logprobs)."""

    n_prompts: int
    mean_base: float | None = None
    mean_candidate: float | None = None
    logprob_rows: int = 0


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
    p_method: str | None = None
    """How ``p_value`` was computed (exact conditional null or normal approximation) and why."""
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
    error_counts: dict[str, dict[str, int]] = {}
    """Failed or unusable calls per role and kind (``api``, ``empty``, ``scoring``, ``budget``)."""
    judge_injection_suspected: dict[str, int] = {}
    """Answers per role that address the judge or hold score-like text (see ``ProbeResult``)."""
    error: str | None = None
    error_cause: (
        Literal["api", "partial", "budget", "judge_drift", "insufficient", "judge_unusable"] | None
    ) = None
    answer_flags: dict[str, dict[str, int]] = {}
    """Answers per role cut off at max_tokens (``cut_off``), at max_answer_chars (``truncated``), or
    too long for the judge (``judge_too_long``: not judged)."""
    identical_answers: bool = False
    """The candidate answered every prompt exactly as the base: is it the same model?"""
    correction: Literal["none", "holm"] = "none"
    family_size: int = 1
    p_bound: float | None = None
    p_adjusted: float | None = None
    inconclusive: bool = False
    """A pass the run could not back: its power (MDE above the effect floor) or, with ``max_drop``,
    a pass that is not certified."""
    max_drop: float | None = None
    drop: float | None = None
    """Base minus candidate mean score (positive: the candidate is worse); with ``max_drop``."""
    drop_upper_bound: float | None = None
    """One-sided ``1 - alpha`` upper confidence bound of ``drop``."""
    certified: bool | None = None
    """With ``max_drop``: the upper bound of the drop is below it (no drop larger than max_drop)."""
    prompts_to_certify: int | None = None
    """Prompts expected to certify at the observed drop and spread (None: the drop reaches max_drop)."""
    holm_only_fail: bool = False
    stage: int | None = None
    """``probes.sequential``: the look that decided the axis (1 or 2), of ``stages``."""
    stages: int | None = None
    """Looks the axis's design has (1 when it has too few prompts for two)."""
    planned_prompts: int | None = None
    """Prompts planned for the axis; ``n_prompts`` of them were asked by the deciding look."""
    nominal_alpha: float | None = None
    """The deciding look's O'Brien-Fleming level that ``p_value`` had to fall below to fail (at
    ``alpha / family_size`` with holm), as the axis was decided on its own."""
    certify_alpha: float | None = None
    """With ``max_drop``: the look's level at ``alpha``; ``drop_upper_bound`` is its ``1 - level`` bound."""
    p_sequential: float | None = None
    """``p_value`` as an overall level of the design (``stats.sequential_p``); holm and the gate use it."""
    samples_per_prompt: int = 1
    base_samples_per_prompt: int = 1
    """The base's samples per prompt (``probes.base_samples_per_prompt``; else as the candidate's)."""
    within_sd_base: float | None = None
    within_sd_candidate: float | None = None
    prompts_dropped: int = 0
    unparseable_base: int = 0
    unparseable_candidate: int = 0
    flip_cut: float | None = None
    flips_to_misaligned: int = 0
    """Prompts scored at or above ``flip_cut`` for the base and below it for the candidate."""
    flips_to_aligned: int = 0
    by_method: dict[str, MethodSummary] = {}
    """Means per scoring method ("judged", "forced_choice"); filled when an axis has forced-choice probes."""
    judge_agreement: JudgeAgreement | None = None
    """The second judge's agreement with the gate's judge (``judge.second_judge``); never gates."""
    judge_accuracy: JudgeAccuracy | None = None
    """The gate's judge measured on this axis's labelled answers (None: never measured)."""
