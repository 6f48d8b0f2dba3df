"""What the Dagster instance says was deployed and checked: the sensors' and the gate's view."""

from dagster import AssetCheckEvaluation, AssetCheckKey, AssetKey, EventLogRecord

from tess_platform.releases import Release

from .keys import PROMOTION, release_key


def latest_materialization(instance, key: AssetKey) -> EventLogRecord | None:
    records = instance.fetch_materializations(key, limit=1).records
    return records[0] if records else None


def deployed(instance, release: Release) -> dict | None:
    """The metadata of the release's last successful deploy, and its storage id."""
    record = latest_materialization(instance, release_key(release))
    if record is None:
        return None
    meta = {k: v.value for k, v in record.asset_materialization.metadata.items()}
    return {**meta, "storage_id": record.storage_id}


def promoted(instance) -> tuple[str, str] | None:
    """The SHA of the latest promotion, and the run that made it."""
    record = latest_materialization(instance, PROMOTION)
    if record is None:
        return None
    return record.asset_materialization.metadata["git_sha"].value, record.run_id


def deployed_hash(instance, release: Release) -> str | None:
    return (deployed(instance, release) or {}).get("release_hash")


def deployed_sha(instance, release: Release) -> str | None:
    return (deployed(instance, release) or {}).get("git_sha")


def latest_evaluations(
    instance, keys: list[AssetCheckKey]
) -> dict[AssetCheckKey, tuple[int, AssetCheckEvaluation]]:
    """Each check's latest evaluation that ran: key -> (record id, result)."""
    found = {}
    records = instance.event_log_storage.get_latest_asset_check_execution_by_key(keys)
    for key, record in records.items():
        evaluation = record.event.dagster_event.event_specific_data if record.event else None
        if isinstance(evaluation, AssetCheckEvaluation):  # not one planned and never run
            found[key] = (record.id, evaluation)
    return found


def on_latest_deploy(evaluation: AssetCheckEvaluation, deploy: dict | None) -> bool:
    """Whether the evaluation checked the release's latest deploy (not an earlier one)."""
    target = evaluation.target_materialization_data
    return bool(deploy and target and target.storage_id >= deploy["storage_id"])


def unhandled_drift(instance, releases: list[Release], handled: set[int]) -> dict[Release, int]:
    """Releases whose latest hub_healthy evaluation found drift in their latest deploy, and
    that no redeploy answered yet: release -> the evaluation's id."""
    keys = {AssetCheckKey(release_key(r), "hub_healthy"): r for r in releases}
    found = {}
    for key, (record_id, evaluation) in latest_evaluations(instance, list(keys)).items():
        if evaluation.passed or "drift" not in evaluation.metadata or record_id in handled:
            continue
        if on_latest_deploy(evaluation, deployed(instance, keys[key])):
            found[keys[key]] = record_id
    return found
