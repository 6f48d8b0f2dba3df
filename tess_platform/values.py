"""Helm-style values: load YAML layers, merge them as helm does, mask, fingerprint and diff.

Merge rules (helm's): later layers win; maps merge key by key; lists and scalars replace;
a `null` deletes the key. Every node remembers the layer that set it, so that an error can
name the file that brought a key in.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from typing import Any

from .quoting import clipped

Path_ = tuple[str, ...]
MASK = "***"
SECRET_HASH_PREFIX = "secret-sha256:"
_MISSING = object()  # a key that is not there (None is a value: helm's delete)


class ValuesError(ValueError):
    """Bad values input; the message names the file and the key, never a secret value."""


@dataclass(frozen=True)
class Layer:
    source: str  # what an operator recognises: a repo-relative file, "chart defaults", "pipeline"
    values: dict[str, Any]
    secret: bool = False  # every leaf of a secret layer is a secret


@dataclass
class Merged:
    values: dict[str, Any]
    sources: dict[Path_, str] = field(default_factory=dict)  # node path -> layer that set it
    secret_paths: set[Path_] = field(default_factory=set)  # leaves whose value is a secret
    secret_nodes: set[Path_] = field(default_factory=set)  # keys a secret layer brought in

    def source_of(self, path: Path_) -> str:
        """The layer that brought `path` in: the deepest of its prefixes some layer set."""
        for n in range(len(path), -1, -1):
            if path[:n] in self.sources:
                return self.sources[path[:n]]
        return "chart defaults"

    def secret_values(self) -> list[str]:
        return [str(v) for p in self.secret_paths if (v := get_path(self.values, p)) is not None]

    def secret_key_names(self, public: Collection[str]) -> set[str]:
        """The names of keys only a secret layer brought in, but the `public` ones: a token
        pasted where a key goes is such a name, as much a secret as a value."""
        return {p[-1] for p in self.secret_nodes if has_path(self.values, p)} - set(public)

    def masked(self) -> dict[str, Any]:
        """The values with every secret leaf replaced by `***`."""
        return _replace_paths(self.values, self.secret_paths, lambda _: MASK)

    def fingerprint(self) -> dict[str, Any]:
        """The values with every secret replaced by its hash: changes show, values do not."""
        return _replace_paths(self.values, self.secret_paths, _secret_hash)

    def sha256(self) -> str:
        return canonical_sha256(self.fingerprint())


def _secret_hash(value: Any) -> str:
    return SECRET_HASH_PREFIX + hashlib.sha256(str(value).encode()).hexdigest()


def canonical_sha256(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def merge(layers: list[Layer]) -> Merged:
    merged = Merged({})
    for layer in layers:
        _merge_into(merged, merged.values, layer.values, (), layer)
    merged.secret_paths = {p for p in merged.secret_paths if has_path(merged.values, p)}
    return merged


def _merge_into(merged: Merged, base: dict, over: dict, prefix: Path_, layer: Layer) -> None:
    base_keys = set(base)  # what the layers before this one brought in
    for key, value in over.items():
        key = str(key)
        path = (*prefix, key)
        if value is None:
            base.pop(key, None)
            merged.sources[path] = layer.source
            continue
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merged.sources.setdefault(path, layer.source)
            _merge_into(merged, base[key], value, path, layer)
            continue
        base[key] = copy.deepcopy(value)
        _forget_below(merged, path)
        merged.sources[path] = layer.source
        if layer.secret:
            nodes = node_paths(value, path)
            if key in base_keys:
                next(nodes)  # the key itself an earlier layer brought in: only those below
            merged.secret_nodes.update(nodes)
        for leaf in leaf_paths(value, path):
            if layer.secret:
                merged.secret_paths.add(leaf)
            else:
                merged.secret_paths.discard(leaf)


def _forget_below(merged: Merged, path: Path_) -> None:
    n = len(path)
    for p in [p for p in merged.sources if len(p) > n and p[:n] == path]:
        del merged.sources[p]
    merged.secret_paths = {p for p in merged.secret_paths if not (len(p) > n and p[:n] == path)}


def node_paths(value: Any, prefix: Path_) -> Iterator[Path_]:
    """`prefix` and the path of every key below it."""
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from node_paths(v, (*prefix, str(k)))


def leaf_paths(value: Any, prefix: Path_ = ()) -> Iterator[Path_]:
    if isinstance(value, dict) and value:
        for k, v in value.items():
            yield from leaf_paths(v, (*prefix, str(k)))
    else:
        yield prefix


def _lookup(data: Any, path: Path_) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return _MISSING
        data = data[key]
    return data


def get_path(data: Any, path: Path_) -> Any:
    found = _lookup(data, path)
    return None if found is _MISSING else found


def has_path(data: Any, path: Path_) -> bool:
    return _lookup(data, path) is not _MISSING


def set_path(data: dict, path: Path_, value: Any) -> None:
    for key in path[:-1]:
        data = data.setdefault(key, {})
    data[path[-1]] = value


def _replace_paths(values: dict, paths: set[Path_], replace) -> dict:
    out = copy.deepcopy(values)
    for path in paths:
        if path and has_path(out, path):
            set_path(out, path, replace(get_path(out, path)))
    return out


HIDDEN_KEY = "‹a key›"


def dotted(path: Path_, names: Collection[str] | None = None) -> str:
    """A key's path for a message; a key of a megabyte is clipped. With `names` (a secrets
    file's path), a key that is none of them shows as HIDDEN_KEY: a token pasted where a key
    goes is a key, and must not show."""
    if not path:
        return "(top level)"
    return ".".join(clipped(k) if names is None or k in names else HIDDEN_KEY for k in path)


def diff(old: dict[str, Any] | None, new: dict[str, Any], secret_paths: set[Path_]) -> list[str]:
    """What changed between two fingerprinted value trees, one line a key; secrets say only
    that they changed."""
    if old is None:
        return ["first revision"]
    old_leaves = {p: get_path(old, p) for p in leaf_paths(old)}
    new_leaves = {p: get_path(new, p) for p in leaf_paths(new)}
    lines = []
    for path in sorted(old_leaves.keys() | new_leaves.keys()):
        before, after = old_leaves.get(path, _MISSING), new_leaves.get(path, _MISSING)
        if before == after or _filled(old, new, path):
            continue
        if path in secret_paths or _is_secret_hash(before) or _is_secret_hash(after):
            lines.append(f"`{dotted(path)}`: secret changed")
        elif before is _MISSING:
            lines.append(f"`{dotted(path)}`: added {_short(after)}")
        elif after is _MISSING:
            lines.append(f"`{dotted(path)}`: removed (was {_short(before)})")
        else:
            lines.append(f"`{dotted(path)}`: {_short(before)} → {_short(after)}")
    return lines


def _filled(old: dict, new: dict, path: Path_) -> bool:
    """Whether `path`, a leaf on one side, is a mapping on both: an empty one the other fills
    (or empties), whose keys' own lines say what changed; it was neither added nor removed."""
    return isinstance(get_path(old, path), dict) and isinstance(get_path(new, path), dict)


def _is_secret_hash(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(SECRET_HASH_PREFIX)


def _short(value: Any) -> str:
    return clipped(json.dumps(value, default=str))
