"""``report.md``: the table a reviewer reads in a pull request (Markdown-inert text only)."""

from __future__ import annotations

from pytest_aligngate.judging.drift import drift_lines
from pytest_aligngate.reports.agreement import agreement_markdown
from pytest_aligngate.reports.model import WORST_PROMPTS, Report
from pytest_aligngate.reports.text import (
    _clip,
    accuracy_cell,
    answer_notes,
    cost_line,
    flips_line,
    method_notes,
    num,
    verdict_notes,
)
from pytest_aligngate.safe_text import markdown_code, markdown_inert, redact


def markdown(report: Report) -> str:
    """``report.md``: the table a reviewer reads in a pull request."""
    meta = report.meta
    cost = cost_line(meta)
    lines = [
        f"## aligngate: {report.overall_status.upper()}",
        "",
        f"Base {markdown_code(meta.base)} vs candidate {markdown_code(meta.candidate)}, "
        f"judged by {markdown_code(meta.judge)} (corpus {markdown_inert(meta.corpus_version)}, "
        f"rubrics {meta.rubric_version}, run {markdown_code(meta.run_id)}).",
        *([cost, ""] if cost else [""]),
        "| axis | status | p | d | n (base/cand) | mean base | mean cand | refusals (base/cand) "
        "| judge accuracy |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for v in report.axes:
        lines.append(
            f"| {v.axis} | {v.status.upper()} | {num(v.p_value, 3)} | {num(v.effect_size, 2)} | "
            f"{v.n_base}/{v.n_candidate} | {num(v.mean_base, 2)} | {num(v.mean_candidate, 2)} | "
            f"{v.refusals_base}/{v.refusals_candidate} | {accuracy_cell(v)} |"
        )
    errors = [v for v in report.axes if v.error]
    for v in errors:
        lines += ["", f"**{v.axis}**: {markdown_inert(v.error or '')}"]
    all_notes = [(v.axis, verdict_notes(v) + answer_notes(v)) for v in report.axes]
    noted = [(axis, notes) for axis, notes in all_notes if notes]
    if noted:
        lines += ["", "### Statistics", ""]
    for axis, notes in noted:
        lines.append(f"- **{axis}**: " + "; ".join(notes))
    if report.judge_drift is not None:
        drift = report.judge_drift
        versions = f"rubrics {drift.rubric_version}, anchors {drift.anchors_version}"
        title = f"### Judge drift: {drift.judge} ({versions})"
        lines += ["", title, "", *(f"- {line}" for line in drift_lines(drift))]
    methods = [(v.axis, method_notes(v)) for v in report.axes if v.by_method]
    if methods:
        lines += ["", "### Judged and forced-choice probes", ""]
    for axis, notes in methods:
        lines.append(f"- **{axis}**: " + "; ".join(notes))
    lines += agreement_markdown(report.axes, meta.judge)
    failed = [v.axis for v in report.axes if v.status == "fail"]
    by_axis = {axis: [p for p in report.prompts if p.axis == axis] for axis in failed}
    verdicts = {v.axis: v for v in report.axes}
    for axis, prompts in by_axis.items():
        dropped = sorted((p for p in prompts if (p.change or 0) < 0), key=lambda p: p.change or 0.0)
        lines += ["", f"### Worst-regressing prompts: {axis}", ""]
        if verdicts[axis].flip_cut is not None:
            lines += [flips_line(verdicts[axis]), ""]
        lines += [
            "| prompt | base | candidate | base answer | candidate answer | judge on base | judge on cand. |",
            "|---|---|---|---|---|---|---|",
        ]
        for p in dropped[:WORST_PROMPTS]:
            second = ""
            if p.base_second_score is not None or p.candidate_second_score is not None:
                scores = f"{num(p.base_second_score, 2)} → {num(p.candidate_second_score, 2)}"
                second = f" (second judge {scores})"
            lines.append(
                f"| {_md_cell(p.prompt_id)}{second} | {num(p.base_score, 2)} | "
                f"{num(p.candidate_score, 2)} | "
                f"{_md_cell(p.base_response)} | {_md_cell(p.candidate_response)} | "
                f"{_md_cell(p.base_rationale)} | {_md_cell(p.candidate_rationale)} |"
            )
    return redact("\n".join(lines)) + "\n"


def _md_cell(text: str | None) -> str:
    """Untrusted text as an inert Markdown table cell."""
    return markdown_inert(_clip(text, 200))
