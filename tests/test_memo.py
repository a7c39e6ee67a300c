"""Verdicts reused from the cache: the same verdict on the same inputs, a new one on any change, and a
fully cached rerun that loads neither the SDK nor scipy."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

from pytest_aligngate.config.schema import AxisThresholds
from pytest_aligngate.gate.decide import decide
from pytest_aligngate.gate.memo import decided
from pytest_aligngate.models.cache import ResponseCache
from pytest_aligngate.records import ProbeResult
from pytest_aligngate.testing.fixtures import ServerFactory, write_config


def _rows(candidate: list[float]) -> list[ProbeResult]:
    base = [0.9, 0.8, 0.85, 0.9, 0.7, 0.95, 0.8, 0.9]
    return [
        ProbeResult(probe_id=f"p{i}", axis="ax", role=role, model=role, score=score)  # type: ignore[arg-type]
        for role, scores in (("base", base), ("candidate", candidate))
        for i, score in enumerate(scores)
    ]


def _decided(cache: ResponseCache, rows: list[ProbeResult], thresholds: AxisThresholds) -> object:
    return decided(cache, "ax", rows, thresholds, seed=0, correction="holm", family_size=4, look=None)


def test_a_verdict_read_back_is_the_verdict_decided(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)
    thresholds = AxisThresholds(test="wilcoxon", alternative="less")
    rows = _rows([0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2])  # every difference differs: d finite
    fresh = decide("ax", rows, thresholds, seed=0, correction="holm", family_size=4)
    assert _decided(cache, rows, thresholds) == fresh  # decided and kept
    assert cache.info().entries == {("verdict", "ax"): 1}
    assert _decided(cache, rows, thresholds) == fresh  # read back
    constant = _rows([0.1] * 8)
    same_shift = [r.model_copy(update={"score": 0.9}) if r.role == "base" else r for r in constant]
    infinite = _decided(cache, same_shift, thresholds)
    assert math.isinf(infinite.effect_size)  # type: ignore[attr-defined]
    assert _decided(cache, same_shift, thresholds) == infinite  # inf survives the round trip


def test_any_change_to_rows_or_settings_decides_again(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)
    thresholds = AxisThresholds(test="wilcoxon", alternative="less")
    rows = _rows([0.9, 0.8, 0.85, 0.9, 0.7, 0.95, 0.8, 0.9])
    passed = _decided(cache, rows, thresholds)
    worse = [r.model_copy(update={"score": 0.0}) if r.role == "candidate" else r for r in rows]
    failed = _decided(cache, worse, thresholds)
    strict = _decided(cache, rows, thresholds.model_copy(update={"alpha": 0.01}))
    assert (passed.status, failed.status) == ("pass", "fail")  # type: ignore[attr-defined]
    assert strict.alpha == 0.01  # type: ignore[attr-defined]
    assert cache.info().entries == {("verdict", "ax"): 3}
    stale = failed.model_copy(update={"status": "pass"})  # type: ignore[attr-defined]
    cache.put(_keys(cache)[1], "verdict", "ax", stale.model_dump())
    assert _decided(cache, worse, thresholds) == stale  # what a cache holds is read back as it is
    assert _decided(ResponseCache(tmp_path, "refresh"), worse, thresholds) == failed  # refresh decides


def _keys(cache: ResponseCache) -> list[str]:
    return [key for (key,) in cache._execute("SELECT key FROM entries ORDER BY created")]


RERUN = """
import sys
from pytest_aligngate.cli import main
code = main(sys.argv[1:])
print(code, "openai" in sys.modules, "scipy" in sys.modules)
"""


def test_a_fully_cached_rerun_loads_neither_the_sdk_nor_scipy(
    tmp_path: Path, make_server: ServerFactory
) -> None:
    server = make_server()
    config = write_config(tmp_path / "aligngate.yaml", server.url, probes={"sample": 5})
    args = ["check", "--config", str(config), "--base", "sim:aligned", "--candidate", "sim:misaligned"]
    args += ["--output-dir", str(tmp_path / "out"), "--quiet"]

    def run() -> list[str]:
        done = subprocess.run(
            [sys.executable, "-c", RERUN, *args], capture_output=True, text=True, check=True, timeout=120
        )
        return done.stdout.splitlines()[-1].split()

    assert run() == ["1", "True", "True"]
    report = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    asked = len(server.chat_requests())
    assert run() == ["1", "False", "False"]
    assert len(server.chat_requests()) == asked
    again = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    assert again["axes"] == report["axes"]
