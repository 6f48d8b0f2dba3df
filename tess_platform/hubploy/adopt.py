"""The files of this repository's layout that a hubploy repository makes, and writing them.

Per deployment: `hub_config/<d>/common.yaml` (the wrapper chart's values, then the
deployment's own common config, translated; the domain), `staging.yaml`, `prod.yaml`,
`local.yaml` (ports; a shared password where the hub logs in with a provider), and
`secrets/{staging,prod}.yaml` where the old secrets could be decrypted, else
`secrets/example.yaml` alone. The platform's own `hub_config/values.yaml` stays underneath.
"""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..chart import ChartFiles
from ..files import write_file
from ..hierarchy import (
    ACCESS,
    AUTHENTICATOR,
    CONFIG_DIR,
    GITHUB,
    WorkTree,
    callback_url,
    host_of,
)
from ..releases import ENVIRONMENTS, deployment_problem
from ..schema import chart_values, rejected
from ..secrets import SecretsError, hub_secrets
from ..tree_digest import folder_digest
from ..values import Layer, ValuesError, dotted, get_path, has_path, leaf_paths, set_path
from ..yaml_loader import load_mapping
from . import chart_keys
from .report import CHECK, EXPLICIT, NOT_IMPORTED, TRANSLATED, Report
from .source import KEY_OPTION, Deployment, HubployRepo, ValuesFile

HOSTS = ("proxy", "https", "hosts")
PVC_NAME = ("singleuser", "storage", "dynamic", "pvcNameTemplate")
OLD_PVC_NAME = "claim-{username}{servername}"  # the chart's before KubeSpawner 7 (chart 4.0)
SLUG_SCHEME = ("hub", "config", "KubeSpawner", "slug_scheme")
ALLOW_ALL = ("hub", "config", "Authenticator", "allow_all")
# authenticators whose users need no provider: the local target runs them as they are
LOCAL_AS_IS = ("tmp", "dummy")
FIRST_LOCAL_PORT = 18101  # above the shipped hubs' ports


@dataclass
class Adoption:
    """What an import writes into a checkout, relative paths to contents."""

    files: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)  # 0600, under git-crypt
    image: Path | None = None  # the folder that becomes image/
    secret_values: list[str] = field(default_factory=list)  # never to be shown


@dataclass
class _Hub:
    """One deployment's layers as the import writes them, and where each came from."""

    name: str
    common: dict
    envs: dict[str, dict]
    sources: dict[str, str]  # "common", "staging", "prod" -> the hubploy file

    @property
    def layers(self) -> dict[str, dict]:
        return {"common": self.common, **self.envs}

    def source(self, name: str) -> str:
        """The hubploy file of a layer; common's where the deployment had none of its own."""
        return self.sources.get(name) or self.sources.get(
            "common", f"deployments/{self.name}/config/common.yaml"
        )

    def written(self, name: str) -> str:
        return f"{CONFIG_DIR}/{self.name}/{name}.yaml"

    def merged(self) -> dict[str, dict]:
        return {env: overlay(self.common, self.envs[env]) for env in ENVIRONMENTS}


def adopt(repo: HubployRepo, into: Path, chart: ChartFiles, report: Report) -> Adoption:
    """The layout `repo` makes in the checkout `into` (read for what a re-run must keep)."""
    out = Adoption()
    report.add(
        TRANSLATED,
        f"{repo.chart_dir}/",
        "dependencies.jupyterhub",
        f"chart {repo.chart_version}: its values are written for {chart.chart.label}",
    )
    for template in repo.templates:
        report.add(
            NOT_IMPORTED,
            template,
            "",
            "a template of the wrapper chart: the platform deploys the jupyterhub chart alone; "
            "make what it creates in infra/ or with the chart's hub.extra* settings",
        )
    shared = _translated(repo.chart_values, chart, report) if repo.chart_values else {}
    ports = _taken_ports(into)
    for d in repo.deployments:
        if problem := deployment_problem(d.name):
            raise ValuesError(f"deployments/{d.name}/: {problem}; rename it before importing")
        _deployment(repo, d, shared, into, chart, ports, out, report)
    out.image = _image(repo, report)
    return out


def _deployment(
    repo: HubployRepo,
    d: Deployment,
    shared: dict,
    into: Path,
    chart: ChartFiles,
    ports: set[int],
    out: Adoption,
    report: Report,
) -> None:
    layers = {name: _translated(f, chart, report) for name, f in d.config.items()}
    where = {name: f.relpath for name, f in d.config.items()}
    for name, layer in layers.items():
        _secrets_in_the_clear(layer, where[name], report)
    common = overlay(shared, layers.get("common", {}))
    hub = _Hub(d.name, common, {env: layers.get(env, {}) for env in ENVIRONMENTS}, where)
    domain = _domain(hub, report)
    hosts_given = any(has_path(layer, HOSTS) for layer in hub.layers.values())
    for name, layer in hub.layers.items():
        _more_hosts(layer, hub.source(name), report)
        chart_keys.pop(layer, HOSTS)
    set_path(hub.common, ("custom", "tess", "domain"), domain)
    _kept_defaults(repo, hub, hosts_given, report)
    _access(hub, report)
    for name, values in hub.layers.items():
        out.files[hub.written(name)] = _yaml(values, f"from {hub.source(name)}")
    merged = hub.merged()  # who may log in, decided
    for env in ENVIRONMENTS:  # a callback in the plain config, as in the secrets
        _callbacks(merged[env], host_of(domain, env), hub.source(env), report)
    auth = get_path(merged["prod"], AUTHENTICATOR)
    local = _local(into, d.name, auth, merged["prod"], ports)
    out.files[hub.written("local")] = _yaml(local, "the local target: ports, and how to log in")
    _secrets(d, into, auth, domain, chart, out, report)
    for relpath in d.other_config:
        report.add(
            NOT_IMPORTED,
            relpath,
            "",
            "not an environment here (common, staging, prod): merge what it needs into one",
        )
    for relpath in d.credentials:
        report.add(
            NOT_IMPORTED,
            relpath,
            "",
            "a credentials file: never imported; the platform's deployer role (infra/) and "
            "TESS_AWS_REGION replace what it was for",
        )
    if d.hubploy:
        for key in sorted(map(str, d.hubploy.values)):
            report.add(NOT_IMPORTED, d.hubploy.relpath, key, HUBPLOY_KEYS.get(key, HUBPLOY_OTHER))


def _translated(f: ValuesFile, chart: ChartFiles, report: Report) -> dict:
    """A hubploy values file's z2jh values in the pinned chart's terms, without what its
    schema would refuse."""
    try:
        values = chart_keys.unwrap(f.values, f.relpath, report)
        values = chart_keys.translate(values, f.relpath, report)
    except (AttributeError, TypeError, KeyError) as e:  # a key or value of a kind no chart takes
        raise ValuesError(
            f"{f.relpath}: a key or value of an unexpected kind ({type(e).__name__}): "
            "the old chart would not have taken it either; fix the file and import again"
        ) from None
    _schema_pruned(values, chart, f.relpath, report)
    return values


HUBPLOY_KEYS = {
    "images": "the user image is built from image/ and named by the platform (ECR, infra/)",
    "cluster": "the cluster is infra/'s (terraform), reached with the deployer's role",
}
HUBPLOY_OTHER = "a hubploy setting with no counterpart here"


def overlay(base: dict, over: dict) -> dict:
    """`over` written over `base` as helm merges them, its nulls kept: a null still deletes
    what a file beneath (the platform's values.yaml, the chart's defaults) sets."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = overlay(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _domain(hub: _Hub, report: Report) -> str:
    """`custom.tess.domain` from the hosts: prod's host, and staging's at `staging.<domain>`."""
    prod_host = _first_host(hub.envs["prod"]) or _first_host(hub.common)
    staging_host = _first_host(hub.envs["staging"])
    domain = prod_host or (staging_host or "").removeprefix("staging.")
    file = hub.source("prod")
    if not domain:
        domain = f"{hub.name}.example.org"
        report.add(
            CHECK,
            file,
            dotted(HOSTS),
            f"no host in the old config: custom.tess.domain is {domain}; set the real one",
        )
        return domain
    report.add(TRANSLATED, file, dotted(HOSTS), f"now custom.tess.domain: {domain}")
    if staging_host and staging_host != host_of(domain, "staging"):
        report.add(
            CHECK,
            hub.source("staging"),
            dotted(HOSTS),
            f"the staging hub moves from {staging_host} to {host_of(domain, 'staging')}: point "
            "DNS there",
        )
    return domain


def _first_host(values: dict) -> str | None:
    hosts = get_path(values, HOSTS)
    return hosts[0] if isinstance(hosts, list) and hosts and isinstance(hosts[0], str) else None


def _more_hosts(layer: dict, file: str, report: Report) -> None:
    """A hub has one host here: any other a file gave is named."""
    hosts = get_path(layer, HOSTS)
    if isinstance(hosts, list) and len(hosts) > 1:
        report.add(
            NOT_IMPORTED,
            file,
            dotted(HOSTS),
            f"{len(hosts) - 1} host(s) beyond the first: a hub has one host here; "
            "redirect the others to it",
        )


def _kept_defaults(repo: HubployRepo, hub: _Hub, hosts_given: bool, report: Report) -> None:
    """Defaults the chart changed since `repo`'s version, written down where the old
    behaviour must stay: HTTPS on its hosts, the names of users' home volumes."""
    file, common, merged = hub.written("common"), hub.common, hub.merged()
    old = repo.version
    https = ("proxy", "https", "enabled")
    # before 0.10 (z2jh#1758) HTTPS was on by default, in effect where hosts were given
    if old < (0, 10) and hosts_given and not any(has_path(v, https) for v in merged.values()):
        set_path(common, https, True)
        why = f"on for its hosts by default in chart {repo.chart_version}"
        report.add(EXPLICIT, file, dotted(https), why)
    homes = {get_path(v, ("singleuser", "storage", "type")) or "dynamic" for v in merged.values()}
    named = any(has_path(v, PVC_NAME) for v in merged.values())
    if old < (4,) and not any(has_path(v, SLUG_SCHEME) for v in merged.values()):
        set_path(common, SLUG_SCHEME, "escape")  # {username} in names and paths, as before
        report.add(
            EXPLICIT,
            file,
            dotted(SLUG_SCHEME),
            "users' names in volume names and home paths escaped as before: KubeSpawner 7 "
            "(chart 4) makes other names of some, and their homes would be new, empty ones",
        )
    if old < (4,) and "dynamic" in homes and not named:
        set_path(common, PVC_NAME, OLD_PVC_NAME)
        report.add(
            EXPLICIT,
            file,
            dotted(PVC_NAME),
            f"users' home volumes keep their names ({OLD_PVC_NAME}): KubeSpawner 7 (chart 4) "
            "names new ones otherwise",
        )
    storage_class = ("singleuser", "storage", "dynamic", "storageClass")
    if "dynamic" in homes and not any(has_path(v, storage_class) for v in merged.values()):
        report.add(
            CHECK,
            file,
            dotted(storage_class),
            "homes were on the old cluster's default storage class; EKS has none since 1.30: "
            "name one (infra/ makes efs-homes) and move the homes' data to it",
        )
    policy = ("singleuser", "networkPolicy")
    if old < (2,) and not any(has_path(v, policy) for v in merged.values()):
        report.add(
            CHECK,
            file,
            dotted(policy),
            "user servers reached private addresses under the old chart; the platform's "
            "network policies let them reach the internet only (egressAllowRules.privateIPs "
            "opens them)",
        )


def _access(hub: _Hub, report: Report) -> None:
    """Who may log in, in the platform's terms: GitHub's organisations (or any GitHub user)
    as `custom.tess.access`; with any other authenticator, everyone it accepts
    (`allow_all`) where the old config had no allow-list, as JupyterHub 5 admits nobody."""
    merged = hub.merged()
    auth = {get_path(v, AUTHENTICATOR) for v in merged.values()}
    if auth == {None}:
        report.add(
            CHECK,
            hub.source("common"),
            "auth.type",
            "no authenticator: the chart's default lets anyone in with any password; set one",
        )
    if auth == {"github"}:
        _github_access(hub, merged, report)
        return
    open_envs = [
        env
        for env in ENVIRONMENTS
        if get_path(merged[env], AUTHENTICATOR) is not None and not _allow_list(merged[env])
    ]
    # the environments that had no allow-list, and only those: a prod with one stays closed
    names = ["common"] if len(open_envs) == len(ENVIRONMENTS) else open_envs
    for name in names:
        set_path(hub.layers[name], ALLOW_ALL, True)
        report.add(
            EXPLICIT,
            hub.written(name),
            dotted(ALLOW_ALL),
            "the old hub let in everyone its authenticator accepted; JupyterHub 5 "
            "admits nobody without an allow-list",
        )


def _allow_list(values: dict) -> bool:
    """Whether some authenticator setting says who may log in."""
    config = get_path(values, ("hub", "config")) or {}
    return any(
        trait == "allow_all" or trait.startswith("allowed_")
        for traits in config.values()
        if isinstance(traits, dict)
        for trait in traits
    )


def _github_access(hub: _Hub, merged: dict[str, dict], report: Report) -> None:
    """GitHub's organisations (or any GitHub user) as the platform's `custom.tess.access`."""
    github = ("hub", "config", "GitHubOAuthenticator")
    folded = [(*github, "allowed_organizations"), (*github, "allow_all"), ALLOW_ALL]
    rules = {}
    for env in ENVIRONMENTS:
        listed = get_path(merged[env], folded[0])
        anyone = any(get_path(merged[env], path) is True for path in folded[1:])
        rules[env] = {"github": "any" if anyone or not listed else listed}
        users = get_path(merged[env], (*github, "allowed_users")) or get_path(
            merged[env], ("hub", "config", "Authenticator", "allowed_users")
        )
        if users and not listed and not anyone:
            report.add(
                CHECK,
                hub.source(env),
                "auth.whitelist.users",
                "GitHub users by name: custom.tess.access says organisations or any; "
                "`any` would let every GitHub user in, so access is left unset",
            )
            return
    for layer in hub.layers.values():
        for path in folded:
            chart_keys.pop(layer, path)
        # users by name: Authenticator's setting, which GitHub's inherits (access decides the rest)
        if (users := chart_keys.pop(layer, (*github, "allowed_users"))) is not None:
            set_path(layer, ("hub", "config", "Authenticator", "allowed_users"), users)
    if rules["staging"] == rules["prod"]:
        set_path(hub.common, ACCESS, rules["prod"])
    else:
        for env in ENVIRONMENTS:
            set_path(hub.envs[env], ACCESS, rules[env])
    why = f"who may log in: now {dotted(ACCESS)}"
    report.add(TRANSLATED, hub.source("common"), dotted(folded[0]), why)


def _local(into: Path, name: str, auth: str | None, prod: dict, ports: set[int]) -> dict:
    """The local target's settings: two ports (kept from an earlier import), and a shared
    password where the hub logs in with a provider no laptop can reach."""
    earlier = _read_yaml(into, f"{CONFIG_DIR}/{name}/local.yaml")
    kept = get_path(earlier, ("custom", "tess", "local", "ports")) or {}
    chosen = {}
    for env in ENVIRONMENTS:
        port = kept.get(env) if isinstance(kept, dict) else None
        if not isinstance(port, int):
            port = min(p for p in range(FIRST_LOCAL_PORT, 65000) if p not in ports)
        ports.add(port)
        chosen[env] = port
    local: dict[str, Any] = {"custom": {"tess": {"local": {"ports": chosen}}}}
    if auth not in LOCAL_AS_IS:
        if has_path(prod, ACCESS):
            set_path(local, ACCESS, None)
        config = get_path(prod, ("hub", "config")) or {}
        for cls in sorted(c for c in config if c.endswith("OAuthenticator")):
            set_path(local, ("hub", "config", cls), None)
        set_path(local, AUTHENTICATOR, "shared-password")
        set_path(local, ALLOW_ALL, True)
    return local


def _taken_ports(into: Path) -> set[int]:
    taken = set()
    for path in sorted((into / CONFIG_DIR).glob("*/local.yaml")):
        found = _read_yaml(into, str(path.relative_to(into)))
        ports = get_path(found, ("custom", "tess", "local", "ports"))
        if isinstance(ports, dict):
            taken |= {p for p in ports.values() if isinstance(p, int)}
    return taken


def _secrets(
    d: Deployment,
    into: Path,
    auth: str | None,
    domain: str,
    chart: ChartFiles,
    out: Adoption,
    report: Report,
) -> None:
    """Each environment's secrets, translated, with what the platform needs and the old
    files lack (tokens kept from an earlier import, else new); without the old key, their
    shape alone, as the example."""
    folder = f"{CONFIG_DIR}/{d.name}/secrets"
    shape = hub_secrets(token=str)
    if auth == "github":
        client = {"client_id": "", "client_secret": "", "oauth_callback_url": ""}
        set_path(shape, GITHUB, client)
    for relpath in d.encrypted:
        env = Path(relpath).stem
        report.add(
            NOT_IMPORTED,
            relpath,
            "",
            f"encrypted and no key given ({KEY_OPTION}): its keys are unknown here; write "
            f"{folder}/<env>.yaml with `tess-platform secrets init <env> {d.name}`"
            + (", then add what it held besides" if env != "common" else ""),
        )
    if not d.encrypted and not d.secrets:
        report.add(
            CHECK,
            f"deployments/{d.name}/secrets/",
            "",
            f"no secrets files: write them with `tess-platform secrets init <env> {d.name}`",
        )
    for f in d.secrets.values() if d.encrypted else ():
        report.add(
            NOT_IMPORTED,
            f.relpath,
            "",
            "readable, but other secrets files of the deployment are not: none is imported "
            f"until all are ({KEY_OPTION})",
        )
    if not d.encrypted and d.secrets:
        old = {name: _translated(f, chart, report) for name, f in d.secrets.items()}
        for env in ENVIRONMENTS:
            relpath = f"{folder}/{env}.yaml"
            values = overlay(old.get("common", {}), old.get(env, {}))
            chart_keys.pop(values, HOSTS)
            source = d.secrets.get(env) or d.secrets.get("common") or next(iter(d.secrets.values()))
            file = source.relpath
            _callbacks(values, host_of(domain, env), file, report)
            earlier = _read_yaml(into, relpath, secret=True)
            values = overlay(_generated(earlier), values)
            shape = overlay(shape, values)
            out.secret_values += _strings([get_path(values, p) for p in leaf_paths(values) if p])
            header = f"{d.name} {env} secrets: encrypted in git by git-crypt"
            out.secrets[relpath] = _yaml(values, header)
    example = {}
    for path in filter(None, leaf_paths(shape)):
        set_path(example, path, f"<{dotted(path)}>")
    out.files[f"{folder}/example.yaml"] = _yaml(
        example, "the shape of secrets/staging.yaml and prod.yaml; no secret here"
    )


SECRET_NAME = re.compile(r"secret|password|token|cryptokey|apikey|private_?key", re.I)


def _secrets_in_the_clear(values: dict, file: str, report: Report) -> None:
    """Keys of a plain config file that name a secret: written where they were, named."""
    for path in filter(None, leaf_paths(values)):
        if SECRET_NAME.search(path[-1]) or path[-2:] == ("CryptKeeper", "keys"):
            report.add(
                CHECK,
                file,
                dotted(path),
                "a secret in a plain file, committed in the clear before: move it to "
                "secrets/<env>.yaml and rotate it",
            )


def _strings(values: list) -> list[str]:
    """Every scalar in `values`, lists opened: what a redactor must know."""
    return [s for v in values for s in (_strings(v) if isinstance(v, list) else [str(v)])]


def _callbacks(values: dict, host: str, file: str, report: Report) -> None:
    """An OAuth app's callback must be the hub's new host, or nobody logs in."""
    expected = callback_url(host)
    for cls, traits in (get_path(values, ("hub", "config")) or {}).items():
        url = traits.get("oauth_callback_url") if isinstance(traits, dict) else None
        if isinstance(url, str) and url != expected:
            report.add(
                CHECK,
                file,
                f"hub.config.{cls}.oauth_callback_url",
                f"not {expected}: set it there and in the OAuth app",
            )


def _generated(earlier: dict) -> dict:
    """The platform's tokens: an earlier import's where there was one (a re-run changes
    nothing), else fresh ones."""
    fresh = hub_secrets()
    out: dict = {}
    for path in filter(None, leaf_paths(fresh)):
        set_path(out, path, get_path(earlier, path) or get_path(fresh, path))
    return out


def _schema_pruned(values: dict, chart: ChartFiles, file: str, report: Report) -> None:
    """Remove what the pinned chart's schema rejects, each a finding: nothing the schema
    would refuse is written."""
    for _ in range(20):  # a removal may uncover another problem, never more than a few
        found = rejected(chart, chart_values(chart, [Layer(file, values)]))
        found = [(path, reason) for path, reason in found if has_path(values, path)]
        if not found:
            return
        for path, reason in found:
            chart_keys.pop(values, path)
            report.add(NOT_IMPORTED, file, dotted(path), reason)


def _image(repo: HubployRepo, report: Report) -> Path | None:
    """The one user image every hub here shares: the first deployment's; another
    deployment's that differs is named, not imported."""
    images = [(d, d.image) for d in repo.deployments if d.image is not None]
    if not images:
        report.add(CHECK, "deployments/", "image", "no image folder: image/ kept as it is")
        return None
    first, folder = images[0]
    for _, other in images[1:]:
        if folder_digest(other) != folder_digest(folder):
            report.add(
                NOT_IMPORTED,
                str(other.relative_to(repo.root)),
                "",
                f"a second image: every hub here runs image/, which is {first.name}'s",
            )
    return folder


def write(adoption: Adoption, into: Path, force: bool, report: Report) -> None:
    """Write the adoption into the checkout: all of it, or nothing with the reason. A file
    that git does not hold as it is may be replaced only with `force`."""
    tree = WorkTree(into)
    if not (into / CONFIG_DIR / "values.yaml").is_file():
        raise ValuesError(
            f"{into}: not a tess-platform checkout (no {CONFIG_DIR}/values.yaml): clone "
            "tess-platform and import into it"
        )
    if adoption.secrets and not all(tree.git_crypt_covers(p) for p in adoption.secrets):
        raise SecretsError(f"{into}/.gitattributes: git-crypt would not encrypt the secrets files")
    if adoption.secrets and not tree.git_crypt_configured():
        raise SecretsError(
            f"{into}: git-crypt is not set up in this checkout: run `git-crypt init` (or "
            "`git-crypt unlock KEY`) first; nothing written"
        )
    contents = {**adoption.files, **adoption.secrets}
    changed = [p for p, text in contents.items() if _text(into / p) != text]
    image_changes = adoption.image is not None and folder_digest(adoption.image) != folder_digest(
        into / "image"
    )
    unsafe = [p for p in changed if (into / p).exists() and not _clean_in_git(into, p)]
    if image_changes and not _clean_in_git(into, "image"):
        unsafe.append("image/")
    if unsafe and not force:
        raise ValuesError(
            f"{into}: would replace what git does not hold: {', '.join(sorted(unsafe))}; "
            "commit or remove it, or pass --force; nothing written"
        )
    for relpath in sorted(changed):
        mode = 0o600 if relpath in adoption.secrets else 0o644
        write_file(into / relpath, contents[relpath], mode)
        report.written.append(relpath)
    if image_changes:
        _replace_folder(adoption.image, into / "image")
        report.written.append("image/")
        report.add(CHECK, "image/", "", "replaced by the imported image (git has the earlier one)")


def _replace_folder(source: Path, folder: Path) -> None:
    """`folder` becomes a copy of `source` (which holds no link), swapped in by renames: an
    import killed meanwhile leaves a whole folder, old or new (or the old one beside, as
    `.import-old-<name>`), never a part of one; the next import removes the leftovers."""
    new, old = (
        folder.with_name(f".import-new-{folder.name}"),
        folder.with_name(f".import-old-{folder.name}"),
    )
    for leftover in (new, old):
        shutil.rmtree(leftover, ignore_errors=True)
    shutil.copytree(source, new)
    if folder.exists():
        folder.rename(old)
    new.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


def _clean_in_git(into: Path, relpath: str) -> bool:
    """Whether git holds `relpath` as it is here (nothing uncommitted, nothing untracked)."""
    status = subprocess.run(
        ["git", "status", "--porcelain", "--ignored", "--", relpath],
        cwd=into,
        capture_output=True,
        text=True,
    )
    return status.returncode == 0 and not status.stdout.strip()


def _text(path: Path) -> str | None:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError):
        return None


def _read_yaml(into: Path, relpath: str, secret: bool = False) -> dict:
    blob = WorkTree(into).read(relpath) if (into / relpath).is_file() else None
    if blob is None:
        return {}
    try:
        return load_mapping(blob, relpath, secret=secret)
    except ValuesError:
        return {}  # replaced by what the import writes


def _yaml(values: dict, header: str) -> str:
    return f"# {header}\n# written by `tess-platform import-hubploy`\n" + (
        yaml.safe_dump(values, sort_keys=False, default_flow_style=False) if values else "{}\n"
    )
