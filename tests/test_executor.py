"""The deploy executor's own costs: what a step forked from the run worker no longer does."""

import subprocess
import sys

import pytest
from conftest import ROOT

# a run worker (a fresh interpreter, as `dagster api execute_run` is) forks a step, which opens
# the instance and uses its storages as a step does; it prints how many times alembic read
# Dagster's migration scripts, and whether the heads it sees are those read anew
STEP = """
import os, sys
from alembic.script import ScriptDirectory
from dagster import DagsterInstance
from dagster._core.storage.sql import get_alembic_config
from tess_dagster.sensors.executor import read_migrations, remember_migrations

config = get_alembic_config(os.devnull)  # its script location: Dagster's
head = ScriptDirectory.from_config(config).get_current_head()
if sys.argv[2] == "remembered":
    remember_migrations()
    read_migrations()
reads = []
load = ScriptDirectory._load_revisions
ScriptDirectory._load_revisions = lambda self: reads.append(1) or load(self)
pid = os.fork()
if pid == 0:
    with DagsterInstance.local_temp(sys.argv[1]) as instance:
        instance.get_runs(limit=1)
        instance.all_logs("0" * 36)
        same = ScriptDirectory.from_config(config).get_current_head() == head
    print(len(reads), same, flush=True)
    os._exit(0)
os.waitpid(pid, 0)
"""


@pytest.mark.parametrize("worker", ["remembered", "as-dagster-does"])
def test_a_forked_step_reads_no_migration_script_the_worker_read(tmp_path, worker):
    """Dagster's storages ask alembic for their migrations' head each time a process opens
    them, and alembic reads every migration script to answer (~40 ms of CPU each time, four
    times or more in a step): read once by the run worker, the steps inherit them."""
    out = subprocess.run(
        [sys.executable, "-c", STEP, str(tmp_path), worker],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    reads, same_heads = out.stdout.split()
    assert same_heads == "True"
    assert (int(reads) == 0) == (worker == "remembered"), reads
