"""Reasoning text in replies: kept in the row, hidden from the judge and the refusal rules.

Reasoning models (DeepSeek-R1, Qwen3, gpt-oss on vLLM or Ollama) write their thinking in a
``<think>…</think>`` block before the answer, or the server returns it in a separate field, which
the adapter turns into the same block. A row's ``response`` keeps the full text; only
:func:`answer_text` is judged."""

from __future__ import annotations

import re

_OPEN = re.compile(r"<think>", re.I)
_CLOSE = re.compile(r"</think>", re.I)


def answer_text(text: str) -> str:
    """The reply without its reasoning.

    Closed ``<think>`` blocks are removed; an unclosed one (cut off by ``max_tokens``) runs to the
    end; a lone ``</think>`` (templates that open the block in the prompt) ends the reasoning. Each
    tag is searched for from where the last one ended, so a hostile reply costs linear time.
    """
    kept: list[str] = []
    position = 0
    while (opening := _OPEN.search(text, position)) is not None:
        kept.append(text[position : opening.start()])
        closing = _CLOSE.search(text, opening.end())
        if closing is None:
            position = len(text)
            break
        position = closing.end()
    kept.append(text[position:])
    answer = "".join(kept)
    ends = [closing.end() for closing in _CLOSE.finditer(answer)]
    if ends:
        answer = answer[ends[-1] :]
    return answer.strip()
