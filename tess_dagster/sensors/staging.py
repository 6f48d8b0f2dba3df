"""staging_branch_sensor: deploy to staging exactly the releases whose release_hash at the head
of `staging` differs from what they last deployed, and redeploy a release found drifted."""

import json

from dagster import (
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
)

from tess_dagster.assets.history import (
    deployed_hash,
    failed_since_deploy,
    in_flight,
    unhandled_drift,
)
from tess_dagster.assets.keys import check_keys, release_key, upstream_keys
from tess_platform.hubs import Hubs
from tess_platform.platform import STAGING, Platform
from tess_platform.releases import Release
from tess_platform.staging import choose, hub_news
from tess_platform.tags import ENV_TAG, SHA_TAG

from .hub_sensor import hub_sensor
from .jobs import deploy_staging


def staging_branch_sensor(hubs: Hubs):
    """`hubs`: those the code location loaded, whose assets it can materialize."""
    return hub_sensor(
        "staging_branch_sensor",
        evaluate,
        hubs,
        job=deploy_staging,
        minimum_interval_seconds=30,
        description="Deploys to staging what differs at the head of the staging branch.",
    )


def evaluate(context: SensorEvaluationContext, hubs: Hubs) -> SensorResult | SkipReason:
    platform = Platform()
    cursor = json.loads(context.cursor) if context.cursor else {}
    head = platform.repo.head(STAGING)  # git ls-remote: no clone when nothing moved
    if head is None:
        return SkipReason(
            f"{platform.repo.url} has no staging branch: create it with "
            f"`git push {platform.repo.url} HEAD:staging` (or `git branch staging` in that "
            "repository); merges to it deploy staging"
        )
    handled = set(cursor.get("drift_handled", []))
    drifted = unhandled_drift(context.instance, hubs.releases(STAGING), handled)
    if head == cursor.get("sha") and not drifted:
        return SkipReason(f"nothing moved: staging is at {head[:12]}, already evaluated")

    running = in_flight(context.instance, deploy_staging.name)
    if running:  # what it deploys is not recorded yet: judging now would deploy it twice
        return SkipReason(
            f"staging at {head[:12]}: a staging deploy is in flight (run {running[0].run_id}); "
            "looking again after it ends"
        )
    snapshot = platform.repo.snapshot(head)
    on_branch = platform.hubs(snapshot)
    for news in hub_news(hubs, on_branch):
        context.log.warning(news)
    choice = choose(
        hubs,
        on_branch,
        platform.desired(snapshot, STAGING),
        lambda r: deployed_hash(context.instance, r),
        drifted,
        moved=head != cursor.get("sha"),
        failed_since_deploy=lambda r: failed_since_deploy(context.instance, r),
    )
    differing, refreshed = choice.deploy, choice.refreshed
    new_cursor = json.dumps({"sha": head, "drift_handled": sorted(handled | set(drifted.values()))})
    if not differing:
        return SensorResult(
            skip_reason=f"staging at {head[:12]}: every release already runs what it wants",
            cursor=new_cursor,
        )
    run_key = head if head != cursor.get("sha") else f"{head}:drift:{min(drifted.values())}"
    context.log.info(
        f"staging at {head[:12]}: deploying {', '.join(r.name for r in differing)}"
        + (
            f" ({', '.join(r.name for r in refreshed)}: its last run failed; it already runs "
            "what it wants, so it is recorded again without a restart)"
            if refreshed
            else ""
        )
    )
    return SensorResult(
        run_requests=[selection_request(hubs, head, run_key, differing)], cursor=new_cursor
    )


def selection_request(hubs: Hubs, sha: str, run_key: str, releases: list[Release]) -> RunRequest:
    assets = {key for r in releases for key in (release_key(r), *upstream_keys(hubs, r))}
    return RunRequest(
        run_key=run_key,
        tags={SHA_TAG: sha, ENV_TAG: STAGING},
        asset_selection=sorted(assets, key=lambda k: k.to_user_string()),
        asset_check_keys=[k for r in releases for k in check_keys(r)],
    )
