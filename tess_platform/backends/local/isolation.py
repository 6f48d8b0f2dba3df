"""What keeps local user servers apart from the platform and from each other: a uid of their
own when the supervisor runs as root, folders they may pass through, memory cgroups where the
machine has them. Imports nothing heavy: the supervisor and the hub's spawner both use it."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import resource
import stat
import time
from pathlib import Path

from ...files import write_file
from ...locks import file_lock

FIRST_UID = 2_000_000_000  # above any system's accounts and subuid ranges, below 2**31
# the uids given to users, one registry for the whole machine: every TESS_LOCAL_HOME's users
# get uids no other home's user has (a home's own registry gave each home's first user the
# same uid, who could then read the other's files and processes); never to be removed
UID_REGISTRY = Path("/var/lib/tess-platform-uids/uids.json")
MEMORY_HIERARCHY = Path("/sys/fs/cgroup/memory")  # cgroup v1's memory controller


def runs_as_root() -> bool:
    return os.geteuid() == 0


def memory_cgroups() -> Path | None:
    """The folder of the servers' memory cgroups, where this machine lets the supervisor make
    them (as root, with cgroup v1's memory controller mounted); None elsewhere, where the
    memory limit is an rlimit on each of a server's processes instead."""
    if runs_as_root() and os.access(MEMORY_HIERARCHY / "memory.limit_in_bytes", os.W_OK):
        return MEMORY_HIERARCHY / "tess-platform"
    return None


def memory_enforcement(cgroups: bool) -> str:
    """How singleuser.memory.limit holds, as `local status` says it."""
    if cgroups:
        return "a memory cgroup per user: the server and its kernels together"
    return (
        "an rlimit (RLIMIT_DATA) on each process of a server: a kernel past it gets a "
        "MemoryError (a cgroup for the server as a whole needs root and cgroup v1)"
    )


def limit_data(limit: int) -> None:
    """The memory limit where there is no cgroup: the calling process (a server about to
    exec, and each kernel it starts, which inherit it) may hold at most `limit` bytes of
    data (heap and private mappings, numpy arrays among them)."""
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))


def remove_cgroup(group: Path, wait: float = 3.0) -> None:
    """Remove a cgroup and the groups below it, deepest first: a group outlives its processes
    (and the machine's cgroups outlive TESS_LOCAL_HOME) unless removed. A process that has
    just died may hold its group a moment longer (a killed server's zombie until it is
    reaped): waited for up to `wait` seconds; one still held stays, its next start reuses it."""
    if not group.is_dir():
        return
    deadline = time.monotonic() + wait
    for child in [*sorted((p for p in group.rglob("*") if p.is_dir()), reverse=True), group]:
        while True:
            try:
                child.rmdir()
                break
            except OSError as e:
                if e.errno != errno.EBUSY or time.monotonic() > deadline:
                    break
                time.sleep(0.05)


def uid_key(on_machine: str, user: str) -> str:
    """A user's key in the registry: the release by its name unique on the machine, the user."""
    return f"{on_machine}/{user}"


def user_uid(registry: Path, key: str) -> int:
    """The uid given to `key` (uid_key), given now if it has none: one registry for
    every release of the machine, read and written under its lock, and written whole (a hub
    killed mid-write leaves the registry as it was). A new uid is above every uid given and
    every uid a process of the machine runs as: a registry lost or moved never hands a running
    user's uid to another."""
    registry.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with file_lock(registry.with_name(f".{registry.name}.lock")):
        uids: dict[str, int] = json.loads(registry.read_text()) if registry.is_file() else {}
        if key not in uids:
            uids[key] = max([*uids.values(), *_process_uids()], default=FIRST_UID - 1) + 1
            write_file(registry, json.dumps(uids, indent=2, sort_keys=True))
        return uids[key]


def uids_of(registry: Path, on_machine: str) -> set[int]:
    """The uids given to the users of the release `on_machine` (its name unique on the
    machine), as the registry holds them (written whole: read without its lock)."""
    try:
        uids = json.loads(registry.read_text())
    except (OSError, ValueError):
        return set()
    return {uid for key, uid in uids.items() if key.startswith(uid_key(on_machine, ""))}


def _process_uids() -> set[int]:
    """The uids, from FIRST_UID on, that processes of this machine run as."""
    found = set()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError):  # a process that has just ended
                found.add(proc.stat().st_uid)
    return {uid for uid in found if uid >= FIRST_UID}


def closed_to_others(path: Path) -> Path | None:
    """The first folder on the way to `path` that other users may not pass through, if any:
    a server run as a uid of its own cannot reach what lies beyond it."""
    for folder in reversed([path, *path.parents]):
        if folder.exists() and not folder.stat().st_mode & stat.S_IXOTH:
            return folder
    return None
