"""The verification record after a failure, on a real repository, instance and hubs: what an
operator sees after a bad commit, its revert, and a promotion with no SHA given."""

import pytest
from conftest import failures
from dagster import (
    AssetCheckKey,
    AssetKey,
    DagsterEventType,
    build_run_status_sensor_context,
    build_sensor_context,
)

from tess_dagster.assets.history import failed_since_deploy, record
from tess_dagster.definitions import defs
from tess_platform.backends.local.supervisor import Supervisor
from tess_platform.checks import CHECKS
from tess_platform.releases import Release

release_drift_sensor = defs.get_sensor_def("release_drift_sensor")
verify_after_failed_run = defs.get_sensor_def("verify_after_failed_run")
staging_branch_sensor = defs.get_sensor_def("staging_branch_sensor")

PUBLIC, PRIVATE = Release("tess-public", "staging"), Release("tess-private", "staging")


def tick(site, sensor, cursor=None):
    context = build_sensor_context(instance=site.instance, cursor=cursor, definitions=defs)
    return sensor.evaluate_tick(context)


def latest_rows(site, release: Release) -> dict[str, str]:
    """What the UI shows for each check of a release: the status of its latest execution."""
    keys = [
        AssetCheckKey(AssetKey(release.asset_path("release")), name)
        for name in ("hub_healthy", "server_spawns", "kernel_runs")
    ]
    rows = site.instance.event_log_storage.get_latest_asset_check_execution_by_key(keys)
    return {key.name: rows[key].status.value for key in keys}


@pytest.fixture(scope="module")
def story(site):
    """Staging deployed; then a bad YAML commit, deployed by the whole job (it fails)."""
    assert site.run("deploy_staging").success
    good = site.head("staging")
    site.repo.write("hub_config/tess-public/common.yaml", "cull: {timeout: [600\n")
    bad = site.repo.commit("tess-public: a YAML typo")
    failed = site.run("deploy_staging", {"tess/git_sha": bad})
    return {"good": good, "bad": bad, "failed": failed}


def test_a_failed_run_names_the_file_and_deploys_nothing(site, story):
    assert not story["failed"].success
    message = failures(story["failed"])["tess_public_staging"]
    assert "hub_config/tess-public/common.yaml" in message
    assert record(site.instance, PUBLIC).deployed.git_sha == story["good"]


def test_the_hub_the_run_never_reached_keeps_its_evidence(site, story):
    # tess-public's release step never ran: its checks were planned and never executed
    assert latest_rows(site, PUBLIC) == dict.fromkeys(CHECKS, "PLANNED")
    public = record(site.instance, PUBLIC)
    assert public.verified and public.deployed.git_sha == story["good"]
    # tess-private did not change at the bad SHA: its step ran, found it serving, checked it
    assert latest_rows(site, PRIVATE) == dict.fromkeys(CHECKS, "SUCCEEDED")
    assert record(site.instance, PRIVATE).verified


def on_failure(site, result):
    """verify_after_failed_run, told of a failed run as the daemon tells it."""
    run = site.instance.get_run_by_id(result.run_id)
    (failure,) = [e for e in result.all_events if e.event_type == DagsterEventType.RUN_FAILURE]
    context = build_run_status_sensor_context(
        sensor_name=verify_after_failed_run.name,
        dagster_event=failure,
        dagster_instance=site.instance,
        dagster_run=run,
        repository_def=defs.get_repository_def(),
    ).for_run_failure()
    return verify_after_failed_run(context)


def test_checks_a_run_never_executed_are_run_again_so_the_ui_shows_the_truth(site, story):
    # at once, when the run fails; the drift sensor would ask the same on its next tick
    (request,) = on_failure(site, story["failed"]).run_requests
    assert request.run_key == f"verify:tess-public-staging:unexecuted:{story['failed'].run_id}"
    assert request.tags["tess/trigger"] == "verify_after_failed_run"
    assert tick(site, release_drift_sensor).run_requests[0].run_key == request.run_key
    assert site.execute(request).success
    assert latest_rows(site, PUBLIC) == dict.fromkeys(CHECKS, "SUCCEEDED")
    assert tick(site, release_drift_sensor).run_requests == []
    assert "every release is verified" in on_failure(site, story["failed"]).skip_message


def test_after_the_revert_the_failed_release_is_recorded_again_without_a_restart(site, story):
    supervisor = Supervisor(site.home)
    serving = supervisor.current("tess-public-staging").revision
    assert failed_since_deploy(site.instance, PUBLIC)  # the UI shows it "Failed"
    site.repo.git("revert", "--no-edit", story["bad"])
    site.repo.git("branch", "-f", "staging", "HEAD")
    revert = site.head("staging")
    data = tick(site, staging_branch_sensor)
    (request,) = data.run_requests  # tess-public only: its last run failed
    assert {k.to_user_string() for k in request.asset_selection} >= {
        "staging/tess_public_staging_values",
        "staging/tess_public_staging_release",
    }
    assert "staging/tess_private_staging_release" not in {
        k.to_user_string() for k in request.asset_selection
    }
    result = site.execute(request, job="deploy_staging")
    assert result.success, failures(result)
    assert not failed_since_deploy(site.instance, PUBLIC)
    assert record(site.instance, PUBLIC).deployed.git_sha == revert
    assert supervisor.current("tess-public-staging").revision == serving  # not restarted
    again = tick(site, staging_branch_sensor, data.cursor)
    assert again.run_requests == [] and again.skip_message.startswith("nothing moved")


def test_promotion_needs_no_sha_after_the_revert(site, story):
    revert = site.head("staging")
    result = site.run("promote_prod", {"tess/approved_by": "Ada Lovelace"})
    assert result.success, failures(result)
    assert site.head("prod") == revert  # the newest SHA staging verified: the revert
    evidence = site.meta(AssetKey(["prod", "promotion"]), "evidence")
    assert evidence.count("| pass: ") == 2 * len(CHECKS)  # both staging hubs
