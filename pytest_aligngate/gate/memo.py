"""Verdicts reused on identical inputs: a rerun on cached answers decides no axis twice.

:func:`~pytest_aligngate.gate.decide.decide` is a pure function of an axis's rows (in plan order),
its thresholds and the run's design. Its verdict is kept in the response cache under the digest of
all of them, of the gate's own source files and of the scipy and numpy versions, so a rerun whose
every answer and score came from the cache reads the verdict back instead of loading scipy (most
of such a run's time). A change to any row, setting, gate source or library decides afresh; cache
mode ``refresh`` always decides afresh, ``off`` keeps nothing."""

from __future__ import annotations

import functools
import hashlib
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import ValidationError

from pytest_aligngate.gate.decide import decide
from pytest_aligngate.models.cache import cache_key
from pytest_aligngate.records import AxisVerdict

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pytest_aligngate.config.schema import AxisThresholds
    from pytest_aligngate.gate.sequential import Look
    from pytest_aligngate.models.cache import ResponseCache
    from pytest_aligngate.records import ProbeResult

PACKAGE = Path(__file__).resolve().parents[1]
DECIDING_SOURCES = ("gate/decide.py", "gate/stats.py", "gate/sequential.py", "records.py", "config/schema.py")
"""The files whose code a verdict is computed by: any change to them decides again."""


@functools.cache
def code_identity() -> dict[str, str]:
    """A digest of :data:`DECIDING_SOURCES`, and the scipy and numpy versions."""
    digest = hashlib.sha256()
    for name in DECIDING_SOURCES:
        digest.update((PACKAGE / name).read_bytes())
    return {
        "sources": digest.hexdigest(),
        "scipy": metadata.version("scipy"),
        "numpy": metadata.version("numpy"),
    }


def decided(
    cache: ResponseCache | None,
    axis: str,
    rows: Sequence[ProbeResult],
    thresholds: AxisThresholds,
    *,
    seed: int,
    correction: Literal["none", "holm"],
    family_size: int,
    look: Look | None,
) -> AxisVerdict:
    """:func:`decide`'s verdict, read from ``cache`` when these exact inputs were decided before."""

    def decide_now() -> AxisVerdict:
        return decide(
            axis, rows, thresholds, seed=seed, correction=correction, family_size=family_size, look=look
        )

    if cache is None:
        return decide_now()
    key = cache_key(
        {
            "kind": "verdict",
            **code_identity(),
            "axis": axis,
            "thresholds": thresholds.model_dump(mode="json"),
            "seed": seed,
            "correction": correction,
            "family_size": family_size,
            "look": None if look is None else asdict(look),
            "rows": [row.model_dump(mode="json") for row in rows],
        }
    )
    if cache.reads:
        hit = cache.get(key)
        if hit is not None:
            try:
                return AxisVerdict.model_validate(hit)
            except ValidationError:
                pass  # written by another version of the record: decide again
    verdict = decide_now()
    if cache.writes:
        cache.put(key, "verdict", axis, verdict.model_dump())
    return verdict
