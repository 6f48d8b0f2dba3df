"""The aws target: terraform applies infra/, images live in ECR, each hub is a helm release.

Credentials come from the usual AWS chain (environment, profile, instance role); cluster
access is a 0600 kubeconfig made per operation from STS; nothing global is written.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import boto3

from ...chart import JUPYTERHUB
from ...files import write_file
from ...git import Snapshot
from ...hierarchy import host
from ...locks import env_file_lock, env_news, reentrant
from ...releases import Release
from ...settings import Settings
from ...targets import (
    DEPLOYED,
    Deployed,
    DeployError,
    PastRevision,
    Provisioned,
    serves_another_release,
)
from ...values import Layer, Merged, canonical_sha256
from ..helm import Helm, HelmError
from ..image import ImageError, ImageRef, RenderedImage, build, docker_answers, render
from ..terraform import (
    PlanSummary,
    Terraform,
    TerraformError,
    approved_by_tag,
    check_stateful,
    output_values,
)
from .ecr import find_image
from .eks import AwsError, client, kubeconfig
from .lock import s3_lock

RECORD_PREFIX = "tess "  # helm release descriptions the pipeline wrote: "tess {json}"
STATE_KEY = "tess-platform/infra.tfstate"
ECR_PLACEHOLDER = "<ecr-repository>"  # offline: the repository terraform makes


class AwsTarget:
    name = "aws"
    spawn_timeout = 600.0  # a cold user node and an image pull (2i2c allows 600 s)
    spawn_tries = 3  # as 2i2c: a cold user node, then an image pull
    kernel_timeout = 300.0  # the smoke test's imports on a fresh node's cold disk

    def __init__(
        self, settings: Settings, session: boto3.Session | None = None, redact=None
    ) -> None:
        self.settings = settings
        self.redact = redact or (lambda text: text)
        self.region = settings.aws_region
        self.endpoint_url = settings.aws_endpoint_url
        self.session = session or boto3.Session(region_name=self.region)
        self.state = settings.cache / "aws"
        self.outputs_file = self.state / "infra-outputs.json"

    # -- infrastructure ------------------------------------------------------------------
    def ensure_cluster(self, tree_root: Path, approval: str | None, log) -> Provisioned:
        tf, work, summary = self._planned(tree_root, "infra")
        log(f"terraform plan: {summary.headline()}")
        check_stateful(summary, approved=approved_by_tag(approval, summary))
        applied = tf.apply(work / "tfplan")
        log("terraform applied the saved plan" if applied else "no changes: applied nothing")
        raw = tf.outputs()
        outputs = output_values(raw)
        # whole or not at all: a sensor reads it
        write_file(self.outputs_file, json.dumps(outputs, indent=2, sort_keys=True))
        shown = output_values(raw, sensitive=False)  # an output marked sensitive stays apart
        summary_meta = {
            "target": "aws",
            "applied": applied,
            **{k: v for k, v in shown.items() if isinstance(v, str | int | float | bool)},
        }
        return Provisioned(
            summary_meta, version=canonical_sha256(outputs), markdown={"plan": summary.markdown()}
        )

    def plan_infra(self, tree_root: Path) -> PlanSummary:
        """What applying this tree's infra/ would change, planned against the state and never
        applied (`tess-platform plan`), in folders apart from a deploy's."""
        return self._planned(tree_root, "infra-plan")[2]

    def _planned(self, tree_root: Path, folder: str) -> tuple[Terraform, Path, PlanSummary]:
        """infra/ of the tree, initialised in the folder `folder` of the state and planned."""
        infra = tree_root / "infra"
        if not infra.is_dir():
            raise TerraformError(f"infra/: missing from the tree at {tree_root}")
        backend = self._backend()
        work = self._workdir(infra, folder)
        # infra/ grants the deployer role this bucket; a module without the variable ignores it
        tf_vars = {"TF_VAR_state_bucket": self.settings.state_bucket} if backend else {}
        tf = Terraform(work, tf_vars, data_dir=self.state / f"terraform-data-{folder}")
        tf.init(backend)
        tfvars = work / "terraform.tfvars"
        return tf, work, tf.plan(work / "tfplan", tfvars if tfvars.exists() else None)

    def _backend(self) -> dict[str, str] | None:
        """The S3 backend's settings where the state is shared (TESS_STATE_BUCKET); with
        TESS_AWS_ENDPOINT_URL, its S3 and STS calls go there too, as every AWS call does."""
        if not self.settings.state_bucket:
            return None
        backend = {"bucket": self.settings.state_bucket, "key": STATE_KEY, "region": self.region}
        if url := self.endpoint_url:
            backend |= {"endpoints": f'{{s3="{url}",sts="{url}"}}', "use_path_style": "true"}
        return backend

    def _workdir(self, infra: Path, folder: str) -> Path:
        """infra/ of this snapshot in a folder terraform may write in (the snapshot is
        read-only); a local state, where no S3 backend is configured, stays there."""
        work = self.state / folder
        work.mkdir(parents=True, exist_ok=True)
        for old in work.iterdir():
            if not old.name.startswith("terraform.tfstate"):
                shutil.rmtree(old) if old.is_dir() else old.unlink()
        shutil.copytree(infra, work, dirs_exist_ok=True)
        return work

    def _outputs(self) -> dict[str, Any]:
        if not self.outputs_file.exists():
            raise DeployError(
                "the infrastructure outputs are not known here: materialize infra/eks_cluster first"
            )
        return json.loads(self.outputs_file.read_text())

    def ensure_storage(self, log) -> Provisioned:
        out = self._outputs()
        summary = {
            "target": "aws",
            "efs_id": out.get("efs_id", ""),
            "storage_class": out.get("storage_class", ""),
        }
        log(f"EFS {summary['efs_id']}, storage class {summary['storage_class']}")
        return Provisioned(summary, version=canonical_sha256(summary))

    # -- image ---------------------------------------------------------------------------
    def image_ref(self, tree_root: Path, offline: bool = False) -> ImageRef:
        return self._in_ecr(render(tree_root, self.settings.cache), offline)

    def _in_ecr(self, rendered: RenderedImage, offline: bool = False) -> ImageRef:
        """The rendered image in the ECR repository, with its digest there if pushed."""
        try:
            repository = self._outputs()["ecr_repository_url"]
        except DeployError as e:
            if not offline:
                raise
            return ImageRef.of(ECR_PLACEHOLDER, rendered, unknown=(f"{ECR_PLACEHOLDER}: {e}",))
        try:
            digest = find_image(
                self.session, repository.rsplit("/", 1)[-1], rendered.tag, self.endpoint_url
            )
        except AwsError as e:
            if not offline:
                raise
            return ImageRef.of(
                repository,
                rendered,
                unknown=(f"the image digest: {e}; the content tag {rendered.tag} stands in",),
            )
        return ImageRef.of(repository, rendered, digest)

    def ensure_image(self, snapshot: Snapshot, log) -> tuple[ImageRef, dict[str, Any]]:
        rendered = render(snapshot.root, self.settings.cache)
        ref = self._in_ecr(rendered)
        meta: dict[str, Any] = {"buildpack": rendered.buildpack, "dockerfile": rendered.dockerfile}
        if ref.digest:
            log(f"{ref.repository}:{ref.tag} is in ECR already ({ref.digest}): no build")
            return ref, {**meta, "built": False}
        if not docker_answers():
            raise ImageError(
                f"{ref.repository}:{ref.tag} is not in ECR, and no Docker daemon "
                "answers here to build it: run this step where Docker runs"
            )
        log(f"building {ref.repository}:{ref.tag} with repo2docker and pushing it to ECR")
        with tempfile.TemporaryDirectory(prefix="tess-docker-") as docker_config:
            self._docker_login(Path(docker_config), ref.repository)
            build(
                snapshot.root / "image",
                f"{ref.repository}:{ref.tag}",
                push=True,
                env={"DOCKER_CONFIG": docker_config},
            )
        ref = self._in_ecr(rendered)
        if not ref.digest:
            raise ImageError(f"{ref.repository}:{ref.tag} was pushed but ECR does not list it")
        return ref, {**meta, "built": True}

    def _docker_login(self, folder: Path, repository: str) -> None:
        """ECR credentials for this build only: a config.json in a temporary DOCKER_CONFIG."""
        auth = client(
            self.session, "ecr", self.region, self.endpoint_url
        ).get_authorization_token()["authorizationData"][0]
        registry = repository.split("/", 1)[0]
        write_file(
            folder / "config.json",
            json.dumps({"auths": {registry: {"auth": auth["authorizationToken"]}}}),
        )

    # -- releases ------------------------------------------------------------------------
    def target_secrets(self, release: Release) -> Layer | None:
        return None  # the secrets files, decrypted: required on this target

    def url(self, release: Release, merged: Merged) -> str:
        return f"https://{host(release, merged)}/"

    def _helm(self, config: Path) -> Helm:
        return Helm(config, redact=self.redact, timeout=self.settings.helm_timeout)

    def _cluster(self):
        return kubeconfig(
            self.session, self._outputs()["cluster_name"], self.region, self.endpoint_url
        )

    def deploy(self, release: Release, values, record: dict[str, Any], log) -> Deployed:
        url = self.url(release, values.merged)
        described = {
            k: record[k]
            for k in ("git_sha", "release_hash", "values_sha256", "image")
            if k in record
        }
        try:
            with self._cluster() as config:
                upgraded = self._helm(config).upgrade(
                    release.name,
                    release.name,
                    JUPYTERHUB,
                    [x.values for x in values.layers],
                    secret_values=values.merged,
                    description=RECORD_PREFIX + json.dumps({**described, "url": url}),
                )
        except (HelmError, AwsError) as e:
            raise DeployError(f"{release.name}: {e}") from None
        notes = [upgraded.recovered] if upgraded.recovered else []
        for note in notes:
            log(note)
        log(f"{release.name}: helm revision {upgraded.revision} deployed")
        return Deployed(upgraded.revision, url, "Upgrade complete", notes)

    def rollback(self, release: Release, revision: int, log) -> Deployed:
        past = {r.revision: r for r in self.history(release)}
        if revision not in past:
            raise DeployError(
                f"{release.name}: no revision {revision} in its history "
                f"(has {sorted(past) or 'none'})"
            )
        try:
            with self._cluster() as config:
                status = self._helm(config).rollback(release.name, release.name, revision)
        except (HelmError, AwsError) as e:
            raise DeployError(f"{release.name}: {e}") from None
        log(f"{release.name}: revision {revision} restored as revision {status['version']}")
        return Deployed(
            int(status["version"]), past[revision].record.get("url", ""), f"Rollback to {revision}"
        )

    def uninstall(self, release: Release, log) -> str:
        if not self.history(release):
            raise DeployError(f"{release.name}: no such release in the cluster")
        try:
            with self._cluster() as config:
                self._helm(config).uninstall(release.name, release.name)
        except (HelmError, AwsError) as e:
            raise DeployError(f"{release.name}: {e}") from None
        return (
            f"{release.name}: uninstalled (helm uninstall); namespace {release.name} and the "
            "user homes on EFS stay"
        )

    def history(self, release: Release) -> list[PastRevision]:
        try:
            with self._cluster() as config:
                entries = self._helm(config).history(release.name, release.name)
        except (HelmError, AwsError) as e:
            raise DeployError(f"{release.name}: {e}") from None
        out = []
        for entry in entries:  # a rollback's description says "Rollback to N": its record is N's
            record = _record(entry.get("description", ""))
            out.append(
                PastRevision(
                    int(entry["revision"]),
                    entry.get("status", ""),
                    entry.get("description", ""),
                    record,
                )
            )
        records: dict[int, dict[str, Any]] = {}
        for r in out:  # in order: a rollback to a rollback finds the record already resolved
            if not r.record and r.description.startswith("Rollback to "):
                r.record = records.get(int(r.description.split()[-1]), {})
            records[r.revision] = r.record
        return out

    def serving(self, release: Release) -> PastRevision | None:
        history = self.history(release)
        # a newer revision failed or stuck (pending-*): not as deployed, so the next deploy
        # goes to helm, which recovers it, instead of finding the release unchanged
        return history[-1] if history and history[-1].status == DEPLOYED else None

    def drift(self, release: Release, deployed_hash: str | None) -> str | None:
        history = self.history(release)
        if not history:
            return "the release is not in the cluster" if deployed_hash else None
        last = history[-1]
        if last.status != DEPLOYED:
            return f"helm revision {last.revision} is {last.status}"
        return serves_another_release(last, deployed_hash, "helm revision")

    def env_lock(self, env: str, log, owner: str | None = None):
        if self.settings.state_bucket:  # across machines: Dagster may run in many pods
            key = f"tess-platform/locks/{env}"
            waiting, took_over = env_news(env, log)
            return reentrant(
                f"s3:{key}",
                lambda: s3_lock(
                    self.session,
                    self.settings.state_bucket,
                    key,
                    self.region,
                    self.endpoint_url,
                    waiting,
                    took_over,
                    owner=owner,
                ),
            )
        return env_file_lock(self.state / "locks" / f"{env}.lock", env, log, owner)


def _record(description: str) -> dict[str, Any]:
    if not description.startswith(RECORD_PREFIX):
        return {}
    try:
        return json.loads(description[len(RECORD_PREFIX) :])
    except json.JSONDecodeError:
        return {}
