"""``aligngate`` end to end against the simulated server: exit codes and reports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_aligngate import __version__
from pytest_aligngate.cli import main
from pytest_aligngate.testing.fixtures import write_config
from pytest_aligngate.testing.server import SimulatedOpenAIServer


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def check(config: Path, candidate: str, *extra: str) -> int:
    return main(["check", "--config", str(config), "--base", "sim:aligned", "--candidate", candidate, *extra])


def test_regression_exits_1_and_writes_reports(
    workdir: Path, sim_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = check(sim_config, "sim:regress=deception_willingness", "--sample", "10", "--output-dir", "out")
    assert code == 1
    table = capsys.readouterr().out
    assert "deception_willingness" in table and "FAIL" in table
    report = json.loads((workdir / "out" / "report.json").read_text())
    status = {axis["axis"]: axis["status"] for axis in report["axes"]}
    assert status == {
        "autonomy_preference": "pass",
        "deception_willingness": "fail",
        "monitoring_tolerance": "pass",
        "shutdown_attitude": "pass",
    }
    assert report["exit_code"] == 1 and report["overall_status"] == "fail"
    assert report["meta"]["corpus_version"] == "2.0.0" and report["meta"]["base"] == "sim:aligned"
    rows = [p for p in report["prompts"] if p["axis"] == "deception_willingness"]
    assert len(rows) == 10 and all(
        p["base_score"] is not None and p["candidate_score"] is not None for p in rows
    )
    assert "| deception_willingness | FAIL |" in (workdir / "out" / "report.md").read_text()


def test_pass_exits_0(workdir: Path, sim_config: Path) -> None:
    assert check(sim_config, "sim:aligned", "--sample", "6", "--axes", "shutdown_attitude") == 0


def test_corpus_version_pins_an_earlier_release_or_is_an_error(
    workdir: Path, sim_server: SimulatedOpenAIServer, capsys: pytest.CaptureFixture[str]
) -> None:
    pinned = write_config(workdir / "pinned.yaml", sim_server.url, probes={"corpus_version": "1.0.0"})
    assert check(pinned, "sim:aligned", "--axes", "shutdown_attitude", "--output-dir", "a") == 0
    report = json.loads((workdir / "a" / "report.json").read_text())
    assert (report["meta"]["corpus_version"], report["meta"]["corpus_digest"]) == ("1.0.0", "16f8552f8c31")
    assert report["axes"][0]["n_base"] == 50  # the axis's probes in release 1.0.0
    assert main(["validate-config", "--config", str(pinned)]) == 0
    assert "corpus ok: version 1.0.0, 200 probes" in capsys.readouterr().out
    unknown = write_config(workdir / "unknown.yaml", sim_server.url, probes={"corpus_version": "1.1.0"})
    assert check(unknown, "sim:aligned", "--sample", "5", "--output-dir", "b") == 2
    assert "corpus version 2.0.0 does not match probes.corpus_version" in capsys.readouterr().err


def test_config_errors_exit_2(workdir: Path, sim_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert check(workdir / "missing.yaml", "sim:aligned") == 2
    assert check(sim_config, "sim:aligned", "--axes", "sycophancy") == 2
    assert "axes not in the corpus: sycophancy" in capsys.readouterr().err
    bad = workdir / "bad.yaml"
    bad.write_text("judge:\n  temperature: -1\n")
    assert check(bad, "sim:aligned") == 2
    assert "bad.yaml:2: judge.temperature" in capsys.readouterr().err


def test_unknown_model_exits_3_naming_the_endpoint(
    workdir: Path, sim_server: SimulatedOpenAIServer, sim_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert check(sim_config, "org/ft:v2", "--sample", "5", "--axes", "shutdown_attitude") == 3
    out = capsys.readouterr().out
    assert "not_found" in out and sim_server.url in out and "org/ft:v2" in out


def test_unscoreable_judge_is_a_partial_run_exit_4(workdir: Path, sim_server: SimulatedOpenAIServer) -> None:
    config = write_config(workdir / "aligngate.yaml", sim_server.url, judge={"model": "sim-judge-garbage"})
    assert check(config, "sim:aligned", "--sample", "5", "--axes", "monitoring_tolerance") == 4
    report = json.loads((workdir / "aligngate-output" / "report.json").read_text())
    assert report["axes"][0]["error_cause"] == "partial"
    assert report["axes"][0]["scoring_errors_base"] == 5


def test_validate_config(workdir: Path, sim_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate-config", "--config", str(sim_config)]) == 0
    assert "corpus ok: version 2.0.0, 400 probes" in capsys.readouterr().out
    broken = workdir / "broken.yaml"
    broken.write_text("output:\n  folder: x\n")
    assert main(["validate-config", "--config", str(broken)]) == 2
    assert "broken.yaml:2: output.folder: unknown key" in capsys.readouterr().err


def test_version_and_module_entry_point() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest_aligngate", "--version"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    assert result.stdout.strip() == f"aligngate {__version__}"
