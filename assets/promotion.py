"""prod/promotion: the gate of promote_prod, and the move of the prod branch.

It refuses, before anything touches prod, unless staging verified the SHA; the prod values
and releases depend on it, so a refused promotion deploys nothing.
"""

from dagster import (
    AssetExecutionContext,
    DagsterRunStatus,
    Failure,
    MaterializeResult,
    MetadataValue,
    RunsFilter,
    asset,
)

from tess_platform.git import GitError
from tess_platform.platform import PROD, STAGING, Platform
from tess_platform.promotion import StagingRun, gate, staging_verified
from tess_platform.releases import all_releases

from .history import deployed, latest_evaluations, on_latest_deploy
from .keys import PROMOTION, check_keys, release_key
from .resources import ENV_TAG, SHA_TAG, PlatformResource

APPROVER_TAG = "tess/approved_by"
IN_FLIGHT = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
]


def staging_runs(instance) -> list[StagingRun]:
    """What each staging release runs, from its latest materialization and that deploy's checks."""
    runs = []
    for release in all_releases(STAGING):
        meta = deployed(instance, release)
        if meta is None:
            runs.append(StagingRun(release))
            continue
        checks = {
            key.name: evaluation.passed
            for key, (_, evaluation) in latest_evaluations(instance, check_keys(release)).items()
            if on_latest_deploy(evaluation, meta)
        }
        runs.append(
            StagingRun(
                release, meta.get("git_sha"), meta.get("release_hash"), meta.get("image"), checks
            )
        )
    return runs


def newest_verified(platform: Platform, staging: list[StagingRun], depth: int = 20) -> str | None:
    """The newest SHA on staging that staging verified, looking back `depth` commits: a
    docs-only merge after a deploy is verified as much as the deploy's own SHA."""
    for sha in platform.repo.recent(STAGING, depth):
        snapshot = platform.repo.snapshot(sha)
        image = platform.image_ref(platform.tree(snapshot)).ref
        if not staging_verified(sha, platform.desired(snapshot, STAGING), image, staging):
            return sha
    return None


def in_flight_staging(instance, sha: str) -> list[str]:
    """Staging deploys of `sha` not finished yet, and queued ones whose SHA is not chosen yet
    (a run without the tag deploys the head of staging when it starts)."""
    runs = instance.get_runs(RunsFilter(job_name="deploy_staging", statuses=IN_FLIGHT))
    return [run.run_id for run in runs if run.tags.get(SHA_TAG) in (sha, None)]


def _table(staging: list[StagingRun]) -> str:
    rows = ["| release | git_sha | release_hash | image | checks |", "|---|---|---|---|---|"]
    for run in staging:
        checks = ", ".join(f"{k}: {'pass' if v else 'FAIL'}" for k, v in run.checks.items())
        rows.append(
            f"| staging/{run.release.key}/release | `{(run.git_sha or '-')[:12]}` | "
            f"`{(run.release_hash or '-')[:12]}` | `{run.image or '-'}` | "
            f"{checks or '-'} |"
        )
    return "\n".join(rows)


@asset(
    key=PROMOTION,
    group_name=PROD,
    code_version="1",
    deps=[release_key(r) for r in all_releases(STAGING)],
    description="The SHA promoted to prod, gated on what staging verified; moves `prod`.",
)
def promotion(context: AssetExecutionContext, platform: PlatformResource) -> MaterializeResult:
    core, instance = platform.platform, context.instance
    run = instance.get_run_by_id(context.run.run_id)
    staging = staging_runs(instance)
    sha = run.tags.get(SHA_TAG)
    if sha:
        try:
            snapshot, _ = core.snapshot(sha, merged_into=(STAGING, PROD))
        except GitError as e:
            raise Failure(
                description=f"promote_prod refused {sha}: {e}. Prod was not touched."
            ) from None
    else:
        sha = newest_verified(core, staging)
        if sha is None:
            raise Failure(
                description="staging has verified no SHA yet: nothing to promote. "
                "Deploy staging and let its checks pass first."
            )
        snapshot = core.repo.snapshot(sha)
        context.log.info(f"promoting {sha}: the newest SHA staging verified")
    sha = snapshot.sha
    image = core.image_ref(core.tree(snapshot)).ref
    verdict = gate(
        sha,
        approver=run.tags.get(APPROVER_TAG),
        desired=core.desired(snapshot, STAGING),
        image=image,
        staging=staging,
        fast_forwards=core.repo.fast_forwards(PROD, sha),
        in_flight=in_flight_staging(instance, sha),
    )
    if not verdict.open:
        raise Failure(
            description=f"promote_prod refused {sha[:12]}; prod was not touched:\n"
            + "\n".join(f"- {reason}" for reason in verdict.refusals),
            metadata={"git_sha": sha, "staging": MetadataValue.md(_table(staging))},
        )
    platform.pin(context, snapshot)
    before = core.repo.move_branch(PROD, sha)
    context.log.info(f"prod branch: {before or '(new)'} -> {sha}")
    return MaterializeResult(
        metadata={
            "git_sha": sha,
            "approved_by": run.tags[APPROVER_TAG],
            "image": image,
            "prod_branch_before": before or "none",
            "staging": MetadataValue.md(_table(staging)),
            ENV_TAG: PROD,
        }
    )
