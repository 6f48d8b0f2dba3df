"""Each case of the hostile corpus committed to staging, read by every command that reads it
(`validate` in the checkout and at the SHA, `values`, a staging sensor tick, deploy_staging):
a clear error naming the file, no traceback, nothing deployed, and a planted secret nowhere."""

import re

import psutil
import pytest
from conftest import cli, failures
from dagster import build_sensor_context
from hostile import CORPUS, Case

from tess_dagster.definitions import defs
from tess_platform.backends.local.supervisor import Supervisor

staging_branch_sensor = defs.get_sensor_def("staging_branch_sensor")

RELEASE = "tess-public-staging"


def cli_says(site, *args: str, exit_code: int = 1) -> str:
    out = cli(*args, cwd=site.repo.path, env=site.env)
    text = out.stdout + out.stderr
    assert out.returncode == exit_code, text
    return text


def planted_anywhere(site, value: str) -> list[str]:
    """Where a value shows: Dagster's storage (runs, events, logs) and process command lines
    and environments."""
    found = [
        str(path)
        for path in site.dagster_home.rglob("*")
        if path.is_file() and value.encode() in path.read_bytes()
    ]
    for proc in psutil.process_iter(["pid", "cmdline", "environ"]):
        text = " ".join(proc.info["cmdline"] or []) + str(proc.info["environ"] or {})
        if value in text:
            found.append(f"process {proc.info['pid']}")
    return found


@pytest.fixture(scope="module")
def deployed(site):
    """Staging deployed once: a hostile commit must leave what serves as it is."""
    assert site.run("deploy_staging").success
    return [r.revision for r in Supervisor(site.home).history(RELEASE)]


@pytest.mark.parametrize("case", CORPUS, ids=str)
def test_a_hostile_commit_is_refused_by_every_command(site, deployed, case: Case):
    path = site.repo.path / case.relpath
    before = path.read_bytes() if path.exists() else None
    site.repo.write(case.relpath, case.content)
    sha = site.repo.commit(f"hostile: {case.name}")
    try:
        outputs = [
            cli_says(site, "validate"),
            cli_says(site, "validate", "--sha", sha),
            cli_says(site, "values", "staging", "tess-public"),
        ]
        tick = staging_branch_sensor.evaluate_tick(
            build_sensor_context(instance=site.instance, definitions=defs)
        )
        # the tick does not fail: it asks for a run of the release, which shows why
        (request,) = tick.run_requests
        assert [
            k.to_user_string() for k in request.asset_selection if k.path[-1].endswith("_release")
        ] == ["staging/tess_public_staging_release"]
        result = site.execute(request, "deploy_staging")
        assert not result.success
        outputs.append(failures(result)["tess_public_staging"])
    finally:
        if before is None:
            path.unlink()
        else:
            path.write_bytes(before)
        site.repo.commit(f"hostile: {case.name} reverted")
    for text in outputs:
        assert re.search(case.error, text), text[-2000:]
        assert "Traceback" not in text and len(text) < 4000
        assert "\r" not in text and "\x1b" not in text  # shown escaped, never acted on
    supervisor = Supervisor(site.home)  # nothing deployed: the hub serves as before
    assert [r.revision for r in supervisor.history(RELEASE)] == deployed
    assert supervisor.status(RELEASE).running
    if case.planted:
        assert not any(case.planted in text for text in outputs)
        assert planted_anywhere(site, case.planted) == []


def test_a_chart_that_cannot_be_read_deploys_nothing_and_blames_no_file_of_the_repo(
    site, deployed, tmp_path, monkeypatch
):
    monkeypatch.setenv("TESS_CHART_DIR", str(tmp_path))  # as when the chart cannot be pulled
    result = site.run("deploy_staging")
    assert not result.success
    said = failures(result)["tess_public_staging"]
    assert f"{tmp_path}: no values.schema.json (or .yaml) for jupyterhub 4.4.0" in said
    assert said.rstrip().endswith("Nothing was deployed; deploy again once it can.")
    assert "Fix the file" not in said
    assert [r.revision for r in Supervisor(site.home).history(RELEASE)] == deployed


def test_a_link_out_of_the_repository_is_left_out_not_a_crash(site, deployed):
    (site.repo.path / "docs").mkdir(exist_ok=True)
    (site.repo.path / "docs/passwd").symlink_to("/etc/passwd")
    sha = site.repo.commit("docs: an absolute link")
    try:
        note = "docs/passwd: a symbolic link out of the repository; left out of the snapshot"
        assert f"note {note}" in cli_says(site, "validate", "--sha", sha, exit_code=0)
        staging_branch_sensor.evaluate_tick(  # looks at the snapshot: no crash
            build_sensor_context(instance=site.instance, definitions=defs)
        )
        result = site.run("deploy_staging", {"tess/git_sha": sha})
        assert result.success
        assert note in [e.message for e in site.instance.all_logs(result.run_id)]
    finally:
        (site.repo.path / "docs/passwd").unlink()
        site.repo.commit("docs: the link removed")


@pytest.mark.parametrize(
    "tag, error",
    [
        (
            "tess/git_sha",
            r"'x{50,}…' \(1000000 characters\) is not a git SHA\. Nothing was deployed\.",
        ),
        ("tess/env", r"tess/env='x{50,}…' \(1000000 characters\): not an environment; one of"),
    ],
)
def test_a_megabyte_run_tag_is_refused_and_echoed_clipped(site, deployed, tag, error):
    result = site.run("deploy_staging", {tag: "x" * 1_000_000})
    assert not result.success
    messages = failures(result).values()
    assert messages and all(re.search(error, m) and len(m) < 300 for m in messages), messages
    assert [r.revision for r in Supervisor(site.home).history(RELEASE)] == deployed
