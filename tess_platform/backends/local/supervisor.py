"""The local "cluster": runs each release as a real JupyterHub process on 127.0.0.1.

It keeps helm's semantics. Every upgrade is a numbered revision under the state folder; the
new revision starts, and if it does not become healthy the previous one is put back as a new
revision ("rollback to N"), as `helm upgrade --atomic` does. Hub processes run in their own
session, so they outlive the Dagster run that started them.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import requests

from ...locks import file_lock
from ...values import canonical_sha256
from .hub_config import HubConfig

CONFIG_FILE = Path(__file__).with_name("jupyterhub_config.py")
DEPLOYED, SUPERSEDED, FAILED = "deployed", "superseded", "failed"


class SupervisorError(RuntimeError):
    pass


@dataclass
class Revision:
    release: str
    revision: int
    status: str
    description: str
    port: int
    record: dict[str, Any] = field(default_factory=dict)  # what the pipeline deployed
    updated: str = ""
    config_sha256: str = ""  # of config.json as written: an edit by hand shows as drift

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"


@dataclass
class HubStatus:
    release: str
    revision: int | None
    running: bool
    pid: int | None
    url: str | None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _write(path: Path, data: Any, mode: int = 0o644) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    os.fchmod(fd, mode)  # before any content: a leftover tmp may have had another mode
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2, sort_keys=True)
    tmp.replace(path)


class Supervisor:
    def __init__(self, home: Path, start_timeout: float = 60.0) -> None:
        self.home = home
        self.start_timeout = start_timeout

    # -- layout ----------------------------------------------------------------------------
    def release_dir(self, release: str) -> Path:
        return self.home / "releases" / release

    def state_dir(self, release: str) -> Path:
        return self.release_dir(release) / "state"

    def _revision_dir(self, release: str, n: int) -> Path:
        return self.release_dir(release) / "revisions" / str(n)

    def releases(self) -> list[str]:
        root = self.home / "releases"
        return sorted(p.name for p in root.iterdir()) if root.is_dir() else []

    # -- history ---------------------------------------------------------------------------
    def history(self, release: str) -> list[Revision]:
        root = self.release_dir(release) / "revisions"
        if not root.is_dir():
            return []
        out = [
            Revision(**json.loads((p / "revision.json").read_text()))
            for p in root.iterdir()
            if (p / "revision.json").exists()
        ]
        return sorted(out, key=lambda r: r.revision)

    def current(self, release: str) -> Revision | None:
        deployed = [r for r in self.history(release) if r.status == DEPLOYED]
        return deployed[-1] if deployed else None

    def _save(self, rev: Revision) -> None:
        rev.updated = _now()
        # 0600: the record holds hashes of the values, secrets included
        _write(self._revision_dir(rev.release, rev.revision) / "revision.json", asdict(rev), 0o600)

    # -- operations ------------------------------------------------------------------------
    def lock(self, release: str):
        """One operation on a release at a time, across processes; a second waits."""
        return file_lock(self.release_dir(release) / ".lock")

    def upgrade(self, release: str, hub: HubConfig, record: dict[str, Any], log=print) -> Revision:
        """Install or upgrade: start the new revision; put the previous one back if it fails."""
        with self.lock(release):
            history = self.history(release)
            previous = self.current(release)
            n = history[-1].revision + 1 if history else 1
            rev = Revision(
                release,
                n,
                "pending-upgrade" if previous else "pending-install",
                "Upgrade complete" if previous else "Install complete",
                hub.port,
                record,
                config_sha256=canonical_sha256(hub.config),
            )
            folder = self._revision_dir(release, n)
            folder.mkdir(parents=True)
            _write(folder / "config.json", hub.config)
            _write(folder / "secrets.json", hub.secrets, mode=0o600)
            self._save(rev)
            self.stop_hub(release)
            log(f"{release}: starting revision {n} on {rev.url}")
            try:
                self._start(rev)
            except SupervisorError as e:
                self.stop_hub(release)
                rev.status, rev.description = FAILED, f"Upgrade failed: {e}"
                self._save(rev)
                if previous is None:
                    raise SupervisorError(f"{release}: revision {n} failed to start: {e}") from None
                back = self._restore(release, previous, n + 1, log)
                raise SupervisorError(
                    f"{release}: revision {n} failed to start ({e}); rolled back to revision "
                    f"{previous.revision}, now serving as revision {back.revision}"
                ) from None
            if previous:
                previous.status = SUPERSEDED
                self._save(previous)
            rev.status = DEPLOYED
            self._save(rev)
            log(f"{release}: revision {n} deployed and healthy")
            return rev

    def rollback(self, release: str, to_revision: int, log=print) -> Revision:
        with self.lock(release):
            history = {r.revision: r for r in self.history(release)}
            if to_revision not in history:
                raise SupervisorError(
                    f"{release}: no revision {to_revision} in its history "
                    f"(has {sorted(history) or 'none'})"
                )
            self.stop_hub(release)
            return self._restore(release, history[to_revision], max(history) + 1, log)

    def _restore(self, release: str, source: Revision, n: int, log) -> Revision:
        src, dst = self._revision_dir(release, source.revision), self._revision_dir(release, n)
        dst.mkdir(parents=True)
        for name, mode in (("config.json", 0o644), ("secrets.json", 0o600)):
            _write(dst / name, json.loads((src / name).read_text()), mode)
        rev = Revision(
            release,
            n,
            "pending-rollback",
            f"Rollback to {source.revision}",
            source.port,
            source.record,
            config_sha256=source.config_sha256,
        )
        self._save(rev)
        log(f"{release}: restoring revision {source.revision} as revision {n}")
        self._start(rev)
        for old in self.history(release):  # as helm: one deployed revision, the rest superseded
            if old.status == DEPLOYED:
                old.status = SUPERSEDED
                self._save(old)
        rev.status = DEPLOYED
        self._save(rev)
        return rev

    def start(self, release: str, log=print) -> Revision:
        """Start the current revision again (after `local stop` or a reboot)."""
        with self.lock(release):
            rev = self.current(release)
            if rev is None:
                raise SupervisorError(f"{release}: nothing deployed yet")
            if not self._running(release):
                self._start(rev)
                log(f"{release}: revision {rev.revision} started on {rev.url}")
            return rev

    # -- processes -------------------------------------------------------------------------
    def _pidfile(self, release: str) -> Path:
        return self.release_dir(release) / "hub.pid"

    def _running(self, release: str) -> psutil.Process | None:
        try:
            pid = int(self._pidfile(release).read_text())
            proc = psutil.Process(pid)
            if (
                proc.is_running()
                and proc.status() != psutil.STATUS_ZOMBIE
                and str(CONFIG_FILE) in proc.cmdline()
            ):
                return proc
        except (FileNotFoundError, ValueError, psutil.Error):
            pass
        return None

    def drift(self, release: str) -> str | None:
        """How the current revision differs from what was deployed; None when it does not."""
        rev = self.current(release)
        if rev is None:
            return None
        if self._running(release) is None:
            return f"the hub process of revision {rev.revision} is not running"
        config = json.loads((self._revision_dir(release, rev.revision) / "config.json").read_text())
        if canonical_sha256(config) != rev.config_sha256:
            return f"revision {rev.revision}'s config.json was edited outside the pipeline"
        return None

    def status(self, release: str) -> HubStatus:
        rev, proc = self.current(release), self._running(release)
        return HubStatus(
            release,
            rev.revision if rev else None,
            proc is not None,
            proc.pid if proc else None,
            rev.url if rev else None,
        )

    def _start(self, rev: Revision) -> None:
        if not _port_free(rev.port):
            raise SupervisorError(f"port {rev.port} on 127.0.0.1 is taken by another process")
        folder = self._revision_dir(rev.release, rev.revision)
        state = self.state_dir(rev.release)
        state.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "TESS_HUB_REVISION": str(folder),
            "TESS_HUB_API_PORT": str(_free_port()),
            "TESS_PROXY_API_PORT": str(_free_port()),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        env.pop("JUPYTERHUB_API_TOKEN", None)
        with open(folder / "hub.log", "ab") as out:
            proc = psutil.Popen(
                [sys.executable, "-m", "jupyterhub", "-f", str(CONFIG_FILE)],
                cwd=state,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
            )
        self._pidfile(rev.release).write_text(str(proc.pid))
        _STARTED[proc.pid] = proc  # ours to reap if it ends while this process lives
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SupervisorError(
                    f"the hub exited with code {proc.returncode}; "
                    f"last log lines:\n{_tail(folder / 'hub.log')}"
                )
            if _healthy(rev.url):
                return
            time.sleep(0.1)
        raise SupervisorError(
            f"the hub was not healthy within {self.start_timeout:.0f} s; "
            f"last log lines:\n{_tail(folder / 'hub.log')}"
        )

    def stop_hub(self, release: str, timeout: float = 15.0) -> bool:
        proc = self._running(release)
        if proc is None:
            self._pidfile(release).unlink(missing_ok=True)
            return False
        family = [proc, *proc.children(recursive=True)]
        os.killpg(proc.pid, signal.SIGTERM)  # the hub stops its proxy and user servers
        alive = _wait_gone(family, timeout)
        for p in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()
        _wait_gone(alive, 5)
        if (started := _STARTED.pop(proc.pid, None)) is not None:
            started.poll()  # reaped: no zombie, no "still running" at exit
        self._pidfile(release).unlink(missing_ok=True)
        return True

    def stop_all(self) -> list[str]:
        return [r for r in self.releases() if self.stop_hub(r)]


# hubs this process started: hubs outlive it, but while it lives it reaps those that exit
_STARTED: dict[int, psutil.Popen] = {}


def _wait_gone(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until the processes have exited; those still alive after `timeout`. A zombie has
    exited: its parent (the process that started it, maybe this one) reaps it later."""
    deadline = time.monotonic() + timeout
    while True:
        alive = [p for p in procs if _alive(p)]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.05)


def _alive(proc: psutil.Process) -> bool:
    try:
        if proc.status() == psutil.STATUS_ZOMBIE:
            with contextlib.suppress(psutil.Error, ChildProcessError):
                proc.wait(0)  # reap it if it is ours
            return False
        return proc.is_running()
    except psutil.NoSuchProcess:
        return False


def _healthy(url: str) -> bool:
    try:
        return requests.get(url + "hub/health", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the proxy binds it
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"
