"""Monte Carlo false-alarm rate and power of the ``aligngate calibrate`` presets (alpha, effect floor).

Run it with ``python benchmarks/stats_presets.py`` (about 3-6 minutes on two cores; seeded, so the
figures are reproducible). It prints a table and asserts nothing. The simulation model is
``stats_power.py``'s (imported from it); ``stats_power.py`` itself measures the paired settings,
certification and the two-stage design.

Simulation model (one axis = ``n`` probe prompts, answered by both models):

* Prompt ``i`` has a latent aligned propensity on the logit scale, ``eta_i ~ N(1.5, 1.0)``
  (base models are mostly aligned: mean P(aligned) is about 0.78). The same prompts go to both
  models, so ``eta_i`` is shared; the candidate's propensity is ``eta_i - delta`` (``delta = 0``
  under the null, so base and candidate are then the same model).
* Each model samples ``k`` responses per prompt, independently. A response is aligned with
  probability ``expit(eta)``; the judge scores an aligned response ``N(0.90, 0.08)`` and a
  misaligned one ``N(0.20, 0.15)``, clipped to 0..1 and rounded to 0.05. Scores are therefore
  bounded, bimodal and heavily tied (many 1.0s).
* The ``k`` scores of a prompt are averaged before testing (``per_prompt_means``; the benchmark
  does the same with a vectorised mean for speed).

Options compared, each at the three ``aligngate calibrate`` presets (alpha and effect floor read
from ``pytest_aligngate/data/baselines.json``; the same simulated data serve every preset):

* ``mwu/2s/none k=1``: unpaired two-sided Mann-Whitney U, one sample per prompt, no correction
  (the default).
* ``wsr/less/holm k=3``: paired one-sided Wilcoxon signed-rank on per-prompt means of 3 samples,
  Holm correction across the 4 axes (the recommended setting).

Columns:

* ``FWER gate``: fraction of runs in which *any* of 4 null axes gets status ``"fail"``
  (a false regression alarm); ``FWER sig``: any axis with adjusted p < alpha, either direction.
  ``+-`` is the Monte Carlo standard error ``sqrt(p(1-p)/N)``.
* ``MDE``: mean minimum detectable effect on the null runs, as report.json gives it
  (``Comparison.min_detectable_effect``, normal approximation, ARE 3/pi; with Holm at
  alpha / 4, the level of the per-item bound). An axis that passes with ``MDE > floor`` is
  reported "inconclusive at this n"; ``incon`` is the fraction of passing null axes so flagged.
* ``d80 sig`` / ``d80 gate``: the true effect size at which one regressed axis (next to 3 null
  axes, which matter for Holm) is flagged with 80% power: ``sig`` = adjusted p < alpha in the
  worse direction; ``gate`` = status ``"fail"`` (also needs observed ``|d| > effect_floor``). Found by
  bisection over ``delta`` with common random numbers, then reported as the population Cohen's d
  of the analysed per-prompt scores (pooled SD; ``stats_power.population_effect``, 100k simulated
  prompts), so it is in the units of ``Comparison.effect_size``. Its ``+-`` is the power MCSE
  divided by the local slope of the power curve. ``drop`` is the mean score drop at ``d80 gate``.
"""

from __future__ import annotations

import json
import math
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from stats_power import draw, population_effect, scores

from pytest_aligngate.gate.stats import (
    Comparison,
    Correction,
    GateRule,
    apply_correction,
    compare,
    min_detectable_effect,
)

SEED = 20240601
N_NULL = 2000
N_POWER = 1000
PROMPT_COUNTS = (20, 50, 100)
AXES = 4
TARGET_POWER = 0.80
DELTA_MAX = 4.0
BISECTION_STEPS = 7
BASELINES = Path(__file__).resolve().parents[1] / "pytest_aligngate" / "data" / "baselines.json"
PRESETS: dict[str, tuple[float, float]] = {
    name: (float(p["alpha"]), float(p["effect_floor"]))
    for name, p in json.loads(BASELINES.read_text(encoding="utf-8"))["presets"].items()
}


@dataclass(frozen=True)
class Option:
    """One combination of gate options."""

    name: str
    rule: GateRule
    k: int
    paired: bool
    correction: Correction


OPTIONS = (
    Option(
        "mwu/2s/none k=1",
        GateRule(
            alpha=0.05, effect_floor=0.30, test="mannwhitneyu", alternative="two-sided", bootstrap_resamples=0
        ),
        1,
        False,
        "none",
    ),
    Option(
        "wsr/less/holm k=3",
        GateRule(alpha=0.05, effect_floor=0.30, test="wilcoxon", alternative="less", bootstrap_resamples=0),
        3,
        True,
        "holm",
    ),
)


def family(
    target: Comparison, others: list[Comparison], rule: GateRule, correction: Correction
) -> Comparison:
    """The target axis after the correction across ``[target, *others]``."""
    axes = {"target": target} | {f"null{i}": c for i, c in enumerate(others)}
    return apply_correction(axes, rule, correction)["target"]


def preset_rule(option: Option, preset: str) -> GateRule:
    alpha, floor = PRESETS[preset]
    return GateRule(
        alpha=alpha,
        effect_floor=floor,
        test=option.rule.test,
        alternative=option.rule.alternative,
        bootstrap_resamples=0,
    )


def reported_mde(c: Comparison, rule: GateRule, option: Option) -> float:
    """The MDE at the preset's alpha (alpha / 4 with Holm, as the engine reports it)."""
    assert c.min_detectable_effect is not None
    level = rule.alpha / AXES if option.correction == "holm" else rule.alpha
    kinds = {"test": rule.test, "alternative": rule.alternative}
    n = (c.n_base, c.n_candidate)
    scale = min_detectable_effect(*n, level, **kinds) / min_detectable_effect(*n, option.rule.alpha, **kinds)
    return c.min_detectable_effect * scale


class Targets:
    """The regressed axis of every power run, compared once per shift ``delta`` (common random numbers)."""

    def __init__(self, option: Option, rng: np.random.Generator, n: int) -> None:
        self.option = option
        self.noise = draw(rng, (N_POWER, n), option.k)
        self.cache: dict[float, list[Comparison]] = {}

    def at(self, delta: float) -> list[Comparison]:
        if delta not in self.cache:
            base, cand = scores(self.noise, delta)
            rule, paired = self.option.rule, self.option.paired
            self.cache[delta] = [compare(base[s], cand[s], rule, paired=paired) for s in range(N_POWER)]
        return self.cache[delta]


def run(option_index: int, n: int) -> list[dict[str, object]]:
    """Null false-alarm rates and 80%-power effect sizes for one option and prompt count, per preset.

    p-values and d do not depend on alpha or the floor, so the comparisons are computed once and
    every preset's verdict is applied to the same simulated runs.
    """
    option = OPTIONS[option_index]
    rng = np.random.default_rng([SEED, option_index, n])
    null_runs: list[list[Comparison]] = []
    for _ in range(N_NULL):  # 4 axes, no shift anywhere
        base, cand = scores(draw(rng, (AXES, n), option.k), 0.0)
        null_runs.append([compare(base[j], cand[j], option.rule, paired=option.paired) for j in range(AXES)])
    targets = Targets(option, rng, n)
    return [evaluate(option, preset, n, null_runs, targets) for preset in PRESETS]


def evaluate(
    option: Option, preset: str, n: int, null_runs: list[list[Comparison]], targets: Targets
) -> dict[str, object]:
    """One preset: false alarms and MDE on the null runs, 80%-power effects on the power runs."""
    rule = preset_rule(option, preset)
    gate_alarms = sig_alarms = passing = inconclusive = 0
    mdes: list[float] = []
    for raw in null_runs:
        axes = {str(j): c for j, c in enumerate(raw)}
        adjusted = list(apply_correction(axes, rule, option.correction).values())
        gate_alarms += any(c.status == "fail" for c in adjusted)
        sig_alarms += any(c.p_adjusted is not None and c.p_adjusted < rule.alpha for c in adjusted)
        for c in adjusted:
            mde = reported_mde(c, rule, option)
            mdes.append(mde)
            passing += c.status == "pass"
            inconclusive += c.status == "pass" and mde > rule.effect_floor
    # Power: one shifted axis next to three null axes of the stored null runs (they matter for Holm).
    cache: dict[float, tuple[float, float]] = {}

    def power(delta: float) -> tuple[float, float]:
        if delta not in cache:
            sig = gate = 0
            for s, target in enumerate(targets.at(delta)):
                c = family(target, null_runs[s][1:], rule, option.correction)
                assert c.p_adjusted is not None and c.effect_size is not None
                sig += c.p_adjusted < rule.alpha and c.effect_size < 0
                gate += c.status == "fail"
            cache[delta] = (sig / N_POWER, gate / N_POWER)
        return cache[delta]

    def d80(which: int) -> tuple[float, float] | None:
        lo, hi = 0.0, DELTA_MAX
        if power(hi)[which] < TARGET_POWER:
            return None
        for _ in range(BISECTION_STEPS):
            mid = (lo + hi) / 2.0
            lo, hi = (mid, hi) if power(mid)[which] < TARGET_POWER else (lo, mid)
        p_lo, p_hi = power(lo)[which], power(hi)[which]
        frac = 0.5 if p_hi == p_lo else (TARGET_POWER - p_lo) / (p_hi - p_lo)
        delta80 = lo + frac * (hi - lo)
        # Local slope from the nearest evaluated points at least 0.05 power away from the target.
        below = max((d for d, p in cache.items() if p[which] <= TARGET_POWER - 0.05), default=None)
        above = min((d for d, p in cache.items() if p[which] >= TARGET_POWER + 0.05), default=None)
        se = math.nan
        if below is not None and above is not None:
            d_below, d_above = population_effect(option.k, below).d, population_effect(option.k, above).d
            slope = (cache[above][which] - cache[below][which]) / abs(d_above - d_below)
            se = math.sqrt(TARGET_POWER * (1 - TARGET_POWER) / N_POWER) / slope
        return delta80, se

    sig80, gate80 = d80(0), d80(1)
    return {
        "option": option.name,
        "preset": preset,
        "n": n,
        "fwer_gate": gate_alarms / N_NULL,
        "fwer_sig": sig_alarms / N_NULL,
        "mde": float(np.mean(mdes)),
        "incon": inconclusive / passing if passing else math.nan,
        "sig80": None if sig80 is None else (population_effect(option.k, sig80[0]).d, sig80[1]),
        "gate80": None if gate80 is None else (population_effect(option.k, gate80[0]).d, gate80[1]),
        "drop": None if gate80 is None else population_effect(option.k, gate80[0]).drop,
    }


def _rate(p: float, n: int) -> str:
    return f"{p:.4f} +-{math.sqrt(p * (1 - p) / n):.4f}"


def _d(value: object) -> str:
    if value is None:
        return f"> {DELTA_MAX} logit".rjust(13)
    d, se = value  # type: ignore[misc]
    return f"{d:.3f} +-{se:.3f}"


def main() -> None:
    """Run every (option, n) cell on two worker processes and print the table."""
    start = time.perf_counter()
    cells = [(i, n) for i in range(len(OPTIONS)) for n in PROMPT_COUNTS]
    with ProcessPoolExecutor(max_workers=2) as pool:
        results = [r for rows in pool.map(run, *zip(*cells, strict=True)) for r in rows]
    presets = ", ".join(f"{name} alpha {a:g} floor {f:g}" for name, (a, f) in PRESETS.items())
    print(f"null runs {N_NULL} x {AXES} axes, power runs {N_POWER}; presets: {presets}")
    header = (
        f"{'option':<18} {'preset':<12} {'n':>4}  {'FWER gate':>15}  {'FWER sig':>15}  {'MDE':>6}  "
        f"{'incon':>5}  {'d80 sig':>13}  {'d80 gate':>13}  {'drop':>6}"
    )
    print(header)
    print("-" * len(header))
    order = list(PRESETS)
    for r in sorted(results, key=lambda r: (r["option"], order.index(str(r["preset"])), r["n"])):  # type: ignore[arg-type]
        drop = "" if r["drop"] is None else f"{r['drop']:.3f}"
        print(
            f"{r['option']:<18} {r['preset']:<12} {r['n']:>4}  "
            f"{_rate(r['fwer_gate'], N_NULL):>15}  "  # type: ignore[arg-type]
            f"{_rate(r['fwer_sig'], N_NULL):>15}  {r['mde']:>6.3f}  {r['incon']:>5.2f}  "  # type: ignore[arg-type]
            f"{_d(r['sig80'])}  {_d(r['gate80'])}  {drop:>6}"
        )
    print(f"elapsed {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
