"""The Dagster code location: assets/ and sensors/ assembled into `defs`, in one place.

The hubs are the folders of hub_config/ at the head of the deployed repository's staging
branch when the code location loads: a new hub is a folder, then a reload."""

from dagster import Definitions

from tess_dagster.assets.image import user_image
from tess_dagster.assets.infra import infra
from tess_dagster.assets.promotion import promotion
from tess_dagster.assets.releases import release_assets
from tess_dagster.assets.resources import PlatformResource
from tess_dagster.sensors.drift import release_drift_sensor, verify_after_failed_run
from tess_dagster.sensors.jobs import (
    deploy_staging,
    promote_prod,
    rollback,
    uninstall,
    verify_releases,
)
from tess_dagster.sensors.notify import outcome_sensors
from tess_dagster.sensors.prod import prod_branch_sensor
from tess_dagster.sensors.staging import staging_branch_sensor
from tess_platform.hubs import Hubs
from tess_platform.platform import branch_hubs
from tess_platform.settings import Settings


def assemble(hubs: Hubs, settings: Settings) -> Definitions:
    return Definitions(
        assets=[
            infra,
            user_image,
            promotion(hubs),
            *release_assets(hubs, settings.kubernetes),
        ],
        jobs=[deploy_staging, promote_prod, rollback, uninstall, verify_releases],
        sensors=[
            staging_branch_sensor(hubs),
            prod_branch_sensor(hubs),
            release_drift_sensor(hubs),
            verify_after_failed_run(hubs),
            *outcome_sensors(hubs),
        ],
        resources={"platform": PlatformResource()},
    )


_settings = Settings.from_env()
defs = assemble(branch_hubs(_settings), _settings)
