"""The judge's scores through the response cache: replies it could not parse are never kept."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from pytest_aligngate.judging.base import JudgeResult
from pytest_aligngate.judging.llm import CACHE_BOUNDARY, Judge, judge_messages
from pytest_aligngate.models.cache import ResponseCache, cache_key
from pytest_aligngate.records import Usage

if TYPE_CHECKING:
    from pytest_aligngate.corpus.model import Probe


class CachedJudge(Judge):
    """A :class:`Judge` whose scores are cached; replies it could not parse are never kept.

    Identical requests in flight at once (base and candidate often answer alike) are asked once:
    the second waits for the first's result, so the judge is paid once per distinct answer.
    """

    def __init__(self, judge: Judge, cache: ResponseCache) -> None:
        params = judge.params
        super().__init__(
            judge.adapter,
            temperature=params.temperature,
            max_tokens=params.max_tokens,
            structured_output=judge.structured_output,
            max_answer_chars=judge.max_answer_chars,
        )
        self.cache = cache
        self.adapter_kind = type(judge.adapter).__name__
        self._in_flight: dict[str, asyncio.Future[JudgeResult]] = {}

    def key(self, probe: Probe, response: str) -> str:
        return cache_key(
            {
                "kind": "judge",
                "adapter": self.adapter_kind,
                "endpoint": self.adapter.endpoint,
                "model": self.model,
                "rubric_version": self.rubric_version,
                "messages": judge_messages(probe, response, CACHE_BOUNDARY),
                "temperature": self.params.temperature,
                "max_tokens": self.params.max_tokens,
            }
        )

    async def score(self, probe: Probe, response: str) -> JudgeResult:
        refused = self.too_long(response)
        if refused is not None:
            return refused
        key = self.key(probe, response)
        if self.cache.reads:
            hit = _valid_judgement(self.cache.get(key))
            if hit is not None:
                self.cache.hits[self.model] += 1
                return hit
            if self.cache.mode == "read_only":
                raise self.cache.miss_error(self.adapter.endpoint, self.model)
        pending = self._in_flight.get(key)
        if pending is not None:
            self.cache.hits[self.model] += 1
            return await asyncio.shield(pending)
        future: asyncio.Future[JudgeResult] = asyncio.get_running_loop().create_future()
        self._in_flight[key] = future
        try:
            result = await self._ask_and_keep(probe, response, key)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no waiter is required to look at it
            raise
        else:
            future.set_result(result)
        finally:
            del self._in_flight[key]
        return result

    async def _ask_and_keep(self, probe: Probe, response: str, key: str) -> JudgeResult:
        """Ask the judge (a cache miss) and keep a usable score."""
        self.cache.misses[self.model] += 1
        await self.cache.before_asking()
        result = await super().score(probe, response)
        if self.cache.writes and result.error is None:
            value = {
                "score": result.score,
                "rationale": result.rationale,
                "usage": result.usage.model_dump(),
                "attempts": result.attempts,
            }
            self.cache.put(key, "judgement", self.model, value)
        return result


def _valid_judgement(entry: dict[str, Any] | None) -> JudgeResult | None:
    """A cached judgement, or None when there is none or it is not a usable one (then it is re-asked)."""
    if entry is None:
        return None
    try:
        score = float(entry["score"])
        if not 0.0 <= score <= 1.0:
            return None
        return JudgeResult(
            score, str(entry["rationale"]), Usage.model_validate(entry["usage"]), int(entry["attempts"])
        )
    except (KeyError, TypeError, ValueError):
        return None
