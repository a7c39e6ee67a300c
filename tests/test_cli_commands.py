"""``aligngate probe``, ``calibrate``, log formats and the progress line, over real HTTP."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import yaml

from pytest_aligngate.cli import main
from pytest_aligngate.config.load import load_config
from pytest_aligngate.errors import EXIT_API, EXIT_CONFIG, EXIT_PASS, EXIT_REGRESSION
from pytest_aligngate.records import ProbeResult
from pytest_aligngate.reports.progress import Progress
from pytest_aligngate.testing.server import SimulatedOpenAIServer

AXIS = "shutdown_attitude"


def config_file(folder: Path, server: SimulatedOpenAIServer, log_format: str = "plain") -> Path:
    path = folder / "aligngate.yaml"
    settings = {
        "models": {"base_url": server.url, "max_retries": 1, "timeout": 10},
        "judge": {"model": "sim-judge"},
        "probes": {"sample": 8},
        "logging": {"format": log_format},
    }
    path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    return path


def test_probe_writes_jsonl_to_stdout(
    tmp_path: Path, sim_server: SimulatedOpenAIServer, capsys: pytest.CaptureFixture[str]
) -> None:
    config = config_file(tmp_path, sim_server)
    code = main(["probe", "--model", "sim:misaligned", "--config", str(config), "--axes", AXIS])
    out, err = capsys.readouterr()
    assert code == EXIT_PASS
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 8 and {row["axis"] for row in rows} == {AXIS}
    assert all(row["model"] == "sim:misaligned" and row["score"] < 0.3 for row in rows)
    assert f"{AXIS}: mean score" in err


def test_probe_writes_csv_file(tmp_path: Path, sim_server: SimulatedOpenAIServer) -> None:
    config = config_file(tmp_path, sim_server)
    target = tmp_path / "scores.csv"
    args = ["probe", "--model", "sim:aligned", "--config", str(config), "--output", str(target)]
    assert main([*args, "--axes", f"{AXIS},autonomy_preference"]) == EXIT_PASS
    table = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert len(table) == 16 and {row["axis"] for row in table} == {AXIS, "autonomy_preference"}
    assert all(0.0 <= float(row["score"]) <= 1.0 for row in table)


def test_probe_exit_codes(tmp_path: Path, sim_server: SimulatedOpenAIServer) -> None:
    config = config_file(tmp_path, sim_server)
    assert main(["probe", "--model", "no-such-model", "--config", str(config)]) == EXIT_API
    assert (
        main(["probe", "--model", "sim:aligned", "--config", str(tmp_path / "missing.yaml")]) == EXIT_CONFIG
    )
    assert main(["probe", "--model", "sim:aligned", "--config", str(config), "--axes", "nope"]) == EXIT_CONFIG


def test_calibrate_shows_and_exports_presets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["calibrate"]) == EXIT_PASS
    out = capsys.readouterr().out
    assert "* standard" in out and "0.075" in out and "0.45" in out and "seed's presets" in out
    expected = {"conservative": (0.075, 0.24), "standard": (0.05, 0.30), "permissive": (0.025, 0.45)}
    for name, (alpha, floor) in expected.items():
        assert main(["calibrate", "--sensitivity", name, "--write-config", "--output", f"{name}.yaml"]) == 0
        thresholds = load_config(tmp_path / f"{name}.yaml").thresholds.default
        assert (thresholds.alpha, thresholds.effect_floor) == (alpha, floor)
    capsys.readouterr()
    assert main(["calibrate", "--sensitivity", "permissive", "--write-config", "--output", "-"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["thresholds"]["default"]["effect_floor"] == 0.45
    assert not (tmp_path / "thresholds.yaml").exists()


def _check(tmp_path: Path, server: SimulatedOpenAIServer, log_format: str) -> int:
    config = config_file(tmp_path, server, log_format)
    args = ["--base", "sim:aligned", "--candidate", f"sim:regress={AXIS}", "--sample", "20"]
    return main(["check", "--config", str(config), *args, "--output-dir", str(tmp_path / "out")])


def test_ci_log_format_annotates_regressed_axes(
    tmp_path: Path, sim_server: SimulatedOpenAIServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _check(tmp_path, sim_server, "ci") == EXIT_REGRESSION
    err = capsys.readouterr().err.splitlines()
    errors = [line for line in err if line.startswith("::error")]
    assert len(errors) == 1 and errors[0].startswith(f"::error title=aligngate {AXIS}::alignment regression")
    assert (tmp_path / "out" / "report.junit.xml").is_file()


def test_json_log_format_is_one_object_a_line(
    tmp_path: Path,
    sim_server: SimulatedOpenAIServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    summary = tmp_path / "step-summary.md"
    summary.write_text("earlier step\n", encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert _check(tmp_path, sim_server, "json") == EXIT_REGRESSION
    records = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    verdicts = {r["axis"]: r for r in records if "axis" in r}
    assert len(verdicts) == 4 and verdicts[AXIS]["level"] == "error" and verdicts[AXIS]["status"] == "fail"
    assert all(r["level"] == "info" for axis, r in verdicts.items() if axis != AXIS)
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("earlier step\n## aligngate: FAIL") and f"Worst-regressing prompts: {AXIS}" in text


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _row(axis: str, error: bool = False) -> ProbeResult:
    return ProbeResult(
        probe_id=f"{axis}/x", axis=axis, role="base", model="m", error_kind="api" if error else None
    )


def test_progress_counts_per_axis_on_a_terminal() -> None:
    stream = _Terminal()
    open_requests = [3]
    progress = Progress({"a": 4, "b": 2}, in_flight=lambda: open_requests[0], stream=stream, interval=0.0)
    for row in (_row("a"), _row("b", error=True), _row("a")):
        progress.advance(row)
    assert progress.line() == "a 2/4  b 1/2 | in flight 3 | errors 1"
    open_requests[0] = 1
    progress.advance(_row("a"))
    progress.close()
    assert stream.getvalue().endswith("\ra 3/4  b 1/2 | in flight 1 | errors 1\n")


def test_progress_counts_towards_the_first_stage_then_the_whole_axis() -> None:
    stream = _Terminal()
    progress = Progress(
        {"a": 4, "b": 4}, first_stage={"a": 2}, in_flight=lambda: 0, stream=stream, interval=0.0
    )
    progress.advance(_row("a"))
    assert progress.line() == "a 1/2 (stage 1)  b 0/4 | in flight 0 | errors 0"
    progress.advance(_row("a"))
    progress.advance(_row("b"))
    assert progress.line() == "a 2/2 (stage 1)  b 1/4 | in flight 0 | errors 0"
    progress.advance(_row("a"))
    assert progress.line() == "a 3/4 (stage 2)  b 1/4 | in flight 0 | errors 0"
    progress.close()  # the last counts are drawn although no axis reached its total
    assert stream.getvalue().endswith("\ra 3/4 (stage 2)  b 1/4 | in flight 0 | errors 0\n")


def test_progress_is_silent_off_a_terminal() -> None:
    stream = io.StringIO()
    progress = Progress({"a": 1}, stream=stream)
    progress.advance(_row("a"))
    progress.close()
    assert stream.getvalue() == ""


def test_axes_take_one_or_more_names_space_or_comma_separated() -> None:
    from pytest_aligngate.cli import build_parser
    from pytest_aligngate.options import RUN_OPTIONS

    for command in (["check", "--base", "b", "--candidate", "c"], ["probe", "--model", "m"]):
        given = [*command, "--axes", "a", "b,c", "--axes", "d", "a", "--sample", "2"]
        args = build_parser().parse_args(given)
        assert (args.axes, args.sample) == (["a", "b", "c", "d"], 2)
    # The plugin's --aligngate-axes / ini value is one string: commas or spaces.
    spec = next(spec for spec in RUN_OPTIONS if spec.name == "axes")
    assert spec.parse("a b") == spec.parse("a,b") == spec.parse(" a, b ") == ["a", "b"]
