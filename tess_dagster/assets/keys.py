"""The asset keys: the public names operators, docs and tools rely on."""

from dagster import AssetCheckKey, AssetKey

from tess_platform.health import CHECKS
from tess_platform.releases import Release

EKS_CLUSTER = AssetKey(["infra", "eks_cluster"])
EFS = AssetKey(["infra", "efs"])
USER_IMAGE = AssetKey(["image", "user_image"])
PROMOTION = AssetKey(["prod", "promotion"])


def values_key(release: Release) -> AssetKey:
    return AssetKey([release.env, release.key, "values"])


def release_key(release: Release) -> AssetKey:
    return AssetKey([release.env, release.key, "release"])


def check_keys(release: Release) -> list[AssetCheckKey]:
    return [AssetCheckKey(release_key(release), name) for name in CHECKS]


def upstream_keys(release: Release) -> list[AssetKey]:
    """What a deploy of `release` materializes besides it: its values, the image, the infra."""
    keys = [EKS_CLUSTER, USER_IMAGE, values_key(release)]
    if release.deployment == "tess-private":
        keys.append(EFS)
    return keys
