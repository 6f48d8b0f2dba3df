"""What an import did and what it left to a person: findings with file and key, no values."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..markdown import cell, code

# kinds of finding, in the order the report shows them
NOT_IMPORTED = "not imported"  # left behind: why, and what to do instead
CHECK = "check by hand"  # carried over, but a person should look
EXPLICIT = "made explicit"  # an old default the new chart changed, written down to keep it
TRANSLATED = "translated"  # an old key, written under its new name
KINDS = (NOT_IMPORTED, CHECK, EXPLICIT, TRANSLATED)


@dataclass(frozen=True, order=True)
class Finding:
    kind: str
    file: str  # relative to the repository it is about
    key: str  # dotted, or "" for a whole file
    message: str  # never a value: values may be secrets


@dataclass
class Report:
    source: str
    into: str
    findings: list[Finding] = field(default_factory=list)
    written: list[str] = field(default_factory=list)  # files of `into`, relative
    validation: list[str] = field(default_factory=list)  # `tess-platform validate`'s lines
    valid: bool = True

    def add(self, kind: str, file: str, key: str, message: str) -> None:
        finding = Finding(kind, file, key, message)
        if finding not in self.findings:
            self.findings.append(finding)

    def of(self, kind: str) -> list[Finding]:
        return sorted(f for f in self.findings if f.kind == kind)

    def markdown(self) -> str:
        lines = [f"### tess-platform import-hubploy: {cell(self.source)} into {cell(self.into)}"]
        for kind in KINDS:
            found = self.of(kind)
            if not found:
                continue
            lines += ["", f"#### {kind} ({len(found)})", "", "| file | key | |", "|---|---|---|"]
            lines += [
                f"| {code(f.file)} | {code(f.key) if f.key else '—'} | {cell(f.message)} |"
                for f in found
            ]
        lines += ["", f"#### written ({len(self.written)})", ""]
        lines += [f"- `{path}`" for path in self.written] or ["- nothing: it was all there"]
        verdict = "passes" if self.valid else "**does not pass**"
        lines += ["", f"#### `tess-platform validate` {verdict}", "", "```"]
        lines += [*self.validation, "```"]
        return "\n".join(lines) + "\n"
