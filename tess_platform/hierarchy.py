"""The values hierarchy of one release: which files, in which order, and how secrets enter.

Order (later wins): hub_config/values.yaml < <d>/common.yaml < <d>/<env>.yaml
< <d>/local.yaml (local target only) < <d>/secrets/<env>.yaml < the target's own secrets
< what the pipeline sets (image, host).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from .backends.image import ImageRef
from .chart import ChartFiles
from .releases import Release
from .schema import chart_values, validate
from .secrets import SecretsError, decrypt, is_encrypted
from .values import Layer, Merged, ValuesError, get_path, parse_yaml

CONFIG_DIR = "hub_config"


class Tree(Protocol):
    """Where the hub_config files are read from: a git snapshot or an operator's checkout."""

    root: Path
    label: str

    def read(self, relpath: str) -> bytes | None: ...

    def git_crypt_covers(self, relpath: str) -> bool:
        """Whether a plaintext file here would be stored encrypted by git."""
        ...


@dataclass(frozen=True)
class _Folder:
    root: Path
    label: str

    def read(self, relpath: str) -> bytes | None:
        path = self.root / relpath
        return path.read_bytes() if path.is_file() else None


@dataclass(frozen=True)
class SnapshotTree(_Folder):
    def git_crypt_covers(self, relpath: str) -> bool:
        return False  # these are git's own bytes: plaintext here is plaintext in git


@dataclass(frozen=True)
class WorkTree(_Folder):
    label: str = "working tree"

    def git_crypt_covers(self, relpath: str) -> bool:
        out = subprocess.run(
            ["git", "check-attr", "filter", "--", relpath],
            cwd=self.root,
            capture_output=True,
            text=True,
        )
        return out.returncode == 0 and out.stdout.strip().endswith(": filter: git-crypt")


def secrets_path(release: Release) -> str:
    return f"{CONFIG_DIR}/{release.deployment}/secrets/{release.env}.yaml"


@dataclass
class Hierarchy:
    layers: list[Layer]
    notes: list[str] = field(default_factory=list)  # what an operator should know, e.g. skips


def config_layers(tree: Tree, release: Release, target: str) -> list[Layer]:
    """The plain (not secret) files of the hierarchy, in merge order."""
    d = f"{CONFIG_DIR}/{release.deployment}"
    files = [f"{CONFIG_DIR}/values.yaml", f"{d}/common.yaml", f"{d}/{release.env}.yaml"]
    if target == "local":
        files.append(f"{d}/local.yaml")
    layers = []
    for relpath in files:
        blob = tree.read(relpath)
        if blob is None:
            if relpath.endswith("/local.yaml"):
                continue
            raise ValuesError(f"{relpath}: missing from the {tree.label}")
        layers.append(Layer(relpath, parse_yaml(blob.decode(), relpath)))
    return layers


def release_hierarchy(
    tree: Tree,
    release: Release,
    *,
    target: str,
    git_crypt_key: str | None,
    target_secrets: Layer | None = None,
) -> Hierarchy:
    hierarchy = Hierarchy(config_layers(tree, release, target))
    secrets = _secrets_layer(tree, release, git_crypt_key, required=target != "local")
    if isinstance(secrets, Layer):
        hierarchy.layers.append(secrets)
    elif secrets:
        hierarchy.notes.append(secrets)
    if target_secrets is not None:
        hierarchy.layers.append(target_secrets)
    return hierarchy


def _secrets_layer(
    tree: Tree, release: Release, key: str | None, required: bool
) -> Layer | str | None:
    """The decrypted secrets layer, or a note saying why the local target goes without it."""
    relpath = secrets_path(release)
    blob = tree.read(relpath)
    if blob is None:
        if required:
            raise SecretsError(
                f"{relpath}: missing. Write it from {CONFIG_DIR}/{release.deployment}/secrets/"
                "example.yaml and commit it encrypted (git-crypt)"
            )
        return f"{relpath}: none in the {tree.label}; the local target uses its own secrets"
    if is_encrypted(blob):
        if key is None:
            if required:
                raise SecretsError(
                    f"{relpath}: still encrypted and TESS_GIT_CRYPT_KEY is not set. Set it to "
                    "the base64 of `git-crypt export-key` for this repository"
                )
            return (
                f"{relpath}: encrypted and no TESS_GIT_CRYPT_KEY; the local target uses "
                "its own secrets"
            )
        text = decrypt(blob, key, relpath)
    elif tree.git_crypt_covers(relpath):
        text = blob.decode()  # an unlocked checkout: git stores it encrypted
    else:
        raise SecretsError(
            f"{relpath}: is not encrypted in git. Secrets files must be covered by git-crypt "
            "(.gitattributes); rotate what it holds, it has been committed in the clear"
        )
    return Layer(relpath, parse_yaml(text, relpath), secret=True)


def host(release: Release, base: Merged) -> str:
    """The release's one host: `<domain>` for prod, `staging.<domain>` for staging."""
    domain = get_path(base.values, ("custom", "tess", "domain"))
    if not isinstance(domain, str) or not domain:
        raise ValuesError(
            f"{CONFIG_DIR}/{release.deployment}/common.yaml: custom.tess.domain: "
            "required, the domain of the deployment's hosts"
        )
    return domain if release.env == "prod" else f"staging.{domain}"


def pipeline_layer(release: Release, base: Merged, image: ImageRef) -> Layer:
    """What the pipeline sets over the hierarchy: the image it built, and the host."""
    hostname = host(release, base)
    values: dict = {
        "custom": {"tess": {"host": hostname}},
        "proxy": {"https": {"hosts": [hostname]}},
        "singleuser": {"image": {"name": image.repository, "tag": image.tag}},
    }
    if image.digest:  # pinned by digest: the chart's name:tag cannot say name@sha256:...
        values["hub"] = {"config": {"KubeSpawner": {"image": image.ref}}}
    return Layer("pipeline", values)


def release_values(
    chart: ChartFiles, hierarchy: Hierarchy, pipeline: Layer | None, release: Release
) -> Merged:
    """The chart values helm would get for this release, validated against the chart schema."""
    layers = hierarchy.layers + ([pipeline] if pipeline else [])
    merged = chart_values(chart, layers)
    validate(chart, merged, f"{release.name}")
    return merged
