"""JSON over HTTP to the services people look at (a chat webhook, GitHub's REST API). A URL
or token may be a secret: errors name the service, never the URL, the token or the body."""

from __future__ import annotations

from typing import Any


class ApiError(RuntimeError):
    """A call was not answered as it should be; the message names where, never a secret."""


def call(where: str, method: str, url: str, body: Any = None, headers: dict | None = None) -> Any:
    """`method` `url` with a JSON body; the JSON answer (None when there is none)."""
    import requests  # where a call is made: the code location's import does not pay for it

    try:
        answer = requests.request(method, url, json=body, headers=headers or {}, timeout=15)
    except requests.RequestException as e:
        raise ApiError(f"{where}: not reached ({type(e).__name__})") from None
    if answer.status_code >= 300:
        raise ApiError(f"{where}: answered HTTP {answer.status_code}")
    return answer.json() if answer.content else None


def github_headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json"}
