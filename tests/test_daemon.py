"""With the daemon running: `dagster job launch` end to end, and one deploy per environment
at a time, by the run queue (dagster.yaml) and by the backends' lock."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from conftest import ROOT, Site, stop_everything
from dagster import (
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    RunsFilter,
)

DONE = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}


SENSORS = ("staging_branch_sensor", "release_drift_sensor", "verify_after_failed_run")


def sensor_command(env, verb: str, sensor: str) -> None:
    subprocess.run(
        [str(ROOT / ".venv/bin/dagster"), "sensor", verb, "-w", "workspace.yaml", sensor],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )


@pytest.fixture(scope="module")
def daemon_site(tmp_path_factory):
    site = Site(tmp_path_factory.mktemp("daemon"))
    shutil.copy(ROOT / "dagster.yaml", site.dagster_home / "dagster.yaml")
    env = {**os.environ, **site.env, "DAGSTER_HOME": str(site.dagster_home)}
    for sensor in SENSORS:  # runs here are launched by hand: no sensor launches its own
        sensor_command(env, "stop", sensor)
    with open(site.dagster_home / "daemon.log", "wb") as log:
        daemon = subprocess.Popen(
            [str(ROOT / ".venv/bin/dagster-daemon"), "run", "-w", "workspace.yaml"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        site.launch_env = env
        site.instance = DagsterInstance.from_config(str(site.dagster_home))
        yield site
        os.killpg(daemon.pid, signal.SIGTERM)
        daemon.wait(30)
    stop_everything(site.home)


def launch(site, job, tags=None):
    cmd = [str(ROOT / ".venv/bin/dagster"), "job", "launch", "-w", "workspace.yaml", "-j", job]
    if tags:
        cmd += ["--tags", json.dumps(tags)]
    out = subprocess.run(
        cmd, cwd=ROOT, env=site.launch_env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-3000:]


def wait_all(site, job, count, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        records = site.instance.get_run_records(RunsFilter(job_name=job))
        if len(records) >= count and all(r.dagster_run.status in DONE for r in records):
            return records
        time.sleep(1)
    log = (site.dagster_home / "daemon.log").read_text()[-3000:]
    raise AssertionError(f"{job}: runs did not finish in {timeout} s; daemon log:\n{log}")


def why_not(site, run: DagsterRun) -> str:
    """What a run that did not succeed says: its status and its failures' messages."""
    failures = [
        f"{e.step_key or 'run'}: {e.dagster_event.event_specific_data.error.message}"
        for e in site.instance.all_logs(run.run_id)
        if e.dagster_event
        and e.dagster_event.event_type
        in (DagsterEventType.STEP_FAILURE, DagsterEventType.RUN_FAILURE)
        and getattr(e.dagster_event.event_specific_data, "error", None)
    ]
    return f"{run.job_name} {run.run_id}: {run.status.value}\n" + "\n".join(failures)


def assert_succeeded(site, run: DagsterRun) -> None:
    assert run.status == DagsterRunStatus.SUCCESS, why_not(site, run)


def test_two_staging_deploys_launched_together_run_one_after_the_other(daemon_site):
    launch(daemon_site, "deploy_staging")
    launch(daemon_site, "deploy_staging")
    records = wait_all(daemon_site, "deploy_staging", 2)
    for record in records:
        assert_succeeded(daemon_site, record.dagster_run)
    windows = sorted((r.start_time, r.end_time) for r in records)
    for (_, end), (start, _) in zip(windows, windows[1:], strict=False):
        assert start >= end  # never interleaved
    first = min(records, key=lambda r: r.start_time).dagster_run.run_id
    # within a run, the hubs deploy side by side: each hub's step in a process of its own
    public, private = (
        step_window(daemon_site, first, f"{hub}_staging") for hub in ("tess_public", "tess_private")
    )
    assert public[0] < private[1] and private[0] < public[1]
    assert step_pids(daemon_site, first) >= 2
    # the run worker a code server starts forks its steps: no fresh interpreter per step
    logs = [e.message for e in daemon_site.instance.all_logs(first)]
    assert any(m.startswith("steps fork from this run worker") for m in logs), logs


def step_window(site, run_id: str, step_key: str) -> tuple[float, float]:
    events = [e for e in site.instance.all_logs(run_id) if e.step_key == step_key]
    starts = [e.timestamp for e in events if e.dagster_event_type == DagsterEventType.STEP_START]
    ends = [e.timestamp for e in events if e.dagster_event_type == DagsterEventType.STEP_SUCCESS]
    return min(starts), max(ends)


def step_pids(site, run_id: str) -> int:
    """How many processes ran the run's steps (each step's start names its pid)."""
    return len(
        {
            e.dagster_event.pid
            for e in site.instance.all_logs(run_id, of_type=DagsterEventType.STEP_START)
        }
    )


def test_the_backend_lock_serializes_deploys_that_bypass_the_queue(daemon_site, tmp_path):
    script = tmp_path / "deploy.py"
    script.write_text(
        "import sys\n"
        "from dagster import DagsterInstance\n"
        "from tess_dagster.definitions import defs\n"
        "instance = DagsterInstance.from_config(sys.argv[1])\n"
        "job = defs.resolve_job_def('deploy_staging')\n"
        "result = job.execute_in_process(instance=instance, raise_on_error=False)\n"
        "print(result.run_id)\n"
        "sys.exit(0 if result.success else 1)\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(daemon_site.dagster_home)],
            cwd=ROOT,
            env=daemon_site.launch_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for _ in range(2)
    ]
    run_ids = [p.communicate(timeout=300)[0].split()[-1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    logs = [
        "\n".join(e.message for e in daemon_site.instance.all_logs(run_id)) for run_id in run_ids
    ]
    assert any(
        "another staging deploy or check holds the staging lock; waiting for it to finish" in log
        for log in logs
    )
    spans = []
    for run_id in run_ids:
        events = daemon_site.instance.all_logs(run_id)
        steps = [
            e.timestamp
            for e in events
            if e.is_dagster_event
            and e.dagster_event_type in (DagsterEventType.STEP_START, DagsterEventType.STEP_SUCCESS)
        ]
        spans.append((min(steps), max(steps)))
    spans.sort()
    assert spans[1][0] >= spans[0][1]  # the second run's steps all after the first run's
    assert Path(daemon_site.home / "locks" / "staging.lock").exists()


def wait_failed(site, run_id: str, timeout: float = 120) -> list[str]:
    deadline = time.monotonic() + timeout
    while site.instance.get_run_by_id(run_id).status != DagsterRunStatus.FAILURE:
        assert time.monotonic() < deadline, f"run {run_id} was never marked failed"
        time.sleep(1)
    return [e.message for e in site.instance.all_logs(run_id)]


def test_run_monitoring_fails_a_run_whose_worker_died_with_nobody_watching(daemon_site):
    """A run worker gone while its code server is gone too (dagster dev killed, a reboot): the
    run would stay STARTED for ever, holding its queue slot; run monitoring ends it."""
    from dagster._core.events import EngineEventData  # the event Dagster writes at start

    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    run_id = str(uuid.uuid4())
    run = daemon_site.instance.add_run(
        DagsterRun(
            job_name="deploy_staging",
            run_id=run_id,
            status=DagsterRunStatus.STARTED,
            tags={"tess/env": "staging"},
        )
    )
    daemon_site.instance.report_engine_event(
        f"Started process for run (pid: {worker.pid}).", run, EngineEventData.in_process(worker.pid)
    )
    time.sleep(8)  # a live worker: monitoring leaves the run alone
    assert daemon_site.instance.get_run_by_id(run_id).status == DagsterRunStatus.STARTED
    worker.kill()
    worker.wait()
    messages = wait_failed(daemon_site, run_id)
    assert any(f"the run worker (pid {worker.pid}) is gone" in m for m in messages)


def newest_run(site, job):
    records = site.instance.get_run_records(RunsFilter(job_name=job), limit=1)
    return records[0].dagster_run if records else None


# moments of tess-public's step (values, release, checks in one process) to kill the run at:
# as its hub starts, and once it serves (a kill before the hub is touched is the easier case)
KILL_POINTS = {
    "release": lambda e: "tess-public-staging: starting revision" in (e.user_message or ""),
    "checks": lambda e: e.dagster_event_type == DagsterEventType.ASSET_MATERIALIZATION
    and e.dagster_event.asset_key == AssetKey(["staging", "tess_public_staging_release"]),
}


def wait_for(site, run_id, point, timeout=180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(KILL_POINTS[point](e) for e in site.instance.all_logs(run_id)):
            return
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} never reached {point}")


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_a_run_killed_with_sigkill_is_marked_failed_and_the_next_run_completes(daemon_site, point):
    from tess_dagster.sensors.launcher import worker
    from tess_platform.backends.local.supervisor import Supervisor

    site = daemon_site
    site.repo.edit_yaml(
        "hub_config/tess-public/common.yaml",
        lambda d: d["cull"].update(timeout=d["cull"]["timeout"] + 60),
    )
    site.repo.commit(f"tess-public: cull later (killed at {point})")
    before = {
        r.dagster_run.run_id
        for r in site.instance.get_run_records(RunsFilter(job_name="deploy_staging"))
    }
    launch(site, "deploy_staging")
    deadline = time.monotonic() + 120
    while (run := newest_run(site, "deploy_staging")) is None or run.run_id in before:
        assert time.monotonic() < deadline, "the launched run never appeared"
        time.sleep(0.2)
    wait_for(site, run.run_id, point)
    pid, _ = worker(site.instance, run.run_id)
    os.kill(pid, signal.SIGKILL)

    # the code server that started it (or, were it gone too, run monitoring) marks it failed
    wait_failed(site, run.run_id)

    launch(site, "deploy_staging")  # nothing retries it by itself; the operator launches again
    records = wait_all(site, "deploy_staging", len(before) + 2)
    assert_succeeded(site, records[0].dagster_run)
    logs = [e.message for e in site.instance.all_logs(records[0].dagster_run.run_id)]
    assert f"took over the staging lock of process {pid}, which died holding it" in logs
    supervisor = Supervisor(site.home)
    for release in ("tess-public-staging", "tess-private-staging"):
        assert supervisor.status(release).running and supervisor.drift(release) is None
    assert supervisor.current("tess-public-staging").record["git_sha"] == site.head("staging")


def test_a_failed_deploy_has_the_checks_it_never_ran_run_again_at_once(daemon_site):
    site = daemon_site
    good = site.repo.path.joinpath("hub_config/tess-public/common.yaml").read_text()
    site.repo.write("hub_config/tess-public/common.yaml", "cull: {timeout: [600\n")
    site.repo.commit("tess-public: a YAML typo")
    sensor_command(site.launch_env, "start", "verify_after_failed_run")
    try:
        before = len(site.instance.get_run_records(RunsFilter(job_name="deploy_staging")))
        launch(site, "deploy_staging")
        (failed, *_) = wait_all(site, "deploy_staging", before + 1)
        assert failed.dagster_run.status == DagsterRunStatus.FAILURE
        (verify,) = wait_all(site, "verify_releases", 1, timeout=120)
    finally:
        sensor_command(site.launch_env, "stop", "verify_after_failed_run")
        site.repo.write("hub_config/tess-public/common.yaml", good)
        site.repo.commit("tess-public: the typo reverted")
    run = verify.dagster_run
    assert_succeeded(site, run)
    assert run.tags["tess/trigger"] == "verify_after_failed_run"
    assert (
        run.tags["dagster/run_key"]
        == f"verify:tess-public-staging:unexecuted:{failed.dagster_run.run_id}"
    )
    # within seconds of the failure, not on the drift sensor's next minute
    assert verify.create_timestamp.timestamp() - failed.end_time < 30


def test_a_sha_not_on_staging_fails_the_run_before_any_step_starts(daemon_site):
    """The run worker verifies the run's SHA once, for the steps it forks: a SHA that was never
    merged fails the run at once, saying so, with no step started and no hub touched."""
    from tess_platform.backends.local.supervisor import Supervisor

    site, supervisor = daemon_site, Supervisor(daemon_site.home)
    serving = supervisor.current("tess-public-staging")
    site.repo.git("checkout", "-q", "-b", "unmerged-work")
    site.repo.write("README.md", "# unmerged\n")
    unmerged = site.repo.commit("work in progress", branch=None)
    site.repo.git("checkout", "-q", "main")
    before = len(site.instance.get_run_records(RunsFilter(job_name="deploy_staging")))
    launch(site, "deploy_staging", {"tess/git_sha": unmerged})
    (record, *_) = wait_all(site, "deploy_staging", before + 1)
    run = record.dagster_run
    assert run.status == DagsterRunStatus.FAILURE
    message = why_not(site, run)
    assert f"{unmerged} is not on branch staging" in message, message
    assert "Nothing was deployed" in message, message
    started = {DagsterEventType.STEP_WORKER_STARTING, DagsterEventType.STEP_START}
    steps = [
        e.step_key for e in site.instance.all_logs(run.run_id) if e.dagster_event_type in started
    ]
    assert steps == [], steps
    assert supervisor.current("tess-public-staging") == serving
