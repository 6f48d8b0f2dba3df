"""A release's Kubernetes objects as the pinned chart renders them (`helm template`, no
cluster), validated strictly against the schemas of the Kubernetes version infra/ pins
(kubernetes-validate's), then held to the cluster contract. The rendered manifests hold the
release's secrets: they stay in memory, and only object names and keys are ever told."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .backends.helm import Helm, HelmError
from .cluster_contract import Cluster, label, problems
from .infra_config import InfraConfig, InfraError
from .quoting import clipped
from .releases import Release
from .schema import import_jsonschema
from .values import Merged
from .yaml_loader import load_generated

# the blocking check of every values asset where releases go to a cluster: (name, what it proves)
CONTRACT_CHECK = "cluster_contract"
CONTRACT_DESCRIPTION = (
    "The release's objects, rendered by the pinned chart, are valid for the cluster's "
    "Kubernetes version, and the cluster infra/ makes has all they need."
)


class ManifestError(RuntimeError):
    """The release cannot be rendered or checked; the message names the file or object."""


def render(chart_dir: Path, release: Release, values: Merged, redact) -> list[dict[str, Any]]:
    """The objects helm would apply for this release (in its namespace, as the aws target
    installs it)."""
    try:
        text = Helm(None, redact=redact).template(
            release.name, release.name, chart_dir, [values.values], secret_values=values
        )
    except HelmError as e:
        raise ManifestError(f"{release.name}: {e}") from None
    return [doc for doc in load_generated(text) if isinstance(doc, dict)]


def schema_problems(objects: list[dict[str, Any]], kubernetes_version: str) -> list[str]:
    """Each object that is not a valid Kubernetes object of that version, strictly (unknown
    fields too), with the field at fault. Values of fields are not repeated (secrets)."""
    import_jsonschema()  # imported here, and after it: kubernetes-validate imports jsonschema
    import kubernetes_validate

    found = []
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, kubernetes_version, strict=True)
        except kubernetes_validate.ValidationError as e:
            where = ".".join(str(p) for p in e.path) or "(top level)"
            found.append(f"{label(obj)}: {where}: {_without_value(e)}")
        except kubernetes_validate.SchemaNotFoundError:
            found.append(
                f"{label(obj)}: {obj.get('apiVersion')} {obj.get('kind')} is not served by "
                f"Kubernetes {kubernetes_version}"
            )
    return found


def _without_value(error: Exception) -> str:
    """jsonschema's message leads with the offending value: keep what follows it."""
    message = str(getattr(error, "message", error))
    for marker in (" is not of type ", " is not one of ", " does not match ", " is not valid "):
        if marker in message:
            return "value" + clipped(marker + message.split(marker, 1)[1])
    if "Additional properties are not allowed" in message:
        return clipped(message, 300)  # names the unknown keys, not values
    return clipped(message.split(" is ", 1)[-1] if " is " in message else message)


def read_cluster(infra_dir: Path) -> Cluster:
    """The cluster `infra_dir` makes, as the contract needs it."""
    try:
        cluster = Cluster.of(InfraConfig.read(infra_dir))
    except InfraError as e:
        raise ManifestError(str(e)) from None
    if not cluster.kubernetes_version:
        raise ManifestError("infra/: kubernetes_version has no value in terraform.tfvars")
    return cluster


def check_release(
    chart_dir: Path, cluster: Cluster, release: Release, values: Merged, redact
) -> list[str]:
    """Rendered, valid objects, and the contract with `cluster`: every problem, one line
    each, naming the object and what is missing."""
    objects = render(chart_dir, release, values, redact)
    return [
        *schema_problems(objects, cluster.kubernetes_version),
        *problems(objects, values, cluster),
    ]
