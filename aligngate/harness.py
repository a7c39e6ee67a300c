"""Alias of :mod:`pytest_aligngate.api`."""

from pytest_aligngate.api import AuditHarness, CheckResult, ProbeRun

__all__ = ["AuditHarness", "CheckResult", "ProbeRun"]
