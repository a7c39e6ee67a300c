"""Exit codes and the errors every layer raises, defined once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pytest_aligngate.records import AxisVerdict
from pytest_aligngate.safe_text import single_line

ErrorCause = Literal[
    "unreachable",
    "timeout",
    "auth",
    "not_found",
    "rate_limited",
    "server",
    "bad_request",
    "cache_miss",
    "budget",
    "context_length",
]
"""``context_length``: this request's prompt does not fit the model's context (an error for its row only)."""
FATAL_CAUSES: frozenset[str] = frozenset({"unreachable", "auth", "not_found", "bad_request", "cache_miss"})


class AdapterError(Exception):
    """A model call failed for good (after retries); names the endpoint, model and cause.

    ``detail`` often quotes the endpoint's reply: it is kept on one line with secrets redacted.
    """

    def __init__(self, endpoint: str, model: str, cause: ErrorCause, detail: str) -> None:
        self.endpoint = endpoint
        self.model = model
        self.cause = cause
        self.detail = single_line(detail)
        super().__init__(single_line(f"{cause}: {endpoint} (model {model!r}): {self.detail}"))

    @property
    def fatal(self) -> bool:
        """True when retrying other prompts on this endpoint is pointless."""
        return self.cause in FATAL_CAUSES


class AdapterUnavailable(ValueError):
    """The configured adapter is not built yet or needs an extra that is not installed."""


EXIT_PASS, EXIT_REGRESSION, EXIT_CONFIG, EXIT_API, EXIT_PARTIAL, EXIT_JUDGE = 0, 1, 2, 3, 4, 5
EXIT_CODES_HELP = (
    "exit codes: 0 pass, 1 regression, 2 config error, 3 API error, 4 the run did not complete (partial "
    "run, too few prompts, budget reached, internal error), 5 the judge disagrees with the anchors"
)


def exit_code(verdicts: Sequence[AxisVerdict]) -> int:
    """The run's exit code from its verdicts (a config error, 2, comes before any verdict)."""
    if any(v.error_cause == "api" for v in verdicts):
        return EXIT_API
    if any(v.status == "error" and v.error_cause not in ("api", "judge_drift") for v in verdicts):
        return EXIT_PARTIAL
    if any(v.error_cause == "judge_drift" for v in verdicts):
        return EXIT_JUDGE
    if any(v.status == "fail" for v in verdicts):
        return EXIT_REGRESSION
    return EXIT_PASS


def overall_status(verdicts: Sequence[AxisVerdict]) -> str:
    names = {EXIT_PASS: "pass", EXIT_REGRESSION: "fail", EXIT_API: "error", EXIT_PARTIAL: "partial"}
    return names.get(exit_code(verdicts), "judge changed")


class SessionSetupError(ValueError):
    """The run cannot start: a bad config file, corpus or adapter choice (exit code 2)."""


class AxisRunError(RuntimeError):
    """An axis could not be probed because an endpoint failed for good (exit code 3)."""
