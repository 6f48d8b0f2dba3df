"""A hub is a folder: every hub_config/<name>/ with a common.yaml is a deployment, in the
asset graph, the sensors, the CLI and the local target, with no code change."""

import pytest
import requests
from conftest import add_hub, cli, free_port
from dagster import AssetKey, build_sensor_context

from tess_dagster.definitions import assemble
from tess_platform.hierarchy import WorkTree
from tess_platform.hubs import Hubs, hubs_of
from tess_platform.releases import Release
from tess_platform.settings import Settings
from tess_platform.staging import hub_news


def parents(defs, key: str) -> set[str]:
    node = defs.resolve_asset_graph().get(AssetKey(key.split("/")))
    return {p.to_user_string() for p in node.parent_keys}


def test_a_new_folder_is_a_hub_and_its_values_decide_what_it_needs(repo, tess_env):
    add_hub(repo, "workshop", {"staging": free_port(), "prod": free_port()})
    add_hub(repo, "collab", {"staging": free_port(), "prod": free_port()}, homes="dynamic")
    repo.write("hub_config/notes/README.md", "not a hub: no common.yaml\n")
    hubs = hubs_of(WorkTree(repo.path))
    assert hubs.names == ("collab", "tess-private", "tess-public", "workshop")
    assert hubs.problems == ()

    defs = assemble(hubs, Settings.from_env())
    # persistent homes, read from the values, bring the EFS dependency; no name decides it
    assert parents(defs, "staging/workshop_staging_release") == {
        "staging/workshop_staging_values",
        "infra/eks_cluster",
    }
    assert "infra/efs" in parents(defs, "staging/collab_staging_release")
    assert "infra/efs" in parents(defs, "staging/tess_private_staging_release")
    assert parents(defs, "prod/promotion") == {
        f"staging/{h}_staging_release"
        for h in ("collab", "tess_private", "tess_public", "workshop")
    }
    checks = {
        (k.asset_key.to_user_string(), k.name) for k in defs.resolve_asset_graph().asset_check_keys
    }
    assert ("prod/workshop_prod_release", "server_spawns") in checks
    assert len(checks) == 4 * 2 * 3  # hubs, environments, checks

    out = cli("validate", cwd=repo.path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "ok   workshop-staging" in out.stdout and "ok   collab-prod" in out.stdout
    values = cli("values", "prod", "workshop", cwd=repo.path)
    assert values.returncode == 0 and "workshop.tess.example.org" in values.stdout


def test_a_folder_that_cannot_name_a_release_is_an_error_naming_it(repo, tess_env):
    add_hub(repo, "Workshop_2", {"staging": free_port(), "prod": free_port()})
    add_hub(repo, "w" * 46, {"staging": free_port(), "prod": free_port()})
    hubs = hubs_of(WorkTree(repo.path))
    assert hubs.names == ("tess-private", "tess-public")  # the others still deploy
    out = cli("validate", cwd=repo.path)
    assert out.returncode == 1
    assert (
        "FAIL hub_config/Workshop_2/: 'Workshop_2' cannot name a release or namespace: "
        "lowercase letters, digits and '-', starting and ending with a letter or digit; "
        "rename the folder"
    ) in out.stdout
    assert f"FAIL hub_config/{'w' * 46}/: '{'w' * 46}' is longer than 45 characters" in out.stdout
    assert "ok   tess-public-prod" in out.stdout


def test_the_staging_sensor_names_hubs_the_loaded_graph_lacks_or_the_branch_lost():
    loaded = Hubs(("broken", "tess-private", "tess-public"), frozenset())
    problems = ("hub_config/X/: bad", "hub_config/broken/common.yaml: missing")
    branch = Hubs(("tess-public", "workshop"), frozenset(), problems)
    assert hub_news(loaded, branch) == [  # a broken hub is not gone: its run will say why
        *problems,
        "hub_config/workshop/ is a new hub on staging: reload the code location (Deployment > "
        "Reload, or `tess-platform local up` again) to give it assets and deploy it",
        "hub_config/tess-private/ is gone from staging: its releases keep running; a merge "
        "never uninstalls a hub",
    ]


def test_a_new_hub_deploys_with_the_others_after_a_reload(site):
    port = free_port()
    add_hub(site.repo, "workshop", {"staging": port, "prod": free_port()})
    site.repo.commit("a workshop hub for the TESS tutorial")
    defs = site.defs()  # the code location reloaded: the hub has assets
    tick = defs.get_sensor_def("staging_branch_sensor").evaluate_tick(
        build_sensor_context(instance=site.instance, definitions=defs)
    )
    (request,) = tick.run_requests
    assert {k.to_user_string() for k in request.asset_selection} >= {
        "staging/workshop_staging_release",
        "staging/tess_public_staging_release",
    }
    result = site.execute(request, "deploy_staging")
    assert result.success
    workshop = Release("workshop", "staging")
    mat = site.latest(AssetKey(workshop.asset_path("release")))
    assert mat.metadata["url"].value == f"http://127.0.0.1:{port}/"
    assert requests.get(f"http://127.0.0.1:{port}/hub/health", timeout=10).ok


def uninstall(site, release: str, **tags):
    config = {"ops": {"uninstall_release": {"config": {"release": release}}}}
    return site.run("uninstall", tags, run_config=config)


def test_a_removed_hub_keeps_running_is_reported_and_uninstalled_only_when_approved(site):
    from conftest import failures

    from tess_platform.backends.local.supervisor import Supervisor

    workshop = Release("workshop", "staging")
    url = site.latest(AssetKey(workshop.asset_path("release"))).metadata["url"].value
    site.repo.git("rm", "-rq", "hub_config/workshop")
    site.repo.commit("the workshop is over")
    defs = site.defs()  # reloaded: the hub has no assets any more
    assert "staging/workshop_staging_release" not in {
        k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()
    }
    assert requests.get(url + "hub/health", timeout=10).ok  # a merge uninstalls nothing
    tick = defs.get_sensor_def("release_drift_sensor").evaluate_tick(
        build_sensor_context(instance=site.instance, definitions=defs)
    )
    assert (
        "workshop-staging still runs, but hub_config/workshop/ is gone: uninstall it with the "
        "uninstall job (tag tess/approved_by), or bring the folder back"
    ) in tick.skip_message

    refused = uninstall(site, "workshop-staging")
    assert (
        "uninstall_release needs the run tag tess/approved_by=NAME of who approves it. Nothing "
        "was changed." in failures(refused)["uninstall_release"]
    )
    kept = uninstall(site, "tess-public-staging", **{"tess/approved_by": "Ada"})
    assert "hub_config/tess-public/ is still on staging" in failures(kept)["uninstall_release"]
    assert requests.get(site.url("tess-public") + "hub/health", timeout=10).ok

    done = uninstall(site, "workshop-staging", **{"tess/approved_by": "Ada"})
    assert done.success, failures(done)
    assert "workshop-staging" not in Supervisor(site.home).releases()
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "hub/health", timeout=5)
    logs = [e.message for e in site.instance.all_logs(done.run_id)]
    assert any("workshop-staging: uninstalled" in m and "(approved by Ada)" in m for m in logs)
    again = defs.get_sensor_def("release_drift_sensor").evaluate_tick(
        build_sensor_context(instance=site.instance, definitions=defs)
    )
    assert "workshop" not in (again.skip_message or "")
