"""The user image in ECR: is a tag there, and under which digest."""

from __future__ import annotations

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from .eks import AwsError, aws_error, client


def find_image(
    session: boto3.Session, repository: str, tag: str, endpoint_url: str | None = None
) -> str | None:
    """The digest (`sha256:...`) the tag points at, or None when the repository lacks it."""
    ecr = client(session, "ecr", None, endpoint_url)
    try:
        found = ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])
    except ClientError as e:
        code = e.response.get("Error", {}).get("Code")
        if code == "ImageNotFoundException":
            return None
        if code == "RepositoryNotFoundException":
            raise _no_repository(repository, ecr.meta.region_name) from None
        raise aws_error(f"ECR image {repository}:{tag}", e) from None
    except BotoCoreError as e:
        raise aws_error(f"ECR image {repository}:{tag}", e) from None
    details = found.get("imageDetails") or []
    return details[0].get("imageDigest") if details else None


def _no_repository(repository: str, region: str) -> AwsError:
    return AwsError(
        f"ECR repository {repository!r} does not exist in {region} "
        "(the terraform in infra/ creates it: materialize the infra group)"
    )
