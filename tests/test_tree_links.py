"""Hostile trees: symbolic links out of the repository or onto a secrets file, and secrets
files git stores in the clear, in a snapshot (`--sha`) and in an operator's checkout."""

import os
import shutil
import subprocess

from conftest import PLANTED, PLANTED_VALUES, cli

from tess_platform.git import Repo
from tess_platform.hierarchy import WorkTree

SECRETS = "hub_config/tess-private/secrets/staging.yaml"
PUBLIC_SECRETS = "hub_config/tess-public/secrets/staging.yaml"
COMMON = "hub_config/tess-public/common.yaml"
LINK_ERROR = (
    f"{COMMON}: is a symbolic link; values and secrets files must be regular files "
    "(a link could bring in a secrets file or a file outside the repository, unmasked)"
)
CLEAR_ERROR = f"{SECRETS}: is not encrypted in git."


def output(result) -> str:
    text = result.stdout + result.stderr
    assert "Traceback" not in text, text
    return text


def link(repo, relpath: str, target: str) -> None:
    path = repo.path / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink() or path.exists():
        path.unlink()
    os.symlink(target, path)


def stored(repo, relpath: str) -> bytes:
    return subprocess.run(
        ["git", "cat-file", "blob", f"HEAD:{relpath}"],
        cwd=repo.path,
        capture_output=True,
        check=True,
    ).stdout


def test_an_absolute_link_under_docs_is_left_out_and_noted(repo, tess_env, tmp_path):
    link(repo, "docs/hosts", "/etc/hosts")
    link(repo, "docs/values", "../hub_config/values.yaml")  # in the repository: kept
    sha = repo.commit("docs with links")

    snapshot = Repo(str(repo.path), tmp_path / "cache").snapshot(sha)
    assert snapshot.links_out == ("docs/hosts",)
    assert not (snapshot.root / "docs/hosts").is_symlink()
    kept = snapshot.root / "docs/values"
    assert kept.is_symlink() and os.readlink(kept) == "../hub_config/values.yaml"
    again = Repo(str(repo.path), tmp_path / "cache").snapshot(sha)  # from the cache
    assert again.links_out == ("docs/hosts",)

    out = cli("validate", "--sha", sha)
    text = output(out)
    assert out.returncode == 0, text
    assert (
        "note docs/hosts: a symbolic link out of the repository; left out of the snapshot"
    ) in out.stdout
    assert out.stdout.count("ok   ") == 4


def test_relative_links_climbing_out_are_left_out(repo, tess_env, tmp_path):
    link(repo, "docs/up", "../../../../../../../etc/passwd")
    # each alone stays inside; together they climb out (a-out comes first in the archive)
    link(repo, "a-out", "d/b/../..")
    link(repo, "d/b", "..")
    sha = repo.commit("links climbing out")

    snapshot = Repo(str(repo.path), tmp_path / "cache").snapshot(sha)
    assert set(snapshot.links_out) == {"docs/up", "a-out"}
    for path in snapshot.root.rglob("*"):
        if path.is_symlink():
            assert path.resolve().is_relative_to(snapshot.root.resolve()), path

    out = cli("validate", "--sha", sha)
    text = output(out)
    assert out.returncode == 0, text
    assert "note docs/up: a symbolic link out of the repository" in out.stdout
    assert "note a-out: a symbolic link out of the repository" in out.stdout


def test_a_values_file_linked_to_the_secrets_file_is_refused(repo, tess_env):
    repo.write(PUBLIC_SECRETS, {"proxy": {"secretToken": PLANTED}})
    repo.commit("tess-public staging secrets")
    assert PLANTED.encode() not in stored(repo, PUBLIC_SECRETS)
    assert PLANTED in (repo.path / PUBLIC_SECRETS).read_text()  # the checkout is unlocked
    link(repo, COMMON, "secrets/staging.yaml")

    out = cli("values", "staging", "tess-public", cwd=repo.path)
    text = output(out)
    assert out.returncode == 1
    assert out.stderr.strip() == f"tess-platform: {LINK_ERROR}"
    assert PLANTED not in text

    sha = repo.commit("common.yaml is the secrets file")
    out = cli("validate", "--sha", sha)
    text = output(out)
    assert out.returncode == 1
    assert f"FAIL {LINK_ERROR}" in out.stdout  # the folder is not a hub, and it says why
    assert "note " not in out.stdout  # an in-repository link: kept, and refused as a link
    assert PLANTED not in text


def test_a_values_file_linked_out_of_the_repository_is_refused(repo, tess_env):
    link(repo, COMMON, "/etc/passwd")

    out = cli("values", "staging", "tess-public", cwd=repo.path)
    text = output(out)
    assert out.returncode == 1
    assert out.stderr.strip() == f"tess-platform: {LINK_ERROR}"
    assert "root:" not in text

    sha = repo.commit("common.yaml is /etc/passwd")
    out = cli("validate", "--sha", sha)
    text = output(out)
    assert out.returncode == 1
    assert f"note {COMMON}: a symbolic link out of the repository" in out.stdout
    assert f"FAIL {LINK_ERROR}" in text  # refused as a link, as in the checkout
    assert "root:" not in text


def test_a_secrets_file_committed_as_a_link_out_is_refused_not_read_as_missing(
    repo, tess_env, tmp_path
):
    """Left out of the snapshot, it would read as missing: placeholders, and validate ok."""
    (tmp_path / "out.yaml").write_text("proxy: {secretToken: x}\n")
    link(repo, SECRETS, str(tmp_path / "out.yaml"))
    sha = repo.commit("the secrets file is a link out")
    out = cli("validate", "--sha", sha, env={"TESS_TARGET": "aws"})
    assert out.returncode == 1, output(out)
    assert (
        f"FAIL tess-private-staging: {SECRETS}: is a symbolic link; values and secrets files "
        "must be regular files"
    ) in out.stdout


def test_a_deployment_folder_linked_out_of_the_repository_is_refused(repo, tess_env, tmp_path):
    outside = tmp_path / "outside" / "tess-public"
    shutil.move(repo.path / "hub_config/tess-public", outside)
    link(repo, "hub_config/tess-public", str(outside))

    out = cli("values", "staging", "tess-public", cwd=repo.path)
    output(out)
    assert out.returncode == 1
    assert out.stderr.startswith(
        f"tess-platform: {COMMON}: hub_config/tess-public is a symbolic link; "
        "values and secrets files must be regular files"
    )


def commit_in_the_clear(repo) -> str:
    """A secrets file committed while .gitattributes did not cover it; covered again after."""
    attributes = (repo.path / ".gitattributes").read_text()
    (repo.path / ".gitattributes").write_text("")
    repo.write(SECRETS, PLANTED_VALUES)
    repo.commit("oops: secrets in the clear")
    (repo.path / ".gitattributes").write_text(attributes)
    repo.git("add", ".gitattributes")  # only it: `add -A` would have git-crypt clean it again
    repo.git("commit", "-q", "-m", "git-crypt attributes back")
    sha = repo.git("rev-parse", "HEAD").strip()
    repo.git("branch", "-f", "staging", sha)
    assert PLANTED.encode() in stored(repo, SECRETS)  # git still stores it in the clear
    assert WorkTree(repo.path).git_crypt_covers(SECRETS)
    return sha


def test_a_secrets_file_committed_in_the_clear_is_refused_in_the_checkout_too(repo, tess_env):
    sha = commit_in_the_clear(repo)
    for args in (("validate",), ("validate", "--sha", sha)):
        out = cli(*args, cwd=repo.path)
        text = output(out)
        assert out.returncode == 1, text
        assert f"FAIL tess-private-staging: {CLEAR_ERROR}" in out.stdout
        assert "rotate what it holds" in out.stdout
        assert out.stdout.count("FAIL") == 1
        assert PLANTED not in text


def test_an_untracked_secrets_file_in_an_unlocked_checkout_is_accepted(repo, tess_env):
    repo.write(SECRETS, PLANTED_VALUES)  # not added: git-crypt will encrypt it when it is

    out = cli("validate", cwd=repo.path)
    text = output(out)
    assert out.returncode == 0, text
    out = cli("values", "staging", "tess-private", cwd=repo.path)
    text = output(out)
    assert out.returncode == 0, text
    assert "client_secret: '***'" in out.stdout
    assert PLANTED not in text


def test_in_the_clear_asks_git_what_it_holds(repo):
    tree = WorkTree(repo.path)
    repo.write(SECRETS, PLANTED_VALUES)
    assert tree.in_the_clear(SECRETS) is None  # untracked, attributes and filter in place

    # a clone never unlocked: git-crypt's filter is not configured
    filter_config = repo.git("config", "--get-regexp", r"^filter\.git-crypt\.").splitlines()
    repo.git("config", "--remove-section", "filter.git-crypt")
    assert tree.in_the_clear(SECRETS) == (  # nothing committed: nothing to rotate yet
        "is not in git yet, and `git add` would store it in the clear: git-crypt is not set up "
        "in this checkout (`git-crypt init` or `unlock KEY`); fix that first"
    )
    repo.git("add", SECRETS)
    assert tree.in_the_clear(SECRETS).startswith("is not encrypted in git.")  # the index has it
    repo.git("rm", "-q", "--cached", SECRETS)

    for line in filter_config:
        repo.git("config", *line.split(" ", 1))
    repo.commit("secrets, encrypted")
    assert PLANTED.encode() not in stored(repo, SECRETS)
    assert tree.in_the_clear(SECRETS) is None
    assert tree.in_the_clear("hub_config/tess-private/common.yaml").endswith(
        "it has been committed in the clear"
    )
    assert WorkTree(repo.path).in_the_clear("hub_config/tess-private/secrets/new.yaml") == (
        "is not in git yet, and `git add` would store it in the clear: .gitattributes does not "
        "put it under git-crypt; fix that first"
    )


def test_a_folder_where_a_values_or_secrets_file_goes_is_refused_not_missing(repo, tess_env):
    """A secrets file that is a folder read as absent: the local target's own secrets, ok."""
    (repo.path / PUBLIC_SECRETS).mkdir()
    out = cli("validate", cwd=repo.path)
    assert out.returncode == 1, output(out)
    assert (
        f"FAIL tess-public-staging: {PUBLIC_SECRETS}: is not a regular file; values and "
        "secrets files must be regular files"
    ) in out.stdout
