"""Health checks against a running hub, over real HTTP with the tess-platform service token."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import requests

from .checks import KERNEL_RUNS, SERVER_SPAWNS, CheckResult
from .kernels import Kernel, KernelError
from .targets import Endpoint

CHECK_USER = "tess-check"
HTTP_TIMEOUT = 30  # seconds for one request: a loaded hub answers slowly, not wrongly


def _auth(endpoint: Endpoint) -> dict[str, str]:
    return {"Authorization": f"token {endpoint.api_token}"}


def _api(endpoint: Endpoint, method: str, path: str, **kw) -> requests.Response:
    return requests.request(
        method, f"{endpoint.url}hub/api/{path}", headers=_auth(endpoint), timeout=HTTP_TIMEOUT, **kw
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


def server_checks(
    endpoint: Endpoint,
    code: str | None,
    spawn_timeout: float,
    kernel_timeout: float,
    spawn_tries: int = 1,
) -> dict[str, CheckResult]:
    """server_spawns and kernel_runs, in one check server (a spawn costs seconds, and the two
    checks on one user would race): the server starts, answers its API, a kernel runs `code`
    (the repository's smoke test; None: kernel_runs is the caller's) and the server stops."""
    results: dict[str, CheckResult] = {}
    try:
        with _check_server(endpoint, spawn_timeout, spawn_tries) as (server_url, spawn_s):
            status = requests.get(
                f"{server_url}api/status", headers=_auth(endpoint), timeout=HTTP_TIMEOUT
            )
            _expect(status, (200,), "reach the server's API")
            results[SERVER_SPAWNS] = CheckResult(
                True,
                f"{CHECK_USER}'s server started in {spawn_s:.1f} s, answered, stopped",
                {"spawn_seconds": f"{spawn_s:.1f}"},
            )
            if code is not None:
                results[KERNEL_RUNS] = _kernel_runs(server_url, endpoint, code, kernel_timeout)
    except (requests.RequestException, _Failed) as e:  # also: started, then did not stop
        reason = _reason(endpoint, e)
        results[SERVER_SPAWNS] = CheckResult(False, reason)
        if code is not None and KERNEL_RUNS not in results:
            results[KERNEL_RUNS] = CheckResult(False, f"no server to run it in: {reason}")
    return results


def _kernel_runs(server_url: str, endpoint: Endpoint, code: str, timeout: float) -> CheckResult:
    """The kernel is left to stop with the check server, which shuts its kernels down as it
    stops: asked to shut down alone, an ipykernel that has run code exits in one try out of
    two only when SIGTERMed, 2.5 s later (jupyter_client's shutdown_wait_time / 2)."""
    started = time.monotonic()
    try:
        run = Kernel.start(server_url, endpoint.api_token, timeout).execute(code, timeout)
    except (requests.RequestException, KernelError) as e:
        return CheckResult(False, _reason(endpoint, e))
    run_s = time.monotonic() - started
    last = run.output.strip().splitlines()[-1:] or [""]
    details = {"kernel_seconds": f"{run_s:.1f}", "output": last[0][:200]}
    if run.error:
        return CheckResult(False, f"the smoke test failed: {run.error[:300]}", details)
    return CheckResult(True, f"the smoke test ran in a kernel in {run_s:.1f} s", details)


@contextlib.contextmanager
def _check_server(endpoint: Endpoint, timeout: float, tries: int) -> Iterator[tuple[str, float]]:
    """The check user's server, started: its URL and how long its last try took. A server not
    ready in `timeout` is stopped and started again, `tries` times in all (a cold node and an
    image pull can outlast one try). Stopped after, also when the check fails half way: no
    check server is left running."""
    if _api(endpoint, "GET", f"users/{CHECK_USER}").status_code == 404:
        _expect(_api(endpoint, "POST", f"users/{CHECK_USER}"), (201,), "create the check user")
    try:
        for attempt in range(1, tries + 1):
            started = time.monotonic()
            _expect(
                _api(endpoint, "POST", f"users/{CHECK_USER}/server"),
                (201, 202, 400),
                "start the check user's server",
            )
            server = _wait(endpoint, lambda s: s is not None and s.get("ready"), timeout, started)
            if server is not _PENDING:
                break
            if attempt < tries:
                _stop(endpoint, patience=timeout + 60)
        else:
            tried = f" ({tries} tries)" if tries > 1 else ""
            raise _Failed(f"{CHECK_USER}'s server was not ready in {timeout:.0f} s{tried}")
        yield f"{endpoint.url.rstrip('/')}{server['url']}", time.monotonic() - started
    finally:
        _stop(endpoint, patience=timeout + 60)


def _stop(endpoint: Endpoint, patience: float = 60) -> None:
    """Stop the check user's server and wait until it is gone. A spawn still pending is waited
    for (the hub refuses to stop it meanwhile), so `patience` covers what is left of it."""
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        server = _server(endpoint)
        if server is None:
            return
        if not server.get("pending"):  # ready, or failed: stop it; pending stop: wait
            _expect(
                _api(endpoint, "DELETE", f"users/{CHECK_USER}/server"),
                (202, 204, 400),
                "stop the check user's server",
            )
        time.sleep(0.25)
    raise _Failed(f"the server of {CHECK_USER} did not stop in {patience:.0f} s")


def _reason(endpoint: Endpoint, error: Exception) -> str:
    if isinstance(error, _Failed | KernelError):
        return str(error)
    return f"{endpoint.url} did not answer: {type(error).__name__}"


class _Failed(Exception):
    pass


def _expect(response: requests.Response, codes: tuple[int, ...], what: str) -> None:
    if response.status_code not in codes:
        raise _Failed(f"could not {what}: HTTP {response.status_code}")


_PENDING = object()


def _server(endpoint: Endpoint) -> dict[str, Any] | None:
    """The check user's default server as the hub describes it (ready, pending, url)."""
    response = _api(endpoint, "GET", f"users/{CHECK_USER}")
    _expect(response, (200,), "read the check user")
    return response.json().get("servers", {}).get("")


def _wait(endpoint: Endpoint, done, timeout: float, since: float):
    """Poll the check user's default server until `done(server)`; the server, or _PENDING."""
    while time.monotonic() - since < timeout:
        server = _server(endpoint)
        if done(server):
            return server
        time.sleep(0.25)
    return _PENDING
