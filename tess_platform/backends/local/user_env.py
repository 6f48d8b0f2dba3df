"""The user image's environment, built on this machine without Docker.

The spec is the one repo2docker builds the image from, in its Python form, which both can
honour from PyPI: `image/runtime.txt` (`python-3.11`), `image/requirements.txt` (pinned) and
`image/postBuild`. Here it becomes a virtualenv of that Python, pip-installed from the same
requirements, `postBuild` run in it with `NB_PYTHON_PREFIX` pointing at it, as repo2docker does.
Each is kept under the image's content tag, so a release runs the environment of its image and
prod runs the very environment staging ran. A virtualenv cannot move (its scripts name their
interpreter), so it is built where it stays, under a lock, and marked complete last: one that a
killed build left is built again.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from ...files import write_file
from ...locks import file_lock, lock_held
from ..image import IMAGE_DIR

RUNTIME, REQUIREMENTS, POST_BUILD = "runtime.txt", "requirements.txt", "postBuild"
COMPLETE = ".tess-env.json"  # written last: the environment is whole
LAST_USED = ".tess-env-used"  # touched whenever a hub starts with the environment
TRASH = ".removing-"  # an environment being removed: never `built`, removed by the next GC
# of this process's environment, what pip is given besides its own PIP_* settings
PIP_ENV = frozenset(
    {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "XDG_CACHE_HOME", "XDG_CONFIG_HOME"}
    | {"SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE"}
    | {f"{name}_proxy" for name in ("http", "https", "no")}
    | {f"{name}_PROXY" for name in ("HTTP", "HTTPS", "NO")}
)
PIP_PROGRESS_EVERY = 25  # packages between two progress lines


class UserEnvError(RuntimeError):
    pass


@dataclass(frozen=True)
class UserEnv:
    path: Path
    python: str  # the interpreter's version, as it reports it
    packages: int
    build_seconds: float  # what building it took
    reused: bool = False  # built before, by another run

    @property
    def bin(self) -> Path:
        return self.path / "bin"


def python_version(image_dir: Path) -> str:
    """The `X.Y` of `image/runtime.txt`; UserEnvError naming the file otherwise."""
    runtime = image_dir / RUNTIME
    where = f"{IMAGE_DIR}/{RUNTIME}"
    if not runtime.is_file():
        raise UserEnvError(
            f"{where}: missing; the local target builds the user environment from the Python "
            "form of a repo2docker spec: runtime.txt (`python-3.11`), requirements.txt, postBuild"
        )
    found = re.fullmatch(r"python-(3\.\d+)(\.\d+)?", runtime.read_text().strip())
    if not found:
        raise UserEnvError(f"{where}: not `python-X.Y` (for example `python-3.11`)")
    return found.group(1)


def interpreter(version: str, override: str | None = None) -> str:
    """A `pythonX.Y` to build from: TESS_USER_PYTHON where set, else the system's."""
    if override:
        return override
    for candidate in (f"/usr/bin/python{version}", f"/usr/local/bin/python{version}"):
        if os.access(candidate, os.X_OK):
            return candidate
    if found := shutil.which(f"python{version}"):
        return found
    raise UserEnvError(
        f"{IMAGE_DIR}/{RUNTIME} asks for Python {version}, which this machine does not have: "
        f"install it (Debian: apt-get install python{version} python{version}-venv) or set "
        "TESS_USER_PYTHON to one"
    )


def ensure_env(
    image_dir: Path, tag: str, envs: Path, log, python_override: str | None = None
) -> UserEnv:
    """The environment of the image tagged `tag`, built from `image_dir` unless it is there."""
    envs.mkdir(parents=True, exist_ok=True)
    path = envs / tag

    def waiting() -> None:
        log(f"user environment {tag}: another process builds it; waiting")

    with file_lock(envs / f".{tag}.lock", on_wait=waiting):
        if (done := built(path)) is not None:
            log(f"user environment {tag}: built already, in {path}")
            return done
        if path.exists():
            log(f"user environment {tag}: an earlier build did not finish; building it again")
            _stop_builders(path)
            shutil.rmtree(path)
        started = time.monotonic()
        try:
            _build(image_dir, path, tag, log, python_override)
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)  # nothing half-built is ever used
            raise
        py = str(path / "bin" / "python")
        python = _run([py, "--version"], path).split()[-1]
        packages = _run([py, "-m", "pip", "list", "--format=freeze"], path).splitlines()
        env = UserEnv(path, python, len(packages), round(time.monotonic() - started, 1))
        write_file(path / COMPLETE, json.dumps({**asdict(env), "path": str(path)}), 0o644)
        log(
            f"user environment {tag}: built in {env.build_seconds:.0f} s, Python {python}, "
            f"{_size(path)} MB"
        )
        return env


def built(path: Path) -> UserEnv | None:
    """The environment at `path` if a build completed it."""
    try:
        data = json.loads((path / COMPLETE).read_text())
        return UserEnv(path, data["python"], data["packages"], data["build_seconds"], True)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _build(image_dir: Path, path: Path, tag: str, log, python_override: str | None) -> None:
    python = interpreter(python_version(image_dir), python_override)
    requirements = image_dir / REQUIREMENTS
    if not requirements.is_file():
        raise UserEnvError(f"{IMAGE_DIR}/{REQUIREMENTS}: missing; it lists the user packages")
    log(f"user environment {tag}: a virtualenv of {python} in {path}")
    _run([python, "-m", "venv", str(path)], path.parent, what="create the virtualenv")
    pip = [str(path / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "install"]
    _pip([*pip, "--no-input", "-r", str(requirements)], path, tag, log)
    if (post_build := image_dir / POST_BUILD).is_file():
        log(f"user environment {tag}: running {IMAGE_DIR}/{POST_BUILD}")
        env = {
            "PATH": f"{path / 'bin'}:{os.defpath}",
            "HOME": str(path),  # as the image's user: what it writes stays in the environment
            "NB_PYTHON_PREFIX": str(path),
            "LANG": os.environ.get("LANG", "C.UTF-8"),
        }
        _run(["bash", str(post_build)], image_dir, env=env, what=f"run {IMAGE_DIR}/{POST_BUILD}")


def _pip_env() -> dict[str, str]:
    """What pip is given of this process's environment: its own settings, the network's and the
    locale, never the platform's credentials (a package's build runs code from the index, as
    repo2docker runs it in a container that has none of them)."""
    return {k: v for k, v in os.environ.items() if k in PIP_ENV or k.startswith("PIP_")}


def _pip(cmd: list[str], path: Path, tag: str, log) -> None:
    """pip, its progress told every few packages, its last lines in the error if it fails."""
    lines: list[str] = []
    collected = 0
    with subprocess.Popen(
        cmd, cwd=path, env=_pip_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        for line in proc.stdout:
            lines = [*lines[-19:], line.rstrip()]
            if line.startswith("Collecting "):
                collected += 1
                if collected % PIP_PROGRESS_EVERY == 0:
                    log(f"user environment {tag}: {collected} packages collected")
            elif line.startswith("Installing collected packages"):
                log(f"user environment {tag}: installing {collected} packages")
    if proc.returncode != 0:
        # its ERROR lines, the long lists of versions it ignored or saw cut short
        errors = [
            x if len(x) <= 300 else x[:300] + " ..."
            for x in lines
            if x.startswith("ERROR") and not x.startswith("ERROR: Ignored")
        ] or lines[-5:]
        raise UserEnvError(
            f"{IMAGE_DIR}/{REQUIREMENTS}: pip could not install it:\n" + "\n".join(errors)
        )


def mark_used(env: UserEnv) -> None:
    with contextlib.suppress(OSError):  # a cache this user may only read: gc is not theirs
        (env.path / LAST_USED).touch()


@dataclass
class Collected:
    """What `collect` did: the environments removed (tag, MB) and those kept, and why."""

    removed: list[tuple[str, int]]
    running: list[str]  # a process runs from it (a hub, a user server, a kernel, a build)
    recent: list[str]  # a hub started with it, or it was built, within the window


def collect(envs: Path, days: float) -> Collected:
    """Remove the environments that no process on this machine runs from and that no hub
    started with (nor a build finished) in `days` days: a rollback within that window finds
    its environment. Every TESS_LOCAL_HOME may share `envs`, hence a look at the processes,
    not at one home's revisions. Removal unmarks first: one cut short is never taken for built."""
    done = Collected([], [], [])
    if not envs.is_dir():
        return done
    for leftover in envs.glob(f"{TRASH}*"):
        shutil.rmtree(leftover, ignore_errors=True)
    running = _running_from(envs)
    cutoff = time.time() - days * 86400
    for path in sorted(p for p in envs.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if path.name in running or lock_held(envs / f".{path.name}.lock"):
            done.running.append(path.name)
        elif _last_used(path) > cutoff:
            done.recent.append(path.name)
        else:
            size = _size(path)
            (path / COMPLETE).unlink(missing_ok=True)
            trash = path.rename(envs / f"{TRASH}{path.name}")
            shutil.rmtree(trash, ignore_errors=True)
            done.removed.append((path.name, size))
    return done


def _last_used(path: Path) -> float:
    marks = [path / LAST_USED, path / COMPLETE, path]
    return max(m.stat().st_mtime for m in marks if m.exists())


def _running_from(envs: Path) -> set[str]:
    """The environments some process's command line names (an environment's interpreter is
    a link to the system's: its executable does not tell)."""
    found = set()
    for proc in psutil.process_iter(["cmdline"]):
        for arg in proc.info["cmdline"] or []:
            if arg.startswith(f"{envs}/"):
                found.add(Path(arg).relative_to(envs).parts[0])
    return found


def _stop_builders(path: Path) -> None:
    """Stop what a killed build left running in `path` (its pip outlives it)."""
    for proc in psutil.process_iter(["cwd"]):
        if proc.info["cwd"] and Path(proc.info["cwd"]).is_relative_to(path):
            with contextlib.suppress(psutil.Error):
                proc.kill()
                proc.wait(10)


def _run(cmd: list[str], cwd: Path, env=None, what: str | None = None) -> str:
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).splitlines()[-10:])
        raise UserEnvError(f"could not {what or ' '.join(cmd)}:\n{tail}")
    return result.stdout


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) // 2**20
