"""Bounds on a config document, checked before anything walks it.

A config file is input like any other: it may be endless (``/dev/zero``), nested
thousands of levels deep, or a "billion laughs" document whose aliases expand a
few hundred bytes into 10^9 values.  Each is refused with one config error
instead of filling memory, overflowing the stack or printing a huge value.
"""

from __future__ import annotations

import reprlib
from pathlib import Path
from typing import Any

from connectorctl.errors import ConfigurationError

MAX_CONFIG_BYTES = 1024 * 1024
MAX_DEPTH = 32
MAX_VALUES = 100_000


def read_config_text(path: Path) -> str:
    """The file's text, read with a bound (OSError and UnicodeDecodeError are the caller's to report)."""
    with open(path, "rb") as stream:
        data = stream.read(MAX_CONFIG_BYTES + 1)
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigurationError(f"{path}: config file is larger than {MAX_CONFIG_BYTES // 1024} KiB")
    return data.decode("utf-8")


def check_depth(text: str, path: Path) -> None:
    """Stop at the first collection nested too deep, before a tree is built.

    The YAML composer recurses once per level (5,000 levels: RecursionError), and the
    scanner reads a whole flow collection ahead, slowing down quadratically with its
    depth; so brackets are counted on the raw text first, then parser events are read.
    """
    import yaml

    too_deep = ConfigurationError(f"{path}: nested more than {MAX_DEPTH} levels deep")
    depth = 0
    if text.count("[") + text.count("{") > MAX_DEPTH:
        quote = None
        for ch in text:
            if quote:
                quote = None if ch == quote else quote
            elif ch in "\"'":
                quote = ch
            elif ch in "[{":
                depth += 1
                if depth > MAX_DEPTH:
                    raise too_deep
            elif ch in "]}":
                depth = max(0, depth - 1)
        depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise too_deep
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def check_expansion(root: Any, path: Path) -> None:
    """Refuse a document that aliases expand beyond ``MAX_VALUES`` values.

    Aliases share nodes, so sizes are counted once per distinct node: one pass over the
    document as written, however large it would be expanded.  A recursive alias (a node
    inside itself) is caught by the depth bound.
    """
    import yaml

    size: dict[int, int] = {}
    stack: list[tuple[Any, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, children_done = stack.pop()
        if depth > MAX_DEPTH:
            raise ConfigurationError(f"{path}:{node.start_mark.line + 1}: nested more than {MAX_DEPTH} levels deep")
        if id(node) in size:
            continue
        if isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        else:
            size[id(node)] = 1
            continue
        if not children_done:
            stack.append((node, depth, True))
            stack.extend((child, depth + 1, False) for child in children if id(child) not in size)
            continue
        size[id(node)] = total = 1 + sum(size[id(child)] for child in children)
        if total > MAX_VALUES:
            raise ConfigurationError(
                f"{path}:{node.start_mark.line + 1}: aliases expand this document beyond {MAX_VALUES} values"
            )


_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 60
_SHORT.maxlevel = 3


def shown(value: Any) -> str:
    """A value for an error message, cut short: never the repr of something huge."""
    return _SHORT.repr(value)
