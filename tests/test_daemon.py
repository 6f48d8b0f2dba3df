"""With the daemon running: `dagster job launch` end to end, and one deploy per environment
at a time, by the run queue (dagster.yaml) and by the backends' lock."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, Site, stop_everything
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter

DONE = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}


@pytest.fixture(scope="module")
def daemon_site(tmp_path_factory):
    site = Site(tmp_path_factory.mktemp("daemon"))
    shutil.copy(ROOT / "dagster.yaml", site.dagster_home / "dagster.yaml")
    env = {**os.environ, **site.env, "DAGSTER_HOME": str(site.dagster_home)}
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


def test_two_staging_deploys_launched_together_run_one_after_the_other(daemon_site):
    launch(daemon_site, "deploy_staging")
    launch(daemon_site, "deploy_staging")
    records = wait_all(daemon_site, "deploy_staging", 2)
    assert all(r.dagster_run.status == DagsterRunStatus.SUCCESS for r in records)
    windows = sorted((r.start_time, r.end_time) for r in records)
    for (_, end), (start, _) in zip(windows, windows[1:], strict=False):
        assert start >= end  # never interleaved


def test_promote_prod_through_dagster_job_launch(daemon_site):
    launch(daemon_site, "promote_prod", {"tess/approved_by": "Ada Lovelace"})
    (record,) = wait_all(daemon_site, "promote_prod", 1)
    assert record.dagster_run.status == DagsterRunStatus.SUCCESS
    assert daemon_site.head("prod") == daemon_site.head("staging")
    assert record.dagster_run.tags["tess/approved_by"] == "Ada Lovelace"


def test_the_backend_lock_serializes_deploys_that_bypass_the_queue(daemon_site, tmp_path):
    script = tmp_path / "deploy.py"
    script.write_text(
        "import sys\n"
        "from dagster import DagsterInstance\n"
        "from tess_platform.definitions import defs\n"
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
    assert any("another staging deploy holds the staging lock; waiting" in log for log in logs)
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
