"""What a merge to staging deploys: the staging sensor's decision, on plain data. The Dagster
layer gathers what was deployed and how runs ended; this decides which releases run."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .hubs import Hubs
from .releases import Release


@dataclass(frozen=True)
class StagingChoice:
    deploy: list[Release]  # in the run the sensor requests
    refreshed: list[Release]  # among them: those that run what they want, recorded again


def choose(
    loaded: Hubs,
    on_branch: Hubs,
    desired: dict[Release, str | None],
    deployed_hash: Callable[[Release], str | None],
    drifted: Iterable[Release],
    moved: bool,
    failed_since_deploy: Callable[[Release], bool],
) -> StagingChoice:
    """The staging releases to deploy: of the hubs the code location loaded (`loaded`), those
    whose release hash at the branch's head (`desired`, None where it cannot be known) differs
    from what they last deployed, those whose folder broke (their run fails, naming the file),
    the drifted ones, and, when the head `moved`, those whose last run failed though they run
    what they want (a revert): the UI shows them failed until they are materialized again."""
    wanted = {r: w for r, w in desired.items() if r.deployment in loaded.names}
    wanted |= {r: None for r in loaded.releases("staging") if on_branch.problem_of(r.deployment)}
    deploy = [r for r, w in wanted.items() if w is None or w != deployed_hash(r)]
    deploy += [r for r in drifted if r not in deploy]
    refreshed = [r for r in wanted if moved and r not in deploy and failed_since_deploy(r)]
    return StagingChoice(deploy + refreshed, refreshed)


def hub_news(loaded: Hubs, on_branch: Hubs) -> list[str]:
    """What the branch says about hubs that the loaded asset graph does not show yet."""
    news = list(on_branch.problems)
    news += [
        f"hub_config/{name}/ is a new hub on staging: reload the code location (Deployment > "
        "Reload, or `tess-platform local up` again) to give it assets and deploy it"
        for name in on_branch.names
        if name not in loaded.names
    ]
    news += [
        f"hub_config/{name}/ is gone from staging: its releases keep running; a merge never "
        "uninstalls a hub"
        for name in loaded.names
        if name not in on_branch.names and not on_branch.problem_of(name)
    ]
    return news
