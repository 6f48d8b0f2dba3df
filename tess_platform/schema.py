"""Validate merged values against the chart's values schema, naming the file that brought each
problem in. Messages never quote a value: a value may be a secret."""

from __future__ import annotations

import difflib
import re
from typing import TYPE_CHECKING, Any

from .chart import ChartFiles
from .iri_grammar import skip_iri_grammar
from .quoting import clipped
from .secrets import SECRETS_FILE_KEYS, key_path
from .values import Layer, Merged, Path_, ValuesError, merge

if TYPE_CHECKING:
    import jsonschema


def chart_values(chart: ChartFiles, layers: list[Layer]) -> Merged:
    """What helm validates and renders: the chart's defaults with the layers merged over them."""
    return merge([Layer("chart defaults", chart.defaults), *layers])


def import_jsonschema():
    """jsonschema, imported without rfc3987-syntax's grammar (iri_grammar): validation without
    format checking (the chart's schema, kubernetes-validate) never runs its checker. Import
    jsonschema, or a library that imports it, only after this."""
    skip_iri_grammar()
    import jsonschema

    return jsonschema


def public_names(chart: ChartFiles) -> frozenset[str]:
    """Key names that are no secret: the chart's (its schema's properties, its defaults' keys)
    and those a secrets file holds as the platform writes it."""
    found: set[str] = set(SECRETS_FILE_KEYS)

    def walk(node: Any, schema: bool) -> None:
        if isinstance(node, dict):
            if not schema:
                found.update(str(k) for k in node)
            elif isinstance(node.get("properties"), dict):
                found.update(node["properties"])
            for value in node.values():
                walk(value, schema)
        elif isinstance(node, list):
            for item in node:
                walk(item, schema)

    walk(chart.schema, schema=True)
    walk(chart.defaults, schema=False)
    return frozenset(found)


def _validator(schema: dict):
    return import_jsonschema().Draft7Validator(schema)


def rejected(chart: ChartFiles, merged: Merged) -> list[tuple[Path_, str]]:
    """Each key the schema refuses, and why (never quoting a value)."""
    validator = _validator(chart.schema)
    errors = sorted(validator.iter_errors(merged.values), key=lambda e: list(e.path))
    return [found for error in errors for found in _explain(error, chart)]


def problems(chart: ChartFiles, merged: Merged) -> list[str]:
    return [
        f"{merged.source_of(path)}: {key_path(path, _from_secrets(path, merged))}: {reason}"
        for path, reason in rejected(chart, merged)
    ]


def _from_secrets(path: Path_, merged: Merged) -> bool:
    """Whether a secrets file set the key at `path` (a secret leaf is at or below it)."""
    return any(p[: len(path)] == path for p in merged.secret_paths)


def validate(chart: ChartFiles, merged: Merged, what: str) -> None:
    found = problems(chart, merged)
    if found:
        listed = "\n  ".join(found)
        raise ValuesError(f"{what}: the values do not pass the chart schema:\n  {listed}")


def _explain(error: jsonschema.ValidationError, chart: ChartFiles) -> list[tuple[tuple, str]]:
    path = tuple(str(p) for p in error.path)
    schema_name = f"the {chart.chart.label} values schema"
    kind = error.validator
    if kind == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {}))
        patterns = error.schema.get("patternProperties", {})
        extra = [
            k
            for k in error.instance
            if k not in allowed and not any(re.search(p, k) for p in patterns)
        ]
        return [
            ((*path, str(k)), f"not allowed by {schema_name}{_nearest(str(k), allowed)}")
            for k in sorted(extra)
        ]
    if kind == "type":
        return [(path, f"must be of type {_types(error.validator_value)} in {schema_name}")]
    if kind == "enum":
        return [(path, f"must be one of {error.validator_value} in {schema_name}")]
    if kind == "required":
        missing = [k for k in error.validator_value if k not in (error.instance or {})]
        return [((*path, k), f"is required by {schema_name}") for k in missing]
    return [(path, f"fails `{kind}: {_short(error.validator_value)}` of {schema_name}")]


def _nearest(key: str, allowed: set[str]) -> str:
    """The schema's name a refused key is a typo of, if one is near: a public name, so shown
    also where the key itself is not (a secrets file's)."""
    near = difflib.get_close_matches(key, sorted(allowed), n=1)
    return f"; did you mean `{near[0]}`?" if near else ""


def _types(value: Any) -> str:
    return " or ".join(value) if isinstance(value, list) else str(value)


def _short(value: Any) -> str:
    return clipped(str(value), 80)
