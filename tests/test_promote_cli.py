"""`tess-platform promote` and the README's `dagster job launch`, run as the README writes
them, against a real `dagster dev` started as `tess-platform local up` starts it, with staging
deployed by the staging sensor."""

import json
import os
import re
import subprocess
import time

import pytest
from conftest import ROOT, Site, free_port, stop_everything
from conftest import deploy as deploy_release
from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    RunsFilter,
    build_sensor_context,
)

from tess_dagster.definitions import defs
from tess_platform.dagster_dev import DagsterDev, DagsterDevError
from tess_platform.platform import Platform
from tess_platform.releases import Release

staging_branch_sensor = defs.get_sensor_def("staging_branch_sensor")

DONE = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}


def readme_block(marker: str) -> str:
    """The README's one bash block that holds `marker`, as written."""
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    (block,) = [b for b in blocks if marker in b]
    return block


# the walkthrough's line, as written (the tests add --dagster-port: 3000 may be taken here)
PROMOTE = readme_block("tess-platform promote").strip().replace("Your Name", "Ada Lovelace")


@pytest.fixture(scope="module")
def dev(tmp_path_factory):
    """A platform whose `dagster dev` runs as after `local up`: its staging sensor starts
    deploying the repository's staging branch at once. Stopped after, with every hub."""
    site = Site(tmp_path_factory.mktemp("promote"))
    site.env = {**os.environ, **site.env}
    site.dagster = DagsterDev(site.home / "dagster", port=free_port())
    try:
        site.dagster.start(site.env)
        site.instance = DagsterInstance.from_config(str(site.dagster.home))
        yield site
    finally:
        site.dagster.stop()
        stop_everything(site.home)


@pytest.fixture(scope="module")
def local(dev):
    """The same, once the sensor's staging deploy has succeeded. The tests that need no
    deployed staging come first and run beside it: prod runs queue apart from staging's."""
    (run,) = settle(dev.instance, "deploy_staging", 1)
    assert run.status == DagsterRunStatus.SUCCESS
    assert run.tags["tess/git_sha"] == dev.head("staging")
    return dev


def settle(instance, job: str, count: int, timeout: float = 240) -> list:
    """The runs of `job`, newest first, once there are `count` and all have ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = instance.get_runs(RunsFilter(job_name=job))
        if len(runs) >= count and all(r.status in DONE for r in runs):
            return runs
        time.sleep(1)
    raise AssertionError(f"{job}: {count} runs did not finish in {timeout:.0f} s")


def shell(line: str, env: dict[str, str], port: int | None = None) -> subprocess.CompletedProcess:
    """A README line run by bash in the checkout, as an operator pastes it."""
    line += f" --dagster-port {port}" if port else ""
    return subprocess.run(
        ["bash", "-c", line], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def test_the_staging_sensor_says_how_to_create_a_missing_staging_branch(repo, tess_env):
    # the fixture's repository has main only, as a fresh clone
    context = build_sensor_context(cursor=None, definitions=defs)
    skip = staging_branch_sensor.evaluate_tick(context).skip_message
    assert skip == (
        f"{repo.path} has no staging branch: create it with `git push {repo.path} "
        "HEAD:staging` (or `git branch staging` in that repository); merges to it deploy staging"
    )


def test_an_approver_of_only_whitespace_is_refused_before_anything_launches(dev):
    out = shell('.venv/bin/tess-platform promote --approver "  "', dev.env, dev.dagster.port)
    assert out.returncode == 2
    assert "argument --approver: must name who approves the promotion" in out.stderr
    out = shell(f"{PROMOTE} --sha main", dev.env, dev.dagster.port)  # a branch, not a SHA
    assert out.returncode == 2
    assert "argument --sha: 'main' is not a git SHA" in out.stderr
    assert not dev.instance.get_runs(RunsFilter(job_name="promote_prod"))


def test_promote_without_dagster_dev_says_to_run_local_up(dev, tmp_path):
    out = shell(PROMOTE, {**dev.env, "TESS_LOCAL_HOME": str(tmp_path)})
    assert out.returncode == 1
    assert out.stderr == (
        f"tess-platform: dagster dev is not running (DAGSTER_HOME {tmp_path / 'dagster'}): "
        "run `tess-platform local up` first\n"
    )


def test_dagster_dev_asked_on_another_port_than_it_runs_on_says_which(dev):
    other = DagsterDev(dev.dagster.home, port=dev.dagster.port + 1)
    with pytest.raises(DagsterDevError) as raised:
        other.start(dev.env, timeout=5)
    assert str(raised.value) == (
        f"dagster dev of {dev.dagster.home} runs on port {dev.dagster.port}: leave out "
        "--dagster-port, or stop it first (`tess-platform local stop`)"
    )
    assert DagsterDev(dev.dagster.home).url == dev.dagster.url  # no port: the running one's


def test_a_refusal_exits_1_with_its_reasons(dev):
    elsewhere = dev.repo.commit("not merged to staging", branch=None)  # on main only
    out = shell(f"{PROMOTE} --sha {elsewhere}", dev.env, dev.dagster.port)
    assert out.returncode == 1, out.stdout + out.stderr
    assert f"({dev.dagster.url}/runs/" in out.stdout
    assert "  prod__promotion: FAILED: promote_prod refused" in out.stdout
    outcome = out.stdout.split("promote_prod: FAILURE\n", 1)[1]
    assert "refused" in outcome and elsewhere in outcome and "is not on branch staging" in outcome
    assert "prod" not in dev.repo.git("branch", "--contains", elsewhere)


def test_no_wait_prints_the_run_and_returns(dev):
    out = shell(f"{PROMOTE} --no-wait --sha 0123456789ab", dev.env, dev.dagster.port)
    assert out.returncode == 0, out.stderr
    (line,) = out.stdout.splitlines()
    run_id = line.split()[2]
    assert line == f"promote_prod: run {run_id} ({dev.dagster.url}/runs/{run_id})"
    assert dev.dagster.wait(run_id).status == "FAILURE"  # refused: no such commit
    assert dev.instance.get_run_by_id(run_id).tags["tess/approved_by"] == "Ada Lovelace"


def test_local_status_names_the_instance_the_launch_command_and_the_record(local):
    dev = local  # staging deployed and checked: its record is complete
    # no --dagster-port: the port `local up` started it on, read off the running instance
    out = shell(".venv/bin/tess-platform local status", dev.env)
    assert out.returncode == 0, out.stderr
    assert f"dagster dev:  {dev.dagster.url}\n" in out.stdout
    assert f"DAGSTER_HOME: {dev.dagster.home}\n" in out.stdout
    assert (
        f"  DAGSTER_HOME={dev.dagster.home} {ROOT}/.venv/bin/dagster job launch "
        f"-w {ROOT}/workspace.yaml -j promote_prod --tags "
        """'{"tess/approved_by": "NAME"}'\n"""
    ) in out.stdout
    # the verification record of each staging hub, which agrees with the revision serving
    for name in ("tess-public-staging", "tess-private-staging"):
        found = re.search(rf"^{name}: revision (\d+), running .*\n  (.*)$", out.stdout, re.M)
        assert found, out.stdout
        assert found[2].startswith(f"verified: revision {found[1]} (")
        assert "hub_healthy passed at" in found[2] and "but revision" not in found[2]


def test_the_promotion_plan_shows_what_prod_receives_and_that_staging_verified_it(local):
    out = shell(".venv/bin/tess-platform plan --promotion", local.env, local.dagster.port)
    assert out.returncode == 2, out.stdout + out.stderr  # changes, no refusal
    head = local.head("staging")
    # staging's head, against what Dagster recorded of prod (nothing yet)
    assert (
        f"`tree at {head[:12]}` against what runs, as Dagster recorded each release's last deploy"
    ) in out.stdout
    assert "**error**" not in out.stdout
    assert "| `tess-public-prod` | **new** | nothing runs it yet: the first install |" in out.stdout

    # a change to tess-public that staging never ran: the gate's own refusal, for that hub only
    local.repo.edit_yaml(
        "hub_config/tess-public/staging.yaml",
        lambda v: v.setdefault("singleuser", {}).update(startTimeout=301),
    )
    unrun = local.repo.commit("tess-public: a slower start, not merged to staging", branch=None)
    out = shell(
        f".venv/bin/tess-platform plan --promotion --sha {unrun}", local.env, local.dagster.port
    )
    assert out.returncode == 1, out.stdout + out.stderr
    assert f"staging/tess_public_staging_release: staging runs {head[:12]} (release " in out.stdout
    assert f"not what {unrun[:12]} deploys" in out.stdout
    assert "tess_private_staging_release" not in out.stdout  # unchanged, so verified


def test_the_readmes_dagster_job_launch_runs_under_the_daemon(dev, tmp_path):
    # without TESS_LOCAL_HOME, as on a fresh machine: its default under $HOME
    fake_home = tmp_path / "user"
    (fake_home / ".local/share").mkdir(parents=True)
    (fake_home / ".local/share/tess-platform").symlink_to(dev.home)
    env = {k: v for k, v in dev.env.items() if k != "TESS_LOCAL_HOME"} | {"HOME": str(fake_home)}
    # a SHA the gate refuses at once: the run's path through the queue is the same
    elsewhere = dev.repo.commit("not merged to staging either", branch=None)
    line = readme_block("-j promote_prod").replace('"NAME"', '"Grace Hopper"')
    out = shell(line.replace('"SHA"', f'"{elsewhere}"'), env)
    assert out.returncode == 0, out.stderr[-3000:]
    latest = settle(dev.instance, "promote_prod", 1)[0]
    assert latest.tags["tess/approved_by"] == "Grace Hopper"
    assert latest.tags["tess/git_sha"] == elsewhere
    assert latest.status == DagsterRunStatus.FAILURE  # run by dagster dev's daemon: refused
    (failed,) = dev.instance.all_logs(latest.run_id, of_type=DagsterEventType.STEP_FAILURE)
    error = failed.dagster_event.event_specific_data.error.message
    assert f"{elsewhere} is not on branch staging" in error


def test_promote_follows_the_run_and_moves_prod(local):
    out = shell(PROMOTE, local.env, local.dagster.port)
    assert out.returncode == 0, out.stdout + out.stderr
    first, *progress, outcome = out.stdout.splitlines()
    run_id = first.split()[2]
    assert first == f"promote_prod: run {run_id} ({local.dagster.url}/runs/{run_id})"
    assert "  prod__promotion: started" in progress
    assert "  prod__promotion: succeeded" in progress
    assert "  tess_public_prod: succeeded" in progress
    assert outcome == "promote_prod: SUCCESS"
    assert local.head("prod") == local.head("staging")
    assert local.instance.get_run_by_id(run_id).tags["tess/approved_by"] == "Ada Lovelace"


def test_a_plan_reads_what_runs_from_dagster_and_names_a_change_outside_it(local, monkeypatch):
    head = local.head("staging")  # staging runs it, as recorded; prod too since the promotion
    out = shell(
        f".venv/bin/tess-platform plan --sha {head} --format json", local.env, local.dagster.port
    )
    assert out.returncode == 0, out.stdout + out.stderr  # nothing to deploy
    plan = json.loads(out.stdout)
    assert plan["base"] == "what runs, as Dagster recorded each release's last deploy"
    by_name = {r["release"]: r for r in plan["releases"]}
    public = by_name["tess-public-prod"]
    assert public["action"] == "no change"
    assert public["against"] == f"tess-public-prod revision 1 ({head[:12]}), as Dagster recorded it"
    assert plan["notes"] == []

    # a deploy of prod outside the pipeline: the target serves a revision Dagster never recorded
    for key, value in local.env.items():
        if key.startswith("TESS_"):
            monkeypatch.setenv(key, value)
    local.repo.edit_yaml(
        "hub_config/tess-public/prod.yaml", lambda v: v.setdefault("cull", {}).update(timeout=700)
    )
    by_hand = local.repo.commit("tess-public-prod changed by hand", branch=None)
    deploy_release(Platform(), by_hand, Release("tess-public", "prod"))
    out = shell(
        f".venv/bin/tess-platform plan --sha {head} --env prod --format json",
        local.env,
        local.dagster.port,
    )
    assert json.loads(out.stdout)["notes"] == [
        "tess-public-prod: Dagster recorded revision 1, but revision 2 serves: changed outside "
        "the pipeline (release_drift_sensor reports it); planned against Dagster's record"
    ]
