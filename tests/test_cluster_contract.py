"""Each aws release rendered by the real chart 4.4.0 (`helm template`), its objects validated
strictly for the Kubernetes version infra/ pins, and held to the contract with the cluster
infra/ makes; contracts broken on purpose fail naming the object and what is missing."""

import json
import shutil
from pathlib import Path

import pytest
from conftest import PLANTED

from tess_platform.hierarchy import WorkTree
from tess_platform.manifests import ManifestError
from tess_platform.platform import Platform
from tess_platform.releases import Release

PUBLIC = Release("tess-public", "prod")
PRIVATE = Release("tess-private", "prod")


@pytest.fixture
def aws(repo, tess_env, no_aws):
    return repo


def problems(repo, release: Release) -> list[str]:
    platform = Platform()
    tree = WorkTree(repo.path, "checkout")
    image = platform.image_ref(tree, offline=True)
    return platform.cluster_problems(tree, platform.values(tree, release, image, offline=True))


def test_the_shipped_releases_render_valid_objects_the_cluster_can_hold(aws):
    for deployment in ("tess-public", "tess-private"):
        for env in ("staging", "prod"):
            assert problems(aws, Release(deployment, env)) == []


def test_the_local_target_has_no_cluster_to_hold_to(repo, tess_env):
    assert problems(repo, PUBLIC) == []  # hub processes on this machine: nothing rendered


def test_a_claim_of_a_class_infra_does_not_make(aws):
    aws.edit_yaml(
        "hub_config/tess-public/prod.yaml",
        lambda d: d.update(hub={"db": {"pvc": {"storageClassName": "fast-ssd"}}}),
    )
    assert problems(aws, PUBLIC) == [
        "PersistentVolumeClaim/hub-db-dir: storage class 'fast-ssd' is not one infra/ makes "
        "(efs-homes, gp3)"
    ]
    assert problems(aws, Release("tess-public", "staging")) == []  # prod.yaml only


def test_the_hub_database_without_a_class_on_eks_without_a_default(aws):
    """The defect a first deploy would have hit: no class, and EKS 1.30+ makes no default."""
    aws.edit_yaml("hub_config/values.yaml", lambda d: d["hub"].pop("db"))
    assert problems(aws, PUBLIC) == [
        "PersistentVolumeClaim/hub-db-dir: no storage class named, and infra/ makes no default "
        "class (EKS makes none since 1.30): name one in the values (infra/ makes efs-homes, gp3)"
    ]


def test_a_storage_class_removed_from_infra_breaks_the_contract(aws):
    (aws.path / "infra" / "ebs.tf").unlink()
    assert problems(aws, PRIVATE) == [
        "PersistentVolumeClaim/hub-db-dir: storage class 'gp3' is not one infra/ makes (efs-homes)"
    ]


def test_homes_of_a_class_infra_does_not_make(aws):
    aws.edit_yaml(
        "hub_config/tess-private/common.yaml",
        lambda d: d["singleuser"]["storage"]["dynamic"].update(storageClass="efs-home"),
    )
    assert problems(aws, PRIVATE) == [
        "the user homes (singleuser.storage.dynamic.storageClass): storage class 'efs-home' is "
        "not one infra/ makes (efs-homes, gp3)"
    ]


def test_a_node_selector_no_node_group_satisfies(aws):
    aws.edit_yaml(
        "hub_config/tess-public/prod.yaml",
        lambda d: d.update(hub={"nodeSelector": {"gpu": "a100"}}),
    )
    (found,) = problems(aws, PUBLIC)
    assert found.startswith(
        "Deployment/hub: no node group of infra/ takes its pods (node selector, required "
        "affinity, tolerations); the groups: core (labels "
    )
    assert "hub.jupyter.org/node-purpose=core" in found
    assert "user (labels" in found and "taints hub.jupyter.org/dedicated=user:NoSchedule" in found


def test_user_pods_that_require_a_purpose_no_group_has(aws):
    aws.edit_yaml(
        "hub_config/tess-public/prod.yaml",
        lambda d: d.update(
            scheduling={"userPods": {"nodeAffinity": {"matchNodePurpose": "require"}}},
            singleuser={"nodeSelector": {"hub.jupyter.org/node-purpose": "core"}},
        ),
    )
    assert [p.split(":")[0] for p in problems(aws, PUBLIC)] == ["StatefulSet/user-placeholder"]


def test_an_unknown_field_fails_strict_validation_naming_the_object_and_field(aws):
    aws.edit_yaml(
        "hub_config/tess-public/prod.yaml",
        lambda d: d.update(hub={"extraPodSpec": {"priorityClass": "high"}}),
    )
    (found,) = problems(aws, PUBLIC)
    assert found.startswith("Deployment/hub: spec.template.spec: Additional properties")
    assert "'priorityClass' was unexpected" in found


def test_a_wrong_type_is_named_without_its_value(aws):
    aws.edit_yaml(
        "hub_config/tess-public/prod.yaml",
        lambda d: d.update(hub={"extraPodSpec": {"priority": PLANTED}}),
    )
    assert problems(aws, PUBLIC) == [
        "Deployment/hub: spec.template.spec.priority: value is not of type 'integer', 'null'"
    ]


def test_infra_that_does_not_parse_is_named(aws):
    (aws.path / "infra" / "ebs.tf").write_text('resource "x" "y" {\n  a = \n')
    with pytest.raises(ManifestError, match=r"infra/ebs.tf: not valid HCL"):
        problems(aws, PUBLIC)


def test_validate_fails_on_a_broken_contract(aws):
    from conftest import cli

    shutil.rmtree(aws.path / "infra")
    out = cli("validate", cwd=aws.path)
    assert out.returncode == 1
    assert out.stdout.count("FAIL") == 4 and "FAIL tess-public-prod: infra/: missing" in out.stdout


@pytest.fixture
def aws_run(repo, tess_env, tmp_path, moto_url, monkeypatch):
    """The aws target as a run sees it after infra/eks_cluster: outputs known, ECR (moto's
    server), the secrets and their key; the tree's infra/ is the real one."""
    import boto3
    import requests
    from conftest import PLANTED_VALUES, export_key

    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("TESS_TARGET", "aws")
    monkeypatch.setenv("TESS_AWS_REGION", "us-east-1")
    monkeypatch.setenv("TESS_AWS_ENDPOINT_URL", moto_url)
    requests.post(f"{moto_url}/moto-api/reset", timeout=10)
    ecr = boto3.Session(region_name="us-east-1").client("ecr", endpoint_url=moto_url)
    url = ecr.create_repository(repositoryName="tess-user-image")["repository"]["repositoryUri"]
    outputs = Path(tess_env["TESS_CACHE"]) / "aws" / "infra-outputs.json"
    outputs.parent.mkdir(parents=True)
    outputs.write_text(json.dumps({"ecr_repository_url": url}))
    secrets = {"proxy": {"secretToken": "a" * 64}, **PLANTED_VALUES}
    repo.write("hub_config/tess-public/secrets/staging.yaml", secrets)
    monkeypatch.setenv("TESS_GIT_CRYPT_KEY", export_key(repo, tmp_path / "key"))
    return repo


def materialize_values(sha: str, and_release: bool = False):
    from dagster import DagsterInstance, materialize

    from tess_dagster.assets.keys import release_key, values_key
    from tess_dagster.assets.releases import hub_asset
    from tess_dagster.assets.resources import PlatformResource
    from tess_platform.hubs import Hubs

    release = Release("tess-public", "staging")
    hubs = Hubs(names=("tess-public",), persistent=frozenset())
    with DagsterInstance.ephemeral() as instance:
        result = materialize(
            [hub_asset(release, hubs, kubernetes=True)],
            selection=[values_key(release), *([release_key(release)] if and_release else [])],
            resources={"platform": PlatformResource()},
            instance=instance,
            tags={"tess/git_sha": sha},
            raise_on_error=False,
        )
        (evaluation,) = result.get_asset_check_evaluations()
        return result, evaluation


def test_the_values_asset_holds_the_contract_as_a_blocking_check(aws_run):
    result, evaluation = materialize_values(aws_run.commit("secrets for tess-public staging"))
    assert result.success
    assert (evaluation.check_name, evaluation.passed) == ("cluster_contract", True)

    aws_run.edit_yaml(
        "hub_config/tess-public/staging.yaml",
        lambda d: d.update(hub={"db": {"pvc": {"storageClassName": "fast-ssd"}}}),
    )
    broken = aws_run.commit("a class the cluster lacks")
    result, evaluation = materialize_values(broken)
    assert not result.success  # blocking: the release after it never runs
    assert not evaluation.passed
    assert evaluation.metadata["problems"].value == (
        "- PersistentVolumeClaim/hub-db-dir: storage class 'fast-ssd' is not one infra/ makes "
        "(efs-homes, gp3)"
    )
    logs = "\n".join(str(e) for e in result.all_events)
    assert PLANTED not in logs and PLANTED not in str(evaluation.metadata)

    # values and release in one step: the step fails on the contract, the release untouched
    result, evaluation = materialize_values(broken, and_release=True)
    assert not evaluation.passed
    assert [
        m.asset_key.to_user_string()
        for m in result.asset_materializations_for_node("tess_public_staging")
    ] == ["staging/tess_public_staging_values"]
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert "blocking asset check failed" in failure.event_specific_data.error.message
    assert "cluster_contract" in failure.event_specific_data.error.message
