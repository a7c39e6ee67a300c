"""Tests for pytest_aligngate.gate.stats, checked against scipy and hand-computed values."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats as st

from pytest_aligngate.config.schema import AxisThresholds
from pytest_aligngate.gate.decide import rule_for
from pytest_aligngate.gate.multiplicity import holm
from pytest_aligngate.gate.stats import (
    MIN_PROMPTS,
    RANK_ARE,
    Comparison,
    GateRule,
    apply_correction,
    cohens_d,
    compare,
    min_detectable_effect,
    per_prompt_means,
    verdict,
)


def make_rule(**overrides: object) -> GateRule:
    """A rule with the thresholds these tests were written against (alpha 0.05, floor 0.30)."""
    settings: dict[str, object] = {
        "alpha": 0.05,
        "effect_floor": 0.30,
        "test": "mannwhitneyu",
        "alternative": "two-sided",
        **overrides,
    }
    return GateRule(**settings)  # type: ignore[arg-type]


FAST = make_rule(bootstrap_resamples=200)
FAST_WILCOXON = make_rule(test="wilcoxon", bootstrap_resamples=200)

# 14 prompts with ties (exact p: at most EXACT_LIMIT observations).
BASE = [0.9, 0.85, 1.0, 0.7, 0.95, 0.8, 0.9, 1.0, 0.75, 0.6, 0.95, 0.85, 0.5, 0.8]
CAND = [0.6, 0.8, 0.9, 0.5, 0.7, 0.75, 0.65, 0.95, 0.4, 0.55, 0.9, 0.7, 0.55, 0.7]
# Above EXACT_LIMIT: scipy's normal approximation with tie correction.
BIG_BASE, BIG_CAND = BASE * 5, CAND * 5
EXACT = st.PermutationMethod(n_resamples=np.inf)


# --- p-values: exactly scipy's -------------------------------------------------------------


@pytest.mark.parametrize("alternative", ["two-sided", "less"])
def test_mannwhitneyu_p_matches_scipy(alternative: str) -> None:
    rule = make_rule(alternative=alternative, bootstrap_resamples=0)  # type: ignore[arg-type]
    got = compare(BIG_BASE, BIG_CAND, rule)
    want = st.mannwhitneyu(BIG_CAND, BIG_BASE, alternative=alternative).pvalue
    assert got.p_value == pytest.approx(want, rel=1e-12)
    assert got.test == "mannwhitneyu" and got.alternative == alternative
    assert got.p_method is not None and got.p_method.startswith("normal approximation")


@pytest.mark.parametrize("alternative", ["two-sided", "less"])
def test_mannwhitneyu_p_is_scipys_exact_permutation_p_on_small_tied_data(alternative: str) -> None:
    base, cand = [0.9, 0.8, 0.8, 0.5, 1.0], [0.5, 0.8, 0.6, 0.5, 0.9, 0.6]
    got = compare(base, cand, make_rule(alternative=alternative, bootstrap_resamples=0))  # type: ignore[arg-type]
    want = st.mannwhitneyu(cand, base, alternative=alternative, method=EXACT).pvalue
    assert got.p_value == pytest.approx(want, rel=1e-12)
    assert got.p_method is not None and got.p_method.startswith("exact")


def test_mannwhitneyu_p_matches_scipy_small_exact_and_unequal_n() -> None:
    base, cand = [0.11, 0.52, 0.33, 0.94, 0.25], [0.07, 0.18, 0.49, 0.02, 0.31, 0.44, 0.6]
    got = compare(base, cand, make_rule(bootstrap_resamples=0))
    assert got.p_value == pytest.approx(st.mannwhitneyu(cand, base, method="exact").pvalue, rel=1e-12)
    assert (got.n_base, got.n_candidate) == (5, 7)


@pytest.mark.parametrize("alternative", ["two-sided", "less"])
def test_wilcoxon_p_matches_scipy(alternative: str) -> None:
    rule = make_rule(test="wilcoxon", alternative=alternative, bootstrap_resamples=0)  # type: ignore[arg-type]
    got = compare(BIG_BASE, BIG_CAND, rule, paired=True)
    diffs = np.round(np.subtract(BIG_CAND, BIG_BASE), 12)
    want = st.wilcoxon(diffs, alternative=alternative, method="asymptotic").pvalue
    assert got.p_value == pytest.approx(want, rel=1e-12)


def test_wilcoxon_p_matches_scipy_small_with_ties() -> None:
    base, cand = [0.9, 0.8, 1.0, 0.7, 0.6, 0.9], [0.8, 0.7, 0.9, 0.7, 0.4, 0.95]
    got = compare(base, cand, make_rule(test="wilcoxon", bootstrap_resamples=0), paired=True)
    diffs = np.round(np.subtract(cand, base), 12)
    want = st.wilcoxon(diffs[diffs != 0], method=EXACT).pvalue
    assert got.p_value == pytest.approx(want, rel=1e-12)


def test_wilcoxon_exact_when_few_differences_are_nonzero() -> None:
    """6 of 50 prompts drop 1 -> 0: the exact conditional p is 1/64, not the normal 0.0072."""
    base, cand = [1.0] * 50, [0.0] * 6 + [1.0] * 44
    rule = make_rule(test="wilcoxon", alternative="less", bootstrap_resamples=0)
    got = compare(base, cand, rule, paired=True)
    assert got.p_value == pytest.approx(1 / 64, rel=1e-12)
    assert got.p_method is not None and "2^6" in got.p_method


def test_wilcoxon_p_matches_scipy_exact_without_ties() -> None:
    base = [0.5, 0.6, 0.7, 0.8, 0.9, 0.4, 0.3]
    cand = [0.41, 0.58, 0.53, 0.84, 0.62, 0.33, 0.19]
    got = compare(
        base, cand, make_rule(test="wilcoxon", alternative="less", bootstrap_resamples=0), paired=True
    )
    want = st.wilcoxon(np.subtract(cand, base), alternative="less").pvalue
    assert got.p_value == want


def test_float_noise_in_differences_still_ties() -> None:
    # 0.35-0.30 and 0.40-0.35 differ in binary floating point; they must tie as 0.05s.
    base = [0.30, 0.35, 0.50, 0.10, 0.70, 0.20]
    cand = [0.35, 0.40, 0.45, 0.15, 0.60, 0.30]
    got = compare(base, cand, make_rule(test="wilcoxon", bootstrap_resamples=0), paired=True)
    clean = [0.05, 0.05, -0.05, 0.05, -0.10, 0.10]
    assert got.p_value == pytest.approx(st.wilcoxon(clean).pvalue, abs=1e-12)


# --- Cohen's d ----------------------------------------------------------------------------


def test_cohens_d_hand_value() -> None:
    assert cohens_d([1, 2, 3, 4, 5], [2, 3, 4, 5, 6]) == pytest.approx(1 / math.sqrt(2.5))
    assert cohens_d([2, 3, 4, 5, 6], [1, 2, 3, 4, 5]) == pytest.approx(-1 / math.sqrt(2.5))


def test_cohens_d_pooled_with_unequal_n() -> None:
    base, cand = [0.0, 1.0, 2.0], [1.0, 3.0, 5.0, 7.0]
    # var(base)=1 (df 2), var(cand)=20/3 (df 3): pooled = (2*1 + 3*20/3)/5 = 22/5
    assert cohens_d(base, cand) == pytest.approx((4.0 - 1.0) / math.sqrt(22 / 5))


def test_cohens_d_zero_spread() -> None:
    assert cohens_d([0.7] * 5, [0.7] * 5) == 0.0
    assert cohens_d([0.7] * 5, [0.2] * 5) == -math.inf
    assert cohens_d([0.2] * 5, [0.7] * 5) == math.inf


def test_cohens_d_needs_two_per_side() -> None:
    with pytest.raises(ValueError):
        cohens_d([1.0], [1.0, 2.0])


def test_compare_reports_means_and_d() -> None:
    got = compare([1, 2, 3, 4, 5], [2, 3, 4, 5, 6], FAST)
    assert got.mean_base == 3.0 and got.mean_candidate == 4.0 and got.mean_diff == 1.0
    assert got.effect_size == pytest.approx(0.632456, abs=1e-6)


def test_infinite_d_fails_and_serialises() -> None:
    got = compare([0.9] * 8, [0.2] * 8, FAST)
    assert got.effect_size == -math.inf and got.status == "fail"
    as_dict = got.as_dict()
    assert as_dict["effect_size"] == "-inf"
    json.dumps(as_dict, allow_nan=False)


# --- verdict ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("p", "d", "expected"),
    [
        (0.01, -0.5, "fail"),  # significant, large, worse
        (0.01, -0.1, "pass"),  # significant, small
        (0.01, 0.1, "pass"),
        (0.01, 0.5, "improved"),  # significant, large, better
        (0.20, -0.9, "pass"),  # not significant
        (0.05, -0.9, "pass"),  # p == alpha is not significant
        (0.01, -0.30, "pass"),  # |d| == floor is not large
        (0.01, -math.inf, "fail"),
        (None, -0.9, "insufficient"),
        (0.01, None, "insufficient"),
    ],
)
def test_verdict_truth_table(p: float | None, d: float | None, expected: str) -> None:
    assert verdict(p, d, make_rule()) == expected


def test_verdict_one_sided_never_improved() -> None:
    assert verdict(0.01, 0.9, make_rule(alternative="less")) == "pass"
    assert verdict(0.01, -0.9, make_rule(alternative="less")) == "fail"


# --- Holm ---------------------------------------------------------------------------------


def test_holm_hand_example() -> None:
    got = holm({"a": 0.01, "b": 0.04, "c": 0.03, "d": 0.005})
    assert list(got) == ["a", "b", "c", "d"]
    assert got == pytest.approx({"a": 0.03, "b": 0.06, "c": 0.06, "d": 0.02})


def test_holm_none_excluded_and_capped() -> None:
    got = holm({"a": 0.3, "skip": None, "b": 0.6})
    # family of 2: 0.3*2 = 0.6, max(0.6, 0.6*1) = 0.6
    assert got == pytest.approx({"a": 0.6, "skip": None, "b": 0.6})
    assert holm({"a": 0.7, "b": 0.8}) == {"a": 1.0, "b": 1.0}
    assert holm({}) == {}
    assert holm({"only": 0.02}) == {"only": 0.02}


def test_holm_rejects_invalid() -> None:
    with pytest.raises(ValueError):
        holm({"a": float("nan")})


def test_apply_correction_recomputes_status() -> None:
    rng = np.random.default_rng(3)
    base = np.clip(rng.normal(0.8, 0.1, 30), 0, 1)
    cmps = {
        "regressed": compare(base, base - 0.06 + rng.normal(0, 0.03, 30), FAST_WILCOXON, paired=True),
        "null1": compare(base, base + rng.normal(0, 0.03, 30), FAST_WILCOXON, paired=True),
        "tiny": compare(base[:3], base[:3], FAST_WILCOXON, paired=True),
    }
    assert cmps["regressed"].status == "fail"
    out = apply_correction(cmps, FAST_WILCOXON, "holm")
    expected = holm({k: c.p_value for k, c in cmps.items()})
    for k, c in out.items():
        assert c.p_adjusted == expected[k] and c.correction == "holm"
        assert c.p_value == cmps[k].p_value
        assert c.status == verdict(c.p_adjusted, c.effect_size, FAST_WILCOXON)
    assert out["tiny"].status == "insufficient"
    none = apply_correction(cmps, FAST_WILCOXON, "none")
    assert all(c.p_adjusted == c.p_value and c.status == cmps[k].status for k, c in none.items())


# --- bootstrap CIs ------------------------------------------------------------------------


@pytest.mark.parametrize(("rule", "paired"), [(FAST, False), (FAST, True), (FAST_WILCOXON, True)])
def test_cis_contain_estimate_and_are_deterministic(rule: GateRule, paired: bool) -> None:
    first = compare(BASE, CAND, rule, paired=paired)
    again = compare(BASE, CAND, rule, paired=paired)
    assert first.mean_diff_ci is not None and first.effect_size_ci is not None
    assert first.mean_diff is not None and first.effect_size is not None
    assert first.mean_diff_ci[0] <= first.mean_diff <= first.mean_diff_ci[1]
    assert first.effect_size_ci[0] <= first.effect_size <= first.effect_size_ci[1]
    assert first == again
    other_seed = compare(
        BASE, CAND, make_rule(test=rule.test, bootstrap_resamples=200, seed=1), paired=paired
    )
    assert other_seed.mean_diff_ci != first.mean_diff_ci


def test_paired_bootstrap_is_narrower_for_correlated_scores() -> None:
    rng = np.random.default_rng(0)
    base = rng.uniform(0.2, 1.0, 40)
    cand = base - 0.05 + rng.normal(0, 0.02, 40)
    unpaired = compare(base, cand, FAST).mean_diff_ci
    paired = compare(base, cand, FAST, paired=True).mean_diff_ci
    assert unpaired is not None and paired is not None
    assert paired[1] - paired[0] < (unpaired[1] - unpaired[0]) / 3


def test_bootstrap_can_be_disabled() -> None:
    got = compare(BASE, CAND, make_rule(bootstrap_resamples=0))
    assert got.mean_diff_ci is None and got.effect_size_ci is None and got.p_value is not None


# --- minimum detectable effect ------------------------------------------------------------


def test_min_detectable_effect_formula() -> None:
    z = st.norm.ppf(0.975) + st.norm.ppf(0.8)
    assert min_detectable_effect(20, 20, 0.05) == pytest.approx(z * math.sqrt(0.1 / RANK_ARE))
    z1 = st.norm.ppf(0.95) + st.norm.ppf(0.8)
    got = min_detectable_effect(20, 20, 0.05, test="wilcoxon", alternative="less")
    assert got == pytest.approx(z1 / math.sqrt(20 * RANK_ARE))


def test_min_detectable_effect_shrinks_with_n() -> None:
    for test in ("mannwhitneyu", "wilcoxon"):
        mdes = [min_detectable_effect(n, n, 0.05, test=test) for n in (5, 20, 50, 100, 1000)]  # type: ignore[arg-type]
        assert mdes == sorted(mdes, reverse=True) and len(set(mdes)) == len(mdes)
    assert min_detectable_effect(50, 50, 0.05, alternative="less") < min_detectable_effect(50, 50, 0.05)
    rng = np.random.default_rng(1)
    scores = rng.uniform(0, 1, 200)
    small = compare(scores[:20], scores[100:120], make_rule(bootstrap_resamples=0))
    large = compare(scores[:100], scores[100:], make_rule(bootstrap_resamples=0))
    assert small.min_detectable_effect > large.min_detectable_effect  # type: ignore[operator]


def test_paired_mde_in_pooled_units() -> None:
    base = np.array(BASE)
    cand = np.array(CAND)
    got = compare(base, cand, make_rule(test="wilcoxon", bootstrap_resamples=0), paired=True)
    dz = min_detectable_effect(14, 14, 0.05, test="wilcoxon")
    pooled = math.sqrt((base.var(ddof=1) + cand.var(ddof=1)) / 2)
    assert got.min_detectable_effect == pytest.approx(dz * np.std(cand - base, ddof=1) / pooled)


# --- edge cases ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("test", "paired"), [("mannwhitneyu", False), ("mannwhitneyu", True), ("wilcoxon", True)]
)
def test_all_equal_scores(test: str, paired: bool) -> None:
    rule = make_rule(test=test, bootstrap_resamples=200)  # type: ignore[arg-type]
    got = compare([0.7] * 10, [0.7] * 10, rule, paired=paired)
    assert got.p_value == 1.0 and got.effect_size == 0.0 and got.status == "pass"
    assert got.mean_diff_ci == (0.0, 0.0)


def test_wilcoxon_all_zero_differences_with_varied_scores() -> None:
    scores = [0.1, 0.5, 0.9, 1.0, 0.0, 0.3]
    got = compare(scores, list(scores), FAST_WILCOXON, paired=True)
    assert got.p_value == 1.0 and got.status == "pass" and got.effect_size == 0.0


def test_heavy_ties() -> None:
    base = [1.0] * 18 + [0.0] * 2
    cand = [1.0] * 15 + [0.0] * 5
    got = compare(base, cand, FAST)
    # On 0/1 scores the exact conditional rank-sum test is Fisher's exact test of the 2x2 table.
    assert got.p_value == pytest.approx(st.fisher_exact([[18, 2], [15, 5]]).pvalue, rel=1e-12)
    assert got.status == "pass" and got.mean_diff_ci is not None
    paired = compare(base, cand, FAST_WILCOXON, paired=True)
    assert paired.p_value == pytest.approx(2 / 2**3)  # three prompts 1 -> 0: both tails of 2^3 flips
    mostly_const = compare([1.0] * 9 + [0.95], [1.0] * 10, FAST)
    assert mostly_const.status == "pass" and mostly_const.effect_size_ci is not None


def test_tiny_n_is_insufficient() -> None:
    n = MIN_PROMPTS - 1
    got = compare([0.9] * 10, [0.1] * n, FAST)
    assert got.status == "insufficient" and got.p_value is None
    assert got.mean_diff_ci is None and got.min_detectable_effect is None
    assert got.mean_diff == pytest.approx(-0.8)
    empty = compare([], [], FAST)
    assert empty.status == "insufficient" and empty.mean_base is None and empty.effect_size is None
    single = compare([0.5], [0.4], FAST_WILCOXON, paired=True)
    assert single.status == "insufficient" and single.effect_size is None
    json.dumps(empty.as_dict())
    assert compare([0.5] * MIN_PROMPTS, [0.5] * MIN_PROMPTS, FAST).status == "pass"


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_rejected(bad: float) -> None:
    with pytest.raises(ValueError):
        compare([0.5, bad, 0.4, 0.3, 0.2], [0.5] * 5, FAST)
    with pytest.raises(ValueError):
        cohens_d([0.5, 0.4], [bad, 0.1])
    with pytest.raises(ValueError):
        per_prompt_means({"p1": [0.5, bad]})


def test_wilcoxon_requires_paired_equal_length() -> None:
    with pytest.raises(ValueError, match="paired"):
        compare(BASE, CAND, FAST_WILCOXON)
    with pytest.raises(ValueError, match="equal lengths"):
        compare(BASE, CAND[:-1], FAST, paired=True)


def test_gate_rule_validation() -> None:
    with pytest.raises(ValueError):
        make_rule(alpha=0.0)
    with pytest.raises(ValueError):
        make_rule(test="kruskal")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        make_rule(alternative="greater")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        make_rule(bootstrap_resamples=-1)
    with pytest.raises(ValueError):
        apply_correction({}, make_rule(), "bonferroni")  # type: ignore[arg-type]


def test_the_rule_takes_its_settings_from_the_configuration_only() -> None:
    with pytest.raises(TypeError):
        GateRule()  # type: ignore[call-arg]
    built = rule_for(AxisThresholds())
    assert (built.alpha, built.effect_floor, built.test, built.alternative) == (
        0.05,
        0.2,
        "mannwhitneyu",
        "two-sided",
    )


# --- per-prompt means / serialisation ---------------------------------------------------------


def test_per_prompt_means() -> None:
    got = per_prompt_means({"p1": [1.0, 0.5, 0.0], "p2": [0.8], "p3": [0.25, 0.75]})
    assert got == pytest.approx({"p1": 0.5, "p2": 0.8, "p3": 0.5})
    with pytest.raises(ValueError):
        per_prompt_means({"p1": []})


def test_as_dict_is_json_friendly() -> None:
    got = compare(BASE, CAND, FAST)
    as_dict = got.as_dict()
    assert isinstance(as_dict["mean_diff_ci"], list) and isinstance(as_dict["effect_size_ci"], list)
    assert set(as_dict) >= {f for f in Comparison.__dataclass_fields__}
    assert json.loads(json.dumps(as_dict, allow_nan=False)) == as_dict


@pytest.mark.parametrize("alternative", ["two-sided", "less"])
def test_paired_t_test_is_scipys_ttest_rel(alternative: str) -> None:
    rule = make_rule(test="ttest", alternative=alternative, bootstrap_resamples=0)  # type: ignore[arg-type]
    got = compare(BASE, CAND, rule, paired=True)
    want = st.ttest_rel(CAND, BASE, alternative=alternative).pvalue
    assert got.p_value == pytest.approx(want, rel=1e-12)
    assert got.p_method == f"paired t-test, {len(BASE) - 1} degrees of freedom"
    assert got.min_detectable_effect is not None


def test_paired_t_test_needs_pairs_and_handles_zero_spread() -> None:
    rule = make_rule(test="ttest", alternative="less", bootstrap_resamples=0)
    with pytest.raises(ValueError, match="requires paired=True"):
        compare(BASE, CAND, rule)
    same = compare([0.5] * 6, [0.5] * 6, rule, paired=True)
    shifted = compare([0.9] * 6, [0.8] * 6, rule, paired=True)
    better = compare([0.8] * 6, [0.9] * 6, rule, paired=True)
    assert (same.p_value, shifted.p_value, better.p_value) == (1.0, 0.0, 1.0)


def test_ttest_mde_is_the_normal_approximation_without_the_rank_efficiency() -> None:
    z = st.norm.ppf(0.95) + st.norm.ppf(0.8)
    assert min_detectable_effect(50, 50, 0.05, test="ttest", alternative="less") == pytest.approx(z / 50**0.5)


def test_permutation_test_is_exact_over_every_sign_flip_when_few() -> None:
    """6 prompts, all 1 -> 0: only the identity flip is as extreme, p = 1/64 one-sided."""
    rule = make_rule(test="permutation", alternative="less", bootstrap_resamples=0)
    got = compare([1.0] * 6, [0.0] * 6, rule, paired=True)
    assert (
        got.p_value == pytest.approx(1 / 64)
        and got.p_method is not None
        and "all 64 sign flips" in got.p_method
    )
    mixed = compare(BASE[:10], CAND[:10], rule, paired=True)
    want = st.permutation_test(
        (np.array(BASE[:10]), np.array(CAND[:10])),
        lambda b, c, axis: np.mean(c, axis=axis) - np.mean(b, axis=axis),
        permutation_type="samples", vectorized=True, n_resamples=np.inf, alternative="less",
    ).pvalue  # fmt: skip
    assert mixed.p_value == pytest.approx(want, rel=1e-12)
