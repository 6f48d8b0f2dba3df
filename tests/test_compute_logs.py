"""The local instance's compute logs (dagster.yaml): what a step prints is kept where the UI
reads it, and capturing it starts no process."""

import json
import os
import shutil
import subprocess
import sys

from conftest import ROOT

# a step's process, as a run worker forks it: its output captured by the instance's manager
STEP = """
import json, subprocess, sys
import psutil
from dagster import DagsterInstance
with DagsterInstance.from_config(sys.argv[1]) as instance:
    logs = instance.compute_log_manager
    key = logs.build_log_key_for_run("a-run", "a-step")
    with logs.capture_logs(key):
        print("rendering the user image", flush=True)
        subprocess.run(["sh", "-c", "echo 'tf: 1 change' >&2"])  # as helm's or terraform's
        children = len(psutil.Process().children(recursive=True))
    data = logs.get_log_data(key)  # what the UI's stdout and stderr views show
    print(json.dumps({
        "children": children,
        "complete": logs.is_capture_complete(key),
        "stdout": data.stdout.decode(),
        "stderr": data.stderr.decode(),
        "where": logs.get_log_metadata(key).stdout_location,
    }))
"""


def test_a_steps_output_is_kept_for_the_ui_and_capturing_it_starts_no_process(tmp_path):
    shutil.copy(ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    out = subprocess.run(
        [sys.executable, "-c", STEP, str(tmp_path)], capture_output=True, text=True, check=True
    )
    found = json.loads(out.stdout)
    assert found["children"] == 0  # Dagster's own manager mirrors each stream with 2 processes
    assert found["complete"]
    assert (found["stdout"], found["stderr"]) == ("rendering the user image\n", "tf: 1 change\n")
    assert found["where"].startswith(os.path.join(str(tmp_path), "storage") + os.sep)
    assert out.stderr == ""  # kept, not also copied to the worker's own output
