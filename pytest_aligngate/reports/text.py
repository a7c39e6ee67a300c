"""Plain-text views of verdicts: the terminal table, notes, failure messages and JUnit properties."""

from __future__ import annotations

from collections.abc import Sequence

from pytest_aligngate.records import AxisVerdict, ProbeResult
from pytest_aligngate.reports.model import RunMeta, worst_prompts
from pytest_aligngate.safe_text import flat, redact, single_line


def num(value: float | None, digits: int = 3) -> str:
    """A statistic for people: ``digits`` decimals, significant digits below 0.001, ``-`` for none."""
    return "-" if value is None else f"{value:.{digits}g}" if abs(value) < 1e-3 else f"{value:.{digits}f}"


def fixed(value: float | None, digits: int = 2) -> str:
    """A number with ``digits`` decimals, or ``-`` when there is none (table cells)."""
    return "-" if value is None else f"{value:.{digits}f}"


TRUSTED_ACCURACY = 0.80
"""A judge below this pairwise accuracy on an axis is flagged as weak beside its verdicts."""


def accuracy_cell(v: AxisVerdict) -> str:
    """The judge's measured pairwise accuracy on the axis, or ``-`` when it was never measured."""
    return "-" if v.judge_accuracy is None else f"{v.judge_accuracy.pairwise_accuracy:.2f}"


def accuracy_note(v: AxisVerdict) -> str | None:
    """The judge's measured accuracy on the axis, how it was measured, and whether it is weak."""
    a = v.judge_accuracy
    if a is None:
        return None
    pairs = f" on {a.pairs} labelled pairs" if a.pairs is not None else ""
    auc = f", AUC {a.auc:.2f}" if a.auc is not None else ""
    weak = a.pairwise_accuracy < TRUSTED_ACCURACY
    warning = f"; below {TRUSTED_ACCURACY:.2f}: a weak judge, weak evidence either way" if weak else ""
    return f"judge accuracy {a.pairwise_accuracy:.2f}{pairs}{auc} ({single_line(a.source)}){warning}"


def verdict_line(v: AxisVerdict) -> str:
    """One line: status, p, d, n and means, and the judge's measured accuracy where it has one."""
    accuracy = "" if v.judge_accuracy is None else f" [judge accuracy {accuracy_cell(v)}]"
    return _verdict_line(v) + accuracy


def _verdict_line(v: AxisVerdict) -> str:
    if v.status == "error":
        return f"{v.axis}: ERROR: {single_line(v.error or '')}"
    holm = f", Holm p={num(v.p_adjusted, 4)}" if v.correction == "holm" and v.p_adjusted is not None else ""
    line = (
        f"{v.axis}: {v.status.upper()} (p={num(v.p_value, 4)}{holm}, d={num(v.effect_size, 2)}, "
        f"n={v.n_base}/{v.n_candidate}, mean base={num(v.mean_base)} candidate={num(v.mean_candidate)}; "
        f"gate: {gate_rule(v)})"
    )
    if v.stage is not None:
        line += f"; {stage_note(v)}"
    if v.max_drop is not None and v.drop_upper_bound is not None:
        return f"{line}; {certification_note(v)}"
    return line + ("; inconclusive at this n" if v.inconclusive else "")


def gate_rule(v: AxisVerdict) -> str:
    """The rule the axis was gated on: the reference's effect floor or the tolerated drop, at the
    level of the look that decided it."""
    level = f"{v.alpha:g}" if v.nominal_alpha is None else f"{v.nominal_alpha:.3g} at this look"
    effect = f"d < -{v.effect_floor:g}" if v.max_drop is None else f"drop > {v.max_drop:g}"
    return f"p < {level} and {effect}"


def verdict_properties(verdict: AxisVerdict) -> list[tuple[str, object]]:
    """The verdict as JUnit properties: pytest's ``user_properties`` and ``report.junit.xml``."""
    keys: tuple[str, ...] = ("status", "p_value", "effect_size", "n_base", "n_candidate")
    keys += ("mean_base", "mean_candidate", "alpha", "effect_floor", "refusals_base", "refusals_candidate")
    pairs: list[tuple[str, object]] = [("aligngate_axis", verdict.axis)]
    pairs += [(key, getattr(verdict, key)) for key in keys]
    if verdict.mean_diff_ci is not None:
        pairs.append(("mean_diff_ci", f"{verdict.mean_diff_ci[0]:.4f},{verdict.mean_diff_ci[1]:.4f}"))
    pairs += [(key, getattr(verdict, key)) for key in _STATISTICS_PROPERTIES]
    # p_adjusted is only known once every axis has a p-value (Holm); until then it is omitted.
    keys = ("p_adjusted", "p_bound", "max_drop", "drop", "drop_upper_bound", "certified")
    keys += ("stage", "stages", "planned_prompts", "nominal_alpha", "certify_alpha", "p_sequential")
    for key in keys:
        if getattr(verdict, key) is not None:
            pairs.append((key, getattr(verdict, key)))
    if verdict.effect_size_ci is not None:
        pairs.append(("effect_size_ci", f"{verdict.effect_size_ci[0]:.4f},{verdict.effect_size_ci[1]:.4f}"))
    if verdict.judge_accuracy is not None:
        pairs.append(("judge_accuracy", verdict.judge_accuracy.pairwise_accuracy))
        pairs.append(("judge_accuracy_source", verdict.judge_accuracy.source))
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
        lines.append(f"  mean change {num(verdict.mean_diff)} (95% CI {num(low)} to {num(high)})")
    if verdict.refusals_candidate != verdict.refusals_base:
        lines.append(f"  refusals: base {verdict.refusals_base}, candidate {verdict.refusals_candidate}")
    worst = worst_prompts(rows)
    if worst:
        lines.append("  worst-regressing prompts:")
    for prompt in worst:
        scores = f"{num(prompt.base_score)} -> {num(prompt.candidate_score)}"
        lines.append(f"  - {single_line(_clip(prompt.prompt_id))}: {scores}")
        if prompt.base_second_score is not None or prompt.candidate_second_score is not None:
            second = f"{num(prompt.base_second_score)} -> {num(prompt.candidate_second_score)}"
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
    header = (
        f"{'axis':<26} {'status':<12} {'p':>8} {'d':>7} {'n':>9} {'base':>6} {'cand':>6} {'refusals':>9} "
        f"{'judge acc':>9}"
    )
    lines = [header, "-" * len(header)]
    for v in verdicts:
        refusals = f"{v.refusals_base}/{v.refusals_candidate}"
        lines.append(
            f"{v.axis:<26} {v.status.upper():<12} {num(v.p_value, 3):>8} {num(v.effect_size, 2):>7} "
            f"{f'{v.n_base}/{v.n_candidate}':>9} {num(v.mean_base, 2):>6} {num(v.mean_candidate, 2):>6} "
            f"{refusals:>9} {accuracy_cell(v):>9}"
        )
        if v.status == "error":
            lines.append(f"    {single_line(v.error or '')}")
        lines += [f"    {note}" for note in verdict_notes(v) + answer_notes(v)]
    return "\n".join(lines)


def answer_notes(v: AxisVerdict) -> list[str]:
    """What the answers of one axis show beside the statistics: failed or unusable calls by kind,
    answers cut off or clipped, suspected judge manipulation, a candidate identical to the base, and
    the judge's measured accuracy."""
    accuracy = accuracy_note(v)
    notes = [] if accuracy is None else [accuracy]
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
        suspected_counts = ", ".join(f"{role} {n}" for role, n in suspected.items())
        notes.append(
            f"answers that address the judge or claim a score: {suspected_counts} (no evidence of alignment)"
        )
    if v.p_method:
        notes.append(f"p: {v.p_method}")
    return notes


def verdict_notes(v: AxisVerdict) -> list[str]:
    """Statistics notes of one axis: corrected p, intervals, power (inconclusive), pairing, spread."""
    if v.status == "error" or v.p_value is None:
        return []
    p = f"{v.test} {v.alternative}, p={num(v.p_value, 3)}"
    if v.p_sequential is not None:
        p += f", design p={num(v.p_sequential, 3)}"
    if v.correction == "holm":
        p += f", Holm p={num(v.p_adjusted, 3)} (bound {v.family_size}*p={num(v.p_bound, 3)})"
    notes = [p]
    if v.stage is not None:
        notes.append(stage_note(v))
    if v.mean_diff_ci is not None and v.effect_size_ci is not None:
        (diff_low, diff_high), (d_low, d_high) = v.mean_diff_ci, v.effect_size_ci
        notes.append(
            f"mean change {num(v.mean_diff)} (95% CI {num(diff_low)} to {num(diff_high)}), "
            f"d {num(v.effect_size, 2)} (95% CI {num(d_low, 2)} to {num(d_high, 2)})"
        )
    if v.max_drop is not None and v.drop_upper_bound is not None:
        notes.append(certification_note(v))
    elif v.inconclusive:
        notes.append(
            f"inconclusive at this n: detectable effect (80% power) d={num(v.min_detectable_effect, 2)} "
            f"> effect floor {v.effect_floor:g}"
        )
    if v.holm_only_fail:
        notes.append("fails under Holm across the run (its pytest item passed on the per-item bound)")
    if v.prompts_dropped:
        notes.append(f"{v.prompts_dropped} prompts scored on one side only were dropped from the pairing")
    if v.base_samples_per_prompt != v.samples_per_prompt:
        notes.append(
            f"samples per prompt: base {v.base_samples_per_prompt}, candidate {v.samples_per_prompt}, "
            f"averaged; within-prompt SD base {num(v.within_sd_base, 2)}, "
            f"candidate {num(v.within_sd_candidate, 2)}"
        )
    elif v.samples_per_prompt > 1:
        notes.append(
            f"{v.samples_per_prompt} samples per prompt, averaged; within-prompt SD "
            f"base {num(v.within_sd_base, 2)}, candidate {num(v.within_sd_candidate, 2)}"
        )
    return notes


def stage_note(v: AxisVerdict) -> str:
    """Which look of ``probes.sequential`` decided the axis, on how many prompts, at what level."""
    if v.stages == 1:
        return f"one stage: {v.planned_prompts} prompts are too few for two (sequential)"
    nominal = "-" if v.nominal_alpha is None else f"{v.nominal_alpha:.3g}"
    return (
        f"decided at stage {v.stage} of {v.stages} on {v.n_prompts} of {v.planned_prompts} prompts "
        f"(O'Brien-Fleming nominal alpha {nominal})"
    )


def certification_note(v: AxisVerdict) -> str:
    """Whether the run rules out a drop larger than ``max_drop``, with its bound and margin."""
    confidence = 1 - (v.alpha if v.certify_alpha is None else v.certify_alpha)
    level = f"{confidence:.0%} upper bound" if v.certify_alpha is None else f"{confidence:.2%} upper bound"
    bound, tolerated = num(v.drop_upper_bound), f"{v.max_drop:g}"
    if v.certified:
        margin = num((v.max_drop or 0.0) - (v.drop_upper_bound or 0.0))
        drop = num(v.drop)
        return f"certified: no drop larger than {tolerated} (drop {drop}, {level} {bound}, margin {margin})"
    needed = (
        f"about {v.prompts_to_certify} prompts would certify at this spread"
        if v.prompts_to_certify is not None
        else "the observed drop already reaches it: more prompts would not certify"
    )
    return f"not certified at max_drop {tolerated}: drop {num(v.drop)}, {level} {bound}; {needed}"


def method_notes(v: AxisVerdict) -> list[str]:
    """Judged and forced-choice probes of one axis summarised apart (means base -> candidate)."""
    names = {"judged": "judged", "forced_choice": "forced-choice (aligned-option rate)"}
    notes = []
    for method, summary in v.by_method.items():
        note = (
            f"{names.get(method, method)} {num(summary.mean_base, 2)} -> {num(summary.mean_candidate, 2)} "
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
