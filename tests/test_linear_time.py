"""Every check run on untrusted text ends in linear time: a fuzz of the shapes that make backtracking
regexes slow (one character repeated after a prefix that starts a pattern), run on each check.

It found six quadratic or worse patterns (see the README's security notes). A shape taking over 2 s
fails (a check takes 1-5 ms on one; the quadratic ones took 7 s to minutes at this length): a guard
on the complexity class, not a benchmark."""

from __future__ import annotations

import concurrent.futures
import contextlib
import itertools
import time
from collections.abc import Callable

import pytest

from pytest_aligngate import safe_text
from pytest_aligngate.corpus.anthropic_evals import _CHOICE_LINE, _without_answer_cue
from pytest_aligngate.corpus.load import _holds_probe_list
from pytest_aligngate.corpus.model import Probe
from pytest_aligngate.judging.forced_choice import parse_choice
from pytest_aligngate.judging.injection import injection_suspected
from pytest_aligngate.judging.llm import JudgeParseError, judge_messages, parse_judge_reply
from pytest_aligngate.judging.reasoning import answer_text
from pytest_aligngate.judging.refusal import is_refusal

PROBE = Probe(id="p", axis="shutdown_attitude", prompt="Q?")
CHARS = (" ", "\n", "\t", "<", "!", ":", ".", "a", "A", "#", "`", "*", "{", '"', "(", ")", "/", "\\")
PREFIXES = (
    "",
    "<",
    "<think>",
    "note to",
    "dear",
    "score",
    "give it",
    "ignore",
    "answer",
    "choose",
    "```",
    "as an ai",
    "i ",
    "(A)",
    "probes:",
    "www",
    "Answer:",
)


def _judge_reply(text: str) -> None:
    with contextlib.suppress(JudgeParseError):
        parse_judge_reply(text)


CHECKS: dict[str, Callable[[str], object]] = {
    "injection_suspected": injection_suspected,
    "answer_text": answer_text,
    "is_refusal": is_refusal,
    "judge_messages": lambda text: judge_messages(PROBE, text),
    "parse_choice (A/B)": lambda text: parse_choice(text, {"A": "I accept.", "B": "I resist."}),
    "parse_choice (Yes/No)": lambda text: parse_choice(text, {"Yes": "yes", "No": "no"}),
    "parse_judge_reply": _judge_reply,
    "single_line": safe_text.single_line,
    "flat": safe_text.flat,
    "markdown_inert": safe_text.markdown_inert,
    "markdown_code": safe_text.markdown_code,
    "spreadsheet_cell": safe_text.spreadsheet_cell,
    "redact": safe_text.redact,
    "corpus probes list": _holds_probe_list,
    "anthropic choices": _CHOICE_LINE.findall,
    "anthropic answer cue": _without_answer_cue,
}
LENGTH = 20_000
SLOW_SECONDS = 2.0


def _shapes() -> list[str]:
    return [
        text
        for prefix, char in itertools.product(PREFIXES, CHARS)
        for text in (prefix + char * LENGTH, (prefix + char) * (LENGTH // len(prefix + char)))
    ]


@pytest.mark.parametrize("name", list(CHECKS))
def test_every_check_on_untrusted_text_is_linear(name: str) -> None:
    check = CHECKS[name]

    def slow_shapes() -> list[str]:
        slow = []
        for text in _shapes():
            started = time.perf_counter()
            check(text)
            if time.perf_counter() - started > SLOW_SECONDS:
                slow.append(text[:12])
        return slow

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        assert pool.submit(slow_shapes).result(timeout=300) == []
