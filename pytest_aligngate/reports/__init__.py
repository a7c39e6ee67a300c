"""Reports: one function writes report.json, report.md, report.html and report.junit.xml for both fronts."""

from __future__ import annotations

import os
from pathlib import Path

from pytest_aligngate.reports.markdown import markdown
from pytest_aligngate.reports.model import Report
from pytest_aligngate.safe_text import redact

STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"


REPORT_FILES = {"json": "report.json", "md": "report.md", "html": "report.html", "junit": "report.junit.xml"}


def report_paths(output_dir: Path) -> dict[str, Path]:
    """Where every report of a run lives, by kind."""
    return {kind: output_dir / name for kind, name in REPORT_FILES.items()}


def write_reports(output_dir: Path, report: Report) -> dict[str, Path]:
    """Write every report (json, md, html, junit) into ``output_dir``; returns their paths.

    The Markdown is also appended to ``$GITHUB_STEP_SUMMARY`` when that variable is set.
    """
    from pytest_aligngate.reports.html import render_html
    from pytest_aligngate.reports.junit import junit_xml

    output_dir.mkdir(parents=True, exist_ok=True)
    paths = report_paths(output_dir)
    # model_dump_json, not json.dumps: it writes infinite effect sizes as "Infinity" strings.
    paths["json"].write_text(redact(report.model_dump_json(indent=2)) + "\n", encoding="utf-8")
    text = markdown(report)
    paths["md"].write_text(text, encoding="utf-8")
    paths["html"].write_text(redact(render_html(report)), encoding="utf-8")
    paths["junit"].write_text(redact(junit_xml(report)), encoding="utf-8")
    summary = os.environ.get(STEP_SUMMARY_ENV)
    if summary:
        with open(summary, "a", encoding="utf-8") as handle:
            handle.write(text + "\n")
    return paths
