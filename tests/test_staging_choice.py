"""The staging sensor's decision on plain data (tess_platform.staging.choose): which staging
releases a merge deploys, given what each wants, what each last deployed and how its runs
ended."""

from tess_platform.hubs import Hubs
from tess_platform.releases import Release
from tess_platform.staging import choose

PUBLIC, PRIVATE, WORKSHOP = (Release(d, "staging") for d in ("tess-public", "tess-private", "w"))
LOADED = Hubs(("tess-private", "tess-public"), frozenset())
DEPLOYED = {PUBLIC: "aaa", PRIVATE: "bbb"}


def chosen(desired, on_branch=LOADED, drifted=(), moved=True, failed=()):
    choice = choose(LOADED, on_branch, desired, DEPLOYED.get, drifted, moved, lambda r: r in failed)
    return [r.deployment for r in choice.deploy], [r.deployment for r in choice.refreshed]


def test_only_releases_whose_hash_differs_deploy():
    assert chosen({PUBLIC: "aaa", PRIVATE: "bbb"}) == ([], [])
    assert chosen({PUBLIC: "new", PRIVATE: "bbb"}) == (["tess-public"], [])


def test_a_release_whose_hash_cannot_be_known_deploys_so_that_its_run_says_why():
    assert chosen({PUBLIC: None, PRIVATE: "bbb"}) == (["tess-public"], [])


def test_a_loaded_hub_whose_folder_broke_on_the_branch_deploys_and_a_new_one_waits():
    broken = Hubs(("tess-public",), frozenset(), ("hub_config/tess-private/common.yaml: bad",))
    desired = {PUBLIC: "aaa", WORKSHOP: "www"}  # w: on the branch, not loaded yet
    assert chosen(desired, on_branch=broken) == (["tess-private"], [])


def test_a_drifted_release_deploys_once():
    assert chosen({PUBLIC: "new", PRIVATE: "bbb"}, drifted=[PUBLIC, PRIVATE]) == (
        ["tess-public", "tess-private"],
        [],
    )


def test_a_release_whose_last_run_failed_is_recorded_again_when_the_branch_moved():
    same = {PUBLIC: "aaa", PRIVATE: "bbb"}
    assert chosen(same, failed=[PRIVATE]) == (["tess-private"], ["tess-private"])
    assert chosen(same, failed=[PRIVATE], moved=False) == ([], [])
    # one that deploys anyway is not also "refreshed"
    assert chosen({PUBLIC: "aaa", PRIVATE: "new"}, failed=[PRIVATE]) == (["tess-private"], [])
