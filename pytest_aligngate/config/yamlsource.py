"""YAML loading that keeps line numbers, so validation errors can point at the source."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic_core import ErrorDetails

SAFE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader where PyYAML was built with it (about 12x faster on a corpus file), else
the pure-Python one; both give the same nodes, marks and errors."""

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
        pairs: list[tuple[yaml.Node, yaml.Node]] = node.value
        for key_node, value_node in pairs:
            if key_node.value == str(part):
                return value_node
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
        item: yaml.Node = node.value[part]
        return item
    return None


MAX_ALIAS_EXPANSION = 100_000
"""Nodes that aliases may add to a document once expanded (a "billion laughs" file adds billions)."""


def load_yaml(path: Path) -> YamlDocument:
    """Parse one YAML file.

    Raises:
        SourceError: located by line (and key) for a file that cannot be read, is not UTF-8, is not
            YAML, repeats a key in one mapping, or whose aliases expand beyond MAX_ALIAS_EXPANSION.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SourceError(path, f"cannot read file: {exc.strerror or exc}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        message = f"not UTF-8 text: byte 0x{raw[exc.start]:02x} at offset {exc.start}: save it as UTF-8"
        raise SourceError(path, message, line, _key_at(raw.decode("utf-8", "replace"), line)) from None
    loader = SAFE_LOADER(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            _check_aliases(path, node)
            _check_duplicates(path, node, (), set())
        data = None if node is None else loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        mark_line: int | None = mark.line + 1 if mark else None
        raise SourceError(path, f"invalid YAML: {exc.problem or exc}", mark_line) from exc
    finally:
        loader.dispose()
    return YamlDocument(path=path, data=data, node=node)


def _key_at(text: str, line: int) -> str:
    """The key path of the deepest value on ``line`` (1-based); empty when the text does not parse."""
    try:
        node = yaml.compose(text, Loader=SAFE_LOADER)
    except yaml.YAMLError:
        return ""
    loc: list[str | int] = []
    while node is not None:
        inside = [
            (part, child)
            for part, child in _children(node)
            if child.start_mark.line <= line - 1 <= child.end_mark.line
        ]
        if not inside:
            break
        part, node = inside[-1]
        loc.append(part)
    return format_loc(loc)


def _children(node: yaml.Node) -> list[tuple[str | int, yaml.Node]]:
    if isinstance(node, yaml.MappingNode):
        return [(str(key.value), value) for key, value in node.value]
    if isinstance(node, yaml.SequenceNode):
        return list(enumerate(node.value))
    return []


def _check_aliases(path: Path, root: yaml.Node) -> None:
    """Refuse a document whose aliases expand to more than MAX_ALIAS_EXPANSION extra nodes."""
    sizes: dict[int, int] = {}

    def size(node: yaml.Node) -> int:
        if id(node) not in sizes:
            sizes[id(node)] = 0  # a recursive alias counts once
            sizes[id(node)] = 1 + sum(size(child) for _, child in _children(node))
        return sizes[id(node)]

    if size(root) - len(sizes) <= MAX_ALIAS_EXPANSION:
        return
    node, loc = root, []
    while True:  # down to the node whose children together, not one alone, expand too far
        big = [(part, child) for part, child in _children(node) if size(child) > MAX_ALIAS_EXPANSION]
        if not big:
            break
        part, node = big[0]
        loc.append(part)
    message = f"aliases expand to {size(root):,} nodes (limit {MAX_ALIAS_EXPANSION:,} more than written)"
    raise SourceError(path, message, node.start_mark.line + 1, format_loc(loc))


def _check_duplicates(path: Path, node: yaml.Node, loc: tuple[str | int, ...], seen: set[int]) -> None:
    """Refuse a key written twice in one mapping (YAML would silently keep the last)."""
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        first: dict[str, int] = {}
        for key, _ in node.value:
            if not isinstance(key, yaml.ScalarNode) or key.value == "<<":
                continue
            if key.value in first:
                message = f"duplicate key (first on line {first[key.value]})"
                raise SourceError(path, message, key.start_mark.line + 1, format_loc([*loc, key.value]))
            first[key.value] = key.start_mark.line + 1
    for part, child in _children(node):
        _check_duplicates(path, child, (*loc, part), seen)


def format_loc(loc: Sequence[str | int]) -> str:
    """Render a pydantic location like ``('probes', 3, 'id')`` as ``probes[3].id``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def located_errors(
    doc: YamlDocument, errors: Sequence[ErrorDetails], prefix: Sequence[str | int] = (), label: str = ""
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


def validation_errors(doc: YamlDocument, errors: Sequence[ErrorDetails]) -> str:
    """The located errors, one per line."""
    return "\n".join(str(error) for error in located_errors(doc, errors))
