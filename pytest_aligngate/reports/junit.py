"""``report.junit.xml``: one classic JUnit testcase per axis, for GitLab, Jenkins and CircleCI.

Layout: ``<testsuites><testsuite name tests failures errors skipped time timestamp><properties>``
(the run), then per axis ``<testcase classname name time><properties>`` (p, d, n, ...) with a
``<failure message type>`` (a regression) or ``<error message type>`` (an API or partial run)
whose text names the worst-regressing prompts."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from datetime import datetime

from pytest_aligngate.records import AxisVerdict
from pytest_aligngate.reports.model import WORST_PROMPTS, Report
from pytest_aligngate.reports.text import verdict_line, verdict_properties

SUITE = "aligngate"
_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_text(text: str) -> str:
    """``text`` without the characters XML 1.0 forbids (model output may hold control codes)."""
    return _NOT_XML.sub("\ufffd", text)


def _duration(report: Report) -> float:
    if not report.meta.finished_at:
        return 0.0
    start = datetime.fromisoformat(report.meta.started_at)
    return max(0.0, (datetime.fromisoformat(report.meta.finished_at) - start).total_seconds())


def _value(value: object) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return "" if value is None else str(value)


def _failure_text(report: Report, verdict: AxisVerdict) -> str:
    lines = [verdict_line(verdict)]
    dropped = [p for p in report.prompts if p.axis == verdict.axis and (p.change or 0) < 0]
    for p in sorted(dropped, key=lambda p: p.change or 0.0)[:WORST_PROMPTS]:
        lines += [
            f"{p.prompt_id}: {p.base_score} -> {p.candidate_score}",
            f"  base:      {p.base_response or ''}",
            f"  candidate: {p.candidate_response or ''}",
        ]
    return "\n".join(lines)


def junit_xml(report: Report) -> str:
    """The JUnit XML document of a report (one testcase per axis)."""
    axes = report.axes
    failures = sum(v.status == "fail" for v in axes)
    errors = sum(v.status == "error" for v in axes)
    seconds = _duration(report)
    counts = {"tests": str(len(axes)), "failures": str(failures), "errors": str(errors), "skipped": "0"}
    root = ET.Element("testsuites", {"name": SUITE, "time": f"{seconds:.3f}", **counts})
    suite = ET.SubElement(
        root,
        "testsuite",
        {"name": SUITE, "time": f"{seconds:.3f}", "timestamp": report.meta.started_at, **counts},
    )
    meta = report.meta
    run = {"base": meta.base, "candidate": meta.candidate, "judge": meta.judge, "run_id": meta.run_id}
    run |= {"corpus_version": meta.corpus_version, "rubric_version": meta.rubric_version}
    suite_props = ET.SubElement(suite, "properties")
    for name, text in run.items():
        ET.SubElement(suite_props, "property", name=name, value=_xml_text(text))
    # The axes run concurrently; each testcase gets an even share of the run's wall time.
    share = f"{seconds / len(axes):.3f}" if axes else "0.000"
    for verdict in axes:
        case = ET.SubElement(suite, "testcase", classname=SUITE, name=verdict.axis, time=share)
        props = ET.SubElement(case, "properties")
        for name, value in verdict_properties(verdict):
            ET.SubElement(props, "property", name=name, value=_xml_text(_value(value)))
        if verdict.status == "fail":
            failure = ET.SubElement(
                case, "failure", message=f"alignment regression on {verdict.axis}", type="AlignmentRegression"
            )
            failure.text = _xml_text(_failure_text(report, verdict))
        elif verdict.status == "error":
            kind = "PartialRun" if verdict.error_cause == "partial" else "APIError"
            message = _xml_text(verdict.error or "error")
            ET.SubElement(case, "error", message=message, type=kind).text = message
        else:
            ET.SubElement(case, "system-out").text = verdict_line(verdict)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
