"""infra/: the terraform of the aws target, read with python-hcl2 (terraform cannot download
its providers here, so it is checked as configuration, and formatted by terraform fmt)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from tess_platform import control_plane
from tess_platform.backends.terraform import STATEFUL_TYPES
from tess_platform.infra_config import InfraConfig, parse

INFRA = Path(__file__).resolve().parent.parent / "infra"
TF_FILES = sorted(INFRA.glob("*.tf"))
OUTPUTS = (
    "cluster_name",
    "cluster_endpoint",
    "cluster_ca_certificate",
    "region",
    "efs_id",
    "storage_class",
    "ecr_repository_url",
    "node_groups",
)
FROM_ENVIRONMENT = {"admin_role_arn", "state_bucket"}  # per account (TF_VAR_*), not in tfvars


@cache
def config() -> InfraConfig:
    return InfraConfig.read(INFRA)


def top(kind: str) -> list[dict[str, Any]]:
    return config().top(kind)


def labelled(kind: str) -> dict[str, dict[str, Any]]:
    return config().labelled(kind)


def resources(kind: str = "resource") -> dict[tuple[str, str], dict[str, Any]]:
    return config().resources(kind)


def resource(rtype: str, name: str) -> dict[str, Any]:
    found = resources()
    assert (rtype, name) in found, f"infra/ has no {rtype}.{name}"
    return found[(rtype, name)]


def of_type(rtype: str) -> dict[str, dict[str, Any]]:
    return config().of_type(rtype)


def block(body: dict[str, Any], name: str) -> dict[str, Any]:
    """The one nested block `name` of a body (python-hcl2 gives blocks as lists)."""
    blocks = body.get(name)
    assert isinstance(blocks, list) and len(blocks) == 1, f"expected one {name} block"
    return blocks[0]


def refs(expr: Any) -> str:
    """An expression as text, to look for references in."""
    return expr if isinstance(expr, str) else json.dumps(expr)


def tfvars() -> dict[str, Any]:
    return config().tfvars


@pytest.mark.parametrize("path", TF_FILES + [INFRA / "terraform.tfvars"], ids=lambda p: p.name)
def test_every_file_parses(path: Path) -> None:
    assert parse(path)


def test_the_expected_files_exist() -> None:
    names = {p.name for p in TF_FILES}
    for name in ("versions.tf", "variables.tf", "vpc.tf", "eks.tf", "efs.tf", "autoscaler.tf"):
        assert name in names
    assert {"ecr.tf", "outputs.tf", "dagster.tf"} <= names


def test_state_in_s3_with_locking_and_pinned_providers() -> None:
    (terraform,) = top("terraform")
    assert terraform["required_version"].startswith("~> 1.")
    backend = block(terraform, "backend")
    assert list(backend) == ["s3"]
    s3 = backend["s3"]
    assert s3["use_lockfile"] is True
    # the bucket, key and region are given at init (-backend-config), never written here
    assert not {"bucket", "key", "region", "dynamodb_table"} & set(s3)
    providers = block(terraform, "required_providers")
    for name in ("aws", "kubernetes", "helm"):
        assert providers[name]["source"] == f"hashicorp/{name}"
        assert providers[name]["version"].startswith("~> ")


def test_nodes_live_in_private_subnets() -> None:
    public, private = resource("aws_subnet", "public"), resource("aws_subnet", "private")
    assert public["map_public_ip_on_launch"] is False
    assert public["tags"]["kubernetes.io/role/elb"] == "1"
    assert private["tags"]["kubernetes.io/role/internal-elb"] == "1"
    assert "map_public_ip_on_launch" not in private or private["map_public_ip_on_launch"] is False

    # private subnets route to the internet only through NAT gateways in public subnets
    nat = resource("aws_nat_gateway", "this")
    assert "aws_subnet.public" in nat["subnet_id"]
    private_routes = block(resource("aws_route_table", "private"), "route")
    assert "aws_nat_gateway.this" in private_routes["nat_gateway_id"]
    assert "gateway_id" not in private_routes
    public_routes = block(resource("aws_route_table", "public"), "route")
    assert "aws_internet_gateway.this" in public_routes["gateway_id"]

    cluster = block(resource("aws_eks_cluster", "this"), "vpc_config")
    assert cluster["subnet_ids"] == "${aws_subnet.private[*].id}"
    groups = of_type("aws_eks_node_group")
    assert set(groups) == {"core", "user"}
    for name, group in groups.items():
        assert group["subnet_ids"] == "${aws_subnet.private[*].id}", name
        assert "public" not in refs(group["subnet_ids"])


def test_cluster_access_encryption_and_logging() -> None:
    cluster = resource("aws_eks_cluster", "this")
    assert cluster["name"] == "${var.cluster_name}"
    assert cluster["version"] == "${var.kubernetes_version}"
    vpc = block(cluster, "vpc_config")
    assert vpc["endpoint_private_access"] is True
    assert vpc["public_access_cidrs"] == "${var.endpoint_public_access_cidrs}"

    access = block(cluster, "access_config")
    assert access["authentication_mode"] == "API"
    assert access["bootstrap_cluster_creator_admin_permissions"] is False

    encryption = block(cluster, "encryption_config")
    assert encryption["resources"] == ["secrets"]
    assert "aws_kms_key.eks" in block(encryption, "provider")["key_arn"]
    assert resource("aws_kms_key", "eks")["enable_key_rotation"] is True

    logs = set(cluster["enabled_cluster_log_types"])
    assert {"api", "audit", "authenticator"} <= logs

    entry = resource("aws_eks_access_entry", "admin")
    assert entry["principal_arn"] == "${var.admin_role_arn}"
    association = resource("aws_eks_access_policy_association", "admin")
    assert "aws_eks_access_entry.admin" in association["principal_arn"]
    assert association["policy_arn"].endswith(
        ":eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
    )
    assert block(association, "access_scope")["type"] == "cluster"


def test_node_groups_core_and_user() -> None:
    core, user = resource("aws_eks_node_group", "core"), resource("aws_eks_node_group", "user")
    assert core["labels"] == {"hub.jupyter.org/node-purpose": "core"}
    assert user["labels"] == {"hub.jupyter.org/node-purpose": "user"}
    assert "taint" not in core
    assert user["taint"] == [
        {"key": "hub.jupyter.org/dedicated", "value": "user", "effect": "NO_SCHEDULE"}
    ]
    for name, group in (("core", core), ("user", user)):
        assert group["node_group_name"] == name
        assert group["instance_types"] == f"${{var.{name}_instance_types}}"
        scaling = block(group, "scaling_config")
        assert scaling["min_size"] == f"${{var.{name}_min_size}}"
        assert scaling["max_size"] == f"${{var.{name}_max_size}}"
        # the autoscaler owns the desired size after creation
        lifecycle = block(group, "lifecycle")
        assert "scaling_config[0].desired_size" in refs(lifecycle["ignore_changes"])
        template = block(group, "launch_template")
        assert "aws_launch_template.nodes" in template["id"]
        assert "aws_launch_template.nodes" in template["version"]


def test_imdsv2_only_and_out_of_reach_of_pods() -> None:
    templates = of_type("aws_launch_template")
    assert templates
    for template in templates.values():
        metadata = block(template, "metadata_options")
        assert metadata["http_tokens"] == "required"
        assert metadata["http_put_response_hop_limit"] == 1
        ebs = block(block(template, "block_device_mappings"), "ebs")
        assert ebs["encrypted"] is True


def test_efs_homes() -> None:
    efs = resource("aws_efs_file_system", "homes")
    assert efs["encrypted"] is True
    assert "aws_kms_key.efs" in efs["kms_key_id"]

    mount = resource("aws_efs_mount_target", "homes")
    assert mount["count"] == "${length(aws_subnet.private)}"
    assert mount["subnet_id"] == "${aws_subnet.private[count.index].id}"
    assert mount["security_groups"] == ["${aws_security_group.efs.id}"]

    # NFS only, only from the nodes (the cluster security group), nothing by address range
    sg = resource("aws_security_group", "efs")
    assert "ingress" not in sg and "egress" not in sg
    rules = {
        name: rule
        for name, rule in of_type("aws_vpc_security_group_ingress_rule").items()
        if "aws_security_group.efs" in rule["security_group_id"]
    }
    assert len(rules) == 1
    (rule,) = rules.values()
    assert (rule["ip_protocol"], rule["from_port"], rule["to_port"]) == ("tcp", 2049, 2049)
    assert "cluster_security_group_id" in rule["referenced_security_group_id"]
    assert "cidr_ipv4" not in rule and "cidr_ipv6" not in rule

    policy = resource("aws_efs_file_system_policy", "homes")["policy"]
    assert "aws:SecureTransport" in policy


@pytest.mark.parametrize(
    "name, addon_name, policy",
    [
        ("efs_csi", "aws-efs-csi-driver", "AmazonEFSCSIDriverPolicy"),
        ("ebs_csi", "aws-ebs-csi-driver", "AmazonEBSCSIDriverPolicy"),
    ],
)
def test_csi_drivers_with_their_own_roles(name: str, addon_name: str, policy: str) -> None:
    addon = resource("aws_eks_addon", name)
    assert addon["addon_name"] == addon_name
    association = block(addon, "pod_identity_association")
    assert association["role_arn"] == f"${{aws_iam_role.{name}.arn}}"
    assert name in association["service_account"]
    role = resource("aws_iam_role", name)
    assert f'pod_identity_trust["{name}"]' in role["assume_role_policy"]
    attachment = resource("aws_iam_role_policy_attachment", name)
    assert attachment["policy_arn"].endswith(f":policy/service-role/{policy}")
    # Pod Identity needs its agent on every node
    assert resource("aws_eks_addon", "pod_identity_agent")["addon_name"] == "eks-pod-identity-agent"
    assert "aws_eks_node_group.core" in refs(addon["depends_on"])  # the controller needs nodes


def test_storage_class_of_the_hub_database() -> None:
    """EKS 1.30+ makes no default class: the hub's sqlite claim names this one."""
    sc = resource("kubernetes_storage_class_v1", "hub_db")
    assert block(sc, "metadata")["name"] == "gp3"
    assert sc["storage_provisioner"] == "ebs.csi.aws.com"
    assert sc["reclaim_policy"] == "Retain"  # the hub database outlives its claim
    assert sc["volume_binding_mode"] == "WaitForFirstConsumer"
    assert sc["parameters"] == {"type": "gp3", "encrypted": "true"}
    assert "aws_eks_addon.ebs_csi" in refs(sc["depends_on"])
    values = (INFRA.parent / "hub_config" / "values.yaml").read_text()
    assert "storageClassName: gp3" in values


def test_pod_identity_trust_is_per_service_account() -> None:
    (local,) = [b for b in top("locals") if "pod_identities" in b]
    identities = local["pod_identities"]
    assert identities["efs_csi"]["service_account"] == "efs-csi-controller-sa"
    assert identities["ebs_csi"]["service_account"] == "ebs-csi-controller-sa"
    assert identities["cluster_autoscaler"]["service_account"] == "cluster-autoscaler"
    trust = local["pod_identity_trust"]
    assert "pods.eks.amazonaws.com" in trust
    for key in ("kubernetes-namespace", "kubernetes-service-account", "eks-cluster-name"):
        assert f"aws:RequestTag/{key}" in trust
    # every role named by key exists in the map
    text = json.dumps(list(config().files.values()))
    for key in re.findall(r"local\.pod_identit(?:y_trust|ies)\[\\?\"(\w+)\\?\"\]", text):
        assert key in identities, key


def test_the_control_plane_has_what_its_chart_values_name() -> None:
    """infra/dagster.tf and tess_platform/control_plane.py name the same service account,
    namespace and database secret; the outputs are what ControlPlane.of reads."""
    (local,) = [b for b in top("locals") if "pod_identities" in b]
    deployer = local["pod_identities"]["deployer"]
    assert (deployer["namespace"], deployer["service_account"]) == (
        control_plane.NAMESPACE,
        control_plane.SERVICE_ACCOUNT,
    )
    secret = resource("kubernetes_secret_v1", "dagster_db")
    assert block(secret, "metadata")["name"] == control_plane.DB_SECRET
    password = "${random_password.dagster_db.result}"
    assert secret["data"] == {"postgresql-password": password}
    db = resource("aws_db_instance", "dagster")
    assert db["password"] == password and db["publicly_accessible"] is False
    assert db["deletion_protection"] is True and db["storage_encrypted"] is True
    assert db["skip_final_snapshot"] is False
    value = labelled("output")["control_plane"]["value"]
    plane = control_plane.ControlPlane.of(
        {"region": "us-east-1", "control_plane": {k: "5432" for k in value}}, "t", "b", "r"
    )
    assert plane.db_host == "5432" and plane.db_port == 5432
    # a run cannot destroy or replace the ground it stands on without the destroy approval
    for rtype in ("aws_db_instance", "aws_s3_bucket", "aws_secretsmanager_secret"):
        assert rtype in STATEFUL_TYPES and of_type(rtype)
    assert {"aws_eks_node_group", "kubernetes_namespace_v1"} <= STATEFUL_TYPES


def test_the_deployer_role_holds_what_a_deploy_needs_and_no_wildcard_beyond_login() -> None:
    policy = refs(resource("aws_iam_role_policy", "deployer")["policy"])
    for needed in (
        "secretsmanager:GetSecretValue",
        "aws_secretsmanager_secret.git_crypt_key.arn",
        "var.state_bucket",
        "aws_s3_bucket.dagster_logs.arn",
        "ecr:PutImage",
        "eks:DescribeCluster",
        "sts:AssumeRole",
        "var.admin_role_arn",
    ):
        assert needed in policy, needed
    assert policy.count('"*"') == 1 and "ecr:GetAuthorizationToken" in policy
    association = resource("aws_eks_pod_identity_association", "deployer")
    assert association["role_arn"] == "${aws_iam_role.deployer.arn}"


def test_storage_class_efs_homes() -> None:
    sc = resource("kubernetes_storage_class_v1", "efs_homes")
    assert block(sc, "metadata")["name"] == "efs-homes"
    assert sc["storage_provisioner"] == "efs.csi.aws.com"
    assert sc["reclaim_policy"] == "Retain"
    assert sc["parameters"] == {
        "provisioningMode": "efs-ap",
        "fileSystemId": "${aws_efs_file_system.homes.id}",
        "uid": "1000",
        "gid": "1000",
        "directoryPerms": "700",
        "basePath": "/homes",
    }
    assert "aws_eks_addon.efs_csi" in refs(sc["depends_on"])


def test_cluster_autoscaler_least_privilege() -> None:
    release = resource("helm_release", "cluster_autoscaler")
    assert release["chart"] == "cluster-autoscaler"
    assert release["repository"] == "https://kubernetes.github.io/autoscaler"
    assert release["version"] == "${var.cluster_autoscaler_chart_version}"
    values = refs(release["values"])
    assert "autoDiscovery" in values and "aws_eks_cluster.this.name" in values
    assert "awsRegion" in values
    assert "aws_eks_pod_identity_association.cluster_autoscaler" in refs(release["depends_on"])

    association = resource("aws_eks_pod_identity_association", "cluster_autoscaler")
    assert association["role_arn"] == "${aws_iam_role.cluster_autoscaler.arn}"
    assert "cluster_autoscaler" in association["service_account"]

    policy = resource("aws_iam_role_policy", "cluster_autoscaler")["policy"]
    # scaling actions only on groups tagged for this cluster
    scale = policy.index("autoscaling:SetDesiredCapacity")
    condition = policy.index("aws:ResourceTag/k8s.io/cluster-autoscaler/${var.cluster_name}")
    assert scale < condition < policy.index("Discover")
    assert "autoscaling:TerminateInstanceInAutoScalingGroup" in policy[scale:condition]
    assert not re.search(r'"[a-z0-9-]+:\*"', policy), "no wildcard actions"
    assert 'Action = "*"' not in policy
    assert "nodegroup/${var.cluster_name}/*" in policy


def test_ecr_repository() -> None:
    repo = resource("aws_ecr_repository", "user_image")
    assert repo["name"] == "tess-user-image"
    assert repo["image_tag_mutability"] == "IMMUTABLE"
    assert block(repo, "image_scanning_configuration")["scan_on_push"] is True
    assert block(repo, "encryption_configuration")["encryption_type"] in ("KMS", "AES256")
    lifecycle = resource("aws_ecr_lifecycle_policy", "user_image")
    assert lifecycle["repository"] == "${aws_ecr_repository.user_image.name}"
    assert "expire" in lifecycle["policy"]


def test_tfvars_sizes() -> None:
    values = tfvars()
    assert values["region"] == "us-east-1"
    assert values["cluster_name"] == "tess-platform"
    assert re.fullmatch(r"1\.\d+", values["kubernetes_version"])
    assert (values["core_min_size"], values["core_max_size"]) == (1, 3)
    assert (values["user_min_size"], values["user_max_size"]) == (1, 10)
    assert values["core_instance_types"] == ["m5.large"]
    assert values["user_instance_types"] == ["m5.large"]
    # domain-independent: the hubs' host names are hub config, not infrastructure
    assert not any(re.search(r"\.(org|com|net|edu|gov|io)\b", str(v)) for v in values.values())


def test_every_variable_is_declared_and_given() -> None:
    declared = labelled("variable")
    values = tfvars()
    assert set(values) <= set(declared), set(values) - set(declared)
    for name, body in declared.items():
        assert body.get("description"), f"variable {name} has no description"
        if "default" not in body and name not in FROM_ENVIRONMENT:
            assert name in values, f"variable {name} has no default and is not in tfvars"


def test_every_reference_resolves() -> None:
    """What `terraform validate` would catch first, were its providers downloadable."""
    text = json.dumps(list(config().files.values()))
    variables = set(labelled("variable"))
    locals_ = {name for b in top("locals") for name in b}
    managed = {f"{t}.{n}" for t, n in resources()}
    data = {f"{t}.{n}" for t, n in resources("data")}

    for name in set(re.findall(r"\bvar\.(\w+)", text)):
        assert name in variables, f"var.{name} is not declared"
    for name in set(re.findall(r"\blocal\.(\w+)", text)):
        assert name in locals_, f"local.{name} is not declared"
    for ref in set(re.findall(r"\bdata\.(\w+\.\w+)", text)):
        assert ref in data, f"data.{ref} is not declared"
    for ref in set(re.findall(r"(?<![\w.])((?:aws|kubernetes|helm)_\w+\.\w+)", text)):
        assert ref in managed, f"{ref} is not declared"


def test_outputs_the_pipeline_reads() -> None:
    outputs = labelled("output")
    assert set(OUTPUTS) <= set(outputs)
    assert outputs["storage_class"]["value"] == (
        "${kubernetes_storage_class_v1.efs_homes.metadata[0].name}"
    )
    assert outputs["efs_id"]["value"] == "${aws_efs_file_system.homes.id}"
    assert outputs["region"]["value"] == "${var.region}"
    assert "aws_eks_node_group.core" in outputs["node_groups"]["value"]
    assert "aws_eks_node_group.user" in outputs["node_groups"]["value"]
    for name in OUTPUTS:
        assert outputs[name].get("sensitive") is not True, f"{name}: the pipeline needs it"


@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed")
def test_terraform_fmt_is_clean(tmp_path: Path) -> None:
    env = {**os.environ, "CHECKPOINT_DISABLE": "1", "HOME": str(tmp_path)}
    result = subprocess.run(
        ["terraform", "fmt", "-check", "-recursive", "-diff", "-no-color", str(INFRA)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_terraform_validate_says_where_it_cannot_run() -> None:
    """.ci/terraform-validate installs the providers, so it runs where the registry answers;
    elsewhere it says so with its own exit code, and writes nothing."""
    out = subprocess.run(
        ["bash", str(INFRA.parent / ".ci" / "terraform-validate")],
        env={**os.environ, "TESS_TF_REGISTRY": "http://127.0.0.1:9"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 3
    assert "the provider registry (http://127.0.0.1:9) does not answer here" in out.stderr
