"""The local run launcher: Dagster's default, able to tell run monitoring that a run worker
died. A run whose worker was killed (`kill -9`, an OOM kill, a reboot) is then marked failed
and its slot in the run queue freed, instead of staying STARTED for ever. On Kubernetes the
K8sRunLauncher answers the same question by itself."""

from dagster import DagsterEventType, DefaultRunLauncher
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus  # the launcher interface

from tess_platform.processes import still_running


def worker(instance, run_id: str) -> tuple[int, float] | None:
    """The run worker's pid and when it was recorded, from the engine event Dagster writes
    when it starts the worker's process."""
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT):
        data = entry.dagster_event.engine_event_data
        pid = data.metadata.get("pid") if data else None
        if pid is not None:
            return int(pid.value), entry.timestamp
    return None


class MonitoredRunLauncher(DefaultRunLauncher):
    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run) -> CheckRunHealthResult:
        found = worker(self._instance, run.run_id)
        if found is None:  # run in another process (execute_in_process): not ours to judge
            return CheckRunHealthResult(WorkerStatus.RUNNING, "no run worker pid recorded")
        pid, recorded = found
        if still_running(pid, recorded):
            return CheckRunHealthResult(WorkerStatus.RUNNING)
        return CheckRunHealthResult(
            WorkerStatus.FAILED,
            f"the run worker (pid {pid}) is gone: it was killed or crashed. Nothing is retried "
            "automatically; see the run's last steps, then launch it again",
        )
