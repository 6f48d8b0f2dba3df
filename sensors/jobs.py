"""Jobs: deploy_staging deploys the staging hubs with what they need upstream."""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job

deploy_staging = define_asset_job(
    "deploy_staging",
    selection=AssetSelection.groups("infra", "image", "staging"),
    tags={"tess/env": "staging"},
    description="Deploy the staging hubs at one git SHA (tag tess/git_sha; default: the head "
    "of staging): infra, the user image, values, releases and their checks.",
)
