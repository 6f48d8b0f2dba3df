"""The local "cluster": runs each release as a real JupyterHub process on 127.0.0.1.

It keeps helm's semantics. Every upgrade is a numbered revision under the state folder; the
new revision starts, and if it does not become healthy the previous one is put back as a new
revision ("rollback to N"), as `helm upgrade --atomic` does. Hub processes run in their own
session, so they outlive the Dagster run that started them.

It survives the faults an operator meets: an operation killed midway leaves a pending-*
revision, which the next operation marks failed (as helm's recovery does); a hub killed alone
leaves its proxy and services running, which are found by their environment and stopped; a
state file that cannot be read is a StateFileError naming it and what to do.
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
import urllib.parse
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import requests

from ...files import write_file
from ...locks import file_lock, lock_held
from ...values import canonical_sha256
from .hub_config import USER_SERVER_MARK, HubConfig, machine_release_name, user_server_mark
from .hub_env import hub_environment
from .isolation import UID_REGISTRY, memory_cgroups, remove_cgroup, runs_as_root, uids_of
from .ports import port_free

CONFIG_FILE = Path(__file__).with_name("jupyterhub_config.py")
DEPLOYED, SUPERSEDED, FAILED = "deployed", "superseded", "failed"
INSTALLING, UPGRADING, ROLLING_BACK = "pending-install", "pending-upgrade", "pending-rollback"
PENDING = {INSTALLING: "Install", UPGRADING: "Upgrade", ROLLING_BACK: "Rollback"}
SERVED = (DEPLOYED, SUPERSEDED)  # the revisions that were healthy once
UNREADABLE = "unreadable"  # a revision whose revision.json cannot be read
REVISION_FILES = {"config.json": 0o644, "secrets.json": 0o600}  # what a hub starts from
START_ATTEMPTS = 3  # a hub whose freshly picked port was taken as it bound it starts again
PORT_TAKEN = "address already in use"  # as Python and Node say it, lowercased


class SupervisorError(RuntimeError):
    pass


class StateFileError(SupervisorError):
    """A state file that cannot be read: the message names it and what to do, never what
    it holds (it may hold secrets)."""

    def __init__(self, path: Path, problem: str, remedy: str) -> None:
        super().__init__(f"{path}: {problem}; {remedy}")


def read_state_file(path: Path, remedy: str) -> dict[str, Any]:
    """A JSON object the supervisor wrote, or StateFileError telling the operator `remedy`."""
    try:
        data = json.loads(path.read_bytes())
    except json.JSONDecodeError as e:  # its message quotes no content, only where
        problem = f"not valid JSON (line {e.lineno}, column {e.colno})"
    except UnicodeDecodeError:
        problem = "not text"
    except OSError as e:
        problem = e.strerror or type(e).__name__
    else:
        if isinstance(data, dict):
            return data
        problem = "not a JSON object"
    raise StateFileError(path, problem, remedy)


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
class Hub:
    """A running hub process and the revision it was started from."""

    proc: psutil.Process
    revision: int


@dataclass
class HubStatus:
    release: str
    revision: int | None
    running: bool
    pid: int | None
    url: str | None
    user_servers: int = 0
    problem: str | None = None  # a damaged state file the status was read without


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _write(path: Path, data: Any, mode: int = 0o644) -> None:
    write_file(path, json.dumps(data, indent=2, sort_keys=True), mode)


def _write_revision(folder: Path, files: dict[str, Any]) -> None:
    """A new revision's folder with what its hub starts from, each file with its mode."""
    folder.mkdir(parents=True)
    for name, mode in REVISION_FILES.items():
        _write(folder / name, files[name], mode)


class Supervisor:
    def __init__(self, home: Path, start_timeout: float = 60.0) -> None:
        self.home = home
        self.start_timeout = start_timeout

    # -- layout ----------------------------------------------------------------------------
    @property
    def releases_dir(self) -> Path:
        return self.home / "releases"

    def release_dir(self, release: str) -> Path:
        return self.releases_dir / release

    def state_dir(self, release: str) -> Path:
        return self.release_dir(release) / "state"

    def _revision_dir(self, release: str, n: int) -> Path:
        return self.release_dir(release) / "revisions" / str(n)

    def releases(self) -> list[str]:
        root = self.releases_dir
        return sorted(p.name for p in root.iterdir()) if root.is_dir() else []

    # -- history ---------------------------------------------------------------------------
    def _revision_folders(self, release: str) -> list[Path]:
        """Revision folders, oldest first; also those whose record was never written."""
        root = self.release_dir(release) / "revisions"
        if not root.is_dir():
            return []
        return sorted((p for p in root.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))

    def _next_number(self, release: str) -> int:
        # by folder: one an operation killed before its record was written stays taken
        folders = self._revision_folders(release)
        return int(folders[-1].name) + 1 if folders else 1

    def _load(self, release: str, folder: Path) -> Revision:
        path = folder / "revision.json"
        remedy = (
            f"restore it from a backup, or remove the folder {folder} to forget revision "
            f"{folder.name}; then deploy again or run `tess-platform local start {release}`"
        )
        data = read_state_file(path, remedy)
        try:
            rev = Revision(**data)
        except TypeError:
            raise StateFileError(path, "not a revision record", remedy) from None
        if (rev.release, rev.revision) != (release, int(folder.name)):
            raise StateFileError(path, f"not the record of revision {folder.name}", remedy)
        return rev

    def history(self, release: str) -> list[Revision]:
        """Every revision, oldest first. An unreadable record older than a revision that has
        served was superseded or failed then, so nothing needs it: it is listed as
        `unreadable`, the error as its description. A newer one may be what serves: that is
        an error to resolve."""
        revisions, unreadable = [], {}
        for folder in self._revision_folders(release):
            if not (folder / "revision.json").exists():
                continue  # an operation killed before its record: it never started a hub
            try:
                revisions.append(self._load(release, folder))
            except StateFileError as e:
                unreadable[int(folder.name)] = e
        served = max((r.revision for r in revisions if r.status in SERVED), default=0)
        if newer := [n for n in unreadable if n > served]:
            raise unreadable[newer[-1]]
        revisions += [Revision(release, n, UNREADABLE, str(e), 0) for n, e in unreadable.items()]
        return sorted(revisions, key=lambda r: r.revision)

    def current(self, release: str) -> Revision | None:
        deployed = [r for r in self.history(release) if r.status == DEPLOYED]
        return deployed[-1] if deployed else None

    def _save(self, rev: Revision) -> None:
        rev.updated = _now()
        # 0600: the record holds hashes of the values, secrets included
        _write(self._revision_dir(rev.release, rev.revision) / "revision.json", asdict(rev), 0o600)

    def _settle(self, rev: Revision) -> None:
        """`rev` deployed, every other revision superseded, as helm keeps one deployed. In
        this order: killed in between, the newest deployed one still counts as current."""
        rev.status = DEPLOYED
        self._save(rev)
        for old in self.history(rev.release):
            if old.status == DEPLOYED and old.revision != rev.revision:
                old.status = SUPERSEDED
                self._save(old)

    # -- operations ------------------------------------------------------------------------
    def _lockfile(self, release: str) -> Path:
        return self.release_dir(release) / ".lock"

    def lock(self, release: str, log=print):
        """One operation on a release at a time, across processes; a second waits."""
        return file_lock(
            self._lockfile(release),
            on_takeover=lambda pid: log(f"{release}: took over the lock of dead process {pid}"),
        )

    def _recover(self, release: str, log) -> None:
        """Under the release lock no other operation runs, so a pending revision is one whose
        operation died. As helm's recovery: it is marked failed, and a hub that runs another
        revision than the deployed one is stopped; the operation then goes on as usual."""
        for rev in self.history(release):
            if rev.status in PENDING:
                log(
                    f"{release}: revision {rev.revision} was left {rev.status} by an "
                    "interrupted operation; marking it failed"
                )
                rev.status, rev.description = FAILED, f"{PENDING[rev.status]} interrupted"
                self._save(rev)
        hub, current = self._hub(release), self.current(release)
        if hub and (current is None or hub.revision != current.revision):
            log(f"{release}: stopping the hub of revision {hub.revision}, which is not deployed")
            self.stop_hub(release, log=log)

    def upgrade(self, release: str, hub: HubConfig, record: dict[str, Any], log=print) -> Revision:
        """Install or upgrade: start the new revision; put the previous one back if it fails."""
        with self.lock(release, log):
            self._recover(release, log)
            previous = self.current(release)
            n = self._next_number(release)
            rev = Revision(
                release,
                n,
                UPGRADING if previous else INSTALLING,
                "Upgrade complete" if previous else "Install complete",
                hub.port,
                record,
                config_sha256=canonical_sha256(hub.config),
            )
            files = {"config.json": hub.config, "secrets.json": hub.secrets}
            _write_revision(self._revision_dir(release, n), files)
            self._save(rev)
            self.stop_hub(release, log=log)
            log(f"{release}: starting revision {n} on {rev.url}")
            try:
                self._start(rev, log)
            except SupervisorError as e:
                self.stop_hub(release, log=log)
                rev.status, rev.description = FAILED, f"Upgrade failed: {e}"
                self._save(rev)
                if previous is None:
                    raise SupervisorError(f"{release}: revision {n} failed to start: {e}") from None
                files = self._files(previous, "the previous revision cannot be put back")
                back = self._restore(previous, files, n + 1, log)
                raise SupervisorError(
                    f"{release}: revision {n} failed to start ({e}); rolled back to revision "
                    f"{previous.revision}, now serving as revision {back.revision}"
                ) from None
            self._settle(rev)
            log(f"{release}: revision {n} deployed and healthy")
            return rev

    def rollback(self, release: str, to_revision: int, log=print) -> Revision:
        with self.lock(release, log):
            source, files = self._restorable(release, to_revision)  # before anything stops
            self._recover(release, log)
            self.stop_hub(release, log=log)
            return self._restore(source, files, self._next_number(release), log)

    def _restorable(self, release: str, to_revision: int) -> tuple[Revision, dict[str, Any]]:
        """The revision to roll back to and its files, or why it cannot be one: asked before
        anything stops, so that a refused rollback leaves the serving hub as it was."""
        history = {r.revision: r for r in self.history(release)}
        served = [str(n) for n, r in history.items() if r.status in SERVED]
        choose = f"choose one of {', '.join(served)}" if served else "none has served"
        source = history.get(to_revision)
        if source is None:
            raise SupervisorError(f"{release}: no revision {to_revision} in its history; {choose}")
        if source.status == UNREADABLE:
            raise SupervisorError(f"{release}: revision {to_revision}: {source.description}")
        if source.status not in SERVED:
            raise SupervisorError(
                f"{release}: revision {to_revision} never served ({source.status}); {choose}"
            )
        return source, self._files(source, f"revision {to_revision} cannot be restored; {choose}")

    def _files(self, rev: Revision, remedy: str) -> dict[str, Any]:
        folder = self._revision_dir(rev.release, rev.revision)
        return {name: read_state_file(folder / name, remedy) for name in REVISION_FILES}

    def _restore(self, source: Revision, files: dict[str, Any], n: int, log) -> Revision:
        release = source.release
        _write_revision(self._revision_dir(release, n), files)
        rev = Revision(
            release,
            n,
            ROLLING_BACK,
            f"Rollback to {source.revision}",
            source.port,
            source.record,
            config_sha256=source.config_sha256,
        )
        self._save(rev)
        log(f"{release}: restoring revision {source.revision} as revision {n}")
        try:
            self._start(rev, log)
        except SupervisorError as e:
            self.stop_hub(release, log=log)
            rev.status, rev.description = FAILED, f"Rollback failed: {e}"
            self._save(rev)
            raise SupervisorError(f"{release}: revision {n} failed to start: {e}") from None
        self._settle(rev)
        return rev

    def start(self, release: str, log=print) -> Revision:
        """Start the current revision again (after `local stop` or a reboot)."""
        with self.lock(release, log):
            self._recover(release, log)
            rev = self.current(release)
            if rev is None:
                raise SupervisorError(f"{release}: nothing deployed yet")
            hub, damaged = self._find_hub(release)
            if hub is None:
                self.stop_hub(release, log=log)  # what a hub killed alone left holds its port
                self._start(rev, log)
            elif damaged:  # the hub was found by its processes: hub.pid names it again
                self._record_hub(release, hub.proc.pid, hub.revision)
                log(f"{release}: {self._pidfile(release)} written anew: hub pid {hub.proc.pid}")
            return rev

    # -- processes -------------------------------------------------------------------------
    def _pidfile(self, release: str) -> Path:
        return self.release_dir(release) / "hub.pid"

    def _record_hub(self, release: str, pid: int, revision: int) -> None:
        """hub.pid: the hub's pid and the revision it runs (after an interrupted deploy, which
        one serves is not the deployed one)."""
        _write(self._pidfile(release), {"pid": pid, "revision": revision})

    def _hub(self, release: str) -> Hub | None:
        return self._find_hub(release)[0]

    def _find_hub(self, release: str) -> tuple[Hub | None, str | None]:
        """The hub process hub.pid names, if it runs the revision hub.pid names; and what is
        wrong with hub.pid if it cannot be read (a disk full, a kill mid-write): then the one
        hub among the release's processes, found by the revision each was started from."""
        path = self._pidfile(release)
        if not path.exists():  # stopped, or never started
            return None, None
        rewritten = f"`tess-platform local start {release}` writes it anew (the hub keeps running)"
        try:
            recorded = read_state_file(path, rewritten)
            return self._running(release, int(recorded["pid"]), int(recorded["revision"])), None
        except StateFileError as e:
            problem = str(e)
        except (KeyError, TypeError, ValueError):
            problem = f"{path}: no pid and revision in it; {rewritten}"
        hubs = []
        for proc in self._processes(release):
            name = Path((proc.info["environ"] or {}).get("TESS_HUB_REVISION", "")).name
            if name.isdigit() and (hub := self._running(release, proc.pid, int(name))):
                hubs.append(hub)
        return (hubs[0] if len(hubs) == 1 else None), problem

    def _running(self, release: str, pid: int, revision: int) -> Hub | None:
        """The hub of `release` started from `revision` that runs as `pid`, if it does."""
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(pid)
            if (
                proc.status() != psutil.STATUS_ZOMBIE
                and str(CONFIG_FILE) in proc.cmdline()
                and proc.environ().get("TESS_HUB_REVISION")
                == str(self._revision_dir(release, revision))
            ):
                return Hub(proc, revision)
        return None

    def running(self, release: str) -> bool:
        return self._hub(release) is not None

    def _processes(self, release: str) -> list[psutil.Process]:
        """Every process of this release's hubs, by what it inherited: the hub and its proxy
        carry TESS_HUB_REVISION; hub services (the idle culler) get a clean environment but
        run in the release's state folder. User servers outlive hubs: not among them."""
        revisions, state = self.release_dir(release) / "revisions", str(self.state_dir(release))
        found = []
        # attributes it may not read (another user's process) come as None
        for proc in psutil.process_iter(["environ", "cwd", "name"]):
            env = proc.info["environ"] or {}
            revision = env.get("TESS_HUB_REVISION")
            if (revision and Path(revision).parent == revisions) or (
                "JUPYTERHUB_SERVICE_NAME" in env and proc.info["cwd"] == state
            ):
                found.append(proc)
        return found

    def user_servers(self, release: str) -> list[psutil.Process]:
        """The release's running user servers and their kernels, by the mark the hub gives
        them; servers first (a kernel's parent is its server)."""
        mark, found = user_server_mark(self.state_dir(release)), []
        for proc in psutil.process_iter(["environ", "ppid"]):
            if (proc.info["environ"] or {}).get(USER_SERVER_MARK) == mark and _alive(proc):
                found.append(proc)
        pids = {p.pid for p in found}
        return sorted(found, key=lambda p: p.info["ppid"] in pids)

    def _run_as_users(self, release: str) -> list[psutil.Process]:
        """The processes running as the uids of the release's users (run as root, each user
        has a uid of their own; otherwise they run as this user: none is theirs alone)."""
        if not runs_as_root():
            return []
        uids = uids_of(UID_REGISTRY, machine_release_name(self.state_dir(release)))
        found = psutil.process_iter(["uids"])
        return [p for p in found if p.info["uids"] and p.info["uids"].real in uids]

    def stop_user_servers(self, release: str, timeout: float = 15.0) -> int:
        """Stop the release's user servers (each stops its kernels) as a pod's deletion does;
        how many there were."""
        procs = self.user_servers(release)
        servers = _servers(procs)
        for p in servers:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.terminate()
        for p in _wait_gone(procs, timeout):
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()
        # what a user's code started apart from their server (without its environment, and so
        # without its mark) still runs as the user's uid: it goes with the server
        strays = self._run_as_users(release)
        for p in strays:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()
        _wait_gone(strays, timeout)
        if groups := memory_cgroups():
            remove_cgroup(groups / machine_release_name(self.state_dir(release)))
        return len(servers)

    def stop(self, release: str, log=print) -> tuple[bool, int]:
        """Stop the release's hub and its user servers: whether a hub ran, how many servers."""
        return self.stop_hub(release, log=log), self.stop_user_servers(release)

    def drift(self, release: str) -> str | None:
        """How the release differs from what was deployed; None when it does not, or while an
        operation on it runs (its state is not at rest)."""
        if lock_held(self._lockfile(release)):
            return None
        history = self.history(release)
        if pending := [r for r in history if r.status in PENDING]:
            what = "a rollback" if pending[-1].status == ROLLING_BACK else "a deploy"
            return (
                f"revision {pending[-1].revision} is {pending[-1].status}: {what} was interrupted"
            )
        deployed = [r for r in history if r.status == DEPLOYED]
        if not deployed:
            return None
        rev, hub = deployed[-1], self._hub(release)
        if hub is None:
            return f"the hub process of revision {rev.revision} is not running"
        if hub.revision != rev.revision:
            return (
                f"the hub serving is revision {hub.revision}, not the deployed revision "
                f"{rev.revision}"
            )
        folder = self._revision_dir(release, rev.revision)
        try:
            config = read_state_file(
                folder / "config.json", "restore it, or deploy again: a new revision writes its own"
            )
        except StateFileError as e:
            return str(e)
        if canonical_sha256(config) != rev.config_sha256:
            return f"revision {rev.revision}'s config.json was edited outside the pipeline"
        return None

    def status(self, release: str) -> HubStatus:
        """The revision whose hub runs (after an interrupted deploy it may not be the
        deployed one: drift says so), else the deployed revision."""
        history, (hub, problem) = self.history(release), self._find_hub(release)
        serving = [r for r in history if hub and r.revision == hub.revision]
        rev = (serving or [r for r in history if r.status == DEPLOYED] or [None])[-1]
        return HubStatus(
            release,
            rev.revision if rev else None,
            hub is not None,
            hub.proc.pid if hub else None,
            rev.url if rev else None,
            len(_servers(self.user_servers(release))),
            problem,
        )

    def _hub_api_port(self, release: str, log) -> int:
        """The port of the hub's API, the same for every revision: user servers outlive their
        hub and reach the next one there."""
        path = self.release_dir(release) / "hub-api-port"
        try:
            port: int | None = int(path.read_text())
            if not 0 < port < 65536:
                raise ValueError(port)
        except FileNotFoundError:  # the release's first start
            port = None
        except (OSError, ValueError):
            port = None
            log(f"{path}: not a port number; the port running user servers reach, else a new one")
        if port is not None and port_free(port):
            return port  # as it was: no look at the processes
        servers = self.user_servers(release)
        if port is None and (port := _api_port_reached(servers)) and port_free(port):
            write_file(path, str(port))
            return port
        if port is not None and servers:
            log(
                f"{release}: the hub's API port {port} is taken by another process; user "
                "servers started before cannot reach the new hub: restart them"
            )
        port = _free_port()
        write_file(path, str(port))
        return port

    def _start(self, rev: Revision, log) -> None:
        if not port_free(rev.port):
            raise SupervisorError(f"port {rev.port} on 127.0.0.1 is taken by {_holder(rev.port)}")
        folder = self._revision_dir(rev.release, rev.revision)
        state = self.state_dir(rev.release)
        state.mkdir(parents=True, exist_ok=True)
        hub_log = folder / "hub.log"
        for attempt in range(1, START_ATTEMPTS + 1):
            offset = hub_log.stat().st_size if hub_log.exists() else 0
            proc = self._launch(rev, folder, state, hub_log, log)
            if self._healthy_before_exit(proc, rev.url, hub_log):
                return
            with open(hub_log, "rb") as f:
                f.seek(offset)
                said = f.read().decode(errors="replace")
            # its API ports are picked free and bound a moment later: on a busy machine a
            # user server or a kernel may take one first, and a new pick serves
            if PORT_TAKEN in said.lower() and attempt < START_ATTEMPTS:
                log(f"{rev.release}: a port the hub picked was taken as it started; again")
                continue
            raise SupervisorError(
                f"the hub exited with code {proc.returncode}; last log lines:\n{_tail(hub_log)}"
            )

    def _launch(self, rev: Revision, folder: Path, state: Path, hub_log: Path, log) -> psutil.Popen:
        # an allow-list: the proxy, services and user servers inherit from it
        env = hub_environment(
            os.environ,
            bin_dir=str(Path(sys.executable).parent),
            revision=str(folder),
            hub_api_port=self._hub_api_port(rev.release, log),
            proxy_api_port=_free_port(),
        )
        with open(hub_log, "ab") as out:
            proc = psutil.Popen(
                [sys.executable, "-m", f"{__package__}.hub_main", "-f", str(CONFIG_FILE)],
                cwd=state,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
            )
        # the revision too: after an interrupted deploy, which one serves is not the deployed
        self._record_hub(rev.release, proc.pid, rev.revision)
        _STARTED[proc.pid] = proc  # ours to reap if it ends while this process lives
        return proc

    def _healthy_before_exit(self, proc: psutil.Popen, url: str, hub_log: Path) -> bool:
        """True once the hub answers healthy; False if it exits first. Raises if it does
        neither within the start timeout."""
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return False
            if _healthy(url):
                return True
            time.sleep(0.1)
        raise SupervisorError(
            f"the hub was not healthy within {self.start_timeout:.0f} s; "
            f"last log lines:\n{_tail(hub_log)}"
        )

    def stop_hub(self, release: str, timeout: float = 15.0, log=print) -> bool:
        """Stop the release's hub and what it started but user servers, and what a hub killed
        alone left running (its proxy holds the port): any process of this release, never
        another's."""
        hub, servers = self._hub(release), self.user_servers(release)
        family = [hub.proc, *hub.proc.children(recursive=True)] if hub else []
        family = [p for p in family if p not in servers]  # they outlive the hub
        orphans = [p for p in self._processes(release) if p not in family]
        if orphans:
            found = ", ".join(f"{p.info['name']} (pid {p.pid})" for p in orphans)
            log(f"{release}: stopping processes a hub that is gone left running: {found}")
        if hub:
            os.killpg(hub.proc.pid, signal.SIGTERM)  # the hub stops its proxy and user servers
        for p in orphans:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.terminate()
        alive = _wait_gone(family + orphans, timeout)
        for p in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()
        _wait_gone(alive, 5)
        if hub and (started := _STARTED.pop(hub.proc.pid, None)) is not None:
            started.poll()  # reaped: no zombie, no "still running" at exit
        self._pidfile(release).unlink(missing_ok=True)
        return bool(family or orphans)

    def uninstall(self, release: str, log=print) -> Path:
        """Stop the release's hub and user servers and set its folder aside (its revisions,
        for the record); where it went. User homes are not in it."""
        with self.lock(release, log):
            self.stop(release, log=log)
            kept = self.home / "uninstalled" / f"{release}-{time.strftime('%Y%m%dT%H%M%S')}"
            kept.parent.mkdir(parents=True, exist_ok=True)
            self.release_dir(release).rename(kept)
        return kept

    def stop_all(self) -> list[str]:
        return [r for r in self.releases() if any(self.stop(r))]


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


def _api_port_reached(procs: list[psutil.Process]) -> int | None:
    """The port of the hub's API that running user servers were given (their environment)."""
    for proc in procs:
        with contextlib.suppress(psutil.Error, ValueError):
            url = proc.environ().get("JUPYTERHUB_API_URL", "")
            if port := urllib.parse.urlsplit(url).port:
                return port
    return None


def _servers(procs: list[psutil.Process]) -> list[psutil.Process]:
    """The user servers among a release's processes: those whose parent is not one of them
    (the others are their kernels)."""
    pids = {p.pid for p in procs}
    return [p for p in procs if p.info["ppid"] not in pids]


def _alive(proc: psutil.Process) -> bool:
    try:
        if proc.status() == psutil.STATUS_ZOMBIE:
            # a process whose main thread has ended shows as a zombie while its other threads
            # still exit, holding its sockets (a stopped proxy's port): gone once they are too
            if proc.num_threads() > 1:
                return True
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


def _holder(port: int) -> str:
    """Which process listens on `port`: its name and pid (never its command line, which may
    hold another program's secrets)."""
    for conn in psutil.net_connections(kind="tcp"):
        if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN:
            with contextlib.suppress(psutil.Error, ValueError):
                return f"another process: {psutil.Process(conn.pid).name()} (pid {conn.pid})"
            return "another process"
    return "another process (none listens now: it may have just ended)"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"
