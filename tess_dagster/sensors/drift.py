"""Sensors that keep the verification record true. When a release drifted (changed outside
the pipeline), when the checks a run planned on it never executed, or when no check ran since
its deploy, they run the release's checks again (job verify_releases): the record, the UI and
promote_prod then see what really serves. release_drift_sensor looks every minute;
verify_after_failed_run looks as soon as a deploy fails, so a healthy hub the failed run never
reached shows "Execution failed" for seconds, not a minute."""

from functools import partial

from dagster import (
    RunRequest,
    SensorResult,
    SkipReason,
    run_failure_sensor,
)

from tess_dagster.assets.history import deployed, ever_deployed, executions, in_flight
from tess_dagster.assets.keys import check_keys
from tess_platform.hubs import Hubs
from tess_platform.platform import Platform
from tess_platform.tags import TRIGGER_TAG
from tess_platform.verification import needs_verification, release_record

from .hub_sensor import hub_sensor
from .jobs import deploy_staging, promote_prod, verify_releases


def release_drift_sensor(hubs: Hubs):
    return hub_sensor(
        "release_drift_sensor",
        partial(verify_what_needs_it, trigger="release_drift_sensor"),
        hubs,
        jobs=[verify_releases],
        minimum_interval_seconds=60,
        description="Runs a release's checks again when it drifted (a hub gone, its config "
        "edited, a revision the pipeline did not make), when a run planned its checks and "
        "never ran them, or when none ran since its deploy; the staging sensor redeploys drift.",
    )


def verify_after_failed_run(hubs: Hubs):
    return hub_sensor(
        "verify_after_failed_run",
        partial(verify_what_needs_it, trigger="verify_after_failed_run"),
        hubs,
        decorator=run_failure_sensor,
        monitored_jobs=[deploy_staging, promote_prod],
        request_job=verify_releases,
        minimum_interval_seconds=5,
        description="When a deploy fails, runs at once the checks it planned and never ran, on "
        "the releases it did not reach (the same decision as release_drift_sensor).",
    )


def verify_what_needs_it(context, hubs: Hubs, trigger: str) -> SensorResult | SkipReason:
    instance = context.instance
    if in_flight(instance):
        return SkipReason("a run is in flight: its checks may still run; looking after it")
    target = Platform().target
    requests, reasons = [], []
    for release in hubs.releases():
        deploy = deployed(instance, release)
        if deploy is None:
            continue
        evaluations, unexecuted = executions(instance, release)
        try:
            drift = target.drift(release, deploy.release_hash)
        except RuntimeError as e:  # the target did not answer for this one: tell, go on
            context.log.warning(f"{release.name}: could not look for drift: {e}")
            continue
        need = needs_verification(release_record(release, deploy, evaluations), drift, unexecuted)
        if need is None:
            continue
        reasons.append(f"{release.name}: {need.reason}")
        requests.append(
            RunRequest(
                run_key=f"verify:{release.name}:{need.marker}",
                job_name=verify_releases.name,
                asset_selection=[],
                asset_check_keys=[key for key in check_keys(release) if key.name in need.checks],
                tags={TRIGGER_TAG: trigger},
            )
        )
    orphans = orphaned(instance, hubs, target)  # said at every tick, checks requested or not
    for orphan in orphans:
        context.log.warning(orphan)
    if not requests:
        return SkipReason(
            "every release is verified as it serves: no drift"
            + "".join(f"; {orphan}" for orphan in orphans)
        )
    context.log.info("; ".join(reasons))
    return SensorResult(run_requests=requests)


def orphaned(instance, hubs: Hubs, target) -> list[str]:
    """Releases that still run though their hub folder is gone: a merge never uninstalls."""
    found = []
    for release in ever_deployed(instance):
        if release.deployment in hubs.names:
            continue
        try:
            installed = bool(target.history(release))
        except RuntimeError:  # the target did not answer: said next minute, or never wrong
            continue
        if installed:
            found.append(
                f"{release.name} still runs, but hub_config/{release.deployment}/ is gone: "
                "uninstall it with the uninstall job (tag tess/approved_by), or bring "
                "the folder back"
            )
    return found
