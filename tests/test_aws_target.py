"""The aws target end to end, short of a real cloud: terraform for real on a provider-free
module standing in for infra/, AWS APIs from moto's server on 127.0.0.1, and helm through a
recording stand-in (no cluster answers here). Asserts exactly what each tool was asked."""

import base64
import functools
import json
import os
import shutil

import boto3
import pytest
import requests
from conftest import PLANTED, export_key
from fakes import FakeHelm

from tess_platform.backends.aws import target as aws_target
from tess_platform.backends.aws.eks import AwsError
from tess_platform.backends.image import ImageError, render
from tess_platform.platform import Platform
from tess_platform.releases import Release
from tess_platform.targets import DeployError

REGION = "us-east-1"
PRIVATE = Release("tess-private", "staging")
INFRA = """\
resource "terraform_data" "cluster" {{
  input = "tess-platform"
}}
output "cluster_name" {{ value = terraform_data.cluster.output }}
output "region" {{ value = "{region}" }}
output "ecr_repository_url" {{ value = "{registry}/tess-user-image" }}
output "efs_id" {{ value = "fs-0123456789abcdef0" }}
output "storage_class" {{ value = "efs-homes" }}
output "db_password" {{
  value     = "{planted}"
  sensitive = true
}}
"""
SECRETS = {
    "proxy": {"secretToken": "a" * 64},
    "hub": {
        "cookieSecret": "b" * 64,
        "services": {"tess-platform": {"apiToken": "c" * 64}},
        "config": {"GitHubOAuthenticator": {"client_id": "tess", "client_secret": PLANTED}},
    },
}


@pytest.fixture
def aws(repo, tess_env, tmp_path, moto_url, monkeypatch):
    home = tmp_path / "user-home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("TESS_TARGET", "aws")
    monkeypatch.setenv("TESS_AWS_REGION", REGION)
    monkeypatch.setenv("TESS_AWS_ENDPOINT_URL", moto_url)
    requests.post(f"{moto_url}/moto-api/reset", timeout=10)  # a fresh account for each test
    session = boto3.Session(region_name=REGION)
    session.client("eks", endpoint_url=moto_url).create_cluster(
        name="tess-platform",
        roleArn="arn:aws:iam::123456789012:role/eks",
        resourcesVpcConfig={"subnetIds": ["subnet-0a"]},
    )
    ecr = session.client("ecr", endpoint_url=moto_url)
    registry = ecr.create_repository(repositoryName="tess-user-image")["repository"][
        "repositoryUri"
    ].rsplit("/", 1)[0]
    shutil.rmtree(repo.path / "infra")  # the stand-in: terraform cannot install providers here
    repo.write("infra/main.tf", INFRA.format(region=REGION, registry=registry, planted=PLANTED))
    repo.write("hub_config/tess-private/secrets/staging.yaml", SECRETS)
    sha = repo.commit("infra and secrets for the aws target")
    monkeypatch.setenv("TESS_GIT_CRYPT_KEY", export_key(repo, tmp_path / "key"))
    fake = FakeHelm(tmp_path / "fake-helm", monkeypatch)
    monkeypatch.setattr(
        aws_target, "Helm", functools.partial(aws_target.Helm, binary=str(fake.binary))
    )
    platform = Platform()
    snapshot = platform.repo.snapshot(sha)
    yield type(
        "Aws",
        (),
        {
            "platform": platform,
            "snapshot": snapshot,
            "fake": fake,
            "ecr": ecr,
            "home": home,
            "repo": repo,
        },
    )
    assert list(home.iterdir()) == [], "something was written to HOME"


def push_image(aws) -> str:
    tag = render(aws.snapshot.root).tag
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "layers": [],
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": 1,
                "digest": "sha256:" + "e" * 64,
            },
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        }
    )
    pushed = aws.ecr.put_image(
        repositoryName="tess-user-image", imageManifest=manifest, imageTag=tag
    )
    return pushed["image"]["imageId"]["imageDigest"]


def test_terraform_outputs_become_the_infra_assets_values(aws):
    target, logs = aws.platform.target, []
    cluster = target.ensure_cluster(aws.snapshot.root, None, logs.append)
    assert cluster.summary["cluster_name"] == "tess-platform" and cluster.summary["applied"]
    # an output infra/ marks sensitive is never shown: not in the asset's metadata or its log
    assert "db_password" not in cluster.summary
    assert PLANTED not in json.dumps([cluster.summary, cluster.markdown, logs])
    assert "terraform_data.cluster" in cluster.markdown["plan"]
    again = target.ensure_cluster(aws.snapshot.root, None, logs.append)
    assert not again.summary["applied"] and again.version == cluster.version
    assert logs[-1] == "no changes: applied nothing"
    storage = target.ensure_storage(logs.append)
    assert storage.summary == {
        "target": "aws",
        "efs_id": "fs-0123456789abcdef0",
        "storage_class": "efs-homes",
    }


def test_the_state_is_shared_in_s3_and_a_plan_elsewhere_reads_it(aws, tmp_path, monkeypatch):
    """Applied on one machine, the state is in the bucket (S3's own lock file, no table); a
    plan on another machine, with nothing of the first's, finds nothing to change."""
    s3 = boto3.Session(region_name=REGION).client(
        "s3", endpoint_url=os.environ["TESS_AWS_ENDPOINT_URL"]
    )
    s3.create_bucket(Bucket="tess-state")
    monkeypatch.setenv("TESS_STATE_BUCKET", "tess-state")
    aws.repo.write(
        "infra/backend.tf", 'terraform {\n  backend "s3" {\n    use_lockfile = true\n  }\n}\n'
    )
    sha = aws.repo.commit("infra/ keeps its state in S3")
    platform = Platform()
    snapshot = platform.repo.snapshot(sha)
    applied = platform.target.ensure_cluster(snapshot.root, None, lambda m: None)
    assert applied.summary["applied"]
    state = json.loads(s3.get_object(Bucket="tess-state", Key=aws_target.STATE_KEY)["Body"].read())
    assert [r["type"] for r in state["resources"]] == ["terraform_data"]
    assert "Contents" not in s3.list_objects_v2(
        Bucket="tess-state", Prefix=f"{aws_target.STATE_KEY}.tflock"
    )

    monkeypatch.setenv("TESS_CACHE", str(tmp_path / "another-machine"))
    elsewhere = Platform()
    planned = elsewhere.target.plan_infra(elsewhere.repo.snapshot(sha).root)
    assert planned.headline() == "No changes: the infrastructure matches the configuration."
    assert not (tmp_path / "another-machine/aws/infra-plan/terraform.tfstate").exists()


def test_the_plan_of_infra_is_terraforms_and_is_never_applied(aws):
    target, logs = aws.platform.target, []
    planned = target.plan_infra(aws.snapshot.root)
    assert planned.headline() == (
        "Plan: 1 to add, 0 to change, 0 to replace, 0 to destroy, 6 output(s) to change."
    )
    assert "| add | `terraform_data.cluster` |" in planned.markdown()
    cluster = target.ensure_cluster(aws.snapshot.root, None, logs.append)  # still to apply
    assert cluster.summary["applied"] and logs[0] == f"terraform plan: {planned.headline()}"


def test_the_image_is_looked_up_in_ecr_and_not_rebuilt(aws):
    target = aws.platform.target
    target.ensure_cluster(aws.snapshot.root, None, print)
    with pytest.raises(ImageError, match="is not in ECR, and no Docker daemon answers here"):
        target.ensure_image(aws.snapshot, print)
    digest = push_image(aws)
    ref, meta = target.ensure_image(aws.snapshot, print)
    assert (ref.digest, meta["built"]) == (digest, False)
    assert ref.ref == f"{ref.repository}@{digest}"


def test_a_release_is_a_helm_upgrade_of_the_pinned_chart_with_values_in_order(aws):
    target, platform = aws.platform.target, aws.platform
    target.ensure_cluster(aws.snapshot.root, None, print)
    digest = push_image(aws)
    image = platform.image_ref(platform.tree(aws.snapshot))
    outcome = platform.deploy(aws.snapshot, PRIVATE, image, print)
    assert outcome.deployed.url == "https://staging.private.tess.example.org/"
    (upgrade,) = [c for c in aws.fake.calls() if c["argv"][0] == "upgrade"]
    argv = upgrade["argv"]
    assert argv[:13] == [
        "upgrade",
        "--install",
        "tess-private-staging",
        "jupyterhub",
        "--repo",
        "https://hub.jupyter.org/helm-chart/",
        "--version",
        "4.4.0",
        "--namespace",
        "tess-private-staging",
        "--create-namespace",
        "--atomic",
        "--wait",
    ]
    assert argv[argv.index("--timeout") + 1] == "10m"
    files = upgrade["files"]
    assert [f["mode"] for f in files] == [0o600] * 5  # values, common, staging, secrets, pipeline
    assert "authenticator_class: github" in files[1]["content"]
    assert PLANTED in files[3]["content"]  # helm gets the secret, in a 0600 file
    assert f"image: {image.repository}@{digest}" in files[4]["content"]  # pinned by digest
    record = json.loads(argv[argv.index("--description") + 1].removeprefix("tess "))
    assert record["release_hash"] == outcome.release_hash
    assert PLANTED not in " ".join(argv)
    serving = target.serving(PRIVATE)
    assert serving.record["git_sha"] == aws.snapshot.sha
    assert target.drift(PRIVATE, outcome.release_hash) is None
    assert target.drift(PRIVATE, "f" * 64) == (
        f"helm revision {serving.revision} serves release {outcome.release_hash[:12]}, but the "
        "pipeline last deployed release ffffffffffff"
    )
    again = platform.deploy(aws.snapshot, PRIVATE, image, print)
    assert again.changes == ["no change"]  # helm says it runs this release_hash already
    # an upgrade left stuck after it (a deploy killed mid-helm): nothing serves as deployed,
    # so the same tree goes to helm again, which rolls the stuck revision back and upgrades
    state = aws.fake.log.with_name("state.json")
    revisions = json.loads(state.read_text())
    stuck = {"revision": revisions[-1]["revision"] + 1, "status": "pending-upgrade"}
    state.write_text(json.dumps([*revisions, {**stuck, "description": "Preparing upgrade"}]))
    assert target.serving(PRIVATE) is None
    assert target.drift(PRIVATE, outcome.release_hash) == (
        f"helm revision {stuck['revision']} is pending-upgrade"
    )
    recovered = platform.deploy(aws.snapshot, PRIVATE, image, print)
    assert recovered.changes != ["no change"]
    assert aws.fake.commands()[-4:-1] == ["history", "rollback", "upgrade"]
    assert target.serving(PRIVATE).record["release_hash"] == outcome.release_hash
    endpoint = platform.endpoint(PRIVATE)
    assert (endpoint.url, endpoint.api_token) == (
        "https://staging.private.tess.example.org/",
        "c" * 64,
    )


def test_rollback_and_its_refusal(aws):
    target, platform = aws.platform.target, aws.platform
    target.ensure_cluster(aws.snapshot.root, None, print)
    push_image(aws)
    platform.deploy(aws.snapshot, PRIVATE, platform.image_ref(platform.tree(aws.snapshot)), print)
    with pytest.raises(DeployError, match="no revision 7 in its history"):
        target.rollback(PRIVATE, 7, print)
    back = target.rollback(PRIVATE, 1, print)
    (rollback,) = [c["argv"] for c in aws.fake.calls() if c["argv"][0] == "rollback"]
    assert rollback[:6] == [
        "rollback",
        "tess-private-staging",
        "1",
        "--namespace",
        "tess-private-staging",
        "--wait",
    ]
    assert back.description == "Rollback to 1" and back.revision == 2
    assert target.history(PRIVATE)[-1].record["git_sha"] == aws.snapshot.sha


def test_without_infra_outputs_a_deploy_says_what_to_do(aws):
    with pytest.raises(DeployError, match="materialize infra/eks_cluster first"):
        aws.platform.target.image_ref(aws.snapshot.root)
    # the sensor's view: unknown, so the first run is requested and provisions the infra
    assert set(aws.platform.desired(aws.snapshot, "staging").values()) == {None}


def test_production_reads_the_git_crypt_key_from_secrets_manager(aws, monkeypatch, moto_url):
    key = base64.b64decode(os.environ["TESS_GIT_CRYPT_KEY"])
    monkeypatch.delenv("TESS_GIT_CRYPT_KEY")
    monkeypatch.setenv("TESS_GIT_CRYPT_KEY_SECRET", "tess-platform/git-crypt-key")
    secrets = boto3.client("secretsmanager", region_name=REGION, endpoint_url=moto_url)
    secrets.create_secret(Name="tess-platform/git-crypt-key", SecretBinary=key)

    platform = Platform()
    values = platform.values(platform.tree(aws.snapshot), PRIVATE, None)
    client = values.merged.values["hub"]["config"]["GitHubOAuthenticator"]
    assert client["client_secret"] == PLANTED  # decrypted with the key from Secrets Manager
    encoded = base64.b64encode(key).decode()
    assert encoded not in os.environ.values() and platform.redact(encoded) == "***"

    monkeypatch.setenv("TESS_GIT_CRYPT_KEY_SECRET", "tess-platform/no-such-secret")
    with pytest.raises(AwsError) as refused:
        Platform().values(platform.tree(aws.snapshot), PRIVATE, None)
    assert str(refused.value).startswith(
        "the git-crypt key in Secrets Manager secret 'tess-platform/no-such-secret' "
        "(TESS_GIT_CRYPT_KEY_SECRET): ResourceNotFoundException"
    )


def test_the_s3_lock_makes_a_second_deploy_wait(moto_url, monkeypatch):
    import threading

    from tess_platform.backends.aws.lock import s3_lock

    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    session = boto3.Session(region_name=REGION)
    session.client("s3", endpoint_url=moto_url).create_bucket(Bucket="tess-state")
    order, waited, inside, second_waits = [], [], threading.Event(), threading.Event()

    def wait_noted(name):
        waited.append(name)
        second_waits.set()

    def deploy(name, hold):
        with s3_lock(
            session,
            "tess-state",
            "locks/staging",
            REGION,
            moto_url,
            on_wait=lambda: wait_noted(name),
            poll=0.05,
        ):
            order.append(f"{name} in")
            inside.set()
            if hold:  # held until the second deploy found it taken, however slow the machine
                second_waits.wait(30)
            order.append(f"{name} out")

    first = threading.Thread(target=deploy, args=("first", True))
    first.start()
    assert inside.wait(30)
    deploy("second", False)
    first.join()
    assert order == ["first in", "first out", "second in", "second out"]
    assert waited == ["second"]


FAKE_REPO2DOCKER = """#!{python}
# a stand-in for repo2docker where no Docker daemon runs: records its call and the registry
# credentials it was given, and "pushes" by registering the image in moto's ECR
import json, os, sys
from pathlib import Path
import boto3
argv = sys.argv[1:]
config = Path(os.environ["DOCKER_CONFIG"], "config.json")
Path(os.environ["FAKE_R2D_LOG"]).write_text(json.dumps({{
    "argv": argv, "docker_config": json.loads(config.read_text()),
    "config_mode": oct(config.stat().st_mode & 0o777)}}))
repository, tag = argv[argv.index("--image-name") + 1].rsplit(":", 1)
manifest = {{"schemaVersion": 2, "layers": [], "mediaType":
            "application/vnd.docker.distribution.manifest.v2+json", "config": {{
            "mediaType": "application/vnd.docker.container.image.v1+json", "size": 1,
            "digest": "sha256:" + "f" * 64}}}}
boto3.client("ecr", region_name="{region}", endpoint_url=os.environ["TESS_AWS_ENDPOINT_URL"]
             ).put_image(repositoryName=repository.rsplit("/", 1)[-1],
                         imageManifest=json.dumps(manifest), imageTag=tag)
"""


def test_a_missing_image_is_built_with_repo2docker_and_pushed(aws, tmp_path, monkeypatch):
    import sys

    from tess_platform.backends import image

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text("#!/bin/sh\nexit 0\n")  # a daemon that answers `info`
    r2d = bin_dir / "jupyter-repo2docker"
    r2d.write_text(FAKE_REPO2DOCKER.format(python=sys.executable, region=REGION))
    for path in (bin_dir / "docker", r2d):
        path.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{__import__('os').environ['PATH']}")
    monkeypatch.setenv("FAKE_R2D_LOG", str(tmp_path / "r2d.json"))
    monkeypatch.setattr(image, "tool", lambda name: str(bin_dir / name))
    target = aws.platform.target
    target.ensure_cluster(aws.snapshot.root, None, print)
    ref, meta = target.ensure_image(aws.snapshot, print)
    assert meta["built"] and ref.digest.startswith("sha256:")
    call = json.loads((tmp_path / "r2d.json").read_text())
    assert call["argv"] == [
        "--no-run",
        "--user-id",
        "1000",
        "--user-name",
        "jovyan",
        "--image-name",
        f"{ref.repository}:{ref.tag}",
        "--push",
        str(aws.snapshot.root / "image"),
    ]
    registry = ref.repository.split("/", 1)[0]
    assert list(call["docker_config"]["auths"]) == [registry] and call["config_mode"] == "0o600"
