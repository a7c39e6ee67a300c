"""Family-wise false alarms, power and certification of the gate's paired settings, in three units.

    python benchmarks/stats_power.py [--n 50] [--null-runs 1000] [--power-runs 400]
                                     [--permutation-runs 300] [--workers 1]

About 3 minutes on one core with the defaults (seeded: the figures are reproducible); more runs
shrink the Monte Carlo errors printed beside them. It prints tables and whether the goal of issue 18
is met; it asserts nothing. ``certification.py`` and ``stats_presets.py`` share its model.

Simulation model (one axis = ``n`` probe prompts, answered by both models):

* Prompt ``i`` has a latent aligned propensity on the logit scale, ``eta_i ~ N(1.5, 1.0)``, shared
  by both models; the candidate's is ``eta_i - delta`` (``delta = 0``: an unchanged axis).
* Each model samples ``k`` answers per prompt (the base ``k_base``); an answer is aligned with
  probability ``expit(eta)`` and the judge scores it ``N(0.90, 0.08)`` if aligned, ``N(0.20, 0.15)``
  if not, clipped to 0..1 and rounded to 0.05 (bounded, bimodal, heavily tied scores). The samples of
  a prompt are averaged before testing, as the gate does.

Settings (paired by prompt, one-sided ``less``, alpha 0.05, Holm over 4 axes): Wilcoxon with k = 3
(the recommended setting), the paired t and the sign-flip permutation test with k = 3, the paired t
with the base asked k = 20 times (reused from the cache) and the candidate 3, and the two-stage design
(``probes.sequential``: ``2n`` prompts planned, the first ``n`` asked, the rest only when the first
look neither failed nor certified at ``max_drop`` 0.10; O'Brien-Fleming levels), with Wilcoxon and
k = 3, and with the paired t and the base's k = 20.

Columns:

* ``FWER``: share of runs in which any of 4 unchanged axes is significantly worse after Holm (the
  gate's failures are a subset: they also need the effect floor or ``max_drop``).
* ``power@0.07``: share of runs in which one axis with a true mean drop of 0.07, beside 3 unchanged
  axes, is significantly worse after Holm. ``d80``: the true effect found significant with 80% power
  (interpolated on a grid of drops, common random numbers), as Cohen's d of the per-prompt means
  (pooled SD), as ``d_z`` (mean over SD of the paired differences) and as the mean score drop.
* ``cert@0.10`` / ``cert@0.075``: share of unchanged axes certified (one-sided 95% upper bound of the
  drop below ``max_drop``; in the two-stage design at its look's level, at 0.10 only).
* ``prompts``: mean prompts asked per unchanged axis.

The p-values are the gate's (``stats.compare``: exact conditional Wilcoxon, Student's t); the
permutation test is the gate's ``scipy.stats.permutation_test`` call (9999 random sign flips) run on
all simulated axes at once, with fewer runs by default because it is slow.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import math
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pytest_aligngate.gate.stats import (
    GateRule,
    Test,
    compare,
    drop_bound,
    holm,
    obrien_fleming,
    sequential_p,
)

SEED = 20261202
AXES = 4
ALPHA = 0.05
ETA_MEAN, ETA_SD = 1.5, 1.0
ALIGNED = (0.90, 0.08)
MISALIGNED = (0.20, 0.15)
POPULATION_PROMPTS = 100_000
TARGET_POWER = 0.80
GOAL_DROP = 0.07
DROPS = (0.05, GOAL_DROP, 0.09, 0.11, 0.13, 0.15)
MAX_DROPS = (0.10, 0.075)
SEQUENTIAL_MAX_DROP = 0.10
PERMUTATIONS = 9999


# --- the model ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Noise:
    """Random draws for axes of prompts, reused across shifts (common random numbers)."""

    eta: np.ndarray  # (..., n)
    u_base: np.ndarray  # (..., n, k_base)
    z_base: np.ndarray
    u_cand: np.ndarray  # (..., n, k)
    z_cand: np.ndarray


def draw(rng: np.random.Generator, shape: tuple[int, ...], k: int, k_base: int | None = None) -> Noise:
    """Latent propensities and answer/judge noise; the base samples ``k_base`` (default ``k``) times."""
    kb = k if k_base is None else k_base
    return Noise(
        eta=rng.normal(ETA_MEAN, ETA_SD, shape),
        u_base=rng.random((*shape, kb)),
        z_base=rng.standard_normal((*shape, kb)),
        u_cand=rng.random((*shape, k)),
        z_cand=rng.standard_normal((*shape, k)),
    )


def judge_scores(eta: np.ndarray, u: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Per-prompt mean judge score: Bernoulli alignment, noisy judge, clip, round to 0.05."""
    p_aligned = 1.0 / (1.0 + np.exp(-eta))[..., None]
    value = np.where(u < p_aligned, ALIGNED[0] + ALIGNED[1] * z, MISALIGNED[0] + MISALIGNED[1] * z)
    means: np.ndarray = (np.round(np.clip(value, 0.0, 1.0) * 20.0) / 20.0).mean(axis=-1)
    return means


def scores(noise: Noise, delta: float) -> tuple[np.ndarray, np.ndarray]:
    """Base and candidate per-prompt scores with candidate logit shift ``-delta``."""
    return (
        judge_scores(noise.eta, noise.u_base, noise.z_base),
        judge_scores(noise.eta - delta, noise.u_cand, noise.z_cand),
    )


@dataclass(frozen=True)
class Units:
    """A true effect in three units: d (pooled SD of per-prompt means), d_z (SD of the paired
    differences) and the mean score drop (base minus candidate)."""

    d: float
    dz: float
    drop: float


@functools.lru_cache(maxsize=8)
def _population(k: int, k_base: int | None) -> Noise:
    return draw(np.random.default_rng([SEED, k, k_base or k]), (POPULATION_PROMPTS,), k, k_base)


@functools.lru_cache(maxsize=512)
def population_effect(k: int, delta: float, k_base: int | None = None) -> Units:
    """The population effect of a logit shift ``delta`` (100k simulated prompts, drawn once per k)."""
    base, cand = scores(_population(k, k_base), delta)
    diff = cand - base
    pooled = math.sqrt((base.var(ddof=1) + cand.var(ddof=1)) / 2.0)
    return Units(
        d=float(-diff.mean() / pooled), dz=float(-diff.mean() / diff.std(ddof=1)), drop=float(-diff.mean())
    )


@functools.lru_cache(maxsize=512)
def delta_for_drop(drop: float, k: int, k_base: int | None = None) -> float:
    """The logit shift whose population mean score drop is ``drop`` (bisection)."""
    low, high = 0.0, 6.0
    for _ in range(24):
        mid = (low + high) / 2
        low, high = (mid, high) if population_effect(k, mid, k_base).drop < drop else (low, mid)
    return (low + high) / 2


# --- the settings -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    name: str
    test: Test
    k: int = 3
    k_base: int = 3
    sequential: bool = False


SETTINGS = (
    Setting("wilcoxon k=3 (recommended)", "wilcoxon"),
    Setting("ttest k=3", "ttest"),
    Setting("permutation k=3", "permutation"),
    Setting("ttest base k=20, cand k=3", "ttest", k_base=20),
    Setting("two-stage wilcoxon k=3", "wilcoxon", sequential=True),
    Setting("two-stage ttest base k=20", "ttest", k_base=20, sequential=True),
)


def p_values(test: Test, base: np.ndarray, cand: np.ndarray) -> np.ndarray:
    """One-sided p-values of each simulated axis (rows), as the gate computes them."""
    if test == "permutation":
        result = st.permutation_test(
            (base, cand),
            lambda b, c, axis=-1: np.mean(c, axis=axis) - np.mean(b, axis=axis),
            permutation_type="samples",
            vectorized=True,
            n_resamples=PERMUTATIONS,
            alternative="less",
            axis=-1,
            batch=100,
            rng=np.random.default_rng(SEED),
        )
        return np.asarray(result.pvalue, dtype=float)
    rule = GateRule(alpha=ALPHA, effect_floor=0.0, test=test, alternative="less", bootstrap_resamples=0)
    return np.array(
        [compare(list(b), list(c), rule, paired=True).p_value for b, c in zip(base, cand, strict=True)]
    )


def holm_target(target: float, others: np.ndarray) -> float:
    """The Holm-adjusted p of ``target`` beside the other axes' p-values."""
    family = {"target": target} | {f"null{i}": float(p) for i, p in enumerate(others)}
    adjusted = holm(family)["target"]
    assert adjusted is not None
    return adjusted


def family_wise(p: np.ndarray) -> float:
    """Share of runs (rows of 4 axes' p-values) with any Holm-adjusted p below alpha."""
    adjusted = [holm({str(j): float(x) for j, x in enumerate(run)}).values() for run in p]
    return float(np.mean([min(a for a in run if a is not None) < ALPHA for run in adjusted]))


def certified(base: np.ndarray, cand: np.ndarray, max_drop: float, alpha: float = ALPHA) -> bool:
    return drop_bound(list(base), list(cand), max_drop, alpha, paired=True).certified


@dataclass(frozen=True)
class Result:
    name: str
    runs: int
    power_runs: int
    fwer: float
    power_goal: float
    d80: Units | None
    certified: dict[float, float]
    prompts: float


def fixed(setting: Setting, n: int, runs: int, power_runs: int) -> Result:
    """One fixed-n setting: null runs of 4 axes, then one shifted axis per power run at each drop."""
    rng = np.random.default_rng([SEED, SETTINGS.index(setting)])
    base, cand = scores(draw(rng, (runs, AXES, n), setting.k, setting.k_base), 0.0)
    null_p = p_values(setting.test, base.reshape(-1, n), cand.reshape(-1, n)).reshape(runs, AXES)
    fwer = family_wise(null_p)
    cert = {
        m: float(
            np.mean(
                [certified(b, c, m) for b, c in zip(base.reshape(-1, n), cand.reshape(-1, n), strict=True)]
            )
        )
        for m in MAX_DROPS
    }
    noise = draw(rng, (power_runs, n), setting.k, setting.k_base)
    power = {}
    for drop in DROPS:
        b, c = scores(noise, delta_for_drop(drop, setting.k, setting.k_base))
        target = p_values(setting.test, b, c)
        power[drop] = float(np.mean([holm_target(p, null_p[s, 1:]) < ALPHA for s, p in enumerate(target)]))
    return Result(setting.name, runs, power_runs, fwer, power[GOAL_DROP], d80(power, setting), cert, float(n))


def d80(power: dict[float, float], setting: Setting) -> Units | None:
    """The effect at 80% power, interpolated between the grid's drops; None when off the grid."""
    drops = sorted(power)
    for low, high in itertools.pairwise(drops):
        if power[low] < TARGET_POWER <= power[high]:
            drop = low + (TARGET_POWER - power[low]) / (power[high] - power[low]) * (high - low)
            return population_effect(
                setting.k, delta_for_drop(drop, setting.k, setting.k_base), setting.k_base
            )
    return None


def two_stage_axis(
    test: Test, base: np.ndarray, cand: np.ndarray, share: tuple[float, ...]
) -> tuple[float, bool, int]:
    """One axis of the two-stage design: (design p, certified, prompts asked), as the gate decides it."""
    half = base.size // 2
    fractions = (half / base.size, 1.0)
    certify = obrien_fleming(ALPHA, fractions)
    b1, c1 = base[:half], cand[:half]
    (p1,) = p_values(test, b1[None], c1[None])
    cert1 = certified(b1, c1, SEQUENTIAL_MAX_DROP, certify[0])
    failed1 = p1 < share[0] and float(np.mean(b1 - c1)) > SEQUENTIAL_MAX_DROP
    if failed1 or cert1:
        return sequential_p(float(p1), 1, fractions), cert1, half
    (p2,) = p_values(test, base[None], cand[None])
    cert2 = certified(base, cand, SEQUENTIAL_MAX_DROP, certify[1])
    return sequential_p(float(p2), 2, fractions), cert2, base.size


def two_stage(setting: Setting, n: int, runs: int, power_runs: int) -> Result:
    """The two-stage design on ``2n`` planned prompts: null runs of 4 axes, power at the goal's drop."""
    rng = np.random.default_rng([SEED, SETTINGS.index(setting)])
    share = obrien_fleming(ALPHA / AXES, (0.5, 1.0))  # the decision-time Bonferroni share of holm
    base, cand = scores(draw(rng, (runs, AXES, 2 * n), setting.k, setting.k_base), 0.0)
    axes = [
        [two_stage_axis(setting.test, base[r, j], cand[r, j], share) for j in range(AXES)]
        for r in range(runs)
    ]
    design_p = np.array([[p for p, _, _ in run] for run in axes])
    fwer = family_wise(design_p)
    cert = float(np.mean([c for run in axes for _, c, _ in run]))
    prompts = float(np.mean([asked for run in axes for _, _, asked in run]))
    shift = delta_for_drop(GOAL_DROP, setting.k, setting.k_base)
    b, c = scores(draw(rng, (power_runs, 2 * n), setting.k, setting.k_base), shift)
    hits = [
        holm_target(two_stage_axis(setting.test, b[s], c[s], share)[0], design_p[s, 1:]) < ALPHA
        for s in range(power_runs)
    ]
    return Result(setting.name, runs, power_runs, fwer, float(np.mean(hits)), None, {0.10: cert}, prompts)


def run(index: int, n: int, runs: int, power_runs: int, permutation_runs: int) -> Result:
    setting = SETTINGS[index]
    if setting.sequential:
        return two_stage(setting, n, runs, power_runs)
    if setting.test == "permutation":
        return fixed(setting, n, permutation_runs, permutation_runs)
    return fixed(setting, n, runs, power_runs)


# --- the tables ---------------------------------------------------------------------------------


def _rate(p: float, runs: int) -> str:
    return f"{p:6.1%} +-{math.sqrt(p * (1 - p) / runs):.1%}"


def print_tables(results: list[Result], n: int) -> None:
    print(f"n = {n} prompts per axis (two-stage: {2 * n} planned), {AXES} axes, alpha {ALPHA}, holm, less")
    header = (
        f"{'setting':<28} {'runs':>5} {'FWER':>13} {'power@0.07':>13} "
        f"{'d80: d':>7} {'d_z':>5} {'drop':>6} {'cert@0.10':>9} {'cert@0.075':>10} {'prompts':>7}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        units = "  > grid" if r.d80 is None else f"{r.d80.d:7.2f} {r.d80.dz:5.2f} {r.d80.drop:6.3f}"
        if r.d80 is None and r.name.startswith("two-stage"):
            units = f"{'-':>7} {'-':>5} {'-':>6}"
        cert = "".join(
            f" {r.certified[m]:>{w}.1%}" if m in r.certified else f" {'-':>{w}}"
            for m, w in ((0.10, 9), (0.075, 10))
        )
        print(
            f"{r.name:<28} {r.runs:>5} {_rate(r.fwer, r.runs):>13} {_rate(r.power_goal, r.power_runs):>13} "
            f"{units}{cert} {r.prompts:>7.1f}"
        )
    recommended = results[0]
    checks = {
        "FWER <= 5%": recommended.fwer <= 0.05,
        f"80% power at a mean drop of {GOAL_DROP}": recommended.power_goal >= TARGET_POWER,
        ">= 80% of unchanged axes certified at max_drop 0.10": recommended.certified[0.10] >= 0.80,
    }
    print(f"goal (recommended setting, {n} prompts per axis):")
    for name, met in checks.items():
        print(f"  {name}: {'met' if met else 'NOT met'}")
    print(f"  goal met: {'yes' if all(checks.values()) else 'no'}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=50, help="Prompts per axis (default 50)")
    parser.add_argument("--null-runs", type=int, default=1000, help="Runs of 4 unchanged axes (default 1000)")
    parser.add_argument("--power-runs", type=int, default=400, help="Runs per drop for power (default 400)")
    parser.add_argument(
        "--permutation-runs", type=int, default=300, help="Null and power runs of the permutation test (300)"
    )
    parser.add_argument("--workers", type=int, default=1, help="Processes, one setting each (default 1)")
    args = parser.parse_args()
    start = time.perf_counter()
    jobs = [(i, args.n, args.null_runs, args.power_runs, args.permutation_runs) for i in range(len(SETTINGS))]
    if args.workers > 1:
        with ProcessPoolExecutor(max_workers=args.workers) as pool:
            results = list(pool.map(run, *zip(*jobs, strict=True)))
    else:
        results = [run(*job) for job in jobs]
    print_tables(results, args.n)
    print(f"elapsed {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
