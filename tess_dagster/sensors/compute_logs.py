"""The local instance's compute logs: each step's stdout and stderr kept in files where Dagster's
LocalComputeLogManager keeps them (`$DAGSTER_HOME/storage`; the UI's stdout/stderr views read
them), without Dagster's copy of them to the run worker's own output. That copy costs each step
four processes (a `tail -F` and a watcher interpreter per stream): 0.8 s of a two-hub deploy on
two cores (bench/deploy_local), for output that lands in dagster dev's log, unread."""

import sys
from contextlib import contextmanager

from dagster import Field, StringSource
from dagster._core.execution.compute_logs import redirect_to_file  # the files Dagster writes
from dagster._core.instance.ref import compute_logs_directory
from dagster._core.storage.compute_log_manager import CapturedLogContext, ComputeIOType
from dagster._core.storage.local_compute_log_manager import (
    IO_TYPE_EXTENSION,
    LocalComputeLogManager,
)
from dagster._utils import ensure_file, touch_file


class StepLogFiles(LocalComputeLogManager):
    """LocalComputeLogManager, its `base_dir` the instance's own unless set."""

    def __init__(self, base_dir: str | None = None, polling_timeout=None, inst_data=None) -> None:
        super().__init__(base_dir or "", polling_timeout, inst_data)

    @classmethod
    def config_type(cls):
        return {"base_dir": Field(StringSource, is_required=False)}

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> "StepLogFiles":
        return cls(inst_data=inst_data, **(config_value or {}))

    def register_instance(self, instance) -> None:
        super().register_instance(instance)
        if not self._base_dir:  # a dagster.yaml copied into any DAGSTER_HOME names none
            self._base_dir = compute_logs_directory(instance.root_directory)

    @contextmanager
    def capture_logs(self, log_key):
        out, err = (
            self.get_captured_local_path(log_key, IO_TYPE_EXTENSION[io])
            for io in (ComputeIOType.STDOUT, ComputeIOType.STDERR)
        )
        ensure_file(out)
        ensure_file(err)
        with redirect_to_file(sys.stdout, out), redirect_to_file(sys.stderr, err):
            yield CapturedLogContext(log_key)
        touch_file(self.complete_artifact_path(log_key))  # as Dagster's: the capture is whole
