"""The cluster contract: everything a release's Kubernetes objects need exists in the cluster
infra/ makes. Storage classes for every claim (the hub database's included: EKS makes no
default class since 1.30), a node group whose labels and taints take each workload, the
homes' class, service accounts the chart renders. Read from infra/ before terraform or helm
runs, so a broken contract fails in `validate`, not in a `helm upgrade --wait` that times out.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .infra_config import InfraConfig, nested
from .values import Merged, get_path

DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"
TAINT_EFFECTS = {
    "NO_SCHEDULE": "NoSchedule",
    "NO_EXECUTE": "NoExecute",
    "PREFER_NO_SCHEDULE": "PreferNoSchedule",
}
WORKLOADS = ("Deployment", "StatefulSet", "Job", "Pod")  # a DaemonSet runs where it fits
HOMES_CLASS = ("singleuser", "storage", "dynamic", "storageClass")


@dataclass(frozen=True)
class NodeGroup:
    name: str
    labels: dict[str, str]
    taints: tuple[tuple[str, str, str], ...]  # key, value, effect (Kubernetes' spelling)

    def takes(self, pod: dict[str, Any]) -> bool:
        """Whether a pod with this spec can be scheduled on the group's nodes."""
        selector = pod.get("nodeSelector") or {}
        if any(self.labels.get(k) != str(v) for k, v in selector.items()):
            return False
        terms = (
            get_path(
                pod,
                (
                    "affinity",
                    "nodeAffinity",
                    "requiredDuringSchedulingIgnoredDuringExecution",
                    "nodeSelectorTerms",
                ),
            )
            or []
        )
        if terms and not any(self._matches(t.get("matchExpressions") or []) for t in terms):
            return False
        tolerations = pod.get("tolerations") or []
        return all(
            any(_tolerates(t, taint) for t in tolerations)
            for taint in self.taints
            if taint[2] != "PreferNoSchedule"
        )

    def _matches(self, expressions: list[dict[str, Any]]) -> bool:
        for e in expressions:
            value, values = self.labels.get(e["key"]), [str(v) for v in e.get("values") or []]
            op = e["operator"]
            if (
                (op == "In" and value not in values)
                or (op == "NotIn" and value in values)
                or (op == "Exists" and value is None)
                or (op == "DoesNotExist" and value is not None)
            ):
                return False
        return True

    def describe(self) -> str:
        labels = ", ".join(f"{k}={v}" for k, v in sorted(self.labels.items()))
        taints = ", ".join(f"{k}={v}:{e}" for k, v, e in self.taints) or "none"
        return f"{self.name} (labels {labels}; taints {taints})"


def _tolerates(toleration: dict[str, Any], taint: tuple[str, str, str]) -> bool:
    key, value, effect = taint
    if toleration.get("effect") and toleration["effect"] != effect:
        return False
    if toleration.get("operator") == "Exists":
        return not toleration.get("key") or toleration["key"] == key
    return toleration.get("key") == key and str(toleration.get("value", "")) == value


@dataclass(frozen=True)
class Cluster:
    """What infra/ makes, as far as a release's objects are concerned."""

    kubernetes_version: str
    storage_classes: frozenset[str]
    default_class: str | None
    node_groups: tuple[NodeGroup, ...]

    @classmethod
    def of(cls, infra: InfraConfig) -> Cluster:
        classes, default = set(), None
        for body in infra.of_type("kubernetes_storage_class_v1").values():
            metadata = (nested(body, "metadata") or [{}])[0]
            classes.add(metadata.get("name", ""))
            if str((metadata.get("annotations") or {}).get(DEFAULT_CLASS)) == "true":
                default = metadata.get("name")
        groups = tuple(_node_group(b) for b in infra.of_type("aws_eks_node_group").values())
        version = str(infra.variable("kubernetes_version") or "")
        return cls(version, frozenset(classes), default, groups)


def _node_group(body: dict[str, Any]) -> NodeGroup:
    name = str(body.get("node_group_name", "?"))
    arch = "arm64" if "ARM_64" in str(body.get("ami_type", "")) else "amd64"
    labels = {  # what EKS puts on every node of a managed group, then the group's own
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": arch,
        "eks.amazonaws.com/nodegroup": name,
        "eks.amazonaws.com/capacityType": str(body.get("capacity_type", "ON_DEMAND")),
        **{k: str(v) for k, v in (body.get("labels") or {}).items()},
    }
    taints = tuple(
        (str(t["key"]), str(t.get("value", "")), TAINT_EFFECTS.get(t["effect"], t["effect"]))
        for t in nested(body, "taint")
    )
    return NodeGroup(name, labels, taints)


def label(obj: dict[str, Any]) -> str:
    return f"{obj.get('kind', '?')}/{get_path(obj, ('metadata', 'name')) or '?'}"


def _claims(obj: dict[str, Any]) -> Iterator[tuple[str, str | None]]:
    """The claims an object makes: (what, storage class or None)."""
    if obj.get("kind") == "PersistentVolumeClaim":
        yield label(obj), get_path(obj, ("spec", "storageClassName"))
    for template in get_path(obj, ("spec", "volumeClaimTemplates")) or []:
        name = get_path(template, ("metadata", "name"))
        yield f"{label(obj)} claim {name}", get_path(template, ("spec", "storageClassName"))


def _pod_spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    if obj.get("kind") == "Pod":
        return obj.get("spec") or {}
    if obj.get("kind") in WORKLOADS:
        return get_path(obj, ("spec", "template", "spec")) or {}
    return None


def problems(objects: list[dict[str, Any]], values: Merged, cluster: Cluster) -> list[str]:
    """What the objects (and the homes the hub will claim) need that the cluster lacks, one
    line each, naming the object."""
    found = []
    classes = ", ".join(sorted(cluster.storage_classes)) or "none"

    def storage(what: str, storage_class: str | None, fix: str) -> None:
        if storage_class is None:
            if cluster.default_class is None:
                found.append(
                    f"{what}: no storage class named, and infra/ makes no default class (EKS "
                    f"makes none since 1.30): {fix} (infra/ makes {classes})"
                )
        elif storage_class not in cluster.storage_classes:
            found.append(
                f"{what}: storage class {storage_class!r} is not one infra/ makes ({classes})"
            )

    for obj in objects:
        for what, storage_class in _claims(obj):
            storage(what, storage_class, "name one in the values")
    if get_path(values.values, ("singleuser", "storage", "type")) == "dynamic":
        storage(
            "the user homes (singleuser.storage.dynamic.storageClass)",
            get_path(values.values, HOMES_CLASS),
            "set singleuser.storage.dynamic.storageClass",
        )

    accounts = {get_path(o, ("metadata", "name")) for o in objects if o["kind"] == "ServiceAccount"}
    groups = "; ".join(g.describe() for g in cluster.node_groups) or "none"
    for obj in objects:
        pod = _pod_spec(obj)
        if pod is None:
            continue
        if not any(group.takes(pod) for group in cluster.node_groups):
            found.append(
                f"{label(obj)}: no node group of infra/ takes its pods (node selector, "
                f"required affinity, tolerations); the groups: {groups}"
            )
        account = pod.get("serviceAccountName")
        if account and account != "default" and account not in accounts:
            found.append(
                f"{label(obj)}: its service account {account!r} is not among the release's objects"
            )
    for obj in objects:
        if obj["kind"] == "ServiceAccount" and "eks.amazonaws.com/role-arn" in (
            get_path(obj, ("metadata", "annotations")) or {}
        ):
            found.append(
                f"{label(obj)}: annotated with an IRSA role, but the cluster gives AWS roles "
                "by EKS Pod Identity only (infra/: aws_eks_pod_identity_association)"
            )
    return found
