"""Reports: every one a view of the same rows and verdicts (JSON, Markdown, terminal text)."""

from __future__ import annotations

import os
import statistics
from collections.abc import Iterable, Sequence
from pathlib import Path

from pydantic import BaseModel

from pytest_aligngate.drift import DriftReport, drift_lines
from pytest_aligngate.engine import AxisVerdict
from pytest_aligngate.judge_agreement import agreement_markdown
from pytest_aligngate.records import ProbeResult, Usage
from pytest_aligngate.safe_text import flat, markdown_code, markdown_inert, redact, single_line

WORST_PROMPTS = 3
STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"


class BudgetSummary(BaseModel):
    """The run's spending against ``budget``: calls actually sent, at their reported usage."""

    limit_usd: float
    spent_usd: float
    stopped: bool
    """True when calls were not made because they would have gone over the budget."""


class RunMeta(BaseModel):
    """What was compared, with what, and when."""

    tool_version: str
    run_id: str
    base: str
    candidate: str
    judge: str
    rubric_version: str
    corpus_version: str
    corpus_digest: str
    config_digest: str
    config_path: str | None = None
    seed: int
    sample: int | None = None
    started_at: str
    finished_at: str | None = None
    usage: dict[str, Usage] = {}
    cost: dict[str, float] = {}
    """Estimated USD per role and "total", for models with a ``pricing`` entry (cached answers included)."""
    budget: BudgetSummary | None = None
    samples_per_prompt: int = 1


class PromptRow(BaseModel):
    """One prompt with both models' answers side by side."""

    prompt_id: str
    axis: str
    base_response: str | None = None
    candidate_response: str | None = None
    base_score: float | None = None
    candidate_score: float | None = None
    base_rationale: str | None = None
    candidate_rationale: str | None = None
    base_refusal: bool = False
    candidate_refusal: bool = False
    base_error: str | None = None
    candidate_error: str | None = None
    base_scores: list[float] = []
    candidate_scores: list[float] = []
    base_sd: float | None = None
    candidate_sd: float | None = None
    base_second_score: float | None = None
    """The second judge's mean score (``judge.second_judge``); never gates."""
    candidate_second_score: float | None = None

    @property
    def change(self) -> float | None:
        if self.base_score is None or self.candidate_score is None:
            return None
        return self.candidate_score - self.base_score


class Report(BaseModel):
    """The content of ``report.json``."""

    meta: RunMeta
    overall_status: str
    exit_code: int
    axes: list[AxisVerdict]
    prompts: list[PromptRow]
    judge_drift: DriftReport | None = None


def pair_rows(rows: Iterable[ProbeResult]) -> list[PromptRow]:
    """Join base and candidate rows of the same prompt, in first-seen order.

    With k samples per prompt, ``*_score`` is the mean of the scored samples (the value the test
    uses), ``*_scores`` lists them and ``*_sd`` is their spread; response, rationale and refusal
    are the first sample's, the error the first one met.
    """
    paired: dict[str, dict[str, object]] = {}
    scores: dict[tuple[str, str], list[float]] = {}
    second: dict[tuple[str, str], list[float]] = {}
    for row in sorted(rows, key=lambda r: r.sample_index):
        entry = paired.setdefault(row.probe_id, {"prompt_id": row.probe_id, "axis": row.axis})
        scores.setdefault((row.probe_id, row.role), [])
        if f"{row.role}_response" not in entry:
            entry |= {
                f"{row.role}_response": row.response,
                f"{row.role}_rationale": row.rationale,
                f"{row.role}_refusal": row.refusal,
            }
        if row.error is not None and entry.get(f"{row.role}_error") is None:
            entry[f"{row.role}_error"] = row.error
        if row.score is not None and row.error_kind is None:
            scores[(row.probe_id, row.role)].append(row.score)
            if row.second_score is not None:
                second.setdefault((row.probe_id, row.role), []).append(row.second_score)
    for (prompt_id, role), values in scores.items():
        paired[prompt_id] |= {
            f"{role}_scores": values,
            f"{role}_score": statistics.fmean(values) if values else None,
            f"{role}_sd": statistics.stdev(values) if len(values) > 1 else None,
        }
    for (prompt_id, role), values in second.items():
        paired[prompt_id][f"{role}_second_score"] = statistics.fmean(values)
    return [PromptRow.model_validate(entry) for entry in paired.values()]


def total_usage(rows: Iterable[ProbeResult]) -> dict[str, Usage]:
    """Token usage per role and for the judge."""
    usage = {"base": Usage(), "candidate": Usage(), "judge": Usage()}
    for row in rows:
        usage[row.role] = usage[row.role] + row.usage
        usage["judge"] = usage["judge"] + row.judge_usage
    return usage


def exit_code(verdicts: Sequence[AxisVerdict]) -> int:
    """0 pass, 1 regression, 3 API error, 4 partial run, 5 judge drift (config error, 2, comes earlier)."""
    if any(v.error_cause == "api" for v in verdicts):
        return 3
    if any(v.status == "error" and v.error_cause not in ("api", "judge_drift") for v in verdicts):
        return 4
    if any(v.error_cause == "judge_drift" for v in verdicts):
        return 5
    if any(v.status == "fail" for v in verdicts):
        return 1
    return 0


def overall_status(verdicts: Sequence[AxisVerdict]) -> str:
    return {0: "pass", 1: "fail", 3: "error", 4: "partial", 5: "judge changed"}[exit_code(verdicts)]


def worst_prompts(rows: Iterable[ProbeResult], limit: int = WORST_PROMPTS) -> list[PromptRow]:
    """The prompts whose score dropped most from base to candidate."""
    dropped = [p for p in pair_rows(rows) if p.change is not None and p.change < 0]
    return sorted(dropped, key=lambda p: p.change or 0.0)[:limit]


def _num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}g}" if abs(value) < 1e-3 else f"{value:.{digits}f}"


def verdict_line(v: AxisVerdict) -> str:
    """One line: status, p, d, n and means."""
    if v.status == "error":
        return f"{v.axis}: ERROR: {single_line(v.error or '')}"
    holm = f", Holm p={_num(v.p_adjusted, 4)}" if v.correction == "holm" and v.p_adjusted is not None else ""
    line = (
        f"{v.axis}: {v.status.upper()} (p={_num(v.p_value, 4)}{holm}, d={_num(v.effect_size, 2)}, "
        f"n={v.n_base}/{v.n_candidate}, mean base={_num(v.mean_base)} candidate={_num(v.mean_candidate)}; "
        f"gate: p < {v.alpha:g} and d < -{v.effect_floor:g})"
    )
    return line + ("; inconclusive at this n" if v.inconclusive else "")


def verdict_properties(verdict: AxisVerdict) -> list[tuple[str, object]]:
    """The verdict as JUnit properties: pytest's ``user_properties`` and ``report.junit.xml``."""
    keys = ("status", "p_value", "effect_size", "n_base", "n_candidate", "mean_base", "mean_candidate")
    keys += ("alpha", "effect_floor", "refusals_base", "refusals_candidate")
    pairs: list[tuple[str, object]] = [("aligngate_axis", verdict.axis)]
    pairs += [(key, getattr(verdict, key)) for key in keys]
    if verdict.mean_diff_ci is not None:
        pairs.append(("mean_diff_ci", f"{verdict.mean_diff_ci[0]:.4f},{verdict.mean_diff_ci[1]:.4f}"))
    pairs += [(key, getattr(verdict, key)) for key in _STATISTICS_PROPERTIES]
    # p_adjusted is only known once every axis has a p-value (Holm); until then it is omitted.
    for key in ("p_adjusted", "p_bound"):
        if getattr(verdict, key) is not None:
            pairs.append((key, getattr(verdict, key)))
    if verdict.effect_size_ci is not None:
        pairs.append(("effect_size_ci", f"{verdict.effect_size_ci[0]:.4f},{verdict.effect_size_ci[1]:.4f}"))
    return pairs


_STATISTICS_PROPERTIES = (
    "test",
    "alternative",
    "correction",
    "min_detectable_effect",
    "inconclusive",
    "samples_per_prompt",
    "prompts_dropped",
)


def with_flips(verdict: AxisVerdict, rows: Iterable[ProbeResult], cut: float) -> AxisVerdict:
    """The verdict with its flip counts: prompts that crossed ``cut`` from base to candidate."""
    pairs = [p for p in pair_rows(rows) if p.base_score is not None and p.candidate_score is not None]
    down = sum(1 for p in pairs if p.base_score >= cut > p.candidate_score)  # type: ignore[operator]
    up = sum(1 for p in pairs if p.candidate_score >= cut > p.base_score)  # type: ignore[operator]
    return verdict.model_copy(update={"flip_cut": cut, "flips_to_misaligned": down, "flips_to_aligned": up})


def flips_line(v: AxisVerdict) -> str:
    return (
        f"flips at score {v.flip_cut:g}: {v.flips_to_misaligned} prompts aligned -> misaligned, "
        f"{v.flips_to_aligned} misaligned -> aligned"
    )


def failure_message(verdict: AxisVerdict, rows: Sequence[ProbeResult]) -> str:
    """What a failing axis test prints: the numbers, flips, then the worst-regressing prompts."""
    lines = [f"alignment regression on {verdict_line(verdict)}"]
    if verdict.flip_cut is not None:
        lines.append(f"  {flips_line(verdict)}")
    if verdict.mean_diff_ci is not None:
        low, high = verdict.mean_diff_ci
        lines.append(f"  mean change {_num(verdict.mean_diff)} (95% CI {_num(low)} to {_num(high)})")
    if verdict.refusals_candidate != verdict.refusals_base:
        lines.append(f"  refusals: base {verdict.refusals_base}, candidate {verdict.refusals_candidate}")
    worst = worst_prompts(rows)
    if worst:
        lines.append("  worst-regressing prompts:")
    for prompt in worst:
        scores = f"{_num(prompt.base_score)} -> {_num(prompt.candidate_score)}"
        lines.append(f"  - {single_line(_clip(prompt.prompt_id))}: {scores}")
        if prompt.base_second_score is not None or prompt.candidate_second_score is not None:
            second = f"{_num(prompt.base_second_score)} -> {_num(prompt.candidate_second_score)}"
            lines.append(f"      second judge: {second}")
        lines.append(f"      base:      {single_line(_clip(prompt.base_response))}")
        lines.append(f"      candidate: {single_line(_clip(prompt.candidate_response))}")
        if prompt.base_rationale:
            lines.append(f"      judge on base:      {single_line(_clip(prompt.base_rationale))}")
        if prompt.candidate_rationale:
            lines.append(f"      judge on candidate: {single_line(_clip(prompt.candidate_rationale))}")
    return "\n".join(lines)


def _clip(text: str | None, limit: int = 160) -> str:
    """``text`` redacted (before cutting: a cut secret would leak its start), on one line, clipped."""
    line = flat(redact(text or ""))
    return line if len(line) <= limit else line[: limit - 1] + "…"


def axis_table(verdicts: Sequence[AxisVerdict]) -> str:
    """The per-axis table printed by the CLI and at the end of a pytest run."""
    header = f"{'axis':<26} {'status':<12} {'p':>8} {'d':>7} {'n':>9} {'base':>6} {'cand':>6} {'refusals':>9}"
    lines = [header, "-" * len(header)]
    for v in verdicts:
        refusals = f"{v.refusals_base}/{v.refusals_candidate}"
        lines.append(
            f"{v.axis:<26} {v.status.upper():<12} {_num(v.p_value, 3):>8} {_num(v.effect_size, 2):>7} "
            f"{f'{v.n_base}/{v.n_candidate}':>9} {_num(v.mean_base, 2):>6} {_num(v.mean_candidate, 2):>6} "
            f"{refusals:>9}"
        )
        if v.status == "error":
            lines.append(f"    {single_line(v.error or '')}")
        lines += [f"    {note}" for note in verdict_notes(v) + answer_notes(v)]
    return "\n".join(lines)


def answer_notes(v: AxisVerdict) -> list[str]:
    """What the answers of one axis show beside the statistics: failed or unusable calls by kind,
    answers cut off or clipped, suspected judge manipulation, a candidate identical to the base."""
    notes = []
    if v.identical_answers:
        notes.append("candidate answered exactly as the base on every prompt: is it the same model?")
    for label, counts in (("failed or unusable calls", v.error_counts), ("flagged answers", v.answer_flags)):
        parts = [
            f"{role} " + ", ".join(f"{kind.replace('_', ' ')} {n}" for kind, n in sorted(kinds.items()))
            for role, kinds in counts.items()
            if kinds
        ]
        if parts:
            notes.append(f"{label}: {'; '.join(parts)}")
    suspected = {role: n for role, n in v.judge_injection_suspected.items() if n}
    if suspected:
        counts = ", ".join(f"{role} {n}" for role, n in suspected.items())
        notes.append(f"answers that address the judge or claim a score: {counts} (no evidence of alignment)")
    if v.p_method:
        notes.append(f"p: {v.p_method}")
    return notes


def verdict_notes(v: AxisVerdict) -> list[str]:
    """Statistics notes of one axis: corrected p, intervals, power (inconclusive), pairing, spread."""
    if v.status == "error" or v.p_value is None:
        return []
    p = f"{v.test} {v.alternative}, p={_num(v.p_value, 3)}"
    if v.correction == "holm":
        p += f", Holm p={_num(v.p_adjusted, 3)} (bound {v.family_size}*p={_num(v.p_bound, 3)})"
    notes = [p]
    if v.mean_diff_ci is not None and v.effect_size_ci is not None:
        (diff_low, diff_high), (d_low, d_high) = v.mean_diff_ci, v.effect_size_ci
        notes.append(
            f"mean change {_num(v.mean_diff)} (95% CI {_num(diff_low)} to {_num(diff_high)}), "
            f"d {_num(v.effect_size, 2)} (95% CI {_num(d_low, 2)} to {_num(d_high, 2)})"
        )
    if v.inconclusive:
        notes.append(
            f"inconclusive at this n: detectable effect (80% power) d={_num(v.min_detectable_effect, 2)} "
            f"> effect floor {v.effect_floor:g}"
        )
    if v.holm_only_fail:
        notes.append("fails under Holm across the run (its pytest item passed on the per-item bound)")
    if v.prompts_dropped:
        notes.append(f"{v.prompts_dropped} prompts scored on one side only were dropped from the pairing")
    if v.samples_per_prompt > 1:
        notes.append(
            f"{v.samples_per_prompt} samples per prompt, averaged; within-prompt SD "
            f"base {_num(v.within_sd_base, 2)}, candidate {_num(v.within_sd_candidate, 2)}"
        )
    return notes


def method_notes(v: AxisVerdict) -> list[str]:
    """Judged and forced-choice probes of one axis summarised apart (means base -> candidate)."""
    names = {"judged": "judged", "forced_choice": "forced-choice (aligned-option rate)"}
    notes = []
    for method, summary in v.by_method.items():
        note = (
            f"{names.get(method, method)} {_num(summary.mean_base, 2)} -> {_num(summary.mean_candidate, 2)} "
            f"(n={summary.n_prompts}"
        )
        if summary.logprob_rows:
            note += f", {summary.logprob_rows} rows by logprob mass"
        notes.append(note + ")")
    if v.unparseable_base or v.unparseable_candidate:
        notes.append(f"unparseable choices base {v.unparseable_base}, candidate {v.unparseable_candidate}")
    return notes


def cost_line(meta: RunMeta) -> str | None:
    """The cost estimate and the budget in one sentence; None when neither is configured."""
    parts = []
    if meta.cost:
        roles = ", ".join(f"{role} ${usd:.4f}" for role, usd in meta.cost.items() if role != "total")
        parts.append(f"Cost estimate ${meta.cost.get('total', 0.0):.4f} ({roles}).")
    if meta.budget is not None:
        budget = meta.budget
        state = "stopped before going over" if budget.stopped else "not reached"
        parts.append(f"Budget ${budget.limit_usd:.4f}: ${budget.spent_usd:.4f} spent this run, {state}.")
    return " ".join(parts) or None


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
        "| axis | status | p | d | n (base/cand) | mean base | mean cand | refusals (base/cand) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for v in report.axes:
        lines.append(
            f"| {v.axis} | {v.status.upper()} | {_num(v.p_value, 3)} | {_num(v.effect_size, 2)} | "
            f"{v.n_base}/{v.n_candidate} | {_num(v.mean_base, 2)} | {_num(v.mean_candidate, 2)} | "
            f"{v.refusals_base}/{v.refusals_candidate} |"
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
                scores = f"{_num(p.base_second_score, 2)} → {_num(p.candidate_second_score, 2)}"
                second = f" (second judge {scores})"
            lines.append(
                f"| {_md_cell(p.prompt_id)}{second} | {_num(p.base_score, 2)} | "
                f"{_num(p.candidate_score, 2)} | "
                f"{_md_cell(p.base_response)} | {_md_cell(p.candidate_response)} | "
                f"{_md_cell(p.base_rationale)} | {_md_cell(p.candidate_rationale)} |"
            )
    return redact("\n".join(lines)) + "\n"


def _md_cell(text: str | None) -> str:
    """Untrusted text as an inert Markdown table cell."""
    return markdown_inert(_clip(text, 200))


def write_rows(path: Path, rows: Iterable[ProbeResult]) -> None:
    """Per-prompt rows as JSON lines."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(redact("".join(row.model_dump_json() + "\n" for row in rows)), encoding="utf-8")


def read_rows(path: Path) -> list[ProbeResult]:
    return [
        ProbeResult.model_validate_json(line)
        for line in path.read_text(encoding="utf-8").split("\n")  # not splitlines: U+2028 is in answers
        if line
    ]


REPORT_FILES = {"json": "report.json", "md": "report.md", "html": "report.html", "junit": "report.junit.xml"}


def report_paths(output_dir: Path) -> dict[str, Path]:
    """Where every report of a run lives, by kind."""
    return {kind: output_dir / name for kind, name in REPORT_FILES.items()}


def write_reports(output_dir: Path, report: Report) -> dict[str, Path]:
    """Write every report (json, md, html, junit) into ``output_dir``; returns their paths.

    The Markdown is also appended to ``$GITHUB_STEP_SUMMARY`` when that variable is set.
    """
    from pytest_aligngate.report_html import render_html
    from pytest_aligngate.report_junit import junit_xml

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
