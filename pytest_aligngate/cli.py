"""The ``aligngate`` command: the same engine as the pytest plugin, with CI exit codes.

Exit codes: 0 pass, 1 regression, 2 config error, 3 API error, 4 partial run.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from pytest_aligngate import __version__
from pytest_aligngate.options import RUN_OPTIONS, RunOptions

EXIT_PASS, EXIT_REGRESSION, EXIT_CONFIG, EXIT_API, EXIT_PARTIAL = 0, 1, 2, 3, 4
EXIT_CODES_HELP = "exit codes: 0 pass, 1 regression, 2 config error, 3 API error, 4 partial run"


def _add_run_options(parser: argparse.ArgumentParser, names: Sequence[str]) -> None:
    for spec in RUN_OPTIONS:
        if spec.name in names:
            parser.add_argument(
                f"--{spec.name}", dest=spec.dest, metavar=spec.metavar, help=spec.help, type=spec.parse
            )


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
        "for a significant regression, and write report.json, report.md and rows/ to the output dir.",
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``aligngate`` console script."""
    args = build_parser().parse_args(argv)
    if args.command == "check":
        return _check(args)
    return _validate(args)


def _options(args: argparse.Namespace) -> RunOptions:
    return RunOptions(**{spec.dest: getattr(args, spec.dest, None) for spec in RUN_OPTIONS})


def _check(args: argparse.Namespace) -> int:
    from pytest_aligngate.reports import axis_table
    from pytest_aligngate.session import AuditSession, SessionSetupError

    options = _options(args)
    if not options.base or not options.candidate:
        print("aligngate check: --base and --candidate are required", file=sys.stderr)
        return EXIT_CONFIG
    try:
        session = AuditSession.create(options, invocation_dir=Path.cwd())
        plan = session.plan_all()
    except SessionSetupError as exc:
        print(f"aligngate: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    session.clear_outputs()
    total = 2 * sum(len(probes) for probes in plan.values())
    progress = _Progress(total, enabled=not args.quiet and sys.stderr.isatty())
    if not args.quiet:
        print(
            f"aligngate: {session.base} vs {session.candidate} on {len(plan)} axes, "
            f"{total // 2} prompts, judge {session.config.judge.model}",
            file=sys.stderr,
        )
    asyncio.run(session.probe_all(plan, on_row=progress.advance))
    progress.close()
    report = session.finish()
    if report is None:
        print("aligngate: nothing was audited", file=sys.stderr)
        return EXIT_PARTIAL
    print(axis_table(report.axes))
    print(f"\n{report.overall_status.upper()}: reports in {session.output_dir}")
    return report.exit_code


class _Progress:
    """A one-line progress counter on a terminal; silent when output is not a TTY."""

    def __init__(self, total: int, *, enabled: bool) -> None:
        self.total = total
        self.done = 0
        self.errors = 0
        self.enabled = enabled

    def advance(self, row: object) -> None:
        self.done += 1
        self.errors += getattr(row, "error_kind", None) is not None
        if self.enabled:
            sys.stderr.write(f"\r  answered and judged {self.done}/{self.total}, errors {self.errors}")
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled and self.done:
            sys.stderr.write("\n")


def _validate(args: argparse.Namespace) -> int:
    from pytest_aligngate.config import ConfigError, load_config
    from pytest_aligngate.corpus import CorpusError, bundled_corpus_dir, load_corpus

    try:
        config = _options(args).apply(load_config(args.config))
        corpus = load_corpus([config.corpus_dir() or bundled_corpus_dir()])
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
