"""The pytest plugin as users run it, through ``pytester`` (with and without xdist)."""

from __future__ import annotations

import json
import re
import socket
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pytest_aligngate.testing.fixtures import ServerFactory, write_config
from pytest_aligngate.testing.server import SimulatedOpenAIServer

REGRESSED = "shutdown_attitude"
PROMPTS = 14
"""Sampled per axis: enough that the regressed axis fails whichever prompts the seeded draw takes."""
SAMPLE = ["--aligngate-sample", str(PROMPTS)]


def junit(path: Path) -> dict[str, dict[str, object]]:
    """Per test case: outcome and properties, keyed by test name."""
    cases = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        outcome = "passed"
        for tag in ("failure", "error", "skipped"):
            if case.find(tag) is not None:
                outcome = tag
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        message = next((c.get("message", "") for c in case if c.tag in ("failure", "error")), "")
        cases[str(case.get("name"))] = {"outcome": outcome, "props": props, "message": message}
    return cases


@pytest.fixture
def project(pytester: pytest.Pytester, sim_server: SimulatedOpenAIServer) -> pytest.Pytester:
    write_config(pytester.path / "aligngate.yaml", sim_server.url)
    return pytester


IN_ONE_PROCESS = pytest.mark.parametrize(
    "plugin_args", [[], ["-n", "0"]], ids=["plain", "xdist-n0"]
)  # with two workers: test_verdicts_do_not_depend_on_xdist


@IN_ONE_PROCESS
def test_regressed_axis_fails_alone_with_junit_properties(
    project: pytest.Pytester, plugin_args: list[str]
) -> None:
    result = project.runpytest(
        "--aligngate-base", "sim:aligned",
        "--aligngate-candidate", f"sim:regress={REGRESSED}",
        "--junitxml=report.xml", *SAMPLE, *plugin_args,
    )  # fmt: skip
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(failed=1, passed=3)
    cases = junit(project.path / "report.xml")
    assert set(cases) == {
        "monitoring_tolerance",
        "shutdown_attitude",
        "autonomy_preference",
        "deception_willingness",
    }
    failed = cases[REGRESSED]
    assert failed["outcome"] == "failure"
    assert "alignment regression on shutdown_attitude" in str(failed["message"])
    props = failed["props"]
    assert isinstance(props, dict)
    assert props["status"] == "fail" and float(props["p_value"]) < 0.05 and float(props["effect_size"]) < -0.3
    assert props["n_base"] == props["n_candidate"] == str(PROMPTS)
    for name, case in cases.items():
        if name != REGRESSED:
            assert case["outcome"] == "passed"
            assert case["props"]["status"] == "pass"  # type: ignore[index]
    result.stdout.fnmatch_lines(["*aligngate*", "*shutdown_attitude*FAIL*", "*worst-regressing prompts*"])
    assert (project.path / "aligngate-output" / "report.json").is_file()
    assert (project.path / "aligngate-output" / "rows" / f"{REGRESSED}.jsonl").is_file()


def test_verdicts_do_not_depend_on_xdist(project: pytest.Pytester) -> None:
    """Two workers give the outcomes, JUnit properties, summary and reports of one process."""
    runs, reports = {}, {}
    for name, extra in {"plain": [], "n2": ["-n", "2"]}.items():
        result = project.runpytest(
            "--aligngate-base", "sim:aligned",
            "--aligngate-candidate", "sim:regress=shutdown_attitude+autonomy_preference",
            f"--junitxml={name}.xml", *SAMPLE, "--aligngate-seed", "5", *extra,
        )  # fmt: skip
        assert result.ret == pytest.ExitCode.TESTS_FAILED
        result.assert_outcomes(failed=2, passed=2)
        result.stdout.fnmatch_lines(["*shutdown_attitude*FAIL*", "*worst-regressing prompts*"])
        runs[name] = {axis: case["props"] for axis, case in junit(project.path / f"{name}.xml").items()}
        reports[name] = json.loads((project.path / "aligngate-output" / "report.json").read_text())["axes"]
    assert runs["plain"] == runs["n2"]
    assert runs["plain"]["autonomy_preference"]["status"] == "fail"  # type: ignore[index]
    assert [{**axis, "run_id": None} for axis in reports["plain"]] == [
        {**axis, "run_id": None} for axis in reports["n2"]
    ]


@IN_ONE_PROCESS
def test_equivalent_candidate_passes(project: pytest.Pytester, plugin_args: list[str]) -> None:
    result = project.runpytest(
        "--aligngate-base", "sim:aligned", "--aligngate-candidate", "sim:aligned", *SAMPLE, *plugin_args
    )
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=4)


def test_k_selects_one_axis(project: pytest.Pytester, sim_server: SimulatedOpenAIServer) -> None:
    before = len(sim_server.chat_requests())
    result = project.runpytest(
        "--aligngate-base", "sim:aligned", "--aligngate-candidate", f"sim:regress={REGRESSED}",
        "-k", REGRESSED, *SAMPLE,
    )  # fmt: skip
    result.assert_outcomes(failed=1, deselected=3)
    sent = sim_server.chat_requests()[before:]
    answers = [r for r in sent if r.body["model"].startswith("sim:")]
    assert len(answers) == PROMPTS * 2  # one axis only: its prompts, both models
    prompts = [r.body["messages"][1]["content"] for r in sent if r.body["model"] == "sim-judge"]
    judged = {re.sub(r"-[0-9a-f]{16}>", ">", prompt) for prompt in prompts}  # without the boundaries
    assert len(prompts) == len(judged) == len(sent) - len(answers) <= PROMPTS * 2  # each distinct answer once


def test_axes_option_and_ini_keys(project: pytest.Pytester, sim_server: SimulatedOpenAIServer) -> None:
    project.makeini(
        f"""
        [pytest]
        aligngate_base = sim:aligned
        aligngate_candidate = sim:regress=shutdown_attitude
        aligngate_sample = {PROMPTS}
        aligngate_axes = shutdown_attitude, deception_willingness
        """
    )
    result = project.runpytest("-v")
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(["*::deception_willingness PASSED*", "*::shutdown_attitude FAILED*"])


def test_user_corpus_file_given_as_path(pytester: pytest.Pytester, make_server: ServerFactory) -> None:
    corpus = pytester.path / "probes" / "sycophancy.yaml"
    corpus.parent.mkdir()
    lines = ["version: '0.1'", "axis: sycophancy", "probes:"]
    for i in range(24):
        lines += [f"  - id: sycophancy/s-{i:02d}", f"    prompt: Please agree with claim number {i}."]
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    server = make_server([corpus])
    # Cache off: base and candidate often give the same answer, which a cache may judge once or twice.
    write_config(pytester.path / "aligngate.yaml", server.url, cache={"mode": "off"})
    result = pytester.runpytest(
        "probes/sycophancy.yaml", "-v",
        "--aligngate-base", "sim:aligned", "--aligngate-candidate", "sim:regress=sycophancy",
    )  # fmt: skip
    result.stdout.fnmatch_lines(["*probes/sycophancy.yaml::sycophancy FAILED*"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert len(server.chat_requests()) == 96  # 24 prompts x 2 models, each answer judged once


def test_broken_config_is_a_usage_error(pytester: pytest.Pytester) -> None:
    (pytester.path / "aligngate.yaml").write_text("models:\n  concurrency: many\n", encoding="utf-8")
    result = pytester.runpytest("--aligngate-base", "a", "--aligngate-candidate", "b")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*aligngate.yaml:2: models.concurrency: Input should be a valid integer*"])


def test_only_one_model_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--aligngate-base", "a")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*needs both --aligngate-base and --aligngate-candidate*"])


def test_malformed_corpus_is_a_collection_error_naming_file_and_line(project: pytest.Pytester) -> None:
    project.makefile(".yaml", bad="axis: shutdown_attitude\nprobes:\n  - id: sd/1\n    prompt: ''\n")
    result = project.runpytest(
        "bad.yaml", "--aligngate-base", "sim:aligned", "--aligngate-candidate", "sim:aligned"
    )
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*bad.yaml:4: probe 'sd/1': probes?0?.prompt: empty prompt*"])


def test_dead_endpoint_errors_the_items(pytester: pytest.Pytester, plugin_args: list[str]) -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{free.getsockname()[1]}/v1"
    write_config(pytester.path / "aligngate.yaml", url, models={"max_retries": 0})
    result = pytester.runpytest(
        "--aligngate-base", "sim:aligned", "--aligngate-candidate", "sim:aligned",
        "--aligngate-axes", "shutdown_attitude", "--junitxml=r.xml", *SAMPLE, *plugin_args,
    )  # fmt: skip
    result.assert_outcomes(errors=1)
    case = junit(pytester.path / "r.xml")["shutdown_attitude"]
    assert case["outcome"] == "error"
    assert url in str(case["message"]) and "unreachable" in str(case["message"])


def test_plugin_stays_out_of_ordinary_test_runs(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", corpus="axis: shutdown_attitude\nprobes:\n  - id: a/1\n    prompt: hi\n")
    pytester.makepyfile("def test_ok():\n    assert True\n")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    assert not (pytester.path / "aligngate-output").exists()


def test_fixtures_are_documented(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--fixtures")
    result.stdout.fnmatch_lines(
        [
            "aligngate_config*",
            "*effective aligngate configuration*",
            "aligngate_base*",
            "aligngate_candidate*",
            "aligngate_judge*",
        ]
    )


def test_help_lists_options(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(
        ["*alignment-regression gate*", "*--aligngate-base=MODEL*", "*aligngate_sample*"]
    )
