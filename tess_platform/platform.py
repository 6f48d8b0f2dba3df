"""The platform's operations, as the Dagster layer and the command line use them.

One `Platform` serves one process: the settings, the target, the pinned chart, the deployed
repository, and a redactor that learns every secret the process reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from .backends.image import ImageRef
from .chart import JUPYTERHUB, ChartFiles, chart_files
from .git import Repo, Snapshot
from .hierarchy import (
    Hierarchy,
    SnapshotTree,
    Tree,
    pipeline_layer,
    release_hierarchy,
    release_values,
)
from .releases import Release
from .secrets import Redactor
from .settings import Settings
from .targets import Deployed, Target, target_from_settings
from .values import Merged, canonical_sha256, diff, leaf_paths


@dataclass
class ReleaseValues:
    release: Release
    merged: Merged
    hierarchy: Hierarchy
    image: ImageRef | None

    @property
    def sha256(self) -> str:
        return self.merged.sha256()

    @property
    def overlay_leaves(self) -> set[tuple[str, ...]]:
        """Leaves the hierarchy itself sets (not the chart's defaults)."""
        return {p for layer in self.hierarchy.layers for p in leaf_paths(layer.values) if p}


@dataclass
class DeployOutcome:
    deployed: Deployed
    release_hash: str
    values_sha256: str
    changes: list[str] = field(default_factory=list)


def release_hash(chart: ChartFiles, values: ReleaseValues) -> str:
    """What decides whether a release must be deployed: chart, values (secrets hashed), image."""
    image = values.image.ref if values.image else None
    return canonical_sha256(
        {"chart": chart.chart.label, "values": values.merged.fingerprint(), "image": image}
    )


class Platform:
    def __init__(self, settings: Settings | None = None, target: Target | None = None) -> None:
        self.settings = settings or Settings.from_env()
        self.target = target or target_from_settings(self.settings)
        self.repo = Repo(self.settings.repo, self.settings.cache)
        self.redact = Redactor()

    @cached_property
    def chart(self) -> ChartFiles:
        return chart_files(JUPYTERHUB, self.settings.chart_dir, self.settings.cache)

    def snapshot(self, sha: str | None) -> tuple[Snapshot, str]:
        """The tree to deploy, and how its SHA was chosen."""
        if sha:
            return self.repo.snapshot(sha), "tag tess/git_sha"
        head, how = self.repo.default_head()
        return self.repo.snapshot(head), how

    def tree(self, snapshot: Snapshot) -> Tree:
        return SnapshotTree(snapshot.root, f"tree at {snapshot.sha[:12]}")

    def values(self, tree: Tree, release: Release, image: ImageRef | None) -> ReleaseValues:
        """The merged, schema-validated chart values of a release; the image pinned if given."""
        hierarchy = release_hierarchy(
            tree,
            release,
            target=self.target.name,
            git_crypt_key=self.settings.git_crypt_key,
            target_secrets=self.target.target_secrets(release),
        )
        pipeline = None
        if image is not None:
            base = release_values(self.chart, hierarchy, None, release)
            self.redact.add(base.secret_values())
            pipeline = pipeline_layer(release, base, image)
        merged = release_values(self.chart, hierarchy, pipeline, release)
        self.redact.add(merged.secret_values())
        return ReleaseValues(release, merged, hierarchy, image)

    def deploy(self, snapshot: Snapshot, release: Release, image: ImageRef, log) -> DeployOutcome:
        values = self.values(self.tree(snapshot), release, image)
        rhash = release_hash(self.chart, values)
        serving = self.target.serving(release)
        if serving and serving.record.get("release_hash") == rhash:
            log(
                f"{release.name}: revision {serving.revision} already runs release {rhash[:12]}; "
                "nothing to deploy"
            )
            unchanged = Deployed(
                serving.revision,
                self.target.endpoint(release).url,
                f"unchanged: revision {serving.revision} already serves it",
            )
            return DeployOutcome(unchanged, rhash, values.sha256, ["no change"])
        previous = self.target.history(release)
        before = previous[-1].record.get("fingerprint") if previous else None
        changes = diff(before, values.merged.fingerprint(), values.merged.secret_paths)
        record = {
            "git_sha": snapshot.sha,
            "image": image.ref,
            "release_hash": rhash,
            "values_sha256": values.sha256,
            "chart": self.chart.chart.label,
            "fingerprint": values.merged.fingerprint(),
        }
        deployed = self.target.deploy(
            release, values.merged, values.overlay_leaves, record, log=lambda m: log(self.redact(m))
        )
        return DeployOutcome(deployed, rhash, values.sha256, changes)

    def image_ref(self, tree: Tree) -> ImageRef:
        return self.target.image_ref(tree.root)
