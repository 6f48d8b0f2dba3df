"""The environment a tess-platform process runs in, read in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# each target, and whether its releases are helm releases on the cluster infra/ makes
TARGETS = {"local": False, "aws": True}


class SettingsError(ValueError):
    pass


# the tess-platform checkout this code runs from (the default TESS_REPO; dagster.yaml)
CHECKOUT = Path(__file__).resolve().parent.parent
# the platform's own credentials, read from its environment: no tool it runs is given them
# (helm, terraform, git and repo2docker run code from elsewhere: plugins, providers, hooks)
CREDENTIALS = ("TESS_GIT_CRYPT_KEY", "TESS_GITHUB_TOKEN", "TESS_NOTIFY_WEBHOOK")


def tool_environment() -> dict[str, str]:
    """This process's environment without the platform's credentials: a tool's to start from."""
    return {k: v for k, v in os.environ.items() if k not in CREDENTIALS}


@dataclass(frozen=True)
class Settings:
    target: str
    repo: str  # git URL or path whose branches are deployed
    local_home: Path  # state folder of the local target
    cache: Path  # git mirrors, repo snapshots, pulled charts
    git_crypt_key: str | None  # base64 of an exported git-crypt key
    chart_dir: Path | None  # a folder with the chart's values.yaml and schema, instead of pulling
    aws_region: str = "us-east-1"
    aws_endpoint_url: str | None = None  # another AWS API endpoint (tests: moto's server)
    state_bucket: str | None = None  # S3 bucket of the terraform state and the deploy locks
    helm_timeout: str = "10m"
    deploy_concurrency: int = 4  # steps of one run at once: hubs deployed side by side
    user_envs: Path | None = None  # the local target's built user environments (else in cache)
    user_python: str | None = None  # the interpreter they are built from (else the system's)
    # production: the AWS Secrets Manager secret that holds the git-crypt key (its name or ARN),
    # read when no TESS_GIT_CRYPT_KEY is given, so that no pod environment carries the key
    git_crypt_key_secret: str | None = None
    # deploy outcomes told where people look (tess_platform/notify.py); the URL and the token
    # are secrets: sent, never logged
    notify_webhook: str | None = None
    github_token: str | None = None
    github_repo: str | None = None  # owner/name: commit statuses go to its SHAs
    github_api: str = "https://api.github.com"
    dagster_url: str = "http://127.0.0.1:3000"  # the UI, for links to a run

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        target = env.get("TESS_TARGET", "local") or "local"
        if target not in TARGETS:
            raise SettingsError(f"TESS_TARGET={target!r}: must be one of {', '.join(TARGETS)}")
        home = Path(env.get("TESS_LOCAL_HOME") or Path.home() / ".local/share/tess-platform")
        cache_default = Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tess-platform"
        chart_dir = env.get("TESS_CHART_DIR")
        return cls(
            target=target,
            repo=env.get("TESS_REPO") or str(CHECKOUT),
            local_home=home.expanduser().resolve(),
            cache=Path(env.get("TESS_CACHE") or cache_default).expanduser().resolve(),
            git_crypt_key=env.get("TESS_GIT_CRYPT_KEY") or None,
            chart_dir=Path(chart_dir).expanduser().resolve() if chart_dir else None,
            aws_region=env.get("TESS_AWS_REGION") or env.get("AWS_REGION") or "us-east-1",
            aws_endpoint_url=env.get("TESS_AWS_ENDPOINT_URL") or None,
            state_bucket=env.get("TESS_STATE_BUCKET") or None,
            helm_timeout=env.get("TESS_HELM_TIMEOUT") or "10m",
            deploy_concurrency=_positive(env, "TESS_DEPLOY_CONCURRENCY", 4),
            user_envs=Path(env["TESS_USER_ENVS"]).resolve() if env.get("TESS_USER_ENVS") else None,
            user_python=env.get("TESS_USER_PYTHON") or None,
            git_crypt_key_secret=env.get("TESS_GIT_CRYPT_KEY_SECRET") or None,
            notify_webhook=env.get("TESS_NOTIFY_WEBHOOK") or None,
            github_token=env.get("TESS_GITHUB_TOKEN") or None,
            github_repo=env.get("TESS_GITHUB_REPO") or None,
            github_api=env.get("TESS_GITHUB_API") or "https://api.github.com",
            dagster_url=(env.get("TESS_DAGSTER_URL") or "http://127.0.0.1:3000").rstrip("/"),
        )

    @property
    def kubernetes(self) -> bool:
        """The target's releases are helm releases on the cluster infra/ makes, so the values
        carry the cluster contract and `plan` shows terraform's plan of infra/."""
        return TARGETS[self.target]


def _positive(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name) or str(default)
    if not raw.isdigit() or int(raw) < 1:
        raise SettingsError(f"{name}={raw!r}: must be a whole number, at least 1")
    return int(raw)
