"""Locks that make a second deploy wait. A thread that holds a lock and takes it again goes
on (a run's resource and one of its steps may both ask); any other thread or process waits."""

from __future__ import annotations

import fcntl
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

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


def file_lock(path: Path, on_wait=None) -> AbstractContextManager[None]:
    """An exclusive lock on `path` across processes; `on_wait()` is called if it must wait."""
    return reentrant(f"file:{path}", lambda: _flock(path, on_wait))


@contextmanager
def _flock(path: Path, on_wait) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait:
                on_wait()
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
