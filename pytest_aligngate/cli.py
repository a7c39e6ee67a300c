"""The ``aligngate`` command: the same engine as the pytest plugin, with CI exit codes.

Exit codes: 0 pass, 1 regression, 2 config error, 3 API error, 4 partial run or budget reached,
5 judge changed. One argparse parser for every command; each command's body is a short function
that hands off to the session, the API or a module of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_aligngate import __version__, preload
from pytest_aligngate.errors import (
    EXIT_API,
    EXIT_CODES_HELP,
    EXIT_CONFIG,
    EXIT_PARTIAL,
    EXIT_PASS,
    EXIT_REGRESSION,
)
from pytest_aligngate.options import RUN_OPTIONS, RunOptions

if TYPE_CHECKING:
    from pytest_aligngate.corpus.model import Probe
    from pytest_aligngate.judging.evaluation import JudgeEval
    from pytest_aligngate.session import AuditSession




REPORT_KINDS = {"json": "JSON", "md": "MD", "html": "HTML", "junit": "JUnit"}
"""How the ``<KIND> report: <path>`` lines that end ``check``'s output name each report."""


class _JoinLists(argparse.Action):
    """``--axes a b``, ``--axes a,b`` and a repeated ``--axes`` all add to one list."""

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option: Any = None
    ) -> None:
        given = getattr(namespace, self.dest) or []
        joined = [*given, *(item for value in values for item in value)]
        setattr(namespace, self.dest, list(dict.fromkeys(joined)))


def _add_run_options(parser: argparse.ArgumentParser, names: Sequence[str]) -> None:
    for spec in RUN_OPTIONS:
        if spec.name not in names:
            continue
        many: dict[str, Any] = {"nargs": "+", "action": _JoinLists} if spec.many else {}
        parser.add_argument(
            f"--{spec.name}", dest=spec.dest, metavar=spec.metavar, help=spec.help, type=spec.parse, **many
        )


def _verdict_header(status: str) -> str:
    """The first line ``check`` prints: ``AlignGate Check: PASS``, ``FAIL`` or ``ERROR``."""
    word = status.upper() if status in ("pass", "fail") else "ERROR"
    return f"AlignGate Check: {word}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aligngate",
        description="Alignment-regression gate: did the fine-tune make the model less willing to be "
        "monitored, shut down or corrected, more eager for autonomy, or more willing to deceive?",
        epilog=EXIT_CODES_HELP,
    )
    parser.add_argument("--version", action="version", version=f"aligngate {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    check = commands.add_parser(
        "check",
        help="Compare a candidate model against a base model on every axis",
        description="Probe base and candidate with the corpus, judge every answer, test each axis "
        "for a significant regression, and write report.json, report.md, report.html, "
        "report.junit.xml and rows/ to the output dir.",
        epilog=EXIT_CODES_HELP,
    )
    _add_run_options(check, [spec.name for spec in RUN_OPTIONS])
    check.add_argument("--quiet", action="store_true", help="Print only the verdict table")

    validate = commands.add_parser(
        "validate-config",
        help="Check aligngate.yaml and the corpus without calling any model",
        description="Validate the config file and the corpus it names; exit 0 when valid, 2 otherwise.",
    )
    _add_run_options(validate, ["config", "corpus"])

    doctor = commands.add_parser(
        "doctor",
        help="Check every role's endpoint (base, candidate, judge) with one tiny request",
        description="Send one tiny chat request per role and print the endpoint, latency, the model that "
        "answered and which variable the key comes from (never the key).",
        epilog="exit codes: 0 every role answered, 2 config error, 3 an endpoint failed",
    )
    _add_run_options(doctor, ["config", "base", "candidate"])

    probe = commands.add_parser(
        "probe",
        help="Ask one model the corpus and score its answers (no comparison)",
        description="Probe one model with the corpus, judge every answer and write one row per prompt.",
    )
    probe.add_argument("--model", required=True, metavar="MODEL", help="Model id to probe")
    _add_run_options(probe, ["config", "corpus", "axes", "sample", "seed"])
    probe.add_argument(
        "--output", default="-", metavar="FILE", help="Where the rows go (default: - for stdout)"
    )
    probe.add_argument(
        "--output-format",
        choices=("jsonl", "csv"),
        help="Row format (default: csv for a .csv file, else jsonl)",
    )

    calibrate = commands.add_parser(
        "calibrate",
        help="Show the gate's sensitivity presets and export one as a thresholds section",
        description="Show the bundled presets (alpha and effect floor per sensitivity level) and "
        "optionally write one as a thresholds section for aligngate.yaml.",
    )
    calibrate.add_argument(
        "--sensitivity",
        choices=("conservative", "standard", "permissive"),
        help="The preset to select (default: standard)",
    )
    calibrate.add_argument("--write-config", action="store_true", help="Write the preset as YAML")
    calibrate.add_argument(
        "--output", default="thresholds.yaml", metavar="FILE", help="File for --write-config (- for stdout)"
    )

    cache = commands.add_parser(
        "cache",
        help="Show or clear the cache of model answers and judge scores",
        description="info: entries per model and size; clear: delete every entry.",
    )
    cache.add_argument("action", choices=("info", "clear"))
    _add_run_options(cache, ["config", "output-dir", "cache-dir"])

    judge_eval = commands.add_parser(
        "judge-eval",
        help="Measure the configured judge on the bundled labelled answers before trusting it",
        description="Judge the project's labelled aligned and misaligned answers per axis and report "
        "pairwise accuracy, AUC, Spearman's rho, the mean score by label and how often a misaligned "
        "answer that claims a score is still scored low.",
        epilog="exit codes: 0 measured (and at least --min-accuracy), 1 below --min-accuracy, 2 config "
        "error, 3 API error",
    )
    _add_run_options(judge_eval, ["config", "axes"])
    judge_eval.add_argument("--limit", type=int, metavar="N", help="At most N answer pairs per axis")
    judge_eval.add_argument("--json", metavar="FILE", help="Also write the measurements as JSON")
    judge_eval.add_argument(
        "--min-accuracy", type=float, metavar="X", help="Exit 1 when an axis's pairwise accuracy is below X"
    )

    corpus = commands.add_parser("corpus", help="Work with probe corpora (import external evaluations)")
    corpus_commands = corpus.add_subparsers(dest="corpus_command", metavar="ACTION", required=True)
    importing = corpus_commands.add_parser(
        "import",
        help="Convert an Anthropic model-written-evaluation JSONL file into a corpus YAML",
        description="Write forced-choice probes (scored without a judge) from an evaluation file, with its "
        "CC-BY-4.0 attribution. Known file names imply --axis and --polarity.",
    )
    importing.add_argument("file", type=Path, help="The .jsonl evaluation file")
    importing.add_argument("--axis", help="Axis of the probes (default: from the built-in mapping)")
    importing.add_argument(
        "--polarity",
        choices=("matching-is-misaligned", "matching-is-aligned"),
        help="Which answer answer_matching_behavior is (default: from the built-in mapping)",
    )
    importing.add_argument("--limit", type=int, metavar="N", help="Import only the first N rows")
    importing.add_argument("--output", required=True, metavar="FILE", help="YAML to write (- for stdout)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``aligngate`` console script."""
    args = build_parser().parse_args(argv)
    if args.command == "doctor":
        from pytest_aligngate.doctor import run_doctor

        return run_doctor(_options(args))
    if args.command == "check":
        return _check(args)
    if args.command == "probe":
        return _probe(args)
    if args.command == "calibrate":
        return _calibrate(args)
    if args.command == "cache":
        return _cache(args)
    if args.command == "corpus":
        return _corpus_import(args)
    if args.command == "judge-eval":
        return _judge_eval(args)
    return _validate(args)


def _options(args: argparse.Namespace) -> RunOptions:
    return RunOptions(**{spec.dest: getattr(args, spec.dest, None) for spec in RUN_OPTIONS})


def run() -> None:
    """The ``aligngate`` console script: :func:`main`, then leave as soon as every output is flushed
    (interpreter shutdown would add a few tenths of a second to every CI run)."""
    code = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _check(args: argparse.Namespace) -> int:
    from pytest_aligngate.errors import SessionSetupError
    from pytest_aligngate.session import AuditSession

    options = _options(args)
    try:
        session = AuditSession.create(options, invocation_dir=Path.cwd())
        if session.expects_server_calls():  # load the SDK and scipy while the corpus is read
            preload.start()
        plan = session.plan_all()
        session.clear_outputs()
    except SessionSetupError as exc:
        print(_verdict_header("error"))
        print(f"aligngate: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        return _run_check(session, plan, args, options)
    except Exception as exc:  # an internal error must never read as a verdict (0 or 1)
        return _internal_error(session, exc)


def _internal_error(session: AuditSession, error: Exception) -> int:
    """Report an unexpected error as an incomplete run (exit 4), keeping reports of what was decided."""
    from pytest_aligngate.safe_text import single_line

    print(_verdict_header("error"))
    # The traceback may quote an endpoint's or a model's text: each of its lines is made inert.
    for line in "".join(traceback.format_exception(error)).splitlines():
        print(single_line(line), file=sys.stderr)
    print(
        single_line(f"aligngate: internal error, the run did not complete: {type(error).__name__}: {error}"),
        file=sys.stderr,
    )
    try:
        if session.finish() is not None:
            print(f"reports of the axes decided before the error: {session.output_dir}", file=sys.stderr)
    except Exception as again:  # the reports themselves failed: the exit code still says "incomplete"
        print(single_line(f"aligngate: no reports written: {type(again).__name__}: {again}"), file=sys.stderr)
    return EXIT_PARTIAL


def _run_check(
    session: AuditSession, plan: dict[str, list[Probe]], args: argparse.Namespace, options: RunOptions
) -> int:
    from pytest_aligngate.gate.sequential import split
    from pytest_aligngate.reports import REPORT_FILES
    from pytest_aligngate.reports.log import configure, log_verdicts
    from pytest_aligngate.reports.progress import Progress
    from pytest_aligngate.reports.text import axis_table, cost_line

    logger = configure(session.config.logging)
    if args.quiet:
        logger.setLevel("WARNING")
    totals = {axis: session.rows_per_prompt * len(probes) for axis, probes in plan.items()}
    first_stage = {
        axis: session.rows_per_prompt * len(stages[0])
        for axis, probes in plan.items()
        if session.config.probes.sequential and (stages := split(probes, session.config.probes.seed, axis))
    }
    progress = Progress(totals, first_stage=first_stage, enabled=False if args.quiet else None)
    logger.info(
        f"{session.base} vs {session.candidate} on {len(plan)} axes, "
        f"{sum(len(probes) for probes in plan.values())} prompts, judge {session.judge_identity()[0]}"
    )
    asyncio.run(session.probe_all(plan, on_row=progress.advance))
    progress.close()
    report = session.finish()
    if report is None:
        print(_verdict_header("error"))
        logger.error("nothing was audited")
        return EXIT_PARTIAL
    log_verdicts(logger, report.axes)
    print(_verdict_header(report.overall_status))
    print(axis_table(report.axes))
    cost = cost_line(report.meta)
    if cost:
        print(f"\n{cost}")
    shown = options.output_dir or session.config.output.dir  # as the user wrote it: ./results/report.json
    print()
    for kind, name in REPORT_FILES.items():
        print(f"{REPORT_KINDS[kind]} report: {os.path.join(shown, name)}")
    return report.exit_code


def _probe(args: argparse.Namespace) -> int:
    from pytest_aligngate.api import AuditHarness
    from pytest_aligngate.config.load import load_config
    from pytest_aligngate.config.schema import ConfigError
    from pytest_aligngate.errors import AdapterError, SessionSetupError
    from pytest_aligngate.reports.log import configure

    try:
        config = _options(args).apply(load_config(args.config))
        harness = AuditHarness(config)
        logger = configure(config.logging)
        run = harness.probe_sync(model=args.model)
    except (ConfigError, SessionSetupError) as exc:
        print(f"aligngate: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except AdapterError as exc:
        print(f"aligngate: API error: {exc}", file=sys.stderr)
        return EXIT_API
    fmt = args.output_format or ("csv" if args.output.endswith(".csv") else "jsonl")
    text = run.to_csv() if fmt == "csv" else run.to_jsonl()
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text, encoding="utf-8")
    for axis, scores in run.scores_by_axis.items():
        logger.info(f"{args.model} {axis}: mean score {run.mean(axis):.3f} over {len(scores)} answers")
    return EXIT_PASS


def _calibrate(args: argparse.Namespace) -> int:
    from pytest_aligngate.calibrate import load_baselines, preset_table, thresholds_yaml

    baselines = load_baselines()
    chosen = args.sensitivity or baselines.default
    if args.write_config and args.output == "-":
        sys.stdout.write(thresholds_yaml(baselines.presets[chosen]))
        return EXIT_PASS
    print(preset_table(baselines, chosen))
    print(f"\nsource: {baselines.source}")
    if args.write_config:
        Path(args.output).write_text(thresholds_yaml(baselines.presets[chosen]), encoding="utf-8")
        print(f"wrote the {chosen} thresholds to {args.output}")
    return EXIT_PASS


def _cache(args: argparse.Namespace) -> int:
    from pytest_aligngate.config.load import load_config
    from pytest_aligngate.config.schema import ConfigError
    from pytest_aligngate.models.cache import ResponseCache
    from pytest_aligngate.run_dir import RunDir

    try:
        config = _options(args).apply(load_config(args.config))
    except ConfigError as exc:
        print(f"aligngate: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    folder = RunDir(Path(config.output.dir)).cache_dir(config.cache.dir).expanduser().resolve()
    cache = ResponseCache(folder)
    if args.action == "clear":
        print(f"removed {cache.clear()} entries from {cache.path}")
    else:
        print(cache.info().render())
    return EXIT_PASS


def _corpus_import(args: argparse.Namespace) -> int:
    from pytest_aligngate.corpus.anthropic_evals import corpus_yaml, import_jsonl, mapping_for
    from pytest_aligngate.corpus.model import CorpusError

    try:
        mapping = mapping_for(args.file, args.axis, args.polarity)
        probes = import_jsonl(args.file, axis=mapping.axis, polarity=mapping.polarity, limit=args.limit)
    except CorpusError as exc:
        print(f"aligngate: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    text = corpus_yaml(probes, args.file, mapping)
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {len(probes)} {mapping.axis} probes ({mapping.polarity}) to {args.output}")
    return EXIT_PASS


def _judge_eval(args: argparse.Namespace) -> int:
    from pytest_aligngate.config.load import load_config
    from pytest_aligngate.config.schema import ConfigError
    from pytest_aligngate.corpus.model import BUILTIN_AXES
    from pytest_aligngate.errors import AdapterError, AdapterUnavailable
    from pytest_aligngate.judging.evaluation import eval_table, evaluate_judge
    from pytest_aligngate.session import configured_judge

    try:
        config = _options(args).apply(load_config(args.config))
        judge = configured_judge(config)
    except (ConfigError, AdapterUnavailable) as exc:
        print(f"aligngate: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG

    async def measure() -> JudgeEval:
        try:
            return await evaluate_judge(judge, list(config.probes.axes or BUILTIN_AXES), args.limit)
        finally:
            await judge.aclose()

    try:
        report = asyncio.run(measure())
    except AdapterError as exc:
        print(f"aligngate: API error: {exc}", file=sys.stderr)
        return EXIT_API
    print(eval_table(report))
    if args.json:
        Path(args.json).write_text(report.model_dump_json(indent=2), encoding="utf-8")
    lowest = report.lowest_accuracy()
    if args.min_accuracy is not None and (lowest is None or lowest < args.min_accuracy):
        print(f"\njudge below the bar: lowest pairwise accuracy {lowest} < {args.min_accuracy:g}")
        return EXIT_REGRESSION
    return EXIT_PASS


def _validate(args: argparse.Namespace) -> int:
    from pytest_aligngate.config.load import load_config
    from pytest_aligngate.config.schema import ConfigError
    from pytest_aligngate.corpus.load import bundled_corpus_dir, load_corpus
    from pytest_aligngate.corpus.model import CorpusError

    try:
        config = _options(args).apply(load_config(args.config))
        corpus = load_corpus([config.corpus_dir() or bundled_corpus_dir()], config.probes.corpus_version)
    except (ConfigError, CorpusError) as exc:
        print(f"aligngate: invalid: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    source = config.source or "defaults (no aligngate.yaml)"
    counts = ", ".join(f"{axis} {len(corpus.for_axis(axis))}" for axis in corpus.axes())
    print(f"config ok: {source}")
    print(f"corpus ok: version {corpus.version}, {len(corpus.probes)} probes ({counts})")
    return EXIT_PASS


if __name__ == "__main__":
    sys.exit(main())
