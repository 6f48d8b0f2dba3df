"""`tess-platform plan`: what a change would deploy. The decision for one release on sides made
by hand, then the command on a real repository: against a base branch, and against what the
local target runs after a real deploy."""

import json
from pathlib import Path

from conftest import PLANTED, cli, deploy

from tess_platform.plan import (
    CHANGES,
    DEPLOY,
    ERROR,
    ERRORS,
    LEFT,
    NEW,
    NOTHING,
    UNCHANGED,
    Plan,
    ReleaseSide,
    plan_release,
)
from tess_platform.platform import Platform
from tess_platform.releases import Release

PUBLIC = Release("tess-public", "staging")


def side(tmp_path: Path, name: str, values: dict, image: str = "img1", **files) -> ReleaseSide:
    root = tmp_path / name
    for relpath, content in files.items():
        (root / relpath.replace("__", "/")).parent.mkdir(parents=True, exist_ok=True)
        (root / relpath.replace("__", "/")).write_text(content)
    return ReleaseSide(
        fingerprint=values,
        secret_paths=frozenset({("hub", "cookieSecret")}),
        image=image,
        infra=files.get("infra__main_tf", ""),
        label=f"side {name}",
        root=root,
    )


def test_a_release_redeploys_for_each_value_image_and_infra_change_and_says_which(tmp_path):
    before = side(
        tmp_path,
        "a",
        {"cull": {"timeout": 600}, "hub": {"cookieSecret": "sha256:aaa"}},
        image__requirements_txt="numpy==2.1.3\n",
        infra__main_tf="a",
    )
    same = plan_release(PUBLIC, before, before)
    assert (same.action, same.reasons) == (UNCHANGED, ())

    after = side(
        tmp_path,
        "b",
        {"cull": {"timeout": 660}, "hub": {"cookieSecret": "sha256:bbb"}},
        image="img2",
        image__requirements_txt="numpy==2.1.3\ncowsay==6.1\n",
        infra__main_tf="b",
    )
    planned = plan_release(PUBLIC, before, after)
    assert planned.action == DEPLOY and planned.against == "side a"
    assert planned.reasons == (
        "`cull.timeout`: 600 → 660",
        "`hub.cookieSecret`: secret changed",
        "image `img1` → `img2` (`image/requirements_txt`)",
        "infra/ changed (`infra/main_tf`)",
    )


def test_a_chart_upgrade_redeploys_every_release():
    before = ReleaseSide(fingerprint={"a": 1}, chart="jupyterhub 4.3.0", label="what runs")
    after = ReleaseSide(fingerprint={"a": 1}, chart="jupyterhub 4.4.0")
    planned = plan_release(PUBLIC, before, after)
    assert (planned.action, planned.reasons) == (
        DEPLOY,
        ("chart jupyterhub 4.3.0 → jupyterhub 4.4.0",),
    )


def test_new_removed_and_broken_releases():
    good = ReleaseSide(fingerprint={"a": 1}, label="base")
    assert plan_release(PUBLIC, None, good).action == NEW
    assert plan_release(PUBLIC, good, None).action == LEFT
    broken = ReleaseSide(errors=("hub_config/tess-public/common.yaml: cull.timeout: bad",))
    planned = plan_release(PUBLIC, good, broken)
    assert (planned.action, planned.reasons) == (ERROR, broken.errors)

    plan = Plan("head", "base", [plan_release(PUBLIC, good, good)])
    assert plan.exit_code == NOTHING and plan.headline.startswith("Nothing to deploy")
    plan.releases.append(plan_release(PUBLIC, None, good))
    assert plan.exit_code == CHANGES and plan.headline == "Plan: 0 to redeploy, 1 new."
    plan.releases.append(planned)
    assert plan.exit_code == ERRORS
    assert "| `tess-public-staging` | **error** | hub_config/tess-public/common.yaml" in (
        plan.markdown()
    )


def edit_cull(repo, timeout: int) -> None:
    repo.edit_yaml(
        "hub_config/tess-public/common.yaml", lambda d: d["cull"].update(timeout=timeout)
    )


def test_plan_against_a_base_branch_names_each_change(repo, tess_env):
    repo.commit("the platform, on staging")
    edit_cull(repo, 660)  # in the working tree, not committed: the pull request's head
    out = cli("plan", "--base", "staging", cwd=repo.path)
    assert out.returncode == CHANGES, out.stderr
    base = repo.git("rev-parse", "staging").strip()[:12]
    assert f"against base staging ({base})" in out.stdout
    assert "| `tess-public-staging` | **deploy** | `cull.timeout`: 600 → 660 |" in out.stdout
    assert "| `tess-private-staging` | **no change** | — |" in out.stdout

    requirements = (repo.path / "image/requirements.txt").read_text()
    repo.write("image/requirements.txt", requirements + "cowsay==6.1\n")
    out = cli("plan", "--base", "staging", "--format", "json", cwd=repo.path)
    assert out.returncode == CHANGES
    planned = {r["release"]: r for r in json.loads(out.stdout)["releases"]}
    assert len(planned) == 4 and all(r["action"] == DEPLOY for r in planned.values())
    assert "(`image/requirements.txt`)" in planned["tess-private-prod"]["reasons"][-1]

    edit_cull(repo, "never")
    out = cli("plan", "--base", "staging", "--env", "staging", cwd=repo.path)
    assert out.returncode == ERRORS
    assert "hub_config/tess-public/common.yaml: cull.timeout" in out.stdout
    assert PLANTED not in out.stdout + out.stderr


def test_plan_against_what_runs(repo, tess_env):
    platform = Platform()
    deploy(platform, repo.commit("the platform"), PUBLIC)
    out = cli("plan", "--env", "staging", cwd=repo.path)
    assert out.returncode == CHANGES, out.stderr
    assert "| `tess-public-staging` | **no change** | — |" in out.stdout
    assert "| `tess-private-staging` | **new** | nothing runs it yet" in out.stdout

    edit_cull(repo, 660)
    out = cli("plan", "--env", "staging", "--format", "json", cwd=repo.path)
    public = next(r for r in json.loads(out.stdout)["releases"] if r["release"] == PUBLIC.name)
    assert public["reasons"] == ["`cull.timeout`: 600 → 660"]
    assert public["against"].startswith("tess-public-staging revision 1 (")

    platform.target.supervisor.stop(PUBLIC.name)  # stopped, revision 1 is still what it runs
    out = cli("plan", "--env", "staging", cwd=repo.path)
    assert "| `tess-public-staging` | **deploy** | `cull.timeout`: 600 → 660" in out.stdout
    assert "tess-public-staging: revision 1 does not serve as deployed" in out.stdout
