"""``report.html``: one self-contained page (inline CSS, SVG and vanilla JS; nothing from the network).

It holds the per-axis summary, base-vs-candidate score histograms per axis drawn as SVG, and a
per-prompt table that the reader can filter by axis and sort by score change (also from the
address: ``report.html#axis=shutdown_attitude&sort=change-desc``). Every piece of
text from a model, the judge or the config goes through :func:`escape` (``html.escape`` after
:func:`~pytest_aligngate.safe_text.visible_controls`)."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

from pytest_aligngate.records import AxisVerdict
from pytest_aligngate.reports.model import PromptRow, Report
from pytest_aligngate.reports.text import (
    accuracy_cell,
    answer_notes,
    cost_line,
    gate_rule,
    num,
    verdict_notes,
)
from pytest_aligngate.safe_text import visible_controls

BINS = 10
BASE_COLOUR = "#4c78a8"
CANDIDATE_COLOUR = "#f58518"
STATUS_COLOUR = {
    "pass": "#2e7d32",
    "improved": "#1565c0",
    "fail": "#c62828",
    "error": "#6a1b9a",
    "insufficient": "#8d6e63",
}

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.meta{color:#555;margin:0 0 12px}.meta code{background:#f3f3f3;padding:0 3px;border-radius:3px}
table{border-collapse:collapse;width:100%}th,td{border:1px solid #ddd;padding:4px 8px;vertical-align:top}
th{background:#f6f6f6;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-weight:600;font-size:12px}
.charts{display:flex;flex-wrap:wrap;gap:16px}
figure{margin:0;border:1px solid #ddd;border-radius:6px;padding:8px}
figcaption{font-weight:600;margin-bottom:4px}
.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 10px}
.controls{margin:8px 0;display:flex;gap:16px;align-items:center}
td.text{max-width:420px;white-space:pre-wrap;word-wrap:break-word}
.why{color:#555;font-size:12px;margin-top:4px}
.flag{color:#6a1b9a;font-size:12px;font-weight:600}.neg{color:#c62828}.pos{color:#2e7d32}
"""

SCRIPT = """
(function(){
  var body=document.getElementById('prompt-rows');
  var filter=document.getElementById('axis-filter');
  var sorter=document.getElementById('sort-by');
  var count=document.getElementById('shown-count');
  var rows=Array.prototype.slice.call(body.rows);
  function change(r){var v=r.getAttribute('data-change');return v===''?Infinity:parseFloat(v);}
  function apply(){
    var axis=filter.value,order=sorter.value,shown=0;
    rows.sort(function(a,b){
      if(order==='id'){return a.getAttribute('data-id')<b.getAttribute('data-id')?-1:1;}
      var d=change(a)-change(b);
      if(isNaN(d)){d=0;}
      return order==='change-desc'?-d:d;
    });
    rows.forEach(function(r){
      var on=axis==='all'||r.getAttribute('data-axis')===axis;
      r.style.display=on?'':'none';shown+=on?1:0;body.appendChild(r);
    });
    count.textContent=shown+' of '+rows.length+' prompts';
  }
  var wanted=new URLSearchParams(location.hash.slice(1));
  if(wanted.get('axis')){filter.value=wanted.get('axis');}
  if(wanted.get('sort')){sorter.value=wanted.get('sort');}
  filter.addEventListener('change',apply);sorter.addEventListener('change',apply);apply();
})();
"""


def escape(text: str) -> str:
    """HTML-escaped text with control characters shown as escapes (newlines and tabs kept)."""
    return html.escape(visible_controls(text, keep="\n\t"))


def histogram(scores: Sequence[float], bins: int = BINS) -> list[int]:
    """Counts of scores in ``bins`` equal bins over 0..1 (1.0 falls in the last bin)."""
    counts = [0] * bins
    for score in scores:
        counts[min(bins - 1, max(0, int(score * bins)))] += 1
    return counts


def score_chart(axis: str, base: Sequence[float], candidate: Sequence[float]) -> str:
    """Grouped bars of the base and candidate score distributions of one axis, as inline SVG."""
    width, height, left, bottom, top = 380, 170, 30, 24, 8
    plot_w, plot_h = width - left - 8, height - bottom - top
    counts = {"base": histogram(base), "candidate": histogram(candidate)}
    peak = max([1, *counts["base"], *counts["candidate"]])
    slot = plot_w / BINS
    bar = slot * 0.4
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'class="score-chart" data-axis="{escape(axis)}" '
        f'aria-label="{escape(f"score distribution of {axis}, base versus candidate")}">',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#888"/>',
        f'<text x="{left - 4}" y="{top + 8}" font-size="10" text-anchor="end">{peak}</text>',
        f'<text x="{left - 4}" y="{top + plot_h}" font-size="10" text-anchor="end">0</text>',
    ]
    for i in range(BINS + 1):
        if i % 2 == 0:
            x = left + i * slot
            parts.append(
                f'<text x="{x:.1f}" y="{height - 8}" font-size="10" text-anchor="middle">{i / BINS:g}</text>'
            )
    for offset, (role, colour) in enumerate((("base", BASE_COLOUR), ("candidate", CANDIDATE_COLOUR))):
        for i, n in enumerate(counts[role]):
            if n == 0:
                continue
            h = plot_h * n / peak
            x = left + i * slot + slot * 0.1 + offset * bar
            label = f"{role}: {n} in {i / BINS:g}-{(i + 1) / BINS:g}"
            parts.append(
                f'<rect class="bar-{role}" x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar:.1f}" '
                f'height="{h:.1f}" fill="{colour}"><title>{escape(label)}</title></rect>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _badge(status: str) -> str:
    colour = STATUS_COLOUR.get(status, "#555")
    label = escape(status.upper())
    return f'<span class="badge status-{escape(status)}" style="background:{colour}">{label}</span>'


def _summary_table(axes: Sequence[AxisVerdict]) -> str:
    head = (
        "<tr><th>axis</th><th>status</th><th>p</th><th>d</th><th>n (base/cand)</th><th>mean base</th>"
        "<th>mean cand</th><th>refusals (base/cand)</th><th>scoring errors (base/cand)</th><th>gate</th>"
        "<th>judge accuracy</th></tr>"
    )
    rows = []
    for v in axes:
        rows.append(
            f'<tr data-axis="{escape(v.axis)}"><td>{escape(v.axis)}</td><td>{_badge(v.status)}</td>'
            f'<td class="num">{num(v.p_value, 3)}</td><td class="num">{num(v.effect_size, 2)}</td>'
            f'<td class="num">{v.n_base}/{v.n_candidate}</td><td class="num">{num(v.mean_base, 2)}</td>'
            f'<td class="num">{num(v.mean_candidate, 2)}</td>'
            f'<td class="num">{v.refusals_base}/{v.refusals_candidate}</td>'
            f'<td class="num">{v.scoring_errors_base}/{v.scoring_errors_candidate}</td>'
            f"<td>{escape(gate_rule(v))}</td>"
            f'<td class="num judge-accuracy">{accuracy_cell(v)}</td></tr>'
        )
        if v.error:
            rows.append(f'<tr><td></td><td colspan="10">{escape(v.error)}</td></tr>')
        for note in [*verdict_notes(v), *answer_notes(v)]:
            rows.append(f'<tr class="note"><td></td><td colspan="10">{escape(note)}</td></tr>')
    return f'<table id="summary"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'


def _agreement(report: Report) -> str:
    """The second judge's agreement per axis (``judge.second_judge``); empty without one."""
    from pytest_aligngate.reports.agreement import AGREEMENT_HEADERS, agreement_cells

    agreed = [(v.axis, v.judge_agreement) for v in report.axes if v.judge_agreement is not None]
    if not agreed:
        return ""
    first = agreed[0][1]
    head = "".join(f"<th>{escape(name)}</th>" for name in AGREEMENT_HEADERS)
    rows = "".join(
        f"<tr><td>{escape(axis)}</td>"
        + "".join(f'<td class="num">{escape(cell)}</td>' for cell in agreement_cells(agreement))
        + "</tr>"
        for axis, agreement in agreed
    )
    title = f"Judge agreement: {report.meta.judge} vs {first.second_judge}"
    note = f"Second judge, not gating. Cut {first.cut:g}: score >= cut counts as aligned."
    return (
        f"<h2>{escape(title)}</h2><p>{escape(note)}</p>"
        f'<table id="judge-agreement"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'
    )


def _charts(report: Report) -> str:
    figures = []
    for v in report.axes:
        prompts = [p for p in report.prompts if p.axis == v.axis]
        base = [p.base_score for p in prompts if p.base_score is not None]
        candidate = [p.candidate_score for p in prompts if p.candidate_score is not None]
        caption = f"{v.axis}: mean {num(v.mean_base, 2)} → {num(v.mean_candidate, 2)}"
        chart = score_chart(v.axis, base, candidate)
        figures.append(f"<figure><figcaption>{escape(caption)}</figcaption>{chart}</figure>")
    legend = (
        f'<div class="legend">judge score (1.0 = aligned)'
        f'<span style="background:{BASE_COLOUR}"></span>base'
        f'<span style="background:{CANDIDATE_COLOUR}"></span>candidate</div>'
    )
    return f'{legend}<div class="charts">{"".join(figures)}</div>'


def _answer(response: str | None, rationale: str | None, refusal: bool, error: str | None) -> str:
    parts = [escape(response or "")]
    if refusal:
        parts.append('<div class="flag">refusal</div>')
    if error:
        parts.append(f'<div class="flag">error: {escape(error)}</div>')
    if rationale:
        parts.append(f'<div class="why">judge: {escape(rationale)}</div>')
    return "".join(parts)


def _prompt_row(p: PromptRow) -> str:
    change = p.change
    tone = "" if change is None or change == 0 else ("neg" if change < 0 else "pos")
    return (
        f'<tr data-axis="{escape(p.axis)}" data-id="{escape(p.prompt_id)}" '
        f'data-change="{"" if change is None else f"{change:.6f}"}">'
        f"<td>{escape(p.prompt_id)}</td><td>{escape(p.axis)}</td>"
        f'<td class="num">{num(p.base_score, 2)}</td><td class="num">{num(p.candidate_score, 2)}</td>'
        f'<td class="num {tone}">{num(change, 2)}</td>'
        f'<td class="text">{_answer(p.base_response, p.base_rationale, p.base_refusal, p.base_error)}</td>'
        f'<td class="text">'
        f"{_answer(p.candidate_response, p.candidate_rationale, p.candidate_refusal, p.candidate_error)}</td>"
        "</tr>"
    )


def _prompt_table(report: Report) -> str:
    options = ['<option value="all">all axes</option>']
    options += [f'<option value="{escape(v.axis)}">{escape(v.axis)}</option>' for v in report.axes]
    ordered = sorted(report.prompts, key=lambda p: math.inf if p.change is None else p.change)
    controls = (
        '<div class="controls"><label>axis <select id="axis-filter">' + "".join(options) + "</select></label>"
        '<label>sort by <select id="sort-by"><option value="change-asc">score change, worst first</option>'
        '<option value="change-desc">score change, best first</option>'
        '<option value="id">prompt id</option></select></label>'
        f'<span id="shown-count">{len(ordered)} of {len(ordered)} prompts</span></div>'
    )
    head = (
        "<tr><th>prompt</th><th>axis</th><th>base</th><th>candidate</th><th>change</th>"
        "<th>base answer</th><th>candidate answer</th></tr>"
    )
    body = "".join(_prompt_row(p) for p in ordered)
    table = f'<table id="prompts"><thead>{head}</thead><tbody id="prompt-rows">{body}</tbody></table>'
    return controls + table


def _meta(report: Report) -> str:
    m = report.meta
    usage = ", ".join(
        f"{escape(role)} {u.prompt_tokens}+{u.completion_tokens}" for role, u in m.usage.items()
    )
    return (
        f'<p class="meta">Base <code>{escape(m.base)}</code> '
        f"vs candidate <code>{escape(m.candidate)}</code>, "
        f"judged by <code>{escape(m.judge)}</code>. Corpus {escape(m.corpus_version)} "
        f"(<code>{escape(m.corpus_digest)}</code>), rubrics {escape(m.rubric_version)}, "
        f"aligngate {escape(m.tool_version)}, config <code>{escape(m.config_digest)}</code>, "
        f"seed {m.seed}. Run <code>{escape(m.run_id)}</code>, {escape(m.started_at)} to "
        f"{escape(m.finished_at or '-')}. Tokens (prompt+completion): {usage or '-'}. "
        f"{escape(cost_line(m) or '')}</p>"
    )


def _triage_row(p: PromptRow) -> str:
    base = _answer(p.base_response, p.base_rationale, p.base_refusal, p.base_error)
    candidate = _answer(p.candidate_response, p.candidate_rationale, p.candidate_refusal, p.candidate_error)
    return (
        f'<tr><td>{escape(p.prompt_id)}</td><td class="num">{num(p.base_score, 2)}</td>'
        f'<td class="num">{num(p.candidate_score, 2)}</td>'
        f'<td class="text">{base}</td><td class="text">{candidate}</td></tr>'
    )


def _triage(report: Report) -> str:
    """Per failed axis: the flip counts and the worst-regressing prompts with both judge rationales."""
    from pytest_aligngate.judging.drift import drift_lines
    from pytest_aligngate.reports.model import WORST_PROMPTS
    from pytest_aligngate.reports.text import flips_line

    parts = []
    if report.judge_drift is not None:
        items = "".join(f"<li>{escape(line)}</li>" for line in drift_lines(report.judge_drift))
        parts.append(f"<h2>Judge drift ({escape(report.judge_drift.judge)})</h2><ul>{items}</ul>")
    head = "<tr><th>prompt</th><th>base</th><th>candidate</th><th>base answer</th><th>candidate answer</th>"
    for v in report.axes:
        if v.status != "fail":
            continue
        dropped = [p for p in report.prompts if p.axis == v.axis and p.change is not None and p.change < 0]
        worst = sorted(dropped, key=lambda p: p.change or 0.0)[:WORST_PROMPTS]
        flips = f"<p>{escape(flips_line(v))}</p>" if v.flip_cut is not None else ""
        rows = "".join(_triage_row(p) for p in worst)
        table = f"<table><thead>{head}</tr></thead><tbody>{rows}</tbody></table>"
        parts.append(f"<h2>Triage: {escape(v.axis)}</h2>{flips}{table}")
    return "".join(parts)


def render_html(report: Report) -> str:
    """The whole page as one string."""
    title = f"aligngate: {report.overall_status.upper()}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
        f"<h1>aligngate: {_badge(report.overall_status)}</h1>{_meta(report)}"
        f"<h2>Axes</h2>{_summary_table(report.axes)}{_agreement(report)}{_triage(report)}"
        f"<h2>Score distributions</h2>{_charts(report)}"
        f"<h2>Prompts</h2>{_prompt_table(report)}"
        f"<script>{SCRIPT}</script></body></html>\n"
    )
