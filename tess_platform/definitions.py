"""The Dagster code location: assets/ and sensors/ assembled into `defs`."""

from dagster import Definitions, in_process_executor

from assets.image import user_image
from assets.infra import efs, eks_cluster
from assets.releases import all_release_assets, all_release_checks
from assets.resources import PlatformResource
from sensors.jobs import deploy_staging

defs = Definitions(
    assets=[eks_cluster, efs, user_image, *all_release_assets()],
    asset_checks=all_release_checks(),
    jobs=[deploy_staging],
    resources={"platform": PlatformResource()},
    # hubs of one environment deploy one after another; steps share the run's snapshot
    executor=in_process_executor,
)
