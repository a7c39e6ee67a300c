"""Endpoints shared by adapters: one SDK client and one set of limits per endpoint and event loop.

Every adapter that calls the same endpoint with the same credentials and limits (the base and the
candidate on one server, say) shares one ``AsyncOpenAI`` client (one connection pool), one bound on
requests in flight and, when configured, requests-per-minute and tokens-per-minute limits. The
judge is its own group (``judge.concurrency``), so answers and scores never wait on each other's
slots. Clients belong to an event loop: each loop gets its own, closed when its last adapter closes.
A client is built in a worker thread (the SDK loads the TLS trust store for each client, ~40 ms of
CPU that would otherwise stall every call in flight)."""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import AsyncIterator, Callable, Hashable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

CHARS_PER_TOKEN = 3
"""Conservative characters per token for estimating a prompt before it is sent (English is ~4)."""
TOKENS_PER_MESSAGE = 4


def estimate_prompt_tokens(messages: list[dict[str, Any]]) -> int:
    """An upper estimate of a chat's prompt tokens, from its length (no tokenizer needed)."""
    chars = sum(len(str(message.get("content") or "")) for message in messages)
    return chars // CHARS_PER_TOKEN + TOKENS_PER_MESSAGE * len(messages)


@dataclass(frozen=True)
class EndpointLimits:
    """How hard one endpoint may be driven: requests in flight, and optional per-minute rates."""

    concurrency: int = 8
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None


class RateLimiter:
    """A token bucket refilled evenly at ``per_minute / 60`` a second, holding one second's worth.

    Spreading the allowance over the minute keeps every 60-second window under the limit. A request
    larger than the bucket waits for a full bucket and leaves it in debt, which later requests repay
    first; :meth:`settle` corrects an estimate once the real amount is known.
    """

    def __init__(self, per_minute: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate)
        self.level = self.capacity
        self._clock = clock
        self._updated = clock()

    def _refill(self) -> None:
        now = self._clock()
        self.level = min(self.capacity, self.level + (now - self._updated) * self.rate)
        self._updated = now

    async def acquire(self, amount: float = 1.0) -> None:
        """Wait until ``amount`` may be spent, then spend it."""
        while True:
            self._refill()
            needed = min(amount, self.capacity)
            if self.level >= needed:
                self.level -= amount
                return
            await asyncio.sleep((needed - self.level) / self.rate)

    def settle(self, estimated: float, actual: float) -> None:
        """Give back (or take) the difference between what was spent and what was used."""
        self._refill()
        self.level = min(self.capacity, self.level + estimated - actual)


@dataclass
class Endpoint:
    """One endpoint's client and limits in one event loop; ``users`` counts the adapters holding it."""

    opening: asyncio.Future[Any]
    slots: asyncio.Semaphore
    requests: RateLimiter | None
    tokens: RateLimiter | None
    users: int = 0
    in_flight: int = 0
    closed: bool = False

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the endpoint's ``concurrency`` slots for a request."""
        async with self.slots:
            self.in_flight += 1
            try:
                yield
            finally:
                self.in_flight -= 1

    async def client(self) -> Any:
        """The SDK client (waits for it to be built on first use)."""
        return await asyncio.shield(self.opening)

    async def admit(self, tokens: int) -> None:
        """Wait for the per-minute limits (call while holding a slot)."""
        if self.requests is not None:
            await self.requests.acquire()
        if self.tokens is not None:
            await self.tokens.acquire(tokens)

    def settle(self, estimated_tokens: int, used_tokens: int | None) -> None:
        """Count a reply's real token usage against the tokens-per-minute limit."""
        if self.tokens is not None and used_tokens is not None:
            self.tokens.settle(estimated_tokens, used_tokens)


class EndpointPool:
    """The endpoints open in this process, per event loop (see the module docstring)."""

    def __init__(self) -> None:
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Hashable, Endpoint]] = (
            weakref.WeakKeyDictionary()
        )

    def lease(self, key: Hashable, limits: EndpointLimits, make_client: Callable[[], Any]) -> Endpoint:
        """The endpoint for ``key`` in the running loop, opened on first use; give it back with release()."""
        open_here = self._loops.setdefault(asyncio.get_running_loop(), {})
        endpoint = open_here.get((key, limits))
        if endpoint is None:
            endpoint = open_here[(key, limits)] = Endpoint(
                opening=asyncio.ensure_future(asyncio.to_thread(make_client)),
                slots=asyncio.Semaphore(limits.concurrency),
                requests=_limiter(limits.requests_per_minute),
                tokens=_limiter(limits.tokens_per_minute),
            )
        endpoint.users += 1
        return endpoint

    async def release(self, endpoint: Endpoint) -> None:
        """Give an endpoint back; the last user closes its client."""
        endpoint.users -= 1
        if endpoint.users > 0 or endpoint.closed:
            return
        endpoint.closed = True
        for open_here in self._loops.values():
            for key, value in list(open_here.items()):
                if value is endpoint:
                    del open_here[key]
        try:
            client = await endpoint.opening
        except Exception:  # the client was never built (its error reached the calls): nothing to close
            return
        await client.close()

    def in_flight(self) -> int:
        """Requests in flight on every endpoint of the running loop (0 outside a loop)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return 0
        return sum(endpoint.in_flight for endpoint in self._loops.get(loop, {}).values())

    def open_count(self) -> int:
        """How many endpoints are open in the running loop."""
        return len(self._loops.get(asyncio.get_running_loop(), {}))


def _limiter(per_minute: int | None) -> RateLimiter | None:
    return None if per_minute is None else RateLimiter(per_minute)


SHARED_POOL = EndpointPool()
"""The process-wide pool every adapter uses unless given another."""
