"""Certification under ``thresholds.max_drop``: how often an unchanged axis is certified, how often a
regressed one fails, on the simulation model of ``benchmarks/stats_power.py``.

    python benchmarks/certification.py [--runs 4000] [--n 50] [--k 3]

Per setting (paired by prompt, one-sided, the recommended ``wilcoxon``/``less`` test at alpha 0.05
per axis, ``k`` samples per prompt averaged): the share of unchanged axes certified (the one-sided 95%
upper bound of the drop below ``max_drop``) and of runs with all 4 unchanged axes certified; the
family-wise false-alarm rate (any of 4 unchanged axes failing: significant *and* estimated drop above
``max_drop``); and the power to fail one axis at true mean drops of 0.15 and 0.20. Seeded; prints a
table, asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from stats_power import delta_for_drop, draw, scores

from pytest_aligngate.gate.stats import GateRule, compare, drop_bound

RULE = GateRule(alpha=0.05, effect_floor=0.30, test="wilcoxon", alternative="less", bootstrap_resamples=0)


def axis(base: np.ndarray, cand: np.ndarray, max_drop: float) -> tuple[bool, bool]:
    """(certified, failed) of one simulated axis under ``max_drop``."""
    bound = drop_bound(list(base), list(cand), max_drop, RULE.alpha, paired=True)
    p = compare(list(base), list(cand), RULE, paired=True).p_value
    failed = p is not None and p < RULE.alpha and bound.drop > max_drop
    return bound.certified, failed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=4000, help="Simulated runs of 4 axes (default 4000)")
    parser.add_argument("--n", type=int, default=50, help="Prompts per axis (default 50)")
    parser.add_argument("--k", type=int, default=3, help="Samples per prompt (default 3)")
    args = parser.parse_args()
    rng = np.random.default_rng(20261201)
    shifts = {drop: delta_for_drop(drop, args.k) for drop in (0.15, 0.20)}
    print(f"n={args.n} prompts per axis, k={args.k}, {args.runs} runs of 4 axes, wilcoxon less, alpha 0.05")
    columns = ("certified/axis", "all 4 certified", "FWER", "power@0.15", "power@0.20")
    print(f"{'max_drop':>8} " + " ".join(f"{name:>{max(len(name), 7)}}" for name in columns))
    for max_drop in (0.10, 0.075):
        certified = all_four = false_alarms = 0
        power = dict.fromkeys(shifts, 0)
        for _ in range(args.runs):
            null = [axis(*scores(draw(rng, (args.n,), args.k), 0.0), max_drop) for _ in range(4)]
            certified += sum(c for c, _ in null)
            all_four += all(c for c, _ in null)
            false_alarms += any(f for _, f in null)
            noise = draw(rng, (args.n,), args.k)
            for drop, delta in shifts.items():
                power[drop] += axis(*scores(noise, delta), max_drop)[1]
        runs = args.runs
        print(
            f"{max_drop:>8g} {certified / (4 * runs):>15.3f} {all_four / runs:>16.3f} "
            f"{false_alarms / runs:>7.4f} {power[0.15] / runs:>11.3f} {power[0.20] / runs:>11.3f}"
        )


if __name__ == "__main__":
    main()
