"""infra/eks_cluster and infra/efs: the cluster the hubs run on and the storage of homes, one
step (EFS is an output of the cluster's terraform: a step of its own cost the hubs whose homes
persist a process start before theirs could begin). Either runs alone."""

from dagster import (
    AssetExecutionContext,
    AssetSpec,
    DataVersion,
    MaterializeResult,
    MetadataValue,
    multi_asset,
)

from tess_platform.tags import APPROVE_DESTROY_TAG

from .keys import EFS, EKS_CLUSTER
from .resources import PlatformResource

NOTHING_DEPLOYED = (
    "No hub was deployed. Fix the cause named above and deploy again; this step's log says "
    "what was done before it failed."
)


def _provisioned(key, result) -> MaterializeResult:
    markdown = {k: MetadataValue.md(v) for k, v in result.markdown.items()}
    return MaterializeResult(
        asset_key=key,
        metadata={**result.summary, **markdown},
        data_version=DataVersion(result.version),
    )


@multi_asset(
    name="infra",
    specs=[
        AssetSpec(
            EKS_CLUSTER,
            group_name="infra",
            code_version="1",
            description="The Kubernetes cluster of the hubs, from infra/ (terraform plan, saved, "
            "applied); local target: the hub supervisor.",
        ),
        AssetSpec(
            EFS,
            group_name="infra",
            code_version="1",
            deps=[EKS_CLUSTER],
            description="Persistent home storage of the hubs whose homes persist (EFS; local "
            "target: a folder).",
        ),
    ],
    can_subset=True,
)
def infra(context: AssetExecutionContext, platform: PlatformResource):
    target = platform.platform.target
    if EKS_CLUSTER in context.selected_asset_keys:
        snapshot = platform.snapshot(context)
        approval = context.instance.get_run_by_id(context.run.run_id).tags.get(APPROVE_DESTROY_TAG)
        try:
            result = target.ensure_cluster(snapshot.root, approval, context.log.info)
        except RuntimeError as e:
            raise platform.failure(e, NOTHING_DEPLOYED) from None
        yield _provisioned(EKS_CLUSTER, result)
    if EFS in context.selected_asset_keys:
        try:
            yield _provisioned(EFS, target.ensure_storage(context.log.info))
        except RuntimeError as e:
            raise platform.failure(e, NOTHING_DEPLOYED) from None
