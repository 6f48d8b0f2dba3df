"""`tess-platform secrets init`: a release's secrets file with generated tokens, written only
where git-crypt will encrypt it."""

from __future__ import annotations

from pathlib import Path

import yaml

from .files import write_file
from .hierarchy import AUTHENTICATOR, WorkTree, callback_url, config_layers, host, secrets_path
from .releases import Release
from .secrets import SecretsError, github_secrets, hub_secrets
from .values import get_path, merge


def uses_github(root: Path, release: Release) -> bool:
    merged = merge(config_layers(WorkTree(root), release, target="aws"))
    return get_path(merged.values, AUTHENTICATOR) == "github"


def release_callback_url(root: Path, release: Release) -> str:
    merged = merge(config_layers(WorkTree(root), release, target="aws"))
    return callback_url(host(release, merged))


def preflight(root: Path, release: Release, force: bool = False) -> Path:
    """Where the secrets file goes, if it may be written there; else why not."""
    relpath = secrets_path(release)
    path = root / relpath
    if link := WorkTree(root).first_link(relpath):
        raise SecretsError(
            f"{relpath}: {link} is a symbolic link; a secrets file is written only as a "
            "regular file inside the repository; nothing written"
        )
    if not WorkTree(root).git_crypt_covers(relpath):
        raise SecretsError(
            f"{relpath}: git-crypt would not encrypt it (.gitattributes does not "
            "cover it); nothing was written"
        )
    if not WorkTree(root).git_crypt_configured():
        raise SecretsError(
            f"{root}: git-crypt is not set up in this checkout: run "
            "`git-crypt init` (or `git-crypt unlock KEY`) first; nothing written"
        )
    if path.exists() and not force:
        raise SecretsError(f"{relpath}: exists already; pass --force to replace its secrets")
    return path


def init_secrets(
    root: Path, release: Release, github: tuple[str, str] | None = None, force: bool = False
) -> Path:
    """Write `hub_config/<d>/secrets/<env>.yaml`; `github` is the OAuth app's (id, secret)."""
    path = preflight(root, release, force)
    secrets = hub_secrets()
    if uses_github(root, release):
        if github is None:
            raise SecretsError(
                f"{release.name} logs in with GitHub: give the OAuth app's client id and secret"
            )
        secrets["hub"]["config"] = github_secrets(*github, release_callback_url(root, release))
    header = f"# {release.name} secrets: encrypted in git by git-crypt\n"
    write_file(path, header + yaml.safe_dump(secrets, sort_keys=False))
    return path
