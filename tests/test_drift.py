"""Drift: a release changed outside the pipeline has its checks run again within one tick
(a failing hub_healthy, in a real verify_releases run), and the next staging tick redeploys it."""

import json

import pytest
import requests
from dagster import AssetKey, build_sensor_context

from tess_dagster.definitions import defs
from tess_platform.backends.local.supervisor import Supervisor

release_drift_sensor = defs.get_sensor_def("release_drift_sensor")
staging_branch_sensor = defs.get_sensor_def("staging_branch_sensor")


def tick(site, sensor, cursor=None):
    context = build_sensor_context(instance=site.instance, cursor=cursor, definitions=defs)
    return sensor.evaluate_tick(context)


def verify(site, expected_release: str) -> dict:
    """One drift tick asks for exactly one verify run of the release's hub_healthy; run it."""
    data = tick(site, release_drift_sensor)
    (request,) = data.run_requests
    assert request.job_name == "verify_releases" and request.asset_selection == []
    assert [(k.asset_key.to_user_string(), k.name) for k in request.asset_check_keys] == [
        (expected_release, "hub_healthy")
    ]
    result = site.execute(request)
    (evaluation,) = result.get_asset_check_evaluations()
    assert result.success == evaluation.passed  # the checks are blocking: a failure fails it
    return evaluation


@pytest.fixture(scope="module")
def deployed(site):
    first = tick(site, staging_branch_sensor)
    (request,) = first.run_requests
    assert site.run("deploy_staging", request.tags).success
    return {"staging": first.cursor}


def redeploy(site, cursors, release_name):
    data = tick(site, staging_branch_sensor, cursors["staging"])
    (request,) = data.run_requests
    assert request.run_key.startswith(f"{site.head('staging')}:drift:")
    assert {k.to_user_string() for k in request.asset_selection} >= {
        f"staging/{release_name.replace('-', '_')}_release"
    }
    result = site.run("deploy_staging", request.tags, asset_selection=request.asset_selection)
    assert result.success
    cursors["staging"] = data.cursor
    again = tick(site, staging_branch_sensor, cursors["staging"])
    assert again.run_requests == [] and again.skip_message.startswith("nothing moved")


def test_a_hub_gone_fails_its_check_and_is_redeployed(site, deployed):
    Supervisor(site.home).stop_hub("tess-public-staging")  # outside the pipeline
    evaluation = verify(site, "staging/tess_public_staging_release")
    assert (evaluation.asset_key, evaluation.check_name, evaluation.passed) == (
        AssetKey(["staging", "tess_public_staging_release"]),
        "hub_healthy",
        False,
    )
    assert evaluation.description == "drift: the hub process of revision 1 is not running"
    told = tick(site, release_drift_sensor)  # told once: the record holds it now
    assert told.run_requests == [] and told.skip_message.startswith("every release is verified")
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
    evaluation = verify(site, "staging/tess_private_staging_release")
    assert evaluation.description == (
        f"drift: revision {current.revision}'s config.json was edited outside the pipeline"
    )
    redeploy(site, deployed, "tess-private-staging")
    assert supervisor.current("tess-private-staging").revision == current.revision + 1
    assert supervisor.drift("tess-private-staging") is None


def test_no_drift_is_a_skip(site, deployed):
    data = tick(site, release_drift_sensor)
    assert data.run_requests == []
    assert data.skip_message == "every release is verified as it serves: no drift"


def test_a_rollback_the_pipeline_made_is_not_drift(site, deployed):
    site.repo.edit_yaml(
        "hub_config/tess-public/staging.yaml",
        lambda d: d.update(
            hub={"config": {"JupyterHub": {"authenticator_class": "no-such-authenticator"}}}
        ),
    )
    sha = site.repo.commit("an authenticator that does not exist")
    failed = site.run("deploy_staging", {"tess/git_sha": sha})
    assert not failed.success  # rolled back: no drift, but its planned checks never ran
    data = tick(site, release_drift_sensor)
    (request,) = data.run_requests
    assert request.run_key == f"verify:tess-public-staging:unexecuted:{failed.run_id}"
    result = site.execute(request)  # the UI now shows the checks of what serves: passed
    assert result.success and all(e.passed for e in result.get_asset_check_evaluations())
    again = tick(site, release_drift_sensor)
    assert again.run_requests == [] and again.skip_message.endswith("no drift")
