"""One deploy per environment across machines: a lock object in S3, written only if absent.

S3's conditional write (If-None-Match: *) is atomic; a lock older than `stale_after` belongs
to a run that died, and is taken over (and `on_takeover` told whose it was)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

import boto3
from botocore.exceptions import ClientError

from .eks import client


@contextmanager
def s3_lock(
    session: boto3.Session,
    bucket: str,
    key: str,
    region: str,
    endpoint_url: str | None = None,
    on_wait=None,
    on_takeover=None,
    poll: float = 5.0,
    stale_after: float = 4 * 3600,
    owner: str | None = None,
) -> Iterator[None]:
    """Held already for `owner` (a run id) by another of that run's pods: granted at once."""
    s3 = client(session, "s3", region, endpoint_url)
    body = json.dumps(
        {"holder": socket.gethostname(), "since": time.time(), "owner": owner}
    ).encode()
    waited = False
    while True:
        try:
            s3.put_object(Bucket=bucket, Key=key, Body=body, IfNoneMatch="*")
            break
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") not in (
                "PreconditionFailed",
                "ConditionalRequestConflict",
            ):
                raise
        try:
            held = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read() or b"{}")
        except s3.exceptions.NoSuchKey:
            continue  # released in between: try again at once
        if owner and held.get("owner") == owner:
            yield
            return
        since = held.get("since", 0)
        if time.time() - since > stale_after:
            s3.delete_object(Bucket=bucket, Key=key)  # its run died holding it
            if on_takeover:
                started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(since))
                on_takeover(f"{held.get('holder', 'an unknown host')} (held since {started})")
            continue
        if not waited and on_wait:
            on_wait()
        waited = True
        time.sleep(poll)
    try:
        yield
    finally:
        s3.delete_object(Bucket=bucket, Key=key)
