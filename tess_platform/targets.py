"""What a target provides. Assets call these; they never know which target runs them."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .backends.image import ImageRef
from .git import Snapshot
from .hierarchy import ReleaseValues
from .releases import Release
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
    markdown: dict[str, str] = field(default_factory=dict)  # e.g. the plan, as a table


@dataclass
class Deployed:
    revision: int
    url: str
    description: str
    notes: list[str] = field(default_factory=list)  # e.g. values not applied on this target
    runs: str | None = None  # what user servers run, where the target knows more than the image


@dataclass
class PastRevision:
    revision: int
    status: str  # as helm says: deployed, superseded, failed, pending-*
    description: str
    record: dict[str, Any]  # what the pipeline deployed: git_sha, release_hash, image, ...


DEPLOYED = "deployed"  # helm's word for the revision that serves


def last_deployed(history: list[PastRevision]) -> PastRevision | None:
    """The newest revision that served as deployed: what serves, or served before a revision
    that failed or is stuck after it."""
    deployed = [r for r in history if r.status == DEPLOYED]
    return deployed[-1] if deployed else None


def serves_another_release(
    revision: PastRevision | None, deployed_hash: str | None, label: str = "revision"
) -> str | None:
    """The drift every target looks for last: what serves is not the release the pipeline
    last deployed (an upgrade or rollback by hand); None when it is, or nothing is known."""
    if revision is None or deployed_hash is None:
        return None
    serving = revision.record.get("release_hash")
    if serving == deployed_hash:
        return None
    return (
        f"{label} {revision.revision} serves release {(serving or '?')[:12]}, but the pipeline "
        f"last deployed release {deployed_hash[:12]}"
    )


class Target(Protocol):
    name: str
    spawn_timeout: float  # seconds a check user's server may take to start, each try
    spawn_tries: int  # tries before server_spawns fails (a cold node may outlast one)
    kernel_timeout: float  # seconds the smoke test may take in a kernel

    def ensure_cluster(self, tree_root: Path, approval: str | None, log) -> Provisioned:
        """The cluster as `tree_root/infra` describes it; `approval` (the run tag
        tess/approve_destroy) lets a plan destroy or replace stateful resources."""
        ...

    def ensure_storage(self, log) -> Provisioned: ...

    def ensure_image(self, snapshot: Snapshot, log) -> tuple[ImageRef, dict[str, Any]]: ...

    def image_ref(self, tree_root: Path, offline: bool = False) -> ImageRef:
        """The image a release of this tree runs, without building it. `offline` (a review,
        never a deploy): what only the cloud knows is a named placeholder, said in `unknown`."""
        ...

    def target_secrets(self, release: Release) -> Layer | None: ...

    def url(self, release: Release, merged: Merged) -> str:
        """Where a release with these values answers, ending in /."""
        ...

    def deploy(
        self, release: Release, values: ReleaseValues, record: dict[str, Any], log
    ) -> Deployed: ...

    def rollback(self, release: Release, revision: int, log) -> Deployed: ...

    def history(self, release: Release) -> list[PastRevision]: ...

    def uninstall(self, release: Release, log) -> str:
        """Remove the release: its hub stops and its history goes; user homes stay. Says
        what it did."""
        ...

    def env_lock(
        self, env: str, log: Callable[[str], None], owner: str | None = None
    ) -> AbstractContextManager[None]:
        """Held for a whole deploy of `env`: a second deploy of it waits, never interleaves.
        Tells `log` when it waits, and when it takes over the lock of a run that died. Held
        already for `owner` (a run id) by another of that run's processes: granted."""
        ...

    def serving(self, release: Release) -> PastRevision | None:
        """The revision that serves now as deployed; None when nothing does, or not as
        deployed (drift)."""
        ...

    def drift(self, release: Release, deployed_hash: str | None) -> str | None:
        """How the release differs from what the pipeline last deployed (`deployed_hash`, the
        release_hash of its latest materialization); None when it does not. A rollback the
        pipeline made serves a release_hash it deployed before: that is not drift."""
        ...
