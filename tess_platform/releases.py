"""Releases: a hub (a deployment) in an environment, and the names derived from them."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .quoting import quoted

ENVIRONMENTS = ("staging", "prod")
# a release name is a helm release and a Kubernetes namespace: a DNS label, at most 53 long
_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
MAX_DEPLOYMENT = 53 - len("-staging")


class UnknownReleaseError(ValueError):
    pass


def deployment_problem(name: str) -> str | None:
    """Why `name` cannot name a deployment (a hub_config folder); None when it can."""
    if not _NAME.fullmatch(name):
        return (
            f"{quoted(name)} cannot name a release or namespace: lowercase letters, digits "
            "and '-', starting and ending with a letter or digit"
        )
    if len(name) > MAX_DEPLOYMENT:
        return f"{quoted(name)} is longer than {MAX_DEPLOYMENT} characters (helm's release names)"
    return None


@dataclass(frozen=True, order=True)
class Release:
    """One hub: a deployment in an environment, released as `<deployment>-<env>`."""

    deployment: str
    env: str

    def __post_init__(self) -> None:
        if problem := deployment_problem(self.deployment):
            raise UnknownReleaseError(f"unknown deployment: {problem}")
        if self.env not in ENVIRONMENTS:
            raise UnknownReleaseError(
                f"unknown environment {quoted(self.env)}: known are {', '.join(ENVIRONMENTS)}"
            )

    @property
    def name(self) -> str:
        """Release and namespace name, e.g. `tess-public-staging`."""
        return f"{self.deployment}-{self.env}"

    @property
    def key(self) -> str:
        """The release as it stands in asset keys, e.g. `tess_public_staging`."""
        return self.name.replace("-", "_")

    def asset_path(self, kind: str) -> list[str]:
        """The asset key of its `values` or `release`, e.g. staging/tess_public_staging_release:
        every node of the UI's lineage says which hub and environment it is."""
        return [self.env, f"{self.key}_{kind}"]

    @classmethod
    def from_asset_path(cls, path: list[str], kind: str) -> Release | None:
        """The release whose `kind` asset has this key; None for any other key."""
        if len(path) != 2 or not path[1].endswith(f"_{path[0]}_{kind}"):
            return None
        try:  # a folder name holds no "_": every "_" of the key was a "-"
            return cls(path[1].removesuffix(f"_{path[0]}_{kind}").replace("_", "-"), path[0])
        except UnknownReleaseError:
            return None

    @classmethod
    def parse(cls, name: str) -> Release:
        """`tess-public-staging` -> Release('tess-public', 'staging')."""
        deployment, _, env = name.rpartition("-")
        return cls(deployment, env)
