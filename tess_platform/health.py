"""Health checks against a running hub, over real HTTP with the tess-platform service token."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import requests

from .targets import Endpoint

CHECK_USER = "tess-check"
HTTP_TIMEOUT = 30  # seconds for one request: a loaded hub answers slowly, not wrongly


@dataclass
class CheckResult:
    passed: bool
    description: str
    details: dict[str, Any] = field(default_factory=dict)


def _api(endpoint: Endpoint, method: str, path: str, **kw) -> requests.Response:
    headers = {"Authorization": f"token {endpoint.api_token}"}
    return requests.request(
        method, f"{endpoint.url}hub/api/{path}", headers=headers, timeout=HTTP_TIMEOUT, **kw
    )


def hub_healthy(endpoint: Endpoint) -> CheckResult:
    """The hub answers /hub/health and, with the service token, its REST API."""
    try:
        health = requests.get(f"{endpoint.url}hub/health", timeout=HTTP_TIMEOUT)
        if health.status_code != 200:
            return CheckResult(False, f"/hub/health answered {health.status_code}")
        info = _api(endpoint, "GET", "")
        if info.status_code != 200:
            return CheckResult(False, f"/hub/api/ answered {info.status_code} to the service token")
        version = info.json().get("version", "?")
    except requests.RequestException as e:
        return CheckResult(False, f"{endpoint.url} did not answer: {type(e).__name__}")
    return CheckResult(
        True,
        f"hub {version} healthy at {endpoint.url}",
        {"url": endpoint.url, "jupyterhub_version": version},
    )


def server_spawns(endpoint: Endpoint, timeout: float = 120.0) -> CheckResult:
    """A check user's server starts, answers its API, and is stopped again (also when the
    check fails half way: no check server is left running)."""
    started = time.monotonic()
    try:
        if _api(endpoint, "GET", f"users/{CHECK_USER}").status_code == 404:
            _expect(_api(endpoint, "POST", f"users/{CHECK_USER}"), (201,), "create the check user")
        _expect(
            _api(endpoint, "POST", f"users/{CHECK_USER}/server"),
            (201, 202, 400),
            "start the check user's server",
        )
        try:
            server = _wait(endpoint, lambda s: s is not None and s.get("ready"), timeout, started)
            if server is _PENDING:
                return CheckResult(False, f"{CHECK_USER}'s server was not ready in {timeout:.0f} s")
            spawn_s = time.monotonic() - started
            status = requests.get(
                f"{endpoint.url.rstrip('/')}{server['url']}api/status",
                headers={"Authorization": f"token {endpoint.api_token}"},
                timeout=HTTP_TIMEOUT,
            )
            _expect(status, (200,), "reach the server's API")
        finally:
            _expect(
                _api(endpoint, "DELETE", f"users/{CHECK_USER}/server"),
                (202, 204, 400),
                "stop the check user's server",
            )
        if _wait(endpoint, lambda s: s is None, 60, time.monotonic()) is _PENDING:
            return CheckResult(False, f"the server of {CHECK_USER} did not stop in 60 s")
    except (requests.RequestException, _Failed) as e:
        reason = (
            str(e)
            if isinstance(e, _Failed)
            else f"{endpoint.url} did not answer: {type(e).__name__}"
        )
        return CheckResult(False, reason)
    return CheckResult(
        True,
        f"{CHECK_USER}'s server started in {spawn_s:.1f} s, answered, stopped",
        {"spawn_seconds": f"{spawn_s:.1f}"},
    )


class _Failed(Exception):
    pass


def _expect(response: requests.Response, codes: tuple[int, ...], what: str) -> None:
    if response.status_code not in codes:
        raise _Failed(f"could not {what}: HTTP {response.status_code}")


_PENDING = object()


def _wait(endpoint: Endpoint, done, timeout: float, since: float):
    """Poll the check user's default server until `done(server)`; the server, or _PENDING."""
    while time.monotonic() - since < timeout:
        response = _api(endpoint, "GET", f"users/{CHECK_USER}")
        _expect(response, (200,), "read the check user")
        user = response.json()
        server = user.get("servers", {}).get("")
        if done(server):
            return server
        time.sleep(0.25)
    return _PENDING


# the asset checks of every release, by name
CHECKS = {"hub_healthy": hub_healthy, "server_spawns": server_spawns}
