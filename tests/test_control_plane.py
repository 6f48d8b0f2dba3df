"""Dagster itself in production: the instance the Dagster chart gives every pod, loaded by a
real DagsterInstance on a real PostgreSQL (a deploy_staging run of the local target recorded
there and read back, its compute logs in S3 on moto's server), and the Job the K8sRunLauncher
creates for a run, sent to a recording stand-in for the cluster's API."""

import json
import re
from pathlib import Path
from urllib.parse import urlparse

import boto3
import pytest
import yaml
from conftest import ROOT, cli, postgres_bin, run
from fakes import RecordingApi

from tess_platform.control_plane import (
    CHART_VERSION,
    RUN_RESOURCES,
    SAFE_TO_EVICT,
    SERVICE_ACCOUNT,
    ControlPlane,
    ControlPlaneError,
)
from tess_platform.tools import tool

PG_PASSWORD = "pg-password-6b1e0d93"  # the test's server trusts any password
BUCKET = "tess-dagster-logs"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/tess-platform"
OUTPUTS = {
    "region": "us-east-1",
    "control_plane": {
        "image_repository": IMAGE,
        "db_host": "tess-dagster.abc.us-east-1.rds.amazonaws.com",
        "db_port": 5432,
        "db_name": "dagster",
        "db_user": "dagster",
        "logs_bucket": BUCKET,
        "git_crypt_key_secret": "tess-platform/git-crypt-key",
        "admin_role_arn": "arn:aws:iam::123456789012:role/tess-admin",
        "deployer_role_arn": "arn:aws:iam::123456789012:role/tess-platform-deployer",
    },
}
REPO_URL = "https://github.com/tess-science/tess-platform.git"


def plane(**changes) -> ControlPlane:
    outputs = {**OUTPUTS, "control_plane": {**OUTPUTS["control_plane"], **changes}}
    return ControlPlane.of(outputs, "a1b2c3d", "tess-state", REPO_URL)


@pytest.fixture(scope="module")
def kube():
    api = RecordingApi()
    yield api
    api.stop()


@pytest.fixture(scope="module")
def production(postgres, moto_url, kube, tmp_path_factory):
    """DAGSTER_HOME with the production dagster.yaml, changed only where a test is not in the
    cluster: S3 on moto's server, the Kubernetes API from a kubeconfig, Postgres without TLS."""
    url = urlparse(postgres)
    config = plane(db_host=url.hostname, db_port=url.port, db_user=url.username).instance()
    for part in ("run_storage", "event_log_storage", "schedule_storage"):
        config[part]["config"]["postgres_db"]["params"] = {}
    config["compute_logs"]["config"]["endpoint_url"] = moto_url
    home = tmp_path_factory.mktemp("dagster-production")
    config["run_launcher"]["config"].update(
        load_incluster_config=False, kubeconfig_file=str(kube.kubeconfig(home / "kubeconfig"))
    )
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DAGSTER_PG_PASSWORD", PG_PASSWORD)
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            mp.setenv(key, "testing")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=moto_url)
        s3.create_bucket(Bucket=BUCKET)
        yield home


def instance_at(home: Path):
    from dagster import DagsterInstance

    return DagsterInstance.from_config(str(home))


def test_a_deploy_is_recorded_in_postgres_and_its_compute_logs_in_s3(
    production, site, postgres, moto_url
):
    from dagster import AssetKey, DagsterRunStatus

    instance = instance_at(production)
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    result = (
        site.defs()
        .resolve_job_def("deploy_staging")
        .execute_in_process(instance=instance, raise_on_error=False)
    )
    assert result.success

    again = instance_at(production)  # another pod, the same database
    [recorded] = again.get_runs()
    assert (recorded.run_id, recorded.status) == (result.run_id, DagsterRunStatus.SUCCESS)
    release = again.get_latest_materialization_event(
        AssetKey(["staging", "tess_public_staging_release"])
    )
    assert release.asset_materialization.metadata["url"].value == site.url("tess-public")

    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=moto_url)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert keys and all(k.startswith(f"compute-logs/storage/{recorded.run_id}/") for k in keys), (
        keys
    )
    logs = "".join(s3.get_object(Bucket=BUCKET, Key=k)["Body"].read().decode() for k in keys)
    assert "tess-public-staging" in logs

    dump = run(str(postgres_bin() / "pg_dump"), postgres)
    assert result.run_id in dump
    hub_secrets = [
        value
        for path in (site.home / "secrets").glob("*.json")
        for value in _strings(json.loads(path.read_text()))
        if len(value) >= 16
    ]
    for secret in (PG_PASSWORD, site.env["TESS_GIT_CRYPT_KEY"], *hub_secrets):
        assert secret not in dump and secret not in logs


def _strings(data) -> list[str]:
    if isinstance(data, dict):
        return [s for v in data.values() for s in _strings(v)]
    return [data] if isinstance(data, str) else []


def test_a_run_is_a_job_safe_from_eviction_under_the_deployer_account(production, kube):
    from dagster._core.code_pointer import ModuleCodePointer
    from dagster._core.launcher import LaunchRunContext
    from dagster._core.origin import JobPythonOrigin, RepositoryPythonOrigin
    from dagster._core.storage.dagster_run import DagsterRun

    instance = instance_at(production)
    origin = JobPythonOrigin(
        "deploy_staging",
        RepositoryPythonOrigin(
            executable_path="/usr/local/bin/python",
            code_pointer=ModuleCodePointer("tess_dagster.definitions", "defs", None),
            container_image=f"{IMAGE}:a1b2c3d",
        ),
    )
    queued = instance.add_run(DagsterRun(job_name="deploy_staging", job_code_origin=origin))
    instance.run_launcher.launch_run(LaunchRunContext(dagster_run=queued, workspace=None))

    [request] = kube.requests
    assert (request["method"], request["path"]) == (
        "POST",
        "/apis/batch/v1/namespaces/dagster/jobs",
    )
    job = request["body"]
    pod = job["spec"]["template"]
    assert pod["metadata"]["annotations"] == SAFE_TO_EVICT
    assert pod["spec"]["serviceAccountName"] == SERVICE_ACCOUNT
    assert pod["spec"]["nodeSelector"] == {"hub.jupyter.org/node-purpose": "core"}
    [container] = pod["spec"]["containers"]
    assert container["image"] == f"{IMAGE}:a1b2c3d" and container["resources"] == RUN_RESOURCES
    password = next(e for e in container["env"] if e["name"] == "DAGSTER_PG_PASSWORD")
    assert password["valueFrom"]["secretKeyRef"] == {
        "name": "dagster-postgresql",
        "key": "postgresql-password",
    }
    assert (job["spec"]["ttlSecondsAfterFinished"], job["spec"]["backoffLimit"]) == (86400, 0)
    assert PG_PASSWORD not in json.dumps(job)


def test_the_chart_values_queue_runs_as_the_local_instance_does():
    local = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    values = plane().chart_values()
    assert (
        values["concurrency"]["runs"]["tagConcurrencyLimits"]
        == (local["concurrency"]["runs"]["tag_concurrency_limits"])
    )
    assert values["concurrency"]["pools"] == {"defaultLimit": 1}
    assert values["dagsterDaemon"]["runRetries"] == {"enabled": False}
    assert values["dagsterDaemon"]["runMonitoring"]["maxResumeRunAttempts"] == 0
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    assert launcher["runK8sConfig"]["podTemplateSpecMetadata"] == {"annotations": SAFE_TO_EVICT}
    assert values["global"]["serviceAccountName"] == SERVICE_ACCOUNT
    [code] = values["dagster-user-deployments"]["deployments"]
    assert code["image"] == {"repository": IMAGE, "tag": "a1b2c3d", "pullPolicy": "IfNotPresent"}
    env = {e["name"]: e["value"] for e in code["env"]}
    assert env["TESS_GIT_CRYPT_KEY_SECRET"] == "tess-platform/git-crypt-key"
    assert "TESS_GIT_CRYPT_KEY" not in env and "postgresqlPassword" not in yaml.safe_dump(
        {k: v for k, v in values["postgresql"].items() if v}
    )


def test_without_the_control_plane_outputs_it_says_to_apply_infra_first():
    with pytest.raises(ControlPlaneError, match="no `control_plane`: apply infra/ first"):
        ControlPlane.of({"region": "us-east-1"}, "a1b2c3d", "tess-state", REPO_URL)
    with pytest.raises(ControlPlaneError, match="control_plane lacks logs_bucket"):
        plane(logs_bucket="")


def test_the_cli_prints_the_chart_values_from_the_infra_outputs(tmp_path, monkeypatch):
    monkeypatch.setenv("TESS_REPO", REPO_URL)
    monkeypatch.setenv("TESS_STATE_BUCKET", "tess-state")
    saved = tmp_path / "outputs.json"  # as `terraform -chdir=infra output -json` writes it
    saved.write_text(
        json.dumps({k: {"sensitive": False, "type": "x", "value": v} for k, v in OUTPUTS.items()})
    )
    out = cli("control-plane", "values", "--outputs", str(saved), "--image-tag", "a1b2c3d")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[1] == (
        "#   helm upgrade --install dagster dagster --repo https://dagster-io.github.io/helm "
        "--version 1.13.27 -n dagster -f THIS_FILE"
    )
    assert yaml.safe_load(out.stdout) == plane().chart_values()

    saved.write_text(saved.read_text()[:40])  # a file cut short
    out = cli("control-plane", "values", "--outputs", str(saved), "--image-tag", "a1b2c3d")
    assert out.returncode == 1
    assert out.stderr.startswith(
        f"tess-platform: {saved}: not the JSON of `terraform -chdir=infra output -json`"
    )
    monkeypatch.delenv("TESS_STATE_BUCKET")
    out = cli("control-plane", "values", "--outputs", str(saved), "--image-tag", "a1b2c3d")
    assert "TESS_STATE_BUCKET is not set" in out.stderr


def test_the_chart_matches_the_pinned_dagster():
    from importlib.metadata import version

    assert version("dagster") == CHART_VERSION


def test_the_image_is_pinned_to_what_ci_tests_runs_unprivileged_and_serves_the_location():
    from dockerfile_parse import DockerfileParser

    dockerfile = DockerfileParser(str(ROOT / "Dockerfile"))
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", dockerfile.baseimage)
    pins = dockerfile.args
    assert run(tool("helm"), "version", "--short").startswith(f"v{pins['HELM_VERSION']}+")
    terraform = json.loads(run("terraform", "version", "-json"))
    assert terraform["terraform_version"] == pins["TERRAFORM_VERSION"]

    steps = dockerfile.structure
    users = [s["value"] for s in steps if s["instruction"] == "USER"]
    assert users and users[-1].isdigit() and int(users[-1]) != 0
    for step in (s for s in steps if s["instruction"] == "COPY"):
        for source in step["value"].split()[:-1]:
            assert (ROOT / source).exists(), f"Dockerfile: COPY {source}: not in the repository"
    [cmd] = [json.loads(s["value"]) for s in steps if s["instruction"] == "CMD"]
    [code] = plane().chart_values()["dagster-user-deployments"]["deployments"]
    assert cmd[:3] == ["dagster", "code-server", "start"]
    assert cmd[cmd.index("-m") :] == code["codeServerArgs"]
    assert cmd[cmd.index("-p") + 1] == str(code["port"])
