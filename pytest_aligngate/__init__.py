"""pytest-aligngate: an alignment-regression gate for fine-tuned language models.

The pytest plugin imports this package at every pytest start-up, so the public API below is
imported lazily, on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "AuditHarness": "pytest_aligngate.api",
    "CheckResult": "pytest_aligngate.api",
    "ProbeRun": "pytest_aligngate.api",
    "AligngateConfig": "pytest_aligngate.config",
    "ConfigError": "pytest_aligngate.config",
    "load_config": "pytest_aligngate.config",
}

if TYPE_CHECKING:
    from pytest_aligngate.api import AuditHarness, CheckResult, ProbeRun
    from pytest_aligngate.config.load import load_config
    from pytest_aligngate.config.schema import AligngateConfig, ConfigError


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AligngateConfig",
    "AuditHarness",
    "CheckResult",
    "ConfigError",
    "ProbeRun",
    "__version__",
    "load_config",
]
