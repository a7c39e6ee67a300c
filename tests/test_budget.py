"""Prices, the cost estimate in reports and the run's budget, over real HTTP to the simulated server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_aligngate.cli import main
from pytest_aligngate.config.load import load_config
from pytest_aligngate.config.schema import ConfigError, ModelPrice
from pytest_aligngate.models.budget import Budget, BudgetExceeded, call_cost, cost_by_role
from pytest_aligngate.records import ProbeResult, Usage
from pytest_aligngate.testing.fixtures import ServerFactory, write_config

BASE, CANDIDATE = "sim:aligned", "sim:regress=shutdown_attitude"
PRICES = {BASE: {"input": 10.0, "output": 30.0}, CANDIDATE: {"input": 10.0, "output": 30.0}}
PRICING = {**PRICES, "sim-judge": {"input": 5.0, "output": 15.0}}


PROMPTS = 14
"""Sampled per axis: enough that the regressed axis fails whichever prompts the seeded draw takes."""


def check(config: Path, out: Path, *extra: str) -> dict[str, object]:
    """``aligngate check`` on ``PROMPTS`` probes per axis; report.json with the exit code under ``exit``."""
    args = ["check", "--config", str(config), "--base", BASE, "--candidate", CANDIDATE, "--quiet"]
    code = main([*args, "--output-dir", str(out), "--sample", str(PROMPTS), *extra])
    report = json.loads((out / "report.json").read_text())
    return {**report, "exit": code}


def test_call_cost_is_tokens_times_price_per_million() -> None:
    price = ModelPrice(input=1.0, output=2.0)
    assert call_cost(price, Usage(prompt_tokens=1_000_000, completion_tokens=500_000)) == pytest.approx(2.0)
    assert call_cost(price, Usage(prompt_tokens=300, completion_tokens=100)) == pytest.approx(0.0005)


def test_cost_by_role_prices_answers_and_judgements() -> None:
    rows = [
        ProbeResult(
            probe_id="p", axis="a", role="base", model="b",
            usage=Usage(prompt_tokens=1000), judge_usage=Usage(completion_tokens=1000),
        ),
        ProbeResult(probe_id="p", axis="a", role="candidate", model="c", usage=Usage(prompt_tokens=2000)),
    ]  # fmt: skip
    prices = {"b": ModelPrice(input=1.0, output=0.0), "j": ModelPrice(input=0.0, output=3.0)}
    costs = cost_by_role(rows, {"base": "b", "candidate": "c", "judge": "j"}, prices)
    assert costs == pytest.approx({"base": 0.001, "judge": 0.003, "total": 0.004})  # candidate has no price


def test_budget_reserves_the_worst_case_and_settles_at_real_usage(tmp_path: Path) -> None:
    price = {"m": ModelPrice(input=1.0, output=1.0)}
    budget = Budget(0.001, price, tmp_path, "run-1")  # 1000 tokens
    with budget.charge("m", prompt_tokens=100, max_tokens=500) as charge:
        assert budget.spent() == pytest.approx(0.0006)  # reserved while in flight
        charge.usage = Usage(prompt_tokens=90, completion_tokens=10)
    assert budget.spent() == pytest.approx(0.0001)
    with pytest.raises(BudgetExceeded, match=r"budget of \$0.0010 reached"), budget.charge("m", 500, 500):
        pass
    with pytest.raises(RuntimeError), budget.charge("m", prompt_tokens=10, max_tokens=10):
        raise RuntimeError("the call failed")  # a failed call costs nothing
    assert budget.spent() == pytest.approx(0.0001)


def test_processes_of_one_run_share_the_budget(tmp_path: Path) -> None:
    price = {"m": ModelPrice(input=1.0, output=0.0)}
    worker_a, worker_b = (Budget(0.001, price, tmp_path, "run-1") for _ in range(2))
    other_run = Budget(0.001, price, tmp_path, "run-2")
    with worker_a.charge("m", 600, 0):
        pass
    with pytest.raises(BudgetExceeded), worker_b.charge("m", 600, 0):
        pass
    with other_run.charge("m", 600, 0):
        pass
    assert worker_b.spent() == pytest.approx(0.0006)


def test_report_has_a_cost_estimate_per_role(
    sim_server: object, tmp_path: Path, make_server: ServerFactory
) -> None:
    server = make_server()
    config = write_config(tmp_path / "aligngate.yaml", server.url, pricing=PRICING)
    report = check(config, tmp_path / "out")
    meta = report["meta"]
    assert isinstance(meta, dict)
    usage, cost = meta["usage"], meta["cost"]
    priced = {"base": PRICES[BASE], "candidate": PRICES[CANDIDATE], "judge": PRICING["sim-judge"]}
    expected = {
        role: (
            usage[role]["prompt_tokens"] * price["input"] + usage[role]["completion_tokens"] * price["output"]
        )
        / 1e6
        for role, price in priced.items()
    }
    assert cost == pytest.approx({**expected, "total": sum(expected.values())})
    assert all(value > 0 for value in cost.values())
    assert meta["budget"] is None
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert f"Cost estimate ${cost['total']:.4f}" in markdown


def test_budget_stops_the_run_cleanly_and_a_rerun_resumes(tmp_path: Path, make_server: ServerFactory) -> None:
    server = make_server()
    config = write_config(tmp_path / "aligngate.yaml", server.url, pricing=PRICING, models={"max_tokens": 64})
    out = tmp_path / "out"

    stopped = check(config, out, "--budget", "0.05")

    assert stopped["exit"] == 4
    meta = stopped["meta"]
    assert isinstance(meta, dict)
    assert meta["budget"]["stopped"] is True and 0 < meta["budget"]["spent_usd"] <= 0.05
    assert stopped["overall_status"] == "partial"
    errors = [axis for axis in stopped["axes"] if axis["error_cause"] == "budget"]  # type: ignore[union-attr]
    assert errors and "reached its budget" in errors[0]["error"]
    rows = [
        json.loads(line) for path in (out / "rows").glob("*.jsonl") for line in path.read_text().splitlines()
    ]
    assert any(row["score"] is not None for row in rows)
    assert any(row["error_kind"] == "budget" and "raise `budget`" in row["error"] for row in rows)
    first_requests = len(server.chat_requests())

    resumed = check(config, out, "--budget", "100")

    assert resumed["exit"] == 1
    assert resumed["meta"]["budget"]["stopped"] is False  # type: ignore[index]
    clean_server = make_server()
    clean_config = write_config(tmp_path / "clean.yaml", clean_server.url, models={"max_tokens": 64})
    assert check(clean_config, tmp_path / "clean")["exit"] == 1
    # Nothing paid for before the stop was asked again: each answer was asked once over both runs, and
    # both runs together sent no more than one clean run (identical judge requests may share a score).
    for model in (BASE, CANDIDATE):
        assert len(server.chat_requests(model)) == len(clean_server.chat_requests(model)) == 4 * PROMPTS
    assert len(server.chat_requests()) <= len(clean_server.chat_requests())
    assert first_requests < len(clean_server.chat_requests())


def test_budget_without_a_price_is_a_config_error(
    tmp_path: Path, make_server: ServerFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    server = make_server()
    config = write_config(tmp_path / "aligngate.yaml", server.url, pricing=PRICES)  # no judge price
    args = ["check", "--config", str(config), "--base", BASE, "--candidate", CANDIDATE, "--budget", "1"]
    assert main([*args, "--output-dir", str(tmp_path / "out")]) == 2
    assert "pricing has no entry for model 'sim-judge'" in capsys.readouterr().err
    assert server.chat_requests() == []


def test_plugin_workers_share_one_budget(pytester: pytest.Pytester, make_server: ServerFactory) -> None:
    server = make_server()
    write_config(pytester.path / "aligngate.yaml", server.url, pricing=PRICING, models={"max_tokens": 64})
    result = pytester.runpytest(
        "--aligngate-base", BASE, "--aligngate-candidate", CANDIDATE,
        "--aligngate-sample", "6", "--aligngate-budget", "0.05", "-n", "2",
    )  # fmt: skip
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*reached its budget*"])
    report = json.loads((pytester.path / "aligngate-output" / "report.json").read_text())
    assert report["exit_code"] == 4
    assert report["meta"]["budget"]["stopped"] is True
    assert 0 < report["meta"]["budget"]["spent_usd"] <= 0.05


def test_budget_without_prices_in_the_config_file_names_file_line_and_models(tmp_path: Path) -> None:
    config = tmp_path / "aligngate.yaml"
    config.write_text(
        "models:\n  base: {model: my-org/base}\n  candidate: {model: local:smollm2-135m}\n"
        "judge: {model: gpt-4o-mini}\npricing:\n  gpt-4o-mini: {input: 0.15, output: 0.6}\nbudget: 2\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as error:
        load_config(config)
    assert str(error.value) == (
        f"{config}:7: budget: no price for model 'my-org/base': "
        "add pricing.my-org/base (input, output: USD per million tokens)"
    )  # the local candidate costs nothing; the judge is priced
    assert main(["validate-config", "--config", str(config)]) == 2
