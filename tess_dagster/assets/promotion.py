"""prod/promotion: the gate of promote_prod, and the move of the prod branch.

It refuses, before anything touches prod, unless staging's verification record shows the SHA
verified, and the staging checks, run again right before prod moves, confirm it; the prod
values and releases depend on it, so a refused promotion deploys nothing.
"""

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from dagster import (
    AssetExecutionContext,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)

from tess_platform.checks import CheckResult
from tess_platform.git import GitError
from tess_platform.hubs import Hubs
from tess_platform.platform import LOOK_BACK, PROD, STAGING
from tess_platform.promotion import fresh_refusals, gate, where
from tess_platform.releases import Release
from tess_platform.tags import APPROVER_TAG, ENV_TAG, SHA_TAG
from tess_platform.verification import ReleaseRecord, when

from .history import in_flight, record
from .keys import PROMOTION, release_key
from .resources import PlatformResource


def staging_records(instance, hubs: Hubs) -> list[ReleaseRecord]:
    return [record(instance, release) for release in hubs.releases(STAGING)]


def in_flight_staging(instance, sha: str) -> list[str]:
    """Staging deploys of `sha` not finished yet, and queued ones whose SHA is not chosen yet
    (a run without the tag deploys the head of staging when it starts)."""
    runs = in_flight(instance, "deploy_staging")
    return [run.run_id for run in runs if run.tags.get(SHA_TAG) in (sha, None)]


def _record_table(staging: list[ReleaseRecord]) -> str:
    rows = ["| release | revision | git_sha | release_hash | image | checks |"]
    rows.append("|---|---|---|---|---|---|")
    for rec in staging:
        d = rec.deployed
        checks = ", ".join(
            f"{name}: {'pass' if e.passed else 'FAIL'} ({when(e.timestamp)})"
            for name, e in rec.checks.items()
        )
        rows.append(
            f"| {where(rec.release)} | {d.revision if d else '-'} | "
            f"`{((d.git_sha if d else None) or '-')[:12]}` | "
            f"`{(d.release_hash if d else '-')[:12]}` | `{(d.image if d else None) or '-'}` | "
            f"{checks or '-'} |"
        )
    return "\n".join(rows)


def _evidence_table(found: dict[Release, dict[str, CheckResult]], at: float, image: str) -> str:
    rows = ["| release | check | result | revision | release_hash | when | image |"]
    rows.append("|---|---|---|---|---|---|---|")
    for release, results in found.items():
        for name, result in results.items():
            rows.append(
                f"| {where(release)} | {name} | "
                f"{'pass' if result.passed else 'FAIL'}: {result.description} | "
                f"{result.details.get('revision', '-')} | "
                f"`{str(result.details.get('release_hash', '-'))[:12]}` | {when(at)} | `{image}` |"
            )
    return "\n".join(rows)


def _refuse(sha: str, reasons: list[str], metadata: dict) -> Failure:
    return Failure(
        description=f"promote_prod refused {sha[:12]}; prod was not touched:\n"
        + "\n".join(f"- {reason}" for reason in reasons),
        metadata=metadata,
    )


def promotion(hubs: Hubs):
    @asset(
        key=PROMOTION,
        group_name=PROD,
        code_version="2",
        deps=[release_key(r) for r in hubs.releases(STAGING)],
        description="The SHA promoted to prod, gated on what staging verified and checked "
        "again right before; moves `prod`.",
    )
    def _promotion(context: AssetExecutionContext, platform: PlatformResource) -> MaterializeResult:
        return promote(context, platform, staging_records(context.instance, hubs))

    return _promotion


def promote(
    context: AssetExecutionContext, platform: PlatformResource, staging: list[ReleaseRecord]
) -> MaterializeResult:
    core, instance = platform.platform, context.instance
    run = instance.get_run_by_id(context.run.run_id)
    sha = run.tags.get(SHA_TAG)
    if sha:
        try:
            snapshot, _ = core.snapshot(sha, merged_into=(STAGING, PROD))
        except GitError as e:
            raise Failure(
                description=f"promote_prod refused {sha}: {e}. Prod was not touched."
            ) from None
    else:
        sha = core.newest_verified(staging)
        if sha is None:  # judge the head, so that the refusal says why it is not verified
            sha, _ = core.repo.default_head()
            context.log.info(
                f"staging verified none of its last {LOOK_BACK} commits; judging its head {sha}"
            )
        else:
            context.log.info(f"promoting {sha}: the newest SHA staging verified")
        snapshot = core.repo.snapshot(sha)
    sha = snapshot.sha
    image = core.image_ref(core.tree(snapshot)).ref
    desired = core.desired(snapshot, STAGING)
    approver = run.tags.get(APPROVER_TAG)
    table = MetadataValue.md(_record_table(staging))
    verdict = gate(
        sha,
        approver=approver,
        desired=desired,
        image=image,
        staging=staging,
        fast_forwards=core.repo.fast_forwards(PROD, sha),
        in_flight=in_flight_staging(instance, sha),
    )
    if not verdict.open:
        raise _refuse(sha, verdict.refusals, {"git_sha": sha, "staging": table})

    # fresh evidence: what staging serves now, checked again right before prod moves
    context.log.info("staging verified it; running the staging checks again before moving prod")
    checked_at = datetime.now(UTC).timestamp()
    hashes = {rec.release: rec.deployed.release_hash for rec in staging if rec.deployed}

    def check_release(release: Release) -> dict[str, CheckResult]:
        return core.checks(release, hashes.get(release), core.repo.snapshot(sha))

    # under staging's lock: no staging deploy or check runs meanwhile; the hubs side by side
    with (
        core.target.env_lock(STAGING, context.log.info),
        ThreadPoolExecutor() as pool,
    ):
        found = dict(zip(hashes, pool.map(check_release, hashes), strict=True))
    evidence = MetadataValue.md(_evidence_table(found, checked_at, image))
    stale = fresh_refusals(desired, found)
    if stale:
        raise _refuse(sha, stale, {"git_sha": sha, "staging": table, "evidence": evidence})

    platform.pin(context, snapshot)
    before = core.repo.move_branch(PROD, sha)
    context.log.info(f"prod branch: {before or '(new)'} -> {sha}")
    return MaterializeResult(
        metadata={
            "git_sha": sha,
            "approved_by": approver.strip(),
            "image": image,
            "prod_branch_before": before or "none",
            "staging": table,
            "evidence": evidence,
            ENV_TAG: PROD,
        }
    )
