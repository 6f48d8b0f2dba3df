"""infra/eks_cluster and infra/efs: the cluster the hubs run on and the storage of homes."""

from dagster import (
    AssetExecutionContext,
    DataVersion,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)

from tess_platform.tags import APPROVE_DESTROY_TAG

from .keys import EFS, EKS_CLUSTER
from .resources import PlatformResource


def _provisioned(result) -> MaterializeResult:
    markdown = {k: MetadataValue.md(v) for k, v in result.markdown.items()}
    return MaterializeResult(
        metadata={**result.summary, **markdown}, data_version=DataVersion(result.version)
    )


@asset(
    key=EKS_CLUSTER,
    group_name="infra",
    code_version="1",
    description="The Kubernetes cluster of the hubs, from infra/ (terraform plan, saved, "
    "applied); local target: the hub supervisor.",
)
def eks_cluster(context: AssetExecutionContext, platform: PlatformResource) -> MaterializeResult:
    snapshot = platform.snapshot(context)
    approval = context.instance.get_run_by_id(context.run.run_id).tags.get(APPROVE_DESTROY_TAG)
    try:
        result = platform.platform.target.ensure_cluster(snapshot.root, approval, context.log.info)
    except RuntimeError as e:
        raise Failure(description=platform.platform.redact(str(e))) from None
    return _provisioned(result)


@asset(
    key=EFS,
    group_name="infra",
    code_version="1",
    deps=[EKS_CLUSTER],
    description="Persistent home storage of the hubs whose homes persist (EFS; local target: "
    "a folder).",
)
def efs(context: AssetExecutionContext, platform: PlatformResource) -> MaterializeResult:
    try:
        return _provisioned(platform.platform.target.ensure_storage(context.log.info))
    except RuntimeError as e:
        raise Failure(description=str(e)) from None
