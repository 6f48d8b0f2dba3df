"""The repository's pull-request workflow: each step's script run as the workflow runs it, in
a clone of a deployment repository checked out at a pull request's head, with no cloud
credentials and no git-crypt key."""

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import CHART_DIR, ROOT, run
from fakes import RecordingApi

WORKFLOW = ROOT / ".github/workflows/pull-request.yml"
SCRIPTS = ROOT / ".ci/pr"


def step(script: str, cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """A workflow step: the script from this checkout, in the pull request's checkout, with
    nothing of the platform's environment but the chart (a runner pulls it; this machine
    cannot reach its repository) and a cache of the test's own."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TESS_", "AWS_"))}
    here = {"TESS_CHART_DIR": str(CHART_DIR), "TESS_CACHE": str(cwd.parent / "cache")}
    return subprocess.run(
        [str(SCRIPTS / script), *args],
        cwd=cwd,
        env={**clean, **here, "AWS_CONFIG_FILE": "/nonexistent", **env},
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_the_workflow_runs_the_scripts_and_splices_no_branch_name_into_a_command():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    assert workflow[True]["pull_request"]["branches"] == ["staging", "prod"]  # YAML's `on`
    steps = workflow["jobs"]["review"]["steps"]
    commands = [s["run"] for s in steps if "run" in s]
    for script in SCRIPTS.iterdir():
        assert any(f".ci/pr/{script.name}" in c for c in commands), f"{script.name}: no step"
        assert os.access(script, os.X_OK)
    for command in commands:
        assert "${{" not in command, f"an expression spliced into a command: {command}"
    text = WORKFLOW.read_text()
    assert "secrets." not in text and "aws-actions" not in text  # no cloud credentials
    assert re.search(r"BASE_REF: \$\{\{ github.base_ref \}\}", text)


@pytest.mark.parametrize(
    ("base", "head", "ok"),
    [("prod", "staging", True), ("prod", "fix-cull", False), ("staging", "fix-cull", True)],
)
def test_only_staging_merges_into_prod(tmp_path, base, head, ok):
    out = step("only-staging-into-prod", tmp_path, BASE_REF=base, HEAD_REF=head)
    assert (out.returncode == 0) is ok
    if not ok:
        assert out.stderr.startswith(
            "only merge staging to prod: this pull request merges 'fix-cull' into prod."
        )


@pytest.fixture
def pull_request(repo, tmp_path) -> Path:
    """A clone at a pull request's head (a branch off staging), as actions/checkout leaves it:
    the base only as a remote branch."""
    repo.commit("the platform, on staging")
    clone = tmp_path / "pr"
    run("git", "clone", "-q", "--branch", "staging", str(repo.path), str(clone))
    run("git", "checkout", "-q", "-b", "fix-cull", cwd=clone)
    run("git", "branch", "-q", "-D", "staging", cwd=clone)
    common = clone / "hub_config/tess-public/common.yaml"
    common.write_text(common.read_text().replace("  timeout: 600", "  timeout: 660"))
    run("git", "commit", "-qam", "tess-public: cull later", cwd=clone)
    return clone


def test_validate_plan_and_image_steps_on_a_pull_request(pull_request):
    out = step("validate", pull_request)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("ok   tess-public-prod") == 2  # both targets

    out = step("plan", pull_request, "plan.md", BASE_REF="staging")
    assert out.returncode == 0, out.stdout + out.stderr
    comment = (pull_request / "plan.md").read_text()
    assert comment.startswith("### tess-platform plan: Plan: 2 to redeploy, 0 new.")
    assert "| `tess-public-prod` | **deploy** | `cull.timeout`: 600 → 660 |" in comment
    assert "| `tess-private-prod` | **no change** | — |" in comment

    out = step("image", pull_request)
    assert out.returncode == 0, out.stderr
    assert re.match(r"tess-user-image:[0-9a-f]{16}: rendered by repo2docker", out.stdout)


def test_a_plan_with_errors_fails_the_step_after_writing_them(pull_request):
    common = pull_request / "hub_config/tess-public/common.yaml"
    common.write_text(common.read_text().replace("  timeout: 660", "  timeout: never"))
    out = step("plan", pull_request, "plan.md", BASE_REF="staging")
    assert out.returncode == 1
    assert (
        "hub_config/tess-public/common.yaml: cull.timeout" in (pull_request / "plan.md").read_text()
    )


def test_the_plan_is_the_pull_requests_one_comment_edited_on_each_push(tmp_path):
    api = RecordingApi()
    (tmp_path / "plan.md").write_text("### tess-platform plan: Nothing to deploy.\n")
    token = "ghs_planted-token-5e1b"
    env = {
        "GITHUB_API_URL": api.url,
        "GITHUB_REPOSITORY": "tess/hubs",
        "PR": "7",
        "GH_TOKEN": token,
    }
    comments = "/repos/tess/hubs/issues/7/comments"
    api.answers[("POST", comments)] = {"id": 42}
    out = step("comment", tmp_path, "plan.md", **env)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "created comment 42\n"
    listed, made = api.requests
    assert (listed["method"], listed["path"]) == ("GET", f"{comments}?per_page=100&page=1")
    assert (made["method"], made["path"]) == ("POST", comments)
    assert made["body"] == {
        "body": "<!-- tess-platform plan -->\n### tess-platform plan: Nothing to deploy.\n"
    }
    assert made["headers"]["Authorization"] == f"Bearer {token}"

    # the next push: the platform's comment found among the others, and edited
    api.requests.clear()
    api.answers[("GET", f"{comments}?per_page=100&page=1")] = [
        {"id": 3, "body": "Looks good"},
        {"id": 42, "body": "<!-- tess-platform plan -->\nan older plan"},
    ]
    out = step("comment", tmp_path, "plan.md", **env)
    assert out.stdout == "updated comment 42\n"
    assert [(r["method"], r["path"]) for r in api.requests] == [
        ("GET", f"{comments}?per_page=100&page=1"),
        ("PATCH", "/repos/tess/hubs/issues/comments/42"),
    ]

    api.status = 403  # a token without the pull-requests permission
    out = step("comment", tmp_path, "plan.md", **env)
    assert out.returncode == 1
    assert out.stderr == "comment: GitHub's comments API for tess/hubs#7: answered HTTP 403\n"
    assert token not in out.stdout + out.stderr
