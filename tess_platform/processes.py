"""Whether a process recorded earlier still runs: a pid alone can be reused by another."""

from __future__ import annotations

import psutil


def still_running(pid: int, started_by: float) -> bool:
    """The process `pid` runs and was started by `started_by` (a timestamp, when the pid was
    recorded); a later process with the same pid is another process."""
    try:
        proc = psutil.Process(pid)
        return proc.status() != psutil.STATUS_ZOMBIE and proc.create_time() <= started_by + 1
    except psutil.Error:
        return False
