"""One values file of a hubploy deployment, translated from an old jupyterhub chart's keys to
the pinned chart's (4.4.0), from the chart's own upgrade notes. Pure: a dict in, a dict out,
and a finding for every key moved or left behind. Values are never quoted in a finding.
"""

from __future__ import annotations

import ast
import copy
from typing import Any

from ..hierarchy import AUTHENTICATOR
from ..values import Path_, dotted, get_path, has_path, leaf_paths, set_path
from .report import CHECK, NOT_IMPORTED, TRANSLATED, Report

WRAPPED = "jupyterhub"  # the wrapper chart's key for the z2jh subchart's values

# keys the chart moved (its NOTES.txt, 0.10 to 3.0): old path -> new path
MOVED: dict[Path_, Path_] = {
    ("singleuser", "imagePullSecret", "enabled"): ("imagePullSecret", "create"),
    ("hub", "imagePullSecret", "enabled"): ("imagePullSecret", "create"),
    ("hub", "uid"): ("hub", "containerSecurityContext", "runAsUser"),
    ("hub", "fsGid"): ("hub", "podSecurityContext", "fsGroup"),
    ("rbac", "enabled"): ("rbac", "create"),
    ("proxy", "networkPolicy"): ("proxy", "chp", "networkPolicy"),
    ("proxy", "pdb"): ("proxy", "chp", "pdb"),
    ("proxy", "nodeSelector"): ("proxy", "chp", "nodeSelector"),
    ("singleuser", "imagePullSecret"): ("imagePullSecret",),
    ("hub", "imagePullSecret"): ("imagePullSecret",),
    ("hub", "extraConfigMap"): ("custom",),
}

# `auth.type` -> hub.config.JupyterHub.authenticator_class (entry-point names where the platform
# reads them, class names otherwise), and the class whose settings auth.<type>.* were
AUTH_TYPES: dict[str, tuple[str, str]] = {
    "github": ("github", "GitHubOAuthenticator"),
    "tmp": ("tmp", "TmpAuthenticator"),
    "dummy": ("dummy", "DummyAuthenticator"),
    "google": ("oauthenticator.google.GoogleOAuthenticator", "GoogleOAuthenticator"),
    "gitlab": ("oauthenticator.gitlab.GitLabOAuthenticator", "GitLabOAuthenticator"),
    "azuread": ("oauthenticator.azuread.AzureAdOAuthenticator", "AzureAdOAuthenticator"),
    "cilogon": ("oauthenticator.cilogon.CILogonOAuthenticator", "CILogonOAuthenticator"),
    "globus": ("oauthenticator.globus.GlobusOAuthenticator", "GlobusOAuthenticator"),
}
OAUTH_CLIENT = {
    "clientId": "client_id",
    "clientSecret": "client_secret",
    "callbackUrl": "oauth_callback_url",
}
AUTH_SETTINGS: dict[str, dict[str, str]] = {  # auth.<type>.<key> -> <Class>.<trait>
    "github": {
        **OAUTH_CLIENT,
        "orgWhitelist": "allowed_organizations",
        "allowedOrganizations": "allowed_organizations",
    },
    "google": {**OAUTH_CLIENT, "hostedDomain": "hosted_domain", "loginService": "login_service"},
    "gitlab": {
        **OAUTH_CLIENT,
        "gitlabGroupWhitelist": "allowed_gitlab_groups",
        "allowedGitlabGroups": "allowed_gitlab_groups",
        "gitlabProjectIdWhitelist": "allowed_project_ids",
        "allowedProjectIds": "allowed_project_ids",
        "gitlabUrl": "gitlab_url",
    },
    "azuread": {**OAUTH_CLIENT, "tenantId": "tenant_id", "usernameClaim": "username_claim"},
    "cilogon": dict(OAUTH_CLIENT),
    "globus": dict(OAUTH_CLIENT),
    "dummy": {"password": "password"},
}
AUTH_COMMON: dict[Path_, Path_] = {  # auth.<path> -> hub.config.<Class>.<trait>
    ("admin", "users"): ("Authenticator", "admin_users"),
    ("whitelist", "users"): ("Authenticator", "allowed_users"),
    ("allowedUsers",): ("Authenticator", "allowed_users"),
    ("state", "enabled"): ("Authenticator", "enable_auth_state"),
    ("state", "cryptoKey"): ("CryptKeeper", "keys"),  # a list of keys now
    ("scopes",): ("OAuthenticator", "scope"),
}
# class names an old extraConfig or auth.custom may give, as the platform names them
CLASS_NAMES = {
    "oauthenticator.GitHubOAuthenticator": "github",
    "oauthenticator.github.GitHubOAuthenticator": "github",
    "tmpauthenticator.TmpAuthenticator": "tmp",
    "dummyauthenticator.DummyAuthenticator": "dummy",
    "jupyterhub.auth.DummyAuthenticator": "dummy",
}
UNKNOWN_AUTHENTICATOR = "an authenticator this import does not know: set hub.config by hand"
UNKNOWN_SETTING = "a setting this import does not know: set its hub.config trait by hand"


def unwrap(values: dict[str, Any], file: str, report: Report) -> dict[str, Any]:
    """The z2jh values of a wrapper chart's values file: what sits under `jupyterhub:`. The
    wrapper's own keys feed its templates, which are not imported."""
    for key in sorted(k for k in values if k != WRAPPED):
        report.add(
            NOT_IMPORTED,
            file,
            key,
            "a value of the wrapper chart's own templates, which are not imported: "
            "provide what it configures in hub_config/ or infra/",
        )
    inner = values.get(WRAPPED) or {}
    if not isinstance(inner, dict):
        report.add(NOT_IMPORTED, file, WRAPPED, "not a mapping")
        return {}
    return inner


def translate(values: dict[str, Any], file: str, report: Report) -> dict[str, Any]:
    """`values` (the z2jh part of one file) in the pinned chart's terms."""
    out = copy.deepcopy(values)
    for old, new in MOVED.items():
        _move(out, old, new, file, report)
    _service_accounts(out, file, report)
    _cloud_metadata(out, file, report)
    _host_path_homes(out, file, report)
    _auth(out, file, report)
    _extra_config(out, file, report)
    name = get_path(out, AUTHENTICATOR)
    if isinstance(name, str) and name in CLASS_NAMES:
        set_path(out, AUTHENTICATOR, CLASS_NAMES[name])
    return out


def _move(values: dict, old: Path_, new: Path_, file: str, report: Report) -> None:
    if not has_path(values, old):
        return
    value = pop(values, old)
    existing = get_path(values, new)
    if isinstance(existing, dict) and isinstance(value, dict):  # moved into what is there
        for key in sorted(value):
            set_path(values, (*old, key), value[key])
            _move(values, (*old, key), (*new, key), file, report)
        return
    if has_path(values, new) and existing != value:
        report.add(
            NOT_IMPORTED,
            file,
            dotted(old),
            f"moved to {dotted(new)} in the new chart, which this file sets too: that one kept",
        )
        return
    set_path(values, new, value)
    report.add(TRANSLATED, file, dotted(old), f"now {dotted(new)}")


# what makes RBAC objects since 2.0: rbac.enabled false meant none of their service accounts
SERVICE_ACCOUNTS: tuple[Path_, ...] = (
    ("hub",),
    ("proxy", "traefik"),
    ("scheduling", "userScheduler"),
    ("prePuller", "hook"),
)


def _service_accounts(values: dict, file: str, report: Report) -> None:
    if get_path(values, ("rbac", "create")) is not False:
        return
    for part in SERVICE_ACCOUNTS:
        path = (*part, "serviceAccount", "create")
        if not has_path(values, path):
            set_path(values, path, False)
            report.add(TRANSLATED, file, "rbac.enabled", f"also {dotted(path)}: false")


def _cloud_metadata(values: dict, file: str, report: Report) -> None:
    """`singleuser.cloudMetadata.enabled` (user access to the node's metadata) became
    `blockWithIptables`, the opposite; since 3.0 a network policy rule must agree with it."""
    old = ("singleuser", "cloudMetadata", "enabled")
    if not has_path(values, old):
        return
    allowed = bool(pop(values, old))
    set_path(values, ("singleuser", "cloudMetadata", "blockWithIptables"), not allowed)
    report.add(TRANSLATED, file, dotted(old), "now singleuser.cloudMetadata.blockWithIptables")
    if allowed:
        rule = ("singleuser", "networkPolicy", "egressAllowRules", "cloudMetadataServer")
        set_path(values, rule, True)
        report.add(
            CHECK,
            file,
            dotted(old),
            "user code could read the node's cloud credentials and still can "
            f"({dotted(rule)}): remove both unless users must",
        )


def _host_path_homes(values: dict, file: str, report: Report) -> None:
    """`singleuser.storage.type: hostPath` (homes in a folder of the node, removed in 0.10)
    becomes what it was: a hostPath volume mounted as the home, KubeSpawner expanding
    `{username}` in its path."""
    storage = get_path(values, ("singleuser", "storage"))
    if not isinstance(storage, dict) or storage.get("type") != "hostPath":
        return
    template = storage.pop("homeHostPathTemplate", None)
    if not isinstance(template, str):
        report.add(NOT_IMPORTED, file, "singleuser.storage.type", "hostPath with no path template")
        storage.pop("type")
        return
    storage["type"] = "none"
    mount = storage.get("homeMountPath", "/home/jovyan")
    storage.setdefault("extraVolumes", []).append({"name": "home", "hostPath": {"path": template}})
    storage.setdefault("extraVolumeMounts", []).append({"name": "home", "mountPath": mount})
    report.add(
        TRANSLATED,
        file,
        "singleuser.storage.homeHostPathTemplate",
        "now a hostPath volume in singleuser.storage.extraVolumes, mounted as the home",
    )
    report.add(
        CHECK,
        file,
        "singleuser.storage.type",
        "homes on a node's own disk are lost with the node (EKS replaces nodes): move them to "
        "EFS (dynamic, storageClass efs-homes)",
    )


def _auth(values: dict, file: str, report: Report) -> None:
    """`auth.*` (removed in 0.11) into hub.config, as the chart's own migration message did."""
    auth = values.pop("auth", None)
    if auth is None:
        return
    if not isinstance(auth, dict):
        report.add(NOT_IMPORTED, file, "auth", "not a mapping")
        return
    config = values.setdefault("hub", {}).setdefault("config", {})
    kind = auth.pop("type", None)
    if kind is not None:
        if kind in AUTH_TYPES:
            config.setdefault("JupyterHub", {})["authenticator_class"] = AUTH_TYPES[kind][0]
            report.add(TRANSLATED, file, "auth.type", f"now {dotted(AUTHENTICATOR)}")
        elif kind == "custom":
            _custom_auth(auth.pop("custom", None) or {}, config, file, report)
        else:
            report.add(NOT_IMPORTED, file, "auth.type", UNKNOWN_AUTHENTICATOR)
    auth.pop("safeToShowValues", None)  # the old chart's error message setting
    for path, (cls, trait) in AUTH_COMMON.items():
        if has_path(auth, path):
            value = pop(auth, path)
            if path == ("state", "cryptoKey"):
                value = [value]
            config.setdefault(cls, {})[trait] = value
            report.add(TRANSLATED, file, dotted(("auth", *path)), f"now hub.config.{cls}.{trait}")
    if has_path(auth, ("admin", "access")):
        pop(auth, ("admin", "access"))
        report.add(
            NOT_IMPORTED,
            file,
            "auth.admin.access",
            "admins reach users' servers through the admin role since JupyterHub 2",
        )
    for kind_, settings in AUTH_SETTINGS.items():
        section = auth.pop(kind_, None)
        if not isinstance(section, dict):
            continue
        cls = AUTH_TYPES[kind_][1]
        for key in sorted(section):
            where = f"auth.{kind_}.{key}"
            if key in settings:
                config.setdefault(cls, {})[settings[key]] = section[key]
                report.add(TRANSLATED, file, where, f"now hub.config.{cls}.{settings[key]}")
            else:
                report.add(NOT_IMPORTED, file, where, UNKNOWN_SETTING)
    for path in filter(None, leaf_paths(auth)):
        report.add(NOT_IMPORTED, file, dotted(("auth", *path)), UNKNOWN_SETTING)
    if not config:
        values["hub"].pop("config")
    if not values["hub"]:
        values.pop("hub")


def _custom_auth(custom: dict, config: dict, file: str, report: Report) -> None:
    class_name = custom.get("className")
    if not isinstance(class_name, str) or not class_name:
        report.add(NOT_IMPORTED, file, "auth.custom", "no className")
        return
    name = CLASS_NAMES.get(class_name, class_name)
    config.setdefault("JupyterHub", {})["authenticator_class"] = name
    report.add(TRANSLATED, file, "auth.custom.className", f"now {dotted(AUTHENTICATOR)}")
    if isinstance(custom.get("config"), dict) and custom["config"]:
        short = class_name.rsplit(".", 1)[-1]
        config.setdefault(short, {}).update(custom["config"])
        report.add(TRANSLATED, file, "auth.custom.config", f"now hub.config.{short}")


def _extra_config(values: dict, file: str, report: Report) -> None:
    """`c.Class.trait = literal` snippets of hub.extraConfig become hub.config; a snippet with
    anything else (code) is left behind whole, named, never copied."""
    snippets = get_path(values, ("hub", "extraConfig"))
    if snippets is None:
        return
    if isinstance(snippets, str):  # old charts took one string
        snippets = {"extraConfig": snippets}
    for name in sorted(snippets) if isinstance(snippets, dict) else []:
        where = f"hub.extraConfig.{name}"
        if snippets[name] is None:  # helm's delete of a snippet a file beneath set
            report.add(
                CHECK,
                file,
                where,
                "removed a snippet of a file beneath; its settings, now hub.config there, are "
                "not removed: remove them by hand",
            )
            continue
        settings = literal_settings(snippets[name])
        if isinstance(settings, str):
            report.add(
                NOT_IMPORTED,
                file,
                where,
                f"{settings}: rewrite it as hub.config settings, or keep it as code in a "
                "hub image of your own",
            )
            continue
        config = values["hub"].setdefault("config", {})
        for (cls, trait), value in settings.items():
            config.setdefault(cls, {})[trait] = value
        report.add(TRANSLATED, file, where, "literal settings: now hub.config")
    if not isinstance(snippets, dict):
        report.add(NOT_IMPORTED, file, "hub.extraConfig", "not a mapping of snippets")
    values["hub"].pop("extraConfig")


def literal_settings(code: Any) -> dict[tuple[str, str], Any] | str:
    """The settings of a snippet made only of `c.Class.trait = <literal>` lines, or why not."""
    if not isinstance(code, str):
        return "not Python code"
    try:
        body = ast.parse(code).body
    except SyntaxError as e:
        return f"not valid Python (line {e.lineno})"
    settings: dict[tuple[str, str], Any] = {}
    for stmt in body:
        target = (
            stmt.targets[0] if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 else None
        )
        if not (
            isinstance(target, ast.Attribute)
            and isinstance(target.value, ast.Attribute)
            and isinstance(target.value.value, ast.Name)
            and target.value.value.id == "c"
        ):
            return f"line {stmt.lineno} is not a `c.Class.trait = value` setting"
        try:
            value = ast.literal_eval(stmt.value)  # type: ignore[union-attr]
        except (ValueError, SyntaxError, TypeError):
            return f"line {stmt.lineno} sets c.{target.value.attr}.{target.attr} from code"
        if isinstance(value, bytes | complex):
            return f"line {stmt.lineno} sets a value YAML cannot hold"
        settings[(target.value.attr, target.attr)] = _plain(value)
    return settings


def _plain(value: Any) -> Any:
    """A Python literal as YAML holds it: tuples and sets as lists (sets sorted)."""
    if isinstance(value, set | frozenset):
        return sorted((_plain(v) for v in value), key=repr)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def pop(values: dict, path: Path_) -> Any:
    """Remove `path` (if it is there) and any mapping it leaves empty; its value."""
    if not has_path(values, path):
        return None
    parent = get_path(values, path[:-1]) if len(path) > 1 else values
    value = parent.pop(path[-1])
    if len(path) > 1 and not parent:
        pop(values, path[:-1])
    return value
