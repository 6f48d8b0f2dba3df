"""The environment a local hub starts with. Its proxy inherits all of it, its services and
user servers what JupyterHub's env_keep passes on (PATH, LANG, ...): so it is an allow-list,
and nothing of the platform's environment (TESS_GIT_CRYPT_KEY, AWS_* credentials, DAGSTER_*)
reaches processes that run code for anonymous visitors."""

from __future__ import annotations

import os
from collections.abc import Mapping

# Taken from the supervisor's environment, none of them a secret. A hub, its proxy, culler and
# a user server start without any of them (tried): they carry the operator's settings.
KEPT = (
    "HOME",  # where jupyter's config and data paths of the hub are
    "LANG",  # the locale: text encoding of logs, and of user servers (env_keep passes it on)
    "TZ",  # log timestamps in the operator's time zone
    "TMPDIR",  # where temporary files go, when the operator moved them
    "LD_LIBRARY_PATH",  # the supervisor's interpreter runs the hub: it may need it to load
)
KEPT_PREFIXES = ("LC_",)  # the rest of the locale


def hub_environment(
    parent_env: Mapping[str, str],
    *,
    bin_dir: str,
    revision: str,
    hub_api_port: int,
    proxy_api_port: int,
) -> dict[str, str]:
    """The hub's environment: the allow-listed part of `parent_env`, PATH with `bin_dir` (the
    venv's, where jupyterhub and its tools are) first, and what jupyterhub_config.py reads."""
    env = {k: v for k, v in parent_env.items() if k in KEPT or k.startswith(KEPT_PREFIXES)}
    # the hub needs only bin_dir (its tools are absolute paths); user servers' shells the rest
    env["PATH"] = os.pathsep.join([bin_dir, parent_env.get("PATH") or os.defpath])
    # the supervisor also finds a hub and its proxy by TESS_HUB_REVISION
    env["TESS_HUB_REVISION"] = revision
    env["TESS_HUB_API_PORT"] = str(hub_api_port)
    env["TESS_PROXY_API_PORT"] = str(proxy_api_port)
    return env
