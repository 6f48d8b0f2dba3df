"""staging_branch_sensor: desired against deployed, ticks evaluated on a real instance."""

import json

import pytest
from conftest import failures
from dagster import AssetKey, build_sensor_context

from tess_dagster.definitions import defs
from tess_platform.git import Repo

staging_branch_sensor = defs.get_sensor_def("staging_branch_sensor")

INFRA = {"infra/eks_cluster", "image/user_image"}
PUBLIC = INFRA | {"staging/tess_public_staging_values", "staging/tess_public_staging_release"}
PRIVATE = INFRA | {
    "infra/efs",
    "staging/tess_private_staging_values",
    "staging/tess_private_staging_release",
}


def tick(site, cursor=None):
    context = build_sensor_context(instance=site.instance, cursor=cursor, definitions=defs)
    return staging_branch_sensor.evaluate_tick(context)


def selection(data) -> set[str]:
    (request,) = data.run_requests
    return {key.to_user_string() for key in request.asset_selection}


def execute(site, data):
    (request,) = data.run_requests
    return site.run("deploy_staging", request.tags, asset_selection=request.asset_selection)


@pytest.fixture(scope="module")
def baseline(site):
    """Both staging hubs deployed at the first commit: what every case starts from."""
    first = tick(site)
    assert selection(first) == PUBLIC | PRIVATE
    (request,) = first.run_requests
    assert request.run_key == site.head("staging")
    assert (
        request.tags.items()
        >= {"tess/git_sha": site.head("staging"), "tess/env": "staging"}.items()
    )
    checks = {(k.asset_key.to_user_string(), k.name) for k in request.asset_check_keys}
    assert checks == {
        (f"staging/{d}_staging_release", c)
        for d in ("tess_public", "tess_private")
        for c in ("hub_healthy", "server_spawns", "kernel_runs")
    }
    assert execute(site, first).success
    return site.head("staging"), first.cursor


@pytest.fixture
def from_baseline(site, baseline):
    """Each case is a commit on top of the baseline; staging is put back after."""
    yield baseline
    site.repo.git("checkout", "-q", "main")
    site.repo.git("reset", "-q", "--hard", baseline[0])
    site.repo.git("branch", "-f", "staging", baseline[0])


def edit(site, relpath, change):
    if relpath.endswith(".yaml"):
        site.repo.edit_yaml(relpath, change)
    else:
        site.repo.write(relpath, change)
    return site.repo.commit(f"change {relpath}")


@pytest.mark.parametrize(
    "relpath, change, expected",
    [
        ("hub_config/tess-public/common.yaml", lambda d: d["cull"].update(timeout=900), PUBLIC),
        (
            "hub_config/tess-private/staging.yaml",
            lambda d: d.update(hub={"concurrentSpawnLimit": 10}),
            PRIVATE,
        ),
        (
            "hub_config/values.yaml",
            lambda d: d["singleuser"].update(startTimeout=240),
            PUBLIC | PRIVATE,
        ),
        ("image/requirements.txt", "jupyterhub==5.5.4\n", PUBLIC | PRIVATE),
        ("infra/cluster.auto.tfvars", "core_max_size = 4\n", PUBLIC | PRIVATE),
    ],
)
def test_a_merge_deploys_exactly_what_differs(site, from_baseline, relpath, change, expected):
    sha = edit(site, relpath, change)
    data = tick(site, cursor=from_baseline[1])
    assert selection(data) == expected
    assert data.run_requests[0].run_key == sha


def test_a_docs_only_merge_deploys_nothing(site, from_baseline):
    sha = edit(site, "README.md", "# notes\n")
    data = tick(site, cursor=from_baseline[1])
    assert data.run_requests == []
    assert data.skip_message == (f"staging at {sha[:12]}: every release already runs what it wants")
    assert json.loads(data.cursor)["sha"] == sha


def test_when_nothing_moved_a_tick_only_asks_ls_remote(site, from_baseline, monkeypatch):
    calls = []
    monkeypatch.setattr(Repo, "snapshot", lambda *a: calls.append(a))  # must not be reached
    monkeypatch.setattr(Repo, "fetch", lambda *a: calls.append(a))
    data = tick(site, cursor=from_baseline[1])
    assert (
        data.skip_message == f"nothing moved: staging is at {from_baseline[0][:12]}, "
        "already evaluated"
    )
    assert calls == []


def test_a_request_that_never_ran_is_caught_up_by_the_next_tick(site, from_baseline):
    edit(site, "hub_config/tess-public/common.yaml", lambda d: d["cull"].update(every=30))
    first = tick(site, cursor=from_baseline[1])
    assert selection(first) == PUBLIC  # requested, but never launched
    docs = edit(site, "README.md", "# docs only\n")
    data = tick(site, cursor=first.cursor)
    assert selection(data) == PUBLIC and data.run_requests[0].run_key == docs


def test_a_failed_run_is_caught_up_and_the_other_hub_still_deploys(site, from_baseline):
    edit(
        site,
        "hub_config/tess-public/staging.yaml",
        lambda d: d.update(
            hub={"config": {"JupyterHub": {"authenticator_class": "no-such-authenticator"}}}
        ),
    )
    edit(
        site,
        "hub_config/tess-private/staging.yaml",
        lambda d: d.update(hub={"concurrentSpawnLimit": 12}),
    )
    data = tick(site, cursor=from_baseline[1])
    assert selection(data) == PUBLIC | PRIVATE
    result = execute(site, data)
    assert not result.success
    assert set(failures(result)) == {"tess_public_staging"}
    private = AssetKey(["staging", "tess_private_staging_release"])
    assert site.meta(private, "git_sha") == site.head("staging")  # deployed all the same
    docs = edit(site, "README.md", "# the failed hub is still wanted\n")
    caught_up = tick(site, cursor=data.cursor)
    assert selection(caught_up) == PUBLIC and caught_up.run_requests[0].run_key == docs
    site.repo.write(
        "hub_config/tess-public/staging.yaml",
        {"prePuller": {"continuous": {"enabled": False}}, "cull": {"every": 45}},
    )
    site.repo.commit("a working change instead")
    fixed = tick(site, cursor=caught_up.cursor)
    assert selection(fixed) == PUBLIC
    assert execute(site, fixed).success
