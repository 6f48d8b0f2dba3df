"""The deployments and environments of the platform, and the names derived from them."""

from __future__ import annotations

from dataclasses import dataclass

from .quoting import quoted

DEPLOYMENTS = ("tess-public", "tess-private")
ENVIRONMENTS = ("staging", "prod")


class UnknownReleaseError(ValueError):
    pass


@dataclass(frozen=True, order=True)
class Release:
    """One hub: a deployment in an environment, released as `<deployment>-<env>`."""

    deployment: str
    env: str

    def __post_init__(self) -> None:
        if self.deployment not in DEPLOYMENTS:
            raise UnknownReleaseError(
                f"unknown deployment {quoted(self.deployment)}: known are {', '.join(DEPLOYMENTS)}"
            )
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
        """The deployment as it stands in asset keys, e.g. `tess_public`."""
        return self.deployment.replace("-", "_")

    @classmethod
    def parse(cls, name: str) -> Release:
        """`tess-public-staging` -> Release('tess-public', 'staging')."""
        deployment, _, env = name.rpartition("-")
        return cls(deployment, env)


def all_releases(env: str | None = None) -> list[Release]:
    envs = ENVIRONMENTS if env is None else (env,)
    return [Release(d, e) for e in envs for d in DEPLOYMENTS]
