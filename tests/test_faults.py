"""Faults survived: 429/500 answers, slow answers, dropped connections and malformed bodies over real HTTP."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from pytest_aligngate.cli import main
from pytest_aligngate.config.schema import AligngateConfig, ModelsConfig
from pytest_aligngate.errors import AdapterError
from pytest_aligngate.models import model_adapter
from pytest_aligngate.models.base import SamplingParams
from pytest_aligngate.models.cache import ResponseCache
from pytest_aligngate.testing.fixtures import ServerFactory, write_config

CANDIDATE = "sim:regress=shutdown_attitude"


PROMPTS = 14
"""Sampled per axis where the regressed axis must fail whichever prompts the seeded draw takes."""


def check(config: Path, out: Path, *extra: str, sample: int = 6) -> dict[str, object]:
    """``aligngate check`` on ``sample`` probes per axis: report.json, the exit code under ``exit``."""
    args = ["check", "--config", str(config), "--base", "sim:aligned", "--candidate", CANDIDATE, "--quiet"]
    code = main([*args, "--output-dir", str(out), "--sample", str(sample), *extra])
    report = json.loads((out / "report.json").read_text())
    return {**report, "exit": code}


def verdicts(report: dict[str, object]) -> dict[str, tuple[object, ...]]:
    axes = report["axes"]
    assert isinstance(axes, list)
    return {
        a["axis"]: (a["status"], a["p_value"], a["effect_size"], a["n_base"], a["n_candidate"]) for a in axes
    }


def scores(report: dict[str, object]) -> dict[str, tuple[object, object]]:
    prompts = report["prompts"]
    assert isinstance(prompts, list)
    return {p["prompt_id"]: (p["base_score"], p["candidate_score"]) for p in prompts}


def test_faulty_server_gives_the_clean_verdicts(
    make_server: ServerFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Which request meets which fault depends on the prompts and the body: pinned so that all kinds occur.
    models = {"max_retries": 6, "timeout": 5, "temperature": 0.0}
    probes = {"seed": 0}
    # 6 prompts per axis (seed 0), 5 of them regressed: the one-sided p is 0.003.
    thresholds = {"alternative": "less"}
    clean_server = make_server()
    # Cache off: identical judge requests may hit within a run, which would blur the request counts.
    clean_config = write_config(
        tmp_path / "clean.yaml", clean_server.url, models=models, probes=probes, thresholds=thresholds
    )
    clean = check(clean_config, tmp_path / "clean", "--cache-mode", "off")
    faulty_server = make_server(fault_rate=0.2, fault_seed=1)
    faulty_config = write_config(
        tmp_path / "faulty.yaml", faulty_server.url, models=models, probes=probes, thresholds=thresholds
    )
    faulty = check(faulty_config, tmp_path / "faulty", "--cache-mode", "off")
    served = faulty_server.faults.served
    assert set(served) == {"429", "500", "slow", "drop", "malformed"}, served
    assert sum(served.values()) >= 0.15 * len(clean_server.chat_requests())
    assert faulty["exit"] == clean["exit"] == 1
    assert verdicts(faulty) == verdicts(clean)
    assert scores(faulty) == scores(clean)
    assert len(scores(clean)) == 24 and all(None not in pair for pair in scores(faulty).values())
    answered = len(faulty_server.chat_requests()) - sum(served.values()) + served.get("slow", 0)
    assert answered == len(clean_server.chat_requests())


def test_timeouts_are_retried(make_server: ServerFactory, tmp_path: Path) -> None:
    server = make_server(fault_rate=0.25, fault_kinds=["slow"], slow_seconds=1.0)
    models = {"max_retries": 6, "timeout": 0.4}
    config = write_config(tmp_path / "a.yaml", server.url, models=models, thresholds={"alternative": "less"})
    report = check(config, tmp_path / "out", "--axes", "shutdown_attitude", sample=PROMPTS)
    assert server.faults.served["slow"] > 0
    assert report["exit"] == 1 and all(None not in pair for pair in scores(report).values())


def test_default_retries_are_six_and_the_last_error_names_endpoint_model_status(
    make_server: ServerFactory,
) -> None:
    assert ModelsConfig().max_retries == 6
    server = make_server(fault_rate=1.0, fault_kinds=["429"])
    adapter = model_adapter(AligngateConfig(models={"base_url": server.url}), "base", "sim:aligned")

    async def ask() -> None:
        try:
            await adapter.complete([{"role": "user", "content": "hi"}], SamplingParams())
        finally:
            await adapter.aclose()

    with pytest.raises(AdapterError) as caught:
        asyncio.run(ask())
    assert len(server.chat_requests()) == 7  # one try and six retries, at once on Retry-After
    message = str(caught.value)
    assert server.url in message and "'sim:aligned'" in message and "HTTP 429" in message
    assert caught.value.cause == "rate_limited" and not caught.value.fatal


def test_partial_run_exits_4_keeps_what_was_scored_and_resumes(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    server = make_server(fault_rate=0.5, fault_kinds=["500"], fault_seed=3)
    config = write_config(tmp_path / "a.yaml", server.url, models={"max_retries": 0})
    out = tmp_path / "out"
    partial = check(config, out, sample=PROMPTS)
    assert partial["exit"] == 4 and partial["overall_status"] == "partial"
    axes = partial["axes"]
    assert isinstance(axes, list) and all(a["error_cause"] == "partial" for a in axes)
    scored = [s for pair in scores(partial).values() for s in pair if s is not None]
    assert scored, "what was scored is in the report"
    kept = ResponseCache(out / "cache").info().entries
    assert 0 < kept[("judgement", "sim-judge")] <= len(scored)  # equal answers share one judgement
    server.faults.rate = 0.0
    asked = len(server.chat_requests())
    resumed = check(config, out, sample=PROMPTS)
    assert resumed["exit"] == 1 and all(None not in pair for pair in scores(resumed).values())
    resumed_requests = server.chat_requests()[asked:]
    assert len(resumed_requests) <= 2 * (4 * PROMPTS * 2) - sum(kept.values())  # nothing asked twice
    base_asked = sum(r.body["model"] == "sim:aligned" for r in resumed_requests)
    assert base_asked == 4 * PROMPTS - kept[("response", "sim:aligned")]
