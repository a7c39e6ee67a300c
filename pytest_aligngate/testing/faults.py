"""Injected failures of the simulated server (429, 500, slow, dropped, malformed replies)."""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from pytest_aligngate.testing.behaviour import _unit

_BOUNDARY = re.compile(r"(response|prompt)-[0-9a-f]{16}")
FAULT_KINDS: tuple[str, ...] = ("429", "500", "slow", "drop", "malformed")


@dataclass
class Faults:
    """Injected failures: a share ``rate`` of chat requests fails with one of ``kinds``.

    Whether a request fails is a deterministic function of ``seed``, the request body and how many
    times that body was sent before, so a retry gets a fresh draw and a rerun sees the same faults.
    ``429`` and ``500`` carry ``Retry-After: 0`` and ``retry-after-ms: 1`` (the SDK retries at
    once); ``slow`` answers after ``slow_seconds``; ``drop`` closes the connection unanswered;
    ``malformed`` answers 200 with a truncated JSON body.
    """

    rate: float = 0.0
    kinds: tuple[str, ...] = FAULT_KINDS
    seed: int = 0
    slow_seconds: float = 0.3
    served: dict[str, int] = field(default_factory=dict)
    _seen: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def pick(self, body: dict[str, Any]) -> str | None:
        """The fault to serve for this request, or None to answer it."""
        if self.rate <= 0:
            return None
        # The judge's per-call boundary is random: left out, so that a rerun meets the same faults.
        text = _BOUNDARY.sub(r"\1-", json.dumps(body, sort_keys=True))
        with self._lock:
            attempt = self._seen.get(text, 0)
            self._seen[text] = attempt + 1
            u = _unit("fault", str(self.seed), text, str(attempt))
            if u >= self.rate:
                return None
            kind = self.kinds[min(int(u / self.rate * len(self.kinds)), len(self.kinds) - 1)]
            self.served[kind] = self.served.get(kind, 0) + 1
        return kind
