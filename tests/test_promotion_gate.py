"""The promotion gate on plain data: every refusal, and what passes."""

from tess_platform.promotion import StagingRun, gate
from tess_platform.releases import Release

PUBLIC, PRIVATE = Release("tess-public", "staging"), Release("tess-private", "staging")
SHA, OLD = "b" * 40, "a" * 40
IMAGE = "tess-user-image:0123456789abcdef"
PASSED = {"hub_healthy": True, "server_spawns": True}


def staging(**changes) -> list[StagingRun]:
    runs = {
        PUBLIC: StagingRun(PUBLIC, SHA, "h-public", IMAGE, PASSED),
        PRIVATE: StagingRun(PRIVATE, OLD, "h-private", IMAGE, PASSED),
    }
    for release, run in changes.items():
        runs[{"public": PUBLIC, "private": PRIVATE}[release]] = run
    return list(runs.values())


def verdict(runs=None, **kw):
    args = {
        "approver": "Ada Lovelace",
        "desired": {PUBLIC: "h-public", PRIVATE: "h-private"},
        "image": IMAGE,
        "staging": runs or staging(),
        "fast_forwards": True,
        "in_flight": [],
    }
    args.update(kw)
    return gate(SHA, **args)


def test_a_sha_staging_verified_passes_even_where_a_release_did_not_change_since():
    # tess-private last deployed at an older SHA; unchanged since, it counts as verified
    assert verdict().open and verdict().refusals == []


def test_no_approver():
    assert verdict(approver=None).refusals == [
        "no approver: launch promote_prod with the tag tess/approved_by=NAME"
    ]


def test_a_release_staging_does_not_run():
    runs = staging(public=StagingRun(PUBLIC, OLD, "h-older", IMAGE, PASSED))
    assert verdict(runs).refusals == [
        "staging/tess_public/release: staging runs aaaaaaaaaaaa (release h-older), not what "
        "bbbbbbbbbbbb deploys (release h-public): deploy it to staging first"
    ]


def test_a_release_never_deployed():
    assert verdict(staging(private=StagingRun(PRIVATE))).refusals == [
        "staging/tess_private/release: never deployed"
    ]


def test_failed_and_missing_checks():
    runs = staging(public=StagingRun(PUBLIC, SHA, "h-public", IMAGE, {"hub_healthy": False}))
    assert verdict(runs).refusals == [
        "staging/tess_public/release: check hub_healthy failed on its deploy",
        "staging/tess_public/release: check server_spawns did not run on its deploy",
    ]


def test_values_that_do_not_validate_at_the_sha():
    refusals = verdict(desired={PUBLIC: None, PRIVATE: "h-private"}).refusals
    assert refusals == ["staging/tess_public/release: its values at bbbbbbbbbbbb do not validate"]


def test_an_image_other_than_the_one_staging_ran():
    runs = staging(private=StagingRun(PRIVATE, OLD, "h-private", "tess-user-image:ffff", PASSED))
    assert verdict(runs).refusals == [
        "staging/tess_private/release: ran image tess-user-image:ffff, but bbbbbbbbbbbb has "
        f"{IMAGE}"
    ]


def test_prod_that_does_not_fast_forward_and_a_deploy_in_flight():
    assert verdict(fast_forwards=False, in_flight=["run-1"]).refusals == [
        "a staging deploy of bbbbbbbbbbbb is still in flight (runs run-1): wait for it",
        "prod does not fast-forward to bbbbbbbbbbbb: bbbbbbbbbbbb is not a descendant of "
        "prod's head; merge prod into staging first",
    ]
