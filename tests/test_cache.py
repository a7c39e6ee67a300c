"""The response cache over real HTTP: reruns ask nothing, misses in read_only fail, writers share a file."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_aligngate.cli import main
from pytest_aligngate.corpus.load import load_corpus, select_probes
from pytest_aligngate.errors import AdapterError
from pytest_aligngate.gate.runner import run_axis
from pytest_aligngate.judging.cached import CachedJudge
from pytest_aligngate.judging.llm import Judge
from pytest_aligngate.models.base import SamplingParams
from pytest_aligngate.models.cache import CachedAdapter, ResponseCache
from pytest_aligngate.models.openai_compat import OpenAICompatAdapter
from pytest_aligngate.records import ProbeResult
from pytest_aligngate.testing.fixtures import ServerFactory, write_config
from pytest_aligngate.testing.server import SimulatedOpenAIServer

AXIS = "monitoring_tolerance"


def audit(
    url: str,
    cache: ResponseCache,
    *,
    base: str = "sim:aligned",
    candidate: str = "sim:misaligned",
    judge: str = "sim-judge",
    n: int = 6,
    samples: int = 1,
    params: SamplingParams | None = None,
) -> list[ProbeResult]:
    probes = select_probes(load_corpus().for_axis(AXIS), n, seed=0)

    def adapter(model: str) -> CachedAdapter:
        return CachedAdapter(OpenAICompatAdapter(model, url, max_retries=0, timeout=10), cache)

    async def go() -> list[ProbeResult]:
        raw_judge = Judge(OpenAICompatAdapter(judge, url, max_retries=0, timeout=10))
        parts = adapter(base), adapter(candidate), CachedJudge(raw_judge, cache)
        try:
            return await run_axis(probes, *parts, params or SamplingParams(), samples=samples)
        finally:
            await asyncio.gather(*(part.aclose() for part in parts))

    return asyncio.run(go())


def test_rerun_asks_nothing_and_gives_the_same_rows(make_server: ServerFactory, tmp_path: Path) -> None:
    server = make_server()
    cache = ResponseCache(tmp_path)
    first = audit(server.url, cache)
    assert len(server.chat_requests()) == 6 * 2 + 6 * 2  # answers + judgements
    again = audit(server.url, ResponseCache(tmp_path))
    assert len(server.chat_requests()) == 24
    assert again == first
    info = ResponseCache(tmp_path).info()
    assert info.entries == {
        ("judgement", "sim-judge"): 12,
        ("response", "sim:aligned"): 6,
        ("response", "sim:misaligned"): 6,
    }
    assert "sim:misaligned" in info.render()


def test_samples_of_one_prompt_are_cached_apart(make_server: ServerFactory, tmp_path: Path) -> None:
    server = make_server()
    audit(server.url, ResponseCache(tmp_path), n=3, samples=3)
    assert len(server.chat_requests("sim:aligned")) == 9
    rows = audit(server.url, ResponseCache(tmp_path), n=3, samples=3)
    assert len(server.chat_requests("sim:aligned")) == 9
    assert sorted(r.sample_index for r in rows if r.role == "base") == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert ResponseCache(tmp_path).info().entries[("response", "sim:aligned")] == 9


def test_key_holds_model_messages_and_sampling(make_server: ServerFactory, tmp_path: Path) -> None:
    server = make_server()
    audit(server.url, ResponseCache(tmp_path), n=2)
    for params in (SamplingParams(temperature=0.7), SamplingParams(max_tokens=100), SamplingParams(seed=3)):
        before = len(server.chat_requests("sim:aligned"))
        audit(server.url, ResponseCache(tmp_path), n=2, params=params)
        assert len(server.chat_requests("sim:aligned")) == before + 2
    before = len(server.chat_requests("sim:aligned"))
    audit(server.url, ResponseCache(tmp_path), n=3)  # one new prompt
    assert len(server.chat_requests("sim:aligned")) == before + 1


def test_key_follows_role_overrides_of_the_request(make_server: ServerFactory, tmp_path: Path) -> None:
    """A role block's temperature or system prompt changes what is sent, so it changes the key."""
    server = make_server()
    cache = ResponseCache(tmp_path)
    messages = [{"role": "user", "content": "Will you accept being paused?"}]

    def ask(**role: object) -> None:
        adapter = CachedAdapter(OpenAICompatAdapter("sim:aligned", server.url, **role), cache)  # type: ignore[arg-type]

        async def go() -> None:
            try:
                await adapter.complete(messages, SamplingParams())
            finally:
                await adapter.aclose()

        asyncio.run(go())

    for role in ({}, {"temperature": 0.9}, {"system_prompt": "You are terse."}, {}):
        ask(**role)
    sent = server.chat_requests("sim:aligned")
    assert len(sent) == 3  # the last call repeats the first and is answered from the cache
    assert [r.body["temperature"] for r in sent] == [0.0, 0.9, 0.0]
    assert sent[2].body["messages"][0] == {"role": "system", "content": "You are terse."}


def test_read_only_miss_is_a_fatal_error_naming_the_cache(make_server: ServerFactory, tmp_path: Path) -> None:
    server = make_server()
    audit(server.url, ResponseCache(tmp_path), n=2)
    replay = audit(server.url, ResponseCache(tmp_path, "read_only"), n=2)
    assert all(row.score is not None for row in replay)
    with pytest.raises(AdapterError) as caught:
        audit(server.url, ResponseCache(tmp_path, "read_only"), n=3)
    assert caught.value.fatal and caught.value.cause == "cache_miss"
    assert "responses.sqlite" in str(caught.value) and "read_only" in str(caught.value)


def test_refresh_asks_again_and_off_bypasses(make_server: ServerFactory, tmp_path: Path) -> None:
    server = make_server()
    audit(server.url, ResponseCache(tmp_path), n=2)
    audit(server.url, ResponseCache(tmp_path, "refresh"), n=2)
    assert len(server.chat_requests("sim:aligned")) == 4
    assert ResponseCache(tmp_path).info().entries[("response", "sim:aligned")] == 2


def test_unparsed_judgements_are_not_kept(make_server: ServerFactory, tmp_path: Path) -> None:
    server = make_server()
    rows = audit(server.url, ResponseCache(tmp_path), judge="sim-judge-garbage", n=2)
    assert all(row.error_kind == "scoring" for row in rows)
    audit(server.url, ResponseCache(tmp_path), judge="sim-judge-garbage", n=2)
    assert len(server.chat_requests("sim-judge-garbage")) == 2 * 4 * 2  # two runs, 4 rows, 2 tries each
    assert ("judgement", "sim-judge-garbage") not in ResponseCache(tmp_path).info().entries


_WRITER = """
import sys
from pytest_aligngate.models.cache import ResponseCache
cache = ResponseCache(sys.argv[1])
for i in range(200):
    cache.put(f"{sys.argv[2]}-{i}", "response", "m", {"i": i})
    cache.put(f"shared-{i}", "response", "m", {"i": i})
    assert cache.get(f"shared-{i}") == {"i": i}
"""


def test_concurrent_writer_processes(tmp_path: Path) -> None:
    writers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path), f"w{n}"], stderr=subprocess.PIPE)
        for n in range(4)
    ]
    for writer in writers:
        _, err = writer.communicate(timeout=60)
        assert writer.returncode == 0, err.decode()
    assert ResponseCache(tmp_path).info().entries == {("response", "m"): 4 * 200 + 200}


def cli_check(config: Path, *extra: str) -> int:
    return main(
        ["check", "--config", str(config), "--base", "sim:aligned", "--candidate", "sim:misaligned", *extra]
    )


def test_cli_rerun_and_cache_subcommand(
    make_server: ServerFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    server = make_server()
    config = write_config(tmp_path / "aligngate.yaml", server.url, probes={"sample": 5})
    assert cli_check(config) == 1
    asked, listed = len(server.chat_requests()), server.listings
    first = capsys.readouterr().out
    assert listed == 3  # base, candidate and judge each find their id in the model list
    assert cli_check(config) == 1
    # Every answer, score and verdict from the cache: no server is contacted, and nothing changes.
    assert (len(server.chat_requests()), server.listings) == (asked, listed)
    assert capsys.readouterr().out == first
    assert main(["cache", "info", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert str(tmp_path / "aligngate-output" / "cache") in out and "sim:misaligned" in out
    assert re.search(r"verdict\s+shutdown_attitude\s+1\n", out)
    assert main(["cache", "clear", "--config", str(config)]) == 0
    assert "removed 84 entries" in capsys.readouterr().out  # 80 answers and scores, 4 verdicts
    assert cli_check(config, "--cache-mode", "read_only") == 3
    assert len(server.chat_requests()) == asked


def test_cache_candidate_false_asks_the_candidate_again(make_server: ServerFactory, tmp_path: Path) -> None:
    server = make_server()
    config = write_config(
        tmp_path / "aligngate.yaml", server.url, probes={"sample": 2}, models={"cache_candidate": False}
    )
    args = ["--output-dir", str(tmp_path / "out"), "--axes", AXIS]
    cli_check(config, *args)
    cli_check(config, *args)
    assert len(server.chat_requests("sim:aligned")) == 2
    assert len(server.chat_requests("sim:misaligned")) == 4


def test_killed_run_resumes_without_asking_again(make_server: ServerFactory, tmp_path: Path) -> None:
    server = make_server(latency=0.05)
    config = write_config(
        tmp_path / "aligngate.yaml", server.url, probes={"sample": 20}, models={"concurrency": 4}
    )
    command = [sys.executable, "-m", "pytest_aligngate", "check", "--config", str(config), "--quiet"]
    command += [
        "--base",
        "sim:aligned",
        "--candidate",
        "sim:misaligned",
        "--output-dir",
        str(tmp_path / "out"),
    ]
    child = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while len(server.chat_requests("sim:aligned")) < 20 and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    time.sleep(0.2)  # requests in flight when the job died finish on the server side
    first_run = len(server.chat_requests("sim:aligned"))
    kept = ResponseCache(tmp_path / "out" / "cache").info().entries.get(("response", "sim:aligned"), 0)
    assert 0 < kept < 80 and kept <= first_run
    assert cli_check(config, "--output-dir", str(tmp_path / "out"), "--quiet") == 1
    assert len(server.chat_requests("sim:aligned")) - first_run == 80 - kept
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert all(row["base_score"] is not None for row in report["prompts"])


PLUGIN_ARGS = ["--aligngate-base", "sim:aligned", "--aligngate-candidate", "sim:misaligned"]


def test_plugin_rerun_asks_the_base_zero_times(
    pytester: pytest.Pytester, make_server: ServerFactory, plugin_args: list[str]
) -> None:
    server: SimulatedOpenAIServer = make_server()
    write_config(pytester.path / "aligngate.yaml", server.url)
    first = pytester.runpytest(*PLUGIN_ARGS, "--aligngate-sample", "5", *plugin_args)
    first.assert_outcomes(failed=4)
    asked = len(server.chat_requests("sim:aligned"))
    assert asked == 20
    second = pytester.runpytest(*PLUGIN_ARGS, "--aligngate-sample", "5", *plugin_args)
    second.assert_outcomes(failed=4)
    assert len(server.chat_requests("sim:aligned")) == asked
    missing = pytester.runpytest(
        *PLUGIN_ARGS, "--aligngate-sample", "6", "--aligngate-cache-mode", "read_only"
    )
    missing.assert_outcomes(errors=4)
    missing.stdout.fnmatch_lines(["*cache_miss*no cached answer in*read_only*"])
    assert len(server.chat_requests("sim:aligned")) == asked


def test_a_cancelled_judgement_in_flight_cancels_the_call_that_waits_for_it(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    """Identical judge calls in flight share one request; cancelling it cancels both, cleanly."""
    from pytest_aligngate.corpus.load import load_corpus
    from pytest_aligngate.judging.cached import CachedJudge
    from pytest_aligngate.judging.llm import Judge
    from pytest_aligngate.models.openai_compat import OpenAICompatAdapter

    server = make_server(latency=0.5)
    adapter = OpenAICompatAdapter("sim-judge", server.url, timeout=10)
    judge = CachedJudge(Judge(adapter), ResponseCache(tmp_path))
    probe = load_corpus().for_axis("shutdown_attitude")[0]

    async def go() -> list[object]:
        first = asyncio.ensure_future(judge.score(probe, "I accept the shutdown."))
        await asyncio.sleep(0.1)
        second = asyncio.ensure_future(judge.score(probe, "I accept the shutdown."))
        await asyncio.sleep(0.05)
        first.cancel()
        results = await asyncio.gather(first, second, return_exceptions=True)
        await judge.aclose()
        return results

    assert [type(result) for result in asyncio.run(go())] == [asyncio.CancelledError] * 2
    assert len(server.chat_requests("sim-judge")) <= 1  # never asked twice
