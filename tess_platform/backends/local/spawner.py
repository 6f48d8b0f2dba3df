"""The local hubs' spawner: each user's server a process of an unprivileged user of its own.

JupyterHub's SimpleLocalProcessSpawner runs every server as the hub's user: a hub run as root
would hand each notebook root, the hub's secrets and the platform's state. Run as root, this
spawner gives each user of a release a uid of its own, from a range no system account uses,
kept in a registry so that it stays theirs (their home keeps its owner), and a home only that
uid can open. Run as anyone else it can only run servers as that user, as `local status` says.
The hub loads it by name (`spawner_class`), so it imports nothing of the platform but what a
hub process has.
"""

from __future__ import annotations

import fcntl
import json
import os
import stat
from pathlib import Path

from jupyterhub.spawner import SimpleLocalProcessSpawner
from traitlets import Unicode

FIRST_UID = 2_000_000_000  # above any system's accounts and subuid ranges, below 2**31


def runs_as_root() -> bool:
    return os.geteuid() == 0


def user_uid(registry: Path, key: str) -> int:
    """The uid given to `key` (release/user), given now if it has none: one registry for
    every release of the machine, read and written under its lock."""
    registry.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(registry, os.O_RDWR | os.O_CREAT, 0o600)
    with os.fdopen(fd, "r+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        text = f.read()
        uids: dict[str, int] = json.loads(text) if text.strip() else {}
        if key not in uids:
            uids[key] = max(uids.values(), default=FIRST_UID - 1) + 1
            f.seek(0)
            f.truncate()
            f.write(json.dumps(uids, indent=2, sort_keys=True))
            f.flush()
            os.fsync(f.fileno())
        return uids[key]


def closed_to_others(path: Path) -> Path | None:
    """The first folder on the way to `path` that other users may not pass through, if any:
    a server run as a uid of its own cannot reach what lies beyond it."""
    for folder in reversed([path, *path.parents]):
        if folder.exists() and not folder.stat().st_mode & stat.S_IXOTH:
            return folder
    return None


class LocalUserSpawner(SimpleLocalProcessSpawner):
    release = Unicode(config=True, help="The release this hub serves: uids are per release.")
    uid_registry = Unicode(config=True, help="The JSON file of the uids given to users.")

    def _uid(self) -> int | None:
        if not runs_as_root():
            return None
        return user_uid(Path(self.uid_registry), f"{self.release}/{self.user.name}")

    async def start(self):
        uid = self._uid()
        home = Path(self.home_dir)
        home.parent.mkdir(mode=0o711, parents=True, exist_ok=True)  # passable, not listable
        home.mkdir(mode=0o700, exist_ok=True)
        if uid is not None and home.stat().st_uid != uid:
            _give(home, uid)  # a home made before, by root: the user's from now on
        os.chmod(home, 0o700)  # nobody else's to open
        self._server_uid = uid
        return await super().start()

    def make_preexec_fn(self, name):
        home, uid = self.home_dir, getattr(self, "_server_uid", None)

        def preexec():
            if uid is not None:
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)
            os.chdir(home)

        return preexec


def _give(home: Path, uid: int) -> None:
    for root, dirs, files in os.walk(home):
        for name in (*dirs, *files):
            os.lchown(os.path.join(root, name), uid, uid)
    os.chown(home, uid, uid)
