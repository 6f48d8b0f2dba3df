"""Shared fixtures: a real git repository as TESS_REPO, a state folder, the chart files,
and the guarantee that every hub a test started is stopped again."""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
from pathlib import Path

import psutil
import pytest
import yaml

from tess_platform.chart import JUPYTERHUB, chart_files

ROOT = Path(__file__).resolve().parent.parent
CHART_DIR = Path(os.environ.get("TESS_CHART_DIR") or ROOT.parent / "shared" / "z2jh")
PLANTED = "planted-secret-4f1d9c2b7e"  # a secret that must never show anywhere


def run(*cmd: str, cwd: Path | None = None, **kw) -> str:
    return subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True, **kw).stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class GitRepo:
    """A real repository holding the platform's tree, as an operator's would."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def git(self, *args: str) -> str:
        return run("git", *args, cwd=self.path)

    def write(self, relpath: str, content: str | dict) -> None:
        path = self.path / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
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
    """A repository with the checkout's hub_config/ and image/, git-crypt initialised."""
    path.mkdir(parents=True)
    repo = GitRepo(path)
    repo.git("init", "-q", "-b", "main")
    repo.git("config", "user.email", "ops@tess.test")
    repo.git("config", "user.name", "TESS Ops")
    for name in ("hub_config", "image"):
        shutil.copytree(ROOT / name, path / name)
    shutil.copy(ROOT / ".gitattributes", path / ".gitattributes")
    for deployment, by_env in (ports or {}).items():
        repo.edit_yaml(
            f"hub_config/{deployment}/local.yaml",
            lambda d, p=by_env: d["custom"]["tess"]["local"].update(ports=p),
        )
    run("git-crypt", "init", cwd=path)
    repo.commit("the platform", branch=None)
    return repo


def export_key(repo: GitRepo, dest: Path) -> str:
    run("git-crypt", "export-key", str(dest), cwd=repo.path)
    return base64.b64encode(dest.read_bytes()).decode()


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


@pytest.fixture
def tess_env(tmp_path: Path, repo: GitRepo, monkeypatch) -> dict[str, str]:
    """TESS_* pointed at temporary folders and the test's repository; hubs stopped after."""
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
