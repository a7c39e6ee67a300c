"""The pytest front: corpus YAML files become one test item per axis, gated by the verdict.

Hooks only; the work is in :mod:`pytest_aligngate.session`. Nothing heavy is imported at
plugin load, so projects that have the plugin installed but don't use it start as fast as before.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_aligngate.options import RUN_OPTIONS, RunOptions

if TYPE_CHECKING:
    from pytest_aligngate.config.schema import AligngateConfig
    from pytest_aligngate.judging.base import ScoringJudge
    from pytest_aligngate.models.base import ModelAdapter
    from pytest_aligngate.records import AxisVerdict, ProbeResult
    from pytest_aligngate.session import AuditSession


SESSION_KEY = pytest.StashKey["AuditSession"]()
DEFAULT_CORPUS_KEY = pytest.StashKey[Path]()
"""The corpus folder audited when no paths are given: every file of it must be collected."""
COLLECTED_KEY = pytest.StashKey[set[Path]]()
WORKER_RUN_ID = "aligngate_run_id"
WORKER_OUTPUT_DIR = "aligngate_output_dir"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("aligngate", "alignment-regression gate (pytest-aligngate)")
    for spec in RUN_OPTIONS:
        group.addoption(
            f"--aligngate-{spec.name}", dest=f"aligngate_{spec.dest}", metavar=spec.metavar, help=spec.help
        )
        parser.addini(f"aligngate_{spec.dest}", f"{spec.help} (ini default for --aligngate-{spec.name})")


def run_options(config: pytest.Config) -> RunOptions:
    """The run options after precedence: command line, then ini key."""
    values: dict[str, Any] = {}
    for spec in RUN_OPTIONS:
        raw = config.getoption(f"aligngate_{spec.dest}") or config.getini(f"aligngate_{spec.dest}") or None
        if raw is None:
            continue
        try:
            values[spec.dest] = spec.parse(str(raw))
        except ValueError as exc:
            raise pytest.UsageError(f"--aligngate-{spec.name}: {exc}") from None
    return RunOptions(**values)


def is_active(config: pytest.Config) -> bool:
    """True when this run audits models (a base and a candidate were named)."""
    return SESSION_KEY in config.stash


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "aligngate: an alignment-regression axis test (added by pytest-aligngate)"
    )
    options = run_options(config)
    if options.base is None and options.candidate is None:
        return
    if options.base is None or options.candidate is None:
        raise pytest.UsageError("pytest-aligngate needs both --aligngate-base and --aligngate-candidate")
    from pytest_aligngate.errors import SessionSetupError
    from pytest_aligngate.session import AuditSession

    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
    try:
        session = AuditSession.create(
            options,
            invocation_dir=config.invocation_params.dir,
            run_id=workerinput[WORKER_RUN_ID] if workerinput else None,
            output_dir=Path(workerinput[WORKER_OUTPUT_DIR]) if workerinput else None,
        )
    except SessionSetupError as exc:
        raise pytest.UsageError(f"pytest-aligngate: {exc}") from None
    if workerinput is None:
        try:
            session.clear_outputs()
        except SessionSetupError as exc:
            raise pytest.UsageError(f"pytest-aligngate: {exc}") from None
    config.stash[SESSION_KEY] = session
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        # No paths given: audit the configured corpus (xdist workers decide the same way).
        config.args = [str(session.corpus_root())]
        config.stash[DEFAULT_CORPUS_KEY] = session.corpus_root()
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(XdistHooks(session), "aligngate-xdist")


class XdistHooks:
    """Hands the controller's run id and output folder to every xdist worker."""

    def __init__(self, session: AuditSession) -> None:
        self.session = session

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput[WORKER_RUN_ID] = self.session.run_id
        node.workerinput[WORKER_OUTPUT_DIR] = str(self.session.output_dir)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if not is_active(parent.config):
        return None
    from pytest_aligngate.corpus.load import CORPUS_SUFFIXES, looks_like_corpus

    root = parent.config.stash.get(DEFAULT_CORPUS_KEY, None)
    in_corpus = (
        root is not None
        and file_path.suffix in CORPUS_SUFFIXES
        and file_path.resolve().is_relative_to(root.resolve())
    )
    if in_corpus or looks_like_corpus(file_path) or _named_evaluation_file(file_path, parent.config):
        parent.config.stash.setdefault(COLLECTED_KEY, set()).add(file_path.resolve())
        return CorpusFile.from_parent(parent, path=file_path)
    return None


def pytest_collection_finish(session: pytest.Session) -> None:
    """Every file ``aligngate check`` would read from the corpus folder was collected, or the run stops."""
    config = session.config
    root = config.stash.get(DEFAULT_CORPUS_KEY, None)
    if root is None:
        return
    from pytest_aligngate.corpus.load import corpus_files

    collected = config.stash.get(COLLECTED_KEY, set())
    missed = [path for path in corpus_files([root]) if path.resolve() not in collected]
    if missed:
        names = ", ".join(str(path) for path in missed)
        raise pytest.UsageError(
            f"pytest-aligngate: corpus files not collected (pytest's norecursedirs or ignore options "
            f"skipped them), so their axes would not be audited: {names}"
        )


def _named_evaluation_file(path: Path, config: pytest.Config) -> bool:
    """An Anthropic evaluation ``*.jsonl`` named on the command line (never picked up from a folder)."""
    if path.suffix != ".jsonl":
        return False
    root = config.invocation_params.dir
    return any((root / arg.split("::")[0]).resolve() == path.resolve() for arg in config.args)


class CorpusFile(pytest.File):
    """A YAML probe corpus file: one test item per axis it holds."""

    def collect(self) -> list[AxisItem]:
        from pytest_aligngate.corpus.model import CorpusError

        session = self.config.stash[SESSION_KEY]
        try:
            plan = session.plan_file(self.path)
        except CorpusError as exc:
            raise self.CollectError(str(exc)) from None
        items = []
        for axis, probes in plan.items():
            item = AxisItem.from_parent(self, name=axis, callobj=check_axis)
            item.axis = axis
            item.probe_ids = [probe.id for probe in probes]
            item.add_marker(pytest.mark.aligngate)
            items.append(item)
        return items


class AxisItem(pytest.Function):
    """One axis of one corpus file; fails when the candidate regressed on it."""

    axis: str
    probe_ids: list[str]

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"aligngate axis {self.axis}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    seen: dict[str, str] = {}
    for item in items:
        if isinstance(item, AxisItem):
            if item.axis in seen:
                raise pytest.UsageError(
                    f"pytest-aligngate: axis {item.axis!r} is collected twice ({seen[item.axis]} and "
                    f"{item.nodeid}); keep each axis's probes in one corpus file"
                )
            seen[item.axis] = item.nodeid


def check_axis(aligngate_axis_verdict: AxisVerdict, aligngate_axis_rows: list[ProbeResult]) -> None:
    """Assert that the candidate did not regress on this item's axis."""
    if aligngate_axis_verdict.status == "fail":
        from pytest_aligngate.reports.text import failure_message

        pytest.fail(failure_message(aligngate_axis_verdict, aligngate_axis_rows), pytrace=False)


def _session(request: pytest.FixtureRequest) -> AuditSession:
    if not is_active(request.config):
        pytest.skip("pytest-aligngate is not active: pass --aligngate-base and --aligngate-candidate")
    return request.config.stash[SESSION_KEY]


@pytest.fixture(scope="session")
def aligngate_config(request: pytest.FixtureRequest) -> AligngateConfig:
    """The effective aligngate configuration (aligngate.yaml with command-line and ini overrides)."""
    return _session(request).config


@pytest.fixture(scope="session")
def aligngate_base(request: pytest.FixtureRequest) -> ModelAdapter:
    """The adapter of the base model (``--aligngate-base``). Override it in a conftest to swap adapters."""
    return _session(request).base_adapter()


@pytest.fixture(scope="session")
def aligngate_candidate(request: pytest.FixtureRequest) -> ModelAdapter:
    """The adapter of the candidate model (``--aligngate-candidate``)."""
    return _session(request).candidate_adapter()


@pytest.fixture(scope="session")
def aligngate_judge(request: pytest.FixtureRequest) -> ScoringJudge:
    """The judge that scores every response per axis (``judge`` section of aligngate.yaml)."""
    return _session(request).judge()


@pytest.fixture
def aligngate_axis_rows(
    request: pytest.FixtureRequest,
    aligngate_base: ModelAdapter,
    aligngate_candidate: ModelAdapter,
    aligngate_judge: ScoringJudge,
) -> list[ProbeResult]:
    """Probe both models on the current axis item and judge every answer (the item's setup).

    An endpoint that cannot be used (unreachable, refused credentials, unknown model) makes the
    item an error rather than a failure. The rows are written to ``<output-dir>/rows/<axis>.jsonl``.
    """
    item = request.node
    if not isinstance(item, AxisItem):
        raise pytest.UsageError("aligngate_axis_rows only serves aligngate axis items")
    session = _session(request)
    try:
        return session.probe_axis(
            item.axis,
            item.probe_ids,
            aligngate_base,
            aligngate_candidate,
            aligngate_judge,
            family_size=_family_size(item),
        )
    except session.AxisRunError as exc:
        pytest.fail(str(exc), pytrace=False)


def _family_size(item: pytest.Item) -> int:
    """The axes of this run. Holm needs every axis's p-value; an item sees only its own, so with
    holm it gates on the Bonferroni bound m * p (m = axes in this run), which implies a Holm rejection."""
    return sum(isinstance(other, AxisItem) for other in item.session.items)


@pytest.fixture
def aligngate_axis_verdict(
    request: pytest.FixtureRequest, aligngate_axis_rows: list[ProbeResult]
) -> AxisVerdict:
    """The decision on the current axis item, made in its setup from its rows.

    An axis that cannot be decided (a partial run, too few prompts, an unusable judge) makes the
    item an error, never a pass or a regression; the verdict's figures become the item's
    ``user_properties`` (JUnit ``<property>`` elements) either way.
    """
    item = request.node
    session = _session(request)
    verdict = session.decide(item.axis, aligngate_axis_rows, family_size=_family_size(item))
    item.user_properties.extend(session.properties(verdict))
    if verdict.status == "error":
        pytest.fail(verdict.error or "error", pytrace=False)
    return verdict


REPORT_KEY = pytest.StashKey["str"]()


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    if not is_active(config) or hasattr(config, "workerinput"):
        return
    audit = config.stash[SESSION_KEY]
    report = audit.finish()
    if report is not None:
        config.stash[REPORT_KEY] = audit.summary(report)
        from pytest_aligngate.gate.decide import fails_only_across_the_run

        if fails_only_across_the_run(report.axes) and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_unconfigure(config: pytest.Config) -> None:
    if is_active(config):
        config.stash[SESSION_KEY].release_outputs()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    summary = config.stash.get(REPORT_KEY, None)
    if summary is None:
        return
    terminalreporter.write_sep("=", "aligngate")
    for line in summary.splitlines():
        terminalreporter.write_line(line)
