"""The plan as a pull request's comment: one comment of the platform's, found by its marker
and edited on each push, else made. Run by the pull-request workflow (`.ci/pr/comment`) with
what GitHub Actions gives it: GITHUB_API_URL, GITHUB_REPOSITORY, GH_TOKEN, and PR."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .http_api import ApiError, call, github_headers

MARKER = "<!-- tess-platform plan -->"  # invisible in the rendered comment


def post_plan(api: str, repo: str, number: str, token: str, plan: str) -> str:
    """Put `plan` in the pull request's comment; what was done ("updated", "created")."""
    base, headers = f"{api.rstrip('/')}/repos/{repo}", github_headers(token)
    where = f"GitHub's comments API for {repo}#{number}"
    body = {"body": f"{MARKER}\n{plan}"}
    page = 1
    while comments := call(
        where, "GET", f"{base}/issues/{number}/comments?per_page=100&page={page}", None, headers
    ):
        for comment in comments:
            if (comment.get("body") or "").startswith(MARKER):
                call(where, "PATCH", f"{base}/issues/comments/{comment['id']}", body, headers)
                return f"updated comment {comment['id']}"
        page += 1
    made = call(where, "POST", f"{base}/issues/{number}/comments", body, headers)
    return f"created comment {made['id']}"


def main(argv: list[str]) -> int:
    env = os.environ
    try:
        done = post_plan(
            env.get("GITHUB_API_URL", "https://api.github.com"),
            env["GITHUB_REPOSITORY"],
            env["PR"],
            env["GH_TOKEN"],
            Path(argv[0]).read_text(),
        )
    except KeyError as e:
        print(f"comment: {e.args[0]} is not set (GitHub Actions sets it)", file=sys.stderr)
        return 1
    except (ApiError, OSError) as e:
        print(f"comment: {e}", file=sys.stderr)
        return 1
    print(done)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
