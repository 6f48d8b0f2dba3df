"""Shared fixtures: a real git repository as TESS_REPO, a state folder, the chart files,
and the guarantee that every hub a test started is stopped again."""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import psutil
import pytest
import yaml

from tess_platform.chart import JUPYTERHUB, chart_files

ROOT = Path(__file__).resolve().parent.parent
CHART_DIR = Path(  # the whole chart: helm template renders it
    os.environ.get("TESS_CHART_DIR") or ROOT.parent / "shared" / "z2jh" / "chart" / "jupyterhub"
)
PLANTED = "planted-secret-4f1d9c2b7e"  # a secret that must never show anywhere

# Built user environments, kept by content tag for every test and run (a virtualenv is a minute
# of pip): a test repository's own small image spec is built once, the shipped one once. In the
# temporary folder, which user servers run as uids of their own can reach wherever the checkout is.
os.environ["TESS_USER_ENVS"] = str(Path(tempfile.gettempdir()) / "tess-platform-user-envs")
# The test repositories' image: the shipped spec's form, with only what a hub's JupyterLab
# and a kernel need (the versions the shipped spec pins).
TEST_IMAGE = {
    "runtime.txt": "python-3.11\n",
    "requirements.txt": "jupyterhub==5.5.4\njupyterlab==4.3.4\nipykernel==7.4.0\n",
}
# ... and their kernel_runs smoke test, for that image: no science stack in it
TEST_SMOKE = "import statistics\nassert statistics.median([3, 1, 2]) == 2\nprint('median 2')\n"


# a secrets file of tess-private holding the planted secret
PLANTED_VALUES = {
    "hub": {
        "config": {
            "GitHubOAuthenticator": {
                "client_id": "tess-client",
                "client_secret": PLANTED,
                "oauth_callback_url": "https://staging.private.tess.example.org/hub/oauth_callback",
            }
        }
    }
}


def cli(*args: str, cwd: Path | None = None, env: dict | None = None):
    """`tess-platform ARGS` as an operator runs it (the test's environment, or `env` over it)."""
    return subprocess.run(
        [sys.executable, "-m", "tess_platform.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


def run(*cmd: str, cwd: Path | None = None, **kw) -> str:
    return subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True, **kw).stdout


def _ports():
    """Ports below the kernel's ephemeral range, a slice of them for each test worker: no
    outgoing connection, port-0 bind or other worker takes one in the minutes between a test
    picking it and a hub binding it (a restarting hub leaves its port free for a moment). Each
    checkout starts at a place of its own in the slice: two test runs on one machine (a fresh
    clone's CI beside a working copy's) do not reach for the same ports first."""
    ephemeral = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    slice_ = (int(ephemeral[0]) - 10000) // 4
    base, start = 10000 + worker % 4 * slice_, zlib.crc32(str(ROOT).encode()) % slice_
    yield from (base + (start + n) % slice_ for n in range(slice_))


_PORTS = _ports()


def free_port() -> int:
    for port in _PORTS:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port left in this worker's slice")


@contextlib.contextmanager
def port_taken():
    """A port another process holds while the block runs."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port := free_port()))
        taken.listen()
        yield port


class GitRepo:
    """A real repository holding the platform's tree, as an operator's would."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def git(self, *args: str) -> str:
        return run("git", *args, cwd=self.path)

    def write(self, relpath: str, content: str | bytes | dict) -> None:
        path = self.path / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content if isinstance(content, str) else yaml.safe_dump(content))

    def read_yaml(self, relpath: str) -> dict:
        return yaml.safe_load((self.path / relpath).read_text()) or {}

    def edit_yaml(self, relpath: str, change) -> None:
        data = self.read_yaml(relpath)
        change(data)
        self.write(relpath, data)

    def commit(self, message: str, branch: str | None = "staging") -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        sha = self.git("rev-parse", "HEAD").strip()
        if branch and self.git("branch", "--show-current").strip() != branch:
            self.git("branch", "-f", branch, sha)
        return sha


def make_repo(path: Path, ports: dict[str, dict[str, int]] | None = None) -> GitRepo:
    """A repository with the checkout's hub_config/ and infra/, a small image/, git-crypt
    initialised."""
    path.mkdir(parents=True)
    repo = GitRepo(path)
    repo.git("init", "-q", "-b", "main")
    repo.git("config", "user.email", "ops@tess.test")
    repo.git("config", "user.name", "TESS Ops")
    shutil.copytree(ROOT / "hub_config", path / "hub_config")
    shutil.copytree(ROOT / "infra", path / "infra", ignore=shutil.ignore_patterns(".terraform*"))
    for name, text in TEST_IMAGE.items():
        repo.write(f"image/{name}", text)
    shutil.copy(ROOT / "image" / "postBuild", path / "image" / "postBuild")
    repo.write("checks/smoke_test.py", TEST_SMOKE)
    shutil.copy(ROOT / ".gitattributes", path / ".gitattributes")
    for deployment, by_env in (ports or {}).items():
        repo.edit_yaml(
            f"hub_config/{deployment}/local.yaml",
            lambda d, p=by_env: d["custom"]["tess"]["local"].update(ports=p),
        )
    run("git-crypt", "init", cwd=path)
    repo.commit("the platform", branch=None)
    return repo


def add_hub(repo: GitRepo, name: str, ports: dict[str, int], homes: str = "none") -> None:
    """A hub folder like a workshop's: anyone gets in, homes as `homes` (a storage type)."""
    repo.write(
        f"hub_config/{name}/common.yaml",
        f"custom:\n  tess:\n    domain: {name}.tess.example.org\n"
        "hub:\n  config:\n    JupyterHub:\n      authenticator_class: tmp\n"
        "    Authenticator:\n      allow_all: true\n"
        f"singleuser:\n  storage:\n    type: {homes}\n",
    )
    for env in ("staging", "prod"):
        repo.write(f"hub_config/{name}/{env}.yaml", "{}\n")
    repo.write(f"hub_config/{name}/local.yaml", {"custom": {"tess": {"local": {"ports": ports}}}})


def deploy(platform, sha: str, release, log=print):
    """Deploy `release` at `sha` as a staging run does: its image (environment) first."""
    snapshot = platform.repo.snapshot(sha)
    image, _ = platform.target.ensure_image(snapshot, log)
    return platform.deploy(snapshot, release, image, log)


def export_key(repo: GitRepo, dest: Path) -> str:
    run("git-crypt", "export-key", str(dest), cwd=repo.path)
    return base64.b64encode(dest.read_bytes()).decode()


@pytest.fixture(scope="module")
def moto_url():
    """moto's server on 127.0.0.1: the AWS APIs, with no AWS."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def postgres_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if not found:
        raise RuntimeError("PostgreSQL is not installed: run `bash .ci/setup`")
    return found[-1].parent


@pytest.fixture(scope="module")
def postgres(tmp_path_factory) -> str:
    """A real PostgreSQL server of the module's own on 127.0.0.1, any password accepted (trust);
    its URL without a password. Run as the `postgres` user when the tests run as root (the
    server refuses root)."""
    data = passable(tmp_path_factory.mktemp("postgres")) / "data"
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_user:
        data.parent.chmod(0o777)
    pg, port = postgres_bin(), free_port()
    run(*as_user, str(pg / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust")
    run(
        *as_user,
        str(pg / "pg_ctl"),
        "-D",
        str(data),
        "-l",
        str(data / "server.log"),
        "-o",
        f"-p {port} -k {data} -c listen_addresses=127.0.0.1",
        "-w",
        "start",
    )
    run(
        *as_user,
        str(pg / "createdb"),
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-U",
        "postgres",
        "dagster",
    )
    yield f"postgresql://postgres@127.0.0.1:{port}/dagster"
    run(*as_user, str(pg / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")


# a value the chart schema refuses, and how `validate` names it
UID_NOT_AN_INTEGER = (
    "FAIL tess-private-prod: tess-private-prod: the values do not pass the chart schema:"
    "\n  hub_config/tess-private/prod.yaml: singleuser.uid: must be of type integer or null"
)


def break_uid(repo: GitRepo) -> None:
    repo.edit_yaml(
        "hub_config/tess-private/prod.yaml", lambda d: d.update(singleuser={"uid": "jovyan"})
    )


@pytest.fixture
def no_aws(monkeypatch, tmp_path) -> None:
    """The aws target on a machine with nothing of AWS: no credentials, profile or role."""
    for name in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance role to ask
    monkeypatch.setenv("TESS_TARGET", "aws")


@pytest.fixture
def chart():
    return chart_files(JUPYTERHUB, CHART_DIR, CHART_DIR)


@pytest.fixture
def ports() -> dict[str, dict[str, int]]:
    return {
        d: {"staging": free_port(), "prod": free_port()} for d in ("tess-public", "tess-private")
    }


@pytest.fixture
def repo(tmp_path: Path, ports) -> GitRepo:
    return make_repo(tmp_path / "repo", ports)


def passable(path: Path) -> Path:
    """`path`, with the folders pytest made on the way to it open for others to pass through
    (not to list): run as root, the supervisor runs user servers as uids of their own, whose
    homes are below."""
    temp = Path(tempfile.gettempdir())
    for folder in [*reversed(path.parents), path]:
        if folder.is_relative_to(temp) and folder != temp and folder.is_dir():
            folder.chmod(folder.stat().st_mode | 0o001)
    return path


@pytest.fixture
def tess_env(tmp_path: Path, repo: GitRepo, monkeypatch) -> dict[str, str]:
    """TESS_* pointed at temporary folders and the test's repository; hubs stopped after."""
    passable(tmp_path)
    env = {
        "TESS_TARGET": "local",
        "TESS_REPO": str(repo.path),
        "TESS_LOCAL_HOME": str(tmp_path / "home"),
        "TESS_CACHE": str(tmp_path / "cache"),
        "TESS_CHART_DIR": str(CHART_DIR),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("TESS_GIT_CRYPT_KEY", raising=False)
    yield env
    stop_everything(Path(env["TESS_LOCAL_HOME"]))


def hub_processes(home: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter():
        try:  # hubs and proxies carry the revision in their environment; user servers run
            # in their home folder
            ours = proc.environ().get("TESS_HUB_REVISION", "").startswith(str(home)) or (
                proc.cwd().startswith(str(home))
            )
        except psutil.Error:
            continue
        if ours:
            found.append(proc)
    return found


def stop_everything(home: Path) -> None:
    from tess_platform.backends.local.supervisor import Supervisor

    Supervisor(home).stop_all()
    left = hub_processes(home)
    for proc in left:
        proc.kill()
    assert not left, f"processes left running after the test: {left}"


class Site:
    """A repository, a state folder and a Dagster instance: one operator's platform."""

    def __init__(self, tmp: Path, secrets: dict | None = None) -> None:
        from dagster import DagsterInstance

        self.ports = {
            d: {"staging": free_port(), "prod": free_port()}
            for d in ("tess-public", "tess-private")
        }
        self.repo = make_repo(passable(tmp) / "repo", self.ports)
        for relpath, content in (secrets or {}).items():
            self.repo.write(relpath, content)
        self.repo.commit("the platform, on staging")
        self.home = tmp / "home"
        self.env = {
            "TESS_TARGET": "local",
            "TESS_REPO": str(self.repo.path),
            "TESS_LOCAL_HOME": str(self.home),
            "TESS_CACHE": str(tmp / "cache"),
            "TESS_CHART_DIR": str(CHART_DIR),
            "TESS_GIT_CRYPT_KEY": export_key(self.repo, tmp / "key"),
        }
        (tmp / "dagster").mkdir()
        self.dagster_home = tmp / "dagster"
        self.instance = DagsterInstance.local_temp(str(self.dagster_home))

    def defs(self):
        """The code location as it loads now for this site's repository (a reload)."""
        from tess_dagster.definitions import assemble
        from tess_platform.platform import branch_hubs
        from tess_platform.settings import Settings

        settings = Settings.from_env(self.env)
        return assemble(branch_hubs(settings), settings)

    def run(self, job: str, tags: dict | None = None, **kw):
        return (
            self.defs()
            .resolve_job_def(job)
            .execute_in_process(instance=self.instance, tags=tags or {}, raise_on_error=False, **kw)
        )

    def execute(self, request, job: str | None = None):
        """Run a sensor's RunRequest as the daemon would: its job, exactly its selection."""
        selected = (
            self.defs()
            .resolve_job_def(request.job_name or job)
            .get_subset(
                asset_selection=set(request.asset_selection or ()),
                asset_check_selection=set(request.asset_check_keys or ()),
            )
        )
        return selected.execute_in_process(
            instance=self.instance, tags=request.tags, raise_on_error=False
        )

    def latest(self, key):
        event = self.instance.get_latest_materialization_event(key)
        return event.asset_materialization if event else None

    def meta(self, key, name):
        return self.latest(key).metadata[name].value

    def url(self, deployment: str, env: str = "staging") -> str:
        return f"http://127.0.0.1:{self.ports[deployment][env]}/"

    def head(self, branch: str) -> str:
        return self.repo.git("rev-parse", branch).strip()


@pytest.fixture(scope="module")
def site_secrets() -> dict | None:
    """Secrets files the module's repository holds (a module overrides this)."""
    return None


@pytest.fixture(scope="module")
def site(tmp_path_factory, site_secrets):
    """One platform for a module of tests that build on each other; hubs stopped after."""
    made = Site(tmp_path_factory.mktemp("site"), secrets=site_secrets)
    with pytest.MonkeyPatch.context() as mp:
        for key, value in made.env.items():
            mp.setenv(key, value)
        yield made
        stop_everything(made.home)


def failures(result) -> dict[str, str]:
    from dagster import DagsterEventType

    # a resource that fails to start fails the run before any step: keyed "resources"
    return {
        e.step_key or "resources": e.event_specific_data.error.message
        for e in result.all_events
        if e.event_type in (DagsterEventType.STEP_FAILURE, DagsterEventType.RESOURCE_INIT_FAILURE)
    }


def check_results(result) -> dict[tuple[str, str], bool]:
    from dagster import DagsterEventType

    return {
        (e.asset_key.to_user_string(), e.check_name): e.passed
        for e in (
            ev.event_specific_data
            for ev in result.all_events
            if ev.event_type == DagsterEventType.ASSET_CHECK_EVALUATION
        )
    }
