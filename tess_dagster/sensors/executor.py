"""The executor of the deploy jobs: the hubs of an environment side by side, each step in a
process of its own (later: a pod of its own, with dagster-k8s's job executor), at most
`max_concurrent` at once. The run worker holds the environment's lock for the whole run, and
chooses the SHA every step deploys."""

import contextlib
import gc
import os
import threading

from dagster import (
    Executor,
    Field,
    executor,
    multiple_process_executor_requirements,
)
from dagster._core.definitions.executor_definition import _core_multiprocess_executor_creation

from tess_dagster.assets.resources import hold_environments, run_environments, verify_for_steps
from tess_platform.platform import PROD, STAGING, Platform, target_class
from tess_platform.settings import Settings
from tess_platform.tags import ENV_TAG

# threads Dagster and multiprocessing run beside a run worker that a code server started:
# each waits on its own event or queue, and holds nothing a step takes
WAITING_THREADS = {"termination-handler", "QueueFeederThread"}
# what a step needs loaded, should steps start from a fork server: the code location and what
# opens the instance (its storages: 2 s of imports per step otherwise), the checks' client, and
# (added where the fork server starts) the target's module
PRELOAD = [
    "tess_dagster.definitions",
    "tess_platform.health",
    "dagster._core.storage.event_log.sqlite",
    "dagster._core.storage.runs.sqlite",
    "dagster._core.storage.schedules.sqlite",
    "dagster._core.storage.sqlite_storage",
    "tess_dagster.sensors.compute_logs",
]


class _Locked(Executor):
    def __init__(self, inner: Executor, how: str, forks: bool) -> None:
        self._inner, self._how, self._forks = inner, how, forks

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
            plan_context.log.info(self._how)
            if _deploys_staging(run):
                # one SHA for every step, chosen before any starts (prod's: by its promotion)
                verify_for_steps(platform, plan_context.instance, run, plan_context.log)
            if self._forks:
                # what every step reads first is read once, here, before the first fork: the
                # steps start with it (read beside the first steps, it held back the hub steps
                # on two cores, and the first steps each read Dagster's migrations anew)
                remember_migrations()
                read_migrations()
                if _materializes(execution_plan):
                    platform.preload()
                # what the worker holds now lives for the run: frozen, the garbage collector
                # no longer walks it in the worker or in any step (a full collection walked
                # the whole heap, ~0.14 s of CPU, and in a step copied every page the fork
                # had shared)
                gc.freeze()
                held.callback(gc.unfreeze)
            yield from self._inner.execute(plan_context, execution_plan)


def remember_migrations() -> None:
    """Each storage a step opens asks alembic for the head of Dagster's migrations, and alembic
    reads all of Dagster's migration scripts to answer (4 storages a step, ~40 ms of CPU
    each). Within a run worker and the steps forked from it the installed Dagster, and so its
    migrations, cannot change: each process reads them once, and keeps them."""
    from alembic.script import ScriptDirectory  # imported already by the instance's storages

    if hasattr(ScriptDirectory.from_config, "remembered"):
        return
    read_anew, read = ScriptDirectory.from_config, {}

    def remembered(cls, config):
        location = config.get_alembic_option("script_location")
        if location not in read:
            read[location] = read_anew(config)
        return read[location]

    remembered.remembered = True
    ScriptDirectory.from_config = classmethod(remembered)


def read_migrations() -> None:
    """Dagster's migrations read into this process: processes forked from it have them."""
    from alembic.script import ScriptDirectory
    from dagster._core.storage.sql import get_alembic_config

    ScriptDirectory.from_config(get_alembic_config(os.devnull)).get_heads()  # Dagster's scripts


def _materializes(execution_plan) -> bool:
    """Whether a step of the plan materializes an asset (a run of checks alone does not)."""
    return any(
        output.properties and output.properties.asset_key and not output.properties.asset_check_key
        for step in execution_plan.get_steps_to_execute_in_topo_order()
        for output in step.step_outputs
    )


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
    # seconds. A fork copies no thread, and a lock another thread held at that moment stays
    # held in the step for ever: forking is safe while no thread but the main one and those
    # that only wait run (Dagster's cancellation and metrics threads are off, compute logs
    # upload when a step ends); otherwise steps start from a fork server that preloads.
    threads = {t.name for t in threading.enumerate() if t is not threading.main_thread()}
    others = sorted(threads - WAITING_THREADS)
    if others:
        target = target_class(Settings.from_env()).__module__
        start = {"forkserver": {"preload_modules": [*PRELOAD, target]}}
        how = f"steps start from a fork server: threads run beside this worker ({others})"
    else:
        start = {"fork": {}}
        how = f"steps fork from this run worker (pid {os.getpid()})"
    multiprocess = {
        "max_concurrent": init_context.executor_config["max_concurrent"],
        "start_method": start,
        "retries": {"enabled": {}},
    }
    return _Locked(_core_multiprocess_executor_creation(multiprocess), how, forks=not others)
