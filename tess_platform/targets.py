"""What a target provides. Assets call these; they never know which target runs them."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .backends.image import ImageRef
from .git import Snapshot
from .releases import Release
from .settings import Settings
from .values import Layer, Merged


class DeployError(RuntimeError):
    """A release did not deploy; the message says what happened and what was put back."""


@dataclass(frozen=True)
class Endpoint:
    url: str  # the hub's public URL, ending in /
    api_token: str  # a token of the tess-platform service, for health checks


@dataclass
class Provisioned:
    """What an infrastructure step produced: the asset's value, as metadata."""

    summary: dict[str, Any]
    version: str  # data version: changes exactly when what it provides changes


@dataclass
class Deployed:
    revision: int
    url: str
    description: str
    notes: list[str] = field(default_factory=list)  # e.g. values not applied on this target


@dataclass
class PastRevision:
    revision: int
    status: str
    description: str
    record: dict[str, Any]


class Target(Protocol):
    name: str

    def ensure_cluster(self, log) -> Provisioned: ...

    def ensure_storage(self, log) -> Provisioned: ...

    def ensure_image(self, snapshot: Snapshot, log) -> tuple[ImageRef, dict[str, Any]]: ...

    def image_ref(self, tree_root: Path) -> ImageRef:
        """The image a release of this tree runs, without building it."""
        ...

    def target_secrets(self, release: Release) -> Layer | None: ...

    def deploy(
        self, release: Release, merged: Merged, overlay_leaves: set, record: dict[str, Any], log
    ) -> Deployed: ...

    def rollback(self, release: Release, revision: int, log) -> Deployed: ...

    def history(self, release: Release) -> list[PastRevision]: ...

    def endpoint(self, release: Release) -> Endpoint: ...

    def env_lock(self, env: str, on_wait=None) -> AbstractContextManager[None]:
        """Held for a whole deploy of `env`: a second deploy of it waits, never interleaves."""
        ...

    def serving(self, release: Release) -> PastRevision | None:
        """The revision that serves now as deployed; None when nothing does, or not as
        deployed (drift)."""
        ...

    def drift(self, release: Release, deployed_revision: int | None) -> str | None:
        """How the release differs from what the pipeline last deployed (`deployed_revision`,
        from its latest materialization); None when it does not."""
        ...


def target_from_settings(settings: Settings) -> Target:
    if settings.target == "local":
        from .backends.local.target import LocalTarget

        return LocalTarget(settings)
    raise NotImplementedError(
        "TESS_TARGET=aws: the aws target (terraform, EKS, helm) is not built yet; "
        "use the local target"
    )
