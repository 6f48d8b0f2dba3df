"""A hubploy repository as it stands: the wrapper chart (`hub/` by convention) with its z2jh
values under `jupyterhub:` and its pinned jupyterhub version, and each `deployments/<d>/` with
`config/{common,staging,prod}.yaml`, `secrets/` (git-crypt) and `hubploy.yaml`. Read only:
secrets are decrypted in memory, with the old repository's key, and only the values files;
any other file under `secrets/` (cloud credentials) is listed, never read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..hierarchy import WorkTree
from ..secrets import decrypt_with, is_encrypted
from ..values import ValuesError
from ..yaml_loader import load_mapping

LAYERS = ("common", "staging", "prod")  # hubploy's files, in helm's order for one env
KEY_OPTION = "--git-crypt-key"
LINK = "a symbolic link: it could bring a file from elsewhere into image/; copy the file in"


@dataclass(frozen=True)
class ValuesFile:
    relpath: str  # in the hubploy repository
    values: dict[str, Any]  # as written: the wrapper chart's keys


@dataclass
class Deployment:
    name: str
    config: dict[str, ValuesFile] = field(default_factory=dict)  # "common", "staging", "prod"
    secrets: dict[str, ValuesFile] = field(default_factory=dict)  # decrypted
    encrypted: list[str] = field(default_factory=list)  # secrets files no key here opens
    credentials: list[str] = field(default_factory=list)  # other files of secrets/: not read
    other_config: list[str] = field(default_factory=list)  # config/ files of no environment here
    hubploy: ValuesFile | None = None
    image: Path | None = None  # its image folder


@dataclass
class HubployRepo:
    root: Path
    chart_dir: str  # the wrapper chart's folder
    chart_version: str  # the jupyterhub chart it pins
    chart_values: ValuesFile | None
    templates: list[str]  # the wrapper chart's own templates (relative paths)
    deployments: list[Deployment]

    @property
    def version(self) -> tuple[int, ...]:
        """The pinned version's numbers, for comparing with where defaults changed."""
        return tuple(int(n) for n in re.findall(r"\d+", self.chart_version.split("-")[0])[:3])


def read(root: Path, key: bytes | None = None) -> HubployRepo:
    """The hubploy repository at `root`; ValuesError or SecretsError naming the file that
    cannot be read."""
    root = root.resolve()
    deployments_dir = root / "deployments"
    if not deployments_dir.is_dir():
        raise ValuesError(f"{root}: no deployments/ folder; not a hubploy repository")
    chart_dir, version = _wrapper_chart(root)
    values = _values(root, f"{chart_dir}/values.yaml")
    templates = sorted(
        str(p.relative_to(root)) for p in (root / chart_dir / "templates").rglob("*") if p.is_file()
    )
    deployments = [
        _deployment(root, folder.name, key)
        for folder in sorted(deployments_dir.iterdir())
        if folder.is_dir() and (folder / "config").is_dir()
    ]
    if not deployments:
        raise ValuesError(f"{root}/deployments: no deployment with a config/ folder")
    return HubployRepo(root, chart_dir, version, values, templates, deployments)


def _wrapper_chart(root: Path) -> tuple[str, str]:
    """The folder of the chart that depends on jupyterhub, and the version it pins."""
    for chart in sorted(p.parent for p in root.glob("*/Chart.yaml")):
        for relpath in (f"{chart.name}/requirements.yaml", f"{chart.name}/Chart.yaml"):
            found = _values(root, relpath)
            deps = found.values.get("dependencies") if found else None
            for dep in deps if isinstance(deps, list) else []:
                if isinstance(dep, dict) and dep.get("name") == "jupyterhub":
                    version = str(dep.get("version") or "")
                    if not re.match(r"\d+\.\d+", version):
                        raise ValuesError(f"{relpath}: dependencies: jupyterhub has no version")
                    return chart.name, version
    raise ValuesError(
        f"{root}: no chart (a folder with Chart.yaml) depending on jupyterhub; hubploy "
        "deploys one, usually hub/"
    )


def _values(root: Path, relpath: str) -> ValuesFile | None:
    blob = _read(root, relpath)
    return None if blob is None else ValuesFile(relpath, load_mapping(blob, relpath))


def _read(root: Path, relpath: str) -> bytes | None:
    """A file's bytes, never through a symbolic link (a config file linked to a key file
    elsewhere would be read into values)."""
    return WorkTree(root, f"hubploy repository {root}").read(relpath)


def _deployment(root: Path, name: str, key: bytes | None) -> Deployment:
    base = f"deployments/{name}"
    d = Deployment(name, hubploy=_values(root, f"{base}/hubploy.yaml"))
    for layer in LAYERS:
        if found := _values(root, f"{base}/config/{layer}.yaml"):
            d.config[layer] = found
    config = root / base / "config"
    d.other_config = sorted(
        f"{base}/config/{p.name}" for p in config.iterdir() if p.is_file() and p.stem not in LAYERS
    )
    secrets = root / base / "secrets"
    for path in sorted(secrets.iterdir()) if secrets.is_dir() else []:
        relpath = f"{base}/secrets/{path.name}"
        if path.suffix != ".yaml" or path.stem not in LAYERS or not path.is_file():
            d.credentials.append(relpath)
            continue
        blob = _read(root, relpath) or b""
        if is_encrypted(blob):
            if key is None:
                d.encrypted.append(relpath)
                continue
            blob = decrypt_with(blob, key, relpath, f"the key given with {KEY_OPTION}")
        d.secrets[path.stem] = ValuesFile(relpath, load_mapping(blob, relpath, secret=True))
    d.image = _image(root, base, d.hubploy)
    return d


def _image(root: Path, base: str, hubploy: ValuesFile | None) -> Path | None:
    """The deployment's image folder: hubploy.yaml's `images.images[].path`, else `image/`.
    No symbolic link in it or to it: a link could bring a file from elsewhere (a key) into
    the image the import writes."""
    images = (hubploy.values.get("images") if hubploy else None) or {}
    listed = images.get("images") if isinstance(images, dict) else None
    paths = (
        [i.get("path") for i in listed if isinstance(i, dict)] if isinstance(listed, list) else []
    )
    for relpath in [*(p for p in paths if isinstance(p, str)), "image"]:
        folder = root / base / relpath
        if not (folder.exists() or folder.is_symlink()):
            continue
        links = [p for p in [folder, *folder.rglob("*")] if p.is_symlink()]
        if links:
            raise ValuesError(f"{links[0].relative_to(root)}: {LINK}")
        if not folder.resolve().is_relative_to(root):
            raise ValuesError(f"{base}/{relpath}: out of the repository; copy its files in")
        if folder.is_dir():
            return folder
    return None
