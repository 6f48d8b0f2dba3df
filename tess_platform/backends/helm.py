"""Releases of the pinned chart through the helm CLI.

Every call is isolated: its own helm homes, kube cache and HOME in a temporary folder, the
operation's kubeconfig (never ~/.kube/config), values as 0600 files removed after the call.
What helm prints is masked before it reaches a caller, a log line or an error message.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml

from ..chart import Chart
from ..files import write_file
from ..secrets import Redactor
from ..settings import tool_environment
from ..tools import tool

NOT_FOUND = "release: not found"
PENDING = ("pending-install", "pending-upgrade", "pending-rollback")
GOOD = ("deployed", "superseded")  # what helm's own --atomic rolls back to
TAIL = 2000  # characters of helm's stderr an error message keeps
MARGIN_S = 300  # beyond helm's own --timeout: the chart download, and --atomic's rollback


class HelmError(RuntimeError):
    """A helm command failed; the message carries helm's masked stderr."""


class HasSecrets(Protocol):
    def secret_values(self) -> list[str]: ...


Secrets = HasSecrets | Iterable[str]


@dataclass
class Upgraded:
    status: dict[str, Any]  # the release after the upgrade, without its values or manifest
    recovered: str | None  # what was done first about a release stuck in pending-*
    output: str  # helm's masked output (the chart's notes)

    @property
    def revision(self) -> int:
        return int(self.status["version"])


def _identity(text: str) -> str:
    return text


class Helm:
    def __init__(
        self,
        kubeconfig: Path | None,
        binary: str | None = None,
        redact: Callable[[str], str] = _identity,
        timeout: str = "10m",
    ) -> None:
        self.kubeconfig = kubeconfig
        self.binary = binary or tool("helm")
        self.redact = redact
        self.timeout = timeout
        # --atomic waits up to the timeout for the upgrade and again for its rollback
        self._process_timeout = 2 * _seconds(timeout) + MARGIN_S

    # -- reading -----------------------------------------------------------------------------

    def status(self, release: str, namespace: str) -> dict[str, Any] | None:
        """The release's last revision (`info.status`, `version`, chart), None if none exists.
        Its values (`config`) and manifest are left out: they hold the secrets."""
        return self._status(release, namespace, self.redact)

    def history(self, release: str, namespace: str) -> list[dict[str, Any]]:
        """Every revision: `revision`, `status`, `chart`, `app_version`, `description`."""
        return self._history(release, namespace, self.redact)

    def template(
        self,
        release: str,
        namespace: str,
        chart_path: Path,
        values: Sequence[dict[str, Any]],
        secret_values: Secrets = (),
    ) -> str:
        """The manifests the chart renders; they hold secrets, so they are returned, not
        logged. Needs no cluster."""
        mask = self._mask(secret_values)
        args = ["template", release, str(chart_path), "--namespace", namespace]
        result = self._run(args, values=values, cluster=False)
        _check(result, f"template of {release}", mask)
        return result.stdout

    # -- changing ----------------------------------------------------------------------------

    def upgrade(
        self,
        release: str,
        namespace: str,
        chart: Chart,
        values: Sequence[dict[str, Any]],
        secret_values: Secrets = (),
        description: str | None = None,
    ) -> Upgraded:
        """`helm upgrade --install --atomic --wait` of the chart with the values documents in
        merge order (later wins); a release stuck in pending-* is recovered first."""
        mask = self._mask(secret_values)
        recovered = self._recover(release, namespace, mask)
        args = [
            "upgrade",
            "--install",
            release,
            chart.name,
            "--repo",
            chart.repo,
            "--version",
            chart.version,
            "--namespace",
            namespace,
            "--create-namespace",
            "--atomic",
            "--wait",
            "--timeout",
            self.timeout,
            "--cleanup-on-fail",
        ]
        if description:  # kept in the release's history: what the pipeline deployed
            args += ["--description", description]
        result = self._run(args, values=values)
        _check(result, f"upgrade of {release} in {namespace}", mask)
        status = self._status(release, namespace, mask)
        if status is None:
            raise HelmError(f"helm upgrade of {release} in {namespace} left no release behind")
        return Upgraded(status, recovered, mask(result.stdout.strip()))

    def rollback(self, release: str, namespace: str, revision: int) -> dict[str, Any]:
        """Puts `revision` back (as a new revision) and waits for it; the release after."""
        self._rollback(release, namespace, revision, self.redact)
        status = self._status(release, namespace, self.redact)
        if status is None:
            raise HelmError(f"helm rollback of {release} in {namespace} left no release behind")
        return status

    def uninstall(self, release: str, namespace: str) -> None:
        """Removes the release and its history; the namespace stays, and with it the user
        homes' claims if their storage class keeps them."""
        self._uninstall(release, namespace, self.redact)

    def _uninstall(self, release: str, namespace: str, mask: Callable[[str], str]) -> None:
        args = ["uninstall", release, "--namespace", namespace, "--wait"]
        _check(self._run([*args, "--timeout", self.timeout]), f"uninstall of {release}", mask)

    # -- recovery ----------------------------------------------------------------------------

    def _recover(self, release: str, namespace: str, mask: Callable[[str], str]) -> str | None:
        """helm refuses to upgrade a release another operation left pending (a killed run):
        a first install is removed, an upgrade or rollback goes back to the last good one."""
        current = self._status(release, namespace, mask)
        state = (current or {}).get("info", {}).get("status")
        if state not in PENDING:
            return None
        if state == "pending-install":
            self._uninstall(release, namespace, mask)
            return (
                f"{release} was stuck in pending-install, a first install that never "
                "finished: uninstalled it"
            )
        history = self._history(release, namespace, mask)
        good = [int(r["revision"]) for r in history if r.get("status") in GOOD]
        if not good:
            raise HelmError(
                f"{release} in {namespace} is stuck in {state} and has no deployed revision to "
                f"roll back to: look at `helm history {release} -n {namespace}`"
            )
        self._rollback(release, namespace, max(good), mask)
        return f"{release} was stuck in {state}: rolled back to revision {max(good)}"

    def _rollback(
        self, release: str, namespace: str, revision: int, mask: Callable[[str], str]
    ) -> None:
        args = ["rollback", release, str(revision), "--namespace", namespace, "--wait"]
        result = self._run([*args, "--timeout", self.timeout])
        _check(result, f"rollback of {release} to revision {revision}", mask)

    def _status(
        self, release: str, namespace: str, mask: Callable[[str], str]
    ) -> dict[str, Any] | None:
        result = self._run(["status", release, "--namespace", namespace, "-o", "json"])
        if result.returncode != 0 and NOT_FOUND in result.stderr:
            return None
        _check(result, f"status of {release}", mask)
        return _mask_tree(_slim(_json(result.stdout, "status", mask)), mask)

    def _history(
        self, release: str, namespace: str, mask: Callable[[str], str]
    ) -> list[dict[str, Any]]:
        result = self._run(["history", release, "--namespace", namespace, "-o", "json"])
        if result.returncode != 0 and NOT_FOUND in result.stderr:
            return []
        _check(result, f"history of {release}", mask)
        return _mask_tree(_json(result.stdout, "history", mask) or [], mask)

    # -- running helm ------------------------------------------------------------------------

    def _mask(self, secret_values: Secrets) -> Callable[[str], str]:
        if isinstance(secret_values, str):
            values = [secret_values]
        elif hasattr(secret_values, "secret_values"):
            values = secret_values.secret_values()
        else:
            values = [str(v) for v in secret_values]
        extra = Redactor(values)
        return lambda text: extra(self.redact(text))

    def _run(
        self, args: list[str], values: Sequence[dict[str, Any]] = (), cluster: bool = True
    ) -> subprocess.CompletedProcess[str]:
        if cluster and self.kubeconfig is None:
            raise HelmError(f"helm {args[0]} needs a cluster, and this Helm has no kubeconfig")
        with tempfile.TemporaryDirectory(prefix="tess-helm-") as tmp:
            root = Path(tmp)
            kubeconfig = self.kubeconfig or _write(root / "no-cluster.yaml", "")
            cmd = [self.binary, *args]
            for n, document in enumerate(values, 1):
                path = _write(root / f"values-{n:02d}.yaml", yaml.safe_dump(document))
                cmd += ["-f", str(path)]
            cmd += ["--kubeconfig", str(kubeconfig)]
            try:
                return subprocess.run(
                    cmd,
                    capture_output=True,
                    text=True,
                    env=_isolated_env(root),
                    stdin=subprocess.DEVNULL,
                    timeout=self._process_timeout,
                )
            except FileNotFoundError:
                raise HelmError(
                    f"helm is not installed ({self.binary}): run `bash .ci/setup`"
                ) from None
            except subprocess.TimeoutExpired:
                # what helm printed so far is dropped with the exception: it is not masked
                raise HelmError(
                    f"helm {args[0]} did not finish in {self._process_timeout} s"
                ) from None


def _isolated_env(root: Path) -> dict[str, str]:
    """This environment without helm's and kubectl's settings, homes and caches under `root`:
    a user's HELM_DEBUG or KUBECONFIG cannot leak in, nothing is written outside."""
    env = {
        k: v
        for k, v in tool_environment().items()
        if not k.startswith("HELM_") and k != "KUBECONFIG"
    }
    env.update(
        HOME=str(root / "home"),
        HELM_CONFIG_HOME=str(root / "helm" / "config"),
        HELM_CACHE_HOME=str(root / "helm" / "cache"),
        HELM_DATA_HOME=str(root / "helm" / "data"),
        KUBECACHEDIR=str(root / "kube-cache"),  # client-go's discovery cache, else ~/.kube/cache
        TMPDIR=str(root / "tmp"),  # helm's own temporary files (a pulled chart) go in here too
    )
    (root / "tmp").mkdir()
    return env


def _write(path: Path, text: str) -> Path:
    write_file(path, text)  # 0600 from the start: no moment another user reads the values
    return path


def _check(result: subprocess.CompletedProcess[str], what: str, mask: Callable[[str], str]) -> None:
    if result.returncode == 0:
        return
    # masked before it is cut: a cut through a secret would leave part of it unmasked
    said = mask((result.stderr or result.stdout).strip())
    raise HelmError(f"helm {what} failed (exit {result.returncode}): {said[-TAIL:]}")


def _json(text: str, what: str, mask: Callable[[str], str]) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise HelmError(f"helm {what} printed no JSON: {mask(text.strip())[-TAIL:]}") from None


def _slim(release: dict[str, Any]) -> dict[str, Any]:
    """A release's record without `config` (the values), `manifest` and hooks (rendered
    secrets) and the chart's files: what a status report needs."""
    metadata = (release.get("chart") or {}).get("metadata") or {}
    info = {k: v for k, v in (release.get("info") or {}).items() if k != "resources"}
    return {
        "name": release.get("name"),
        "namespace": release.get("namespace"),
        "version": release.get("version"),
        "info": info,
        "chart": {k: metadata.get(k) for k in ("name", "version", "appVersion")},
    }


def _mask_tree(data: Any, mask: Callable[[str], str]) -> Any:
    if isinstance(data, str):
        return mask(data)
    if isinstance(data, dict):
        return {k: _mask_tree(v, mask) for k, v in data.items()}
    if isinstance(data, list):
        return [_mask_tree(v, mask) for v in data]
    return data


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|m|s)")
_UNIT_S = {"h": 3600, "m": 60, "s": 1}


def _seconds(duration: str) -> int:
    """Seconds of a helm (Go) duration such as `10m`, `1h30m` or `90s`."""
    parts = _DURATION.findall(duration)
    if not parts or "".join(n + u for n, u in parts) != duration:
        raise ValueError(f"helm timeout {duration!r}: not a duration like 10m, 1h30m or 600s")
    return int(sum(float(n) * _UNIT_S[u] for n, u in parts))
