"""The one way the pipeline reads YAML that a person committed: bounded, strict, and quiet
about secrets.

Bounded: at most MAX_BYTES, nested at most MAX_DEPTH deep, at most MAX_NODES nodes once
aliases are expanded (a few lines of aliases can stand for billions of nodes), numbers of at
most MAX_DIGITS. Strict: UTF-8
text only; a key twice in one mapping is an error (the last would silently win, as helm's
would); no tags beyond YAML's own plain types (`!x` is not data; helm would refuse it too);
dates stay text, as helm reads them. Errors name the file, the line and the key; errors about
a secret file quote nothing of its content.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from .quoting import clipped
from .secrets import key_path
from .values import Path_, ValuesError

MAX_BYTES = 1_000_000
MAX_DEPTH = 64
MAX_NODES = 200_000
MAX_DIGITS = 100  # an int longer is no setting (Python refuses to read one past 4,300)

_PLAIN = "tag:yaml.org,2002:"
_TAGS = {_PLAIN + t for t in ("str", "int", "float", "bool", "null", "map", "seq", "merge")}
_QUOTED = re.compile(r"'[^']*'")


class _Refused(Exception):
    def __init__(self, mark, problem: str) -> None:
        self.mark, self.problem = mark, problem


# YAML's plain types but timestamps: dates stay text, as helm reads them
_RESOLVERS = {
    first: [(tag, rx) for tag, rx in resolvers if tag != _PLAIN + "timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses to nest deeper than MAX_DEPTH while composing (deeper, PyYAML's
    own recursion would end in a RecursionError)."""

    yaml_implicit_resolvers = _RESOLVERS

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.depth = 0

    def compose_node(self, parent, index):
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise _Refused(self.peek_event().start_mark, f"nested more than {MAX_DEPTH} deep")
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


class _Generated(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    yaml_implicit_resolvers = _RESOLVERS


def load_generated(text: str) -> list[Any]:
    """The documents of YAML that no person wrote (the chart's own defaults and schema, helm's
    rendered manifests), dates as text: libyaml's parser, ten times PyYAML's speed (the
    chart's schema took 0.13 s of every deploy), without load_mapping's bounds, as the
    chart's JSON schema has none."""
    return list(yaml.load_all(text, Loader=_Generated))


def load_mapping(blob: bytes, source: str, *, secret: bool = False) -> dict[str, Any]:
    """The mapping a YAML file holds (an empty file: an empty mapping), or a ValuesError that
    names `source`, the line and the key, and, for a `secret` file, quotes none of it."""
    if len(blob) > MAX_BYTES:
        raise ValuesError(
            f"{source}: {len(blob):,} bytes; a values file holds at most {MAX_BYTES:,}"
        )
    try:
        text = blob.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as e:
        line = blob.count(b"\n", 0, e.start) + 1
        column = e.start - (blob.rfind(b"\n", 0, e.start) + 1) + 1
        raise ValuesError(f"{source}:{line}:{column}: not UTF-8 text; save it as UTF-8") from None
    loader = None
    try:
        loader = _Loader(text)  # its reader refuses control characters at once
        node = loader.get_single_node()
        if node is None:
            return {}
        _inspect(node, (), {}, set(), secret)
        data = loader.construct_document(node)
    except _Refused as e:
        raise ValuesError(f"{source}{_where(e.mark)}: {e.problem}") from None
    except yaml.MarkedYAMLError as e:
        raise ValuesError(
            f"{source}{_where(e.problem_mark)}: malformed YAML: {_problem(e.problem, secret)}"
        ) from None
    except yaml.reader.ReaderError as e:
        line = text.count("\n", 0, e.position) + 1
        raise ValuesError(f"{source}:{line}: a control character YAML does not allow") from None
    except yaml.YAMLError as e:
        raise ValuesError(f"{source}: malformed YAML: {type(e).__name__}") from None
    finally:
        if loader is not None:
            loader.dispose()
    if not isinstance(data, dict):
        raise ValuesError(f"{source}: must be a mapping of values (key: value), not {_kind(data)}")
    return data


def _inspect(node, path: Path_, sizes: dict[int, int], open_: set[int], secret: bool) -> int:
    """Refuses tags and duplicate keys, naming the key; returns the node count with aliases
    expanded, refusing more than MAX_NODES or an alias inside itself."""
    if id(node) in sizes:  # an alias of a node already counted
        return sizes[id(node)]
    if id(node) in open_:
        raise _Refused(node.start_mark, f"{key_path(path, secret)}: a YAML alias refers to itself")
    if node.tag not in _TAGS:
        shown = "" if secret else f" ({clipped(node.tag)})"
        raise _Refused(
            node.start_mark,
            f"{key_path(path, secret)}: a YAML tag{shown} is not plain data; a value that "
            "starts with `!` must be quoted",
        )
    if node.tag == _PLAIN + "int" and len(node.value) > MAX_DIGITS:
        raise _Refused(
            node.start_mark,
            f"{key_path(path, secret)}: a number of {len(node.value):,} characters; no "
            "setting takes one (quote it if it is text)",
        )
    open_.add(id(node))
    size = 1
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            if key.tag == _PLAIN + "merge":
                size += _inspect(value, path, sizes, open_, secret)
                continue
            if not isinstance(key, yaml.ScalarNode) or key.tag not in _TAGS:
                raise _Refused(
                    key.start_mark, f"{key_path(path, secret)}: a key must be a plain value"
                )
            if key.value in seen:
                raise _Refused(
                    key.start_mark,
                    f"{key_path((*path, key.value), secret)}: set twice in one mapping (the second "
                    "would silently win); keep one",
                )
            seen.add(key.value)
            size += 1 + _inspect(value, (*path, key.value), sizes, open_, secret)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            size += _inspect(item, (*path, str(i)), sizes, open_, secret)
    open_.discard(id(node))
    if size > MAX_NODES:
        raise _Refused(
            node.start_mark,
            f"{key_path(path, secret)}: more than {MAX_NODES:,} values once its aliases are "
            "expanded",
        )
    sizes[id(node)] = size
    return size


def _kind(data: Any) -> str:
    """What a YAML document holds, in YAML's words."""
    if data is None:
        return "null (an empty value)"
    return "a list" if isinstance(data, list) else "a single value"


def _where(mark) -> str:
    return f":{mark.line + 1}:{mark.column + 1}" if mark else ""


def _problem(problem: str | None, secret: bool) -> str:
    """PyYAML's description of a syntax error, which quotes what it found: clipped, and for a
    secret file without the quotes' content (an unquoted `*token` is read as an alias and
    named in the problem)."""
    text = problem or "unreadable"
    if secret:
        text = _QUOTED.sub("'…'", text)
    hint = "; a value that starts with `*` or `&` must be quoted" if "alias" in text else ""
    return clipped(text, 120) + hint
