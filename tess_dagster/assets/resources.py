"""The one resource assets use: the platform, with the snapshot this run deploys."""

import contextlib
from collections.abc import Iterator

from dagster import ConfigurableResource, Failure, InitResourceContext
from pydantic import PrivateAttr

from tess_platform.git import GitError, Snapshot
from tess_platform.locks import OrphanedError
from tess_platform.platform import PROD, STAGING, Platform
from tess_platform.quoting import quoted
from tess_platform.releases import ENVIRONMENTS
from tess_platform.tags import ENV_TAG, SHA_TAG


def run_environments(run) -> list[str]:
    """The environments a run deploys or checks: its `tess/env` tag, else those of the assets
    it materializes and of the checks it runs (a UI materialization or check carries no tag).
    A check runs under its environment's lock: a check user's server never races a deploy,
    nor another check of the same hub."""
    if run is None:
        return []
    if env := run.tags.get(ENV_TAG):
        if env not in ENVIRONMENTS:  # it names a lock file: never a path of its own choosing
            raise Failure(
                description=f"{ENV_TAG}={quoted(env)}: not an environment; one of "
                f"{', '.join(ENVIRONMENTS)}. Nothing was deployed."
            )
        return [env]
    keys = [*(run.asset_selection or ()), *(k.asset_key for k in run.asset_check_selection or ())]
    return sorted({key.path[0] for key in keys} & {STAGING, PROD})


# the snapshot a run worker verified before any step started: the steps it forks inherit it and
# ask neither git nor the instance again (a step started any other way verifies it itself)
_VERIFIED_BY_WORKER: dict[str, Snapshot] = {}


def verify_for_steps(platform: Platform, instance, run, log) -> None:
    """The run's snapshot chosen and verified once, by its worker, for the steps it forks."""
    _VERIFIED_BY_WORKER[run.run_id] = run_snapshot(platform, instance, run, log)


def run_snapshot(platform: Platform, instance, run, log) -> Snapshot:
    """The tree at the run's `tess/git_sha`, which must be on staging; without the tag, the
    head of staging, then tagged on the run so that every step and the UI see one SHA."""
    run = instance.get_run_by_id(run.run_id)  # the tags as they are now
    sha = run.tags.get(SHA_TAG)
    try:
        # prod deploys what was merged to staging, or merged from it into prod
        branches = (STAGING, PROD) if run.tags.get(ENV_TAG) == PROD else (STAGING,)
        snapshot, how = platform.snapshot(sha, branches)
    except GitError as e:
        raise Failure(description=f"{e}. Nothing was deployed.") from None
    if not sha:
        instance.add_run_tags(run.run_id, {SHA_TAG: snapshot.sha})
    log.info(f"deploying the tree at {snapshot.sha} ({how})")
    for note in snapshot.notes:
        log.warning(note)
    return snapshot


def hold_environments(platform: Platform, run, log, held: contextlib.ExitStack) -> None:
    """The locks of the environments `run` deploys, held in `held` for the run: taken by its
    first process (the run worker, or the only process of an in-process run); granted at once
    to its other processes, its steps."""
    try:
        for env in run_environments(run):
            owner = run.run_id if run else None
            held.enter_context(platform.target.env_lock(env, log, owner=owner))
    except OrphanedError as e:
        raise Failure(description=str(e)) from None


class PlatformResource(ConfigurableResource):
    """Reads TESS_* from the environment; assets do not know which target they run on.

    A run holds the lock of each environment it deploys from its first step to its last: a
    second deploy of the environment waits, and never interleaves with this one."""

    _platform: Platform = PrivateAttr()
    _snapshot: Snapshot | None = PrivateAttr(default=None)

    @contextlib.contextmanager
    def yield_for_execution(self, context: InitResourceContext) -> Iterator["PlatformResource"]:
        self._platform = Platform()
        with contextlib.ExitStack() as held:
            hold_environments(self._platform, context.run, context.log.info, held)
            yield self

    @property
    def platform(self) -> Platform:
        return self._platform

    def snapshot(self, context) -> Snapshot:
        if self._snapshot is None:
            self._snapshot = _VERIFIED_BY_WORKER.get(context.run.run_id) or run_snapshot(
                self._platform, context.instance, context.run, context.log
            )
        return self._snapshot

    def failure(self, error: Exception, what_next: str) -> Failure:
        """A step's failure as the UI shows it: the error, then what to do; secrets redacted."""
        return Failure(description=self._platform.redact(f"{error}\n\n{what_next}"))

    def pin(self, context, snapshot: Snapshot) -> None:
        """Deploy `snapshot` in this run: a SHA chosen by a step (promote_prod's default)."""
        context.instance.add_run_tags(context.run.run_id, {SHA_TAG: snapshot.sha})
        self._snapshot = snapshot
