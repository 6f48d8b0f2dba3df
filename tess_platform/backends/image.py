"""The user image: rendered by repo2docker from `image/`, tagged by content.

Rendering needs no Docker daemon: the Dockerfile repo2docker would build, plus every file of
the build context, decide the tag, so the same `image/` always gives the same tag.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import threading
from contextlib import chdir
from dataclasses import asdict, dataclass
from pathlib import Path

from ..files import write_file
from ..settings import tool_environment
from ..tools import tool
from ..tree_digest import folder_digest, folder_files

IMAGE_DIR = "image"
BUILD_ARGS = {"NB_USER": "jovyan", "NB_UID": "1000"}  # the chart's singleuser.uid
PLATFORM = "linux/amd64"


_RENDERING = threading.Lock()  # the working directory is the process's: one render at a time


class ImageError(RuntimeError):
    pass


@dataclass(frozen=True)
class RenderedImage:
    tag: str  # content tag: the first 16 hex of the content digest
    dockerfile: str
    dockerfile_sha256: str
    buildpack: str
    files: tuple[str, ...]


@dataclass(frozen=True)
class ImageRef:
    """What a release runs: repository, content tag, and the registry digest where built."""

    repository: str
    tag: str
    digest: str | None = None
    dockerfile_sha256: str | None = None
    # offline (a review, never a deploy): what only the cloud knows and what stands in for it
    unknown: tuple[str, ...] = ()

    @classmethod
    def of(
        cls,
        repository: str,
        rendered: RenderedImage,
        digest: str | None = None,
        unknown: tuple[str, ...] = (),
    ) -> ImageRef:
        return cls(repository, rendered.tag, digest, rendered.dockerfile_sha256, unknown)

    @property
    def ref(self) -> str:
        if self.digest:
            return f"{self.repository}@{self.digest}"
        return f"{self.repository}:{self.tag}"


def render(tree_root: Path, cache: Path | None = None) -> RenderedImage:
    """The image of `tree_root`/image/ as repo2docker renders it. With `cache`, a rendering is
    kept there for the same files and the same repo2docker, and read back without importing
    repo2docker (a step, a CLI call); a kept rendering that cannot be read is rendered anew."""
    context = tree_root / IMAGE_DIR
    if not context.is_dir():
        raise ImageError(f"{IMAGE_DIR}/: missing from the tree at {tree_root}")
    if cache is None:
        return _render(context)
    from importlib.metadata import version  # 30 ms to import: only where a cache is asked

    renderer = f"{version('jupyter-repo2docker')} {PLATFORM} {sorted(BUILD_ARGS.items())}"
    kept = cache / "rendered-images" / f"{folder_digest(context, seed=renderer.encode())}.json"
    try:
        fields = json.loads(kept.read_text())
        return RenderedImage(**{**fields, "files": tuple(fields["files"])})
    except (OSError, ValueError, TypeError, KeyError):
        rendered = _render(context)
        write_file(kept, json.dumps(asdict(rendered)), mode=0o644)
        return rendered


def _render(context: Path) -> RenderedImage:
    from repo2docker.app import Repo2Docker  # a heavy import: only where an image is rendered

    r2d = Repo2Docker()
    with _RENDERING, chdir(context):  # repo2docker detects in the working directory
        for buildpack_class in r2d.buildpacks:
            buildpack = buildpack_class(base_image=r2d.base_image)
            if buildpack.detect():
                break
        else:
            raise ImageError(f"{IMAGE_DIR}/: repo2docker finds no environment specification")
        buildpack.platform = PLATFORM
        dockerfile = buildpack.render(BUILD_ARGS)
    return RenderedImage(
        tag=folder_digest(context, seed=dockerfile.encode())[:16],
        dockerfile=dockerfile,
        dockerfile_sha256=hashlib.sha256(dockerfile.encode()).hexdigest(),
        buildpack=type(buildpack).__name__,
        files=tuple(folder_files(context)),
    )


def docker_answers() -> bool:
    """Whether a Docker daemon answers here (repo2docker builds need one)."""
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0


def build(context: Path, image: str, push: bool = False, env: dict[str, str] | None = None) -> None:
    """Build `context` with repo2docker as `image` (and push it)."""
    cmd = [
        tool("jupyter-repo2docker"),
        "--no-run",
        "--user-id",
        BUILD_ARGS["NB_UID"],
        "--user-name",
        BUILD_ARGS["NB_USER"],
        "--image-name",
        image,
        *(["--push"] if push else []),
        str(context),
    ]
    result = subprocess.run(
        cmd, capture_output=True, text=True, env={**tool_environment(), **(env or {})}
    )
    if result.returncode != 0:
        raise ImageError(f"repo2docker could not build {image}:\n{result.stderr[-2000:]}")
