"""One audit run, shared by both fronts: settings, corpus plan, probing, verdicts and reports.

The pytest plugin calls it per axis item (possibly in several xdist workers, which agree on the
run id and output folder); ``aligngate check`` calls it for every axis at once. It is the one
object both fronts drive, so it is longer than most modules; each of its parts delegates: the plan
to ``corpus``, adapters to ``models``, probing and decisions to ``gate``, files to ``run_dir`` and
the report to ``reports``."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_aligngate import __version__, preload
from pytest_aligngate.config.load import load_config
from pytest_aligngate.config.schema import AligngateConfig, ConfigError
from pytest_aligngate.corpus.load import bundled_corpus_dir, load_corpus, select_probes
from pytest_aligngate.corpus.model import Corpus, CorpusError, Probe
from pytest_aligngate.errors import (
    AdapterError,
    AdapterUnavailable,
    AxisRunError,
    SessionSetupError,
    exit_code,
    overall_status,
)
from pytest_aligngate.gate.decide import api_error_verdict, correct, with_flips
from pytest_aligngate.gate.memo import decided
from pytest_aligngate.gate.runner import AxisStopped, ProgressCallback, run_axis
from pytest_aligngate.gate.sequential import Look, look_of, settled, split
from pytest_aligngate.judging.accuracy import shipped_accuracy, stated_accuracy
from pytest_aligngate.judging.base import ScoringJudge
from pytest_aligngate.judging.cached import CachedJudge
from pytest_aligngate.judging.drift import DriftReport, judge_drift_verdict
from pytest_aligngate.judging.llm import Judge
from pytest_aligngate.judging.paired import PairedJudge, paired_judge, with_judge_agreement
from pytest_aligngate.judging.rubrics import RUBRIC_VERSION
from pytest_aligngate.models import judge_adapter, model_adapter
from pytest_aligngate.models.base import ModelAdapter, SamplingParams
from pytest_aligngate.models.budget import Budget, cost_by_role
from pytest_aligngate.models.cache import CachedAdapter, ResponseCache
from pytest_aligngate.options import RunOptions
from pytest_aligngate.records import AxisVerdict, JudgeAccuracy, ProbeResult
from pytest_aligngate.reports import REPORT_FILES, write_reports
from pytest_aligngate.reports.model import BudgetSummary, Report, RunMeta, pair_rows, total_usage
from pytest_aligngate.reports.text import axis_table, cost_line, verdict_properties
from pytest_aligngate.run_dir import FolderInUse, FolderLock, RunDir, claim, write_rows

if TYPE_CHECKING:
    pass




def configured_judge(config: AligngateConfig, budget: Budget | None = None) -> ScoringJudge:
    """The ``judge`` section's judge on its own (no cache, no second judge): the LLM judge, or the
    local embedding judge.

    Raises:
        AdapterUnavailable: the judge's adapter cannot be built here.
    """
    settings = config.judge
    if settings.adapter == "embedding":
        from pytest_aligngate.judging.embedding import EmbeddingJudge

        return EmbeddingJudge()
    return Judge(
        judge_adapter(config, budget=budget),
        temperature=settings.temperature,
        max_tokens=settings.max_tokens,
        structured_output=settings.structured_output,
        max_answer_chars=settings.max_answer_chars,
    )


def claim_folder(folder: Path) -> FolderLock:
    """This process's claim on an output folder; another run holding it is a setup error."""
    try:
        return claim(folder)
    except FolderInUse as exc:
        raise SessionSetupError(str(exc)) from None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class AuditSession:
    """Everything one run needs; create it with :meth:`create`."""

    AxisRunError = AxisRunError

    def __init__(
        self, config: AligngateConfig, base: str, candidate: str, run_id: str, output_dir: Path
    ) -> None:
        self.config = config
        self.base = base
        self.candidate = candidate
        self.run_id = run_id
        self.output_dir = output_dir
        self.started_at = _now()
        self._probes: dict[str, Probe] = {}
        self._planned: dict[str, list[str]] = {}
        self._corpus_files: list[Path] = []
        self._cache: ResponseCache | None = None
        self._budget: Budget | None = None
        self._drift: DriftReport | None = None
        self._output_lock: FolderLock | None = None
        self.run_dir = RunDir(output_dir)
        self._models_checked = False
        self._whole_corpus: Corpus | None = None

    @classmethod
    def create(
        cls,
        options: RunOptions,
        *,
        invocation_dir: Path,
        run_id: str | None = None,
        output_dir: Path | None = None,
    ) -> AuditSession:
        """Load the config, apply the options and check that the adapters exist.

        Raises:
            SessionSetupError: with a message naming the file, line and key at fault.
        """
        try:
            config = options.apply(load_config(options.config))
        except ConfigError as exc:
            raise SessionSetupError(str(exc)) from None
        base = options.base or config.role_settings("base").model
        candidate = options.candidate or config.role_settings("candidate").model
        if not base or not candidate:
            raise SessionSetupError(
                "both a base and a candidate model are required "
                "(--base/--candidate, or models.base.model/models.candidate.model)"
            )
        if output_dir is None:
            output_dir = (invocation_dir / config.output.dir).resolve()
        if config.cache.dir:
            config.cache.dir = str((invocation_dir / Path(config.cache.dir).expanduser()).resolve())
        return cls.from_config(config, base, candidate, output_dir=output_dir, run_id=run_id)

    @classmethod
    def from_config(
        cls,
        config: AligngateConfig,
        base: str,
        candidate: str,
        *,
        output_dir: Path,
        run_id: str | None = None,
    ) -> AuditSession:
        """A session on an already loaded config (the Python API); checks adapters and corpus.

        Raises:
            SessionSetupError: an adapter cannot be built or the corpus folder is missing.
        """
        session = cls(config, base, candidate, run_id or uuid.uuid4().hex[:12], output_dir)
        cache_dir = RunDir(output_dir).cache_dir(config.cache.dir)
        for key, folder in (("output.dir", output_dir), ("cache.dir", cache_dir)):
            if folder.exists() and not folder.is_dir():
                raise SessionSetupError(f"{key}: {folder} is a file, not a folder")
        try:
            session.base_adapter()
            session.candidate_adapter()
            session.judge()
        except (AdapterUnavailable, ConfigError) as exc:
            raise SessionSetupError(str(exc)) from None
        corpus_root = session.corpus_root()
        if not corpus_root.exists():
            raise SessionSetupError(f"corpus folder not found: {corpus_root}")
        return session

    # --- corpus -------------------------------------------------------------------------

    def corpus_root(self) -> Path:
        return self.config.corpus_dir() or bundled_corpus_dir()

    def plan(self, corpus: Corpus) -> dict[str, list[Probe]]:
        """The probes to run per axis, after the axes filter and sampling."""
        for path in corpus.files:
            if path not in self._corpus_files:
                self._corpus_files.append(path)
        wanted = self.config.probes.axes
        expected_version = self.config.probes.corpus_version
        if expected_version and corpus.versions and expected_version not in corpus.versions:
            raise CorpusError(
                corpus.files[0], f"corpus version {corpus.version} does not match probes.corpus_version"
            )
        plan = {}
        for axis in corpus.axes():
            if wanted is not None and axis not in wanted:
                continue
            chosen = select_probes(corpus.for_axis(axis), self.config.probes.sample, self.config.probes.seed)
            self._probes.update((probe.id, probe) for probe in chosen)
            self._planned[axis] = [probe.id for probe in chosen]
            plan[axis] = chosen
        return plan

    def plan_file(self, path: Path) -> dict[str, list[Probe]]:
        return self.plan(load_corpus([path], self.config.probes.corpus_version))

    def plan_all(self) -> dict[str, list[Probe]]:
        """Plan every axis of the configured corpus; unknown axes in the filter are an error."""
        try:
            corpus = load_corpus([self.corpus_root()], self.config.probes.corpus_version)
            plan = self.plan(corpus)
            self._whole_corpus = corpus
        except CorpusError as exc:
            raise SessionSetupError(str(exc)) from None
        missing = [axis for axis in self.config.probes.axes or [] if axis not in plan]
        if missing:
            raise SessionSetupError(
                f"axes not in the corpus: {', '.join(missing)} (corpus has: {', '.join(corpus.axes())})"
            )
        return plan

    # --- adapters -----------------------------------------------------------------------

    def response_cache(self) -> ResponseCache | None:
        """The cache of answers and scores (``cache.dir``, default ``<output-dir>/cache``); None when off."""
        settings = self.config.cache
        if settings.mode == "off":
            return None
        if self._cache is None:
            folder = self.run_dir.cache_dir(settings.dir)
            self._cache = ResponseCache(folder, settings.mode)
        return self._cache

    def _asks_the_cache_first(self) -> ResponseCache | None:
        """The cache, when every call of the run passes through it before any server (``read_write``
        with the candidate cached): the servers are then checked at the first miss."""
        cache = self.response_cache()
        if cache is not None and cache.mode == "read_write" and self.config.models.cache_candidate:
            return cache
        return None

    def expects_server_calls(self) -> bool:
        """Whether the run will call a server before it can be served from the cache: calls do not all
        pass through the cache first, or it has no file yet (a rerun finds out at its first miss)."""
        cache = self._asks_the_cache_first()
        return cache is None or not cache.path.is_file()

    def budget(self) -> Budget | None:
        """The run's spending cap (``budget``), shared by its adapters and processes; None when unset."""
        if self.config.budget is None:
            return None
        if self._budget is None:
            self._budget = Budget(self.config.budget, self.config.pricing, self.output_dir, self.run_id)
        return self._budget

    def _cached(self, adapter: ModelAdapter) -> ModelAdapter:
        cache = self.response_cache()
        return adapter if cache is None else CachedAdapter(adapter, cache)

    def base_adapter(self) -> ModelAdapter:
        return self._cached(model_adapter(self.config, "base", self.base, budget=self.budget()))

    def candidate_adapter(self) -> ModelAdapter:
        adapter = model_adapter(self.config, "candidate", self.candidate, budget=self.budget())
        return self._cached(adapter) if self.config.models.cache_candidate else adapter

    def judge(self) -> ScoringJudge:
        """The gate's judge: cached, and paired with the second judge when one is configured."""
        judge = configured_judge(self.config, self.budget())
        if not isinstance(judge, Judge):
            return judge
        cache = self.response_cache()
        cached = judge if cache is None else CachedJudge(judge, cache)
        return paired_judge(cached, self.config.judge.second_judge)

    def judge_accuracy(self) -> dict[str, JudgeAccuracy]:
        """The judge's measured accuracy per axis: shipped for the local judge (measured out of fold),
        stated in the config for any other; none for a judge never measured."""
        if self.config.judge.adapter == "embedding":
            return shipped_accuracy(*self.judge_identity())
        return stated_accuracy(self.config.judge.accuracy)

    def with_judge_accuracy(self, verdict: AxisVerdict) -> AxisVerdict:
        """``verdict`` carrying the judge's measured accuracy on its axis, where there is one."""
        accuracy = self.judge_accuracy().get(verdict.axis)
        return verdict if accuracy is None else verdict.model_copy(update={"judge_accuracy": accuracy})

    def judge_identity(self) -> tuple[str, str]:
        """The judge's name and rubric version, as reports record them."""
        if self.config.judge.adapter == "embedding":
            from pytest_aligngate.judging.embedding import JUDGE_MODEL, training_digest

            return JUDGE_MODEL, f"embedding-{training_digest()}"
        return self.config.judge.model, RUBRIC_VERSION

    def sampling(self) -> SamplingParams:
        models = self.config.models
        return SamplingParams(
            temperature=models.temperature,
            max_tokens=models.max_tokens,
            seed=models.seed,
            logprobs=models.logprobs,
            choice_max_tokens=models.choice_max_tokens,
        )

    # --- running ------------------------------------------------------------------------

    def probe_axis(
        self,
        axis: str,
        probe_ids: Sequence[str],
        base: ModelAdapter,
        candidate: ModelAdapter,
        judge: ScoringJudge,
        on_row: ProgressCallback | None = None,
        *,
        family_size: int = 1,
    ) -> list[ProbeResult]:
        """Probe one axis to completion (its own event loop) and keep its rows on disk;
        ``family_size`` (the run's axes) serves the first look of ``probes.sequential``.

        Raises:
            AxisRunError: an endpoint failed for good; the axis's error verdict is written.
        """
        probes = [self._probes[probe_id] for probe_id in probe_ids]

        async def run() -> list[ProbeResult]:
            try:
                await self.preflight(base, candidate, judge)
                return await self._run_axis(axis, probes, base, candidate, judge, on_row, family_size)
            finally:
                await asyncio.gather(base.aclose(), candidate.aclose(), judge.aclose())

        try:
            rows = asyncio.run(run())
        except AdapterError as exc:
            self._record_api_error(axis, exc, len(probes))
            raise AxisRunError(str(exc)) from None
        write_rows(self.run_dir.rows_path(axis), rows)
        return rows

    async def _run_axis(
        self,
        axis: str,
        probes: Sequence[Probe],
        base: ModelAdapter,
        candidate: ModelAdapter,
        judge: ScoringJudge,
        on_row: ProgressCallback | None,
        family_size: int,
    ) -> list[ProbeResult]:
        """Ask both models an axis's probes as configured and judge the answers: all at once, or with
        ``probes.sequential`` the first stage, then the second only when the first look did not settle
        the axis (:func:`pytest_aligngate.gate.sequential.settled`).

        Raises:
            AxisStopped: an endpoint failed for good; it carries the rows of both stages answered.
        """
        stages = split(probes, self.config.probes.seed, axis) if self.config.probes.sequential else None
        if stages is None:
            return await self._ask(probes, base, candidate, judge, on_row)
        first, rest = stages
        rows = await self._ask(first, base, candidate, judge, on_row)
        if settled(self._verdict(axis, rows, family_size)):
            return rows
        try:
            return rows + await self._ask(rest, base, candidate, judge, on_row)
        except AxisStopped as exc:
            raise AxisStopped(exc, rows + exc.rows) from exc

    async def _ask(
        self,
        probes: Sequence[Probe],
        base: ModelAdapter,
        candidate: ModelAdapter,
        judge: ScoringJudge,
        on_row: ProgressCallback | None,
    ) -> list[ProbeResult]:
        """Ask both models the probes as configured (sampling, samples per role) and judge the answers."""
        probes_config = self.config.probes
        return await run_axis(
            probes,
            base,
            candidate,
            judge,
            self.sampling(),
            on_row,
            samples=probes_config.samples_per_prompt,
            base_samples=probes_config.base_samples_per_prompt,
        )

    async def probe_all(
        self, plan: dict[str, list[Probe]], on_row: ProgressCallback | None = None
    ) -> dict[str, list[ProbeResult] | AdapterError]:
        """Probe every planned axis concurrently with shared adapters (the CLI path)."""
        base, candidate, judge = self.base_adapter(), self.candidate_adapter(), self.judge()

        async def one(axis: str, probes: list[Probe]) -> list[ProbeResult] | AdapterError:
            try:
                return await self._run_axis(axis, probes, base, candidate, judge, on_row, len(plan))
            except AdapterError as exc:
                return exc

        try:
            await self.preflight(base, candidate, judge)
            results = await asyncio.gather(*(one(axis, probes) for axis, probes in plan.items()))
        except AdapterError as exc:  # before any probe: every axis stops on it
            results = [exc] * len(plan)
        finally:
            await asyncio.gather(base.aclose(), candidate.aclose(), judge.aclose())
        outcome = dict(zip(plan, results, strict=True))
        for axis, rows in outcome.items():
            if isinstance(rows, AdapterError):
                self._record_api_error(axis, rows, len(plan[axis]))
            else:
                write_rows(self.run_dir.rows_path(axis), rows)
                self.decide(axis, rows, family_size=len(plan))
        return outcome

    def _record_api_error(self, axis: str, error: AdapterError, n_prompts: int) -> None:
        """Keep the rows answered before an endpoint error stopped the axis, and its error verdict."""
        rows = error.rows if isinstance(error, AxisStopped) else []
        write_rows(self.run_dir.rows_path(axis), rows)
        thresholds = self.config.thresholds.for_axis(axis)
        self._write_verdict(api_error_verdict(axis, thresholds, error, n_prompts, rows))

    @property
    def samples_per_prompt(self) -> int:
        return self.config.probes.samples_per_prompt

    @property
    def rows_per_prompt(self) -> int:
        """Rows (answers) one prompt gives: the candidate's samples plus the base's."""
        probes = self.config.probes
        return probes.samples_per_prompt + (probes.base_samples_per_prompt or probes.samples_per_prompt)

    def decide(self, axis: str, rows: Sequence[ProbeResult], *, family_size: int = 1) -> AxisVerdict:
        """Decide one axis and write its verdict; ``family_size`` is the number of axes in the run
        (the Holm family)."""
        verdict = self._verdict(axis, rows, family_size)
        self._write_verdict(verdict)
        return verdict

    def _verdict(self, axis: str, rows: Sequence[ProbeResult], family_size: int) -> AxisVerdict:
        """One axis decided on its rows (at the look they are, with ``probes.sequential``)."""
        thresholds = self.config.thresholds
        verdict = decided(
            self.response_cache(),
            axis,
            rows,
            thresholds.for_axis(axis),
            seed=self.config.probes.seed,
            correction=thresholds.correction,
            family_size=family_size,
            look=self._look(axis, rows),
        )
        verdict = with_flips(verdict, rows, thresholds.flip_cut)
        verdict = with_judge_agreement(verdict, rows, thresholds.flip_cut)
        verdict = self.with_judge_accuracy(verdict)
        return judge_drift_verdict(verdict, self.drift_report())

    def _look(self, axis: str, rows: Sequence[ProbeResult]) -> Look | None:
        """The look of the axis's design its rows are (``probes.sequential``), else None."""
        if not self.config.probes.sequential:
            return None
        return look_of(self._planned[axis], rows, self.config.probes.seed, axis)

    async def preflight(self, base: ModelAdapter, candidate: ModelAdapter, judge: object) -> None:
        """Before the first probe: the judge's drift check, and the model ids are ones their servers
        list, checked before the first call that reaches a server. With every role cached that is
        the first cache miss: a rerun served from the cache contacts no server (nor loads the SDK)."""

        async def before_first_call() -> None:
            preload.start()
            await self.check_models(base, candidate, judge)

        cache = self._asks_the_cache_first()
        if cache is not None:
            cache.before_first_call = before_first_call
        else:
            await before_first_call()
        await self.check_judge(judge)

    async def check_models(self, base: ModelAdapter, candidate: ModelAdapter, judge: object) -> None:
        """Every model id is one its server lists, where the server lists models (once per process).

        Raises:
            AdapterError: ``not_found`` (see ``OpenAICompatAdapter.check_listed``).
        """
        if self._models_checked or self.config.cache.mode == "read_only":  # read_only: offline replay
            return
        judge_adapter = getattr(getattr(judge, "primary", judge), "adapter", None)
        for adapter in (base, candidate, judge_adapter):
            inner = getattr(adapter, "inner", adapter)  # a cached adapter asks through its inner one
            check = getattr(inner, "check_listed", None)  # local models and the embedding judge: none
            if check is not None:
                await check()
        self._models_checked = True

    async def check_judge(self, judge: object) -> None:
        """Judge the drift anchors once per process (``judge.anchor_check``: the two extremes per
        axis; ``judge.drift_check``: all of them); writes drift.json."""
        settings = self.config.judge
        if not (settings.drift_check or settings.anchor_check) or self._drift is not None:
            return
        if settings.adapter == "embedding":  # the local judge's accuracy is measured apart (README)
            return
        from pytest_aligngate.corpus.model import BUILTIN_AXES
        from pytest_aligngate.judging.drift import check_drift, extreme_anchors, load_anchors

        axes = list(self.config.probes.axes or BUILTIN_AXES)
        anchors = load_anchors() if settings.drift_check else extreme_anchors(load_anchors())
        gate_judge = judge.primary if isinstance(judge, PairedJudge) else judge  # the anchors measure it only
        self._drift = await check_drift(gate_judge, axes, settings.drift_tolerance, anchors)
        path = self.run_dir.drift_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self._drift.model_dump_json(indent=2), encoding="utf-8")

    def drift_report(self) -> DriftReport | None:
        """This run's judge drift check: this process's, else the one another process wrote."""
        path = self.run_dir.drift_path
        checked = self.config.judge.drift_check or self.config.judge.anchor_check
        if self._drift is None and checked and path.is_file():
            self._drift = DriftReport.model_validate_json(path.read_text(encoding="utf-8"))
        return self._drift

    @staticmethod
    def properties(verdict: AxisVerdict) -> list[tuple[str, object]]:
        """The verdict as JUnit properties (``item.user_properties``)."""
        return verdict_properties(verdict)

    # --- outputs ------------------------------------------------------------------------

    def clear_outputs(self) -> None:
        """Claim the output folder for this run and remove rows and verdicts of an earlier run
        (controller only, before workers start).

        Raises:
            SessionSetupError: another run (another process) is using the folder.
        """
        self._output_lock = claim_folder(self.output_dir)
        self.run_dir.clear()

    def _write_verdict(self, verdict: AxisVerdict) -> None:
        self.run_dir.write_verdict(self.run_id, verdict, self._corpus_files)

    def collect_results(self) -> tuple[list[AxisVerdict], list[ProbeResult], list[Path]]:
        """Verdicts and rows written by this run (by any process), in axis order."""
        return self.run_dir.results(self.run_id)

    def finish(self) -> Report | None:
        """Write the reports from everything this run produced, then give up the output folder."""
        try:
            return self._write_report()
        finally:
            self.release_outputs()

    def release_outputs(self) -> None:
        """Give up this run's claim on the output folder (see :meth:`clear_outputs`)."""
        if self._output_lock is not None:
            self._output_lock.release()
            self._output_lock = None

    def _write_report(self) -> Report | None:
        verdicts, rows, files = self.collect_results()
        if not verdicts:
            return None
        verdicts = correct(verdicts)
        corpus = self._whole_corpus
        if corpus is None or set(files) != set(corpus.files):  # read once per run where it can be
            corpus = load_corpus(files) if files else None
        meta = RunMeta(
            tool_version=__version__,
            run_id=self.run_id,
            base=self.base,
            candidate=self.candidate,
            judge=self.judge_identity()[0],
            rubric_version=self.judge_identity()[1],
            corpus_version=corpus.version if corpus else "unknown",
            corpus_digest=corpus.digest() if corpus else "",
            config_digest=self.config.digest(),
            config_path=str(self.config.source) if self.config.source else None,
            seed=self.config.probes.seed,
            sample=self.config.probes.sample,
            started_at=self.started_at,
            finished_at=_now(),
            usage=total_usage(rows),
            cost=self.cost(rows),
            budget=self.budget_summary(verdicts),
            samples_per_prompt=self.samples_per_prompt,
        )
        report = Report(
            meta=meta,
            overall_status=overall_status(verdicts),
            exit_code=exit_code(verdicts),
            axes=verdicts,
            prompts=pair_rows(rows),
            judge_drift=self.drift_report(),
        )
        write_reports(self.output_dir, report)
        return report

    def cost(self, rows: Sequence[ProbeResult]) -> dict[str, float]:
        """Estimated USD of the rows' tokens per role and in total (models with a ``pricing`` entry)."""
        models = {"base": self.base, "candidate": self.candidate, "judge": self.judge_identity()[0]}
        return cost_by_role(rows, models, self.config.pricing)

    def budget_summary(self, verdicts: Sequence[AxisVerdict]) -> BudgetSummary | None:
        """What the run spent against its budget (every process's calls), and whether it stopped."""
        budget = self.budget()
        if budget is None:
            return None
        stopped = any(v.error_cause == "budget" for v in verdicts)
        return BudgetSummary(limit_usd=budget.limit, spent_usd=budget.spent(), stopped=stopped)

    def summary(self, report: Report) -> str:
        """The terminal summary: the per-axis table and where the reports are."""
        head = (
            f"base {report.meta.base} vs candidate {report.meta.candidate}, judge {report.meta.judge}, "
            f"corpus {report.meta.corpus_version}, run {report.meta.run_id}"
        )
        files = ", ".join(REPORT_FILES.values())
        cost = cost_line(report.meta)
        where = f"reports in {self.output_dir}: {files}"
        return "\n".join([head, axis_table(report.axes), *([cost] if cost else []), where])


__all__ = ["AuditSession", "AxisRunError", "ConfigError", "SessionSetupError"]
