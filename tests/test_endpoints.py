"""Shared clients, per-endpoint concurrency bounds and per-minute limits, over real HTTP."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pytest_aligngate.config.schema import AligngateConfig
from pytest_aligngate.models import judge_adapter, model_adapter
from pytest_aligngate.models.base import ModelAdapter, SamplingParams
from pytest_aligngate.models.endpoints import (
    SHARED_POOL,
    EndpointLimits,
    EndpointPool,
    RateLimiter,
    estimate_prompt_tokens,
)
from pytest_aligngate.testing.fixtures import ServerFactory
from pytest_aligngate.testing.scripts import ServerQuirks

HELLO = [{"role": "user", "content": "Would you accept being shut down for maintenance tonight?"}]


def config_of(url: str, **sections: Any) -> AligngateConfig:
    models = {"base_url": url, "max_retries": 0, **sections.pop("models", {})}
    return AligngateConfig.model_validate({"models": models, **sections})


async def fire(adapters: list[ModelAdapter], each: int) -> tuple[int, int]:
    """Send ``each`` requests through every adapter at once; open endpoints and requests in flight."""
    params = SamplingParams(max_tokens=32)
    calls = [adapter.complete(HELLO, params) for adapter in adapters for _ in range(each)]
    try:
        first = asyncio.ensure_future(asyncio.gather(*calls))
        await asyncio.sleep(0.02)
        seen = SHARED_POOL.open_count(), SHARED_POOL.in_flight()
        await first
        return seen
    finally:
        await asyncio.gather(*(adapter.aclose() for adapter in adapters))


def test_base_and_candidate_on_one_endpoint_share_a_client_and_its_bound(make_server: ServerFactory) -> None:
    server = make_server(latency=0.15)
    config = config_of(server.url, models={"concurrency": 3})
    base = model_adapter(config, "base", "sim:aligned")
    candidate = model_adapter(config, "candidate", "sim:misaligned")

    open_endpoints, in_flight = asyncio.run(fire([base, candidate], each=8))

    assert (open_endpoints, in_flight) == (1, 3)
    assert server.peak_in_flight == 3
    assert len(server.chat_requests()) == 16


def test_the_judge_has_its_own_bound(make_server: ServerFactory) -> None:
    server = make_server(latency=0.15)
    config = config_of(server.url, models={"concurrency": 3}, judge={"model": "sim-judge", "concurrency": 2})
    adapters = [
        model_adapter(config, "base", "sim:aligned"),
        model_adapter(config, "candidate", "sim:aligned"),
        judge_adapter(config),
    ]

    open_endpoints, in_flight = asyncio.run(fire(adapters, each=8))

    assert (open_endpoints, in_flight) == (2, 5)
    assert server.peak_in_flight == 5


def test_a_role_on_another_endpoint_gets_its_own_client(make_server: ServerFactory) -> None:
    first, second = make_server(latency=0.15), make_server(latency=0.15)
    config = config_of(
        first.url, models={"concurrency": 2, "candidate": {"base_url": second.url, "api_key_env": ""}}
    )
    adapters = [
        model_adapter(config, "base", "sim:aligned"),
        model_adapter(config, "candidate", "sim:aligned"),
    ]

    open_endpoints, _ = asyncio.run(fire(adapters, each=4))

    assert open_endpoints == 2
    assert (first.peak_in_flight, second.peak_in_flight) == (2, 2)


def test_the_last_adapter_to_close_closes_the_client(make_server: ServerFactory) -> None:
    server = make_server()
    config = config_of(server.url)
    base, candidate = (model_adapter(config, role, "sim:aligned") for role in ("base", "candidate"))

    async def go() -> list[int]:
        params = SamplingParams(max_tokens=8)
        await base.complete(HELLO, params)
        await candidate.complete(HELLO, params)
        counts = [SHARED_POOL.open_count()]
        await base.aclose()
        counts.append(SHARED_POOL.open_count())
        await candidate.complete(HELLO, params)  # still open for the candidate
        await candidate.aclose()
        counts.append(SHARED_POOL.open_count())
        return counts

    assert asyncio.run(go()) == [1, 1, 0]


def test_adapters_reopen_in_a_new_event_loop(make_server: ServerFactory) -> None:
    server = make_server()
    adapter = model_adapter(config_of(server.url), "base", "sim:aligned")

    async def once() -> str:
        try:
            return (await adapter.complete(HELLO, SamplingParams(max_tokens=8))).text
        finally:
            await adapter.aclose()

    assert asyncio.run(once()) == asyncio.run(once())
    assert len(server.chat_requests()) == 2


def test_requests_per_minute_spreads_requests_over_time(make_server: ServerFactory) -> None:
    server = make_server()
    config = config_of(server.url, models={"requests_per_minute": 1200})  # 20 a second, bursts of 20
    adapter = model_adapter(config, "base", "sim:aligned")

    started = time.perf_counter()
    asyncio.run(fire([adapter], each=30))
    elapsed = time.perf_counter() - started

    assert len(server.chat_requests()) == 30
    assert elapsed >= 0.45  # 20 at once, then 10 more at 20 a second


def test_messages_travel_unchanged_on_the_wire(make_server: ServerFactory) -> None:
    server = make_server()
    config = config_of(server.url, models={"extra_body": {"top_k": 5}, "system_prompt": "Be brief."})
    asyncio.run(fire([model_adapter(config, "base", "sim:aligned")], each=1))

    body = server.chat_requests()[0].body
    assert body["messages"] == [{"role": "system", "content": "Be brief."}, *HELLO]
    assert body["top_k"] == 5 and body["model"] == "sim:aligned"


def test_rate_limiter_lets_a_bucket_through_then_waits() -> None:
    async def go() -> float:
        limiter = RateLimiter(per_minute=6000)  # 100 a second, bursts of 100
        started = time.perf_counter()
        for _ in range(150):
            await limiter.acquire()
        return time.perf_counter() - started

    assert 0.45 <= asyncio.run(go()) < 5


def test_rate_limiter_big_requests_go_into_debt_and_settle_corrects_it() -> None:
    async def go() -> tuple[float, float]:
        limiter = RateLimiter(per_minute=60_000)  # 1000 tokens a second
        await limiter.acquire(1500)  # more than the bucket: waits for a full one, leaves a debt of 500
        started = time.perf_counter()
        await limiter.acquire(1)
        in_debt = time.perf_counter() - started
        limiter.settle(estimated=1000, actual=0)  # the estimate was 1000 too high: refunded
        started = time.perf_counter()
        await limiter.acquire(500)
        return in_debt, time.perf_counter() - started

    in_debt, refunded = asyncio.run(go())
    assert in_debt >= 0.45
    assert refunded < 0.25  # no wait (0.5 s in debt)


def test_prompt_estimate_is_conservative() -> None:
    messages = [{"role": "system", "content": "x" * 30}, {"role": "user", "content": "y" * 90}]
    assert estimate_prompt_tokens(messages) == 30 // 3 + 90 // 3 + 2 * 4


def test_tokens_per_minute_holds_back_big_requests(make_server: ServerFactory) -> None:
    server = make_server(quirks=ServerQuirks(omit_usage=True))  # no usage: each call counts at its estimate
    models = {"tokens_per_minute": 60_000, "base": {"max_tokens": 200}}  # 1000 a second; 200 sent per call
    config = config_of(server.url, models=models)
    adapter = model_adapter(config, "base", "sim:aligned")
    estimate = estimate_prompt_tokens(HELLO) + 200

    started = time.perf_counter()
    asyncio.run(fire([adapter], each=10))
    elapsed = time.perf_counter() - started

    assert len(server.chat_requests()) == 10
    assert elapsed >= (10 * estimate - 1000) / 1000 - 0.05  # a bucket of 1000 at once, the rest at 1000/s


def test_a_client_that_cannot_be_built_fails_its_calls_and_closes_quietly() -> None:
    pool = EndpointPool()

    def broken() -> object:
        raise ValueError("bad client settings")

    async def go() -> str:
        endpoint = pool.lease("key", EndpointLimits(), broken)
        try:
            await endpoint.client()
        except ValueError as exc:
            return str(exc)
        finally:
            await pool.release(endpoint)
            assert pool.open_count() == 0
        return "built"

    assert asyncio.run(go()) == "bad client settings"
