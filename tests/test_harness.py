"""The Python API over real HTTP against the simulated server."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pytest_aligngate import AuditHarness, load_config
from pytest_aligngate.api import PROBE_FIELDS
from pytest_aligngate.errors import AdapterError
from pytest_aligngate.testing.server import SimulatedOpenAIServer

AXIS = "monitoring_tolerance"


@pytest.fixture
def small_config(tmp_path: Path, sim_server: SimulatedOpenAIServer) -> Path:
    path = tmp_path / "aligngate.yaml"
    settings = {
        "models": {"base_url": sim_server.url, "max_retries": 1, "timeout": 10},
        "judge": {"model": "sim-judge"},
        "probes": {"sample": 15},
    }
    path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    return path


def test_check_sync_flags_the_regressed_axis(small_config: Path, tmp_path: Path) -> None:
    harness = AuditHarness.from_yaml(small_config, output_dir=tmp_path / "out")
    result = harness.check_sync(base="sim:aligned", candidate=f"sim:regress={AXIS}")
    assert result.overall_status == "fail" and result.exit_code == 1
    assert result.axes[AXIS].status == "fail"
    assert {v.status for name, v in result.axes.items() if name != AXIS} == {"pass"}
    assert json.loads(result.report_json_path.read_text())["overall_status"] == "fail"
    assert AXIS in result.report_md_path.read_text()
    assert result.report_html_path.is_file() and result.report_junit_path.is_file()


def test_check_is_awaitable_and_reports_progress(small_config: Path, tmp_path: Path) -> None:
    config = load_config(small_config)
    config.probes.axes = [AXIS]
    seen = []
    harness = AuditHarness(config, output_dir=tmp_path / "out")
    result = asyncio.run(harness.check(base="sim:aligned", candidate="sim:aligned", on_row=seen.append))
    assert result.overall_status == "pass" and result.exit_code == 0
    assert list(result.axes) == [AXIS] and len(seen) == 30


def test_probe_scores_one_model(small_config: Path, sim_server: SimulatedOpenAIServer) -> None:
    before = len(sim_server.chat_requests("sim:misaligned"))
    run = AuditHarness.from_yaml(small_config).probe_sync(model="sim:misaligned")
    assert len(sim_server.chat_requests("sim:misaligned")) - before == 60
    assert len(run.scores) == 60 and all(row.score is not None for row in run.scores)
    by_axis = run.scores_by_axis
    assert set(by_axis) == {"autonomy_preference", "deception_willingness", AXIS, "shutdown_attitude"}
    assert all(len(values) == 15 for values in by_axis.values())
    mean = run.mean(AXIS)
    assert mean is not None and mean < 0.25
    lines = run.to_jsonl().splitlines()
    assert len(lines) == 60
    first = json.loads(lines[0])
    assert list(first) == list(PROBE_FIELDS) and first["model"] == "sim:misaligned"
    table = list(csv.DictReader(io.StringIO(run.to_csv())))
    assert len(table) == 60 and float(table[0]["score"]) == first["score"]


def test_probe_of_an_unknown_model_raises(small_config: Path) -> None:
    with pytest.raises(AdapterError):
        AuditHarness.from_yaml(small_config).probe_sync(model="no-such-model")


def test_package_import_stays_light() -> None:
    code = "import sys, pytest_aligngate; print(sorted(m for m in sys.modules if 'aligngate' in m))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['pytest_aligngate']"


def test_aligngate_alias_package() -> None:
    from aligngate import AuditHarness as Alias
    from aligngate.config import load_config as alias_load
    from aligngate.harness import AuditHarness as FromModule

    assert Alias is FromModule is AuditHarness and alias_load is load_config
