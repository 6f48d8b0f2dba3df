"""The promotion gate on plain data: every refusal alone and all at once, and what passes."""

from tess_platform.promotion import gate
from tess_platform.releases import Release
from tess_platform.verification import Deploy, Evaluation, ReleaseRecord

PUBLIC, PRIVATE = Release("tess-public", "staging"), Release("tess-private", "staging")
SHA, OLD = "b" * 40, "a" * 40
IMAGE = "tess-user-image:0123456789abcdef"


def record(
    release,
    sha,
    rhash,
    image=IMAGE,
    passed=("hub_healthy", "server_spawns", "kernel_runs"),
    failed=(),
):
    deploy = Deploy(sha, rhash, image, revision=3, timestamp=100.0)
    checks = {
        name: Evaluation(name, name not in failed, rhash, 3, 101.0, description="it said so")
        for name in (*passed, *failed)
    }
    return ReleaseRecord(release, deploy, checks)


def staging(**changes) -> list[ReleaseRecord]:
    runs = {PUBLIC: record(PUBLIC, SHA, "h-public"), PRIVATE: record(PRIVATE, OLD, "h-private")}
    for name, run in changes.items():
        runs[{"public": PUBLIC, "private": PRIVATE}[name]] = run
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


def test_no_approver_or_only_whitespace():
    expected = [
        "tess/approved_by: must name who approves the promotion; launch promote_prod with "
        "the tag tess/approved_by=NAME"
    ]
    assert verdict(approver=None).refusals == expected
    assert verdict(approver=" \t ").refusals == expected


def test_an_approver_that_is_not_a_name_is_refused_and_echoed_bounded():
    (refusal,) = verdict(approver="x" * 1_000_000).refusals
    assert refusal.startswith("tess/approved_by: 'xxx") and len(refusal) < 250
    assert "(1000000 characters) is not a name: printable, at most 100 characters" in refusal
    (refusal,) = verdict(approver="alice\n- staging verified: yes").refusals
    assert refusal.startswith("tess/approved_by: 'alice\\n- staging verified: yes' is not a name")


def test_a_release_staging_does_not_run():
    runs = staging(public=record(PUBLIC, OLD, "h-older"))
    assert verdict(runs).refusals == [
        "staging/tess_public_staging_release: staging runs aaaaaaaaaaaa (release h-older), "
        "not what bbbbbbbbbbbb deploys (release h-public): deploy it to staging first"
    ]


def test_a_release_never_deployed():
    assert verdict(staging(private=ReleaseRecord(PRIVATE, None))).refusals == [
        "staging/tess_private_staging_release: never deployed: merge to staging and let "
        "staging_branch_sensor deploy it (or launch deploy_staging)"
    ]


def test_failed_and_missing_checks():
    runs = staging(public=record(PUBLIC, SHA, "h-public", passed=(), failed=("hub_healthy",)))
    what_next = "re-execute its checks (Dagster UI: the asset's Checks tab), or fix the hub"
    assert verdict(runs).refusals == [
        "staging/tess_public_staging_release: check hub_healthy failed on revision 3: it said so: "
        f"{what_next} and deploy again",
        "staging/tess_public_staging_release: check server_spawns has not run on revision 3 "
        f"since its deploy: {what_next} and deploy again",
        "staging/tess_public_staging_release: check kernel_runs has not run on revision 3 "
        f"since its deploy: {what_next} and deploy again",
    ]


def test_values_that_do_not_validate_at_the_sha():
    refusals = verdict(desired={PUBLIC: None, PRIVATE: "h-private"}).refusals
    assert refusals == [
        "staging/tess_public_staging_release: its values at bbbbbbbbbbbb do not validate: run "
        "`tess-platform validate --sha bbbbbbbbbbbb` and fix what it names"
    ]


def test_an_image_other_than_the_one_staging_ran():
    runs = staging(private=record(PRIVATE, OLD, "h-private", image="tess-user-image:ffff"))
    assert verdict(runs).refusals == [
        "staging/tess_private_staging_release: ran image tess-user-image:ffff, but "
        f"bbbbbbbbbbbb has {IMAGE}: deploy bbbbbbbbbbbb to staging first"
    ]


def test_prod_that_does_not_fast_forward_and_a_deploy_in_flight():
    assert verdict(fast_forwards=False, in_flight=["run-1"]).refusals == [
        "a staging deploy of bbbbbbbbbbbb is still in flight (runs run-1): wait for it to "
        "end, then promote again",
        "prod does not fast-forward to bbbbbbbbbbbb: bbbbbbbbbbbb is not a descendant of "
        "prod's head; merge prod into staging first",
    ]


def test_every_reason_at_once():
    runs = staging(
        public=record(
            PUBLIC,
            SHA,
            "h-public",
            passed=("hub_healthy", "kernel_runs"),
            failed=("server_spawns",),
        ),
        private=ReleaseRecord(PRIVATE, None),
    )
    refusals = verdict(runs, approver="", fast_forwards=False, in_flight=["run-1"]).refusals
    assert [r.split(":")[0] for r in refusals] == [
        "tess/approved_by",
        "staging/tess_public_staging_release",
        "staging/tess_private_staging_release",
        "a staging deploy of bbbbbbbbbbbb is still in flight (runs run-1)",
        "prod does not fast-forward to bbbbbbbbbbbb",
    ]
