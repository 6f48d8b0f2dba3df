"""The verification record on plain data: which check executions are evidence about the deploy
that serves, and when the record needs the checks run again."""

from tess_platform.releases import Release
from tess_platform.verification import (
    Deploy,
    Evaluation,
    needs_verification,
    release_record,
    summary,
)

PUBLIC = Release("tess-public", "staging")
DEPLOY = Deploy("b" * 40, "h-new", "img", revision=4, timestamp=100.0, run_id="deploy-run")


def ev(check, passed, at, rhash="h-new", drift=""):
    return Evaluation(check, passed, rhash, 4, at, run_id=f"run-{at}", drift=drift)


def test_the_latest_execution_since_the_deploy_is_the_evidence():
    record = release_record(
        PUBLIC,
        DEPLOY,
        [
            ev("hub_healthy", False, 101),
            ev("hub_healthy", True, 102),
            ev("server_spawns", True, 103),
            ev("kernel_runs", True, 103),
        ],
    )
    assert record.verified and record.unverified() == []
    assert record.checks["hub_healthy"].timestamp == 102


def test_checks_before_the_deploy_are_not_evidence():
    record = release_record(
        PUBLIC, DEPLOY, [ev("hub_healthy", True, 99), ev("server_spawns", True, 99)]
    )
    assert not record.verified
    assert record.unverified() == [
        "check hub_healthy has not run on revision 4 since its deploy",
        "check server_spawns has not run on revision 4 since its deploy",
        "check kernel_runs has not run on revision 4 since its deploy",
    ]


def test_a_pass_on_another_release_is_no_evidence_but_a_failure_always_is():
    record = release_record(
        PUBLIC,
        DEPLOY,
        [
            ev("hub_healthy", True, 101),
            ev("hub_healthy", False, 102, rhash=None, drift="the hub process is not running"),
            ev("server_spawns", True, 103),
            ev("server_spawns", True, 104, rhash="h-someone-elses"),
        ],
    )
    assert not record.verified
    assert record.checks["hub_healthy"].drift == "the hub process is not running"
    assert record.checks["server_spawns"].timestamp == 103


def test_never_deployed_is_not_verified_and_needs_nothing():
    record = release_record(PUBLIC, None, [ev("hub_healthy", True, 101)])
    assert not record.verified and record.checks == {}
    assert needs_verification(record, None, []) is None


def test_what_needs_the_checks_run_again():
    verified = release_record(
        PUBLIC,
        DEPLOY,
        [
            ev("hub_healthy", True, 101),
            ev("server_spawns", True, 101),
            ev("kernel_runs", True, 101),
        ],
    )
    assert needs_verification(verified, None, []) is None
    drift = needs_verification(verified, "the hub process is not running", [])
    assert (drift.checks, drift.reason) == (
        ("hub_healthy",),
        "drift: the hub process is not running",
    )
    unexecuted = needs_verification(verified, None, ["failed-run"])
    assert unexecuted.checks == ("hub_healthy", "server_spawns", "kernel_runs")
    assert unexecuted.reason == "its checks planned in run failed-run never ran"
    unchecked = needs_verification(release_record(PUBLIC, DEPLOY, []), None, [])
    assert unchecked.reason == "no check ran on revision 4 since its deploy"


def test_drift_already_told_is_not_asked_again():
    told = release_record(
        PUBLIC,
        DEPLOY,
        [ev("hub_healthy", False, 101, rhash=None, drift="gone"), ev("server_spawns", True, 101)],
    )
    assert needs_verification(told, "gone", []) is None
    assert needs_verification(told, "edited", []).reason == "drift: edited"


def test_the_line_local_status_prints():
    verified = release_record(
        PUBLIC,
        DEPLOY,
        [
            ev("hub_healthy", True, 101),
            ev("server_spawns", True, 102),
            ev("kernel_runs", True, 103),
        ],
    )
    assert summary(verified, 4) == (
        "verified: revision 4 (bbbbbbbbbbbb): hub_healthy passed at 1970-01-01 00:01:41 UTC, "
        "server_spawns passed at 1970-01-01 00:01:42 UTC, "
        "kernel_runs passed at 1970-01-01 00:01:43 UTC"
    )
    assert summary(release_record(PUBLIC, DEPLOY, []), 5) == (
        "not verified: revision 4 (bbbbbbbbbbbb): check hub_healthy has not run on revision 4 "
        "since its deploy; check server_spawns has not run on revision 4 since its deploy; "
        "check kernel_runs has not run on revision 4 since its deploy; but "
        "revision 5 serves: drift, which release_drift_sensor checks"
    )
    assert summary(release_record(PUBLIC, None, []), None) == (
        "record: never deployed by the pipeline"
    )
