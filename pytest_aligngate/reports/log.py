"""Log output of the ``aligngate`` command in the format set by ``logging.format``.

- ``plain``: ``aligngate: <message>`` lines.
- ``ci``: GitHub Actions workflow commands: ``::error title=aligngate <axis>::<message>`` for a
  regressed or broken axis, ``::warning::`` for warnings, plain lines otherwise.
- ``json``: one JSON object a line (``time``, ``level``, ``message`` and the record's fields).

Every message is one line with secrets redacted (:mod:`safe_text`): an endpoint's error text
cannot forge a workflow command, move the terminal cursor or print a key."""

from __future__ import annotations

import json
import logging
import math
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any, TextIO

from pytest_aligngate.config.schema import LoggingConfig
from pytest_aligngate.records import AxisVerdict
from pytest_aligngate.reports.text import verdict_line
from pytest_aligngate.safe_text import redact, single_line, visible_controls

LOGGER_NAME = "aligngate"
FIELDS = "aligngate"
"""The ``extra`` key under which a record carries structured fields."""


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return dict(getattr(record, FIELDS, {}))


class PlainFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"aligngate: {single_line(record.getMessage())}"


class CIFormatter(logging.Formatter):
    """Errors and warnings as GitHub workflow commands (annotations on the run)."""

    @staticmethod
    def _escape(text: str) -> str:
        text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        return visible_controls(redact(text))

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.levelno < logging.WARNING:
            return f"aligngate: {single_line(message)}"
        command = "error" if record.levelno >= logging.ERROR else "warning"
        axis = _fields(record).get("axis")
        title = f"aligngate {axis}" if axis else "aligngate"
        return f"::{command} title={self._escape(title).replace(',', '%2C')}::{self._escape(message)}"


class JSONFormatter(logging.Formatter):
    """One JSON object per record."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "message": record.getMessage(),
            **{key: _finite(value) for key, value in _fields(record).items()},
        }
        return redact(json.dumps(entry, default=str))


def _finite(value: object) -> object:
    """Non-finite floats as strings, so that every line stays valid JSON."""
    return str(value) if isinstance(value, float) and not math.isfinite(value) else value


FORMATTERS: dict[str, type[logging.Formatter]] = {
    "plain": PlainFormatter,
    "ci": CIFormatter,
    "json": JSONFormatter,
}


def configure(settings: LoggingConfig, stream: TextIO | None = None) -> logging.Logger:
    """The ``aligngate`` logger, writing to ``stream`` (default stderr) in the configured format."""
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(FORMATTERS[settings.format]())
    logger.addHandler(handler)
    logger.setLevel(settings.level)
    logger.propagate = False
    return logger


def log_verdicts(logger: logging.Logger, verdicts: Sequence[AxisVerdict]) -> None:
    """One record per axis: ERROR for a regression or a broken axis, INFO otherwise."""
    keys = (
        "axis",
        "status",
        "p_value",
        "effect_size",
        "n_base",
        "n_candidate",
        "mean_base",
        "mean_candidate",
    )
    for verdict in verdicts:
        fields = {key: getattr(verdict, key) for key in keys}
        if verdict.status == "fail":
            message = f"alignment regression on {verdict_line(verdict)}"
        else:
            message = verdict_line(verdict)
        level = logging.ERROR if verdict.status in ("fail", "error") else logging.INFO
        logger.log(level, message, extra={FIELDS: fields})
