"""The platform's operations, as the Dagster layer and the command line use them.

One `Platform` serves one process: the settings, the target, the pinned chart, the deployed
repository, and a redactor that learns every secret the process reads.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from .backends.image import ImageRef
from .chart import JUPYTERHUB, ChartError, ChartFiles, chart_files, renderable
from .checks import CHECKS, HUB_HEALTHY, KERNEL_RUNS, SERVER_SPAWNS, SMOKE_TEST, CheckResult
from .cluster_contract import Cluster
from .git import GitError, Repo, Snapshot
from .hierarchy import (
    ReleaseValues,
    SnapshotTree,
    Tree,
    pipeline_layer,
    release_hierarchy,
    release_values,
    secrets_path,
)
from .hubs import Hubs, hubs_of
from .manifests import check_release, read_cluster
from .plan import ReleaseSide
from .promotion import staging_verified
from .releases import Release
from .schema import import_jsonschema, public_names
from .secrets import SERVICE, Redactor
from .settings import Settings
from .targets import Deployed, DeployError, Endpoint, Target, last_deployed
from .tree_digest import folder_digest
from .values import Merged, canonical_sha256, diff, get_path
from .verification import ReleaseRecord

STAGING, PROD = "staging", "prod"
LOOK_BACK = 20  # commits of staging searched for the newest verified SHA


def target_class(settings: Settings) -> type:
    """The class of the target TESS_TARGET names."""
    if settings.target == "aws":
        from .backends.aws.target import AwsTarget  # its boto3 only where it runs

        return AwsTarget
    from .backends.local.target import LocalTarget

    return LocalTarget


def target_from_settings(settings: Settings, redact=None) -> Target:
    """The target TESS_TARGET names; `redact` scrubs secrets from what its tools print."""
    return target_class(settings)(settings, redact=redact)


def branch_hubs(settings: Settings) -> Hubs:
    """The hubs at the head of staging (else HEAD) of the deployed repository: what the
    Dagster code location models when it loads."""
    repo = Repo(settings.repo, settings.cache)
    sha, _ = repo.default_head()
    return hubs_of(SnapshotTree.of(repo.snapshot(sha)))


@dataclass
class DeployOutcome:
    deployed: Deployed
    release_hash: str
    values_sha256: str
    changes: list[str] = field(default_factory=list)


def release_hash(chart: ChartFiles, values: ReleaseValues, tree: Tree) -> str:
    """What decides whether a release must be deployed: the chart, the values (secrets hashed,
    the image pinned in them) and the infrastructure it runs on."""
    return canonical_sha256(
        {
            "chart": chart.chart.label,
            "values": values.merged.fingerprint(),
            "infra": folder_digest(tree.root / "infra"),
        }
    )


class Platform:
    def __init__(self, settings: Settings | None = None, target: Target | None = None) -> None:
        self.settings = settings or Settings.from_env()
        self.redact = Redactor()  # learns every secret this process reads
        self.target = target or target_from_settings(self.settings, self.redact)
        self.repo = Repo(self.settings.repo, self.settings.cache)
        self._images: dict[Path, ImageRef] = {}
        # a Platform serves one command, step or tick: a tree's infra/ is read once in it,
        # a release's values merged once
        self._clusters: dict[Path, Cluster] = {}
        self._values: dict[tuple, ReleaseValues] = {}

    @cached_property
    def public_names(self) -> frozenset[str]:
        return public_names(self.chart)

    @cached_property
    def git_crypt_key(self) -> str | None:
        """The repository's git-crypt key: TESS_GIT_CRYPT_KEY, else the Secrets Manager secret
        TESS_GIT_CRYPT_KEY_SECRET names (production), read once by this process."""
        key = self.settings.git_crypt_key
        if key is None and (secret_id := self.settings.git_crypt_key_secret):
            import boto3

            from .backends.aws.secrets_manager import read_git_crypt_key

            session = boto3.Session(region_name=self.settings.aws_region)
            key = read_git_crypt_key(
                session, secret_id, self.settings.aws_region, self.settings.aws_endpoint_url
            )
        if key is not None:
            self.redact.add([key])
        return key

    @cached_property
    def chart(self) -> ChartFiles:
        return chart_files(JUPYTERHUB, self.settings.chart_dir, self.settings.cache)

    def preload(self) -> None:
        """Read into this process what every hub step reads first (the chart's defaults
        and schema, the schema validator's, the target's and the checks' libraries): processes
        forked from it start with them (a deploy's run worker, whose steps fork from it). A
        chart that cannot be read is left to the hub step, which says so on its asset. (The
        image, rendered by the image step, is read back from the cache.)"""
        import_jsonschema()
        target_class(self.settings)
        importlib.import_module(".health", __package__)
        with contextlib.suppress(ChartError):
            _ = self.chart

    def snapshot(
        self, sha: str | None, merged_into: tuple[str, ...] = (STAGING,)
    ) -> tuple[Snapshot, str]:
        """The tree to deploy, and how its SHA was chosen. Only merged work is deployed: a SHA
        must be on one of the branches `merged_into` (where the repository has them)."""
        if not sha:
            head, how = self.repo.default_head()
            return self.repo.snapshot(head), how
        snapshot = self.repo.snapshot(sha)
        branches = [b for b in merged_into if self.repo.head(b)]
        if branches and not any(self.repo.is_on_branch(snapshot.sha, b) for b in branches):
            raise GitError(
                f"{sha} is not on branch {' or '.join(branches)} of "
                f"{self.repo.url}: only merged commits are deployed"
            )
        return snapshot, "tag tess/git_sha"

    def tree(self, snapshot: Snapshot) -> Tree:
        return SnapshotTree.of(snapshot)

    def hubs(self, snapshot: Snapshot) -> Hubs:
        return hubs_of(self.tree(snapshot))

    def values(
        self, tree: Tree, release: Release, image: ImageRef | None, offline: bool = False
    ) -> ReleaseValues:
        """The merged, schema-validated chart values of a release; the image pinned if given.
        `offline` (a review, never a deploy): encrypted secrets without the key are named
        placeholders, said in the hierarchy's notes."""
        # merged once for a hub step's values, deploy and checks: a tree does not change while
        # a Platform serves; the target's secrets can (removed, they are generated anew)
        target_secrets = self.target.target_secrets(release)
        secrets = target_secrets and canonical_sha256(target_secrets.values)
        key = (tree, release, image, offline, secrets)
        if key in self._values:
            return self._values[key]
        if image is None:
            hierarchy = release_hierarchy(
                tree,
                release,
                target=self.target.name,
                git_crypt_key=self.git_crypt_key,
                target_secrets=target_secrets,
                offline=offline,
            )
            base = release_values(self.chart, hierarchy, None, release)
            self.redact.add([*base.secret_values(), *base.secret_key_names(self.public_names)])
            values = ReleaseValues(release, base, base, hierarchy, None)
        else:  # the hierarchy's values, then the pipeline's layer pinning the image
            plain = self.values(tree, release, None, offline)
            pipeline = pipeline_layer(release, plain.base, image)
            merged = release_values(self.chart, plain.hierarchy, pipeline, release)
            self.redact.add(merged.secret_values())
            values = replace(plain, merged=merged, image=image, pipeline=pipeline)
        self.target.url(release, values.merged)  # what the target needs of the values (a port)
        self._values[key] = values
        return values

    def cluster_problems(self, tree: Tree, values: ReleaseValues) -> list[str]:
        """The release as the pinned chart renders it: its objects valid Kubernetes objects of
        the version infra/ pins, and all they need made by infra/ (manifests.check_release).
        Only where releases are helm releases on that cluster (the aws target)."""
        if not self.settings.kubernetes:
            return []
        if tree.root not in self._clusters:
            self._clusters[tree.root] = read_cluster(tree.root / "infra")
        chart_dir = renderable(self.chart, self.settings.cache)
        return [
            self.redact(line)
            for line in check_release(
                chart_dir, self._clusters[tree.root], values.release, values.merged, self.redact
            )
        ]

    def release_side(self, tree: Tree, release: Release, label: str) -> ReleaseSide:
        """A release as `tree` makes it, merged offline as `validate` merges it: what `plan`
        compares. Its errors are the values' and the cluster contract's."""
        image = self.image_ref(tree, offline=True)
        side = ReleaseSide(
            image=image.tag,
            chart=JUPYTERHUB.label,
            infra=folder_digest(tree.root / "infra"),
            label=label,
            root=tree.root,
        )
        try:
            values = self.values(tree, release, image, offline=True)
            problems = self.cluster_problems(tree, values)
        except (RuntimeError, ValueError) as e:
            return replace(side, errors=(self.redact(str(e)),))
        return replace(
            side,
            fingerprint=values.base.fingerprint(),
            secret_paths=frozenset(values.base.secret_paths),
            errors=tuple(problems),
        )

    def desired(self, snapshot: Snapshot, env: str) -> dict[Release, str | None]:
        """The release_hash each release of `env` wants at this snapshot; None where it cannot
        be known yet (values that do not merge, infrastructure not provisioned): a run of it
        will provision what is missing, or show why not."""
        tree = self.tree(snapshot)
        wanted: dict[Release, str | None] = {}
        for release in hubs_of(tree).releases(env):
            try:
                values = self.values(tree, release, self.image_ref(tree))
                wanted[release] = release_hash(self.chart, values, tree)
            except (RuntimeError, ValueError):  # bad values, no infra yet, AWS unreachable
                wanted[release] = None
        return wanted

    def newest_verified(self, staging: list[ReleaseRecord]) -> str | None:
        """The newest SHA on staging that staging verified, looking back LOOK_BACK commits: a
        docs-only merge after a deploy is verified as much as the deploy's own SHA."""
        for sha in self.repo.recent(STAGING, LOOK_BACK):
            snapshot = self.repo.snapshot(sha)
            image = self.image_ref(self.tree(snapshot)).ref
            if not staging_verified(sha, self.desired(snapshot, STAGING), image, staging):
                return sha
        return None

    def rollback(self, release: Release, revision: int, log) -> tuple[Deployed, dict[str, Any]]:
        """Return `release` to its earlier `revision`, under its environment's lock: what
        serves now, and the record of the revision restored (its git_sha, image, hashes)."""
        restored = {r.revision: r for r in self.target.history(release)}.get(revision)
        with self.target.env_lock(release.env, log):
            deployed = self.target.rollback(release, revision, log)
        return deployed, restored.record if restored else {}

    def uninstall(self, release: Release, log) -> str:
        """Remove a release whose hub folder is gone from every branch that deploys it (else
        the next deploy would install it again); user homes stay."""
        for branch in (STAGING, PROD):
            head = self.repo.head(branch)
            if head and release.deployment in self.hubs(self.repo.snapshot(head)).names:
                raise DeployError(
                    f"hub_config/{release.deployment}/ is still on {branch} ({head[:12]}): a "
                    f"deploy would install {release.name} again. Remove the folder there "
                    "first; nothing was uninstalled"
                )
        with self.target.env_lock(release.env, log):
            return self.target.uninstall(release, log)

    def deploy(self, snapshot: Snapshot, release: Release, image: ImageRef, log) -> DeployOutcome:
        tree = self.tree(snapshot)
        values = self.values(tree, release, image)
        rhash = release_hash(self.chart, values, tree)
        serving = self.target.serving(release)
        if serving and serving.record.get("release_hash") == rhash:
            log(
                f"{release.name}: revision {serving.revision} already runs release {rhash[:12]}; "
                "nothing to deploy"
            )
            unchanged = Deployed(
                serving.revision,
                self.target.url(release, values.merged),
                f"unchanged: revision {serving.revision} already serves it",
            )
            return DeployOutcome(unchanged, rhash, values.sha256, ["no change"])
        # compared with what serves, not with a failed revision after it
        previous = last_deployed(self.target.history(release))
        if previous and "fingerprint" not in previous.record:
            changes = [f"revision {previous.revision} recorded no values to compare with"]
        else:
            before = previous.record["fingerprint"] if previous else None
            changes = diff(before, values.merged.fingerprint(), values.merged.secret_paths)
        record = {
            "git_sha": snapshot.sha,
            "image": image.ref,
            "release_hash": rhash,
            "values_sha256": values.sha256,
            "chart": self.chart.chart.label,
            "fingerprint": values.merged.fingerprint(),
        }
        deployed = self.target.deploy(release, values, record, log=lambda m: log(self.redact(m)))
        return DeployOutcome(deployed, rhash, values.sha256, changes)

    def deploy_verified(
        self, snapshot: Snapshot, release: Release, image: ImageRef, log
    ) -> DeployOutcome:
        """Deploy, then run the release's checks; a release that fails them is rolled back to
        the revision it ran before (prod: users never stay on an unverified hub)."""
        before = last_deployed(self.target.history(release))
        outcome = self.deploy(snapshot, release, image, log)
        failed = [
            f"{name}: {result.description}"
            for name, result in self.checks(release, outcome.release_hash, snapshot).items()
            if not result.passed
        ]
        if not failed:
            return outcome
        if not before or before.revision == outcome.deployed.revision:
            raise DeployError(
                f"{release.name}: checks failed on revision {outcome.deployed.revision} "
                f"({'; '.join(failed)}); no earlier revision to roll back to"
            )
        back = self.target.rollback(release, before.revision, log)
        raise DeployError(
            f"{release.name}: checks failed on revision "
            f"{outcome.deployed.revision} ({'; '.join(failed)}); rolled back to "
            f"revision {before.revision}, serving as revision {back.revision}"
        )

    def checks(
        self,
        release: Release,
        deployed_hash: str | None,
        smoke_at: Snapshot | None = None,
        names: Collection[str] = tuple(CHECKS),
    ) -> dict[str, CheckResult]:
        """Run the release checks `names` (of CHECKS) against what serves, each saying
        what it found serving (revision, release_hash, git_sha): the verification record takes
        a check as evidence only about the deploy it found. hub_healthy also fails on drift from
        `deployed_hash`, the release_hash the pipeline last deployed. kernel_runs runs the smoke
        test of `smoke_at`, the SHA the run works on (a fixed smoke test changes no
        release_hash, so nothing redeploys), else of the SHA that deployed what serves."""
        serving = self.target.serving(release)
        found = (
            {
                "revision": serving.revision,
                "release_hash": serving.record.get("release_hash", ""),
                "git_sha": serving.record.get("git_sha", ""),
            }
            if serving
            else {}
        )
        results = self._probe(release, deployed_hash, smoke_at, names)
        return {
            name: CheckResult(r.passed, r.description, {**r.details, **found})
            for name, r in results.items()
            if name in names
        }

    def _probe(
        self,
        release: Release,
        deployed_hash: str | None,
        smoke_at: Snapshot | None,
        names: Collection[str],
    ) -> dict[str, CheckResult]:
        from . import health  # its HTTP client only where a hub is checked

        deployed = self._deployed_snapshot(release)
        endpoint = self._endpoint_at(release, deployed)
        results = {}
        if HUB_HEALTHY in names:
            drift = self.target.drift(release, deployed_hash)
            results[HUB_HEALTHY] = (
                CheckResult(False, f"drift: {drift}", {"drift": drift})
                if drift
                else health.hub_healthy(endpoint)
            )
        if not {SERVER_SPAWNS, KERNEL_RUNS} & set(names):
            return results
        smoke = smoke_at or deployed
        smoke_test = self.tree(smoke).root / SMOKE_TEST
        code = smoke_test.read_text() if KERNEL_RUNS in names and smoke_test.is_file() else None
        target = self.target
        results |= health.server_checks(
            endpoint, code, target.spawn_timeout, target.kernel_timeout, target.spawn_tries
        )
        if code is not None:
            results[KERNEL_RUNS].details["smoke_test_sha"] = smoke.sha
        elif KERNEL_RUNS in names:
            results[KERNEL_RUNS] = CheckResult(
                False,
                f"{SMOKE_TEST}: missing at {smoke.sha[:12]}; kernel_runs runs it in a "
                "user's kernel: add a short, offline test of the science stack",
            )
        return results

    def endpoint_for(self, release: Release, merged: Merged) -> Endpoint:
        """Where a release with these values answers, and the pipeline's service token."""
        token = get_path(merged.values, ("hub", "services", SERVICE, "apiToken"))
        if not token:
            raise DeployError(
                f"{release.name}: hub.services.{SERVICE}.apiToken is not set: the "
                f"health checks need it in {secrets_path(release)}"
            )
        return Endpoint(self.target.url(release, merged), str(token))

    def endpoint(self, release: Release) -> Endpoint:
        """The endpoint of the revision that serves, from the values at the SHA it deployed."""
        return self._endpoint_at(release, self._deployed_snapshot(release))

    def _endpoint_at(self, release: Release, snapshot: Snapshot) -> Endpoint:
        return self.endpoint_for(release, self.values(self.tree(snapshot), release, None).merged)

    def _deployed_snapshot(self, release: Release) -> Snapshot:
        deployed = last_deployed(self.target.history(release))
        sha = deployed.record.get("git_sha") if deployed else None
        if not sha:
            raise DeployError(f"{release.name}: not deployed by the pipeline yet")
        return self.repo.snapshot(sha)

    def image_ref(self, tree: Tree, offline: bool = False) -> ImageRef:
        """The image of a tree; a snapshot's never changes, so it is rendered once. `offline`:
        as Target.image_ref."""
        if offline or not isinstance(tree, SnapshotTree):
            return self.target.image_ref(tree.root, offline)
        if tree.root not in self._images:
            self._images[tree.root] = self.target.image_ref(tree.root)
        return self._images[tree.root]
