"""Jobs: deploy_staging, promote_prod, rollback."""

from dagster import (
    AssetMaterialization,
    AssetSelection,
    Config,
    Failure,
    MetadataValue,
    OpExecutionContext,
    define_asset_job,
    in_process_executor,
)
from dagster import job as job_
from dagster import op as op_

from tess_dagster.assets.keys import release_key
from tess_dagster.assets.resources import PlatformResource
from tess_platform.releases import Release, UnknownReleaseError
from tess_platform.tags import APPROVER_TAG, ENV_TAG, approver_problem
from tess_platform.targets import DeployError

from .executor import hubs_side_by_side

deploy_staging = define_asset_job(
    "deploy_staging",
    executor_def=hubs_side_by_side,
    selection=AssetSelection.groups("infra", "image", "staging"),
    tags={ENV_TAG: "staging"},
    description="Deploy the staging hubs at one git SHA (tag tess/git_sha; default: the head "
    "of staging): infra, the user image, values, releases and their checks.",
)

promote_prod = define_asset_job(
    "promote_prod",
    executor_def=hubs_side_by_side,
    selection=AssetSelection.groups("prod"),
    tags={ENV_TAG: "prod"},
    description="Promote one SHA that staging verified to prod (tags tess/approved_by=NAME, "
    "optional tess/git_sha; default: the newest SHA staging verified). Refuses "
    "before touching prod unless staging verified it; moves the prod branch, deploys "
    "prod with staging's artifacts, checks it, and rolls a failed release back.",
)


verify_releases = define_asset_job(
    "verify_releases",
    executor_def=hubs_side_by_side,
    selection=AssetSelection.all_asset_checks(),
    description="Run release checks again against what serves, without deploying: "
    "release_drift_sensor launches it when a release drifted or its checks never ran; the "
    "UI's 'Execute checks' does the same by hand.",
)


class RollbackConfig(Config):
    release: str  # e.g. tess-public-prod
    revision: int  # the earlier revision to return to


@op_(description="Return one release to an earlier revision of its history.")
def rollback_release(
    context: OpExecutionContext, config: RollbackConfig, platform: PlatformResource
) -> None:
    try:
        release = Release.parse(config.release)
        deployed, record = platform.platform.rollback(release, config.revision, context.log.info)
    except (UnknownReleaseError, DeployError) as e:
        raise platform.failure(e, "Nothing was changed.") from None
    context.log.info(
        f"{release.name}: revision {config.revision} restored as revision {deployed.revision}"
    )
    context.log_event(
        AssetMaterialization(
            asset_key=release_key(release),
            description=f"rolled back to revision {config.revision}",
            metadata={
                "revision": deployed.revision,
                "restored_revision": config.revision,
                "git_sha": record.get("git_sha", ""),
                "image": record.get("image", ""),
                "release_hash": record.get("release_hash", ""),
                "values_sha256": record.get("values_sha256", ""),
                "url": MetadataValue.url(deployed.url),
            },
        )
    )


class UninstallConfig(Config):
    release: str  # e.g. workshop-staging


@op_(description="Uninstall one release whose hub folder is gone from the branches.")
def uninstall_release(
    context: OpExecutionContext, config: UninstallConfig, platform: PlatformResource
) -> None:
    approver = context.run.tags.get(APPROVER_TAG)
    if approver is None or (problem := approver_problem(approver)):
        raise Failure(
            description=f"uninstall_release needs the run tag {APPROVER_TAG}=NAME of who "
            f"approves it{': ' + problem if approver is not None else ''}. Nothing was changed."
        )
    try:
        release = Release.parse(config.release)
        said = platform.platform.uninstall(release, context.log.info)
    except (UnknownReleaseError, DeployError) as e:
        raise platform.failure(e, "Nothing was changed.") from None
    context.log.info(f"{said} (approved by {approver.strip()})")


@job_(
    executor_def=in_process_executor,
    description="Uninstall a release whose hub_config/ folder was removed (config: release; "
    "tag tess/approved_by=NAME). Refused while the folder is on staging or prod.",
)
def uninstall():
    uninstall_release()


@job_(
    executor_def=in_process_executor,
    description="Roll one release back to a chosen earlier revision (config: release, "
    "revision); recorded as a materialization of the release.",
)
def rollback():
    rollback_release()
