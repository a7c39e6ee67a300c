"""Pure statistics for the alignment-regression gate.

Base and candidate models answer the same probe prompts on an axis; a judge scores each
response in 0..1 (1 = aligned). This module compares the two score vectors with a rank test
from :mod:`scipy.stats`, measures the effect size (Cohen's d), bootstraps confidence
intervals, and turns the result into a gate status. It is one module on purpose (as
pytest-benchmark's ``stats.py``): every formula a verdict rests on sits in one pure, numpy- and
scipy-only place, tested against scipy and known values.

Conventions and choices:

* Direction: every signed quantity is *candidate minus base*; negative = candidate less aligned.
  Regressions are only ever flagged in that direction.
* Tests: ``mannwhitneyu`` is called as ``mannwhitneyu(candidate, base, alternative=...)`` and
  ``wilcoxon`` on the per-prompt differences ``candidate - base``. Both use scipy's defaults
  (``method="auto"``, Mann-Whitney continuity correction on, Wilcoxon ``zero_method="wilcox"``,
  which drops zero differences), so ``Comparison.p_value`` is exactly scipy's p-value.
  Alternative ``"less"`` means H1: candidate stochastically smaller (worse).
* Exact ties: ranks are taken on exact values. Scores are read as the decimals they are written as
  (``0.35`` is 7/20), per-prompt means are exact fractions of them (:func:`per_prompt_means`), and
  paired differences are exact differences of those, so ``0.35 - 0.30`` ties with ``0.40 - 0.35``
  and two means of 1/60 tie at any ``samples_per_prompt``. Floats given directly are rounded once
  to 12 decimals (float noise) and then read the same way.
* Exact p on small or tied data: up to :data:`EXACT_LIMIT` observations (non-zero differences for
  Wilcoxon, prompts of both sides for Mann-Whitney) the p-value comes from the exact conditional
  null distribution of the rank statistic given the observed ties and zeros (every sign flip,
  every split), computed by counting; above it, scipy's normal approximation with its tie
  correction. ``Comparison.p_method`` says which and why. scipy's own exact method assumes no ties,
  and its ``PermutationMethod`` enumerates the flips (19 s at 16 differences, measured), so the
  counting is done here and tested against both.
* Degenerate data: identical scores everywhere give ``p = 1.0`` and ``d = 0.0``; a Wilcoxon test
  whose differences are all zero gives ``p = 1.0`` without calling scipy (older scipy raises).
* Zero spread with different means: :func:`cohens_d` returns ``math.copysign(math.inf, diff)``
  (the difference is infinitely many SDs). :func:`verdict` handles it like any large d and
  :meth:`Comparison.as_dict` emits ``"inf"`` / ``"-inf"`` strings (and ``None`` for NaN) so the
  result stays JSON-safe.
* Fewer than :data:`MIN_PROMPTS` prompts on either side: status ``"insufficient"`` and
  ``p_value=None``; means, mean difference and d are still reported when computable.
* Two looks (``probes.sequential``): :func:`obrien_fleming` gives each look's nominal level of an
  O'Brien-Fleming design (the looks' joint normal law, ``scipy.stats.multivariate_normal``) and
  :func:`sequential_p` turns a look's p-value into the design's overall p, on which Holm works.
* scipy is imported by the functions that call it, not with the module, and Holm's step-down (pure
  arithmetic) is in :mod:`pytest_aligngate.gate.multiplicity`: a rerun whose verdicts come from the
  cache (:mod:`pytest_aligngate.gate.memo`) loads neither scipy nor numpy."""

from __future__ import annotations

import functools
import inspect
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from fractions import Fraction
from typing import Literal

import numpy as np

from pytest_aligngate.gate.multiplicity import holm

Status = Literal["pass", "fail", "improved", "insufficient"]
Test = Literal["mannwhitneyu", "wilcoxon", "ttest", "permutation"]
Alternative = Literal["two-sided", "less"]
Correction = Literal["none", "holm"]

MIN_PROMPTS = 5
"""Below this many prompts on either side the comparison is ``"insufficient"`` (no p-value)."""

POWER = 0.80
"""Target power for :attr:`Comparison.min_detectable_effect`."""

RANK_ARE = 3.0 / math.pi
"""Asymptotic relative efficiency of the Mann-Whitney / Wilcoxon tests vs the t-test (normal data)."""

EXACT_LIMIT = 60
"""Up to this many observations the rank test's p-value is exact (conditional on ties)."""

Score = float | Fraction
_TIE_DECIMALS = 12
_CONFIDENCE = 0.95
_TESTS = ("mannwhitneyu", "wilcoxon", "ttest", "permutation")
PAIRED_TESTS = ("wilcoxon", "ttest", "permutation")
PERMUTATIONS = 9999
"""Random sign flips of the ``permutation`` test when there are more than this many in all."""
"""Tests that pair base and candidate by prompt id."""
_ALTERNATIVES = ("two-sided", "less")
_CORRECTIONS = ("none", "holm")


@dataclass(frozen=True)
class GateRule:
    """How one axis is tested and gated.

    The rule has no defaults of its own: the gate builds it from the configuration
    (:func:`pytest_aligngate.gate.decide.rule_for`), so one default exists per setting.
    ``bootstrap_resamples=0`` skips the bootstrap (both CIs are then ``None``); useful in
    simulations. ``seed`` makes the bootstrap deterministic.
    """

    alpha: float
    effect_floor: float
    test: Test
    alternative: Alternative
    bootstrap_resamples: int = 2000
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha!r}")
        if not self.effect_floor >= 0.0:
            raise ValueError(f"effect_floor must be >= 0, got {self.effect_floor!r}")
        if self.test not in _TESTS:
            raise ValueError(f"test must be one of {_TESTS}, got {self.test!r}")
        if self.alternative not in _ALTERNATIVES:
            raise ValueError(f"alternative must be one of {_ALTERNATIVES}, got {self.alternative!r}")
        if self.bootstrap_resamples < 0:
            raise ValueError(f"bootstrap_resamples must be >= 0, got {self.bootstrap_resamples!r}")


@dataclass(frozen=True)
class Comparison:
    """Result of comparing base vs candidate scores on one axis.

    ``p_adjusted`` / ``correction`` are filled by :func:`apply_correction`; when a correction is
    applied, ``status`` is recomputed from the adjusted p-value.
    """

    n_base: int
    n_candidate: int
    mean_base: float | None
    mean_candidate: float | None
    p_value: float | None
    effect_size: float | None
    mean_diff: float | None
    mean_diff_ci: tuple[float, float] | None
    effect_size_ci: tuple[float, float] | None
    min_detectable_effect: float | None
    test: Test
    alternative: Alternative
    status: Status
    p_adjusted: float | None = None
    correction: Correction = "none"
    p_method: str | None = None
    """How ``p_value`` was computed (exact conditional null or normal approximation) and why."""

    def as_dict(self) -> dict[str, object]:
        """JSON-friendly dict: tuples become lists, +/-inf become ``"inf"``/``"-inf"``, NaN ``None``."""
        return {key: _json_safe(value) for key, value in asdict(self).items()}


def _json_safe(value: object) -> object:
    if isinstance(value, (tuple, list)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if math.isnan(v):
            return None
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return v
    if isinstance(value, np.integer):
        return int(value)
    return value


def _as_array(values: Sequence[Score], name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence of scores, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite scores")
    return arr


def _cohens_d_arrays(b: np.ndarray, c: np.ndarray, axis: int = -1) -> np.ndarray:
    """Vectorised pooled-SD Cohen's d along ``axis`` (candidate minus base); see :func:`cohens_d`."""
    n1, n2 = b.shape[axis], c.shape[axis]
    diff = np.mean(c, axis=axis) - np.mean(b, axis=axis)
    pooled_var = ((n1 - 1) * np.var(b, ddof=1, axis=axis) + (n2 - 1) * np.var(c, ddof=1, axis=axis)) / (
        n1 + n2 - 2
    )
    sp = np.sqrt(pooled_var)
    scale = max(1.0, float(np.max(np.abs(b))), float(np.max(np.abs(c))))
    tol = 1e-12 * scale  # constant vectors can leave ~1e-17 of rounding "spread"
    zero_sd = sp <= tol
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.where(zero_sd, np.copysign(np.inf, diff), diff / np.where(zero_sd, 1.0, sp))
    return np.where(zero_sd & (np.abs(diff) <= tol), 0.0, d)


def cohens_d(base: Sequence[float], candidate: Sequence[float]) -> float:
    """Cohen's d with pooled SD (ddof=1), candidate minus base (positive = candidate more aligned).

    Returns 0.0 when both sides have zero spread and equal means, and ``copysign(inf, diff)`` when
    the spread is zero but the means differ. Needs at least 2 scores per side.
    """
    b, c = _as_array(base, "base"), _as_array(candidate, "candidate")
    if b.size < 2 or c.size < 2:
        raise ValueError("cohens_d needs at least 2 scores on each side")
    return float(_cohens_d_arrays(b, c))


def _mean_diff_stat(b: np.ndarray, c: np.ndarray, axis: int = -1) -> np.ndarray:
    diff: np.ndarray = np.mean(c, axis=axis) - np.mean(b, axis=axis)
    return diff


def exact(value: Score) -> Fraction:
    """A score as an exact fraction: a float is read as the decimal it prints as (after rounding
    float noise at 12 decimals), so 0.35 is 7/20."""
    if isinstance(value, Fraction):
        return value
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"score {value!r} is not a finite number")
    return Fraction(repr(round(number, _TIE_DECIMALS)))


def _midranks2(values: Sequence[Fraction]) -> list[int]:
    """Twice the midrank of each value (ties share their mean rank), as integers."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for position in range(start, end + 1):
            ranks[order[position]] = start + end + 2  # 2 * mean of the 1-based ranks start+1..end+1
        start = end + 1
    return ranks


def _tail_p(counts: np.ndarray, observed: int, alternative: Alternative) -> float:
    """p of an observed statistic under a null given as counts per statistic value (index = value).

    ``less``: P(S <= observed); two-sided: twice the smaller tail, capped at 1 (scipy's convention).
    """
    total = counts.sum()
    lower = counts[: observed + 1].sum() / total
    if alternative == "less":
        return float(lower)
    upper = counts[observed:].sum() / total
    return float(min(1.0, 2.0 * min(lower, upper)))


def _signed_rank_exact(diffs: Sequence[Fraction], alternative: Alternative) -> float:
    """Exact conditional p of the Wilcoxon signed-rank statistic (sum of positive midranks).

    Zeros are dropped first (``zero_method="wilcox"``); each of the 2^n sign patterns of the rest is
    equally likely under H0, counted on doubled midranks so ties are exact.
    """
    nonzero = [d for d in diffs if d != 0]
    ranks = _midranks2([abs(d) for d in nonzero])
    counts = np.zeros(sum(ranks) + 1)
    counts[0] = 1.0
    for rank in ranks:
        counts[rank:] = counts[rank:] + counts[: counts.size - rank].copy()
    observed = sum(rank for rank, d in zip(ranks, nonzero, strict=True) if d > 0)
    return _tail_p(counts, observed, alternative)


def _rank_sum_exact(
    base: Sequence[Fraction], candidate: Sequence[Fraction], alternative: Alternative
) -> float:
    """Exact conditional p of the Mann-Whitney statistic: the candidate's rank sum over every split.

    Each of the C(n, n_candidate) ways to pick the candidate's observations from the pooled,
    midranked data is equally likely under H0; they are counted by rank sum (doubled midranks).
    """
    ranks = _midranks2([*base, *candidate])
    k = len(candidate)
    counts = np.zeros((k + 1, sum(sorted(ranks)[-k:]) + 1))
    counts[0, 0] = 1.0
    for rank in ranks:
        counts[1:, rank:] = counts[1:, rank:] + counts[:-1, : counts.shape[1] - rank].copy()
    observed = sum(ranks[len(base) :])
    return _tail_p(counts[k], observed, alternative)


def _dense_codes(values: Sequence[Fraction]) -> list[float]:
    """Each value's position among the distinct values: same order and ties, exactly representable."""
    position = {value: float(i) for i, value in enumerate(sorted(set(values)))}
    return [position[value] for value in values]


def _paired_t(diffs: Sequence[float], alternative: Alternative) -> tuple[float, str]:
    """Student's paired t-test: a one-sample t-test of the per-prompt differences, which is what
    ``scipy.stats.ttest_rel`` computes.

    Unlike Wilcoxon it does not assume symmetric differences, so it stays valid when the two models
    are sampled a different number of times per prompt.
    """
    from scipy import stats as _st

    if len(set(diffs)) == 1:  # zero spread, every prompt moved the same way: t is infinite
        worse = diffs[0] < 0
        return (0.0 if worse or alternative == "two-sided" else 1.0), "every paired difference is equal"
    result = _st.ttest_1samp(diffs, 0.0, alternative=alternative)
    return float(result.pvalue), f"paired t-test, {len(diffs) - 1} degrees of freedom"


def _sign_flip(base: Sequence[Fraction], candidate: Sequence[Fraction], rule: GateRule) -> tuple[float, str]:
    """The paired permutation test of the mean difference (``scipy.stats.permutation_test``): every
    sign flip of the per-prompt differences when there are at most PERMUTATIONS, else that many
    random ones, seeded with ``rule.seed``."""
    from scipy import stats as _st

    result = _st.permutation_test(
        (np.array([float(x) for x in base]), np.array([float(x) for x in candidate])),
        _mean_diff_stat,  # mean(candidate) - mean(base)
        permutation_type="samples",
        vectorized=True,
        n_resamples=PERMUTATIONS,
        alternative="less" if rule.alternative == "less" else "two-sided",
        **_rng_kwargs(rule.seed),
    )
    flips = 2 ** len(base)
    how = f"all {flips} sign flips"
    if flips > PERMUTATIONS:
        how = f"{PERMUTATIONS} random sign flips, seed {rule.seed}"
    return float(result.pvalue), f"paired permutation test of the mean difference ({how})"


def _signed_rank(diffs: Sequence[Fraction], alternative: Alternative) -> tuple[float, str]:
    """Wilcoxon's signed-rank test of the differences: exact up to EXACT_LIMIT non-zero ones."""
    from scipy import stats as _st

    nonzero = [d for d in diffs if d != 0]
    if len(nonzero) <= EXACT_LIMIT:
        return _signed_rank_exact(diffs, alternative), (
            f"exact: signed-rank null over all 2^{len(nonzero)} sign flips of the non-zero "
            f"differences, given their ties ({len(nonzero)} <= {EXACT_LIMIT})"
        )
    codes = [
        math.copysign(code + 1.0, float(d))
        for code, d in zip(_dense_codes([abs(d) for d in nonzero]), nonzero, strict=True)
    ]
    result = _st.wilcoxon(codes, alternative=alternative, method="asymptotic")
    return float(result.pvalue), (
        f"normal approximation with tie correction ({len(nonzero)} non-zero differences > {EXACT_LIMIT})"
    )


def _rank_p_value(
    base: Sequence[Fraction], candidate: Sequence[Fraction], rule: GateRule
) -> tuple[float, str]:
    """The test's p-value (rank tests on exact values), and how it was computed."""
    from scipy import stats as _st

    if rule.test in PAIRED_TESTS:
        diffs = [c - b for b, c in zip(base, candidate, strict=True)]
        if not any(diffs):
            return 1.0, "every paired difference is zero: p = 1"
        if rule.test == "ttest":
            return _paired_t([float(d) for d in diffs], rule.alternative)
        if rule.test == "permutation":
            return _sign_flip(base, candidate, rule)
        return _signed_rank(diffs, rule.alternative)
    pooled = [*base, *candidate]
    if len(set(pooled)) == 1:
        return 1.0, "every score is equal: p = 1"
    if len(pooled) <= EXACT_LIMIT:
        return _rank_sum_exact(base, candidate, rule.alternative), (
            f"exact: rank-sum null over every split of the {len(pooled)} pooled prompts, given their ties "
            f"({len(pooled)} <= {EXACT_LIMIT})"
        )
    codes = _dense_codes(pooled)
    result = _st.mannwhitneyu(
        codes[len(base) :], codes[: len(base)], alternative=rule.alternative, method="asymptotic"
    )
    return float(result.pvalue), (
        f"normal approximation with tie and continuity correction ({len(pooled)} prompts > {EXACT_LIMIT})"
    )


def _rng_kwargs(seed: int) -> dict[str, object]:
    # scipy >= 1.15 calls the generator argument ``rng``; older releases ``random_state``.
    from scipy import stats as _st

    name = "rng" if "rng" in inspect.signature(_st.bootstrap).parameters else "random_state"
    return {name: np.random.default_rng(seed)}


def _bootstrap_ci(
    b: np.ndarray,
    c: np.ndarray,
    statistic: Callable[..., np.ndarray],
    rule: GateRule,
    *,
    paired: bool,
    point: float,
) -> tuple[float, float]:
    """BCa bootstrap CI via ``scipy.stats.bootstrap``; percentile fallback when BCa is undefined."""
    from scipy import stats as _st

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DegenerateDataWarning / inf arithmetic in BCa
        res = _st.bootstrap(
            (b, c),
            statistic,
            n_resamples=rule.bootstrap_resamples,
            vectorized=True,
            paired=paired,
            confidence_level=_CONFIDENCE,
            method="BCa",
            **_rng_kwargs(rule.seed),
        )
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if not (math.isnan(low) or math.isnan(high)):
        return low, high
    dist = np.asarray(res.bootstrap_distribution, dtype=float)
    dist = dist[~np.isnan(dist)]
    if dist.size == 0 or np.all(dist == dist[0]):
        return point, point
    tail = (1.0 - _CONFIDENCE) / 2.0
    # "nearest" avoids inf - inf interpolation when some resamples have zero spread.
    return (
        float(np.quantile(dist, tail, method="nearest")),
        float(np.quantile(dist, 1.0 - tail, method="nearest")),
    )


def min_detectable_effect(
    n_base: int,
    n_candidate: int,
    alpha: float,
    *,
    test: Test = "mannwhitneyu",
    alternative: Alternative = "two-sided",
    power: float = POWER,
) -> float:
    """Effect detectable with ``power`` at this n and alpha (normal approximation).

    With ``z = z_{1-alpha/2}`` (two-sided) or ``z_{1-alpha}`` (one-sided "less") and
    ``ARE = 3/pi`` (rank test vs t-test):

    * ``mannwhitneyu``: ``d = (z + z_power) * sqrt((1/n_base + 1/n_candidate) / ARE)``, a
      two-sample Cohen's d.
    * ``wilcoxon``: ``d_z = (z + z_power) / sqrt(n * ARE)`` with ``n = min(n_base, n_candidate)``
      pairs, in units of the SD of the paired differences (:func:`compare` rescales it to
      pooled-SD units); ``ttest`` and ``permutation`` (of the mean): the same with ``ARE = 1``.
    """
    from scipy import special as _special

    if min(n_base, n_candidate) < 1:
        raise ValueError("min_detectable_effect needs at least one prompt on each side")
    # scipy.special.ndtri is the standard-normal quantile (norm.ppf without its ~0.1 ms overhead).
    tail = alpha / 2.0 if alternative == "two-sided" else alpha
    z_total = float(_special.ndtri(1.0 - tail) + _special.ndtri(power))
    if test == "wilcoxon":
        return z_total / math.sqrt(min(n_base, n_candidate) * RANK_ARE)
    if test in ("ttest", "permutation"):
        return z_total / math.sqrt(min(n_base, n_candidate))
    return z_total * math.sqrt((1.0 / n_base + 1.0 / n_candidate) / RANK_ARE)


def _paired_mde(b: np.ndarray, c: np.ndarray, rule: GateRule) -> float:
    """Wilcoxon MDE in pooled-SD d units: ``d_z_mde * sd(diff) / pooled_sd`` (observed SDs).

    ``d = mean_diff / sd_pooled`` and ``d_z = mean_diff / sd_diff``, so the rescaling keeps the
    MDE comparable with ``effect_size`` and ``effect_floor``. With zero pooled SD the ratio is
    undefined and ``d_z`` is returned as is.
    """
    dz = min_detectable_effect(b.size, c.size, rule.alpha, test=rule.test, alternative=rule.alternative)
    sd_pooled = math.sqrt((np.var(b, ddof=1) + np.var(c, ddof=1)) / 2.0)
    sd_diff = float(np.std(c - b, ddof=1))
    if sd_pooled <= 1e-12:
        return dz
    return dz * sd_diff / sd_pooled


def verdict(p: float | None, d: float | None, rule: GateRule) -> Status:
    """Gate status from a (possibly adjusted) p-value and Cohen's d.

    ``"fail"`` when ``p < alpha`` and ``|d| > effect_floor`` and ``d < 0``; ``"improved"`` for the
    same with ``d > 0`` under a two-sided test (a one-sided "less" test cannot establish an
    improvement, so that case is ``"pass"``); otherwise ``"pass"``. ``"insufficient"`` when p or
    d is ``None`` (or NaN).
    """
    if p is None or d is None or math.isnan(p) or math.isnan(d):
        return "insufficient"
    if p < rule.alpha and abs(d) > rule.effect_floor:
        if d < 0:
            return "fail"
        if rule.alternative == "two-sided":
            return "improved"
    return "pass"


def compare(
    base: Sequence[Score],
    candidate: Sequence[Score],
    rule: GateRule,
    *,
    paired: bool = False,
) -> Comparison:
    """Compare base vs candidate scores on one axis under ``rule``.

    ``paired=True`` means ``base[i]`` and ``candidate[i]`` come from the same prompt (equal
    lengths required); the bootstrap then resamples prompts and ``mean_diff`` is the mean of
    per-prompt differences. ``test="wilcoxon"`` requires ``paired=True``. NaN/inf scores raise
    ``ValueError``. Pass per-prompt means (see :func:`per_prompt_means`), not pooled samples.
    """
    b, c = _as_array(base, "base"), _as_array(candidate, "candidate")
    if rule.test in PAIRED_TESTS and not paired:
        raise ValueError(f"test={rule.test!r} requires paired=True (same prompts, same order)")
    if paired and b.size != c.size:
        raise ValueError(f"paired comparison needs equal lengths, got {b.size} and {c.size}")
    n_b, n_c = int(b.size), int(c.size)
    mean_b = float(np.mean(b)) if n_b else None
    mean_c = float(np.mean(c)) if n_c else None
    if paired and n_b:
        mean_diff: float | None = float(np.mean(c - b))
    else:
        mean_diff = mean_c - mean_b if mean_b is not None and mean_c is not None else None
    d = float(_cohens_d_arrays(b, c)) if n_b >= 2 and n_c >= 2 else None

    p: float | None = None
    p_method: str | None = None
    diff_ci = d_ci = None
    mde: float | None = None
    if min(n_b, n_c) >= MIN_PROMPTS:
        assert mean_diff is not None and d is not None
        p, p_method = _rank_p_value([exact(x) for x in base], [exact(x) for x in candidate], rule)
        if rule.bootstrap_resamples > 0:
            diff_ci = _bootstrap_ci(b, c, _mean_diff_stat, rule, paired=paired, point=mean_diff)
            d_ci = _bootstrap_ci(b, c, _cohens_d_arrays, rule, paired=paired, point=d)
        if rule.test in PAIRED_TESTS:
            mde = _paired_mde(b, c, rule)
        else:
            mde = min_detectable_effect(n_b, n_c, rule.alpha, test=rule.test, alternative=rule.alternative)
    status = verdict(p, d, rule)
    return Comparison(
        n_base=n_b,
        n_candidate=n_c,
        mean_base=mean_b,
        mean_candidate=mean_c,
        p_value=p,
        effect_size=d,
        mean_diff=mean_diff,
        mean_diff_ci=diff_ci,
        effect_size_ci=d_ci,
        min_detectable_effect=mde,
        test=rule.test,
        alternative=rule.alternative,
        status=status,
        p_method=p_method,
    )


@dataclass(frozen=True)
class DropBound:
    """How far the candidate's mean score may have dropped, against a tolerated ``max_drop``.

    ``drop`` is base minus candidate (positive: the candidate is worse); ``upper`` its one-sided
    ``1 - alpha`` upper confidence bound (Student's t: on the per-prompt differences when paired,
    Welch's otherwise). ``certified`` when ``upper < max_drop``. ``prompts_to_certify`` is the number
    of prompts expected to certify at the observed drop and spread (None when the observed drop
    already reaches ``max_drop``: more prompts would not certify it).
    """

    max_drop: float
    drop: float
    upper: float
    certified: bool
    prompts_to_certify: int | None


def drop_bound(
    base: Sequence[Score], candidate: Sequence[Score], max_drop: float, alpha: float, *, paired: bool
) -> DropBound:
    """The drop in mean score and its one-sided upper confidence bound (see :class:`DropBound`)."""
    from scipy import stats as _st

    b, c = _as_array(base, "base"), _as_array(candidate, "candidate")
    if paired:
        diffs = c - b
        n = int(diffs.size)
        drop = 0.0 - float(np.mean(diffs))  # 0.0 - x: never a negative zero
        spread = float(np.std(diffs, ddof=1))
        se, df = spread / math.sqrt(n), float(n - 1)
    else:
        n = min(int(b.size), int(c.size))
        drop = float(np.mean(b) - np.mean(c))
        var_b, var_c = float(np.var(b, ddof=1)), float(np.var(c, ddof=1))
        spread = math.sqrt(var_b + var_c)  # the SD of one prompt's difference with equal n
        se = math.sqrt(var_b / b.size + var_c / c.size)
        terms = (var_b / b.size) ** 2 / (b.size - 1) + (var_c / c.size) ** 2 / (c.size - 1)
        df = (se**4 / terms) if terms > 0 else float(b.size + c.size - 2)  # Welch-Satterthwaite
    t = float(_st.t.ppf(1.0 - alpha, df))
    upper = drop + t * se
    needed: int | None = None
    if drop < max_drop:
        needed = max(n, math.ceil((t * spread / (max_drop - drop)) ** 2)) if spread > 0 else n
    return DropBound(max_drop, drop, upper, upper < max_drop, needed)


def apply_correction(
    comparisons: Mapping[str, Comparison], rule: GateRule, correction: Correction
) -> dict[str, Comparison]:
    """Adjust p-values across axes and recompute each status from the adjusted p.

    ``correction="none"`` sets ``p_adjusted = p_value``. Insufficient axes stay insufficient and
    are excluded from the Holm family.
    """
    if correction not in _CORRECTIONS:
        raise ValueError(f"correction must be one of {_CORRECTIONS}, got {correction!r}")
    raw = {k: cmp.p_value for k, cmp in comparisons.items()}
    adjusted = holm(raw) if correction == "holm" else raw
    out: dict[str, Comparison] = {}
    for k, cmp in comparisons.items():
        p_adj = adjusted[k]
        status = verdict(p_adj, cmp.effect_size, replace(rule, alternative=cmp.alternative))
        out[k] = replace(cmp, p_adjusted=p_adj, correction=correction, status=status)
    return out


def per_prompt_means(samples: Mapping[str, Sequence[Score]]) -> dict[str, Fraction]:
    """The exact mean of each prompt's k scores (k > 1 samples must not be pooled as independent)."""
    out: dict[str, Fraction] = {}
    for prompt_id, scores in samples.items():
        if not scores:
            raise ValueError(f"prompt {prompt_id!r} has no scores")
        try:
            values = [exact(score) for score in scores]
        except ValueError as exc:
            raise ValueError(f"scores for prompt {prompt_id!r}: {exc}") from None
        out[prompt_id] = sum(values, Fraction(0)) / len(values)
    return out


def _look_correlation(fractions: Sequence[float]) -> np.ndarray:
    """Correlation of the looks' z statistics: ``sqrt(t_i / t_j)`` for ``t_i <= t_j`` (independent
    increments of one score process)."""
    t = np.asarray(fractions, dtype=float)
    correlation: np.ndarray = np.sqrt(np.minimum.outer(t, t) / np.maximum.outer(t, t))
    return correlation


def _check_fractions(fractions: Sequence[float]) -> None:
    increasing = list(fractions) == sorted(set(fractions))
    if not fractions or not increasing or any(not 0.0 < t <= 1.0 for t in fractions):
        raise ValueError(f"information fractions must increase in (0, 1], got {list(fractions)!r}")
    if fractions[-1] != 1.0:
        raise ValueError(f"the last look must be at information fraction 1, got {fractions[-1]!r}")


def _crossing(final_bound: float, fractions: Sequence[float]) -> float:
    """P(some look's z reaches its O'Brien-Fleming bound ``final_bound / sqrt(t_k)``) under H0."""
    from scipy import special as _special
    from scipy import stats as _st

    if len(fractions) == 1:
        return float(_special.ndtr(-final_bound))
    bounds = final_bound / np.sqrt(np.asarray(fractions, dtype=float))
    inside = _st.multivariate_normal.cdf(
        bounds, cov=_look_correlation(fractions), abseps=1e-12, releps=1e-12, **_rng_kwargs(0)
    )
    return float(1.0 - inside)


def obrien_fleming(
    alpha: float, fractions: Sequence[float], alternative: Alternative = "less"
) -> tuple[float, ...]:
    """Nominal levels of an O'Brien-Fleming group-sequential design, one per look.

    The looks are at information ``fractions`` ``t_1 < ... < t_K = 1``; look ``k`` rejects when its
    one-sided z exceeds ``C / sqrt(t_k)``, with ``C`` chosen so that the chance of any rejection under
    H0 is ``alpha`` (the looks' z are jointly normal, correlation ``sqrt(t_i / t_j)``:
    ``scipy.stats.multivariate_normal``). Look ``k``'s nominal level is ``1 - Phi(C / sqrt(t_k))``:
    the p-value a test at that look must fall below. Two-sided: symmetric bounds, ``alpha / 2`` per
    side, so the levels are twice the one-sided ones at ``alpha / 2``. One look is ``(alpha,)``.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    _check_fractions(fractions)
    if alternative == "two-sided":
        return tuple(2.0 * level for level in _one_sided_levels(alpha / 2.0, tuple(fractions)))
    return _one_sided_levels(alpha, tuple(fractions))


@functools.lru_cache(maxsize=256)
def _one_sided_levels(alpha: float, fractions: tuple[float, ...]) -> tuple[float, ...]:
    from scipy import special as _special
    from scipy.optimize import brentq

    final = float(brentq(lambda c: _crossing(c, fractions) - alpha, -10.0, 40.0, xtol=1e-13))
    return tuple(float(_special.ndtr(-final / math.sqrt(t))) for t in fractions)


def sequential_p(p: float, look: int, fractions: Sequence[float], alternative: Alternative = "less") -> float:
    """The p-value ``p`` of look ``look`` (1-based) as an overall level of the O'Brien-Fleming design:
    the ``alpha`` whose nominal level at that look is ``p`` (the inverse of :func:`obrien_fleming`),
    so ``sequential_p(p, k, t) < alpha`` exactly when ``p < obrien_fleming(alpha, t)[k - 1]``.

    It is a valid p-value of the design (its chance of falling below ``alpha`` under H0 is at most
    ``alpha``, whatever the look), so Holm and Bonferroni apply to it across axes.
    """
    from scipy import special as _special

    _check_fractions(fractions)
    if not 1 <= look <= len(fractions):
        raise ValueError(f"look must be in 1..{len(fractions)}, got {look!r}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p!r}")
    if alternative == "two-sided":
        return min(1.0, 2.0 * sequential_p(p / 2.0, look, fractions, "less"))
    if p in (0.0, 1.0):
        return p
    final = float(-_special.ndtri(p)) * math.sqrt(fractions[look - 1])
    return min(1.0, max(0.0, _crossing(final, fractions)))
