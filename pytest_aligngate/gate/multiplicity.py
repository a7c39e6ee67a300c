"""Holm's step-down correction across the axes of a run: pure arithmetic, so that correcting verdicts
read back from the cache loads neither numpy nor scipy (:mod:`pytest_aligngate.gate.memo`)."""

from __future__ import annotations

import math
from collections.abc import Mapping


def holm(p_values: Mapping[str, float | None]) -> dict[str, float | None]:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1).

    ``None`` entries pass through and are not counted in the family size. Keys keep their order.
    """
    family = {k: p for k, p in p_values.items() if p is not None}
    for k, p in family.items():
        if math.isnan(p) or not 0.0 <= p <= 1.0:
            raise ValueError(f"p-value for {k!r} must be in [0, 1], got {p!r}")
    m = len(family)
    adjusted: dict[str, float] = {}
    running = 0.0
    for rank, (k, p) in enumerate(sorted(family.items(), key=lambda kv: kv[1])):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[k] = running
    return {k: adjusted.get(k) if p is not None else None for k, p in p_values.items()}
