"""The local hubs' spawner: each user's server a process of an unprivileged user of its own.

JupyterHub's SimpleLocalProcessSpawner runs every server as the hub's user: a hub run as root
would hand each notebook root, the hub's secrets and the platform's state. Run as root, this
spawner gives each user of a release a uid of its own, from a range no system account uses,
kept in a registry so that it stays theirs (their home keeps its owner), and a home only that
uid can open; where the machine allows, the server and its kernels run in a memory cgroup of
`mem_limit`, elsewhere each of their processes under an rlimit of `mem_limit`. Run as anyone
else it can only run servers as that user, as `local status` says. The hub loads it by name
(`spawner_class`).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path

import psutil
from jupyterhub.spawner import SimpleLocalProcessSpawner
from traitlets import Unicode

from .isolation import (
    limit_data,
    memory_cgroups,
    remove_cgroup,
    runs_as_root,
    uid_key,
    user_uid,
)
from .ports import port_free

PORT_TRIES = 3  # ports picked at random, hubs apart: a second collision is all but impossible


class LocalUserSpawner(SimpleLocalProcessSpawner):
    on_machine = Unicode(
        config=True, help="The release this hub serves, by its name unique on the machine."
    )
    uid_registry = Unicode(config=True, help="The machine's JSON file of the uids given.")
    cgroup = Unicode(
        config=True, help="The release's memory cgroup, unique on the machine; '': none."
    )

    def _uid(self) -> int | None:
        if not runs_as_root():
            return None
        return user_uid(Path(self.uid_registry), uid_key(self.on_machine, self.user.name))

    async def start(self):
        uid = self._uid()
        home = Path(self.home_dir)
        home.parent.mkdir(mode=0o711, parents=True, exist_ok=True)  # passable, not listable
        home.mkdir(mode=0o700, exist_ok=True)
        if uid is not None and home.stat().st_uid != uid:
            _give(home, uid)  # a home made before, by root: the user's from now on
        os.chmod(home, 0o700)  # nobody else's to open
        self._server_uid, self._cgroup = uid, self._memory_cgroup()
        for _ in range(PORT_TRIES):
            ip, port = await super().start()
            if await listening(port, self.proc.pid, self.proc.poll, self.http_timeout):
                return ip, port
            status = self.proc.poll()
            if status is None or port_free(port):
                break
            # another process took the port between this hub's pick and the server's bind
            # (each hub of the machine picks its servers' ports at random): a port anew
            self.log.warning(f"{self.user.name}'s server: port {port} taken by another; again")
            self.port = 0
        # a clear error now: the hub stops what is left (its own wait would take another
        # http_timeout and then say only that nothing answered)
        why = (
            f"exited with status {status} before it listened"
            if status is not None
            else f"did not listen within {self.http_timeout:.0f} s"
        )
        raise RuntimeError(
            f"{self.user.name}'s server on {ip}:{port} {why}; its output is in the hub's log"
        )

    def _group(self) -> Path | None:
        """Where the user's memory cgroup is, where the machine makes them."""
        groups = memory_cgroups() if self.cgroup else None
        return None if groups is None else groups / self.cgroup / self.user.name

    def _memory_cgroup(self) -> Path | None:
        """A cgroup of the user's own, limited to mem_limit: the server and its kernels."""
        group = self._group()
        if not self.mem_limit or group is None:
            return None
        group.mkdir(parents=True, exist_ok=True)
        (group / "memory.limit_in_bytes").write_text(str(self.mem_limit))
        return group

    async def stop(self, now=False):
        await super().stop(now=now)
        if group := self._group():  # also of a server an earlier hub revision started
            remove_cgroup(group)

    def make_preexec_fn(self, name):
        home, uid = self.home_dir, getattr(self, "_server_uid", None)
        group, limit = getattr(self, "_cgroup", None), self.mem_limit

        def preexec():
            if group is not None:
                (group / "cgroup.procs").write_text(str(os.getpid()))
            elif limit:
                limit_data(limit)
            if uid is not None:
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)
            os.chdir(home)

        return preexec


async def listening(port: int, pid: int, poll: Callable[[], int | None], timeout: float) -> bool:
    """Whether the process `pid` listens on `port` within `timeout` s, before it exits (`poll`
    returns its exit status then). Its own socket, not whatever accepts on the port: a server
    of another hub may hold it, and this one fail to bind.

    The hub asks a new server after waits of random length, their bound doubling up to 5 s: a
    server that listens after 2 s is seen up to 3 s later. Looked for every 50 ms here, before
    `start` returns, it is seen up at its hub's first ask."""
    deadline = time.monotonic() + timeout
    while poll() is None and time.monotonic() < deadline:
        if _listens(pid, port):
            return True
        await asyncio.sleep(0.05)
    return False


def _listens(pid: int, port: int) -> bool:
    try:
        sockets = psutil.Process(pid).net_connections("inet")
    except psutil.Error:
        return False
    return any(s.status == psutil.CONN_LISTEN and s.laddr.port == port for s in sockets)


def _give(home: Path, uid: int) -> None:
    for root, dirs, files in os.walk(home):
        for name in (*dirs, *files):
            os.lchown(os.path.join(root, name), uid, uid)
    os.chown(home, uid, uid)
