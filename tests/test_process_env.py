"""Nothing of the platform's environment reaches a hub's processes: the hub, its proxy, its
idle culler and a user server (which runs code for anonymous visitors) are started from a real
deploy whose parent environment holds the key to every secret and AWS credentials; none of
their environments or command lines holds any of it."""

import contextlib
import re
import time
from pathlib import Path

import psutil
import pytest
import requests
from conftest import PLANTED, deploy, export_key, hub_processes

from tess_platform import health
from tess_platform.backends.local import hub_main
from tess_platform.backends.local.hub_config import USER_SERVER_MARK as MARK
from tess_platform.backends.local.hub_env import hub_environment
from tess_platform.platform import Platform
from tess_platform.releases import Release

RELEASE = Release("tess-public", "staging")
USER = "visitor"
FORBIDDEN_PREFIXES = ("AWS_", "DAGSTER_")  # besides TESS_GIT_CRYPT_KEY


@pytest.fixture
def planted(tess_env, repo, tmp_path, monkeypatch) -> dict[str, str]:
    """An operator's environment: a real git-crypt key, AWS credentials, Dagster's home."""
    env = {
        "TESS_GIT_CRYPT_KEY": export_key(repo, tmp_path / "key"),
        "AWS_ACCESS_KEY_ID": f"AKIA-{PLANTED}",
        "AWS_SECRET_ACCESS_KEY": PLANTED,
        "AWS_SESSION_TOKEN": f"session-{PLANTED}",
        "DAGSTER_HOME": str(tmp_path / f"dagster-{PLANTED}"),
        "OPERATOR_TOKEN": f"operator-{PLANTED}",  # anything else of the operator's
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def test_the_hub_environment_is_an_allow_list():
    parent = {
        "PATH": "/usr/bin:/bin",
        "HOME": "/home/ops",
        "LANG": "C.UTF-8",
        "LC_TIME": "en_GB.UTF-8",
        "TZ": "Europe/Paris",
        "TMPDIR": "/scratch/tmp",
        "TESS_GIT_CRYPT_KEY": PLANTED,
        "TESS_REPO": "/srv/repo",
        "AWS_SECRET_ACCESS_KEY": PLANTED,
        "DAGSTER_HOME": "/srv/dagster",
        "JUPYTERHUB_API_TOKEN": PLANTED,  # a supervisor run from a user server
        "PYTHONPATH": "/home/ops/lib",
        "SSH_AUTH_SOCK": "/run/ssh",
    }
    env = hub_environment(
        parent, bin_dir="/venv/bin", revision="/rev/1", hub_api_port=1, proxy_api_port=2
    )
    assert env == {
        "PATH": "/venv/bin:/usr/bin:/bin",
        "HOME": "/home/ops",
        "LANG": "C.UTF-8",
        "LC_TIME": "en_GB.UTF-8",
        "TZ": "Europe/Paris",
        "TMPDIR": "/scratch/tmp",
        "TESS_HUB_REVISION": "/rev/1",
        "TESS_HUB_API_PORT": "1",
        "TESS_PROXY_API_PORT": "2",
    }


def api(endpoint, method: str, path: str) -> requests.Response:
    return requests.request(
        method,
        f"{endpoint.url}hub/api/{path}",
        headers={"Authorization": f"token {endpoint.api_token}"},
        timeout=30,
    )


def start_server(endpoint) -> dict:
    assert api(endpoint, "POST", f"users/{USER}").status_code == 201
    assert api(endpoint, "POST", f"users/{USER}/server").status_code in (201, 202)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        server = api(endpoint, "GET", f"users/{USER}").json()["servers"].get("")
        if server and server.get("ready"):
            return server
        time.sleep(0.2)
    raise AssertionError(f"{USER}'s server was not ready in 60 s")


def stop_server(endpoint) -> None:
    api(endpoint, "DELETE", f"users/{USER}/server")
    deadline = time.monotonic() + 30
    while api(endpoint, "GET", f"users/{USER}").json()["servers"]:
        assert time.monotonic() < deadline, f"{USER}'s server did not stop in 30 s"
        time.sleep(0.2)


def role(proc: psutil.Process) -> str:
    cmdline = proc.cmdline()
    if cmdline[1:3] == ["-m", hub_main.__name__]:
        return "hub"
    return Path(cmdline[1] if Path(cmdline[0]).name.startswith("python") else cmdline[0]).name


def read_alive(procs) -> dict[psutil.Process, tuple[str, dict[str, str], list[str]]]:
    """Each process's role, environment and command line, of those still alive: a short-lived
    child (a server asking node for its registry) may be gone between listing and reading."""
    seen = {}
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            seen[proc] = (role(proc), proc.environ(), proc.cmdline())
    return seen


def test_hub_proxy_culler_and_user_server_inherit_nothing_of_the_platform(repo, planted):
    platform = Platform()
    deploy(platform, repo.commit("the platform"), RELEASE)
    endpoint = platform.endpoint(RELEASE)
    server = start_server(endpoint)
    try:
        hub = psutil.Process(platform.target.supervisor.status(RELEASE.name).pid)
        # the proxy and services run in sessions of their own: found by the hub's children
        # and, as the supervisor and conftest find them, by environment and folder
        procs = {hub, *hub.children(recursive=True), *hub_processes(platform.target.home)}
        seen = read_alive(procs)
        found = {name: proc for proc, (name, _, _) in seen.items()}
        assert {"hub", "configurable-http-proxy", "jupyterhub-idle-culler"} <= set(found)
        assert "jupyterhub-singleuser" in found, sorted(found)

        for proc, (name, env, cmdline) in seen.items():
            # /proc/<pid>/environ and cmdline as they are, keys and values
            raw = "\0".join([*cmdline, *(f"{k}={v}" for k, v in env.items())])
            for key, value in planted.items():
                assert value not in raw, f"{name} (pid {proc.pid}) holds the value of {key}"
            assert "TESS_GIT_CRYPT_KEY" not in env, name
            assert not [k for k in env if k.startswith(FORBIDDEN_PREFIXES)], name
            assert "OPERATOR_TOKEN" not in env, name
        # what is not the hub's own runs with no TESS_* setting at all, but the user server's
        # opaque mark, which names no folder
        for name, allowed in [("jupyterhub-idle-culler", []), ("jupyterhub-singleuser", [MARK])]:
            env = found[name].environ()
            assert [k for k in env if k.startswith("TESS_")] == allowed, name
        assert re.fullmatch("[0-9a-f]{16}", found["jupyterhub-singleuser"].environ()[MARK])

        # and the hub works: healthy, and the visitor's server answers
        assert health.hub_healthy(endpoint).passed
        status = requests.get(
            f"{endpoint.url.rstrip('/')}{server['url']}api/status",
            headers={"Authorization": f"token {endpoint.api_token}"},
            timeout=30,
        )
        assert status.status_code == 200
    finally:
        stop_server(endpoint)
