"""The aws releases reviewed where a pull request's CI runs: no AWS credentials, no infrastructure
outputs, no git-crypt key. What only the cloud or the key knows is a named placeholder, said so;
everything else is validated for real."""

import json
import os

import pytest
from conftest import (
    PLANTED,
    PLANTED_VALUES,
    UID_NOT_AN_INTEGER,
    GitRepo,
    add_hub,
    break_uid,
    cli,
    run,
)

from tess_platform.platform import Platform
from tess_platform.releases import Release
from tess_platform.secrets import SecretsError

RELEASES = [Release(d, e) for e in ("staging", "prod") for d in ("tess-public", "tess-private")]


@pytest.fixture
def offline(repo, tess_env, no_aws, tmp_path) -> GitRepo:
    """A pull request's checkout (a clone: its secrets files as git stores them, encrypted) on
    the aws target, with nothing of AWS on this machine."""
    for release in RELEASES:
        repo.write(f"hub_config/{release.deployment}/secrets/{release.env}.yaml", PLANTED_VALUES)
    repo.commit("secrets for every release")
    run("git", "clone", "-q", "-b", "staging", str(repo.path), str(tmp_path / "pr"))
    return GitRepo(tmp_path / "pr")


def test_validate_checks_every_aws_release_and_names_what_it_cannot_know(offline):
    out = cli("validate", cwd=offline.path)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert [line.split(":")[0] for line in lines if line.startswith(("ok", "FAIL"))] == [
        f"ok   {r.name}" for r in sorted(RELEASES, key=lambda r: (r.env != "staging", r.name))
    ]
    assert (
        "note not known here: <ecr-repository>: the infrastructure outputs are not known here: "
        "materialize infra/eks_cluster first"
    ) in lines
    for release in RELEASES:
        assert (
            f"     hub_config/{release.deployment}/secrets/{release.env}.yaml: encrypted and no "
            f"TESS_GIT_CRYPT_KEY here: its keys (from hub_config/{release.deployment}/secrets/"
            "example.yaml) are placeholders <secret: KEY>, their values unchecked"
        ) in lines
    assert PLANTED not in out.stdout + out.stderr


def test_validate_offline_still_fails_what_the_tree_gets_wrong(offline):
    break_uid(offline)
    out = cli("validate", cwd=offline.path)
    assert out.returncode == 1
    assert UID_NOT_AN_INTEGER in out.stdout
    assert out.stdout.count("FAIL") == 1


def test_values_shows_the_placeholders_by_name(offline):
    out = cli("values", "prod", "tess-private", cwd=offline.path)
    assert out.returncode == 0, out.stderr
    assert "name: <ecr-repository>" in out.stdout
    assert "cookieSecret: '<secret: hub.cookieSecret>'" in out.stdout
    assert "client_secret: '<secret: hub.config.GitHubOAuthenticator.client_secret>'" in (
        out.stdout
    )
    assert "- private.tess.example.org" in out.stdout  # everything else is the real value
    assert "note <ecr-repository>: the infrastructure outputs are not known here" in out.stderr
    assert PLANTED not in out.stdout + out.stderr


def test_known_outputs_without_credentials_leave_only_the_digest_unknown(offline, tess_env):
    outputs = {"ecr_repository_url": "123456789012.dkr.ecr.us-east-1.amazonaws.com/tess-user"}
    folder = os.path.join(tess_env["TESS_CACHE"], "aws")
    os.makedirs(folder)
    with open(os.path.join(folder, "infra-outputs.json"), "w") as f:
        json.dump(outputs, f)
    out = cli("values", "staging", "tess-public", cwd=offline.path)
    assert out.returncode == 0, out.stderr
    assert f"name: {outputs['ecr_repository_url']}" in out.stdout
    assert "note the image digest: ECR image tess-user:" in out.stderr
    assert "no AWS credentials (set AWS_PROFILE or AWS_ACCESS_KEY_ID)" in out.stderr


def test_a_deploy_never_takes_placeholders(offline):
    platform = Platform()  # the repository TESS_REPO names, as a run reads it
    tree = platform.tree(platform.repo.snapshot(offline.git("rev-parse", "HEAD").strip()))
    with pytest.raises(SecretsError, match="still encrypted and TESS_GIT_CRYPT_KEY is not set"):
        platform.values(tree, Release("tess-public", "staging"), None)
    with pytest.raises(RuntimeError, match="the infrastructure outputs are not known here"):
        platform.image_ref(tree)


def test_a_new_hub_without_a_secrets_example_is_told_to_add_one(offline):
    """The README's workshop hub: without secrets/example.yaml the aws release cannot show its
    secrets' keys; said as it is (no file, not "encrypted"), and fixed as the README says."""
    add_hub(offline, "workshop", {"staging": 18021, "prod": 18022})
    out = cli("validate", cwd=offline.path)
    assert out.returncode == 1
    assert (
        "FAIL workshop-staging: hub_config/workshop/secrets/staging.yaml: missing, and no "
        "hub_config/workshop/secrets/example.yaml to tell its keys: add the example (keys, no "
        "secrets)"
    ) in out.stdout
    example = offline.path / "hub_config/tess-public/secrets/example.yaml"
    offline.write("hub_config/workshop/secrets/example.yaml", example.read_bytes())
    out = cli("validate", cwd=offline.path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "ok   workshop-staging" in out.stdout and "ok   workshop-prod" in out.stdout
