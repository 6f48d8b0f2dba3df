"""Drift: a release changed outside the pipeline fails its check within one tick, and the
next staging tick redeploys it."""

import json

import pytest
import requests
from dagster import AssetKey, build_sensor_context

from sensors.drift import release_drift_sensor
from sensors.staging import staging_branch_sensor
from tess_platform.backends.local.supervisor import Supervisor
from tess_platform.definitions import defs


def tick(site, sensor, cursor=None):
    context = build_sensor_context(instance=site.instance, cursor=cursor, definitions=defs)
    data = sensor.evaluate_tick(context)
    for event in data.asset_events:  # stored as the daemon stores them
        site.instance.report_runless_asset_event(event)
    return data


@pytest.fixture(scope="module")
def deployed(site):
    first = tick(site, staging_branch_sensor)
    (request,) = first.run_requests
    assert site.run("deploy_staging", request.tags).success
    return {"staging": first.cursor, "drift": None}


def redeploy(site, cursors, release_name):
    data = tick(site, staging_branch_sensor, cursors["staging"])
    (request,) = data.run_requests
    assert request.run_key.startswith(f"{site.head('staging')}:drift:")
    assert {k.to_user_string() for k in request.asset_selection} >= {
        f"staging/{release_name.removesuffix('-staging').replace('-', '_')}/release"
    }
    result = site.run("deploy_staging", request.tags, asset_selection=request.asset_selection)
    assert result.success
    cursors["staging"] = data.cursor
    again = tick(site, staging_branch_sensor, cursors["staging"])
    assert again.run_requests == [] and again.skip_message.startswith("nothing moved")


def test_a_hub_gone_fails_its_check_and_is_redeployed(site, deployed):
    Supervisor(site.home).stop_hub("tess-public-staging")  # outside the pipeline
    data = tick(site, release_drift_sensor, deployed["drift"])
    (evaluation,) = data.asset_events
    assert (evaluation.asset_key, evaluation.check_name, evaluation.passed) == (
        AssetKey(["staging", "tess_public", "release"]),
        "hub_healthy",
        False,
    )
    assert evaluation.description == "drift: the hub process of revision 1 is not running"
    deployed["drift"] = data.cursor
    assert tick(site, release_drift_sensor, data.cursor).asset_events == []  # told once
    redeploy(site, deployed, "tess-public-staging")
    assert requests.get(site.url("tess-public") + "hub/health", timeout=10).ok
    assert Supervisor(site.home).current("tess-public-staging").revision == 2


def test_an_edited_config_fails_its_check_and_is_redeployed(site, deployed):
    supervisor = Supervisor(site.home)
    current = supervisor.current("tess-private-staging")
    config = site.home / "releases/tess-private-staging/revisions" / str(current.revision)
    data = json.loads((config / "config.json").read_text())
    data["Spawner"]["mem_limit"] = "64G"
    (config / "config.json").write_text(json.dumps(data))
    drift = tick(site, release_drift_sensor, deployed["drift"])
    (evaluation,) = drift.asset_events
    assert evaluation.description == (
        f"drift: revision {current.revision}'s config.json was edited outside the pipeline"
    )
    deployed["drift"] = drift.cursor
    redeploy(site, deployed, "tess-private-staging")
    assert supervisor.current("tess-private-staging").revision == current.revision + 1
    assert supervisor.drift("tess-private-staging") is None


def test_no_drift_is_a_skip(site, deployed):
    data = tick(site, release_drift_sensor, deployed["drift"])
    assert data.asset_events == [] and data.skip_message == "no drift"


def test_a_rollback_the_pipeline_made_is_not_drift(site, deployed):
    site.repo.edit_yaml(
        "hub_config/tess-public/staging.yaml",
        lambda d: d.update(
            hub={"config": {"JupyterHub": {"authenticator_class": "no-such-authenticator"}}}
        ),
    )
    sha = site.repo.commit("an authenticator that does not exist")
    assert not site.run("deploy_staging", {"tess/git_sha": sha}).success  # rolled back
    data = tick(site, release_drift_sensor, deployed["drift"])
    assert data.asset_events == [] and data.skip_message == "no drift"
