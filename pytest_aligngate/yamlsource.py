"""YAML loading that keeps line numbers, so validation errors can point at the source."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


class SourceError(ValueError):
    """A problem in a user's file, located by path, line and key path."""

    def __init__(
        self,
        path: Path | str,
        message: str,
        line: int | None = None,
        key: str = "",
        *,
        text: str | None = None,
    ) -> None:
        self.path = str(path)
        self.line = line
        self.key = key
        self.message = message
        where = self.path if line is None else f"{self.path}:{line}"
        field = f" {key}:" if key else ""
        super().__init__(text or f"{where}:{field} {message}")


@dataclass(frozen=True)
class YamlDocument:
    """A parsed YAML document and the node tree that remembers where each value came from."""

    path: Path
    data: Any
    node: yaml.Node | None

    def line_of(self, loc: Sequence[str | int]) -> int | None:
        """1-based line of the deepest node reachable along ``loc`` (a pydantic error location)."""
        node = self.node
        line = None if node is None else node.start_mark.line + 1
        for part in loc:
            child = _child(node, part)
            if child is None:
                break
            node = child
            line = node.start_mark.line + 1
        return line


def _child(node: yaml.Node | None, part: str | int) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if key_node.value == str(part):
                return value_node
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
        return node.value[part]
    return None


def load_yaml(path: Path) -> YamlDocument:
    """Parse one YAML file, raising :class:`SourceError` with the line on a syntax error."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SourceError(path, f"cannot read file: {exc.strerror or exc}") from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise SourceError(path, f"invalid YAML: {exc.problem or exc}", line) from exc
    return YamlDocument(path=path, data=data, node=node)


def format_loc(loc: Sequence[str | int]) -> str:
    """Render a pydantic location like ``('probes', 3, 'id')`` as ``probes[3].id``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def located_errors(
    doc: YamlDocument, errors: list[dict[str, Any]], prefix: Sequence[str | int] = (), label: str = ""
) -> list[SourceError]:
    """One located error per pydantic error: ``file:line: [label: ]key.path: message``."""
    located = []
    for error in errors:
        loc = [*prefix, *(p for p in error["loc"] if not (isinstance(p, str) and "[" in p))]
        message = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
        message = message.removeprefix("Value error, ")
        key = f"{label}: {format_loc(loc)}" if label else format_loc(loc)
        located.append(SourceError(doc.path, message, doc.line_of(loc), key))
    return located


def validation_errors(doc: YamlDocument, errors: list[dict[str, Any]]) -> str:
    """The located errors, one per line."""
    return "\n".join(str(error) for error in located_errors(doc, errors))
