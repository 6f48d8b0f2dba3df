"""promote_prod and prod_branch_sensor: prod only ever receives what staging verified.

One platform for the module: staging deployed and checked first, then every refusal, a
promotion, a merge into prod, a prod release that fails its checks, and a rollback.
"""

import time
import uuid

import pytest
import requests
from conftest import check_results, failures
from dagster import (
    AssetKey,
    DagsterRun,
    DagsterRunStatus,
    RunRequest,
    build_sensor_context,
)

from tess_dagster.assets.keys import check_keys
from tess_dagster.definitions import defs
from tess_platform.backends.local.supervisor import Supervisor
from tess_platform.releases import Release

prod_branch_sensor = defs.get_sensor_def("prod_branch_sensor")

PUBLIC_STAGING = AssetKey(["staging", "tess_public_staging_release"])
PUBLIC_PROD = AssetKey(["prod", "tess_public_prod_release"])
PRIVATE_PROD = AssetKey(["prod", "tess_private_prod_release"])
PROMOTION = AssetKey(["prod", "promotion"])
APPROVER = {"tess/approved_by": "Ada Lovelace"}


@pytest.fixture(scope="module")
def verified(site):
    """Staging deployed at the first commit, its checks passed."""
    assert site.run("deploy_staging").success
    return site.head("staging")


def promote(site, **tags):
    return site.run("promote_prod", tags)


def refusal(result) -> str:
    assert not result.success
    found = failures(result)
    assert list(found) == ["prod__promotion"], found  # refused before any prod step ran
    return found["prod__promotion"]


def prod_untouched(site):
    assert "prod" not in site.repo.git("branch", "--list", "prod")
    assert not [r for r in Supervisor(site.home).releases() if r.endswith("-prod")]


def test_refuses_without_an_approver(site, verified):
    message = refusal(promote(site, **{"tess/git_sha": verified}))
    assert (
        "- tess/approved_by: must name who approves the promotion; launch promote_prod with "
        "the tag tess/approved_by=NAME" in message
    )
    prod_untouched(site)


def test_refuses_a_sha_staging_does_not_run(site, verified):
    site.repo.edit_yaml(
        "hub_config/tess-public/common.yaml", lambda d: d["cull"].update(timeout=660)
    )
    ahead = site.repo.commit("tess-public: cull later, not deployed to staging yet")
    message = refusal(promote(site, **APPROVER, **{"tess/git_sha": ahead}))
    assert (f"- staging/tess_public_staging_release: staging runs {verified[:12]}") in message
    assert "deploy it to staging first" in message and "tess_private" not in message
    site.repo.git("reset", "-q", "--hard", verified)
    site.repo.git("branch", "-f", "staging", verified)
    prod_untouched(site)


def test_refuses_a_sha_that_is_not_on_staging(site, verified):
    site.repo.git("checkout", "-q", "-b", "feature")
    site.repo.write("README.md", "# unmerged\n")
    unmerged = site.repo.commit("work in progress", branch=None)
    site.repo.git("checkout", "-q", "main")
    message = refusal(promote(site, **APPROVER, **{"tess/git_sha": unmerged}))
    assert f"{unmerged} is not on branch staging" in message
    prod_untouched(site)


def verify(site, release: str):
    """Run a release's checks again, as the UI's 'Execute checks' does."""
    keys = [k for k in check_keys(Release.parse(release))]
    request = RunRequest(job_name="verify_releases", asset_selection=[], asset_check_keys=keys)
    return site.execute(request)


def test_refuses_when_a_staging_check_failed(site, verified):
    supervisor = Supervisor(site.home)
    supervisor.stop_hub("tess-public-staging")  # the hub went away after staging verified it
    assert not all(
        e.passed for e in verify(site, "tess-public-staging").get_asset_check_evaluations()
    )
    message = refusal(promote(site, **APPROVER))  # the default SHA: none is verified now
    assert f"promote_prod refused {verified[:12]}" in message  # judged staging's head
    assert (
        "- staging/tess_public_staging_release: check hub_healthy failed on revision 1: drift: "
        "the hub process of revision 1 is not running: re-execute its checks"
    ) in message
    message = refusal(promote(site, **APPROVER, **{"tess/git_sha": verified}))
    assert "staging/tess_public_staging_release: check hub_healthy failed on revision 1" in message
    assert "tess_private" not in message
    supervisor.start("tess-public-staging")
    assert verify(site, "tess-public-staging").success  # re-executed: counts again
    prod_untouched(site)


def test_refuses_when_staging_fails_its_checks_right_before_prod_moves(site, verified):
    Supervisor(site.home).stop_hub("tess-private-staging")  # after its checks last passed
    message = refusal(promote(site, **APPROVER, **{"tess/git_sha": verified}))
    assert (
        "- staging/tess_private_staging_release: check hub_healthy failed just now: drift: the hub "
        "process of revision 1 is not running"
    ) in message
    evidence = site.instance.get_latest_materialization_event(PROMOTION)
    assert evidence is None  # refused: no promotion recorded
    Supervisor(site.home).start("tess-private-staging")
    prod_untouched(site)


def test_refuses_while_a_staging_deploy_of_the_sha_is_in_flight(site, verified):
    run_id = str(uuid.uuid4())
    site.instance.add_run(
        DagsterRun(
            job_name="deploy_staging",
            run_id=run_id,
            status=DagsterRunStatus.STARTED,
            tags={"tess/git_sha": verified, "tess/env": "staging"},
        )
    )
    message = refusal(promote(site, **APPROVER, **{"tess/git_sha": verified}))
    assert f"still in flight (runs {run_id})" in message
    site.instance.delete_run(run_id)
    prod_untouched(site)


def test_refuses_when_prod_does_not_fast_forward(site, verified):
    site.repo.git("checkout", "-q", "--orphan", "elsewhere")
    site.repo.write("README.md", "# a prod that went its own way\n")
    stray = site.repo.commit("diverged", branch=None)
    site.repo.git("branch", "-f", "prod", stray)
    site.repo.git("checkout", "-q", "-f", "main")
    message = refusal(promote(site, **APPROVER, **{"tess/git_sha": verified}))
    assert f"- prod does not fast-forward to {verified[:12]}" in message
    site.repo.git("branch", "-D", "prod", "elsewhere")
    prod_untouched(site)


def test_promotes_the_newest_verified_sha_with_stagings_artifacts(site, verified):
    site.repo.write("docs/operations.md", "# how we run the hubs\n")
    docs = site.repo.commit("docs only: staging verified it as much as the last deploy")
    result = promote(site, **APPROVER)
    assert result.success, failures(result)
    assert site.head("prod") == docs  # fast-forwarded in TESS_REPO
    run = site.instance.get_run_by_id(result.run_id)
    assert (run.tags["tess/git_sha"], run.tags["tess/env"]) == (docs, "prod")
    assert site.meta(PROMOTION, "approved_by") == "Ada Lovelace"
    assert site.meta(PROMOTION, "prod_branch_before") == "none"
    evidence = site.meta(PROMOTION, "evidence")  # checked again right before prod moved
    for deployment in ("tess_public", "tess_private"):
        for check in ("hub_healthy", "server_spawns", "kernel_runs"):
            assert f"| staging/{deployment}_staging_release | {check} | pass: " in evidence
    for deployment in ("tess_public", "tess_private"):
        staging = AssetKey(["staging", f"{deployment}_staging_release"])
        prod = AssetKey(["prod", f"{deployment}_prod_release"])
        assert site.meta(prod, "image") == site.meta(staging, "image")  # no rebuild
        assert site.meta(prod, "git_sha") == docs
    assert check_results(result) == {
        (f"prod/{d}_prod_release", c): True
        for d in ("tess_public", "tess_private")
        for c in ("hub_healthy", "server_spawns", "kernel_runs")
    }
    assert requests.get(site.url("tess-public", "prod") + "hub/health", timeout=10).ok


def tick(site, cursor=None):
    context = build_sensor_context(instance=site.instance, cursor=cursor, definitions=defs)
    return prod_branch_sensor.evaluate_tick(context)


def test_a_prod_head_prod_already_runs_starts_nothing(site):
    data = tick(site)
    assert data.run_requests == [] and data.skip_message == (
        f"prod already runs {site.head('prod')[:12]}"
    )


def test_a_merge_into_prod_promotes_its_head_approved_by_its_committer(site):
    site.repo.edit_yaml(
        "hub_config/tess-private/common.yaml", lambda d: d["cull"].update(timeout=2400)
    )
    change = site.repo.commit("tess-private: idle 40 min")
    assert site.run("deploy_staging", {"tess/git_sha": change}).success
    site.repo.git("checkout", "-q", "prod")
    site.repo.git(
        "-c",
        "user.name=Grace Hopper",
        "-c",
        "user.email=grace@tess.test",
        "merge",
        "-q",
        "--no-ff",
        "-m",
        "Merge staging into prod",
        "staging",
    )
    merge = site.head("prod")
    site.repo.git("checkout", "-q", "main")
    data = tick(site)
    (request,) = data.run_requests
    assert request.run_key == f"prod:{merge}"
    assert (
        request.tags.items()
        >= {"tess/git_sha": merge, "tess/approved_by": "Grace Hopper <grace@tess.test>"}.items()
    )
    result = site.run("promote_prod", request.tags)
    assert result.success, failures(result)
    assert site.meta(PRIVATE_PROD, "git_sha") == merge
    assert site.meta(PRIVATE_PROD, "changes") == "- `cull.timeout`: 1800 → 2400"
    assert tick(site, data.cursor).skip_message.startswith("nothing moved: prod is at")


def test_a_prod_release_that_fails_its_checks_is_rolled_back(site):
    before = site.meta(PUBLIC_PROD, "revision")
    site.repo.write(
        "hub_config/tess-public/prod.yaml",
        {
            "prePuller": {"continuous": {"enabled": True}},
            "singleuser": {"extraEnv": {"JUPYTERHUB_SINGLEUSER_APP": "no.such.Application"}},
        },
    )
    broken = site.repo.commit("tess-public prod: a single-user app that does not exist")
    site.repo.git("branch", "-f", "prod", broken)  # staging has nothing to verify: prod only
    result = promote(site, **APPROVER, **{"tess/git_sha": broken})
    assert not result.success
    message = failures(result)["tess_public_prod"]
    assert f"checks failed on revision {before + 1}" in message
    assert f"rolled back to revision {before}, serving as revision {before + 2}" in message
    history = Supervisor(site.home).history("tess-public-prod")
    assert (history[-1].revision, history[-1].status, history[-1].description) == (
        before + 2,
        "deployed",
        f"Rollback to {before}",
    )
    assert site.meta(PUBLIC_PROD, "revision") == before  # the failed deploy is not recorded
    assert requests.get(site.url("tess-public", "prod") + "hub/health", timeout=10).ok


def test_the_rollback_job_returns_a_release_to_an_earlier_revision(site):
    history = Supervisor(site.home).history("tess-private-prod")
    result = site.run(
        "rollback",
        run_config={
            "ops": {"rollback_release": {"config": {"release": "tess-private-prod", "revision": 1}}}
        },
    )
    assert result.success
    mat = site.latest(PRIVATE_PROD)
    assert mat.metadata["restored_revision"].value == 1
    assert mat.metadata["revision"].value == history[-1].revision + 1
    assert mat.metadata["git_sha"].value == history[0].record["git_sha"]
    deadline = time.monotonic() + 10
    while not requests.get(site.url("tess-private", "prod") + "hub/health", timeout=5).ok:
        assert time.monotonic() < deadline
    bad = site.run(
        "rollback",
        run_config={
            "ops": {
                "rollback_release": {"config": {"release": "tess-private-prod", "revision": 99}}
            }
        },
    )
    assert "tess-private-prod: no revision 99 in its history" in failures(bad)["rollback_release"]
