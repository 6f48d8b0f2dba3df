"""The repository's git-crypt key from AWS Secrets Manager, where production keeps it: read
into this process's memory when a secrets file is decrypted, never into an environment, a file
that outlives the decryption, or a log line."""

from __future__ import annotations

import base64

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from .eks import AwsError, aws_error, client


def read_git_crypt_key(
    session: boto3.Session, secret_id: str, region: str, endpoint_url: str | None = None
) -> str:
    """The key as TESS_GIT_CRYPT_KEY would give it (base64 of `git-crypt export-key`): the
    secret's string as it is, or its binary value encoded."""
    what = f"the git-crypt key in Secrets Manager secret {secret_id!r} (TESS_GIT_CRYPT_KEY_SECRET)"
    try:
        found = client(session, "secretsmanager", region, endpoint_url).get_secret_value(
            SecretId=secret_id
        )
    except (BotoCoreError, ClientError) as e:
        raise aws_error(what, e) from None
    if found.get("SecretBinary"):
        return base64.b64encode(found["SecretBinary"]).decode()
    if text := (found.get("SecretString") or "").strip():
        return text
    raise AwsError(
        f"{what}: empty. Store it once: `aws secretsmanager put-secret-value --secret-id "
        f"{secret_id} --secret-binary fileb://KEYFILE` (KEYFILE from `git-crypt export-key`)"
    )
