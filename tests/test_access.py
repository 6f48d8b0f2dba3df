"""Who may log in to a GitHub hub is one setting, custom.tess.access.github: `any` (the
prototype's rule) or a list of organisations; the pipeline writes the authenticator's keys."""

import pytest

from tess_platform.hierarchy import WorkTree
from tess_platform.platform import Platform
from tess_platform.releases import Release
from tess_platform.values import ValuesError, get_path

PRIVATE = Release("tess-private", "prod")
COMMON = "hub_config/tess-private/common.yaml"


def github(repo, release=PRIVATE) -> dict:
    platform = Platform()
    tree = WorkTree(repo.path, "checkout")
    values = platform.values(tree, release, platform.image_ref(tree, offline=True), offline=True)
    return get_path(values.merged.values, ("hub", "config", "GitHubOAuthenticator")) or {}


@pytest.fixture
def aws(repo, tess_env, no_aws):
    return repo


def test_the_shipped_rule_is_the_prototypes_any_github_user(aws):
    found = github(aws)
    assert found["allow_all"] is True
    assert "allowed_organizations" not in found


def test_organisations_let_in_their_members_only(aws):
    aws.edit_yaml(COMMON, lambda d: d["custom"]["tess"].update(access={"github": ["tess-sci"]}))
    found = github(aws)
    assert found["allowed_organizations"] == ["tess-sci"]
    assert found["scope"] == ["read:org"]  # to read membership
    assert "allow_all" not in found


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda d: d["custom"]["tess"].pop("access"),
            f"{COMMON}: custom.tess.access: required with GitHub login: `github: any` (any "
            "GitHub user) or `github: [ORGANISATION, ...]`",
        ),
        (
            lambda d: d["custom"]["tess"].update(access={"github": "everyone"}),
            f"{COMMON}: custom.tess.access.github: `any` (any GitHub user) or a list of GitHub "
            "organisations",
        ),
        (
            lambda d: d["hub"]["config"].update(
                GitHubOAuthenticator={"allowed_organizations": ["tess-science"]}
            ),
            f"{COMMON}: hub.config.GitHubOAuthenticator.allowed_organizations: who may log in "
            "is custom.tess.access alone: remove this key",
        ),
    ],
    ids=["missing", "not-a-rule", "set-beside-it"],
)
def test_a_rule_that_is_not_one_setting_is_named(aws, change, message):
    aws.edit_yaml(COMMON, change)
    with pytest.raises(ValuesError) as raised:
        github(aws)
    assert str(raised.value) == message


def test_access_on_a_hub_without_github_login_is_an_error(aws):
    path = "hub_config/tess-public/common.yaml"
    aws.edit_yaml(path, lambda d: d["custom"]["tess"].update(access={"github": "any"}))
    with pytest.raises(ValuesError, match=f"{path}: custom.tess.access: says who logs in with"):
        github(aws, Release("tess-public", "prod"))


def test_the_local_target_logs_in_with_the_shared_password(repo, tess_env):
    assert github(repo) == {}
