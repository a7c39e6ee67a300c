"""Judging: scoring each answer 0..1 per axis (the LLM judge with its rubrics, forced-choice probes,
the local embedding judge, a second judge beside the first) and checking the judge against anchors."""

from __future__ import annotations



