"""The values hierarchy of one release: which files, in which order, and how secrets enter.

Order (later wins): hub_config/values.yaml < <d>/common.yaml < <d>/<env>.yaml
< <d>/local.yaml (local target only) < <d>/secrets/<env>.yaml < the target's own secrets
< what the pipeline sets (image, host).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .backends.image import ImageRef
from .chart import ChartFiles
from .git import Snapshot
from .releases import Release
from .schema import chart_values, validate
from .secrets import SecretsError, decrypt, is_encrypted
from .values import (
    Layer,
    Merged,
    ValuesError,
    dotted,
    get_path,
    has_path,
    leaf_paths,
    set_path,
)
from .yaml_loader import load_mapping

CONFIG_DIR = "hub_config"


class Tree(Protocol):
    """Where the hub_config files are read from: a git snapshot or an operator's checkout."""

    root: Path
    label: str

    def read(self, relpath: str) -> bytes | None: ...

    def in_the_clear(self, relpath: str) -> str | None:
        """Why git stores this file unencrypted, or would (`git add`) for a file it holds none
        of yet; None when git-crypt encrypts every version of it."""
        ...


COMMITTED_IN_THE_CLEAR = (
    "is not encrypted in git. Secrets files must be covered by git-crypt (.gitattributes); "
    "rotate what it holds, it has been committed in the clear"
)


@dataclass(frozen=True)
class _Folder:
    root: Path
    label: str

    LINK_REASON = (
        "values and secrets files must be regular files (a link could bring in a secrets file "
        "or a file outside the repository, unmasked)"
    )

    def read(self, relpath: str) -> bytes | None:
        """The file's bytes (None: no such file), never through a symbolic link, wherever it
        points: a values file linked to a secrets file would be printed unmasked."""
        link = self.first_link(relpath)
        if link == relpath:
            raise ValuesError(f"{relpath}: is a symbolic link; {self.LINK_REASON}")
        if link is not None:
            raise ValuesError(f"{relpath}: {link} is a symbolic link; {self.LINK_REASON}")
        path = self.root / relpath
        if not path.resolve().is_relative_to(self.root.resolve()):  # e.g. `..` in a name
            raise ValuesError(f"{relpath}: leads out of the {self.label}; {self.LINK_REASON}")
        if path.is_file():
            return path.read_bytes()
        if path.exists():  # a folder where a file goes is no file missing: a mistake to fix
            raise ValuesError(f"{relpath}: is not a regular file; {self.LINK_REASON}")
        return None

    def first_link(self, relpath: str) -> str | None:
        """The first of the folders down to the file, or the file itself, that is a link."""
        parts = Path(relpath).parts
        for depth in range(1, len(parts) + 1):
            sub = "/".join(parts[:depth])
            if (self.root / sub).is_symlink():
                return sub
        return None


@dataclass(frozen=True)
class SnapshotTree(_Folder):
    links_out: tuple[str, ...] = ()  # committed links out of the repository, not extracted

    @classmethod
    def of(cls, snapshot: Snapshot) -> SnapshotTree:
        return cls(snapshot.root, f"tree at {snapshot.sha[:12]}", snapshot.links_out)

    def first_link(self, relpath: str) -> str | None:
        """A link out is not in the snapshot, yet it is a link, refused as one: else a
        secrets file committed as one would read as missing (placeholders, validate ok)."""
        out = (link for link in self.links_out if f"{relpath}/".startswith(f"{link}/"))
        return next(out, None) or super().first_link(relpath)

    def in_the_clear(self, relpath: str) -> str | None:
        blob = self.read(relpath)  # git's own bytes: what is here is what git stores
        return None if blob is not None and is_encrypted(blob) else COMMITTED_IN_THE_CLEAR


@dataclass(frozen=True)
class WorkTree(_Folder):
    label: str = "working tree"

    def in_the_clear(self, relpath: str) -> str | None:
        # an unlocked checkout shows plaintext: ask git what it holds, not the file
        stored = self._stored_blobs(relpath)
        if stored:
            return None if all(is_encrypted(blob) for blob in stored) else COMMITTED_IN_THE_CLEAR
        # untracked: `git add` encrypts it only with both the attribute and the filter
        if not self.git_crypt_covers(relpath):
            why = ".gitattributes does not put it under git-crypt"
        elif not self.git_crypt_configured():
            why = "git-crypt is not set up in this checkout (`git-crypt init` or `unlock KEY`)"
        else:
            return None
        return (
            f"is not in git yet, and `git add` would store it in the clear: {why}; fix that first"
        )

    def git_crypt_covers(self, relpath: str) -> bool:
        """Whether .gitattributes puts the file under git-crypt's filter."""
        out = self._git("check-attr", "filter", "--", relpath)
        return out is not None and out.decode().strip().endswith(": filter: git-crypt")

    def git_crypt_configured(self) -> bool:
        """Whether git-crypt's filter is set up in this checkout (`init` or `unlock`)."""
        return bool(self._git("config", "--get", "filter.git-crypt.clean"))

    def _stored_blobs(self, relpath: str) -> list[bytes]:
        """Every version git holds of the file: HEAD's, and the index's (each conflict stage)."""
        head = self._git("ls-tree", "-z", "HEAD", "--", relpath) or b""
        index = self._git("ls-files", "-z", "--stage", "--", relpath) or b""
        oids = self._oids(head, relpath, field=2) | self._oids(index, relpath, field=1)
        # a blob git cannot show is not one it stores encrypted
        return [self._git("cat-file", "blob", oid) or b"" for oid in sorted(oids)]

    @staticmethod
    def _oids(listing: bytes, relpath: str, field: int) -> set[str]:
        """The object ids of `relpath` in `git ls-tree -z` (mode type oid) or `git ls-files -z
        --stage` (mode oid stage) output; other paths (a folder's files) are not it."""
        oids = set()
        for entry in listing.split(b"\0"):
            info, _, path = entry.partition(b"\t")
            if path.decode(errors="replace") == relpath:
                oids.add(info.split()[field].decode())
        return oids

    def _git(self, *args: str) -> bytes | None:
        """git's output in this checkout; None where it fails (not a repository, no HEAD)."""
        out = subprocess.run(
            ["git", "--literal-pathspecs", *args], cwd=self.root, capture_output=True
        )
        return out.stdout if out.returncode == 0 else None


def local_path(release: Release) -> str:
    """The file of what only the local target reads (its ports, its shared password)."""
    return f"{CONFIG_DIR}/{release.deployment}/local.yaml"


def secrets_path(release: Release) -> str:
    return f"{CONFIG_DIR}/{release.deployment}/secrets/{release.env}.yaml"


@dataclass
class Hierarchy:
    layers: list[Layer]
    notes: list[str] = field(default_factory=list)  # what an operator should know, e.g. skips


@dataclass
class ReleaseValues:
    release: Release
    merged: Merged
    base: Merged  # the hierarchy alone, before the pipeline pins the image: what a plan compares
    hierarchy: Hierarchy
    image: ImageRef | None
    pipeline: Layer | None = None

    @property
    def layers(self) -> list[Layer]:
        """The documents helm merges, in order (later wins)."""
        return self.hierarchy.layers + ([self.pipeline] if self.pipeline else [])

    @property
    def sha256(self) -> str:
        return self.merged.sha256()

    @property
    def overlay_leaves(self) -> set[tuple[str, ...]]:
        """Leaves the hierarchy itself sets (not the chart's defaults)."""
        return {p for layer in self.hierarchy.layers for p in leaf_paths(layer.values) if p}


def config_layers(tree: Tree, release: Release, target: str) -> list[Layer]:
    """The plain (not secret) files of the hierarchy, in merge order."""
    d = f"{CONFIG_DIR}/{release.deployment}"
    files = [f"{CONFIG_DIR}/values.yaml", f"{d}/common.yaml", f"{d}/{release.env}.yaml"]
    if target == "local":
        files.append(local_path(release))
    layers = []
    for relpath in files:
        blob = tree.read(relpath)
        if blob is None:
            if relpath == local_path(release):
                continue
            raise ValuesError(f"{relpath}: missing from the {tree.label}")
        layers.append(Layer(relpath, load_mapping(blob, relpath)))
    return layers


def release_hierarchy(
    tree: Tree,
    release: Release,
    *,
    target: str,
    git_crypt_key: str | None,
    target_secrets: Layer | None = None,
    offline: bool = False,
) -> Hierarchy:
    """The layers of a release's values. `offline` (a reviewer's or a pull request's view,
    never a deploy): secrets encrypted and no key are named placeholders, said in the notes."""
    hierarchy = Hierarchy(config_layers(tree, release, target))
    secrets, note = _secrets_layer(tree, release, git_crypt_key, target != "local", offline)
    if secrets is not None:
        hierarchy.layers.append(secrets)
    if note:
        hierarchy.notes.append(note)
    if target_secrets is not None:
        hierarchy.layers.append(target_secrets)
    return hierarchy


def _secrets_layer(
    tree: Tree, release: Release, key: str | None, required: bool, offline: bool
) -> tuple[Layer | None, str | None]:
    """The decrypted secrets layer, or what stands in for it and why."""
    relpath = secrets_path(release)
    blob = tree.read(relpath)
    if blob is None:
        if required and offline:
            return _placeholders(tree, release, "missing"), (
                f"{relpath}: missing; its keys (from {_example(release)}) are placeholders "
                f"<secret: KEY>. Before the first deploy: `tess-platform secrets init "
                f"{release.env} {release.deployment}`"
            )
        if required:
            raise SecretsError(
                f"{relpath}: missing. Write it from {_example(release)} and commit it "
                "encrypted (git-crypt)"
            )
        return None, f"{relpath}: none in the {tree.label}; the local target uses its own secrets"
    if is_encrypted(blob):
        if key is None:
            if required and offline:
                return _placeholders(tree, release, "encrypted, no TESS_GIT_CRYPT_KEY here"), (
                    f"{relpath}: encrypted and no TESS_GIT_CRYPT_KEY here: its keys (from "
                    f"{_example(release)}) are placeholders <secret: KEY>, their values unchecked"
                )
            if required:
                raise SecretsError(
                    f"{relpath}: still encrypted and TESS_GIT_CRYPT_KEY is not set. Set it to "
                    "the base64 of `git-crypt export-key` for this repository, or set "
                    "TESS_GIT_CRYPT_KEY_SECRET to the Secrets Manager secret that holds it"
                )
            return None, (
                f"{relpath}: encrypted and no TESS_GIT_CRYPT_KEY; the local target uses "
                "its own secrets"
            )
        plain = decrypt(blob, key, relpath)
    elif clear := tree.in_the_clear(relpath):
        raise SecretsError(f"{relpath}: {clear}")
    else:
        plain = blob  # an unlocked checkout: git stores it encrypted
    return Layer(relpath, load_mapping(plain, relpath, secret=True), secret=True), None


def _example(release: Release) -> str:
    return f"{CONFIG_DIR}/{release.deployment}/secrets/example.yaml"


def _placeholders(tree: Tree, release: Release, unread: str) -> Layer:
    """The secrets file's shape, from the deployment's example, every value a placeholder
    that names its key: what the values look like, without a secret. `unread`: why the file
    itself is not read."""
    blob = tree.read(_example(release))
    if blob is None:
        raise SecretsError(
            f"{secrets_path(release)}: {unread}, and no {_example(release)} to tell its keys: "
            "add the example (keys, no secrets)"
        )
    shape = load_mapping(blob, _example(release))
    values: dict = {}
    for path in filter(None, leaf_paths(shape)):
        set_path(values, path, f"<secret: {dotted(path)}>")
    return Layer(f"{secrets_path(release)} (placeholders: not decrypted here)", values)


def host(release: Release, base: Merged) -> str:
    """The release's one host: `<domain>` for prod, `staging.<domain>` for staging."""
    domain = get_path(base.values, ("custom", "tess", "domain"))
    if not isinstance(domain, str) or not domain:
        raise ValuesError(
            f"{CONFIG_DIR}/{release.deployment}/common.yaml: custom.tess.domain: "
            "required, the domain of the deployment's hosts"
        )
    return host_of(domain, release.env)


def host_of(domain: str, env: str) -> str:
    """A deployment's host in `env`: its domain for prod, `staging.<domain>` otherwise."""
    return domain if env == "prod" else f"staging.{domain}"


def callback_url(host: str) -> str:
    """Where GitHub sends a user back to a hub at `host` (its OAuth app's callback URL)."""
    return f"https://{host}/hub/oauth_callback"


ACCESS = ("custom", "tess", "access")
AUTHENTICATOR = ("hub", "config", "JupyterHub", "authenticator_class")
GITHUB = ("hub", "config", "GitHubOAuthenticator")
# what custom.tess.access decides, and so no file may set beside it
ACCESS_KEYS = ("allow_all", "allowed_organizations", "allowed_users", "allow_existing_users")


def github_access(base: Merged) -> dict[str, Any]:
    """Who may log in with GitHub, from the one setting `custom.tess.access.github`: `any`
    (any GitHub user, the prototype's rule) or a list of organisations (their members)."""
    access = get_path(base.values, ACCESS)
    github = get_path(base.values, AUTHENTICATOR) == "github"
    if access is None:
        if github:
            raise ValuesError(
                f"{base.source_of(AUTHENTICATOR)}: {dotted(ACCESS)}: required with GitHub "
                "login: `github: any` (any GitHub user) or `github: [ORGANISATION, ...]`"
            )
        return {}
    where = f"{base.source_of(ACCESS)}: {dotted(ACCESS)}"
    if not github:
        raise ValuesError(
            f"{where}: says who logs in with GitHub, but the hub's authenticator_class is "
            f"{get_path(base.values, AUTHENTICATOR)!r}: set it to null there"
        )
    for key in ACCESS_KEYS:
        if has_path(base.values, (*GITHUB, key)):
            raise ValuesError(
                f"{base.source_of((*GITHUB, key))}: {dotted((*GITHUB, key))}: who may log in "
                f"is {dotted(ACCESS)} alone: remove this key"
            )
    rule = access.get("github") if isinstance(access, dict) else None
    if rule == "any":
        return {"allow_all": True}
    if isinstance(rule, list) and rule and all(isinstance(o, str) and o for o in rule):
        return {"allowed_organizations": rule, "scope": ["read:org"]}
    raise ValuesError(f"{where}.github: `any` (any GitHub user) or a list of GitHub organisations")


def pipeline_layer(release: Release, base: Merged, image: ImageRef) -> Layer:
    """What the pipeline sets over the hierarchy: the image it built, the host, and who may
    log in (custom.tess.access)."""
    hostname = host(release, base)
    values: dict = {
        "custom": {"tess": {"host": hostname}},
        "proxy": {"https": {"hosts": [hostname]}},
        "singleuser": {"image": {"name": image.repository, "tag": image.tag}},
    }
    if image.digest:  # pinned by digest: the chart's name:tag cannot say name@sha256:...
        set_path(values, ("hub", "config", "KubeSpawner", "image"), image.ref)
    if access := github_access(base):
        set_path(values, GITHUB, access)
    return Layer("pipeline", values)


def release_values(
    chart: ChartFiles, hierarchy: Hierarchy, pipeline: Layer | None, release: Release
) -> Merged:
    """The chart values helm would get for this release, validated against the chart schema."""
    layers = hierarchy.layers + ([pipeline] if pipeline else [])
    merged = chart_values(chart, layers)
    validate(chart, merged, f"{release.name}")
    return merged
