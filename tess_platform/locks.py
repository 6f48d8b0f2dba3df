"""Locks that make a second deploy wait. A thread that holds a lock and takes it again goes
on (a run's resource and one of its steps may both ask); so does any process of the run that
holds it (`owner`: a run's steps each run in a process of their own); anyone else waits.

A lock file names the process holding it, and its run. The kernel frees the lock of a process
that dies, even by SIGKILL; the name it leaves in the file tells the next holder whose lock it
took over."""

from __future__ import annotations

import fcntl
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

# lock name -> (process, thread) holding it: a process forked while its parent holds a lock
# inherits this table, not the lock's ownership, and must ask for the lock itself
_HELD: dict[str, tuple[int, int]] = {}


class OrphanedError(RuntimeError):
    """A process of a run whose lock holder (its run worker) died: it must not go on."""


@contextmanager
def reentrant(name: str, acquire: Callable[[], AbstractContextManager[None]]) -> Iterator[None]:
    holder = (os.getpid(), threading.get_ident())
    if _HELD.get(name) == holder:
        yield
        return
    with acquire():
        _HELD[name] = holder
        try:
            yield
        finally:
            del _HELD[name]


def file_lock(
    path: Path,
    on_wait=None,
    on_takeover: Callable[[int], None] | None = None,
    owner: str | None = None,
) -> AbstractContextManager[None]:
    """An exclusive lock on `path` across processes; `on_wait()` is called if it must wait,
    `on_takeover(pid)` if the previous holder died holding it. Held already for `owner` (by
    another process of the same run): granted without waiting."""
    return reentrant(f"file:{path}", lambda: _flock(path, on_wait, on_takeover, owner))


def env_news(
    env: str, log: Callable[[str], None]
) -> tuple[Callable[[], None], Callable[[str], None]]:
    """What a run's log says about its environment's lock: (it waits, it took over the lock
    of `holder`, which died holding it)."""
    return (
        lambda: log(
            f"another {env} deploy or check holds the {env} lock; waiting for it to finish"
        ),
        lambda holder: log(f"took over the {env} lock of {holder}, which died holding it"),
    )


def env_file_lock(
    path: Path, env: str, log: Callable[[str], None], owner: str | None
) -> AbstractContextManager[None]:
    """The lock of one environment on this machine, telling `log` what it does."""
    waiting, took_over = env_news(env, log)
    return file_lock(path, waiting, lambda pid: took_over(f"process {pid}"), owner)


def lock_held(path: Path) -> bool:
    """Whether a process (this one included) holds the lock now; a look, never a wait."""
    if not path.exists():
        return False
    with open(path, "a") as f:  # "a": the holder's name stays
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
    return False


@contextmanager
def _flock(
    path: Path, on_wait, on_takeover: Callable[[int], None] | None, owner: str | None
) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:  # not "w": a waiter must not erase the holder's name
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder, holding_for = _holder(f)
            if owner and holding_for == owner and holder.isdigit():
                _die_with(int(holder))  # a step lives no longer than the run worker it serves
                yield
                return
            if on_wait:
                on_wait()
            fcntl.flock(f, fcntl.LOCK_EX)
        previous, previous_owner = _holder(f)
        died = previous.isdigit() and _dead(int(previous))
        if died and owner and previous_owner == owner:
            fcntl.flock(f, fcntl.LOCK_UN)  # the record stays: the next holder takes it over
            raise OrphanedError(
                f"the process that held this run's lock (pid {previous}) died: this process "
                "of the run stops here, without doing anything"
            )
        if on_takeover and died:
            on_takeover(int(previous))
        _name_holder(f, f"{os.getpid()} {owner or ''}".strip())
        try:
            yield
        finally:
            _name_holder(f, "")  # released in order: nothing to take over
            fcntl.flock(f, fcntl.LOCK_UN)


def _holder(f) -> tuple[str, str]:
    """(pid, owner) the lock file names."""
    f.seek(0)
    pid, _, owner = f.read().strip().partition(" ")
    return pid, owner


def _name_holder(f, name: str) -> None:
    f.truncate(0)  # "a+" writes at the end, which is now the start
    f.write(name)
    f.flush()


def _die_with(pid: int) -> None:
    """Kill this process soon after `pid` dies: a run's steps end with their run worker, as
    they did when they ran inside it, and leave nothing running unlocked."""

    def watch() -> None:
        while not _dead(pid):
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name=f"die-with-{pid}", daemon=True).start()


def _dead(pid: int) -> bool:
    import psutil  # only where a holder is looked at: not in every import of the code location

    try:  # a zombie has died: only its parent has not read its exit status yet
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
