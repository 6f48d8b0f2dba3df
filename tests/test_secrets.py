"""Secrets: encrypted in git with the real git-crypt, decrypted in memory, never shown."""

import json
import subprocess

import pytest
from conftest import PLANTED, PLANTED_VALUES, cli, export_key, make_repo

from tess_platform.hierarchy import SnapshotTree, release_hierarchy
from tess_platform.platform import Platform
from tess_platform.releases import Release
from tess_platform.secrets import Redactor, SecretsError
from tess_platform.values import ValuesError

PRIVATE = Release("tess-private", "staging")
SECRETS = "hub_config/tess-private/secrets/staging.yaml"


@pytest.fixture
def planted(repo, tess_env, tmp_path, monkeypatch):
    repo.write(SECRETS, PLANTED_VALUES)
    sha = repo.commit("secrets for tess-private staging")
    key = export_key(repo, tmp_path / "key")
    return sha, key


def test_the_secrets_file_is_stored_encrypted_in_git(repo, planted):
    blob = subprocess.run(
        ["git", "show", f"HEAD:{SECRETS}"], cwd=repo.path, capture_output=True, check=True
    ).stdout
    assert blob.startswith(b"\0GITCRYPT\0")
    assert PLANTED.encode() not in blob


def test_with_the_key_the_secret_is_merged_and_masked(planted, monkeypatch):
    sha, key = planted
    monkeypatch.setenv("TESS_GIT_CRYPT_KEY", key)
    platform = Platform()
    values = platform.values(platform.tree(platform.repo.snapshot(sha)), PRIVATE, None)
    github = values.merged.values["hub"]["config"]["GitHubOAuthenticator"]
    assert github["client_secret"] == PLANTED
    assert values.merged.masked()["hub"]["config"]["GitHubOAuthenticator"] == {
        "client_id": "***",
        "client_secret": "***",
        "oauth_callback_url": "***",
    }
    assert PLANTED not in values.sha256 and PLANTED not in str(values.merged.fingerprint())
    assert platform.redact(f"error near {PLANTED}!") == "error near ***!"


def test_without_the_key_the_local_target_goes_on_and_says_so(planted):
    sha, _ = planted
    platform = Platform()
    values = platform.values(platform.tree(platform.repo.snapshot(sha)), PRIVATE, None)
    assert "client_secret" not in str(values.merged.values)
    assert values.hierarchy.notes == [
        f"{SECRETS}: encrypted and no TESS_GIT_CRYPT_KEY; the local target uses its own secrets"
    ]


def test_without_the_key_the_aws_target_refuses(planted):
    sha, _ = planted
    snapshot = Platform().repo.snapshot(sha)
    with pytest.raises(
        SecretsError, match=f"{SECRETS}: still encrypted and TESS_GIT_CRYPT_KEY is not set"
    ):
        release_hierarchy(
            SnapshotTree(snapshot.root, "tree"), PRIVATE, target="aws", git_crypt_key=None
        )


def test_a_missing_secrets_file_on_aws_says_how_to_make_one(repo, tess_env):
    snapshot = Platform().repo.snapshot(repo.commit("no secrets"))
    with pytest.raises(SecretsError, match=f"{SECRETS}: missing. Write it from "):
        release_hierarchy(
            SnapshotTree(snapshot.root, "tree"), PRIVATE, target="aws", git_crypt_key=None
        )


def test_a_secrets_file_committed_in_the_clear_is_an_error(repo, tess_env):
    (repo.path / ".gitattributes").write_text("")
    repo.write(SECRETS, PLANTED_VALUES)
    sha = repo.commit("oops: secrets in the clear")
    platform = Platform()
    with pytest.raises(SecretsError) as err:
        platform.values(platform.tree(platform.repo.snapshot(sha)), PRIVATE, None)
    assert f"{SECRETS}: is not encrypted in git" in str(err.value)
    assert PLANTED not in str(err.value)


def test_the_wrong_key_is_a_clear_error(planted, tmp_path, monkeypatch):
    sha, _ = planted
    other = make_repo(tmp_path / "other")
    monkeypatch.setenv("TESS_GIT_CRYPT_KEY", export_key(other, tmp_path / "other-key"))
    platform = Platform()
    with pytest.raises(SecretsError, match=f"{SECRETS}: git-crypt could not decrypt it"):
        platform.values(platform.tree(platform.repo.snapshot(sha)), PRIVATE, None)


@pytest.mark.parametrize("key", ["secretTokn", PLANTED])
def test_a_schema_error_in_the_secrets_file_names_it_but_not_the_secret(
    repo, tess_env, tmp_path, monkeypatch, key
):
    """A key of a secrets file the schema refuses may be a token pasted where a key goes: it is
    never named; the schema's name it is nearest to is (public)."""
    repo.write(SECRETS, {"proxy": {key: PLANTED}})
    sha = repo.commit("a typo in the secrets")
    monkeypatch.setenv("TESS_GIT_CRYPT_KEY", export_key(repo, tmp_path / "key"))
    platform = Platform()
    with pytest.raises(ValuesError) as err:
        platform.values(platform.tree(platform.repo.snapshot(sha)), PRIVATE, None)
    said = str(err.value)
    assert f"{SECRETS}: proxy.‹a key›: not allowed by the jupyterhub 4.4.0" in said
    assert said.endswith("; did you mean `secretToken`?") == (key == "secretTokn")
    assert PLANTED not in said and key not in said


def test_the_values_command_masks_the_secret(planted, tess_env):
    sha, key = planted
    out = cli(
        "values",
        "staging",
        "tess-private",
        "--sha",
        sha,
        env={"TESS_GIT_CRYPT_KEY": key},
    )
    assert out.returncode == 0, out.stderr
    assert "client_secret: '***'" in out.stdout
    assert PLANTED not in out.stdout + out.stderr


def test_a_token_pasted_where_a_key_goes_shows_nowhere(repo, planted, tess_env):
    """Keys only a secrets file brings in, and that neither the chart nor the platform name,
    are secrets too: `values` and `plan` mask them as they mask values; keys the chart knows
    (extraEnv) and the platform writes (apiToken) stay readable."""
    base, key = planted
    pasted = {
        **PLANTED_VALUES,
        "singleuser": {"extraEnv": {f"{PLANTED}-env": "v1v1v1v1"}},
        "proxy": {"secretToken": {f"{PLANTED}-nested": "x"}},
    }
    pasted["hub"] = {**pasted["hub"], "services": {f"{PLANTED}-svc": {"apiToken": "t0t0t0t0"}}}
    repo.write(SECRETS, pasted)
    repo_sha = repo.commit("a token pasted as a key")
    env = {"TESS_GIT_CRYPT_KEY": key}
    values = cli("values", "staging", "tess-private", "--sha", repo_sha, env=env)
    plan = cli("plan", "--sha", repo_sha, "--base", base, "--env", "staging", env=env)
    for out in (values, plan):
        assert PLANTED not in out.stdout + out.stderr
    assert values.returncode == 0, values.stderr
    assert "  extraEnv:\n    ***: '***'\n" in values.stdout
    assert "  services:\n    ***:\n      apiToken: '***'\n" in values.stdout
    assert "`hub.services.***.apiToken`: secret changed" in plan.stdout


def test_a_secret_is_masked_also_as_a_message_quotes_it():
    """repr and JSON escape a backslash or a quote: the escaped form is masked too (a storage
    class value with a `\\` reached validate's output so)."""
    secret = 'zz\\planted"91c7e3'
    redact = Redactor([secret])
    for quoted in (secret, repr(secret), json.dumps(secret)):
        assert "zz" not in redact(f"storage class {quoted} is not one infra/ makes")
