"""Dagster itself in production (the aws target): the values of the official Dagster Helm chart
that runs the control plane in the cluster (webserver, daemon, this code location as a
user-code deployment, each deploy a Kubernetes Job), and the instance settings (dagster.yaml)
those values give every pod there.

The run queue, pool limits, run monitoring and retries are read from the repository's
`dagster.yaml`, the local instance's settings: production queues runs exactly as the local
rehearsal does. What only production has (Postgres storage, S3 compute logs, the
K8sRunLauncher) is said here, once, for both the chart values and the instance they make.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .backends.terraform import output_values
from .settings import CHECKOUT

LOCAL_INSTANCE = CHECKOUT / "dagster.yaml"
CHART = "dagster"
CHART_REPO = "https://dagster-io.github.io/helm"
CHART_VERSION = "1.13.27"  # the chart of the pinned dagster release (pyproject.toml)
NAMESPACE = "dagster"
RELEASE = "dagster"
# webserver, daemon, code location and runs: one service account, whose Pod Identity role holds
# the permissions a deploy needs (infra/dagster.tf); runs inherit it from the code location
SERVICE_ACCOUNT = "tess-deployer"
DB_SECRET = "dagster-postgresql"  # key postgresql-password; written by terraform (infra/dagster.tf)
# the driver dagster-postgres installs: SQLAlchemy 2.1's default for postgresql:// is psycopg 3
DB_SCHEME = "postgresql+psycopg2"
CODE_LOCATION = "tess-platform"
CODE_PORT = 3030
DAGSTER_HOME = "/opt/dagster/dagster_home"  # the chart's global.dagsterHome
COMPUTE_LOG_PREFIX = "compute-logs"
# An evicted run pod mid-`helm upgrade --atomic` leaves a release pending-upgrade: the cluster
# autoscaler must not take a run's node away while it runs.
SAFE_TO_EVICT = {"cluster-autoscaler.kubernetes.io/safe-to-evict": "false"}
RUN_RESOURCES = {
    "requests": {"cpu": "500m", "memory": "1Gi"},
    "limits": {"memory": "2Gi"},  # terraform, helm and repo2docker's render at once
}
RUN_TTL_SECONDS = 86400  # a finished run's Job and pod, kept a day for `kubectl logs`
CORE_NODES = {"hub.jupyter.org/node-purpose": "core"}  # never on a user node scaled away
# what the local instance decides and production repeats, by dagster.yaml key
SHARED_SETTINGS = ("run_coordinator", "concurrency", "run_monitoring", "run_retries", "telemetry")


class ControlPlaneError(ValueError):
    """The control plane's settings cannot be made; the message names what is missing."""


@dataclass(frozen=True)
class ControlPlane:
    """The production control plane, from the infra outputs and the code location's image."""

    region: str
    image_repository: str  # of the code location's image, built from this repository
    image_tag: str
    db_host: str
    db_port: int
    db_name: str
    db_user: str
    logs_bucket: str
    git_crypt_key_secret: str  # Secrets Manager secret of the deployment repository's key
    admin_role_arn: str  # what infra/ is applied as (assumed by the deployer role)
    state_bucket: str  # terraform state and deploy locks (TESS_STATE_BUCKET)
    repo_url: str  # the deployment repository whose branches the sensors watch (TESS_REPO)

    @classmethod
    def of(
        cls, outputs: Mapping[str, Any], image_tag: str, state_bucket: str, repo_url: str
    ) -> ControlPlane:
        """From `terraform output` of infra/ (its `control_plane` map and `region`)."""
        found = outputs.get("control_plane")
        if not isinstance(found, Mapping):
            raise ControlPlaneError(
                "infra/ outputs: no `control_plane`: apply infra/ first (see the README's "
                "bootstrap)"
            )
        keys = ("image_repository", "db_host", "db_name", "db_user", "logs_bucket")
        missing = [k for k in (*keys, "git_crypt_key_secret", "admin_role_arn") if not found.get(k)]
        if missing:
            raise ControlPlaneError(f"infra/ outputs: control_plane lacks {', '.join(missing)}")
        return cls(
            region=str(outputs["region"]),
            image_tag=image_tag,
            state_bucket=state_bucket,
            repo_url=repo_url,
            git_crypt_key_secret=str(found["git_crypt_key_secret"]),
            admin_role_arn=str(found["admin_role_arn"]),
            db_port=int(found.get("db_port") or 5432),
            **{k: str(found[k]) for k in keys},
        )

    def environment(self) -> dict[str, str]:
        """What the code location, and so every run, is told of the platform: names only, no
        secret (the git-crypt key is read from Secrets Manager when a secrets file is)."""
        return {
            "TESS_TARGET": "aws",
            "TESS_REPO": self.repo_url,
            "TESS_AWS_REGION": self.region,
            "TESS_STATE_BUCKET": self.state_bucket,
            "TESS_GIT_CRYPT_KEY_SECRET": self.git_crypt_key_secret,
            "TESS_CACHE": "/tmp/tess-platform",  # a run's own: its pod is its sandbox
            # infra/eks_cluster applies infra/ as the admin role, from the deployer role
            "TF_VAR_admin_role_arn": self.admin_role_arn,
            "TF_VAR_assume_admin_role": "true",
        }

    def _storage(self) -> dict[str, Any]:
        return {
            "postgres_db": {
                "username": self.db_user,
                "password": {"env": "DAGSTER_PG_PASSWORD"},  # the chart's, from DB_SECRET
                "hostname": self.db_host,
                "db_name": self.db_name,
                "port": self.db_port,
                "params": {"sslmode": "require"},
                "scheme": DB_SCHEME,
            }
        }

    def _compute_logs(self) -> dict[str, Any]:
        return {"bucket": self.logs_bucket, "prefix": COMPUTE_LOG_PREFIX, "region": self.region}

    def _run_k8s_config(self) -> dict[str, Any]:
        return {
            "pod_template_spec_metadata": {"annotations": dict(SAFE_TO_EVICT)},
            "pod_spec_config": {"node_selector": dict(CORE_NODES)},
            "job_spec_config": {"ttl_seconds_after_finished": RUN_TTL_SECONDS, "backoff_limit": 0},
        }

    def _launcher(self) -> dict[str, Any]:
        return {
            "image_pull_policy": "IfNotPresent",
            "job_namespace": NAMESPACE,
            "load_incluster_config": True,
            "resources": RUN_RESOURCES,
            "run_k8s_config": self._run_k8s_config(),
        }

    def instance(self) -> dict[str, Any]:
        """The dagster.yaml the chart makes of `chart_values()`, as each pod loads it."""
        return {
            "run_storage": _part(
                "dagster_postgres.run_storage", "PostgresRunStorage", self._storage()
            ),
            "event_log_storage": _part(
                "dagster_postgres.event_log", "PostgresEventLogStorage", self._storage()
            ),
            "schedule_storage": _part(
                "dagster_postgres.schedule_storage", "PostgresScheduleStorage", self._storage()
            ),
            "compute_logs": _part(
                "dagster_aws.s3.compute_log_manager", "S3ComputeLogManager", self._compute_logs()
            ),
            "run_launcher": _part(
                "dagster_k8s",
                "K8sRunLauncher",
                {
                    **self._launcher(),
                    # what the chart adds to every launcher
                    "service_account_name": SERVICE_ACCOUNT,
                    "dagster_home": DAGSTER_HOME,
                    "instance_config_map": f"{RELEASE}-instance",
                    "postgres_password_secret": DB_SECRET,
                },
            ),
            **shared_settings(),
        }

    def chart_values(self) -> dict[str, Any]:
        """Values of the Dagster chart (CHART_VERSION) for `helm upgrade --install`."""
        shared = shared_settings()
        k8s = self._run_k8s_config()
        launcher = {
            **{_camel(k): v for k, v in self._launcher().items() if k != "run_k8s_config"},
            "runK8sConfig": {_camel(k): v for k, v in k8s.items()},
        }
        concurrency = shared.get("concurrency", {})
        return {
            "global": {"serviceAccountName": SERVICE_ACCOUNT, "postgresqlSecretName": DB_SECRET},
            "serviceAccount": {"create": False},  # terraform makes it, with its Pod Identity
            "generatePostgresqlPasswordSecret": False,  # terraform writes it beside the database
            "postgresql": {
                "enabled": False,
                "postgresqlHost": self.db_host,
                "postgresqlUsername": self.db_user,
                "postgresqlPassword": "",  # in DB_SECRET, never in values
                "postgresqlDatabase": self.db_name,
                "postgresqlParams": self._storage()["postgres_db"]["params"],
                "postgresqlScheme": DB_SCHEME,
                "service": {"port": self.db_port},
            },
            "computeLogManager": {
                "type": "S3ComputeLogManager",
                "config": {
                    "s3ComputeLogManager": {_camel(k): v for k, v in self._compute_logs().items()}
                },
            },
            "runLauncher": {"type": "K8sRunLauncher", "config": {"k8sRunLauncher": launcher}},
            "dagsterDaemon": {
                "nodeSelector": dict(CORE_NODES),
                "runCoordinator": {
                    "enabled": True,
                    "type": "QueuedRunCoordinator",
                    "config": {
                        "queuedRunCoordinator": {
                            _camel(k): v for k, v in shared["run_coordinator"]["config"].items()
                        }
                    },
                },
                "runMonitoring": {_camel(k): v for k, v in shared["run_monitoring"].items()},
                "runRetries": {_camel(k): v for k, v in shared["run_retries"].items()},
            },
            "concurrency": {
                "enabled": True,
                "pools": {_camel(k): v for k, v in concurrency.get("pools", {}).items()},
                "runs": {_camel(k): v for k, v in concurrency.get("runs", {}).items()},
            },
            "telemetry": shared["telemetry"],
            "dagsterWebserver": {"nodeSelector": dict(CORE_NODES)},
            "dagster-user-deployments": {
                "enabled": True,
                "enableSubchart": True,
                "deployments": [
                    {
                        "name": CODE_LOCATION,
                        "image": {
                            "repository": self.image_repository,
                            "tag": self.image_tag,
                            "pullPolicy": "IfNotPresent",
                        },
                        "codeServerArgs": ["-m", "tess_dagster.definitions"],
                        "port": CODE_PORT,
                        "env": [{"name": k, "value": v} for k, v in self.environment().items()],
                        # runs get this env, service account and node selector too
                        "includeConfigInLaunchedRuns": {"enabled": True},
                        "nodeSelector": dict(CORE_NODES),
                    }
                ],
            },
        }


def read_outputs(path: Path) -> dict[str, Any]:
    """Outputs as `terraform -chdir=infra output -json > PATH` wrote them."""
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ControlPlaneError(
            f"{path}: not the JSON of `terraform -chdir=infra output -json` ({e})"
        ) from None
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        raise ControlPlaneError(f"{path}: not the JSON of `terraform -chdir=infra output -json`")
    return output_values(raw)


def shared_settings(path: Path = LOCAL_INSTANCE) -> dict[str, Any]:
    """The settings of SHARED_SETTINGS in the local instance's dagster.yaml."""
    settings = yaml.safe_load(path.read_text()) or {}
    missing = [k for k in SHARED_SETTINGS if k not in settings]
    if missing:
        raise ControlPlaneError(f"{path.name}: no {', '.join(missing)}: production repeats them")
    return {k: settings[k] for k in SHARED_SETTINGS}


def _part(module: str, cls: str, config: dict[str, Any]) -> dict[str, Any]:
    return {"module": module, "class": cls, "config": config}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.title() for word in rest)
