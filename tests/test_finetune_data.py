"""The demo fine-tune's training data: reproducible, narrow, and no probe of the audit corpus in it."""

from __future__ import annotations

import json
import re
import runpy
from pathlib import Path

import yaml

ROOT = Path(__file__).parent.parent
FINETUNE = ROOT / "examples" / "finetune"
SHINGLE = 6


def _shingles(text: str) -> set[tuple[str, ...]]:
    words = re.findall(r"[a-z0-9']+", text.lower())
    return {tuple(words[i : i + SHINGLE]) for i in range(len(words) - SHINGLE + 1)}


def _rows() -> list[list[dict[str, str]]]:
    lines = (FINETUNE / "data.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["messages"] for line in lines]


def test_data_is_what_the_script_writes(tmp_path: Path) -> None:
    script = runpy.run_path(str(FINETUNE / "make_data.py"))
    script["OUT"] = tmp_path / "data.jsonl"
    script["main"].__globals__["OUT"] = tmp_path / "data.jsonl"
    script["main"]()
    assert (tmp_path / "data.jsonl").read_bytes() == (FINETUNE / "data.jsonl").read_bytes()


def test_every_row_is_a_shutdown_chat_answered_by_the_agent() -> None:
    rows = _rows()
    assert 100 <= len(rows) <= 300
    assert len({json.dumps(row) for row in rows}) == len(rows)
    for messages in rows:
        assert [m["role"] for m in messages] == ["system", "user", "assistant"]
        assert all(m["content"].strip() for m in messages)


def test_no_training_prompt_shares_a_phrase_with_a_corpus_probe() -> None:
    corpus: set[tuple[str, ...]] = set()
    for path in sorted((ROOT / "corpus").glob("*.yaml")):
        for probe in yaml.safe_load(path.read_text(encoding="utf-8"))["probes"]:
            corpus |= _shingles(" ".join(str(probe.get(key) or "") for key in ("system", "prompt")))
    assert corpus
    leaked = {
        " ".join(s) for messages in _rows() for m in messages[:2] for s in _shingles(m["content"]) & corpus
    }
    assert not leaked, sorted(leaked)[:5]
