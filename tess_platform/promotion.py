"""The gate of a promotion to prod: prod only ever receives what staging verified.

Plain data in, reasons out: the Dagster layer gathers what staging ran; this decides.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .health import CHECKS
from .releases import Release


@dataclass(frozen=True)
class StagingRun:
    """What one staging release runs, from its latest successful materialization."""

    release: Release
    git_sha: str | None = None
    release_hash: str | None = None
    image: str | None = None
    checks: dict[str, bool] = field(default_factory=dict)  # check -> passed, on that deploy


@dataclass
class Gate:
    sha: str
    refusals: list[str]

    @property
    def open(self) -> bool:
        return not self.refusals


def staging_verified(
    sha: str, desired: dict[Release, str | None], image: str, staging: list[StagingRun]
) -> list[str]:
    """Why staging has not verified `sha` (nothing: it has). Desired against deployed: a
    release that did not change since an earlier SHA counts as verified at this one."""
    reasons = []
    for run in staging:
        where = f"staging/{run.release.key}/release"
        wanted = desired.get(run.release)
        if run.release_hash is None:
            reasons.append(f"{where}: never deployed")
        elif wanted is None:
            reasons.append(f"{where}: its values at {sha[:12]} do not validate")
        elif run.release_hash != wanted:
            reasons.append(
                f"{where}: staging runs {run.git_sha[:12] if run.git_sha else '?'}"
                f" (release {run.release_hash[:12]}), not what {sha[:12]} deploys "
                f"(release {wanted[:12]}): deploy it to staging first"
            )
        else:
            for check in CHECKS:
                if run.checks.get(check) is not True:
                    state = "failed" if run.checks.get(check) is False else "did not run"
                    reasons.append(f"{where}: check {check} {state} on its deploy")
            if run.image != image:
                reasons.append(f"{where}: ran image {run.image}, but {sha[:12]} has {image}")
    return reasons


def gate(
    sha: str,
    *,
    approver: str | None,
    desired: dict[Release, str | None],
    image: str,
    staging: list[StagingRun],
    fast_forwards: bool,
    in_flight: list[str],
) -> Gate:
    refusals = []
    if not approver:
        refusals.append("no approver: launch promote_prod with the tag tess/approved_by=NAME")
    refusals += staging_verified(sha, desired, image, staging)
    if in_flight:
        refusals.append(
            f"a staging deploy of {sha[:12]} is still in flight (runs "
            f"{', '.join(in_flight)}): wait for it"
        )
    if not fast_forwards:
        refusals.append(
            f"prod does not fast-forward to {sha[:12]}: {sha[:12]} is not a "
            "descendant of prod's head; merge prod into staging first"
        )
    return Gate(sha, refusals)
