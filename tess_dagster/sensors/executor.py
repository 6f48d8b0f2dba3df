"""The executor of the deploy jobs: the hubs of an environment side by side, each step in a
process of its own (later: a pod of its own, with dagster-k8s's job executor), at most
`max_concurrent` at once. The run worker holds the environment's lock for the whole run, and
chooses the SHA every step deploys."""

import contextlib
import threading

from dagster import Executor, Field, executor, multiple_process_executor_requirements
from dagster._core.definitions.executor_definition import _core_multiprocess_executor_creation

from tess_dagster.assets.resources import hold_environments, run_environments, run_snapshot
from tess_platform.platform import PROD, STAGING, Platform
from tess_platform.settings import Settings
from tess_platform.tags import ENV_TAG, SHA_TAG


class _Locked(Executor):
    def __init__(self, inner: Executor) -> None:
        self._inner = inner

    @property
    def retries(self):
        return self._inner.retries

    @property
    def step_dependency_config(self):
        return self._inner.step_dependency_config

    def execute(self, plan_context, execution_plan):
        run, platform = plan_context.dagster_run, Platform()
        with contextlib.ExitStack() as held:
            hold_environments(platform, run, plan_context.log.info, held)
            platform.preload()
            if _deploys_staging(run) and SHA_TAG not in run.tags:
                # one SHA for every step, chosen before any starts (prod's: by its promotion)
                run_snapshot(platform, plan_context.instance, run, plan_context.log)
            yield from self._inner.execute(plan_context, execution_plan)


def _deploys_staging(run) -> bool:
    """deploy_staging, or a materialization of assets outside prod (not checks alone)."""
    return PROD not in run_environments(run) and (
        run.tags.get(ENV_TAG) == STAGING or bool(run.asset_selection)
    )


@executor(
    name="hubs_side_by_side",
    config_schema={
        "max_concurrent": Field(
            int,
            default_value=Settings.from_env().deploy_concurrency,
            description="Steps of this run at once (default: TESS_DEPLOY_CONCURRENCY).",
        )
    },
    requirements=multiple_process_executor_requirements(),
)
def hubs_side_by_side(init_context) -> Executor:
    # each step forked from the run worker, which has the code location and the instance's
    # storages imported already: it starts in milliseconds, where a fresh interpreter takes
    # seconds. Forking is safe while the worker has one thread (Dagster's cancellation and
    # metrics threads are off, compute logs upload when a step ends): were another running,
    # one holding a lock at the fork would leave it held forever in the step, so steps then
    # start from a fork server instead (which preloads the code location).
    start = "fork" if threading.active_count() == 1 else "forkserver"
    multiprocess = {
        "max_concurrent": init_context.executor_config["max_concurrent"],
        "start_method": {start: {}},
        "retries": {"enabled": {}},
    }
    return _Locked(_core_multiprocess_executor_creation(multiprocess))
