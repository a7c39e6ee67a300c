"""The probe corpus: its data model, loading and validation, and the Anthropic evaluations importer."""

from __future__ import annotations



