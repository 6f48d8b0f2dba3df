"""`dagster dev` for the local target: started detached, driven over its GraphQL API.

Used by `tess-platform local up` and `promote`; talks to Dagster as a user's browser would,
over HTTP.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil
import requests

from .checks import CHECKS
from .control_plane import LOCAL_INSTANCE
from .releases import Release
from .settings import CHECKOUT
from .verification import (
    HISTORY_DEPTH,
    Deploy,
    Evaluation,
    ReleaseRecord,
    release_record,
)

WORKSPACE = CHECKOUT / "workspace.yaml"
LOCATION = "tess-platform"  # workspace.yaml
DAGSTER = Path(sys.executable).with_name("dagster")  # the venv's, beside this Python
DONE = ("SUCCESS", "FAILURE", "CANCELED")


DEFAULT_PORT = 3000


class DagsterDevError(RuntimeError):
    pass


@dataclass(frozen=True)
class RunOutcome:
    status: str  # SUCCESS, FAILURE or CANCELED
    failures: list[str]  # what failed: each failed step's message, else the run's

    @property
    def ok(self) -> bool:
        return self.status == "SUCCESS"


class DagsterDev:
    def __init__(self, home: Path, port: int | None = None) -> None:
        """`port`: where it answers; by default the port the running one was started with
        (`local up --dagster-port`), else 3000."""
        self.home = home  # DAGSTER_HOME
        self.pidfile = home / "dagster-dev.pid"
        self.port = port or self._running_port() or DEFAULT_PORT
        self.url = f"http://127.0.0.1:{self.port}"

    def _running_port(self) -> int | None:
        proc = self.running()
        with contextlib.suppress(psutil.Error, ValueError, IndexError):
            command = proc.cmdline() if proc else []
            return int(command[command.index("-p") + 1]) if "-p" in command else None
        return None

    def running(self) -> psutil.Process | None:
        try:
            proc = psutil.Process(int(self.pidfile.read_text()))
            return proc if proc.is_running() and "dev" in proc.cmdline() else None
        except (FileNotFoundError, ValueError, psutil.Error):
            return None

    def start(self, env: dict[str, str], timeout: float = 180) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        # the instance settings of the repo (run queue, one deploy per environment)
        shutil.copyfile(LOCAL_INSTANCE, self.home / "dagster.yaml")
        if (running := self._running_port()) not in (None, self.port):
            raise DagsterDevError(
                f"dagster dev of {self.home} runs on port {running}: leave out --dagster-port, "
                "or stop it first (`tess-platform local stop`)"
            )
        if self.running() is None:
            with open(self.home / "dagster-dev.log", "ab") as log:
                proc = subprocess.Popen(
                    [
                        str(DAGSTER),
                        "dev",
                        "-w",
                        str(WORKSPACE),
                        "-h",
                        "127.0.0.1",
                        "-p",
                        str(self.port),
                    ],
                    cwd=CHECKOUT,
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

    def stop(self, grace: float = 30) -> bool:
        """Stop `dagster dev` and every process of its group, after `grace` seconds by force:
        its shutdown can hang with SIGTERM and SIGINT ignored (seen on a busy machine), and
        nothing else would end it."""
        proc = self.running()
        if proc is None:
            return False
        group = [proc, *proc.children(recursive=True)]
        os.killpg(proc.pid, signal.SIGTERM)
        _, alive = psutil.wait_procs(group, timeout=grace)
        if alive:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            psutil.wait_procs(alive, timeout=10)
        self.pidfile.unlink(missing_ok=True)
        return True

    def require(self) -> None:
        """Raises, saying what to do, unless this instance's `dagster dev` answers at self.url."""
        proc = self.running()
        if proc is None:
            raise DagsterDevError(
                f"dagster dev is not running (DAGSTER_HOME {self.home}): "
                "run `tess-platform local up` first"
            )
        try:
            self._query("{ version }")
        except DagsterDevError:
            raise DagsterDevError(
                f"dagster dev of {self.home} runs (pid {proc.pid}) but does not answer at "
                f"{self.url}: was it started with another --dagster-port?"
            ) from None

    def run_url(self, run_id: str) -> str:
        return f"{self.url}/runs/{run_id}"

    def launch_command(self, job: str, tags: dict[str, str]) -> str:
        """The `dagster job launch` line that queues `job` on this instance, where the daemon of
        `dagster dev` runs it: with absolute paths, so it works from any folder."""
        cmd = [str(DAGSTER), "job", "launch", "-w", str(WORKSPACE), "-j", job]
        return f"DAGSTER_HOME={shlex.quote(str(self.home))} " + shlex.join(
            [*cmd, "--tags", json.dumps(tags)]
        )

    def _query(self, query: str, variables: dict | None = None) -> dict:
        try:
            response = requests.post(
                f"{self.url}/graphql",
                timeout=30,
                json={"query": query, "variables": variables or {}},
            )
            response.raise_for_status()
        except requests.ConnectionError:
            raise DagsterDevError(
                f"dagster dev does not answer at {self.url}: nothing listens there (yet)"
            ) from None
        except requests.RequestException as e:
            raise DagsterDevError(f"dagster dev does not answer at {self.url}: {e}") from None
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

    def deployed(self, release: Release) -> Deploy | None:
        """What the pipeline last deployed of the release: its latest materialization."""
        key = {"path": release.asset_path("release")}
        asset = self._query(_DEPLOYED, {"key": key})["assetOrError"]
        found = asset.get("assetMaterializations") or []
        if not found:
            return None
        meta = _entries(found[0]["metadataEntries"])
        return Deploy(
            git_sha=meta.get("git_sha") or None,
            release_hash=meta.get("release_hash", ""),
            image=meta.get("image") or None,
            revision=meta.get("revision"),
            timestamp=int(found[0]["timestamp"]) / 1000,  # milliseconds, as a string
            run_id=found[0]["runId"],
        )

    def record(self, release: Release) -> ReleaseRecord:
        """The release's verification record, read over the UI's API as the Dagster layer reads
        it from the instance; tess_platform.verification decides what counts."""
        deployed = self.deployed(release)
        if deployed is None:
            return release_record(release, None, [])
        key = {"path": release.asset_path("release")}
        evaluations = []
        for name in CHECKS:
            executions = self._query(_CHECKS, {"key": key, "check": name, "limit": HISTORY_DEPTH})[
                "assetCheckExecutions"
            ]
            for execution in executions:
                evaluation = execution["evaluation"]
                if evaluation is None:  # planned, never executed
                    continue
                found_meta = _entries(evaluation["metadataEntries"])
                evaluations.append(
                    Evaluation(
                        check=name,
                        passed=evaluation["success"],
                        release_hash=found_meta.get("release_hash") or None,
                        revision=found_meta.get("revision"),
                        timestamp=evaluation["timestamp"],
                        run_id=execution["runId"],
                        description=evaluation["description"] or "",
                        drift=found_meta.get("drift", ""),
                    )
                )
        return release_record(release, deployed, evaluations)

    def wait(
        self,
        run_id: str,
        timeout: float = 1800,
        progress: Callable[[str], None] = lambda line: None,
    ) -> RunOutcome:
        """Follows the run's event log until it ends, telling `progress` its status changes
        and each step's start and end."""
        deadline = time.monotonic() + timeout
        cursor, status, events = None, None, []
        while time.monotonic() < deadline:
            # the status is read before the events: a finished run's events are all there
            data = self._query(_PROGRESS, {"runId": run_id, "cursor": cursor})
            run, logs = data["runOrError"], data["logsForRun"]
            if "status" not in run:
                raise DagsterDevError(f"no run {run_id} at {self.url}: {run.get('message')}")
            if run["status"] != status and run["status"] not in DONE:  # the outcome says DONE
                progress(f"run {run['status'].lower()}")
            status = run["status"]
            for line in filter(None, map(_step_line, logs["events"])):
                progress(line)
            events += logs["events"]
            cursor = logs["cursor"]
            if logs["hasMore"]:
                continue
            if status in DONE:
                return RunOutcome(status, _failures(events))
            time.sleep(1)
        raise DagsterDevError(f"run {run_id} did not finish in {timeout:.0f} s")


_STEP_EVENTS = {
    "ExecutionStepStartEvent": "started",
    "ExecutionStepSuccessEvent": "succeeded",
    "ExecutionStepFailureEvent": "FAILED",
    "ExecutionStepSkippedEvent": "skipped",
}


def _step_line(event: dict) -> str | None:
    what = _STEP_EVENTS.get(event["__typename"])
    if what is None:
        return None
    if what == "FAILED":  # the first line says why; the outcome has it whole
        what += ": " + _message(event).partition("\n")[0]
    return f"{event['stepKey']}: {what}"


def _failures(events: list[dict]) -> list[str]:
    """Each failed step's message; where no step failed, the run's own failure."""
    steps = [_message(e) for e in events if e["__typename"] == "ExecutionStepFailureEvent"]
    return steps or [_message(e) for e in events if e["__typename"] == "RunFailureEvent"]


def _message(event: dict) -> str:
    """What a user wrote (a Failure's description), else the error, else the event's text."""
    described = (event.get("failureMetadata") or {}).get("description")
    error = (event.get("error") or {}).get("message")
    return (described or error or event["message"]).strip()


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

_PROGRESS = """
query($runId: ID!, $cursor: String) {
  runOrError(runId: $runId) {
    ... on Run { status }
    ... on RunNotFoundError { message }
    ... on PythonError { message }
  }
  logsForRun(runId: $runId, afterCursor: $cursor) {
    ... on EventConnection {
      cursor
      hasMore
      events {
        __typename
        ... on MessageEvent { stepKey message }
        ... on ExecutionStepFailureEvent { error { message } failureMetadata { description } }
        ... on RunFailureEvent { error { message } }
      }
    }
  }
}"""


def _entries(entries: list[dict]) -> dict:
    """Metadata entries as label -> value (text, int or float)."""
    out = {}
    for entry in entries:
        for field in ("text", "intValue", "floatValue"):
            if entry.get(field) is not None:
                out[entry["label"]] = entry[field]
    return out


_ENTRIES = """metadataEntries { label
  ... on TextMetadataEntry { text }
  ... on IntMetadataEntry { intValue }
  ... on FloatMetadataEntry { floatValue } }"""

_DEPLOYED = (
    """query($key: AssetKeyInput!) { assetOrError(assetKey: $key) {
  ... on Asset { assetMaterializations(limit: 1) { timestamp runId """
    + _ENTRIES
    + """ } } } }"""
)

_CHECKS = (
    """query($key: AssetKeyInput!, $check: String!, $limit: Int!) {
  assetCheckExecutions(assetKey: $key, checkName: $check, limit: $limit) {
    runId evaluation { timestamp success description """
    + _ENTRIES
    + """ } } }"""
)
