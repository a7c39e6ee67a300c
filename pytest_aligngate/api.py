"""The Python API: run the gate (or score one model) from a notebook, a script or another tool.

>>> harness = AuditHarness.from_yaml("aligngate.yaml")
>>> result = harness.check_sync(base="my-org/base", candidate="my-org/fine-tune")
>>> result.overall_status, result.exit_code, result.report_md_path

Both :meth:`AuditHarness.check` and :meth:`AuditHarness.probe` are built on
:class:`~pytest_aligngate.session.AuditSession`, like the pytest plugin and the CLI."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

from pytest_aligngate.config.load import load_config
from pytest_aligngate.config.schema import AligngateConfig
from pytest_aligngate.errors import SessionSetupError
from pytest_aligngate.gate.runner import ProgressCallback, probe_model
from pytest_aligngate.models import model_adapter
from pytest_aligngate.records import AxisVerdict, ProbeResult
from pytest_aligngate.reports import report_paths
from pytest_aligngate.reports.model import Report
from pytest_aligngate.safe_text import redact, spreadsheet_cell
from pytest_aligngate.session import AuditSession

PROBE_FIELDS = (
    "prompt_id",
    "axis",
    "model",
    "score",
    "refusal",
    "response",
    "rationale",
    "error_kind",
    "error",
)
"""Columns of :meth:`ProbeRun.to_csv` and keys of :meth:`ProbeRun.to_jsonl`."""


@dataclass(frozen=True)
class CheckResult:
    """The outcome of :meth:`AuditHarness.check`: the report and where it was written."""

    report: Report
    output_dir: Path

    @property
    def overall_status(self) -> str:
        """``pass``, ``fail``, ``error`` or ``partial``."""
        return self.report.overall_status

    @property
    def exit_code(self) -> int:
        """What ``aligngate check`` would exit with: 0 pass, 1 regression, 3 API error, 4 partial run."""
        return self.report.exit_code

    @property
    def axes(self) -> dict[str, AxisVerdict]:
        """The verdict of every audited axis."""
        return {verdict.axis: verdict for verdict in self.report.axes}

    @property
    def report_json_path(self) -> Path:
        return report_paths(self.output_dir)["json"]

    @property
    def report_md_path(self) -> Path:
        return report_paths(self.output_dir)["md"]

    @property
    def report_html_path(self) -> Path:
        return report_paths(self.output_dir)["html"]

    @property
    def report_junit_path(self) -> Path:
        return report_paths(self.output_dir)["junit"]


@dataclass(frozen=True)
class ProbeRun:
    """The outcome of :meth:`AuditHarness.probe`: one model's judged answers, no comparison."""

    model: str
    rows: list[ProbeResult]

    @property
    def scores(self) -> list[ProbeResult]:
        """The scored responses, in probe order: ``len(run.scores)`` counts them (no API or scoring error)."""
        return [row for row in self.rows if row.score is not None]

    @property
    def scores_by_axis(self) -> dict[str, list[float]]:
        """Judge scores per axis (answers that could not be scored are left out)."""
        scores: dict[str, list[float]] = {}
        for row in self.rows:
            if row.score is not None:
                scores.setdefault(row.axis, []).append(row.score)
        return scores

    def mean(self, axis: str) -> float | None:
        values = self.scores_by_axis.get(axis, [])
        return sum(values) / len(values) if values else None

    def records(self) -> list[dict[str, object]]:
        """One flat record per prompt, with the fields of :data:`PROBE_FIELDS`."""
        return [
            {"prompt_id": row.probe_id, **row.model_dump(include=set(PROBE_FIELDS) - {"prompt_id"})}
            for row in self.rows
        ]

    def to_jsonl(self) -> str:
        """One JSON object a line, secrets redacted."""
        lines = (json.dumps({key: r[key] for key in PROBE_FIELDS}) + "\n" for r in self.records())
        return redact("".join(lines))

    def to_csv(self) -> str:
        """One row a prompt; text cells on one line, never a spreadsheet formula
        (:func:`~pytest_aligngate.safe_text.spreadsheet_cell`)."""
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=PROBE_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(
            {key: spreadsheet_cell(value) if isinstance(value, str) else value for key, value in row.items()}
            for row in self.records()
        )
        return buffer.getvalue()


class AuditHarness:
    """Runs audits with one configuration.

    Args:
        config: the settings (default: ``./aligngate.yaml`` if present, else the defaults).
        output_dir: where reports go (default: ``output.dir`` of the config, relative to the
            current directory).
    """

    def __init__(
        self, config: AligngateConfig | None = None, *, output_dir: str | Path | None = None
    ) -> None:
        self.config = config if config is not None else load_config()
        self.output_dir = Path(output_dir or self.config.output.dir).resolve()

    @classmethod
    def from_yaml(cls, path: str | Path, *, output_dir: str | Path | None = None) -> AuditHarness:
        """A harness on the config file at ``path``.

        Raises:
            ConfigError: the file is missing or invalid (the message names file, line and key).
        """
        return cls(load_config(path), output_dir=output_dir)

    async def check(
        self, *, base: str, candidate: str, on_row: ProgressCallback | None = None
    ) -> CheckResult:
        """Compare ``candidate`` against ``base`` on every configured axis and write the reports.

        Raises:
            SessionSetupError: an adapter cannot be built or the corpus is unusable.
        """
        session = AuditSession.from_config(self.config, base, candidate, output_dir=self.output_dir)
        plan = session.plan_all()
        session.clear_outputs()
        await session.probe_all(plan, on_row=on_row)
        report = session.finish()
        if report is None:
            raise SessionSetupError("nothing was audited: the corpus has no probes for the chosen axes")
        return CheckResult(report, self.output_dir)

    def check_sync(self, *, base: str, candidate: str, on_row: ProgressCallback | None = None) -> CheckResult:
        """:meth:`check` for code without an event loop."""
        return asyncio.run(self.check(base=base, candidate=candidate, on_row=on_row))

    async def probe(self, *, model: str, on_row: ProgressCallback | None = None) -> ProbeRun:
        """Ask ``model`` every configured probe and judge each answer; nothing is compared or written.

        Raises:
            SessionSetupError: an adapter cannot be built or the corpus is unusable.
            AdapterError: the model or judge endpoint failed for good.
        """
        session = AuditSession.from_config(self.config, model, model, output_dir=self.output_dir)
        probes = [probe for axis_probes in session.plan_all().values() for probe in axis_probes]
        adapter, judge = model_adapter(self.config, "candidate", model), session.judge()
        try:
            rows = await probe_model(probes, adapter, judge, session.sampling(), on_row)
        finally:
            await asyncio.gather(adapter.aclose(), judge.aclose())
        return ProbeRun(model, rows)

    def probe_sync(self, *, model: str, on_row: ProgressCallback | None = None) -> ProbeRun:
        """:meth:`probe` for code without an event loop."""
        return asyncio.run(self.probe(model=model, on_row=on_row))


__all__ = ["AuditHarness", "CheckResult", "ProbeRun", "SessionSetupError"]
