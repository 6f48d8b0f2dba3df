"""infra/eks_cluster and infra/efs: the cluster the hubs run on and the storage of homes."""

from dagster import AssetExecutionContext, DataVersion, MaterializeResult, asset

from .keys import EFS, EKS_CLUSTER
from .resources import PlatformResource


@asset(
    key=EKS_CLUSTER,
    group_name="infra",
    code_version="1",
    description="The Kubernetes cluster of the hubs (local target: the hub supervisor).",
)
def eks_cluster(context: AssetExecutionContext, platform: PlatformResource) -> MaterializeResult:
    result = platform.platform.target.ensure_cluster(context.log.info)
    return MaterializeResult(metadata=result.summary, data_version=DataVersion(result.version))


@asset(
    key=EFS,
    group_name="infra",
    code_version="1",
    deps=[EKS_CLUSTER],
    description="Persistent home folders of tess-private (local target: a folder).",
)
def efs(context: AssetExecutionContext, platform: PlatformResource) -> MaterializeResult:
    result = platform.platform.target.ensure_storage(context.log.info)
    return MaterializeResult(metadata=result.summary, data_version=DataVersion(result.version))
