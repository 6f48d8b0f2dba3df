"""The hubs of a tree: every `hub_config/<name>/` with a `common.yaml` is a deployment.

Nothing about a hub is known from its name: what differs between hubs (whether user homes
persist, hence whether a release needs EFS) is read from its values.
"""

from __future__ import annotations

from dataclasses import dataclass

from .hierarchy import CONFIG_DIR, Tree, config_layers
from .releases import ENVIRONMENTS, Release, deployment_problem
from .values import ValuesError, get_path, merge

HOMES = ("singleuser", "storage", "type")  # the chart's default, when no layer sets it: dynamic


@dataclass(frozen=True)
class Hubs:
    names: tuple[str, ...]
    persistent: frozenset[Release]  # releases whose user homes persist
    problems: tuple[str, ...] = ()  # folders that are not hubs, and why: each names its folder

    def releases(self, env: str | None = None) -> list[Release]:
        envs = ENVIRONMENTS if env is None else (env,)
        return [Release(name, e) for e in envs for name in self.names]

    def homes_persist(self, release: Release) -> bool:
        return release in self.persistent

    def problem_of(self, name: str) -> str | None:
        """Why the folder `name` is not a hub, if it is one of the problems."""
        return next((p for p in self.problems if p.startswith(f"{CONFIG_DIR}/{name}/")), None)

    def known(self, release: Release) -> Release:
        """`release`, if a hub folder of the tree is its deployment."""
        if problem := self.problem_of(release.deployment):
            raise ValuesError(problem)
        if release.deployment not in self.names:
            raise ValuesError(
                f"{CONFIG_DIR}/{release.deployment}/common.yaml: no such hub; the hubs are "
                f"{', '.join(self.names) or 'none'}"
            )
        return release


def hubs_of(tree: Tree) -> Hubs:
    """The folders of hub_config/ that hold a common.yaml, sorted. A folder that cannot be a
    hub is a problem naming it, never a reason to leave the other hubs undeployed."""
    config = tree.root / CONFIG_DIR
    if config.is_symlink() or not config.is_dir():
        raise ValuesError(f"{CONFIG_DIR}/: missing from the {tree.label}, or not a folder")
    names, problems = [], []
    for folder in sorted(config.iterdir()):
        common = f"{CONFIG_DIR}/{folder.name}/common.yaml"
        try:
            if tree.read(common) is None:
                if folder.is_dir() and any(p.suffix in (".yaml", ".yml") for p in folder.iterdir()):
                    problems.append(
                        f"{common}: missing from the {tree.label}; a hub folder needs one "
                        "(without it, the folder's other files are not read)"
                    )
                continue
        except ValuesError as e:  # a linked folder or file
            problems.append(str(e))
            continue
        if problem := deployment_problem(folder.name):
            problems.append(f"{CONFIG_DIR}/{folder.name}/: {problem}; rename the folder")
        else:
            names.append(folder.name)
    persistent = {r for r in Hubs(tuple(names), frozenset()).releases() if _homes(tree, r)}
    return Hubs(tuple(names), frozenset(persistent), tuple(problems))


def _homes(tree: Tree, release: Release) -> bool:
    """Whether the release's plain values keep user homes (secrets never decide the graph);
    values that do not load count as persistent: their values asset fails, naming the file."""
    try:
        layers = config_layers(tree, release, target="aws")
    except ValuesError:
        return True
    return get_path(merge(layers).values, HOMES) != "none"
