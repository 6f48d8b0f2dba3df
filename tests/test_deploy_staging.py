"""deploy_staging end to end: a real Dagster instance, real git, real JupyterHub processes.

The tests run in order against one repository and one state folder, as an operator's day:
a first deploy, using both hubs, a values change, a bad value, a hub that cannot start.
"""

import json
import os
import re
import stat
import time

import psutil
import pytest
import requests
from conftest import PLANTED, check_results
from dagster import AssetKey, DagsterEventType

from tess_platform.backends.local.supervisor import Supervisor

PUBLIC_KEY = AssetKey(["staging", "tess_public_staging_release"])
PRIVATE_KEY = AssetKey(["staging", "tess_private_staging_release"])
PRIVATE_SECRETS = "hub_config/tess-private/secrets/staging.yaml"


@pytest.fixture(scope="module")
def site_secrets():
    return {
        PRIVATE_SECRETS: {"hub": {"config": {"GitHubOAuthenticator": {"client_secret": PLANTED}}}}
    }


def deploy(site, sha=None):
    return site.run("deploy_staging", {"tess/git_sha": sha} if sha else {})


def latest(site, key):
    return site.latest(key)


def meta(materialization, name):
    return materialization.metadata[name].value


def checks(result):
    return {
        (key.split("/")[1], name): passed for (key, name), passed in check_results(result).items()
    }


def hub_url(site, deployment):
    return f"http://127.0.0.1:{site.ports[deployment]['staging']}/"


def open_lab(session, url, timeout=90):
    """Follow a browser's way to a JupyterLab page; the user name from where it lands."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page = session.get(url, timeout=30)
        user = re.search(r"/(?:user|spawn-pending)/([^/?]+)", page.url)
        if page.status_code == 200 and "/lab" in page.url and "JupyterLab" in page.text:
            return user.group(1), page
        if user:  # spawning: ask for the user's lab until it is there
            url = page.url.split("/hub/spawn-pending/")[0] + f"/user/{user.group(1)}/lab"
        time.sleep(0.5)
    raise AssertionError(f"no JupyterLab at {url} within {timeout} s")


def login(session, url, password, user="alice"):
    session.get(url + "hub/login", timeout=10)
    return session.post(
        url + "hub/login",
        timeout=30,
        allow_redirects=False,
        data={"username": user, "password": password, "_xsrf": session.cookies.get("_xsrf")},
    )


def private_password(site):
    data = json.loads((site.home / "secrets" / "tess-private-staging.json").read_text())
    return data["hub"]["config"]["SharedPasswordAuthenticator"]["user_password"]


def test_deploy_staging_brings_up_both_hubs_with_their_checks(site):
    sha = site.repo.git("rev-parse", "staging").strip()
    result = deploy(site)
    assert result.success
    run = site.instance.get_run_by_id(result.run_id)
    assert run.tags["tess/git_sha"] == sha  # the head of staging, tagged on the run
    assert run.tags["tess/env"] == "staging"
    assert checks(result) == {
        (f"{d}_staging_release", c): True
        for d in ("tess_public", "tess_private")
        for c in ("hub_healthy", "server_spawns", "kernel_runs")
    }
    for key, deployment in ((PUBLIC_KEY, "tess-public"), (PRIVATE_KEY, "tess-private")):
        hub_log = site.home / "releases" / f"{deployment}-staging" / "revisions" / "1" / "hub.log"
        # server_spawns and kernel_runs ran in one check server: one spawn, not two
        assert hub_log.read_text().count("User tess-check took") == 1
        mat = latest(site, key)
        assert meta(mat, "git_sha") == sha
        assert meta(mat, "url") == hub_url(site, deployment)
        assert meta(mat, "revision") == 1
        assert re.fullmatch(r"tess-user-image:[0-9a-f]{16}", meta(mat, "image"))
        assert re.fullmatch(r"[0-9a-f]{64}", meta(mat, "release_hash"))
        assert meta(mat, "values_sha256") == meta(
            latest(site, AssetKey(["staging", key.path[1].replace("_release", "_values")])),
            "values_sha256",
        )
        assert "`singleuser.uid`" in meta(mat, "not_applied")  # said, not silently dropped
        assert mat.tags["dagster/data_version"] == meta(mat, "release_hash")
    logs = "\n".join(e.message for e in site.instance.all_logs(result.run_id))
    assert f"deploying the tree at {sha} (head of branch staging)" in logs
    # kernel_runs' kernel stopped with the check server
    kernels = [
        p.info["cwd"]
        for p in psutil.process_iter(["cmdline", "cwd"])
        if "ipykernel_launcher" in " ".join(p.info["cmdline"] or ())
        and (p.info["cwd"] or "").startswith(str(site.home))
    ]
    assert kernels == []


def test_the_public_hub_lets_anyone_into_jupyterlab(site):
    user, page = open_lab(requests.Session(), hub_url(site, "tess-public"))
    # the hub may bounce a first request it served before the proxy had the route: ?redirects=1
    assert page.url.split("?")[0] == f"{hub_url(site, 'tess-public')}user/{user}/lab"
    second, _ = open_lab(requests.Session(), hub_url(site, "tess-public"))
    assert second != user  # every visitor is a throwaway user of their own


def test_the_private_hub_asks_for_a_login_and_refuses_its_api_without_a_token(site):
    url = hub_url(site, "tess-private")
    assert requests.get(url + "hub/api/users", timeout=10).status_code == 403
    front = requests.get(url, timeout=10)
    assert "/hub/login" in front.url and 'name="password"' in front.text
    assert login(requests.Session(), url, "not-the-password").status_code == 403
    session = requests.Session()
    assert login(session, url, private_password(site)).status_code == 302
    user, _ = open_lab(session, url + "hub/")
    assert user == "alice"


def test_a_values_change_is_a_new_revision_and_homes_persist(site):
    home = site.home / "efs" / "tess-private-staging" / "alice"
    (home / "notes.txt").write_text("light curve of TIC 261136679\n")
    site.repo.edit_yaml(
        "hub_config/tess-private/staging.yaml", lambda d: d.update(cull={"timeout": 3600})
    )
    sha = site.repo.commit("tess-private staging: cull after an hour")
    result = deploy(site, sha)
    assert result.success
    mat = latest(site, PRIVATE_KEY)
    assert (meta(mat, "revision"), meta(mat, "git_sha")) == (2, sha)
    assert "`cull.timeout`: 1800 → 3600" in meta(mat, "changes")
    public = latest(site, PUBLIC_KEY)  # unchanged: not restarted, its users keep their servers
    assert (meta(public, "revision"), meta(public, "changes")) == (1, "- no change")
    session = requests.Session()
    login(session, hub_url(site, "tess-private"), private_password(site))
    open_lab(session, hub_url(site, "tess-private") + "hub/")
    note = session.get(
        hub_url(site, "tess-private") + "user/alice/api/contents/notes.txt", timeout=10
    )
    assert note.json()["content"] == "light curve of TIC 261136679\n"


def test_a_value_the_schema_rejects_deploys_nothing(site):
    before = latest(site, PUBLIC_KEY)
    site.repo.edit_yaml(
        "hub_config/tess-public/common.yaml",
        lambda d: d["singleuser"].update(memry={"limit": "2G"}),
    )
    result = deploy(site, site.repo.commit("a typo"))
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE)
    assert failure.step_key == "tess_public_staging"
    assert (
        "hub_config/tess-public/common.yaml: singleuser.memry: not allowed by the jupyterhub"
        " 4.4.0 values schema"
    ) in failure.event_specific_data.error.message
    assert latest(site, PUBLIC_KEY).metadata == before.metadata  # not deployed
    assert requests.get(hub_url(site, "tess-public") + "hub/health", timeout=10).ok
    site.repo.edit_yaml(
        "hub_config/tess-public/common.yaml", lambda d: d["singleuser"].pop("memry")
    )
    site.repo.commit("fix the typo")


def test_a_hub_that_fails_to_start_is_rolled_back(site):
    site.repo.edit_yaml(
        "hub_config/tess-public/staging.yaml",
        lambda d: d.update(
            hub={"config": {"JupyterHub": {"authenticator_class": "no-such-authenticator"}}}
        ),
    )
    result = deploy(site, site.repo.commit("an authenticator that does not exist"))
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE)
    message = failure.event_specific_data.error.message
    assert failure.step_key == "tess_public_staging"
    assert "revision 2 failed to start (the hub exited with code 1" in message
    assert "rolled back to revision 1, now serving as revision 3" in message
    history = Supervisor(site.home).history("tess-public-staging")
    assert [(r.revision, r.status, r.description) for r in history] == [
        (1, "superseded", "Install complete"),
        (2, "failed", history[1].description),
        (3, "deployed", "Rollback to 1"),
    ]
    assert (
        "no-such-authenticator"
        in (site.home / "releases/tess-public-staging/revisions/2" / "hub.log").read_text()
    )
    assert requests.get(hub_url(site, "tess-public") + "hub/health", timeout=10).ok


def test_secrets_never_reach_logs_metadata_or_files(site):
    generated = json.loads((site.home / "secrets" / "tess-private-staging.json").read_text())
    secrets = [
        PLANTED,
        generated["proxy"]["secretToken"],
        generated["hub"]["cookieSecret"],
        private_password(site),
    ]
    runs = [run.run_id for run in site.instance.get_runs()]
    text = "\n".join(str(e) for run in runs for e in site.instance.all_logs(run))
    text += "\n".join(str(site.instance.get_run_by_id(run)) for run in runs)
    assert text and not [s for s in secrets if s in text]
    for path in site.home.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".log", ".py", ".yaml"):
            content = path.read_text(errors="replace")
            leaked = [s for s in secrets if s in content]
            if leaked:  # only the hubs' own secret stores hold them, readable by no one else
                assert path.name in ("secrets.json", "tess-private-staging.json"), path
                assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
