"""deploy_staging of N hubs on the local target, against its floor, measured side by side.

For each N, a repository with N hub folders (the two shipped hubs, and workshop hubs beside
them) and the tests' small user image and one-line smoke test, so that the ratio weighs the
pipeline, not the science stack's imports. The floor: the same N hubs started by the
supervisor alone, in parallel, with no Dagster, and checked as the pipeline checks them
(hub_healthy, server_spawns, kernel_runs), the user environment built already (a cache hit,
as for every deploy but an image change). The deploy: a deploy_staging run as a run worker
executes it (its executor, each step a process of its own, at most max(N,
TESS_DEPLOY_CONCURRENCY) at once) on an instance with the repository's dagster.yaml (each hub
step claims its release's pool slot), from a git snapshot, values, image render, releases and
checks. Each round deploys a commit of its own (a merge) with the caches a running platform
keeps (one TESS_CACHE: the git mirror, the pulled chart, the image's rendering; the user
environment built; one Dagster instance, with the runs before it), to empty state folders.
Apart: the cold build of the shipped image's environment. Prints one JSON line last.

    .venv/bin/python bench/deploy_local.py [--hubs 2,6] [--rounds 7]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from conftest import CHART_DIR, add_hub, free_port, make_repo, passable  # noqa: E402

# the deploy, in a process of its own: the code location loads for this repository's hubs, on
# an instance with the repository's dagster.yaml (as `local up` makes: its pools too)
RUN = """
import shutil, sys, time
from pathlib import Path
from dagster import DagsterInstance, execute_job
from dagster._core.definitions.reconstruct import ReconstructableRepository
repo = ReconstructableRepository.for_module("tess_dagster.definitions", "defs", sys.argv[2])
job = repo.get_reconstructable_job("deploy_staging")
shutil.copy(Path(sys.argv[2]) / "dagster.yaml", sys.argv[1])
with DagsterInstance.from_config(sys.argv[1]) as instance:
    started = time.perf_counter()
    bound = {"execution": {"config": {"max_concurrent": int(sys.argv[4])}}}
    result = execute_job(job, instance, run_config=bound, tags={"tess/git_sha": sys.argv[3]})
    elapsed = time.perf_counter() - started
assert result.success, [e.message for e in result.all_events if e.is_failure]
print(elapsed)
"""


def environment(tmp: Path, repo_path: Path, name: str) -> dict[str, str]:
    env = {
        **os.environ,
        "TESS_TARGET": "local",
        "TESS_REPO": str(repo_path),
        "TESS_LOCAL_HOME": str(tmp / name / "home"),
        # one for all, as one machine's platform keeps them: each deploy fetches its commit
        # into the mirror and extracts it; the chart, rendering and environment are cache hits
        "TESS_CACHE": str(tmp / "cache"),
        "TESS_CHART_DIR": str(CHART_DIR),
        "TESS_USER_ENVS": str(tmp / "user-envs"),
    }
    env.pop("TESS_GIT_CRYPT_KEY", None)
    return env


def floor(tmp: Path, repo_path: Path, sha: str, name: str) -> float:
    from tess_platform import health
    from tess_platform.checks import SMOKE_TEST
    from tess_platform.platform import Platform
    from tess_platform.settings import Settings

    platform = Platform(Settings.from_env(environment(tmp, repo_path, name)))
    snapshot = platform.repo.snapshot(sha)
    tree = platform.tree(snapshot)
    target, supervisor = platform.target, platform.target.supervisor
    image, _ = target.ensure_image(snapshot, log=lambda m: None)  # a cache hit
    prepared = []
    for release in platform.hubs(snapshot).releases("staging"):  # before the clock starts
        values = platform.values(tree, release, image)
        hub, _ = target.hub_config(release, values)
        prepared.append((release, hub, platform.endpoint_for(release, values.merged)))

    smoke = (tree.root / SMOKE_TEST).read_text()

    def start_and_check(item) -> None:
        release, hub, endpoint = item
        supervisor.upgrade(release.name, hub, {}, log=lambda m: None)
        spawn, kernel = target.spawn_timeout, target.kernel_timeout
        assert health.hub_healthy(endpoint).passed
        checked = health.server_checks(endpoint, smoke, spawn, kernel)
        assert all(result.passed for result in checked.values()), checked

    started = time.perf_counter()
    try:
        with ThreadPoolExecutor(len(prepared)) as pool:
            list(pool.map(start_and_check, prepared))
        return time.perf_counter() - started
    finally:
        supervisor.stop_all()  # a failed round leaves no hub running


def deploy(tmp: Path, repo_path: Path, sha: str, name: str, hubs: int) -> float:
    """deploy_staging with its bound at `hubs` steps at once, at least the setting's: each
    hub's steps follow one another, so its N hubs go side by side as the floor's do."""
    from tess_platform.backends.local.supervisor import Supervisor
    from tess_platform.settings import Settings

    env = environment(tmp, repo_path, name)
    instance = tmp / f"dagster-{hubs}"  # one, as `local up` keeps its DAGSTER_HOME
    instance.mkdir(exist_ok=True)
    bound = str(max(hubs, Settings.from_env(env).deploy_concurrency))
    try:
        out = subprocess.run(
            [sys.executable, "-c", RUN, str(instance), str(ROOT), sha, bound],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
    finally:
        Supervisor(Path(env["TESS_LOCAL_HOME"])).stop_all()
    if out.returncode:
        sys.exit(f"deploy_staging failed in {tmp / name}:\n{out.stderr[-4000:]}")
    return float(out.stdout.split()[-1])


def repository(tmp: Path, hubs: int):
    """The shipped hubs, and workshop hubs up to `hubs`."""
    ports = {
        d: {"staging": free_port(), "prod": free_port()} for d in ("tess-public", "tess-private")
    }
    repo = make_repo(tmp / f"repo-{hubs}", ports)
    for n in range(hubs - 2):
        add_hub(repo, f"workshop-{n + 1}", {"staging": free_port(), "prod": free_port()})
    repo.commit(f"{hubs} hubs")
    return repo


def cold_build(tmp: Path) -> float:
    """The shipped image's user environment built where none is (pip's download cache warm),
    as the image asset builds it: what the first deploy of an image change costs, apart from
    the ratios, which start from a built environment as every other deploy does."""
    from tess_platform.platform import Platform
    from tess_platform.settings import Settings

    repo = make_repo(tmp / "repo-shipped-image")
    shutil.rmtree(repo.path / "image")
    shutil.copytree(ROOT / "image", repo.path / "image")
    sha = repo.commit("the shipped image")
    platform = Platform(Settings.from_env(environment(tmp, repo.path, "cold")))
    started = time.perf_counter()
    platform.target.ensure_image(platform.repo.snapshot(sha), log=lambda m: None)
    return round(time.perf_counter() - started, 1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hubs", default="2,6", help="hub counts, comma separated, each >= 2")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    counts = [int(n) for n in args.hubs.split(",")]
    results: dict = {}
    with tempfile.TemporaryDirectory() as name:
        tmp = passable(Path(name))
        results["env_build_cold_s"] = cold_build(tmp)
        for hubs in counts:
            repo = repository(tmp, hubs)
            sha = repo.commit("first merge")
            deploy(tmp, repo.path, sha, f"warm-{hubs}", hubs)  # the mirror, the renderings
            floors, deploys = [], []
            for n in range(args.rounds):  # interleaved: load on the machine hits both alike
                sha = repo.commit(f"floor {n}")
                floors.append(floor(tmp, repo.path, sha, f"floor-{hubs}-{n}"))
                sha = repo.commit(f"merge {n}")  # a commit no process has extracted yet
                deploys.append(deploy(tmp, repo.path, sha, f"deploy-{hubs}-{n}", hubs))
                print(
                    f"{hubs} hubs, round {n}: floor {floors[-1]:.2f} s, deploy {deploys[-1]:.2f} s",
                    file=sys.stderr,
                )
            deploy_s, floor_s = statistics.median(deploys), statistics.median(floors)
            results[str(hubs)] = {
                "deploy_s": round(deploy_s, 3),
                "floor_s": round(floor_s, 3),
                "ratio": round(deploy_s / floor_s, 3),
                # each round's deploy ran right after its floor: a slow minute hits both
                "ratio_per_round": round(
                    statistics.median(d / f for d, f in zip(deploys, floors, strict=True)), 3
                ),
            }
    cold = results.pop("env_build_cold_s")
    print(json.dumps({"hubs": results, "rounds": args.rounds, "env_build_cold_s": cold}))


if __name__ == "__main__":
    main()
