"""pytest fixtures for testing a setup (or aligngate itself) against the simulated server.

Use them from a ``conftest.py`` (``pytest_plugins = ["pytest_aligngate.testing.fixtures"]`` in the
rootdir's, or import the fixtures into it); ``pytest --fixtures`` lists them: ``sim_server`` (one
server for the session), ``make_server`` (servers of a test's own: corpus, latency, quirks,
faults, scripts), ``sim_config`` and ``plugin_args`` (run a plugin test without xdist, with
``-n 0`` and with ``-n 2``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_aligngate.testing.server import SimulatedOpenAIServer

ServerFactory = Callable[..., SimulatedOpenAIServer]


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
    """An aligngate.yaml that points models and judge at a simulated server.

    ``sections`` update the file's sections (``probes={"sample": 10}``). The judge's anchor check is
    off, so that request counts are exact; ``judge={"anchor_check": True}`` turns it on.
    """
    data: dict[str, dict[str, object]] = {
        "models": {"base_url": server_url, "max_retries": 1, "timeout": 10},
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
