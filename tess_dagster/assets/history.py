"""The verification record as the Dagster instance holds it: the one view promote_prod, the
sensors and the drift logic read (tess_platform.verification decides what counts)."""

from dagster import AssetKey, DagsterEventType, DagsterRunStatus, EventLogRecord, RunsFilter

from tess_platform.checks import HUB_HEALTHY
from tess_platform.releases import Release
from tess_platform.verification import (
    HISTORY_DEPTH,
    Deploy,
    Evaluation,
    ReleaseRecord,
    release_record,
)

from .keys import PROMOTION, check_keys, release_key

IN_FLIGHT = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
]


def in_flight(instance, job: str | None = None) -> list:
    """Runs not finished yet (of `job`, or of any job)."""
    return list(instance.get_runs(RunsFilter(job_name=job, statuses=IN_FLIGHT)))


def ever_deployed(instance) -> list[Release]:
    """Every release the instance holds a release materialization of, hub folder or not."""
    found = (Release.from_asset_path(key.path, "release") for key in instance.get_asset_keys())
    return sorted(r for r in found if r is not None)


def latest_materialization(instance, key: AssetKey) -> EventLogRecord | None:
    records = instance.fetch_materializations(key, limit=1).records
    return records[0] if records else None


def _meta(metadata) -> dict:
    return {k: v.value for k, v in metadata.items()}


def deployed(instance, release: Release) -> Deploy | None:
    """The release's last successful deploy (or rollback), from its latest materialization."""
    record = latest_materialization(instance, release_key(release))
    if record is None:
        return None
    meta = _meta(record.asset_materialization.metadata)
    return Deploy(
        git_sha=meta.get("git_sha") or None,
        release_hash=meta.get("release_hash", ""),
        image=meta.get("image") or None,
        revision=meta.get("revision"),
        timestamp=record.timestamp,
        run_id=record.run_id,
    )


def executions(instance, release: Release) -> tuple[list[Evaluation], list[str]]:
    """The release's executed check evaluations, newest first, and the runs whose planned
    checks are the latest row of a check but never executed (a run that did not reach it)."""
    evaluations, unexecuted = [], []
    for key in check_keys(release):
        rows = instance.event_log_storage.get_asset_check_execution_history(
            key, limit=HISTORY_DEPTH
        )
        for i, row in enumerate(rows):
            event = row.event
            if event is None or event.dagster_event_type != DagsterEventType.ASSET_CHECK_EVALUATION:
                if i == 0:
                    unexecuted.append(row.run_id)
                continue
            evaluation = event.dagster_event.event_specific_data
            meta = _meta(evaluation.metadata)
            evaluations.append(
                Evaluation(
                    check=key.name,
                    passed=evaluation.passed,
                    release_hash=meta.get("release_hash") or None,
                    revision=meta.get("revision"),
                    timestamp=event.timestamp,
                    run_id=row.run_id,
                    description=evaluation.description or "",
                    drift=meta.get("drift", ""),
                )
            )
    return evaluations, unexecuted


def failed_since_deploy(instance, release: Release) -> bool:
    """Whether a run planned to deploy the release after its last successful deploy and
    failed (the UI shows the release "Failed" until it is materialized again)."""
    planned = instance.get_latest_planned_materialization_info(release_key(release))
    done = latest_materialization(instance, release_key(release))
    if planned is None or (done is not None and done.storage_id > planned.storage_id):
        return False
    run = instance.get_run_by_id(planned.run_id)
    return run is not None and run.status == DagsterRunStatus.FAILURE


def record(instance, release: Release) -> ReleaseRecord:
    evaluations, _ = executions(instance, release)
    return release_record(release, deployed(instance, release), evaluations)


def promoted(instance) -> tuple[str, str] | None:
    """The SHA of the latest promotion, and the run that made it."""
    found = latest_materialization(instance, PROMOTION)
    if found is None:
        return None
    return found.asset_materialization.metadata["git_sha"].value, found.run_id


def deployed_hash(instance, release: Release) -> str | None:
    found = deployed(instance, release)
    return found.release_hash if found else None


def unhandled_drift(instance, releases: list[Release], handled: set[str]) -> dict[Release, str]:
    """Releases whose latest hub_healthy evidence found drift that no redeploy answered yet:
    release -> a marker of that evaluation."""
    found = {}
    for release in releases:
        latest = record(instance, release).checks.get(HUB_HEALTHY)
        if latest is None or latest.passed or not latest.drift:
            continue
        marker = f"{latest.run_id}:{latest.timestamp:.3f}"
        if marker not in handled:
            found[release] = marker
    return found
