"""Deploy outcomes told where people look: the run-status sensors after real deploy_staging
runs on the local target, posting to a recording stand-in for a chat webhook and GitHub's
statuses API; the exact calls asserted, the webhook's URL and the token never in a log."""

import pytest
from dagster import DagsterEventType, build_run_status_sensor_context
from fakes import RecordingApi

HOOK_SECRET = "B0000000/hook-secret-3f9a1c"
TOKEN = "ghp_token-secret-8e2d4b"
REPO = "tess-science/tess-platform"


@pytest.fixture(scope="module")
def api():
    recording = RecordingApi()
    yield recording
    recording.stop()


@pytest.fixture
def told(site, api, monkeypatch):
    monkeypatch.setenv("TESS_NOTIFY_WEBHOOK", f"{api.url}/services/T0000/{HOOK_SECRET}")
    monkeypatch.setenv("TESS_GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("TESS_GITHUB_REPO", REPO)
    monkeypatch.setenv("TESS_GITHUB_API", api.url)
    monkeypatch.setenv("TESS_DAGSTER_URL", "https://dagster.tess.example.org/")
    api.requests.clear()
    api.status = 201
    return api


def evaluate(site, result, sensor: str):
    """The sensor's evaluation for the run `result` ended, as the daemon makes it."""
    [ended] = [
        e
        for e in result.all_events
        if e.event_type in (DagsterEventType.RUN_SUCCESS, DagsterEventType.RUN_FAILURE)
    ]
    run = site.instance.get_run_by_id(result.run_id)
    context = build_run_status_sensor_context(
        sensor_name=sensor, dagster_event=ended, dagster_instance=site.instance, dagster_run=run
    )
    return site.defs().get_sensor_def(sensor)(context), run


def test_a_deploy_is_posted_to_the_webhook_and_set_as_the_commits_status(site, told, caplog):
    result = site.run("deploy_staging", {"tess/env": "staging"})
    assert result.success
    skipped, run = evaluate(site, result, "notify_success")
    assert skipped is None
    sha = run.tags["tess/git_sha"]
    hook, status = told.requests
    assert hook["path"] == f"/services/T0000/{HOOK_SECRET}"
    run_url = f"https://dagster.tess.example.org/runs/{run.run_id}"
    assert hook["body"]["text"] == "\n".join(
        [
            f":white_check_mark: *deploy_staging staging at {sha[:12]} succeeded* "
            f"(<{run_url}|run {run.run_id[:8]}>)",
            f"• tess-private-staging: {site.url('tess-private')}",
            f"• tess-public-staging: {site.url('tess-public')}",
        ]
    )
    assert status["path"] == f"/repos/{REPO}/statuses/{sha}"
    assert status["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert status["body"] == {
        "state": "success",
        "target_url": run_url,
        "description": f"deploy_staging staging at {sha[:12]} succeeded",
        "context": "tess-platform/deploy_staging",
    }
    assert TOKEN not in caplog.text and HOOK_SECRET not in caplog.text


def test_a_failed_deploy_says_why_and_an_unreachable_webhook_reveals_nothing(site, told, caplog):
    common = "hub_config/tess-public/common.yaml"
    good = (site.repo.path / common).read_text()
    site.repo.edit_yaml(common, lambda d: d["cull"].update(timeout="never"))
    site.repo.commit("tess-public: a cull timeout that is no number")
    try:
        result = site.run("deploy_staging", {"tess/env": "staging"})
    finally:
        site.repo.write(common, good)
        site.repo.commit("tess-public: reverted")
    assert not result.success
    skipped, run = evaluate(site, result, "notify_failure")
    assert skipped is None
    hook, status = told.requests
    assert hook["body"]["text"].startswith(":x: *deploy_staging staging at ")
    assert "> tess_public_staging: " in hook["body"]["text"]
    assert status["body"]["state"] == "failure"
    assert status["body"]["description"].startswith("tess_public_staging: ")

    told.requests.clear()
    told.status = 500
    skipped, _ = evaluate(site, result, "notify_failure")
    assert skipped.skip_message == "the webhook (TESS_NOTIFY_WEBHOOK): answered HTTP 500"
    for secret in (TOKEN, HOOK_SECRET):
        assert secret not in caplog.text and secret not in skipped.skip_message


def test_unconfigured_it_says_so(site, monkeypatch):
    for name in ("TESS_NOTIFY_WEBHOOK", "TESS_GITHUB_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    result = site.run("deploy_staging", {"tess/env": "staging"})
    skipped, _ = evaluate(site, result, "notify_success")
    assert skipped.skip_message.startswith("not configured: set TESS_NOTIFY_WEBHOOK")
