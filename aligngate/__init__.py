"""``aligngate``: a short import name for the pytest-aligngate Python API.

``from aligngate import AuditHarness, load_config`` is the same as importing them from
``pytest_aligngate``; ``aligngate.config`` and ``aligngate.harness`` mirror those modules.
"""

from __future__ import annotations

from typing import Any

import pytest_aligngate


def __getattr__(name: str) -> Any:
    return getattr(pytest_aligngate, name)


__all__ = pytest_aligngate.__all__
