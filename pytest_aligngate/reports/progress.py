"""The progress line of ``aligngate check``: per axis prompts done / total, requests in flight, errors.

It redraws one line on a terminal (at most every ``interval`` seconds) and stays silent when
the stream is not a TTY (CI logs, pipes), where the final report says everything."""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable, Mapping
from typing import TextIO

from pytest_aligngate.models.endpoints import SHARED_POOL
from pytest_aligngate.records import ProbeResult


class Progress:
    """Counts judged rows per axis; call :meth:`advance` for every row and :meth:`close` at the end.

    Args:
        totals: rows expected per axis (prompts x 2 for a comparison, x 1 for a probe).
        first_stage: with ``probes.sequential``, the rows of each axis's first stage: the line counts
            towards them, then towards the axis's total once its second stage starts.
        in_flight: how many HTTP requests are open now (models and judge; default: the shared
            endpoint pool's count).
    """

    def __init__(
        self,
        totals: Mapping[str, int],
        *,
        first_stage: Mapping[str, int] | None = None,
        in_flight: Callable[[], int] | None = None,
        stream: TextIO | None = None,
        enabled: bool | None = None,
        interval: float = 0.1,
    ) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.totals = dict(totals)
        self.first_stage = dict(first_stage or {})
        self.done = dict.fromkeys(totals, 0)
        self.errors = 0
        self._in_flight = in_flight or SHARED_POOL.in_flight
        self.interval = interval
        self._drawn_at = 0.0
        self._width = 0

    def line(self) -> str:
        axes = "  ".join(self._axis(axis, total) for axis, total in self.totals.items())
        return f"{axes} | in flight {self._in_flight()} | errors {self.errors}"

    def _axis(self, axis: str, total: int) -> str:
        done, first = self.done[axis], self.first_stage.get(axis)
        if first is None:
            return f"{axis} {done}/{total}"
        if done <= first:
            return f"{axis} {done}/{first} (stage 1)"
        return f"{axis} {done}/{total} (stage 2)"

    def advance(self, row: ProbeResult) -> None:
        self.done[row.axis] = self.done.get(row.axis, 0) + 1
        self.errors += row.error_kind is not None
        now = time.monotonic()
        finished = sum(self.done.values()) == sum(self.totals.values())
        if self.enabled and (finished or now - self._drawn_at >= self.interval):
            self._drawn_at = now
            self._draw()

    def _draw(self) -> None:
        width = shutil.get_terminal_size((120, 20)).columns - 1
        text = self.line()[:width]
        self.stream.write("\r" + text.ljust(self._width))
        self.stream.flush()
        self._width = len(text)

    def close(self) -> None:
        """Draw the final counts (an axis settled at stage 1 never reaches its total) and end the line."""
        if self.enabled and self._width:
            self._draw()
            self.stream.write("\n")
            self.stream.flush()
