"""EKS credentials made per operation, as `aws eks get-token` makes them: a presigned STS
GetCallerIdentity URL is the bearer token, made by the credential plugin of a temporary
kubeconfig (the cluster's endpoint and CA) that is removed after use. Nothing global (~/.kube,
~/.aws) is written."""

from __future__ import annotations

import base64
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import yaml
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from ...files import private_temp_file

TOKEN_PREFIX = "k8s-aws-v1."
CLUSTER_ID_HEADER = "x-k8s-aws-id"  # binds the token to one cluster
# what `aws eks get-token` presigns with; EKS itself accepts a token for 15 minutes from its
# signing time (the credential plugin makes the next one)
TOKEN_EXPIRES = 60
UNREADY = {"CREATING", "DELETING", "FAILED"}
EXEC_API_VERSION = "client.authentication.k8s.io/v1beta1"  # of the credential plugin
AWS_FILES = {
    "AWS_CONFIG_FILE": "~/.aws/config",
    "AWS_SHARED_CREDENTIALS_FILE": "~/.aws/credentials",
}


class AwsError(RuntimeError):
    """An AWS call failed; the message names the resource and what to do."""


def aws_error(what: str, error: Exception) -> AwsError:
    """An AwsError for `what` from a botocore error: its code and message, no request data."""
    if isinstance(error, NoCredentialsError):
        return AwsError(f"{what}: no AWS credentials (set AWS_PROFILE or AWS_ACCESS_KEY_ID)")
    if isinstance(error, ClientError):
        info = error.response.get("Error", {})
        return AwsError(f"{what}: {info.get('Code', 'error')}: {info.get('Message', '')}".strip())
    return AwsError(f"{what}: {type(error).__name__}: {error}")


def client(session: boto3.Session, service: str, region: str | None, endpoint_url: str | None):
    try:
        return session.client(service, region_name=region, endpoint_url=endpoint_url)
    except BotoCoreError as e:  # e.g. no region configured
        raise aws_error(f"AWS {service} client", e) from None


def eks_token(
    session: boto3.Session, cluster_name: str, region: str, endpoint_url: str | None = None
) -> str:
    """A bearer token for the cluster's API server, valid for the caller's AWS identity."""
    sts = client(session, "sts", region, endpoint_url)
    # the cluster id header must be signed, but it is no parameter of GetCallerIdentity: carry it
    # through the request context past validation, then add it just before signing. The
    # handlers live on this client's own event emitter, so no other client sees them.
    sts.meta.events.register("provide-client-params.sts.GetCallerIdentity", _keep_cluster_id)
    sts.meta.events.register("before-sign.sts.GetCallerIdentity", _add_cluster_id)
    try:
        url = sts.generate_presigned_url(
            "get_caller_identity",
            Params={CLUSTER_ID_HEADER: cluster_name},
            ExpiresIn=TOKEN_EXPIRES,
            HttpMethod="GET",
        )
    except (BotoCoreError, ClientError) as e:
        raise aws_error(f"EKS token for cluster {cluster_name!r}", e) from None
    return TOKEN_PREFIX + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


def _keep_cluster_id(params: dict[str, Any], context: dict[str, Any], **_) -> None:
    if CLUSTER_ID_HEADER in params:
        context[CLUSTER_ID_HEADER] = params.pop(CLUSTER_ID_HEADER)


def _add_cluster_id(request, **_) -> None:
    if CLUSTER_ID_HEADER in request.context:
        request.headers[CLUSTER_ID_HEADER] = request.context[CLUSTER_ID_HEADER]


def describe_cluster(
    session: boto3.Session, cluster_name: str, region: str, endpoint_url: str | None = None
) -> dict[str, Any]:
    eks = client(session, "eks", region, endpoint_url)
    try:
        cluster = eks.describe_cluster(name=cluster_name)["cluster"]
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            raise AwsError(
                f"EKS cluster {cluster_name!r} does not exist in {region} "
                "(the terraform in infra/ creates it: materialize infra/eks_cluster)"
            ) from None
        raise aws_error(f"EKS cluster {cluster_name!r} in {region}", e) from None
    except BotoCoreError as e:
        raise aws_error(f"EKS cluster {cluster_name!r} in {region}", e) from None
    status = cluster.get("status", "")
    ca = cluster.get("certificateAuthority", {}).get("data")
    if status in UNREADY or not cluster.get("endpoint") or not ca:
        raise AwsError(
            f"EKS cluster {cluster_name!r} in {region} is {status or 'not ready'}: "
            "it has no API endpoint to deploy to yet"
        )
    return cluster


@contextmanager
def kubeconfig(
    session: boto3.Session, cluster_name: str, region: str, endpoint_url: str | None = None
) -> Iterator[Path]:
    """A 0600 kubeconfig for one operation on the cluster, removed when the block ends. It
    holds no token: its credential plugin (exec_credential) makes one whenever helm needs it,
    so credentials outlast the 15 minutes of one token."""
    cluster = describe_cluster(session, cluster_name, region, endpoint_url)
    eks_token(session, cluster_name, region, endpoint_url)  # no credentials: say so now
    name = cluster.get("arn") or cluster_name
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": name,
                "cluster": {
                    "server": cluster["endpoint"],
                    "certificate-authority-data": cluster["certificateAuthority"]["data"],
                },
            }
        ],
        "users": [{"name": name, "user": {"exec": _plugin(cluster_name, region, endpoint_url)}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
        "preferences": {},
    }
    text = yaml.safe_dump(config, sort_keys=False)
    with private_temp_file(text, prefix="tess-kubeconfig-", suffix=".yaml") as path:
        yield path


def _plugin(cluster_name: str, region: str, endpoint_url: str | None) -> dict[str, Any]:
    """The exec credential plugin: this Python, and where the AWS files are (helm runs with
    a HOME of its own). Credentials come from the environment helm passes on, never from
    the kubeconfig or the command line."""
    args = ["-m", f"{__package__}.exec_credential", "--cluster", cluster_name, "--region", region]
    env = [
        {"name": name, "value": os.environ.get(name) or os.path.expanduser(default)}
        for name, default in AWS_FILES.items()
    ]
    return {
        "apiVersion": EXEC_API_VERSION,
        "command": sys.executable,
        "args": args + (["--endpoint-url", endpoint_url] if endpoint_url else []),
        "env": env,
        "interactiveMode": "Never",
        "provideClusterInfo": False,
    }
