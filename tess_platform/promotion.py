"""The gate of a promotion to prod: prod only ever receives what staging verified.

Plain data in, reasons out: the Dagster layer gathers the verification record of staging; this
decides. Every reason that applies is given, each with what to do next, and none that does not.
"""

from __future__ import annotations

from dataclasses import dataclass

from .checks import CHECKS, CheckResult
from .releases import Release
from .tags import APPROVER_TAG, approver_problem
from .verification import ReleaseRecord


@dataclass
class Gate:
    sha: str
    refusals: list[str]

    @property
    def open(self) -> bool:
        return not self.refusals


def where(release: Release) -> str:
    return "/".join(release.asset_path("release"))


def staging_verified(
    sha: str, desired: dict[Release, str | None], image: str, staging: list[ReleaseRecord]
) -> list[str]:
    """Why staging has not verified `sha` (nothing: it has). Desired against deployed: a
    release that did not change since an earlier SHA counts as verified at this one."""
    reasons = []
    for record in staging:
        at, deployed, wanted = where(record.release), record.deployed, desired.get(record.release)
        if deployed is None:
            reasons.append(
                f"{at}: never deployed: merge to staging and let staging_branch_sensor "
                "deploy it (or launch deploy_staging)"
            )
        elif wanted is None:
            reasons.append(
                f"{at}: its values at {sha[:12]} do not validate: run `tess-platform "
                f"validate --sha {sha[:12]}` and fix what it names"
            )
        elif deployed.release_hash != wanted:
            reasons.append(
                f"{at}: staging runs {(deployed.git_sha or '?')[:12]} (release "
                f"{deployed.release_hash[:12]}), not what {sha[:12]} deploys (release "
                f"{wanted[:12]}): deploy it to staging first"
            )
        else:
            reasons += [
                f"{at}: {reason}: re-execute its checks (Dagster UI: the asset's Checks tab), "
                "or fix the hub and deploy again"
                for reason in record.unverified()
            ]
            if deployed.image != image:
                reasons.append(
                    f"{at}: ran image {deployed.image}, but {sha[:12]} has {image}: deploy "
                    f"{sha[:12]} to staging first"
                )
    return reasons


def gate(
    sha: str,
    *,
    approver: str | None,
    desired: dict[Release, str | None],
    image: str,
    staging: list[ReleaseRecord],
    fast_forwards: bool,
    in_flight: list[str],
) -> Gate:
    refusals = []
    if problem := approver_problem(approver):
        refusals.append(
            f"{APPROVER_TAG}: {problem}; launch promote_prod with the tag {APPROVER_TAG}=NAME"
        )
    refusals += staging_verified(sha, desired, image, staging)
    if in_flight:
        refusals.append(
            f"a staging deploy of {sha[:12]} is still in flight (runs "
            f"{', '.join(in_flight)}): wait for it to end, then promote again"
        )
    if not fast_forwards:
        refusals.append(
            f"prod does not fast-forward to {sha[:12]}: {sha[:12]} is not a "
            "descendant of prod's head; merge prod into staging first"
        )
    return Gate(sha, refusals)


def fresh_refusals(
    desired: dict[Release, str | None], found: dict[Release, dict[str, CheckResult]]
) -> list[str]:
    """Why the checks run right before prod moves do not confirm the record: a check failed
    now, or staging no longer serves what the SHA deploys."""
    reasons = []
    for release, results in found.items():
        for name in CHECKS:
            result = results[name]
            if not result.passed:
                reasons.append(
                    f"{where(release)}: check {name} failed just now: {result.description}"
                )
            elif result.details.get("release_hash") != desired.get(release):
                reasons.append(
                    f"{where(release)}: check {name} found revision "
                    f"{result.details.get('revision', '?')} serving another release than the "
                    "SHA deploys: deploy it to staging again"
                )
    return reasons
