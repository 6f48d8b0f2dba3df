"""EKS credentials and ECR lookups against moto's server on 127.0.0.1: no AWS, nothing global."""

import base64
import json
import os
import stat
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import yaml

from tess_platform.backends.aws.ecr import find_image
from tess_platform.backends.aws.eks import AwsError, eks_token, kubeconfig

REGION = "us-west-2"
CLUSTER = "tess-platform"
REPOSITORY = "tess-user-image"
ROLE = "arn:aws:iam::123456789012:role/tess-eks-cluster"  # moto accepts a role it never saw
MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": 7023,
            "digest": "sha256:" + "a" * 64,
        },
        "layers": [],
    }
)


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Dummy credentials, a HOME and a temp folder of the test's own: whatever is written
    shows up there."""
    home, tmp = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    tmp.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    yield home, tmp
    assert list(home.iterdir()) == [], "something was written to HOME"
    assert list(tmp.iterdir()) == [], "a temporary file was left behind"


@pytest.fixture(scope="module")
def aws(moto_url):
    """A cluster and a repository with one pushed image, made once for the module."""
    session = boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )
    eks = session.client("eks", endpoint_url=moto_url)
    cluster = eks.create_cluster(
        name=CLUSTER,
        roleArn=ROLE,
        resourcesVpcConfig={"subnetIds": ["subnet-0a", "subnet-0b"]},
    )["cluster"]
    ecr = session.client("ecr", endpoint_url=moto_url)
    ecr.create_repository(repositoryName=REPOSITORY)
    pushed = ecr.put_image(repositoryName=REPOSITORY, imageManifest=MANIFEST, imageTag="0123abcd")
    return {
        "url": moto_url,
        "cluster": cluster,
        "digest": pushed["image"]["imageId"]["imageDigest"],
    }


@pytest.fixture
def session():
    return boto3.Session(region_name=REGION)  # credentials from the test's environment


def decode(token: str) -> str:
    assert token.startswith("k8s-aws-v1.")
    body = token.removeprefix("k8s-aws-v1.")
    assert "=" not in body
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()


def test_the_token_is_a_presigned_sts_get_caller_identity_for_the_cluster(session):
    url = urlsplit(decode(eks_token(session, CLUSTER, REGION)))
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert (url.scheme, url.netloc, url.path) == ("https", f"sts.{REGION}.amazonaws.com", "/")
    assert query["Action"] == "GetCallerIdentity"
    assert query["Version"] == "2011-06-15"
    assert query["X-Amz-Expires"] == "60"
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert query["X-Amz-Credential"].startswith("testing/") and REGION in query["X-Amz-Credential"]
    assert "x-k8s-aws-id" in query["X-Amz-SignedHeaders"].split(";")
    assert query["X-Amz-Signature"]


def test_the_token_signs_with_the_given_endpoint(session, aws):
    url = urlsplit(decode(eks_token(session, CLUSTER, REGION, endpoint_url=aws["url"])))
    assert f"{url.scheme}://{url.netloc}" == aws["url"]
    assert "x-k8s-aws-id" in parse_qs(url.query)["X-Amz-SignedHeaders"][0]


def test_the_cluster_id_header_is_not_left_on_other_clients(session):
    eks_token(session, CLUSTER, REGION)
    # a plain presign from the same session carries no cluster header
    plain = session.client("sts", region_name=REGION).generate_presigned_url(
        "get_caller_identity", ExpiresIn=60
    )
    assert "x-k8s-aws-id" not in parse_qs(urlsplit(plain).query)["X-Amz-SignedHeaders"][0]


def test_the_kubeconfig_is_private_while_in_use_and_gone_after(session, aws, isolated):
    with kubeconfig(session, CLUSTER, REGION, endpoint_url=aws["url"]) as path:
        assert path.parent == isolated[1]
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        config = yaml.safe_load(path.read_text())
    assert not path.exists()

    assert config["kind"] == "Config"
    (cluster,) = config["clusters"]
    assert cluster["cluster"] == {
        "server": aws["cluster"]["endpoint"],
        "certificate-authority-data": aws["cluster"]["certificateAuthority"]["data"],
    }
    (context,) = config["contexts"]
    assert config["current-context"] == context["name"]
    (user,) = config["users"]
    assert context["context"] == {"cluster": cluster["name"], "user": user["name"]}
    assert list(user["user"]) == ["exec"]  # no token in the file: the plugin makes each one
    assert "testing" not in yaml.safe_dump(config)  # nor any credential


def run_plugin(plugin: dict, home: Path) -> subprocess.CompletedProcess:
    """The credential plugin as client-go runs it: its command and args, the environment of
    helm (a HOME of its own) with the plugin's env over it."""
    env = {**os.environ, "HOME": str(home), **{e["name"]: e["value"] for e in plugin["env"]}}
    return subprocess.run(
        [plugin["command"], *plugin["args"]], env=env, capture_output=True, text=True, timeout=60
    )


def test_the_credential_plugin_gives_a_fresh_token_each_time_helm_asks(session, aws, tmp_path):
    with kubeconfig(session, CLUSTER, REGION, endpoint_url=aws["url"]) as path:
        (user,) = yaml.safe_load(path.read_text())["users"]
    plugin = user["user"]["exec"]
    assert plugin["apiVersion"] == "client.authentication.k8s.io/v1beta1"
    assert plugin["interactiveMode"] == "Never"
    assert "testing" not in " ".join(plugin["args"])  # no secret on a command line
    tokens = []
    for _ in range(2):  # as client-go, once the first has expired
        out = run_plugin(plugin, tmp_path)
        assert out.returncode == 0, out.stderr
        credential = json.loads(out.stdout)
        assert credential["kind"] == "ExecCredential"
        expires = datetime.fromisoformat(credential["status"]["expirationTimestamp"])
        assert timedelta(minutes=13) < expires - datetime.now(UTC) <= timedelta(minutes=14)
        query = parse_qs(urlsplit(decode(credential["status"]["token"])).query)
        assert query["Action"] == ["GetCallerIdentity"]
        assert "x-k8s-aws-id" in query["X-Amz-SignedHeaders"][0]
        tokens.append(credential["status"]["token"])
        time.sleep(1.1)  # a new signing time
    assert tokens[0] != tokens[1]


def test_the_credential_plugin_without_credentials_says_so(session, aws, tmp_path, monkeypatch):
    with kubeconfig(session, CLUSTER, REGION, endpoint_url=aws["url"]) as path:
        (user,) = yaml.safe_load(path.read_text())["users"]
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    out = run_plugin(user["user"]["exec"], tmp_path)
    assert out.returncode == 1
    assert "no AWS credentials (set AWS_PROFILE or AWS_ACCESS_KEY_ID)" in out.stderr


def test_the_kubeconfig_is_removed_when_the_operation_fails(session, aws):
    with (
        pytest.raises(RuntimeError, match="boom"),
        kubeconfig(session, CLUSTER, REGION, endpoint_url=aws["url"]) as path,
    ):
        assert path.exists()
        raise RuntimeError("boom")
    assert not path.exists()


def test_a_missing_cluster_is_named(session, aws):
    missing = "EKS cluster 'tess-nowhere' does not exist in us-west-2"
    with (
        pytest.raises(AwsError, match=missing),
        kubeconfig(session, "tess-nowhere", REGION, endpoint_url=aws["url"]),
    ):
        pytest.fail("a kubeconfig for a cluster that does not exist")


def test_ecr_finds_the_digest_of_a_pushed_tag(session, aws):
    digest = find_image(session, REPOSITORY, "0123abcd", endpoint_url=aws["url"])
    assert digest == aws["digest"] and digest.startswith("sha256:")


def test_ecr_has_no_digest_for_a_missing_tag(session, aws):
    assert find_image(session, REPOSITORY, "not-built-yet", endpoint_url=aws["url"]) is None


def test_ecr_names_a_missing_repository(session, aws):
    with pytest.raises(AwsError, match="ECR repository 'tess-nothing' does not exist in us-west-2"):
        find_image(session, "tess-nothing", "0123abcd", endpoint_url=aws["url"])


def test_no_aws_files_are_written(session, aws, isolated):
    home, _ = isolated
    with kubeconfig(session, CLUSTER, REGION, endpoint_url=aws["url"]):
        find_image(session, REPOSITORY, "0123abcd", endpoint_url=aws["url"])
    for folder in (".kube", ".aws", ".docker"):
        assert not (home / folder).exists()
    assert not Path(home).joinpath(".kube", "config").exists()
