"""What a change would deploy, before it merges (`tess-platform plan`): each release of a head
tree against what runs (the revision its target serves, at the SHA that deployed it) or against
a base tree, and why it would redeploy, in Markdown for a pull-request comment and JSON for
machines.

Both sides are merged as `validate` merges them: offline, with no credentials, secrets whose
key is not here standing as placeholders (a secret change shows only where the key is). The
decision for one release is `plan_release`, a pure function of the two sides.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .markdown import cell, code
from .releases import Release
from .tree_digest import changed_files
from .values import diff

# exit codes, as `terraform plan -detailed-exitcode`
NOTHING, ERRORS, CHANGES = 0, 1, 2

DEPLOY, UNCHANGED, NEW, ERROR, LEFT = "deploy", "no change", "new", "error", "left running"


@dataclass(frozen=True)
class ReleaseSide:
    """One release as one tree makes it."""

    fingerprint: dict[str, Any] | None = None  # merged values, secrets hashed
    secret_paths: frozenset = frozenset()
    image: str | None = None  # the image's content tag
    chart: str | None = None  # the chart it is (or was) deployed with, e.g. "jupyterhub 4.4.0"
    infra: str | None = None  # digest of infra/
    errors: tuple[str, ...] = ()  # validation and cluster-contract errors
    label: str = ""  # where this side comes from, e.g. "base staging (1a2b3c4d5e6f)"
    root: Path | None = None  # the tree: what changed in image/ and infra/ is read from it


@dataclass(frozen=True)
class ReleasePlan:
    release: Release
    action: str  # DEPLOY, UNCHANGED, NEW, ERROR or LEFT
    reasons: tuple[str, ...] = ()
    against: str = ""  # what the head was compared with


def plan_release(
    release: Release, before: ReleaseSide | None, after: ReleaseSide | None
) -> ReleasePlan:
    """Whether `release` would redeploy going from `before` (None: nothing runs) to `after`
    (None: its hub folder is gone), and why, one reason a line."""
    against = before.label if before else ""
    if after is None:
        return ReleasePlan(
            release,
            LEFT,
            ("its hub folder is gone: it keeps running until the uninstall job removes it",),
            against,
        )
    if after.errors:
        return ReleasePlan(release, ERROR, after.errors, against)
    if before is None:
        return ReleasePlan(release, NEW, ("nothing runs it yet: the first install",), against)
    reasons: list[str] = []
    if before.fingerprint is None:
        reasons.append(f"{before.label}: no values to compare with; every value counts as new")
    else:
        secrets = set(before.secret_paths) | set(after.secret_paths)
        reasons += diff(before.fingerprint, after.fingerprint or {}, secrets)
    if before.chart and after.chart and before.chart != after.chart:
        reasons.append(f"chart {before.chart} → {after.chart}")
    if before.image != after.image:
        reasons.append(
            f"image `{before.image}` → `{after.image}` ({_changed(before, after, 'image')})"
        )
    if before.infra != after.infra:
        reasons.append(f"infra/ changed ({_changed(before, after, 'infra')})")
    return ReleasePlan(release, DEPLOY if reasons else UNCHANGED, tuple(reasons), against)


@dataclass
class Plan:
    head: str  # what is planned, e.g. "working tree /src/tess-platform" or a SHA
    base: str  # what it is compared with, e.g. "what runs" or "base staging (…)"
    releases: list[ReleasePlan] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # the tree's own (hub folders)
    notes: list[str] = field(default_factory=list)
    infra: str = ""  # terraform's plan of infra/ as Markdown, where it could run

    @property
    def exit_code(self) -> int:
        if self.problems or any(r.action == ERROR for r in self.releases):
            return ERRORS
        if any(r.action in (DEPLOY, NEW) for r in self.releases):
            return CHANGES
        return NOTHING

    @property
    def headline(self) -> str:
        counts = {a: sum(r.action == a for r in self.releases) for a in (DEPLOY, NEW, ERROR)}
        if self.exit_code == NOTHING:
            return "Nothing to deploy: every release runs what this change makes."
        parts = [f"{counts[DEPLOY]} to redeploy", f"{counts[NEW]} new"]
        if errors := counts[ERROR] + len(self.problems):
            parts.append(f"{errors} error(s)")
        return "Plan: " + ", ".join(parts) + "."

    def as_json(self) -> dict[str, Any]:
        return {
            "head": self.head,
            "base": self.base,
            "exit_code": self.exit_code,
            "headline": self.headline,
            "problems": self.problems,
            "notes": self.notes,
            "infra_plan": self.infra,
            "releases": [
                {
                    "release": r.release.name,
                    "action": r.action,
                    "reasons": list(r.reasons),
                    "against": r.against,
                }
                for r in self.releases
            ],
        }

    def json(self) -> str:
        return json.dumps(self.as_json(), indent=2)

    def markdown(self) -> str:
        lines = [f"### tess-platform plan: {self.headline}", ""]
        lines.append(f"{code(self.head)} against {cell(self.base)}.")
        for problem in self.problems:
            lines.append(f"\n- **error** {cell(problem)}")
        lines += ["", "| release | action | why |", "|---|---|---|"]
        for r in self.releases:
            why = "<br>".join(cell(reason) for reason in r.reasons) or "—"
            lines.append(f"| `{r.release.name}` | **{r.action}** | {why} |")
        if self.infra:
            lines += ["", "#### infra/: terraform's plan", "", self.infra.rstrip()]
        if self.notes:
            lines += ["", *(f"> {cell(note)}" for note in self.notes)]
        return "\n".join(lines) + "\n"


def _changed(before: ReleaseSide, after: ReleaseSide, folder: str) -> str:
    if before.root is None or after.root is None:
        return "its files not at hand"
    files = changed_files(before.root / folder, after.root / folder)
    return ", ".join(f"`{folder}/{f}`" for f in files) or "no file listed"
