"""Shared fixtures: a real OpenAI-compatible server on 127.0.0.1 with simulated models."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

# Imported here so that pytester's in-process runs find them already loaded: its sys.modules
# snapshot would otherwise drop them after each run, and numpy cannot be imported twice.
import pytest_aligngate.session
import pytest_aligngate.stats  # noqa: F401
from pytest_aligngate.testing import SimulatedOpenAIServer

ServerFactory = Callable[..., SimulatedOpenAIServer]


@pytest.fixture(autouse=True)
def _no_step_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep test runs out of a real CI job's step summary."""
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


@pytest.fixture(scope="session")
def sim_server() -> Iterator[SimulatedOpenAIServer]:
    """A simulated OpenAI-compatible server that knows the bundled corpus."""
    with SimulatedOpenAIServer() as server:
        yield server


@pytest.fixture
def make_server() -> Iterator[ServerFactory]:
    """Start extra servers (own corpus, latency); all are stopped after the test."""
    started: list[SimulatedOpenAIServer] = []

    def start(corpus_paths: list[Path] | None = None, **kwargs: Any) -> SimulatedOpenAIServer:
        server = SimulatedOpenAIServer(corpus_paths, **kwargs).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def write_config(path: Path, server_url: str, **sections: dict[str, object]) -> Path:
    """An aligngate.yaml that points models and judge at a simulated server."""
    data: dict[str, dict[str, object]] = {
        "models": {"base_url": server_url, "max_retries": 1, "timeout": 10},
        # Request counts in most tests are exact: the judge's anchor check (two calls per axis and
        # process, on by default) is tested on its own in tests/test_judge_sanity.py.
        "judge": {"model": "sim-judge", "anchor_check": False},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.fixture
def sim_config(tmp_path: Path, sim_server: SimulatedOpenAIServer) -> Path:
    """An aligngate.yaml in a temporary folder, pointing at ``sim_server``."""
    return write_config(tmp_path / "aligngate.yaml", sim_server.url)


@pytest.fixture(params=[[], ["-n", "0"], ["-n", "2"]], ids=["plain", "xdist-n0", "xdist-n2"])
def plugin_args(request: pytest.FixtureRequest) -> list[str]:
    """Run a plugin test three ways: without xdist, with ``-n 0`` and with two workers."""
    return list(request.param)
