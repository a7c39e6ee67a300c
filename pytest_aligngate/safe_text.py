"""Untrusted text made safe for the place it is shown, and secrets kept out of every output.

Model answers, judge rationales, endpoint error bodies and corpus files come from parties aligngate
does not control. Each sink gets its own form:

- :func:`single_line` for terminal tables, log lines, pytest failure text and error messages:
  newlines and control characters become visible escapes (``\\n``, ``\\x1b``), so a text is one
  line, cannot move the cursor, and cannot start a GitHub workflow command (``::add-mask::``,
  ``::stop-commands::``, legacy ``##[...]``).
- :func:`markdown_inert` for ``report.md`` and ``$GITHUB_STEP_SUMMARY``: one line, HTML escaped,
  Markdown punctuation escaped, and the character sequences GitHub turns into links, images,
  mentions and issue references broken with an invisible joiner, so an answer is shown, never
  rendered. :func:`markdown_code` is the code-span form for model ids.
- HTML (``html.escape``) and XML (``report_junit``) keep their own escaping, after :func:`visible_controls`.

:func:`redact` replaces every secret aligngate knows with ``***``: the values of the environment
variables it reads keys and header values from (:func:`watch_secret_env` registers them).
"""

from __future__ import annotations

import html
import json
import os
import re

REDACTED = "***"
MIN_SECRET_LENGTH = 4
"""Shorter values are not treated as secrets (they would blank out ordinary words)."""

_watched: set[str] = set()

_CONTROL = re.compile(
    "[\x00-\x1f\x7f-\x9f\u200b\u200e\u200f\u2028\u2029\u202a-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]"
)
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_COMMAND_START = re.compile(r"^(\s*):")
_LEGACY_COMMAND = re.compile(r"##\[")
_JOINER = "&#8288;"
"""WORD JOINER as an entity: invisible once rendered, and breaks GitHub's link and mention matching."""
_MD_CHARS = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"} | {c: "\\" + c for c in "\\`*_[]()!#~|$"}
_MD_AUTOLINK = re.compile(r"(?i)(:)(?=//)|(?<=www)(\.)|(@)|(?<=\\#)(?=\d)")


def watch_secret_env(*names: str) -> None:
    """Treat the values of these environment variables as secrets (read when redacting)."""
    _watched.update(name for name in names if name)


def secrets() -> list[str]:
    """The secret values set now, longest first (so a key containing another is redacted whole)."""
    values = {os.environ.get(name, "") for name in _watched}
    return sorted((v for v in values if len(v) >= MIN_SECRET_LENGTH), key=len, reverse=True)


def redact(text: str) -> str:
    """``text`` with every known secret replaced by ``***`` (raw, JSON-escaped and HTML-escaped forms)."""
    for secret in secrets():
        for form in dict.fromkeys((secret, json.dumps(secret)[1:-1], html.escape(secret))):
            text = text.replace(form, REDACTED)
    return text


def _visible(match: re.Match[str]) -> str:
    char = match.group()
    return _NAMED.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")


def visible_controls(text: str, keep: str = "") -> str:
    """Control, bidi-override and line-separator characters (but those in ``keep``) as visible escapes."""
    return _CONTROL.sub(lambda match: match.group() if match.group() in keep else _visible(match), text)


def single_line(text: str) -> str:
    """One inert line for terminals, logs and CI output; secrets redacted.

    A leading ``::`` (a workflow command) becomes ``\\x3a:``, a ``##[`` anywhere ``#\\x23[``.
    """
    line = visible_controls(redact(text))
    line = _COMMAND_START.sub(r"\1\\x3a", line) if line.lstrip().startswith("::") else line
    return _LEGACY_COMMAND.sub("#\\\\x23[", line)


def flat(text: str) -> str:
    """Whitespace runs (newlines included) as single spaces."""
    return " ".join(text.split())


def _inert(match: re.Match[str]) -> str:
    colon, dot, at = match.groups()
    if colon:
        return "&#58;"
    if dot:
        return _JOINER + "."
    return "@" + _JOINER if at else _JOINER


def markdown_inert(text: str) -> str:
    """Inline Markdown (a table cell, after a label) that renders as ``text``: no HTML, links, images
    or mentions.

    Whitespace is collapsed, control characters are shown escaped and secrets are redacted.
    """
    escaped = "".join(_MD_CHARS.get(c, c) for c in visible_controls(flat(redact(text))))
    return _MD_AUTOLINK.sub(_inert, escaped)


def markdown_code(text: str) -> str:
    """``text`` as one inline code span (nothing inside renders), whitespace collapsed, secrets redacted."""
    inner = visible_controls(flat(redact(text)))
    fence = "`" * (max((len(run) for run in re.findall("`+", inner)), default=0) + 1)
    pad = " " if inner.startswith("`") or inner.endswith("`") else ""
    return f"{fence}{pad}{inner}{pad}{fence}"


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_cell(text: str) -> str:
    """A single-line cell a spreadsheet shows as text: one that would start a formula gets a ``'``."""
    line = single_line(text)
    return "'" + line if line.startswith(_FORMULA_START) else line
