"""The gate: probing both models (``runner``), deciding each axis (``decide``) on pure statistics
(``stats``, numpy and scipy only)."""

from __future__ import annotations



