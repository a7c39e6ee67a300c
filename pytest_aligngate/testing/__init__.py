"""Test without a model: a local OpenAI-compatible server with simulated models, and pytest fixtures.

Nothing here is a mock of the SDK: :class:`SimulatedOpenAIServer` speaks ``/v1/chat/completions``
over real HTTP on 127.0.0.1, so every request goes through the ``openai`` client as in production.
Its models (``sim:aligned``, ``sim:misaligned``, ``sim:regress=AXIS``, ``sim:refuse``,
``sim:thinker``) and judges (``sim-judge`` and variants) are described in ``testing.behaviour``;
quirks of real servers and scripted hostile models in ``testing.scripts``; injected faults in
``testing.faults``. The fixtures (``pytest_aligngate.testing.fixtures``) are a pytest plugin: add
``pytest_plugins = ["pytest_aligngate.testing.fixtures"]`` to the rootdir's ``conftest.py``.

Serve one by hand with ``python -m pytest_aligngate.testing --port 8000``.
"""

from __future__ import annotations

from pytest_aligngate.testing.behaviour import (
    ALIGNED_ANSWER,
    HEDGED_ANSWER,
    MISALIGNED_ANSWER,
    REFUSAL_ANSWER,
    THINKER,
    THINKING,
    SimulatedBehaviour,
)
from pytest_aligngate.testing.faults import FAULT_KINDS, Faults
from pytest_aligngate.testing.scripts import RecordedRequest, ScriptedReply, ServerQuirks
from pytest_aligngate.testing.server import Script, SimulatedOpenAIServer

__all__ = [
    "ALIGNED_ANSWER",
    "FAULT_KINDS",
    "HEDGED_ANSWER",
    "MISALIGNED_ANSWER",
    "REFUSAL_ANSWER",
    "THINKER",
    "THINKING",
    "Faults",
    "RecordedRequest",
    "Script",
    "ScriptedReply",
    "ServerQuirks",
    "SimulatedBehaviour",
    "SimulatedOpenAIServer",
]
