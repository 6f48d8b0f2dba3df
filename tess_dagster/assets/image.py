"""image/user_image: the repo2docker user image every hub runs, tagged by content."""

from dagster import AssetExecutionContext, DataVersion, MaterializeResult, MetadataValue, asset

from tess_platform.targets import DeployError

from .keys import USER_IMAGE
from .resources import PlatformResource


@asset(
    key=USER_IMAGE,
    group_name="image",
    code_version="repo2docker-2026.4.0",
    description="The user image, built by repo2docker from image/ and tagged by content.",
)
def user_image(context: AssetExecutionContext, platform: PlatformResource) -> MaterializeResult:
    snapshot = platform.snapshot(context)
    try:
        ref, details = platform.platform.target.ensure_image(snapshot, context.log.info)
    except (DeployError, RuntimeError) as e:
        raise platform.failure(
            e, "Fix image/ and merge again; nothing was deployed, the hubs serve as before."
        ) from None
    context.log.info(f"user image {ref.ref}")
    metadata = {
        "image": ref.ref,
        "tag": ref.tag,
        "digest": ref.digest or "not built",
        "dockerfile_sha256": ref.dockerfile_sha256,
        "git_sha": snapshot.sha,
        "built": details.pop("built"),
        "dockerfile": MetadataValue.md(f"```dockerfile\n{details.pop('dockerfile')}\n```"),
        **details,
    }
    return MaterializeResult(metadata=metadata, data_version=DataVersion(ref.digest or ref.tag))
