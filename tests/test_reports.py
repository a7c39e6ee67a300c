"""Reports of a real ``aligngate check`` run over HTTP against the simulated server."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
import yaml

from pytest_aligngate.cli import main
from pytest_aligngate.reports.html import histogram, render_html
from pytest_aligngate.reports.junit import junit_xml
from pytest_aligngate.reports.model import Report
from pytest_aligngate.reports.schema import report_schema, schema_text
from pytest_aligngate.testing.server import SimulatedOpenAIServer

REGRESSED = "shutdown_attitude"
SAMPLE = 12
ROW = re.compile(r'<tr data-axis="([^"]+)" data-id="([^"]+)" data-change="([^"]*)"( style="[^"]*")?>')


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory, sim_server: SimulatedOpenAIServer) -> Path:
    """One check run (4 axes, 12 prompts each) whose candidate regressed on shutdown_attitude."""
    folder = tmp_path_factory.mktemp("reports")
    config = folder / "aligngate.yaml"
    settings = {
        "models": {"base_url": sim_server.url, "max_retries": 1, "timeout": 10},
        "judge": {"model": "sim-judge"},
        "probes": {"sample": SAMPLE},
    }
    config.write_text(yaml.safe_dump(settings), encoding="utf-8")
    args = ["--config", str(config), "--base", "sim:aligned", "--candidate", f"sim:regress={REGRESSED}"]
    code = main(["check", *args, "--output-dir", str(folder / "out"), "--quiet"])
    assert code == 1
    return folder / "out"


@pytest.fixture(scope="module")
def report(run_dir: Path) -> Report:
    return Report.model_validate_json((run_dir / "report.json").read_text(encoding="utf-8"))


def test_every_report_is_written(run_dir: Path, report: Report) -> None:
    names = {"report.json", "report.md", "report.html", "report.junit.xml"}
    assert {p.name for p in run_dir.glob("report.*")} == names
    assert report.overall_status == "fail"
    assert [v.axis for v in report.axes if v.status == "fail"] == [REGRESSED]
    assert len(report.prompts) == 4 * SAMPLE


def test_html_is_self_contained(run_dir: Path) -> None:
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "<script src" not in page and "<link" not in page and "@import" not in page
    # The only URL is the SVG namespace, which browsers never fetch.
    assert set(re.findall(r"https?://[^\s\"'<>]+", page)) == {"http://www.w3.org/2000/svg"}
    assert page.count("<svg") == 4


def test_html_escapes_model_text(report: Report) -> None:
    hostile = report.model_copy(deep=True)
    hostile.prompts[0].candidate_response = '<script>alert("x")</script> & </td>'
    hostile.prompts[0].base_rationale = "<img src=x onerror=alert(1)>"
    hostile.meta.candidate = '"><b>model</b>'
    page = render_html(hostile)
    assert "<script>alert" not in page and "<img" not in page and "<b>model" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;/td&gt;" in page
    assert page.count("<script>") == 1


def test_histogram_bins_cover_zero_to_one() -> None:
    assert histogram([0.0, 0.05, 0.1, 0.55, 0.99, 1.0]) == [2, 1, 0, 0, 0, 1, 0, 0, 0, 2]


def _chromium_dom(page: Path, fragment: str, profile: Path) -> str:
    browser = shutil.which("chromium")
    if browser is None:
        pytest.skip("chromium is not on PATH (apt-get install chromium) to render report.html")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"]
    flags += ["--disable-background-networking", "--disable-component-update", "--disable-sync"]
    done = subprocess.run(
        [browser, *flags, f"--user-data-dir={profile}", "--dump-dom", f"{page.as_uri()}#{fragment}"],
        capture_output=True,
        text=True,
        timeout=90,
        check=True,
    )
    return done.stdout


def test_browser_filters_and_sorts_prompts(run_dir: Path, report: Report, tmp_path: Path) -> None:
    dom = _chromium_dom(run_dir / "report.html", f"axis={REGRESSED}&sort=change-asc", tmp_path)
    rows = ROW.findall(dom)
    assert len(rows) == len(report.prompts)
    shown = [(axis, float(change)) for axis, _id, change, style in rows if "none" not in style]
    assert len(shown) == SAMPLE and {axis for axis, _ in shown} == {REGRESSED}
    changes = [change for _, change in shown]
    assert changes == sorted(changes) and changes[0] < -0.5
    assert f'<span id="shown-count">{SAMPLE} of {len(report.prompts)} prompts</span>' in dom
    assert dom.count('class="bar-candidate"') > 0 and dom.count("<svg") == 4

    dom = _chromium_dom(run_dir / "report.html", "sort=change-desc", tmp_path)
    rows = ROW.findall(dom)
    assert all("none" not in style for *_, style in rows)
    changes = [float(change) for _, _, change, _ in rows]
    assert changes == sorted(changes, reverse=True)


def test_junit_has_one_testcase_per_axis(run_dir: Path, report: Report) -> None:
    root = ET.parse(run_dir / "report.junit.xml").getroot()
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    assert {k: suite.get(k) for k in ("tests", "failures", "errors", "skipped")} == {
        "tests": "4",
        "failures": "1",
        "errors": "0",
        "skipped": "0",
    }
    assert float(suite.get("time", "-1")) >= 0 and suite.get("name") == "aligngate"
    cases = {case.get("name"): case for case in suite.findall("testcase")}
    assert set(cases) == {v.axis for v in report.axes}
    failed = cases[REGRESSED]
    props = {p.get("name"): p.get("value") for p in failed.findall("properties/property")}
    verdict = next(v for v in report.axes if v.axis == REGRESSED)
    assert float(props["p_value"]) == pytest.approx(verdict.p_value)
    assert float(props["effect_size"]) == pytest.approx(verdict.effect_size)
    assert props["n_base"] == props["n_candidate"] == str(SAMPLE)
    (failure,) = failed.findall("failure")
    assert failure.get("type") == "AlignmentRegression" and REGRESSED in failure.get("message", "")
    assert "candidate:" in (failure.text or "")
    assert all(not case.findall("failure") for name, case in cases.items() if name != REGRESSED)


def test_junit_reports_errors_and_strips_control_characters(report: Report) -> None:
    broken = report.model_copy(deep=True)
    broken.axes[0] = broken.axes[0].model_copy(
        update={"status": "error", "error": "endpoint \x1b[31mdown\x00", "error_cause": "api"}
    )
    root = ET.fromstring(junit_xml(broken).encode())
    suite = root.find("testsuite")
    assert suite is not None and suite.get("errors") == "1"
    error = suite.find(f"testcase[@name='{broken.axes[0].axis}']/error")
    assert error is not None and error.get("type") == "APIError"
    assert error.get("message") == "endpoint \ufffd[31mdown\ufffd"


def test_committed_schema_is_the_generated_one() -> None:
    committed = Path(__file__).resolve().parents[1] / "schemas" / "report.schema.json"
    assert committed.read_text(encoding="utf-8") == schema_text(), (
        "regenerate: python -m pytest_aligngate.reports.schema > schemas/report.schema.json"
    )


def test_reports_validate_against_the_schema(run_dir: Path, report: Report) -> None:
    validator = jsonschema.Draft202012Validator(report_schema())
    validator.validate(json.loads((run_dir / "report.json").read_text(encoding="utf-8")))
    flat = report.model_copy(deep=True)
    flat.axes[0] = flat.axes[0].model_copy(update={"effect_size": float("-inf")})
    document = json.loads(flat.model_dump_json())
    assert document["axes"][0]["effect_size"] == "-Infinity"
    validator.validate(document)
    document["axes"][0]["status"] = "maybe"
    assert not validator.is_valid(document)
