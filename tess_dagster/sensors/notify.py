"""Each deploy, promotion, refusal and rollback told where people look, when configured
(TESS_NOTIFY_WEBHOOK, TESS_GITHUB_TOKEN with TESS_GITHUB_REPO): run-status sensors read how the
run ended and hand it to tess_platform.notify."""

from dagster import (
    DagsterEventType,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunStatusSensorContext,
    SkipReason,
    run_status_sensor,
)

from tess_dagster.assets.keys import release_key
from tess_platform.http_api import ApiError
from tess_platform.hubs import Hubs
from tess_platform.notify import FAILURE, SUCCESS, Notifier, Outcome
from tess_platform.secrets import Redactor
from tess_platform.settings import Settings
from tess_platform.tags import ENV_TAG, SHA_TAG

from .jobs import deploy_staging, promote_prod, rollback

TOLD_JOBS = [deploy_staging, promote_prod, rollback]


def outcome_of(
    context: RunStatusSensorContext, hubs: Hubs, state: str, dagster_url: str
) -> Outcome:
    run = context.dagster_run
    names = {release_key(r): r.name for r in hubs.releases()}
    hubs_at: dict[str, str] = {}
    reasons: list[str] = []
    for record in context.instance.all_logs(run.run_id):
        event = record.dagster_event
        if event is None:
            continue
        if event.event_type == DagsterEventType.ASSET_MATERIALIZATION:
            materialization = event.event_specific_data.materialization
            url = materialization.metadata.get("url")
            if materialization.asset_key in names and url is not None:
                hubs_at[names[materialization.asset_key]] = url.value
        elif event.event_type == DagsterEventType.STEP_FAILURE:
            message = event.event_specific_data.error.message.strip().splitlines()
            reasons.append(f"{event.step_key}: {message[0] if message else 'failed'}")
    return Outcome(
        job=run.job_name,
        run_id=run.run_id,
        state=state,
        run_url=f"{dagster_url}/runs/{run.run_id}",
        sha=run.tags.get(SHA_TAG),
        env=run.tags.get(ENV_TAG),
        hubs=hubs_at,
        reasons=tuple(reasons),
    )


def tell(context: RunStatusSensorContext, hubs: Hubs, state: str):
    settings = Settings.from_env()
    notifier = Notifier.of(settings)
    if not notifier.configured:
        return SkipReason("not configured: set TESS_NOTIFY_WEBHOOK or TESS_GITHUB_TOKEN")
    redact = Redactor()
    redact.add([v for v in (settings.notify_webhook, settings.github_token) if v])
    outcome = outcome_of(context, hubs, state, settings.dagster_url)
    try:
        done = notifier.tell(outcome)
    except ApiError as e:
        context.log.warning(redact(f"{outcome.summary}: {e}"))
        return SkipReason(redact(str(e)))
    context.log.info(f"{outcome.summary}: {'; '.join(done) or 'nothing to tell'}")
    return None


def outcome_sensors(hubs: Hubs) -> list:
    return [
        _outcome_sensor(hubs, DagsterRunStatus.SUCCESS, SUCCESS, "a succeeded"),
        _outcome_sensor(hubs, DagsterRunStatus.FAILURE, FAILURE, "a failed or refused"),
    ]


def _outcome_sensor(hubs: Hubs, run_status: DagsterRunStatus, state: str, which: str):
    @run_status_sensor(
        name=f"notify_{state}",
        run_status=run_status,
        monitored_jobs=TOLD_JOBS,
        default_status=DefaultSensorStatus.RUNNING,  # it says when it is not configured
        description=f"Tells {which} deploy, promotion or rollback (hub URLs, reasons) to the "
        "webhook and as a commit status, when configured.",
    )
    def _notify(context: RunStatusSensorContext):
        return tell(context, hubs, state)

    return _notify
