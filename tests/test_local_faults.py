"""Faults the local target survives: a deploy killed midway, a hub killed alone, state files
cut short or edited by hand, a rollback to a revision that cannot serve, a lock whose holder
died. Each is provoked for real; then what an operator sees is checked, and that the next
operation completes with one healthy hub and nothing left over."""

import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest
import requests
from conftest import PLANTED, hub_processes, port_taken
from conftest import deploy as deploy_release

from tess_platform.backends.local.supervisor import StateFileError
from tess_platform.cli import _release_line
from tess_platform.locks import OrphanedError, file_lock, lock_held
from tess_platform.platform import Platform
from tess_platform.releases import Release
from tess_platform.targets import DeployError

RELEASE = Release("tess-public", "staging")
NAME = RELEASE.name


@pytest.fixture
def platform(tess_env) -> Platform:
    return Platform()


def deploy(platform: Platform, sha: str, log=print):
    return deploy_release(platform, sha, RELEASE, log)


def commit_change(repo, timeout: int) -> str:
    """A commit that changes the release (its culler's timeout), so that it deploys anew."""
    repo.edit_yaml(
        "hub_config/tess-public/staging.yaml", lambda d: d.update(cull={"timeout": timeout})
    )
    return repo.commit(f"cull after {timeout} s")


def wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"waited {timeout} s in vain"
        time.sleep(0.05)


def healthy(url: str) -> bool:
    try:
        return requests.get(url + "hub/health", timeout=2).ok
    except requests.RequestException:
        return False


def statuses(supervisor) -> list[tuple[int, str]]:
    return [(r.revision, r.status) for r in supervisor.history(NAME)]


def assert_serving(supervisor, revision: int, besides: tuple = ()) -> None:
    """`revision` serves, healthy, as status and history say; its hub is the only process of
    the state folder (`besides` aside) and no operation holds the lock."""
    status = supervisor.status(NAME)
    assert (status.revision, status.running) == (revision, True)
    assert supervisor.current(NAME).revision == revision
    assert supervisor.drift(NAME) is None
    assert requests.get(status.url + "hub/health", timeout=10).ok
    hub = psutil.Process(status.pid)
    assert set(hub_processes(supervisor.home)) - set(besides) <= {hub, *hub.children(True)}
    assert not lock_held(supervisor.release_dir(NAME) / ".lock")


def kill_hub(supervisor) -> list[psutil.Process]:
    """SIGKILL the hub alone, as the OOM killer would; what it had started."""
    hub = psutil.Process(supervisor.status(NAME).pid)
    children = hub.children(recursive=True)
    hub.send_signal(signal.SIGKILL)
    hub.wait(10)  # this process started it: reaped
    return children


def text_of(path: Path) -> str:
    try:  # a deploy removes hub.pid while it stops the old hub
        return path.read_text()
    except FileNotFoundError:
        return ""


def cut_short(path: Path) -> None:
    path.write_text(path.read_text()[:9])


def test_a_deploy_killed_while_its_hub_starts_is_recovered_by_the_next(repo, platform):
    supervisor = platform.target.supervisor
    first = repo.commit("first")
    deploy(platform, first)
    second = commit_change(repo, 700)

    # the deploying process is killed once revision 2's hub is started, before it is healthy
    child = multiprocessing.get_context("fork").Process(target=deploy, args=(Platform(), second))
    child.start()
    pidfile = supervisor.release_dir(NAME) / "hub.pid"
    wait_for(lambda: '"revision": 2' in text_of(pidfile))
    child.kill()
    child.join()
    assert statuses(supervisor) == [(1, "deployed"), (2, "pending-upgrade")]

    # revision 2's hub comes up alone: status says it serves, drift that a deploy died
    url = supervisor.current(NAME).url
    wait_for(lambda: healthy(url))
    status = supervisor.status(NAME)
    assert (status.revision, status.running) == (2, True)
    assert supervisor.drift(NAME) == "revision 2 is pending-upgrade: a deploy was interrupted"
    assert platform.target.serving(RELEASE) is None  # so the deploy of `first` is not skipped

    log: list[str] = []
    assert deploy(platform, first, log.append).deployed.revision == 3
    assert f"{NAME}: took over the lock of dead process {child.pid}" in log
    assert (
        f"{NAME}: revision 2 was left pending-upgrade by an interrupted operation; "
        "marking it failed"
    ) in log
    assert statuses(supervisor) == [(1, "superseded"), (2, "failed"), (3, "deployed")]
    assert supervisor.history(NAME)[1].description == "Upgrade interrupted"
    assert supervisor.current(NAME).record["git_sha"] == first
    assert_serving(supervisor, 3)


def test_a_hub_killed_alone_leaves_nothing_in_the_way_of_start_and_deploy(repo, platform):
    supervisor = platform.target.supervisor
    deploy(platform, repo.commit("first"))
    home = supervisor.home
    decoys = [  # processes that look alike but are not this release's hub: they stay
        subprocess.Popen(
            ["sleep", "120"],
            env={"TESS_HUB_REVISION": str(home / "releases/tess-private-staging/revisions/1")},
        ),
        subprocess.Popen(["sleep", "120"], cwd=supervisor.state_dir(NAME)),  # an operator's
    ]
    besides = {psutil.Process(d.pid) for d in decoys}
    try:
        left = kill_hub(supervisor)
        assert sorted(Path(p.cmdline()[1]).name for p in left) == [
            "configurable-http-proxy",
            "jupyterhub-idle-culler",
        ]
        status = supervisor.status(NAME)
        assert (status.revision, status.running) == (1, False)
        assert supervisor.drift(NAME) == "the hub process of revision 1 is not running"

        log: list[str] = []
        assert supervisor.start(NAME, log=log.append).revision == 1
        (stopped,) = [line for line in log if "a hub that is gone left running" in line]
        assert all(f"(pid {p.pid})" in stopped for p in left)
        assert not any(p.is_running() for p in left)
        assert_serving(supervisor, 1, besides=besides)

        left = kill_hub(supervisor)
        assert deploy(platform, commit_change(repo, 700)).deployed.revision == 2
        assert not any(p.is_running() for p in left)
        assert_serving(supervisor, 2, besides=besides)
        assert [d.poll() for d in decoys] == [None, None]
    finally:
        for decoy in decoys:
            decoy.kill()
            decoy.wait()


def test_a_hub_whose_picked_port_was_taken_as_it_bound_it_starts_again(repo, platform, monkeypatch):
    """The hub's API port is picked free and bound a moment later: another process (a kernel,
    a user server) that takes it in between makes the hub exit; the deploy starts it again
    on a new pick and serves, saying so."""
    from tess_platform.backends.local import supervisor as supervisor_module

    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    taken = holder.getsockname()[1]
    picks = iter([taken])  # the first pick is the hub's API port, taken before the hub binds
    pick = supervisor_module._free_port
    monkeypatch.setattr(supervisor_module, "_free_port", lambda: next(picks, None) or pick())
    log: list[str] = []
    try:
        assert deploy(platform, repo.commit("first"), log=log.append).deployed.revision == 1
    finally:
        holder.close()
    assert [line for line in log if "was taken as it started" in line] == [
        f"{NAME}: a port the hub picked was taken as it started; again"
    ]
    assert "restart them" not in "\n".join(log)  # no user server could have been cut off
    hub_log = platform.target.supervisor.release_dir(NAME) / "revisions/1/hub.log"
    assert "Address already in use" in hub_log.read_text()
    assert_serving(platform.target.supervisor, 1)


def test_a_release_port_another_process_listens_on_is_named_with_that_process(repo, platform):
    port = platform.values(
        platform.tree(platform.repo.snapshot(repo.commit("first"))), RELEASE, None
    ).merged.values["custom"]["tess"]["local"]["ports"]["staging"]
    with socket.socket() as held:
        held.bind(("127.0.0.1", port))
        held.listen()
        with pytest.raises(DeployError) as failed:
            deploy(platform, repo.commit("again"))
    me = psutil.Process()
    assert f"port {port} on 127.0.0.1 is taken by another process: {me.name()} (pid {me.pid})" in (
        str(failed.value)
    )
    assert " ".join(me.cmdline()) not in str(failed.value)  # a command line may hold secrets


# a process whose main thread ends first, while another still holds its listening socket
_MAIN_ENDS_FIRST = """
import ctypes, socket, threading, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen()
print(s.getsockname()[1], flush=True)
threading.Thread(target=time.sleep, args=(2,)).start()
ctypes.CDLL(None).pthread_exit(None)
"""


def test_a_process_is_gone_only_when_all_its_threads_are():
    """A stopped proxy's main thread may end before its other thread: the kernel shows the
    process as a zombie while that thread still holds the release's port. The supervisor
    waits for it (once seen in CI: the next hub found its port taken)."""
    from tess_platform.backends.local.ports import port_free
    from tess_platform.backends.local.supervisor import _alive

    proc = subprocess.Popen([sys.executable, "-c", _MAIN_ENDS_FIRST], stdout=subprocess.PIPE)
    port = int(proc.stdout.readline())
    seen = psutil.Process(proc.pid)
    wait_for(lambda: seen.status() == psutil.STATUS_ZOMBIE, timeout=10)
    assert _alive(seen) and not port_free(port)
    proc.wait(10)
    assert not _alive(seen) and port_free(port)


def test_unreadable_state_files_are_named_and_the_next_deploy_completes(repo, platform):
    supervisor = platform.target.supervisor
    deploy(platform, repo.commit("first"))
    sha = commit_change(repo, 700)
    deploy(platform, sha)
    folder = supervisor.release_dir(NAME)

    # a superseded revision's record and hub.pid cut short: listed, and the running hub found
    # by its processes, the file named
    old_record, pidfile = folder / "revisions/1/revision.json", folder / "hub.pid"
    cut_short(old_record)
    cut_short(pidfile)
    status = supervisor.status(NAME)
    assert (status.revision, status.running) == (2, True)
    assert status.problem.startswith(f"{pidfile}: not valid JSON (line ")
    assert f"running (pid {status.pid})" in _release_line(status)
    assert f"\n  {status.problem}" in _release_line(status)  # `local status` names it too
    assert status.problem.endswith(
        f"; `tess-platform local start {NAME}` writes it anew (the hub keeps running)"
    )
    old = supervisor.history(NAME)[0]
    assert (old.revision, old.status) == (1, "unreadable")
    assert old.description.startswith(f"{old_record}: not valid JSON (line ")
    assert supervisor.drift(NAME) is None  # what runs is what was deployed
    log: list[str] = []
    supervisor.start(NAME, log=log.append)  # as it says: the same hub, named again
    assert log == [f"{NAME}: {pidfile} written anew: hub pid {status.pid}"]
    assert (supervisor.status(NAME).pid, supervisor.status(NAME).problem) == (status.pid, None)
    cut_short(pidfile)  # again: a deploy stops the hub it finds by its processes
    log.clear()
    sha = commit_change(repo, 800)
    assert deploy(platform, sha, log.append).deployed.revision == 3
    assert not any("a hub that is gone left running" in line for line in log)
    assert_serving(supervisor, 3)
    assert supervisor.status(NAME).problem is None

    # the serving revision's config.json cut short: drift names it (the staging sensor
    # redeploys drift); then its record too: it may be what serves, so every reader stops
    config, record = folder / "revisions/3/config.json", folder / "revisions/3/revision.json"
    cut_short(config)
    drift = supervisor.drift(NAME)
    assert drift.startswith(f"{config}: not valid JSON (line ")
    assert drift.endswith("; restore it, or deploy again: a new revision writes its own")
    cut_short(record)
    for look in (supervisor.status, supervisor.drift, lambda _: deploy(platform, sha)):
        with pytest.raises(StateFileError) as error:
            look(NAME)
        assert str(error.value).startswith(f"{record}: not valid JSON (line ")
        assert str(error.value).endswith(
            f"; restore it from a backup, or remove the folder {record.parent} to forget "
            f"revision 3; then deploy again or run `tess-platform local start {NAME}`"
        )
    shutil.rmtree(record.parent)  # as it says: its hub is stopped, the release installed anew
    assert deploy(platform, sha).deployed.description == "Install complete"
    assert_serving(supervisor, 3)

    # the local secrets cut short: named, never shown; removed, new ones are generated
    secrets = platform.target.password_file(RELEASE)
    secrets.write_text('{"proxy": {"secretToken": "' + PLANTED)
    with pytest.raises(StateFileError) as error:
        deploy(platform, sha)
    assert str(error.value).startswith(f"{secrets}: not valid JSON (line ")
    assert PLANTED not in str(error.value)
    secrets.unlink()
    assert deploy(platform, sha).deployed.revision == 4
    assert_serving(supervisor, 4)


def test_a_rollback_to_a_revision_that_cannot_serve_leaves_the_hub_serving(repo, platform):
    supervisor = platform.target.supervisor
    deploy(platform, repo.commit("first"))
    with port_taken() as port:  # revision 2 wants a port another process holds
        repo.edit_yaml(
            "hub_config/tess-public/local.yaml",
            lambda d: d["custom"]["tess"]["local"]["ports"].update(staging=port),
        )
        with pytest.raises(DeployError, match="now serving as revision 3"):
            deploy(platform, repo.commit("a port that is taken"))
    assert statuses(supervisor) == [(1, "superseded"), (2, "failed"), (3, "deployed")]
    serving = supervisor.status(NAME).pid

    secrets = supervisor.release_dir(NAME) / "revisions/1/secrets.json"
    secrets.unlink()
    choose = "choose one of 1, 3"
    for revision, refusal in [
        (2, f"{NAME}: revision 2 never served (failed); {choose}"),
        (7, f"{NAME}: no revision 7 in its history; {choose}"),
        (1, f"{secrets}: No such file or directory; revision 1 cannot be restored; {choose}"),
    ]:
        with pytest.raises(DeployError) as error:
            platform.target.rollback(RELEASE, revision, log=print)
        assert str(error.value) == refusal
        assert supervisor.status(NAME).pid == serving
        assert_serving(supervisor, 3)

    assert platform.target.rollback(RELEASE, 3, log=print).revision == 4
    assert supervisor.history(NAME)[-1].description == "Rollback to 3"
    assert_serving(supervisor, 4)


def _hold(path: Path, held) -> None:
    with file_lock(path):
        held.set()
        time.sleep(120)


def test_a_lock_whose_holder_was_killed_is_taken_over_without_waiting(tmp_path):
    path = tmp_path / "release.lock"
    context = multiprocessing.get_context("fork")
    held = context.Event()
    holder = context.Process(target=_hold, args=(path, held))
    holder.start()
    assert held.wait(10) and lock_held(path)
    os.kill(holder.pid, signal.SIGKILL)
    holder.join()
    assert not lock_held(path)  # the kernel freed it; the file still names the dead holder

    waited, took = [], []
    with file_lock(path, on_wait=lambda: waited.append(True), on_takeover=took.append):
        assert lock_held(path)
    assert (waited, took) == ([], [holder.pid])
    with file_lock(path, on_takeover=took.append):  # released in order: nothing to take over
        pass
    assert took == [holder.pid]


def _hold_for(path: Path, owner: str, entered, waited=None) -> None:
    with file_lock(path, on_wait=waited.set if waited else None, owner=owner):
        entered.set()
        time.sleep(120)


def _ends_within(proc: psutil.Process, seconds: float) -> bool:
    """Whether `proc` dies within `seconds` (a zombie has died: its reaper may be slow)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.1)
    return False


def _hold_and_fork_step(path: Path, owner: str, entered, step_entered, step_pid) -> None:
    """A run worker as the executor is one: its step forked while it holds the lock."""
    with file_lock(path, owner=owner):
        entered.set()
        step = multiprocessing.get_context("fork").Process(
            target=_hold_for, args=(path, owner, step_entered)
        )
        step.start()
        step_pid.value = step.pid
        time.sleep(120)


@pytest.mark.parametrize("forked_by_worker", [True, False], ids=["forked", "beside"])
def test_the_steps_of_the_run_holding_a_lock_go_on_and_end_with_its_worker(
    tmp_path, forked_by_worker
):
    """A run worker holds its environment's lock; its steps, each a process of its own (forked
    by the worker as it holds the lock, or started beside it by a fork server), go on under
    it, another run waits, and the steps die with the worker (kill -9)."""
    path = tmp_path / "staging.lock"
    context = multiprocessing.get_context("fork")
    events = [context.Event() for _ in range(4)]
    step_pid = context.Value("i", 0)
    if forked_by_worker:
        worker = context.Process(
            target=_hold_and_fork_step, args=(path, "run-1", events[0], events[1], step_pid)
        )
        worker.start()
        assert events[0].wait(10)
    else:
        worker = context.Process(target=_hold_for, args=(path, "run-1", events[0]))
        worker.start()
        assert events[0].wait(10)
        step = context.Process(target=_hold_for, args=(path, "run-1", events[1]))
        step.start()
        step_pid.value = step.pid
    assert events[1].wait(10)  # granted: its run holds the lock
    other = context.Process(target=_hold_for, args=(path, "run-2", events[2], events[3]))
    other.start()
    assert events[3].wait(10) and not events[2].is_set()  # another run waits
    step = psutil.Process(step_pid.value)
    os.kill(worker.pid, signal.SIGKILL)
    assert _ends_within(step, 10)  # ended with its worker, within seconds
    assert events[2].wait(10)  # the waiting run now holds it
    other.kill()
    for proc in (worker, other):
        proc.join()


def test_a_step_of_a_run_whose_worker_died_stops_and_the_next_run_takes_over(tmp_path):
    path = tmp_path / "staging.lock"
    context = multiprocessing.get_context("fork")
    entered = context.Event()
    worker = context.Process(target=_hold_for, args=(path, "run-1", entered))
    worker.start()
    assert entered.wait(10)
    os.kill(worker.pid, signal.SIGKILL)
    worker.join()
    with pytest.raises(OrphanedError, match=f"pid {worker.pid}"), file_lock(path, owner="run-1"):
        pass  # a step of the dead run, started late: it must not take the lock and go on
    took = []
    with file_lock(path, on_takeover=took.append, owner="run-2"):
        pass
    assert took == [worker.pid]  # the record still named the dead worker


@pytest.mark.parametrize("blocked", ["efs", "releases"])
def test_a_file_where_a_state_folder_belongs_fails_the_infra_step_naming_it(
    repo, platform, blocked
):
    """The homes folder, or the hubs' state folder, is a file (an operator's stray copy): the
    infra step fails saying which path and what to do, no traceback, the file untouched;
    moved away, the next materialization makes the folder."""
    from dagster import DagsterEventType, DagsterInstance, materialize

    from tess_dagster.assets.infra import infra
    from tess_dagster.assets.resources import PlatformResource

    path = platform.settings.local_home / blocked
    path.parent.mkdir(parents=True)
    path.write_text("not a folder\n")
    sha = repo.commit("a tree for infra")

    def materialize_infra():
        with DagsterInstance.ephemeral() as instance:
            return materialize(
                [infra],
                resources={"platform": PlatformResource()},
                instance=instance,
                tags={"tess/git_sha": sha},
                raise_on_error=False,
            )

    result = materialize_infra()
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE]
    message = failure.event_specific_data.error.message
    assert f"{path}: cannot be the folder of" in message
    assert "move what is in the way, or set TESS_LOCAL_HOME" in message
    assert "No hub was deployed" in message and "Traceback" not in message
    assert path.read_text() == "not a folder\n"

    path.unlink()
    assert materialize_infra().success
    assert path.is_dir()


@pytest.mark.skipif(os.geteuid() != 0, reason="tries the folder as another uid: needs root")
def test_a_state_folder_this_user_cannot_write_is_named_not_a_traceback():
    """A folder a run as root left 0700 fails an operator's own run clearly: tried as an
    unprivileged uid, in a child process."""
    from tess_platform.backends.local.target import _folder

    # a state folder open to all, where pytest's own folders are not: only `releases` is closed
    home = Path(tempfile.mkdtemp(prefix="tess-home-"))
    home.chmod(0o777)
    folder = home / "releases"
    folder.mkdir(mode=0o700)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: nobody's uid, then the check; what it raised, through the pipe
        os.close(read)
        said = "no error"
        try:
            os.setuid(65534)
            _folder(folder, "the hubs' state")
        except DeployError as e:
            said = str(e)
        finally:
            os.write(write, said.encode())
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as pipe:
        said = pipe.read()
    shutil.rmtree(home)
    assert said == (
        f"{folder}: cannot be the folder of the hubs' state (not writable by this user); move "
        "what is in the way, or set TESS_LOCAL_HOME to a folder this user can write"
    )
