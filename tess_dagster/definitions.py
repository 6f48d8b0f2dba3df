"""The Dagster code location: assets/ and sensors/ assembled into `defs`, in one place."""

from dagster import Definitions, in_process_executor

from tess_dagster.assets.image import user_image
from tess_dagster.assets.infra import efs, eks_cluster
from tess_dagster.assets.promotion import promotion
from tess_dagster.assets.releases import all_release_assets, all_release_checks
from tess_dagster.assets.resources import PlatformResource
from tess_dagster.sensors.drift import release_drift_sensor, verify_after_failed_run
from tess_dagster.sensors.jobs import deploy_staging, promote_prod, rollback, verify_releases
from tess_dagster.sensors.prod import prod_branch_sensor
from tess_dagster.sensors.staging import staging_branch_sensor

defs = Definitions(
    assets=[eks_cluster, efs, user_image, promotion, *all_release_assets()],
    asset_checks=all_release_checks(),
    jobs=[deploy_staging, promote_prod, rollback, verify_releases],
    sensors=[
        staging_branch_sensor,
        prod_branch_sensor,
        release_drift_sensor,
        verify_after_failed_run,
    ],
    resources={"platform": PlatformResource()},
    # hubs of one environment deploy one after another; steps share the run's snapshot
    executor=in_process_executor,
)
