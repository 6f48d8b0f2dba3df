"""What the Dagster instance says was deployed and checked: the sensors' view of the world."""

from dagster import AssetCheckKey

from assets.keys import release_key
from tess_platform.releases import Release


def _metadata(instance, release: Release) -> dict | None:
    event = instance.get_latest_materialization_event(release_key(release))
    if event is None:
        return None
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def deployed_hash(instance, release: Release) -> str | None:
    """The release_hash of the release's last successful deploy."""
    return (_metadata(instance, release) or {}).get("release_hash")


def deployed_sha(instance, release: Release) -> str | None:
    return (_metadata(instance, release) or {}).get("git_sha")


def unhandled_drift(instance, releases: list[Release], handled: set[int]) -> dict[Release, int]:
    """Releases whose latest hub_healthy evaluation found drift after their latest deploy, and
    that no redeploy answered yet: release -> the evaluation's id."""
    keys = {AssetCheckKey(release_key(r), "hub_healthy"): r for r in releases}
    found = {}
    records = instance.event_log_storage.get_latest_asset_check_execution_by_key(list(keys))
    for key, record in records.items():
        evaluation = record.event.dagster_event.event_specific_data if record.event else None
        if evaluation is None or evaluation.passed or "drift" not in evaluation.metadata:
            continue
        latest = instance.get_latest_materialization_event(key.asset_key)
        if record.id not in handled and (
            latest is None or record.event.storage_id > latest.storage_id
        ):
            found[keys[key]] = record.id
    return found
