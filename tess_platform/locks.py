"""Locks that make a second deploy wait. A thread that holds a lock and takes it again goes
on (a run's resource and one of its steps may both ask); any other thread or process waits.

A lock file names the process holding it. The kernel frees the lock of a process that dies,
even by SIGKILL; the name it leaves in the file tells the next holder whose lock it took over."""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import psutil

_HELD: dict[str, int] = {}  # lock name -> the thread holding it


@contextmanager
def reentrant(name: str, acquire: Callable[[], AbstractContextManager[None]]) -> Iterator[None]:
    if _HELD.get(name) == threading.get_ident():
        yield
        return
    with acquire():
        _HELD[name] = threading.get_ident()
        try:
            yield
        finally:
            del _HELD[name]


def file_lock(
    path: Path, on_wait=None, on_takeover: Callable[[int], None] | None = None
) -> AbstractContextManager[None]:
    """An exclusive lock on `path` across processes; `on_wait()` is called if it must wait,
    `on_takeover(pid)` if the previous holder died holding it."""
    return reentrant(f"file:{path}", lambda: _flock(path, on_wait, on_takeover))


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


def env_file_lock(path: Path, env: str, log: Callable[[str], None]) -> AbstractContextManager[None]:
    """The lock of one environment on this machine, telling `log` what it does."""
    waiting, took_over = env_news(env, log)
    return file_lock(path, waiting, lambda pid: took_over(f"process {pid}"))


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
def _flock(path: Path, on_wait, on_takeover: Callable[[int], None] | None) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:  # not "w": a waiter must not erase the holder's name
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait:
                on_wait()
            fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        previous = f.read().strip()
        if on_takeover and previous.isdigit() and _dead(int(previous)):
            on_takeover(int(previous))
        _name_holder(f, str(os.getpid()))
        try:
            yield
        finally:
            _name_holder(f, "")  # released in order: nothing to take over
            fcntl.flock(f, fcntl.LOCK_UN)


def _name_holder(f, name: str) -> None:
    f.truncate(0)  # "a+" writes at the end, which is now the start
    f.write(name)
    f.flush()


def _dead(pid: int) -> bool:
    try:  # a zombie has died: only its parent has not read its exit status yet
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
