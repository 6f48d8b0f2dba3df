"""release_drift_sensor: a release changed outside the pipeline fails its hub_healthy check."""

import json

from dagster import (
    AssetCheckEvaluation,
    DefaultSensorStatus,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,  # not exported by dagster, but its field
)

from assets.history import latest_materialization
from assets.keys import release_key
from tess_platform.platform import Platform
from tess_platform.releases import all_releases


@sensor(
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
    description="Compares every release with what the pipeline last deployed; drift (a hub "
    "gone, its config edited, a revision the pipeline did not make) is reported "
    "as a failing hub_healthy check, which the staging sensor redeploys.",
)
def release_drift_sensor(context: SensorEvaluationContext) -> SensorResult | SkipReason:
    target = Platform().target
    reported = json.loads(context.cursor) if context.cursor else {}
    evaluations, found = [], {}
    for release in all_releases():
        event = latest_materialization(context.instance, release_key(release))
        if event is None:
            continue
        try:
            drift = target.drift(
                release, event.asset_materialization.metadata["release_hash"].value
            )
        except RuntimeError as e:  # the target did not answer for this one: tell, go on
            context.log.warning(f"{release.name}: could not look for drift: {e}")
            continue
        if drift is None:
            continue
        found[release.name] = marker = f"{event.storage_id}:{drift}"
        if reported.get(release.name) == marker:
            continue  # told already; the check stays failed until a deploy
        context.log.info(f"{release.name}: drift: {drift}")
        evaluations.append(
            AssetCheckEvaluation(
                asset_key=release_key(release),
                check_name="hub_healthy",
                passed=False,
                description=f"drift: {drift}",
                metadata={"drift": drift},
                target_materialization_data=AssetCheckEvaluationTargetMaterializationData(
                    storage_id=event.storage_id, run_id=event.run_id, timestamp=event.timestamp
                ),
            )
        )
    if not evaluations:
        return SensorResult(
            skip_reason="no drift" if not found else "drift already reported",
            cursor=json.dumps(found),
        )
    return SensorResult(asset_events=evaluations, cursor=json.dumps(found))
