"""User servers, as a notebook's code meets them. They outlive their hub, as pods outlive a
hub pod under `helm upgrade`: a config deploy, an atomic rollback and the rollback job keep a
user's server and the state of its kernel, and the new hub adopts them; `local stop` stops them
and says how many. Run as root, each runs as a uid of its own that reads nothing of the hub,
the platform or another user; a kernel past the memory limit is killed (cgroup) or gets a
MemoryError (rlimit), its server lives on. A new server goes to its hub once it listens."""

import asyncio
import json
import os
import re
import socket
import subprocess
import threading
import time
import urllib.parse
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import psutil
import pytest
import requests
from conftest import cli, free_port, port_taken
from conftest import deploy as deploy_release

from tess_dagster.assets.resources import PlatformResource
from tess_dagster.sensors.jobs import rollback
from tess_platform.backends.local import hub_config
from tess_platform.backends.local.hub_config import machine_release_name
from tess_platform.backends.local.isolation import (
    FIRST_UID,
    memory_cgroups,
    memory_enforcement,
    uid_key,
    user_uid,
)
from tess_platform.backends.local.spawner import listening
from tess_platform.kernels import Kernel, KernelError
from tess_platform.platform import Platform
from tess_platform.releases import Release
from tess_platform.targets import DeployError, Endpoint

RELEASE = Release("tess-public", "staging")
NAME = RELEASE.name


def deploy(platform: Platform, sha: str):
    return deploy_release(platform, sha, RELEASE)


def hub_api(endpoint: Endpoint, method: str, path: str) -> requests.Response:
    headers = {"Authorization": f"token {endpoint.api_token}"}
    return requests.request(method, f"{endpoint.url}hub/api/{path}", headers=headers, timeout=30)


def ready_server(endpoint: Endpoint, user: str) -> str | None:
    """The URL of the user's server if the hub says it is ready."""
    server = hub_api(endpoint, "GET", f"users/{user}").json()["servers"].get("")
    return f"{endpoint.url.rstrip('/')}{server['url']}" if server and server["ready"] else None


def start_server(endpoint: Endpoint, user: str) -> str:
    assert hub_api(endpoint, "POST", f"users/{user}").status_code == 201
    assert hub_api(endpoint, "POST", f"users/{user}/server").status_code in (201, 202)
    deadline = time.monotonic() + 60
    while not (url := ready_server(endpoint, user)):
        assert time.monotonic() < deadline, f"{user}'s server did not start"
        time.sleep(0.25)
    return url


def limit_memory(repo, limit: str) -> None:
    repo.edit_yaml(
        "hub_config/tess-public/staging.yaml",
        lambda d: d.update(singleuser={"memory": {"limit": limit}}),
    )


def the_server(platform: Platform) -> psutil.Process:
    """The one user server of the release: of its marked processes, the one whose parent is
    not among them (a server's children carry its mark too)."""
    found = platform.target.supervisor.user_servers(NAME)
    (server,) = [p for p in found if p.ppid() not in {q.pid for q in found}]
    return server


def first_hub_log(platform: Platform) -> Path:
    """The log of the release's first hub revision."""
    return platform.target.supervisor.release_dir(NAME) / "revisions" / "1" / "hub.log"


def gone(pid: int) -> bool:
    try:  # a zombie has exited: whoever inherited it reaps it
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_users_server_and_kernel_live_through_deploys_and_rollbacks(repo, tess_env):
    platform = Platform()
    supervisor = platform.target.supervisor
    deploy(platform, repo.commit("first"))
    endpoint = platform.endpoint(RELEASE)
    url = start_server(endpoint, "ada")
    kernel = Kernel.start(url, endpoint.api_token)
    assert kernel.execute("x = 41").error is None
    processes = {p.pid for p in supervisor.user_servers(NAME)}
    assert len(processes) == 2  # the server and its kernel

    def kept(step: str) -> None:
        status = supervisor.status(NAME)
        assert status.running and status.user_servers == 1, step
        assert {p.pid for p in supervisor.user_servers(NAME)} == processes, step
        assert ready_server(endpoint, "ada") == url, step  # the new hub adopted it
        # through the new hub's proxy, into the same kernel: its state is there
        assert kernel.execute("print(x + 1)").output == "42\n", step

    repo.edit_yaml(
        "hub_config/tess-public/staging.yaml", lambda d: d.update(cull={"timeout": 1200})
    )
    deploy(platform, repo.commit("cull after 20 minutes"))
    assert supervisor.current(NAME).revision == 2
    kept("a config deploy")

    with port_taken() as port:  # revision 3 wants a port another process holds
        repo.edit_yaml(
            "hub_config/tess-public/local.yaml",
            lambda d: d["custom"]["tess"]["local"]["ports"].update(staging=port),
        )
        with pytest.raises(DeployError, match="now serving as revision 4"):
            deploy(platform, repo.commit("a port that is taken"))
    kept("an atomic rollback")

    rolled_back = rollback.execute_in_process(  # the rollback job, as an operator launches it
        run_config={"ops": {"rollback_release": {"config": {"release": NAME, "revision": 1}}}},
        resources={"platform": PlatformResource()},
    )
    assert rolled_back.success and supervisor.current(NAME).revision == 5
    kept("the rollback job")

    # the file of the hub's API port damaged: the next revision listens where ada's server
    # was told to reach its hub (its environment), not on a new port it cannot know
    api_port = supervisor.release_dir(NAME) / "hub-api-port"
    reached = api_port.read_text()
    api_port.write_text("garbage")
    repo.edit_yaml(  # the hub's own port back where it served, the culler changed
        "hub_config/tess-public/local.yaml",
        lambda d: d["custom"]["tess"]["local"]["ports"].update(
            staging=urllib.parse.urlsplit(endpoint.url).port
        ),
    )
    repo.edit_yaml(
        "hub_config/tess-public/staging.yaml", lambda d: d.update(cull={"timeout": 1500})
    )
    deploy(platform, repo.commit("cull after 25 minutes"))
    assert supervisor.current(NAME).revision == 6 and api_port.read_text() == reached
    kept("a deploy over a damaged hub-api-port")

    status = cli("local", "status")
    assert f"{NAME}: revision 6, running (pid " in status.stdout
    assert ", 1 user server, " in status.stdout, status.stdout
    stopped = cli("local", "stop", NAME)
    assert stopped.stdout == f"stopped {NAME}: its hub and 1 user server\n", stopped.stderr
    assert all(map(gone, processes))
    assert supervisor.user_servers(NAME) == []


PROBE = """
import json, os
found = {"uid": os.getuid()}
for name, path in json.loads(PATHS).items():
    try:
        os.listdir(path) if os.path.isdir(path) else open(path, "rb").read(1)
        found[name] = "read"
    except PermissionError:
        found[name] = "denied"
with open(os.path.expanduser("~/notes.txt"), "w") as notes:
    found["own home"] = notes.write("mine")
print(json.dumps(found))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="servers get uids of their own only from root")
def test_a_users_code_reads_nothing_of_the_hub_the_platform_or_another_user(repo, tess_env):
    platform = Platform()
    deploy(platform, repo.commit("first"))
    endpoint, home = platform.endpoint(RELEASE), platform.target.home
    release_dir = platform.target.supervisor.release_dir(NAME)
    bea = Kernel.start(start_server(endpoint, "bea"), endpoint.api_token)
    assert bea.execute("open('notes.txt', 'w').write('bea only')").error is None
    paths = {
        "the hub's secrets": str(release_dir / "revisions/1/secrets.json"),
        "the hub's database": str(release_dir / "state/jupyterhub.sqlite"),
        "the release's generated secrets": str(platform.target.password_file(RELEASE)),
        "TESS_LOCAL_HOME": str(home),
        "the homes of the release": str(platform.target.scratch / NAME),
        "bea's home": str(platform.target.scratch / NAME / "bea"),
        "bea's notes": str(platform.target.scratch / NAME / "bea/notes.txt"),
    }
    ada = Kernel.start(start_server(endpoint, "ada"), endpoint.api_token)
    run = ada.execute(f"PATHS = {json.dumps(json.dumps(paths))}\n{PROBE}")
    assert run.error is None
    found = json.loads(run.output)
    assert found.pop("uid") >= FIRST_UID and found.pop("own home") == 4
    assert found == dict.fromkeys(paths, "denied")
    for shared in (platform.target.efs, platform.target.scratch):  # passable, never listable
        assert shared.stat().st_mode & 0o777 == 0o711, shared
    uids = {p.username() for p in platform.target.supervisor.user_servers(NAME)}
    assert len(uids) == 2 and "root" not in uids  # a uid each: neither reads the other

    status = cli("local", "status")
    assert f"user servers: each user as an unprivileged uid of its own (from {FIRST_UID})" in (
        status.stdout
    )
    how = memory_enforcement(memory_cgroups() is not None)
    assert f"memory limit: {how}" in status.stdout

    # a process of ada's that left her server behind (a daemon: no environment, no parent of
    # hers) is not one of the release's servers, and stops with them all the same
    detach = (
        "import subprocess\n"
        "daemon = 'env -i sleep 600 > /dev/null 2>&1 & echo $!'\n"
        "print(subprocess.run(['sh', '-c', daemon], capture_output=True, text=True).stdout)"
    )
    stray = int(ada.execute(detach).output)
    servers = {p.pid for p in platform.target.supervisor.user_servers(NAME)}
    assert psutil.Process(stray).ppid() not in servers and not psutil.Process(stray).environ()
    assert platform.target.supervisor.stop(NAME) == (True, 2)
    assert gone(stray)


@pytest.mark.skipif(memory_cgroups() is None, reason="this machine makes no memory cgroups")
def test_a_kernel_past_the_memory_limit_is_killed_and_its_server_lives_on(repo, tess_env):
    limit_memory(repo, "300M")
    platform = Platform()
    outcome = deploy(platform, repo.commit("300 MB for a server and its kernels"))
    assert "singleuser.memory.limit" not in " ".join(outcome.deployed.notes)  # applied here
    endpoint = platform.endpoint(RELEASE)
    url = start_server(endpoint, "ada")
    server = the_server(platform)
    state = platform.target.supervisor.state_dir(NAME)
    group = memory_cgroups() / machine_release_name(state) / "ada"
    assert (group / "memory.limit_in_bytes").read_text() == f"{300 * 2**20}\n"
    assert str(server.pid) in (group / "cgroup.procs").read_text().split()

    kernel = Kernel.start(url, endpoint.api_token)
    assert kernel.execute("small = b'x' * (50 * 2**20)").error is None
    with pytest.raises(KernelError, match="the kernel died while running the code"):
        kernel.execute("big = b'x' * (400 * 2**20)", timeout=60)
    oom = dict(line.split() for line in (group / "memory.oom_control").read_text().splitlines())
    assert int(oom["oom_kill"]) >= 1
    assert server.is_running()  # the kernel was the one past the limit
    headers = {"Authorization": f"token {endpoint.api_token}"}
    assert requests.get(f"{url}api/status", headers=headers, timeout=30).ok
    # stopped, the release leaves no group behind: the machine's cgroups outlive the home
    assert platform.target.supervisor.stop(NAME) == (True, 1)
    assert not (memory_cgroups() / machine_release_name(state)).exists()


def test_without_memory_cgroups_each_process_of_a_server_is_held_to_the_limit(
    repo, tess_env, monkeypatch
):
    """Where the supervisor cannot make memory cgroups (not root, cgroup v2), the limit is an
    rlimit on each of a server's processes: a kernel past it gets a MemoryError and lives on,
    its variables with it; nothing lists the limit as not applied."""
    monkeypatch.setattr(hub_config, "memory_cgroups", lambda: None)  # as on such a machine
    limit_memory(repo, "300M")
    platform = Platform()
    outcome = deploy(platform, repo.commit("300 MB for each process of a server"))
    assert "singleuser.memory.limit" not in " ".join(outcome.deployed.notes)
    endpoint = platform.endpoint(RELEASE)
    url = start_server(endpoint, "ada")
    server = the_server(platform)
    limits = Path(f"/proc/{server.pid}/limits").read_text()  # prlimit needs CAP_SYS_RESOURCE
    data = re.search(r"^Max data size\s+(\S+)\s+(\S+)", limits, re.MULTILINE)
    assert data and data.groups() == (str(300 * 2**20),) * 2
    if groups := memory_cgroups():  # the machine makes them, the hub was told not to
        assert not (
            groups / machine_release_name(platform.target.supervisor.state_dir(NAME))
        ).exists()

    kernel = Kernel.start(url, endpoint.api_token)
    assert kernel.execute("small = b'x' * (50 * 2**20)").error is None
    assert kernel.execute("big = b'x' * (400 * 2**20)").error == "MemoryError: "
    assert kernel.execute("print(len(small))").output == f"{50 * 2**20}\n"
    assert server.is_running()
    assert platform.target.supervisor.stop(NAME) == (True, 1)


def test_a_check_server_not_ready_in_time_is_stopped_and_tried_again(repo, tess_env):
    """As on the aws target, where a cold node and an image pull can outlast one try: a server
    not ready in time is stopped (its pending spawn waited for) and started again; after the
    last try the check fails, saying how many, and no check server is left running."""
    from tess_platform import health

    platform = Platform()
    deploy(platform, repo.commit("first"))
    endpoint = platform.endpoint(RELEASE)
    found = health.server_checks(
        endpoint, None, spawn_timeout=0.2, kernel_timeout=10, spawn_tries=2
    )
    assert (
        found["server_spawns"].description == "tess-check's server was not ready in 0 s (2 tries)"
    )
    spawns_done = first_hub_log(platform).read_text().count("User tess-check took")
    assert spawns_done == 2  # each try's spawn finished
    assert hub_api(endpoint, "GET", "users/tess-check").json()["servers"] == {}
    assert platform.target.supervisor.status(NAME).user_servers == 0

    target = platform.target  # the local target: one try of its timeout serves
    found = health.server_checks(endpoint, None, target.spawn_timeout, 10, target.spawn_tries)
    assert found["server_spawns"].passed, found["server_spawns"].description


def _uid_of(registry: str, key: str) -> int:
    return user_uid(Path(registry), key)


def test_each_user_gets_a_uid_of_its_own_though_hubs_ask_at_once(tmp_path):
    """Hubs spawning at the same moment share one registry: no two users get one uid, a user
    keeps theirs, and the registry is private. Its keys are the machine's: the same release
    and user of two TESS_LOCAL_HOMEs are two users."""
    registry = tmp_path / "uids.json"
    homes = [tmp_path / "home-a" / "releases/tess-public-staging/state", tmp_path / "home-b"]
    keys = [uid_key(machine_release_name(h), f"user-{n}") for h in homes for n in range(4)]
    with ProcessPoolExecutor(4) as pool:
        uids = list(pool.map(_uid_of, [str(registry)] * len(keys), keys))
    assert len(set(uids)) == len(keys) and min(uids) >= FIRST_UID
    assert _uid_of(str(registry), keys[3]) == uids[3]
    assert json.loads(registry.read_text()) == dict(zip(keys, uids, strict=True))
    assert registry.stat().st_mode & 0o777 == 0o600


@pytest.mark.skipif(os.geteuid() != 0, reason="runs a process as another uid: needs root")
def test_a_lost_registry_never_gives_a_running_users_uid_again(tmp_path):
    """A registry removed or moved starts empty: the next uid is still above every uid a
    process of the machine runs as, so no new user gets a running user's files and processes."""
    running = FIRST_UID + 1000
    with subprocess.Popen(["sleep", "60"], user=running) as sleeper:
        try:
            assert _uid_of(str(tmp_path / "new-registry.json"), "x/eve") > running
        finally:
            sleeper.kill()


def test_a_server_goes_to_its_hub_once_it_listens_and_a_dead_one_at_once():
    """The spawner hands a new server to its hub once it accepts connections, so that the
    hub's first ask finds it up (its own asks come after random waits of up to seconds); for
    a server that exited, or never listens in the time allowed, the wait ends there (and the
    spawner fails the spawn, saying which)."""
    port, bound = free_port(), threading.Event()
    server = socket.socket()

    def listen_later() -> None:
        time.sleep(0.5)
        server.bind(("127.0.0.1", port))
        server.listen()
        bound.set()

    listener = threading.Thread(target=listen_later)
    listener.start()
    try:
        assert asyncio.run(listening(port, os.getpid(), lambda: None, timeout=60))
        assert bound.is_set()  # not before it listened
        # another process's socket on the port is not the server's (another hub's server)
        assert not asyncio.run(listening(port, os.getppid(), lambda: None, timeout=0.3))
    finally:
        listener.join()
        server.close()
    assert not asyncio.run(listening(free_port(), os.getpid(), lambda: 1, timeout=60))
    assert not asyncio.run(listening(free_port(), os.getpid(), lambda: None, timeout=0.3))


def test_a_server_whose_port_another_process_took_starts_on_another(repo, tess_env):
    """Each hub picks its servers' ports at random, and two hubs of one machine once picked
    the same: the second server could not bind, the spawner saw the first one's socket, and
    the hub routed its user to another hub's server (HTTP 403). Now the spawner waits for the
    server's own socket, and a server whose port was taken starts again on another."""
    with port_taken() as port:
        repo.edit_yaml(
            "hub_config/tess-public/staging.yaml",
            lambda d: d.setdefault("hub", {})
            .setdefault("config", {})
            .update({"Spawner": {"port": port}}),  # the first try: the port another holds
        )
        platform = Platform()
        deploy(platform, repo.commit("servers start on a port another process holds"))
        endpoint = platform.endpoint(RELEASE)
        url = start_server(endpoint, "ada")
        said = f"ada's server: port {port} taken by another; again"
        assert said in first_hub_log(platform).read_text()
        server = the_server(platform).net_connections("inet")
        listens = {c.laddr.port for c in server if c.status == psutil.CONN_LISTEN}
        assert listens and port not in listens
        auth = {"Authorization": f"token {endpoint.api_token}"}
        assert requests.get(f"{url}api/status", headers=auth, timeout=30).status_code == 200


def test_a_server_that_exits_at_once_fails_its_spawn_at_once_saying_so(repo, tess_env):
    """Not after the hub's own wait for an answer (http_timeout, 30 s), which would say only
    that nothing answered: the spawn fails as the server exits, with its exit status, and
    nothing of it is left running."""
    repo.edit_yaml(
        "hub_config/tess-public/staging.yaml",
        lambda d: d.setdefault("hub", {})
        .setdefault("config", {})
        .update({"Spawner": {"args": ["--ServerApp.port=not-a-port"]}}),
    )
    platform = Platform()
    deploy(platform, repo.commit("a server that cannot start"))
    endpoint = platform.endpoint(RELEASE)
    assert hub_api(endpoint, "POST", "users/ada").status_code == 201
    spawn = hub_api(endpoint, "POST", "users/ada/server")
    said = re.compile(r"ada's server on 127\.0\.0\.1:\d+ exited with status \d+ before it listened")
    assert spawn.status_code == 500, spawn.text  # JupyterHub keeps the reason to its log
    assert said.search(first_hub_log(platform).read_text())
    assert hub_api(endpoint, "GET", "users/ada").json()["servers"] == {}
    assert platform.target.supervisor.status(NAME).user_servers == 0
