"""The `tess-platform` command line, run as an operator runs it."""

import contextlib
import subprocess
import sys
import time

import psutil
import pytest
import requests
from conftest import UID_NOT_AN_INTEGER, break_uid, cli, deploy

from tess_platform.dagster_dev import DagsterDev
from tess_platform.platform import Platform
from tess_platform.releases import Release
from tess_platform.targets import DeployError


def test_validate_passes_the_shipped_config(repo, tess_env):
    out = cli("validate", cwd=repo.path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert [
        line.split(":")[0]
        for line in out.stdout.splitlines()
        if ":" in line and not line.startswith(" ")
    ] == [
        "ok   tess-private-staging",
        "ok   tess-public-staging",
        "ok   tess-private-prod",
        "ok   tess-public-prod",
    ]


def test_validate_fails_naming_file_and_key(repo, tess_env):
    break_uid(repo)
    out = cli("validate", cwd=repo.path)
    assert out.returncode == 1
    assert UID_NOT_AN_INTEGER in out.stdout
    assert out.stdout.count("FAIL") == 1


def test_values_prints_the_merged_chart_values_with_the_image_pinned(repo, tess_env):
    out = cli("values", "prod", "tess-public", cwd=repo.path)
    assert out.returncode == 0, out.stderr
    assert "authenticator_class: tmp" in out.stdout
    assert "secretToken: '***'" in out.stdout  # the local target's generated secret, masked
    assert "- public.tess.example.org" in out.stdout  # the prod host
    assert "name: tess-user-image" in out.stdout


def test_malformed_yaml_and_unknown_names_are_clear_errors(repo, tess_env):
    repo.write("hub_config/tess-public/staging.yaml", "cull:\n  timeout: [600\n")
    out = cli("values", "staging", "tess-public", cwd=repo.path)
    assert out.returncode == 1
    assert out.stderr.startswith(
        "tess-platform: hub_config/tess-public/staging.yaml:3:1: malformed YAML"
    )
    unknown = cli("values", "staging", "tess-secret", cwd=repo.path)
    assert unknown.returncode == 1 and unknown.stderr == (
        "tess-platform: hub_config/tess-secret/common.yaml: no such hub; the hubs are "
        "tess-private, tess-public\n"
    )
    assert cli("local", "stop", "tess-nothing-staging").stderr.startswith(
        "tess-platform: no release tess-nothing-staging on this machine"
    )
    assert cli("local", "stop", "Tess_Public-staging").stderr.startswith(
        "tess-platform: unknown deployment: 'Tess_Public' cannot name a release or namespace"
    )


def test_an_unknown_sha_is_a_clear_error(tess_env):
    out = cli("values", "staging", "tess-public", "--sha", "0123456789abcdef")
    assert out.returncode == 1
    assert out.stderr.strip().endswith(f"commit 0123456789abcdef is not in {tess_env['TESS_REPO']}")


def test_local_status_stop_and_start(repo, tess_env):
    platform = Platform()
    release = Release("tess-private", "staging")
    deploy(platform, repo.commit("staging"), release)
    url = platform.endpoint(release).url

    status = cli("local", "status")
    assert "tess-private-staging: revision 1, running (pid " in status.stdout
    assert "not as deployed" not in status.stdout
    assert url in status.stdout
    password_file = platform.target.password_file(release)
    assert (
        f"password: key hub.config.SharedPasswordAuthenticator.user_password in {password_file}"
    ) in status.stdout

    assert cli("local", "stop").stdout == (
        "stopped tess-private-staging: its hub and 0 user servers\n"
    )
    stopped = cli("local", "status").stdout
    assert "revision 1, stopped" in stopped
    assert "  not as deployed: the hub process of revision 1 is not running\n" in stopped
    started = cli("local", "start").stdout.splitlines()
    assert started[-1].startswith("tess-private-staging: revision 1, running (pid ")
    assert started[-1].endswith(f", 0 user servers, {url}")
    assert not any("tess-private-staging" in line for line in started[:-1])  # said once
    assert requests.get(url + "hub/health", timeout=10).ok


def test_local_status_says_not_deployed_of_a_release_whose_only_revision_failed(repo, tess_env):
    repo.edit_yaml(
        "hub_config/tess-public/staging.yaml",
        lambda d: d.update(
            hub={"config": {"JupyterHub": {"authenticator_class": "no-such-authenticator"}}}
        ),
    )
    release = Release("tess-public", "staging")
    platform = Platform()
    with pytest.raises(DeployError, match="revision 1 failed to start"):
        deploy(platform, repo.commit("a hub that cannot start"), release)
    status = cli("local", "status").stdout
    assert "tess-public-staging: not deployed\n" in status and "None" not in status

    # a release whose state cannot be read is named with its file; the others are shown
    deploy(platform, repo.commit("beside it"), Release("tess-private", "staging"))
    record = platform.target.supervisor.release_dir(release.name) / "revisions/1/revision.json"
    record.write_text("")
    status = cli("local", "status")
    assert status.returncode == 1
    assert "tess-private-staging: revision 1, running (pid " in status.stdout
    assert f"tess-public-staging: {record}" in status.stdout


def test_secrets_init_writes_generated_tokens_and_the_github_client(repo, tess_env):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "tess_platform.cli",
            "secrets",
            "init",
            "prod",
            "tess-private",
            "--github-client-id",
            "tess-oauth-app",
        ],
        cwd=repo.path,
        input="oauth-client-secret-value\n",
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert "callback URL is https://private.tess.example.org/hub/oauth_callback" in out.stderr
    relpath = "hub_config/tess-private/secrets/prod.yaml"
    path = repo.path / relpath
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    written = repo.read_yaml(relpath)
    assert len(written["proxy"]["secretToken"]) == 64
    assert written["hub"]["config"]["GitHubOAuthenticator"] == {
        "client_id": "tess-oauth-app",
        "client_secret": "oauth-client-secret-value",
        "oauth_callback_url": "https://private.tess.example.org/hub/oauth_callback",
    }
    assert "oauth-client-secret-value" not in out.stdout + out.stderr
    repo.commit("prod secrets")
    blob = subprocess.run(
        ["git", "show", f"HEAD:{relpath}"], cwd=repo.path, capture_output=True, check=True
    ).stdout
    assert blob.startswith(b"\0GITCRYPT\0")  # encrypted in git, as promised
    again = cli("secrets", "init", "prod", "tess-private", cwd=repo.path)
    assert again.returncode == 1 and "exists already; pass --force" in again.stderr


def test_secrets_init_refuses_where_git_crypt_would_not_encrypt(repo, tess_env):
    (repo.path / ".gitattributes").write_text("")
    out = cli("secrets", "init", "staging", "tess-public", cwd=repo.path)
    assert out.returncode == 1
    assert out.stderr.strip() == (
        "tess-platform: hub_config/tess-public/secrets/staging.yaml: "
        "git-crypt would not encrypt it (.gitattributes does not "
        "cover it); nothing was written"
    )
    assert not (repo.path / "hub_config/tess-public/secrets/staging.yaml").exists()


def test_secrets_init_refuses_a_linked_folder_and_a_missing_github_client(repo, tess_env, tmp_path):
    folder = repo.path / "hub_config/tess-public/secrets"
    outside = tmp_path / "outside"
    folder.rename(outside)
    folder.symlink_to(outside)
    out = cli("secrets", "init", "staging", "tess-public", cwd=repo.path)
    assert (out.returncode, out.stderr.strip()) == (
        1,
        "tess-platform: hub_config/tess-public/secrets/staging.yaml: "
        "hub_config/tess-public/secrets is a symbolic link; a secrets file is written only as "
        "a regular file inside the repository; nothing written",
    )
    assert not (outside / "staging.yaml").exists()

    # tess-private logs in with GitHub: stdin ended, or an empty secret, is no client
    for given in ([], ["--github-client-id", "tess-oauth-app"]):
        out = cli("secrets", "init", "staging", "tess-private", *given, cwd=repo.path)
        assert out.returncode == 1 and "Traceback" not in out.stderr
        assert out.stderr.strip().endswith(
            "tess-private-staging: no GitHub OAuth client id and secret given (the id with "
            "--github-client-id or typed, the secret typed or on stdin); nothing written"
        )
    assert not (repo.path / "hub_config/tess-private/secrets/staging.yaml").exists()


def test_local_stop_ends_a_dagster_dev_whose_shutdown_hangs(tmp_path):
    """Seen on a busy machine: `dagster dev`, sent SIGTERM, ignored SIGTERM and SIGINT from then
    on and ran for ever. A stand-in that does the same, with a child in its group (its daemon,
    its webserver): after the grace period both are killed and the pid file goes."""
    hang = (
        "import signal, subprocess, sys, time\n"
        "for s in (signal.SIGTERM, signal.SIGINT): signal.signal(s, signal.SIG_IGN)\n"
        "subprocess.Popen([sys.executable, '-c', 'import signal, time; "
        "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)'])\n"
        "time.sleep(600)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", hang, "dev"], start_new_session=True)
    dagster = DagsterDev(tmp_path, port=3999)
    dagster.pidfile.write_text(str(proc.pid))
    time.sleep(1)  # its child started
    group = [proc.pid, *(c.pid for c in psutil.Process(proc.pid).children(recursive=True))]
    assert len(group) == 2
    assert dagster.stop(grace=1)
    proc.wait(timeout=10)
    for pid in group:  # gone, or a zombie its new parent has yet to reap
        with contextlib.suppress(psutil.NoSuchProcess):
            assert psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not dagster.pidfile.exists() and dagster.running() is None
