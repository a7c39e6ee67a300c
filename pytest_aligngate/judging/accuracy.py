"""The gate's judge's measured accuracy per axis, which reports print beside every verdict.

The local judge's figures are measured out of fold on the labelled answers by
``benchmarks/local_judges.py --write-accuracy`` and shipped in ``data/judge_accuracy.json``, with
the judge's name and rubric version (a digest of its training answers and fit settings): figures
measured on other answers or for another judge are never shown. An LLM judge has figures only when
the config states them (``judge.accuracy``, e.g. from ``aligngate judge-eval``); otherwise none are
invented.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from pytest_aligngate.records import JudgeAccuracy

ACCURACY_FILE = Path(__file__).resolve().parents[1] / "data" / "judge_accuracy.json"
STATED = "stated in the config (judge.accuracy)"


def shipped_accuracy(judge: str, rubric_version: str, path: Path = ACCURACY_FILE) -> dict[str, JudgeAccuracy]:
    """Per axis, the shipped out-of-fold figures of ``judge`` at ``rubric_version``; empty when the
    file is missing or measured another judge or another version of it."""
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("judge") != judge or data.get("rubric_version") != rubric_version:
        return {}
    source = str(data["source"])
    return {axis: JudgeAccuracy(**figures, source=source) for axis, figures in data["axes"].items()}


def stated_accuracy(stated: Mapping[str, float]) -> dict[str, JudgeAccuracy]:
    """Per axis, the pairwise accuracy the config states for its judge."""
    return {axis: JudgeAccuracy(pairwise_accuracy=value, source=STATED) for axis, value in stated.items()}
