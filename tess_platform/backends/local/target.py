"""The local target: no cloud. A supervisor of hub processes is the cluster, a folder the EFS."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from ...git import Snapshot
from ...releases import Release
from ...secrets import generate_token
from ...settings import Settings
from ...targets import Deployed, DeployError, Endpoint, PastRevision, Provisioned
from ...values import Layer, Merged, canonical_sha256
from ..image import ImageRef, render
from .hub_config import translate
from .supervisor import Supervisor, SupervisorError, file_lock

IMAGE_REPOSITORY = "tess-user-image"
SERVICE = "tess-platform"  # the hub service whose token the pipeline's checks use


class LocalTarget:
    name = "local"

    def __init__(self, settings: Settings) -> None:
        self.home = settings.local_home
        self.supervisor = Supervisor(self.home)

    @property
    def efs(self) -> Path:
        return self.home / "efs"

    def ensure_cluster(self, log) -> Provisioned:
        (self.home / "releases").mkdir(parents=True, exist_ok=True)
        running = [
            s.release for s in map(self.supervisor.status, self.supervisor.releases()) if s.running
        ]
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
        self.efs.mkdir(parents=True, exist_ok=True)
        log(f"local EFS: persistent homes in {self.efs}")
        return Provisioned(
            {"target": "local", "homes_folder": str(self.efs)},
            version=canonical_sha256({"efs": str(self.efs)}),
        )

    def image_ref(self, tree_root: Path) -> ImageRef:
        rendered = render(tree_root)
        return ImageRef(IMAGE_REPOSITORY, rendered.tag, None, rendered.dockerfile_sha256)

    def ensure_image(self, snapshot: Snapshot, log) -> tuple[ImageRef, dict[str, Any]]:
        rendered = render(snapshot.root)
        ref = ImageRef(IMAGE_REPOSITORY, rendered.tag, None, rendered.dockerfile_sha256)
        meta: dict[str, Any] = {"buildpack": rendered.buildpack, "dockerfile": rendered.dockerfile}
        if _docker_answers():
            log(f"a Docker daemon answers: building {ref.ref} with repo2docker")
            _build(snapshot.root / "image", ref.ref)
            meta["built"] = True
        else:
            log(
                f"no Docker daemon: {ref.ref} rendered by repo2docker, not built; local hubs "
                "run the single-user server of this machine"
            )
            meta["built"] = False
        return ref, meta

    def target_secrets(self, release: Release) -> Layer:
        """Secrets generated once for this release, kept 0600 in the state folder."""
        path = self.home / "secrets" / f"{release.name}.json"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            password = {"SharedPasswordAuthenticator": {"user_password": generate_token(12)}}
            generated = {
                "proxy": {"secretToken": generate_token()},
                "hub": {
                    "cookieSecret": generate_token(),
                    "services": {SERVICE: {"apiToken": generate_token()}},
                    "config": password,
                },
            }
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(generated, f, indent=2)
        return Layer(f"local secrets ({path})", json.loads(path.read_text()), secret=True)

    def deploy(
        self, release: Release, merged: Merged, overlay_leaves: set, record: dict[str, Any], log
    ) -> Deployed:
        hub = translate(
            merged,
            overlay_leaves,
            env=release.env,
            state_dir=self.supervisor.state_dir(release.name),
            homes_dir=self.efs / release.name,
        )
        try:
            rev = self.supervisor.upgrade(release.name, hub, record, log=log)
        except SupervisorError as e:
            raise DeployError(str(e)) from None
        notes = [f"not applied on the local target: `{p}`" for p in hub.unapplied]
        return Deployed(rev.revision, rev.url, rev.description, notes)

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

    def env_lock(self, env: str, on_wait=None):
        return file_lock(self.home / "locks" / f"{env}.lock", on_wait)

    def serving(self, release: Release) -> PastRevision | None:
        rev = self.supervisor.current(release.name)
        if rev is None or self.supervisor.drift(release.name):
            return None
        return PastRevision(rev.revision, rev.status, rev.description, rev.record)

    def drift(self, release: Release, deployed_revision: int | None) -> str | None:
        found = self.supervisor.drift(release.name)
        if found:
            return found
        current = self.supervisor.current(release.name)
        if deployed_revision is not None and current and current.revision != deployed_revision:
            return (
                f"revision {current.revision} serves, but the pipeline last deployed "
                f"revision {deployed_revision}"
            )
        return None

    def endpoint(self, release: Release) -> Endpoint:
        rev = self.supervisor.current(release.name)
        if rev is None:
            raise DeployError(f"{release.name}: not deployed on the local target")
        token = self.target_secrets(release).values["hub"]["services"][SERVICE]["apiToken"]
        return Endpoint(rev.url, token)

    def password_file(self, release: Release) -> Path:
        return self.home / "secrets" / f"{release.name}.json"


def _docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(["docker", "info"], capture_output=True, timeout=30)
    return probe.returncode == 0


def _build(context: Path, image: str) -> None:
    cmd = [
        "jupyter-repo2docker",
        "--no-run",
        "--user-id",
        "1000",
        "--user-name",
        "jovyan",
        "--image-name",
        image,
        str(context),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise DeployError(f"repo2docker could not build {image}:\n{result.stderr[-2000:]}")
