"""The local target: no cloud. A supervisor of hub processes is the cluster, a folder the EFS."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Any

from ...files import write_file
from ...git import Snapshot
from ...locks import env_file_lock
from ...releases import Release
from ...secrets import generate_token, hub_secrets
from ...settings import Settings
from ...targets import (
    Deployed,
    DeployError,
    PastRevision,
    Provisioned,
    serves_another_release,
)
from ...values import Layer, Merged, canonical_sha256
from ..image import ImageRef, build, docker_answers, render
from .hub_config import HubConfig, local_port, translate
from .isolation import UID_REGISTRY, closed_to_others, runs_as_root
from .supervisor import Supervisor, SupervisorError, read_state_file
from .user_env import UserEnv, UserEnvError, built, ensure_env, mark_used

IMAGE_REPOSITORY = "tess-user-image"


class LocalTarget:
    name = "local"
    spawn_timeout = 120.0  # a local process: seconds, unless the machine is loaded
    spawn_tries = 1  # a local spawn that is not ready in time is broken: say so
    kernel_timeout = 120.0  # the smoke test imports the science stack from a cold disk

    def __init__(self, settings: Settings, redact=None) -> None:  # its tools print no secret
        self.home = settings.local_home
        self.supervisor = Supervisor(self.home)
        self.cache = settings.cache
        self.user_envs = settings.user_envs or settings.cache / "user-envs"
        self.user_python = settings.user_python

    @property
    def efs(self) -> Path:
        return self.home / "efs"

    @property
    def scratch(self) -> Path:
        """Homes that do not persist (storage type none), one folder per release."""
        return self.home / "scratch"

    def _open_only_homes(self, env: Path) -> None:
        """Run as root, user servers run as uids of their own: they may pass through the state
        folder to their homes and environment, and open nothing else of it."""
        if not runs_as_root():
            return
        for path in (self.home, env):
            if blocked := closed_to_others(path):
                raise DeployError(
                    f"user servers run as unprivileged users, who cannot reach {path}: "
                    f"{blocked} is closed to others (mode {blocked.stat().st_mode & 0o777:04o}). "
                    "Keep TESS_LOCAL_HOME and TESS_USER_ENVS under folders anyone may pass "
                    "through (such as /var/lib/tess-platform and /var/cache/tess-platform), or "
                    f"run `chmod o+x {blocked}`"
                )
        self.home.chmod(0o711)  # passable, not listable
        for private in (self.supervisor.releases_dir, self.home / "secrets"):
            private.mkdir(mode=0o700, exist_ok=True)  # before any hub writes into them
        for shared in (self.efs, self.scratch):  # not made by a first spawn, listable (0755)
            shared.mkdir(mode=0o711, exist_ok=True)
        for child in self.home.iterdir():
            if child.is_symlink():
                continue
            if child.is_dir():
                child.chmod(0o711 if child in (self.efs, self.scratch) else 0o700)
            else:
                child.chmod(child.stat().st_mode & 0o700)

    def ensure_cluster(self, tree_root: Path, approval: str | None, log) -> Provisioned:
        # infra/ describes the cloud: the local cluster is this machine
        _folder(self.supervisor.releases_dir, "the hubs' state")
        # by process only: one release's unreadable state must not stop every deploy
        running = [r for r in self.supervisor.releases() if self.supervisor.running(r)]
        log(f"local cluster: supervisor state in {self.home}")
        return Provisioned(
            {
                "target": "local",
                "state_folder": str(self.home),
                "running_hubs": ", ".join(running) or "none",
            },
            version=canonical_sha256({"local": str(self.home)}),
        )

    def ensure_storage(self, log) -> Provisioned:
        _folder(self.efs, "the persistent homes")
        log(f"local EFS: persistent homes in {self.efs}")
        return Provisioned(
            {"target": "local", "homes_folder": str(self.efs)},
            version=canonical_sha256({"efs": str(self.efs)}),
        )

    def image_ref(self, tree_root: Path, offline: bool = False) -> ImageRef:
        return ImageRef.of(IMAGE_REPOSITORY, render(tree_root, self.cache))

    def ensure_image(self, snapshot: Snapshot, log) -> tuple[ImageRef, dict[str, Any]]:
        """The image rendered by repo2docker, and its environment built here: what the local
        hubs' user servers run. The image itself is built where a Docker daemon answers."""
        rendered = render(snapshot.root, self.cache)
        ref = ImageRef.of(IMAGE_REPOSITORY, rendered)
        try:
            env = ensure_env(
                snapshot.root / "image", rendered.tag, self.user_envs, log, self.user_python
            )
        except UserEnvError as e:
            raise DeployError(f"{ref.ref}: the user environment cannot be built: {e}") from None
        meta: dict[str, Any] = {
            "buildpack": rendered.buildpack,
            "dockerfile": rendered.dockerfile,
            "user_environment": str(env.path),
            "python": env.python,
            "packages": env.packages,
            "build_seconds": env.build_seconds,
            "environment_reused": env.reused,
        }
        meta["built"] = docker_answers()
        if meta["built"]:
            log(f"a Docker daemon answers: building {ref.ref} with repo2docker")
            build(snapshot.root / "image", ref.ref)
        else:
            log(f"no Docker daemon: {ref.ref} rendered by repo2docker, its environment built")
        return ref, meta

    def target_secrets(self, release: Release) -> Layer:
        """Secrets generated once for this release, kept 0600 in the state folder."""
        path = self.password_file(release)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            generated = hub_secrets()
            generated["hub"]["config"] = {
                "SharedPasswordAuthenticator": {"user_password": generate_token(12)}
            }
            # another process may have been first: then its secrets are the release's
            write_file(path, json.dumps(generated, indent=2), first_wins=True)
        remedy = (
            "restore it, or remove it to have new ones generated at the next deploy (the "
            "release's tokens, cookie secret and shared password then change)"
        )
        return Layer(f"local secrets ({path})", read_state_file(path, remedy), secret=True)

    def url(self, release: Release, merged: Merged) -> str:
        return f"http://127.0.0.1:{local_port(merged, release)}/"

    def hub_config(self, release: Release, values) -> tuple[HubConfig, UserEnv]:
        """What the release's hub runs with these values, in the image's built environment."""
        env = built(self.user_envs / values.image.tag)
        if env is None:
            raise DeployError(
                f"{release.name}: the environment of image {values.image.ref} is not built on "
                f"this machine ({self.user_envs}); materialize image/user_image first"
            )
        mark_used(env)  # `local gc` keeps what hubs started with lately
        self._open_only_homes(env.path)
        hub = translate(
            values.merged,
            values.overlay_leaves,
            port=local_port(values.merged, release),
            state_dir=self.supervisor.state_dir(release.name),
            homes_dir=self.efs / release.name,
            scratch_dir=self.scratch / release.name,
            user_env=env.path,
            uid_registry=UID_REGISTRY,
        )
        return hub, env

    def deploy(self, release: Release, values, record: dict[str, Any], log) -> Deployed:
        hub, env = self.hub_config(release, values)
        try:
            rev = self.supervisor.upgrade(release.name, hub, record, log=log)
        except SupervisorError as e:
            raise DeployError(str(e)) from None
        notes = [f"not applied on the local target: `{p}`" for p in hub.unapplied]
        runs = f"{env.path} (Python {env.python}, {env.packages} packages)"
        return Deployed(rev.revision, rev.url, rev.description, notes, runs)

    def rollback(self, release: Release, revision: int, log) -> Deployed:
        try:
            rev = self.supervisor.rollback(release.name, revision, log=log)
        except SupervisorError as e:
            raise DeployError(str(e)) from None
        return Deployed(rev.revision, rev.url, rev.description)

    def history(self, release: Release) -> list[PastRevision]:
        return [
            PastRevision(r.revision, r.status, r.description, r.record)
            for r in self.supervisor.history(release.name)
        ]

    def uninstall(self, release: Release, log) -> str:
        if release.name not in self.supervisor.releases():
            raise DeployError(f"{release.name}: not installed on this machine")
        kept = self.supervisor.uninstall(release.name, log=log)
        return (
            f"{release.name}: uninstalled; its revisions are kept in {kept}, its user homes "
            f"in {self.efs / release.name}"
        )

    def env_lock(self, env: str, log, owner: str | None = None):
        return env_file_lock(self.home / "locks" / f"{env}.lock", env, log, owner)

    def serving(self, release: Release) -> PastRevision | None:
        if self.supervisor.drift(release.name):
            return None
        return self._current(release)

    def drift(self, release: Release, deployed_hash: str | None) -> str | None:
        found = self.supervisor.drift(release.name)  # the hub's processes and files
        if found:
            return found
        return serves_another_release(self._current(release), deployed_hash)

    def _current(self, release: Release) -> PastRevision | None:
        rev = self.supervisor.current(release.name)
        return rev and PastRevision(rev.revision, rev.status, rev.description, rev.record)

    def password_file(self, release: Release) -> Path:
        return self.home / "secrets" / f"{release.name}.json"


def _folder(path: Path, holding: str) -> None:
    """`path` made a folder if it is none, or a DeployError that names it (a file in its place,
    a folder this user cannot write, such as one a run as root left), never a traceback."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        if not os.access(path, os.R_OK | os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, "not writable by this user")
    except OSError as e:
        raise DeployError(
            f"{path}: cannot be the folder of {holding} ({e.strerror}); move what is in the "
            "way, or set TESS_LOCAL_HOME to a folder this user can write"
        ) from None
