"""The one resource assets use: the platform, with the snapshot this run deploys."""

from dagster import ConfigurableResource, InitResourceContext
from pydantic import PrivateAttr

from tess_platform.git import Snapshot
from tess_platform.platform import Platform

SHA_TAG = "tess/git_sha"
ENV_TAG = "tess/env"


class PlatformResource(ConfigurableResource):
    """Reads TESS_* from the environment; assets do not know which target they run on."""

    _platform: Platform = PrivateAttr()
    _snapshot: Snapshot | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        self._platform = Platform()

    @property
    def platform(self) -> Platform:
        return self._platform

    def snapshot(self, context) -> Snapshot:
        """The tree at the run's `tess/git_sha`; without the tag, the head of staging, which is
        then tagged on the run so that every step and the UI see the same SHA."""
        if self._snapshot is None:
            run = context.run
            sha = run.tags.get(SHA_TAG) or context.instance.get_run_by_id(run.run_id).tags.get(
                SHA_TAG
            )
            snapshot, how = self._platform.snapshot(sha)
            if not sha:
                context.instance.add_run_tags(run.run_id, {SHA_TAG: snapshot.sha})
            context.log.info(f"deploying the tree at {snapshot.sha} ({how})")
            self._snapshot = snapshot
        return self._snapshot
