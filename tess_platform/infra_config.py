"""infra/ read as configuration with python-hcl2: what the cluster terraform makes will hold,
known before terraform runs (terraform cannot install its providers everywhere this runs)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


class InfraError(ValueError):
    """infra/ cannot be read; the message names the file."""


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    return text


def clean(value: Any) -> Any:
    """python-hcl2 8.x output without its markers: block flags and comments dropped, keys and
    string literals unquoted. Expressions stay as `${...}` strings."""
    if isinstance(value, dict):
        return {_unquote(k): clean(v) for k, v in value.items() if not k.startswith("__")}
    if isinstance(value, list):
        return [clean(v) for v in value]
    if isinstance(value, str):
        return _unquote(value)
    return value


def parse(path: Path) -> dict[str, Any]:
    import hcl2  # here: every process that loads the code location imports this module

    try:
        with path.open() as f:
            return clean(hcl2.load(f))
    except (OSError, UnicodeDecodeError) as e:
        raise InfraError(f"{path.name}: cannot be read: {e}") from None
    except Exception as e:  # the parser's own errors (lark) carry line and column
        raise InfraError(f"infra/{path.name}: not valid HCL: {str(e).splitlines()[0]}") from None


@dataclass(frozen=True)
class InfraConfig:
    """The top-level blocks of infra/*.tf, and terraform.tfvars."""

    folder: Path
    files: dict[str, dict[str, Any]]  # file name -> parsed
    tfvars: dict[str, Any]

    @classmethod
    def read(cls, folder: Path) -> InfraConfig:
        if not folder.is_dir():
            raise InfraError(f"{folder.name}/: missing")
        files = {p.name: parse(p) for p in sorted(folder.glob("*.tf"))}
        tfvars = folder / "terraform.tfvars"
        return cls(folder, files, parse(tfvars) if tfvars.exists() else {})

    def top(self, kind: str) -> list[dict[str, Any]]:
        """All top-level blocks of one kind (resource, variable, ...) across the files."""
        return [block for parsed in self.files.values() for block in parsed.get(kind, [])]

    def labelled(self, kind: str) -> dict[str, dict[str, Any]]:
        """Blocks with one label (variable, output): name -> body."""
        return {name: body for block in self.top(kind) for name, body in block.items()}

    def resources(self, kind: str = "resource") -> dict[tuple[str, str], dict[str, Any]]:
        """Blocks with two labels (resource, data): (type, name) -> body."""
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for block in self.top(kind):
            for rtype, named in block.items():
                for name, body in named.items():
                    if (rtype, name) in found:
                        raise InfraError(f"infra/: {rtype}.{name} declared twice")
                    found[(rtype, name)] = body
        return found

    def of_type(self, rtype: str) -> dict[str, dict[str, Any]]:
        return {name: body for (t, name), body in self.resources().items() if t == rtype}

    def variable(self, name: str) -> Any:
        """A variable's value: terraform.tfvars', else its default."""
        if name in self.tfvars:
            return self.tfvars[name]
        return self.labelled("variable").get(name, {}).get("default")


def nested(body: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """The nested blocks `name` of a body (python-hcl2 gives blocks as lists)."""
    blocks = body.get(name) or []
    return blocks if isinstance(blocks, list) else [blocks]
