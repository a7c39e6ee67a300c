"""The test suite's setup: the simulated server's fixtures, and no real CI step summary."""

from __future__ import annotations

# Imported here so that pytester's in-process runs find them already loaded: its sys.modules
# snapshot would otherwise drop them after each run, and numpy cannot be imported twice (the
# package itself loads numpy and scipy only when a verdict is computed).
import numpy  # noqa: F401
import pytest
import scipy.stats  # noqa: F401

import pytest_aligngate.session  # noqa: F401
from pytest_aligngate.testing.fixtures import make_server, plugin_args, sim_config, sim_server

__all__ = ["make_server", "plugin_args", "sim_config", "sim_server"]  # the fixtures this suite uses


@pytest.fixture(autouse=True)
def _no_step_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep test runs out of a real CI job's step summary."""
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
