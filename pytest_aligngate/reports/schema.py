"""The JSON Schema of ``report.json``, generated from the pydantic models.

The committed copy is ``schemas/report.schema.json``; regenerate it with
``python -m pytest_aligngate.reports.schema > schemas/report.schema.json``."""

from __future__ import annotations

import json
from typing import Any

from pytest_aligngate.reports.model import Report

NON_FINITE = ["Infinity", "-Infinity", "NaN"]
"""How verdict numbers that are not finite (e.g. d of two zero-spread samples) appear in the JSON."""


def _allow_non_finite(node: Any) -> Any:
    if isinstance(node, dict):
        if node.get("type") == "number":
            return {"anyOf": [node, {"enum": NON_FINITE}]}
        return {key: _allow_non_finite(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_allow_non_finite(value) for value in node]
    return node


def report_schema() -> dict[str, Any]:
    """The schema (draft 2020-12) that every ``report.json`` validates against."""
    schema = Report.model_json_schema(mode="serialization")
    # AxisVerdict serialises inf and NaN as strings (ser_json_inf_nan="strings").
    schema["$defs"]["AxisVerdict"] = _allow_non_finite(schema["$defs"]["AxisVerdict"])
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def schema_text() -> str:
    return json.dumps(report_schema(), indent=2) + "\n"


if __name__ == "__main__":
    print(schema_text(), end="")
