"""Translate a release's chart values into JupyterHub configuration for a local hub process.

What the chart would do on Kubernetes is done here with local parts (LocalUserSpawner,
the Python configurable-http-proxy, the idle culler as a hub service). Every value set in the
hierarchy that cannot apply locally is listed in `unapplied`, never dropped silently. Secret
values are not written into the config: they are references resolved from a 0600 file.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...hierarchy import local_path
from ...releases import Release
from ...tools import tool
from ...values import Merged, Path_, ValuesError, dotted, get_path, has_path
from .isolation import memory_cgroups

SECRET_REF = "$tess-secret"
# In every user server's environment: user servers outlive their hub (as pods outlive a hub
# pod), so the supervisor finds a release's servers by this mark.
USER_SERVER_MARK = "TESS_USER_SERVER_OF"


def machine_release_name(state_dir: Path) -> str:
    """A release's name unique on the machine (other TESS_LOCAL_HOMEs hold releases of the same
    name, releases/<release>/state): its servers' memory cgroup, its users' uid keys."""
    return f"{_release_of(state_dir)}-{user_server_mark(state_dir)}"


def _release_of(state_dir: Path) -> str:
    return state_dir.parent.name  # releases/<release>/state


def user_server_mark(state_dir: Path) -> str:
    """The mark of the servers of the release whose state is in `state_dir`: opaque, so that
    user code learns nothing of where the platform keeps its state."""
    return hashlib.sha256(str(state_dir).encode()).hexdigest()[:16]


# Chart values this translation applies; everything else set by the hierarchy is listed.
APPLIED = [
    ("hub", "config"),
    ("hub", "services"),
    ("hub", "loadRoles"),
    ("hub", "cookieSecret"),
    ("hub", "concurrentSpawnLimit"),
    ("hub", "activeServerLimit"),
    ("hub", "allowNamedServers"),
    ("hub", "namedServerLimitPerUser"),
    ("hub", "shutdownOnLogout"),
    ("hub", "baseUrl"),
    ("proxy", "secretToken"),
    ("singleuser", "defaultUrl"),
    ("singleuser", "image"),
    ("singleuser", "memory", "limit"),  # a memory cgroup, else an rlimit: memory_enforcement
    ("singleuser", "extraEnv"),
    ("singleuser", "startTimeout"),
    ("singleuser", "storage", "type"),
    ("singleuser", "cmd"),
    ("cull",),
    ("debug", "enabled"),
    ("custom",),
]


@dataclass
class HubConfig:
    """Traitlets config for one hub, with secret leaves as references into `secrets`."""

    port: int
    config: dict[str, dict[str, Any]] = field(default_factory=dict)
    secrets: dict[str, Any] = field(default_factory=dict)
    unapplied: list[str] = field(default_factory=list)
    persistent_homes: bool = False

    def set(self, cls: str, trait: str, value: Any) -> None:
        self.config.setdefault(cls, {})[trait] = value


class _Values:
    """Reads merged values, turning secret leaves into references."""

    def __init__(self, merged: Merged, hub: HubConfig) -> None:
        self.merged, self.hub = merged, hub

    def get(self, *path: str) -> Any:
        return self._ref(path, get_path(self.merged.values, path))

    def _ref(self, path: Path_, value: Any) -> Any:
        if path in self.merged.secret_paths:
            self.hub.secrets[dotted(path)] = value
            return {SECRET_REF: dotted(path)}
        if isinstance(value, dict):
            return {k: self._ref((*path, k), v) for k, v in value.items()}
        return value


def local_port(merged: Merged, release: Release) -> int:
    key = ("custom", "tess", "local", "ports", release.env)
    port = get_path(merged.values, key)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        found = "is not set" if port is None else "is not a port number"
        raise ValuesError(
            f"{local_path(release)}: {dotted(key)}: {found}; the local target serves each hub "
            "on a port of 127.0.0.1 of its own, set there"
        )
    return port


def translate(
    merged: Merged,
    overlay_leaves: set[Path_],
    *,
    port: int,
    state_dir: Path,
    homes_dir: Path,
    scratch_dir: Path,
    user_env: Path,
    uid_registry: Path,
) -> HubConfig:
    """The hub's config. Its user servers run in `user_env`, the environment of the image,
    with homes in `homes_dir` (persistent) or `scratch_dir`, as users `uid_registry` gives."""
    hub = HubConfig(port=port)
    v = _Values(merged, hub)

    hub.set("JupyterHub", "bind_url", f"http://127.0.0.1:{port}{v.get('hub', 'baseUrl')}")
    hub.set("JupyterHub", "spawner_class", "tess_platform.backends.local.spawner.LocalUserSpawner")
    hub.set("LocalUserSpawner", "uid_registry", str(uid_registry))
    on_machine = machine_release_name(state_dir)
    hub.set("LocalUserSpawner", "on_machine", on_machine)
    # no cgroup: the spawner limits each of a server's processes (memory_enforcement)
    hub.set("LocalUserSpawner", "cgroup", on_machine if memory_cgroups() else "")
    hub.set("JupyterHub", "db_url", f"sqlite:///{state_dir / 'jupyterhub.sqlite'}")
    hub.set("JupyterHub", "cookie_secret", v.get("hub", "cookieSecret"))
    hub.set("ConfigurableHTTPProxy", "auth_token", v.get("proxy", "secretToken"))
    hub.set("ConfigurableHTTPProxy", "command", [tool("configurable-http-proxy")])
    hub.set("JupyterHub", "log_level", "DEBUG" if v.get("debug", "enabled") else "INFO")
    for key, trait in [
        ("concurrentSpawnLimit", "concurrent_spawn_limit"),
        ("activeServerLimit", "active_server_limit"),
        ("allowNamedServers", "allow_named_servers"),
        ("namedServerLimitPerUser", "named_server_limit_per_user"),
        ("shutdownOnLogout", "shutdown_on_logout"),
    ]:
        if (value := v.get("hub", key)) is not None:
            hub.set("JupyterHub", trait, value)

    # the user servers: the image's environment, homes by storage type. As the chart does, the
    # hub leaves them running when it stops: the next revision's hub adopts them.
    hub.set("JupyterHub", "cleanup_servers", False)
    hub.set("Spawner", "cmd", [str(user_env / "bin" / "jupyterhub-singleuser")])
    if (url := v.get("singleuser", "defaultUrl")) is not None:
        hub.set("Spawner", "default_url", url)
    for kind in ("limit", "guarantee"):
        if (mem := v.get("singleuser", "memory", kind)) is not None:
            hub.set("Spawner", f"mem_{kind}", mem)
        if (cpu := v.get("singleuser", "cpu", kind)) is not None:
            hub.set("Spawner", f"cpu_{kind}", cpu)
    if (timeout := v.get("singleuser", "startTimeout")) is not None:
        hub.set("Spawner", "start_timeout", timeout)
    extra_env = v.get("singleuser", "extraEnv") or {}
    environment = {k: x for k, x in extra_env.items() if not isinstance(x, dict) or SECRET_REF in x}
    environment[USER_SERVER_MARK] = user_server_mark(state_dir)
    # a terminal's or a kernel's `python` and `pip` are the image's, as in its container
    environment["PATH"] = os.pathsep.join([str(user_env / "bin"), "/usr/local/bin:/usr/bin:/bin"])
    environment["VIRTUAL_ENV"] = str(user_env)
    hub.set("Spawner", "environment", environment)
    hub.persistent_homes = v.get("singleuser", "storage", "type") != "none"
    homes = homes_dir if hub.persistent_homes else scratch_dir
    hub.set("SimpleLocalProcessSpawner", "home_dir_template", str(homes / "{username}"))

    services = [
        {"name": name, **_service(spec)} for name, spec in (v.get("hub", "services") or {}).items()
    ]
    roles = [{"name": name, **spec} for name, spec in (v.get("hub", "loadRoles") or {}).items()]
    cull = v.get("cull") or {}
    if cull.get("enabled"):
        services.append(_culler(cull))
        roles.append(_culler_role(cull))
    hub.set("JupyterHub", "services", services)
    hub.set("JupyterHub", "load_roles", roles)

    # hub.config last: as in the chart, it overrides what the chart derives
    for cls, traits in (v.get("hub", "config") or {}).items():
        for trait, value in (traits or {}).items():
            hub.set(cls, trait, value)

    hub.unapplied = sorted(
        dotted(p)
        for p in overlay_leaves
        if has_path(merged.values, p) and not any(p[: len(a)] == a for a in APPLIED)
    )
    return hub


_SERVICE_KEYS = {
    "apiToken": "api_token",
    "admin": "admin",
    "url": "url",
    "display": "display",
    "oauth_no_confirm": "oauth_no_confirm",
    "info": "info",
}


def _service(spec: dict[str, Any]) -> dict[str, Any]:
    return {_SERVICE_KEYS[k]: x for k, x in (spec or {}).items() if k in _SERVICE_KEYS}


def _culler(cull: dict[str, Any]) -> dict[str, Any]:
    # the same flags the chart gives the culler
    command = [
        tool("jupyterhub-idle-culler"),
        f"--timeout={cull['timeout']}",
        f"--cull-every={cull['every']}",
        f"--concurrency={cull['concurrency']}",
        f"--max-age={cull['maxAge']}",
    ]
    for key, flag in [
        ("users", "--cull-users"),
        ("adminUsers", "--cull-admin-users"),
        ("removeNamedServers", "--remove-named-servers"),
    ]:
        if cull.get(key):
            command.append(f"{flag}=True")
    return {"name": "idle-culler", "command": command}


def _culler_role(cull: dict[str, Any]) -> dict[str, Any]:
    scopes = ["list:users", "read:users:activity", "read:servers", "delete:servers"]
    if cull.get("users"):
        scopes.append("admin:users")
    return {"name": "idle-culler", "scopes": scopes, "services": ["idle-culler"]}
