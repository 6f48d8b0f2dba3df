"""The kubeconfig's credential plugin: helm (client-go) runs it whenever it needs a token, and
again once the last one expires, so a helm call longer than a token's 15 minutes (an atomic
upgrade and its rollback can take 20) keeps its credentials. Prints an ExecCredential, as
`aws eks get-token` does, from the AWS credentials of its environment; takes no secret on its
command line.

    python -m tess_platform.backends.aws.exec_credential --cluster NAME --region REGION
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta

import boto3

from .eks import EXEC_API_VERSION, AwsError, eks_token

# EKS accepts a token for 15 minutes from its signing; client-go asks again after this
VALID_FOR = timedelta(minutes=14)


def exec_credential(token: str, now: datetime) -> dict:
    return {
        "kind": "ExecCredential",
        "apiVersion": EXEC_API_VERSION,
        "spec": {},
        "status": {
            "expirationTimestamp": (now + VALID_FOR).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "token": token,
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="exec_credential")
    parser.add_argument("--cluster", required=True)
    parser.add_argument("--region", required=True)
    parser.add_argument("--endpoint-url")
    args = parser.parse_args(argv)
    now = datetime.now(UTC)
    try:
        token = eks_token(
            boto3.Session(region_name=args.region), args.cluster, args.region, args.endpoint_url
        )
    except AwsError as e:
        print(f"tess-platform EKS credentials: {e}", file=sys.stderr)  # helm shows it
        return 1
    json.dump(exec_credential(token, now), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
