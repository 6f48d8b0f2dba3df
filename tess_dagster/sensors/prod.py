"""prod_branch_sensor: a push to `prod` (a merge of staging) starts promote_prod for its head,
under the same gate, approved by the committer of that head."""

from dagster import (
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
)

from tess_dagster.assets.history import deployed, in_flight, promoted
from tess_platform.hubs import Hubs
from tess_platform.platform import PROD, Platform
from tess_platform.tags import APPROVER_TAG, SHA_TAG, TRIGGER_TAG

from .hub_sensor import hub_sensor
from .jobs import promote_prod


def prod_branch_sensor(hubs: Hubs):
    return hub_sensor(
        "prod_branch_sensor",
        evaluate,
        hubs,
        job=promote_prod,
        minimum_interval_seconds=30,
        description="Starts promote_prod when the prod branch moves to a SHA prod does not run.",
    )


def evaluate(context: SensorEvaluationContext, hubs: Hubs) -> SensorResult | SkipReason:
    platform = Platform()
    head = platform.repo.head(PROD)
    if head is None:
        return SkipReason(f"{platform.repo.url} has no prod branch yet")
    if head == context.cursor:
        return SkipReason(f"nothing moved: prod is at {head[:12]}, already evaluated")
    deploys = [deployed(context.instance, r) for r in hubs.releases(PROD)]
    if all(d is not None and d.git_sha == head for d in deploys):
        return SensorResult(skip_reason=f"prod already runs {head[:12]}", cursor=head)
    last_promotion = promoted(context.instance)
    if last_promotion and last_promotion[0] == head:  # promoted, its deploy failed: not again
        return SensorResult(
            skip_reason=f"{head[:12]} was promoted already; promote_prod's run says how it ended",
            cursor=head,
        )
    if in_flight(context.instance, "promote_prod"):
        return SkipReason("a promote_prod run is in flight; looking again after it")
    approver = platform.repo.committer(head)
    context.log.info(f"prod moved to {head[:12]} (committed by {approver}): promoting it")
    return SensorResult(
        cursor=head,
        run_requests=[
            RunRequest(
                run_key=f"prod:{head}",
                tags={SHA_TAG: head, APPROVER_TAG: approver, TRIGGER_TAG: "prod_branch_sensor"},
            )
        ],
    )
