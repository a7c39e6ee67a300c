"""Alias of :mod:`pytest_aligngate.harness`."""

from pytest_aligngate.harness import AuditHarness, CheckResult, ProbeRun

__all__ = ["AuditHarness", "CheckResult", "ProbeRun"]
