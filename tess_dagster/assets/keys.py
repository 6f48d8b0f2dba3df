"""The asset keys: the public names operators, docs and tools rely on."""

from dagster import AssetCheckKey, AssetKey

from tess_platform.checks import CHECKS
from tess_platform.hubs import Hubs
from tess_platform.releases import Release

EKS_CLUSTER = AssetKey(["infra", "eks_cluster"])
EFS = AssetKey(["infra", "efs"])
USER_IMAGE = AssetKey(["image", "user_image"])
PROMOTION = AssetKey(["prod", "promotion"])


def values_key(release: Release) -> AssetKey:
    return AssetKey(release.asset_path("values"))


def release_key(release: Release) -> AssetKey:
    return AssetKey(release.asset_path("release"))


def check_keys(release: Release) -> list[AssetCheckKey]:
    return [AssetCheckKey(release_key(release), name) for name in CHECKS]


def infra_keys(hubs: Hubs, release: Release) -> list[AssetKey]:
    """The infrastructure a release runs on: the cluster, and EFS where its homes persist."""
    return [EKS_CLUSTER, *([EFS] if hubs.homes_persist(release) else [])]


def upstream_keys(hubs: Hubs, release: Release) -> list[AssetKey]:
    """What a deploy of `release` materializes besides it: its values, the image, the infra."""
    return [USER_IMAGE, values_key(release), *infra_keys(hubs, release)]
