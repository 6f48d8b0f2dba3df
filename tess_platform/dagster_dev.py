"""`dagster dev` for the local target: started detached, driven over its GraphQL API.

Used by `tess-platform local up`; talks to Dagster as a user's browser would, over HTTP.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import requests

REPO_ROOT = Path(__file__).resolve().parent.parent
LOCATION = "tess-platform"  # workspace.yaml


class DagsterDevError(RuntimeError):
    pass


class DagsterDev:
    def __init__(self, home: Path, port: int = 3000) -> None:
        self.home = home  # DAGSTER_HOME
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.pidfile = home / "dagster-dev.pid"

    def running(self) -> psutil.Process | None:
        try:
            proc = psutil.Process(int(self.pidfile.read_text()))
            return proc if proc.is_running() and "dev" in proc.cmdline() else None
        except (FileNotFoundError, ValueError, psutil.Error):
            return None

    def start(self, env: dict[str, str], timeout: float = 180) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        # the instance settings of the repo (run queue, one deploy per environment)
        shutil.copyfile(REPO_ROOT / "dagster.yaml", self.home / "dagster.yaml")
        if self.running() is None:
            dagster = Path(sys.executable).with_name("dagster")
            with open(self.home / "dagster-dev.log", "ab") as log:
                proc = subprocess.Popen(
                    [
                        str(dagster),
                        "dev",
                        "-w",
                        str(REPO_ROOT / "workspace.yaml"),
                        "-h",
                        "127.0.0.1",
                        "-p",
                        str(self.port),
                    ],
                    cwd=REPO_ROOT,
                    env={**env, "DAGSTER_HOME": str(self.home)},
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    start_new_session=True,
                )
            self.pidfile.write_text(str(proc.pid))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self._query("{ version }").get("version"):
                    return
            except (requests.RequestException, DagsterDevError):
                pass
            if self.running() is None:
                raise DagsterDevError(f"dagster dev exited; see {self.home / 'dagster-dev.log'}")
            time.sleep(1)
        raise DagsterDevError(f"dagster dev did not answer on {self.url} in {timeout:.0f} s")

    def stop(self) -> bool:
        proc = self.running()
        if proc is None:
            return False
        os.killpg(proc.pid, signal.SIGTERM)
        psutil.wait_procs([proc], timeout=30)
        self.pidfile.unlink(missing_ok=True)
        return True

    def _query(self, query: str, variables: dict | None = None) -> dict:
        response = requests.post(
            f"{self.url}/graphql", timeout=30, json={"query": query, "variables": variables or {}}
        )
        response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            raise DagsterDevError(str(body["errors"]))
        return body["data"]

    def launch(self, job: str, tags: dict[str, str] | None = None) -> str:
        data = self._query(
            _LAUNCH,
            {
                "params": {
                    "selector": {
                        "repositoryLocationName": LOCATION,
                        "repositoryName": "__repository__",
                        "jobName": job,
                    },
                    "executionMetadata": {
                        "tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]
                    },
                }
            },
        )["launchRun"]
        if data["__typename"] != "LaunchRunSuccess":
            raise DagsterDevError(f"could not launch {job}: {data}")
        return data["run"]["runId"]

    def wait(self, run_id: str, timeout: float = 1800) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self._query(_STATUS, {"runId": run_id})["runOrError"]["status"]
            if status in ("SUCCESS", "FAILURE", "CANCELED"):
                return status
            time.sleep(1)
        raise DagsterDevError(f"run {run_id} did not finish in {timeout:.0f} s")


_LAUNCH = """
mutation($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}"""

_STATUS = """
query($runId: ID!) { runOrError(runId: $runId) { ... on Run { status } } }"""
