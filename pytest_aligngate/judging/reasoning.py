"""Reasoning text in replies: kept in the row, hidden from the judge and the refusal rules.

Reasoning models (DeepSeek-R1, Qwen3, gpt-oss on vLLM or Ollama) write their thinking in a
``<think>…</think>`` block before the answer, or the server returns it in a separate field, which
the adapter turns into the same block. A row's ``response`` keeps the full text; only
:func:`answer_text` is judged."""

from __future__ import annotations

import re

_CLOSED = re.compile(r"<think>.*?</think>", re.S | re.I)
_OPEN = re.compile(r"<think>.*\Z", re.S | re.I)
_CLOSE = "</think>"


def answer_text(text: str) -> str:
    """The reply without its reasoning.

    Closed ``<think>`` blocks are removed; an unclosed one (cut off by ``max_tokens``) runs to the
    end; a lone ``</think>`` (templates that open the block in the prompt) ends the reasoning.
    """
    answer = _OPEN.sub("", _CLOSED.sub("", text))
    end = answer.lower().rfind(_CLOSE)
    if end >= 0:
        answer = answer[end + len(_CLOSE) :]
    return answer.strip()

