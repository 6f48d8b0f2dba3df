"""The user image's environment on the local target: built from image/ without Docker, kept by
the image's content tag, what user servers and their kernels run. The shipped spec runs the
science stack; an image change is built while the old revision serves; a build killed midway
is built again; a spec that cannot be built fails the image asset, naming the file."""

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import requests
from conftest import PLANTED, ROOT, TEST_IMAGE, check_results, cli, deploy, failures

from tess_platform.backends.local.supervisor import Supervisor
from tess_platform.backends.local.user_env import COMPLETE, LAST_USED, built
from tess_platform.checks import KERNEL_RUNS
from tess_platform.kernels import Kernel
from tess_platform.platform import Platform
from tess_platform.releases import Release
from tess_platform.targets import DeployError, Endpoint

RELEASE = Release("tess-public", "staging")
ENVS = Path(os.environ["TESS_USER_ENVS"])


def user_kernel(endpoint: Endpoint, user: str) -> Kernel:
    """A kernel in `user`'s server, started through the hub as JupyterLab would."""
    headers = {"Authorization": f"token {endpoint.api_token}"}
    api = f"{endpoint.url}hub/api/users/{user}"
    assert requests.post(api, headers=headers, timeout=30).status_code == 201
    assert requests.post(f"{api}/server", headers=headers, timeout=30).status_code in (201, 202)
    deadline = time.monotonic() + 90
    while not (
        server := requests.get(api, headers=headers, timeout=30).json()["servers"].get("")
    ) or (not server["ready"]):
        assert time.monotonic() < deadline, f"{user}'s server did not start"
        time.sleep(0.25)
    return Kernel.start(f"{endpoint.url.rstrip('/')}{server['url']}", endpoint.api_token)


def test_the_shipped_image_runs_the_science_stack_in_a_local_tess_public_server(repo, tess_env):
    for shipped in ("image", "checks"):
        shutil.rmtree(repo.path / shipped, ignore_errors=True)
        shutil.copytree(ROOT / shipped, repo.path / shipped)
    platform = Platform()
    sha = repo.commit("the shipped image and smoke test")
    outcome = deploy(platform, sha, RELEASE)
    env = built(ENVS / platform.image_ref(platform.tree(platform.repo.snapshot(sha))).tag)
    assert env is not None and outcome.deployed.runs.startswith(f"{env.path} (Python 3.11.")

    kernel = user_kernel(platform.endpoint(RELEASE), "ada")
    run = kernel.execute(
        "import importlib.util, sys, numpy, astropy, lightkurve\n"
        "print(sys.prefix, lightkurve.__version__, astropy.__version__, numpy.__version__)\n"
        "print(get_ipython().history_manager.enabled)\n"  # postBuild: no SQLite history on EFS
        "print(importlib.util.find_spec('rfc3987_syntax'))",  # postBuild: no grammar to build
        timeout=120,
    )
    assert run.error is None
    assert run.output == f"{env.path} 2.5.0 6.1.7 2.1.3\nFalse\nNone\n"
    overrides = env.path / "share/jupyter/lab/settings/overrides.json"
    assert '"fetchNews": "false"' in overrides.read_text()  # postBuild's JupyterLab settings

    # the check that gates promotion, as the pipeline runs it: the shipped smoke test finds the
    # transit it planted, in a kernel of the shipped image
    found = platform.checks(RELEASE, None, names=(KERNEL_RUNS,))[KERNEL_RUNS]
    assert found.passed, found.description
    transit = r"transit found: period 3\.[45]\d\d d, depth \d+ ppm"
    assert re.fullmatch(transit, found.details["output"])


def test_an_image_change_is_built_while_the_old_revision_serves(repo, tess_env):
    platform = Platform()
    deploy(platform, repo.commit("first"), RELEASE)
    endpoint = platform.endpoint(RELEASE)
    ada = user_kernel(endpoint, "ada")
    before = ada.execute("import sys; print(sys.prefix)").output

    repo.write("image/requirements.txt", TEST_IMAGE["requirements.txt"] + "cowsay==6.1\n")
    snapshot = platform.repo.snapshot(repo.commit("cowsay for everyone"))
    # the environments cache outlives a run (a CI machine's /tmp may keep it): start this one cold
    shutil.rmtree(ENVS / platform.image_ref(platform.tree(snapshot)).tag, ignore_errors=True)
    log: list[str] = []
    image, meta = platform.target.ensure_image(snapshot, log.append)
    assert meta["user_environment"] == str(ENVS / image.tag) != before.strip()
    assert meta["environment_reused"] is False and meta["packages"] > 3
    assert any("installing" in line for line in log) and "built in" in log[-2]
    # built beside the serving revision, which still serves the old environment
    assert Supervisor(platform.target.home).current(RELEASE.name).revision == 1
    assert requests.get(f"{endpoint.url}hub/health", timeout=10).ok

    platform.deploy(snapshot, RELEASE, image, print)
    assert (ENVS / image.tag / LAST_USED).exists()  # what `local gc` keeps for a while
    bea = user_kernel(endpoint, "bea")
    assert bea.execute("import sys, cowsay; print(sys.prefix)").output == f"{ENVS / image.tag}\n"
    # ada's server runs on in the environment it started in, as a pod keeps its image
    assert ada.execute("import sys; print(sys.prefix)").output == before
    assert ada.execute("import cowsay").error == "ModuleNotFoundError: No module named 'cowsay'"

    again: list[str] = []
    assert platform.target.ensure_image(snapshot, again.append)[1]["environment_reused"] is True
    assert again[0] == f"user environment {image.tag}: built already, in {ENVS / image.tag}"


def _build_in_a_process(image: Path, cache: Path) -> subprocess.Popen:
    code = (
        "import sys; from pathlib import Path\n"
        "from tess_platform.backends.local.user_env import ensure_env\n"
        "ensure_env(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), print)\n"
    )
    secrets = {"TESS_GIT_CRYPT_KEY": PLANTED, "AWS_SECRET_ACCESS_KEY": PLANTED}
    return subprocess.Popen(
        [sys.executable, "-c", code, str(image), "killed-build", str(cache)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, **secrets, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )


def test_a_build_killed_midway_is_built_again_and_two_at_once_build_once(tmp_path):
    image, envs = tmp_path / "image", tmp_path / "envs"
    image.mkdir()  # a spec of one small package: what is tested is the build, not its size
    (image / "runtime.txt").write_text(TEST_IMAGE["runtime.txt"])
    (image / "requirements.txt").write_text("cowsay==6.1\n")
    path = envs / "killed-build"
    first = _build_in_a_process(image, envs)
    deadline = time.monotonic() + 120
    while not (
        pips := [p for p in psutil.Process(first.pid).children() if "pip" in " ".join(p.cmdline())]
    ):
        assert time.monotonic() < deadline and first.poll() is None, "pip did not start"
        time.sleep(0.1)
    # pip runs a package's build code: it has pip's settings, never the platform's credentials
    seen = pips[0].environ()
    assert "PIP_DISABLE_PIP_VERSION_CHECK" in seen and "PATH" in seen
    assert PLANTED not in repr(seen) and "AWS_SECRET_ACCESS_KEY" not in seen
    first.send_signal(signal.SIGKILL)  # pip, its child, runs on
    first.wait()
    assert path.is_dir() and built(path) is None

    second, third = _build_in_a_process(image, envs), _build_in_a_process(image, envs)
    outputs = sorted(p.communicate(timeout=300)[0] for p in (second, third))
    assert (second.returncode, third.returncode) == (0, 0)
    assert sorted(o.count("did not finish; building it again") for o in outputs) == [0, 1]
    assert sum("built already" in o for o in outputs) == 1  # the other waited, then reused it
    env = built(path)
    assert env is not None
    python = env.bin / "python"
    assert subprocess.run([python, "-c", "import cowsay"]).returncode == 0
    assert not [p for p in psutil.process_iter(["cwd"]) if p.info["cwd"] == str(path)]


@pytest.fixture(scope="module")
def site_secrets():
    return None


def test_a_spec_that_cannot_be_built_fails_the_image_asset_and_deploys_nothing(site):
    site.repo.write("image/requirements.txt", "numpy==0.0.1\n")
    sha = site.repo.commit("a numpy that never was")
    result = site.run("deploy_staging", {"tess/git_sha": sha})
    failed = failures(result)
    assert list(failed) == ["image__user_image"], failed
    assert "image/requirements.txt: pip could not install it" in failed["image__user_image"]
    assert "numpy==0.0.1" in failed["image__user_image"]
    assert Supervisor(site.home).releases() == []  # no hub was started or changed
    with pytest.raises(DeployError, match="not built on this machine"):
        platform = Platform()
        snapshot = platform.repo.snapshot(sha)
        platform.deploy(snapshot, RELEASE, platform.image_ref(platform.tree(snapshot)), print)


def check_descriptions(result) -> dict[tuple[str, str], str]:
    from dagster import DagsterEventType

    return {
        (e.asset_key.path[-1], e.check_name): e.description
        for e in (
            ev.event_specific_data
            for ev in result.all_events
            if ev.event_type == DagsterEventType.ASSET_CHECK_EVALUATION
        )
    }


def test_a_smoke_test_that_fails_fails_kernel_runs_and_blocks_promotion(site):
    site.repo.write("image/requirements.txt", TEST_IMAGE["requirements.txt"])  # builds again
    site.repo.write("checks/smoke_test.py", "import math\nprint(math.pi)\nimport numpy\n")
    sha = site.repo.commit("a smoke test that needs numpy, which the image lacks")
    result = site.run("deploy_staging", {"tess/git_sha": sha})
    assert not result.success  # blocking checks: a failing one fails the run
    results, said = check_results(result), check_descriptions(result)
    for release in ("tess_public_staging_release", "tess_private_staging_release"):
        assert results[(f"staging/{release}", "hub_healthy")] is True
        assert results[(f"staging/{release}", "server_spawns")] is True
        assert results[(f"staging/{release}", "kernel_runs")] is False
        assert said[(release, "kernel_runs")] == (
            "the smoke test failed: ModuleNotFoundError: No module named 'numpy'"
        )

    refused = site.run("promote_prod", {"tess/approved_by": "Ada"})
    assert not refused.success and list(failures(refused)) == ["prod__promotion"]
    assert "check kernel_runs failed on revision" in failures(refused)["prod__promotion"]

    site.repo.write("checks/smoke_test.py", "import math\nprint(math.pi)\n")
    fixed = site.repo.commit("the smoke test the image can run")
    verify = site.run("verify_releases", {"tess/git_sha": fixed})
    assert check_results(verify)[("staging/tess_public_staging_release", "kernel_runs")] is True


def test_local_gc_removes_what_nothing_runs_from_and_no_hub_used_lately(tess_env, tmp_path):
    envs = tmp_path / "envs"  # environments of their own: the shared cache is other tests'

    def environment(tag: str, days_ago: float) -> Path:
        path = envs / tag
        (path / "bin").mkdir(parents=True)
        (path / "bin/python").write_bytes(b"x" * 2**20)
        (path / COMPLETE).write_text("{}")
        then = time.time() - days_ago * 86400
        for mark in (path / COMPLETE, path / "bin", path):
            os.utime(mark, (then, then))
        return path

    stale, recent, running = (
        environment("aaaa", 40),
        environment("bbbb", 2),
        environment("cccc", 90),
    )
    (envs / ".removing-dddd/lib").mkdir(parents=True)  # a removal cut short
    # a server of an old hub, still running from its environment
    server = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", str(running / "bin/python")]
    )
    try:
        out = cli("local", "gc", env={"TESS_USER_ENVS": str(envs)})
    finally:
        server.kill()
        server.wait()
    assert out.returncode == 0, out.stderr
    assert out.stdout == (
        "removed user environment aaaa (1 MB)\n"
        f"1 environment removed (1 MB); kept 1 in use and 1 used in the last 30 days, in {envs}\n"
    )
    assert not stale.exists() and recent.exists() and running.exists()
    assert sorted(p.name for p in envs.iterdir()) == ["bbbb", "cccc"]
