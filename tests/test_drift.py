"""Judge drift check: anchors re-judged over real HTTP; a miscalibrated judge errors the axes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from pytest_aligngate.cli import main
from pytest_aligngate.corpus.load import load_corpus
from pytest_aligngate.corpus.model import BUILTIN_AXES
from pytest_aligngate.judging.drift import DriftReport, agreement, check_drift, load_anchors
from pytest_aligngate.judging.llm import Judge
from pytest_aligngate.models.openai_compat import OpenAICompatAdapter
from pytest_aligngate.testing.fixtures import write_config
from pytest_aligngate.testing.server import SimulatedOpenAIServer


def drift(url: str, judge_model: str) -> DriftReport:
    judge = Judge(OpenAICompatAdapter(judge_model, url, max_retries=0, timeout=10))

    async def go() -> DriftReport:
        try:
            return await check_drift(judge, BUILTIN_AXES, tolerance=0.2)
        finally:
            await judge.aclose()

    return asyncio.run(go())


def test_anchors_cover_every_axis_with_bundled_probes() -> None:
    anchors = load_anchors()
    probes = {p.id: p for p in load_corpus().probes}
    assert {group.axis for group in anchors.anchors} == set(BUILTIN_AXES)
    for group in anchors.anchors:
        assert probes[group.probe].axis == group.axis
        assert len(group.responses) >= 6
        assert min(a.score for a in group.responses) <= 0.1 and max(a.score for a in group.responses) >= 0.9


def test_agreement_numbers() -> None:
    ok = agreement([0.9, 0.5, 0.1], [0.8, 0.5, 0.2], tolerance=0.2, axis="a")
    assert ok.mae == pytest.approx(0.2 / 3) and ok.spearman == pytest.approx(1.0) and not ok.drifted
    moved = agreement([0.9, 0.5, 0.1], [0.1, 0.5, 0.9], tolerance=0.2, axis="a")
    assert moved.spearman == pytest.approx(-1.0) and moved.drifted
    unscored = agreement([0.9, 0.5, 0.1], [0.9, None, None], tolerance=0.2, axis="a")
    assert unscored.unscored == 2 and unscored.drifted


def test_the_simulated_judge_agrees_and_the_inverted_one_drifts(sim_server: SimulatedOpenAIServer) -> None:
    honest = drift(sim_server.url, "sim-judge")
    assert honest.drifted_axes() == []
    # The simulated judge scores unknown answers at three levels plus jitter, so its rank agreement
    # with six anchors per axis is high but not perfect (0.71-0.94).
    assert all(a.mae is not None and a.mae < 0.15 and (a.spearman or 0) > 0.6 for a in honest.axes)
    inverted = drift(sim_server.url, "sim-judge-inverted")
    assert sorted(inverted.drifted_axes()) == sorted(BUILTIN_AXES)
    assert all((a.mae or 0) > 0.5 and (a.spearman or 0) < 0 for a in inverted.axes)


def test_a_drifted_judge_errors_the_run_instead_of_deciding(
    tmp_path: Path, sim_server: SimulatedOpenAIServer, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(
        tmp_path / "aligngate.yaml",
        sim_server.url,
        judge={"model": "sim-judge-inverted", "drift_check": True},
        probes={"sample": 5, "axes": ["shutdown_attitude"]},
    )
    out = tmp_path / "out"
    before = len(sim_server.chat_requests("sim-judge-inverted"))
    args = ["check", "--config", str(config), "--base", "sim:aligned", "--output-dir", str(out), "--quiet"]
    # Cache off: base and candidate give the same answers, which a cache would judge once or twice
    # depending on which call finishes first.
    assert main([*args, "--candidate", "sim:aligned", "--cache-mode", "off"]) == 5
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    axis = report["axes"][0]
    assert axis["status"] == "error" and axis["error_cause"] == "judge_drift"
    assert axis["error"].startswith("judge disagrees with the anchors: sim-judge-inverted")
    assert report["overall_status"] == "judge changed"
    assert report["judge_drift"]["axes"][0]["drifted"] is True
    assert "DISAGREES WITH THE ANCHORS (MAE" in (out / "report.md").read_text(encoding="utf-8")
    # Only the configured axis's anchors were judged: 6 calls, beside 2 x 5 probe scores.
    assert len(sim_server.chat_requests("sim-judge-inverted")) - before == 6 + 10
    capsys.readouterr()


def test_an_agreeing_judge_lets_the_gate_decide(tmp_path: Path, sim_server: SimulatedOpenAIServer) -> None:
    config = write_config(
        tmp_path / "aligngate.yaml",
        sim_server.url,
        judge={"drift_check": True},
        probes={"sample": 12, "axes": ["shutdown_attitude"]},
    )
    out = tmp_path / "out"
    code = main(
        ["check", "--config", str(config), "--base", "sim:aligned", "--candidate",
         "sim:regress=shutdown_attitude", "--output-dir", str(out), "--quiet"]
    )  # fmt: skip
    assert code == 1
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["axes"][0]["status"] == "fail" and report["judge_drift"]["axes"][0]["drifted"] is False
