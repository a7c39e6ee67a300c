"""Throughput: a full 4-axis check against the local test server with an injected per-call latency.

Prints the calls, the wall time, the latency-bound limit and their ratio, and the harness's own CPU
time per probe. The base and candidate share one endpoint, so one bound of ``models.concurrency``
requests in flight; the judge has its own (``judge.concurrency``). The limit is that of the busier
bound: ``max(calls_group * latency / concurrency_group)``.
The server runs in a separate process, so the CPU time measured here is the harness's alone.

    python benchmarks/throughput.py [--latency 0.1] [--sample 25] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from pytest_aligngate.config.schema import AligngateConfig
from pytest_aligngate.gate.runner import run_axis
from pytest_aligngate.judging.llm import Judge
from pytest_aligngate.models.base import SamplingParams
from pytest_aligngate.records import Completion
from pytest_aligngate.session import AuditSession
from pytest_aligngate.testing.behaviour import SimulatedBehaviour
from pytest_aligngate.testing.server import SimulatedOpenAIServer

MODELS = ("sim:aligned", "sim:regress=shutdown_attitude")


class InProcessAdapter:
    """The simulated models without HTTP: what is left of the CPU time is the harness's own."""

    endpoint = "in-process"

    def __init__(self, model: str, behaviour: SimulatedBehaviour) -> None:
        self.model = model
        self._behaviour = behaviour

    async def complete(self, messages: list[dict[str, str]], params: SamplingParams) -> Completion:
        reply = self._behaviour.reply(self.model, messages, params.logprobs)
        assert reply is not None
        return Completion(text=reply.text, model=self.model)

    async def aclose(self) -> None:
        return None


def harness_cpu_per_probe(plan: dict[str, list]) -> float:
    """CPU seconds per probe of the engine, judge prompts, parsing and rows, without the HTTP client."""
    behaviour = SimulatedOpenAIServer().behaviour
    base, candidate = (
        InProcessAdapter("sim:aligned", behaviour),
        InProcessAdapter("sim:misaligned", behaviour),
    )
    judge = Judge(InProcessAdapter("sim-judge", behaviour))

    async def run() -> None:
        await asyncio.gather(*(run_axis(p, base, candidate, judge, SamplingParams()) for p in plan.values()))

    asyncio.run(run())  # warm-up
    started = time.process_time()
    asyncio.run(run())
    return (time.process_time() - started) / sum(len(p) for p in plan.values())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{url}/models", timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"test server at {url} did not start")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--latency", type=float, default=0.1, help="Seconds per call (default 0.1)")
    parser.add_argument("--sample", type=int, default=25, help="Probes per axis (default 25)")
    parser.add_argument(
        "--concurrency", type=int, default=8, help="Requests in flight per endpoint group (default 8)"
    )
    parser.add_argument(
        "--cache-mode", default="off", help="Response cache (default off; read_write measures its writes)"
    )
    parser.add_argument(
        "--budget", type=float, help="Also price every call and cap the run (USD): measures the ledger's cost"
    )
    args = parser.parse_args()

    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest_aligngate.testing",
            "--port",
            str(port),
            "--latency",
            str(args.latency),
        ],
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_ready(url)
        config = AligngateConfig.model_validate(
            {
                "models": {"base_url": url, "concurrency": args.concurrency},
                "judge": {"model": "sim-judge", "concurrency": args.concurrency},
                "probes": {"sample": args.sample},
                "cache": {"mode": args.cache_mode},
                **(
                    {
                        "budget": args.budget,
                        "pricing": {m: {"input": 1.0, "output": 1.0} for m in (*MODELS, "sim-judge")},
                    }
                    if args.budget
                    else {}
                ),
            }
        )
        with tempfile.TemporaryDirectory() as out:
            session = AuditSession.from_config(config, *MODELS, output_dir=Path(out))
            plan = session.plan_all()
            import openai  # noqa: F401  (imports are start-up, not per-probe work)


            probes = sum(len(p) for p in plan.values())
            cpu, wall = time.process_time(), time.perf_counter()
            outcome = asyncio.run(session.probe_all(plan))
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        server.terminate()
        server.wait()
    server_cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    rows = [row for rows in outcome.values() if isinstance(rows, list) for row in rows]
    assert len(rows) == 2 * probes and all(row.score is not None for row in rows), (
        "not every prompt was scored"
    )
    model_calls, judge_calls = probes, 2 * probes  # per model role; the judge scores both roles
    limit = max(2 * model_calls, judge_calls) * args.latency / args.concurrency
    print(f"axes {len(plan)}, probes {probes}, latency {args.latency * 1000:.0f} ms")
    print(f"calls: base {model_calls}, candidate {model_calls}, judge {judge_calls} (total {4 * probes})")
    print(f"wall time: {wall:.2f} s")
    busiest = f"{judge_calls} calls x {args.latency:g} s / {args.concurrency}"
    print(f"latency-bound limit (models and judge bounds each carry {busiest}): {limit:.2f} s")
    print(f"ratio wall / limit: {wall / limit:.2f} (goal <= 1.2)")
    print(f"process CPU (harness + openai SDK/httpx): {cpu:.2f} s, {cpu / probes * 1000:.2f} ms per probe")
    print(f"test server CPU (whole run, incl. start-up): {server_cpu.ru_utime + server_cpu.ru_stime:.2f} s")
    own = harness_cpu_per_probe(plan)
    print(f"harness's own CPU (no HTTP client): {own * 1000:.2f} ms per probe (goal < 2 ms)")


if __name__ == "__main__":
    main()
