"""deploy_staging of both hubs on the local target, against its floor, measured side by side.

The floor: the same two hubs started by the supervisor alone, with no Dagster, and checked
as the pipeline checks them (hub_healthy, server_spawns). The deploy: a deploy_staging run
in a real Dagster instance, from a git snapshot, values, image render, releases and checks.
Each round starts from empty state folders. Prints one JSON line last.

    .venv/bin/python bench/deploy_local.py [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from conftest import CHART_DIR, free_port, make_repo  # noqa: E402


def environment(tmp: Path, repo_path: Path, name: str) -> None:
    os.environ.update(
        TESS_TARGET="local",
        TESS_REPO=str(repo_path),
        TESS_LOCAL_HOME=str(tmp / name / "home"),
        TESS_CACHE=str(tmp / name / "cache"),
        TESS_CHART_DIR=str(CHART_DIR),
    )
    os.environ.pop("TESS_GIT_CRYPT_KEY", None)


def floor(tmp: Path, repo_path: Path, sha: str, n: int) -> float:
    from tess_platform import health
    from tess_platform.backends.local.hub_config import translate
    from tess_platform.platform import Platform
    from tess_platform.releases import all_releases

    environment(tmp, repo_path, f"floor-{n}")
    platform = Platform()
    snapshot = platform.repo.snapshot(sha)
    tree = platform.tree(snapshot)
    image = platform.image_ref(tree)
    target, supervisor = platform.target, platform.target.supervisor
    configs = []
    for release in all_releases("staging"):  # prepared before the clock starts
        values = platform.values(tree, release, image)
        hub = translate(
            values.merged,
            values.overlay_leaves,
            env=release.env,
            state_dir=supervisor.state_dir(release.name),
            homes_dir=target.efs / release.name,
        )
        configs.append((release, hub, platform.endpoint_for(release, values.merged)))
    started = time.perf_counter()
    for release, hub, endpoint in configs:
        supervisor.upgrade(release.name, hub, {}, log=lambda m: None)
        assert health.hub_healthy(endpoint).passed and health.server_spawns(endpoint).passed
    elapsed = time.perf_counter() - started
    supervisor.stop_all()
    return elapsed


def deploy(tmp: Path, repo_path: Path, sha: str, n: int) -> float:
    from dagster import DagsterInstance

    from tess_dagster.definitions import defs
    from tess_platform.backends.local.supervisor import Supervisor

    environment(tmp, repo_path, f"deploy-{n}")
    (tmp / f"deploy-{n}" / "dagster").mkdir(parents=True)
    instance = DagsterInstance.local_temp(str(tmp / f"deploy-{n}" / "dagster"))
    job = defs.resolve_job_def("deploy_staging")
    started = time.perf_counter()
    result = job.execute_in_process(instance=instance, tags={"tess/git_sha": sha})
    elapsed = time.perf_counter() - started
    assert result.success
    Supervisor(Path(os.environ["TESS_LOCAL_HOME"])).stop_all()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    rounds = parser.parse_args().rounds
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        ports = {
            d: {"staging": free_port(), "prod": free_port()}
            for d in ("tess-public", "tess-private")
        }
        repo = make_repo(tmp / "repo", ports)
        sha = repo.commit("bench")
        deploy(tmp, repo.path, sha, -1)  # warm-up: imports, first renders
        floors, deploys = [], []
        for n in range(rounds):  # interleaved, so that load on the machine hits both alike
            floors.append(floor(tmp, repo.path, sha, n))
            deploys.append(deploy(tmp, repo.path, sha, n))
            print(
                f"round {n}: floor {floors[-1]:.2f} s, deploy {deploys[-1]:.2f} s", file=sys.stderr
            )
    deploy_s, floor_s = statistics.median(deploys), statistics.median(floors)
    print(
        json.dumps(
            {
                "deploy_s": round(deploy_s, 3),
                "floor_s": round(floor_s, 3),
                "ratio": round(deploy_s / floor_s, 3),
                "rounds": rounds,
            }
        )
    )


if __name__ == "__main__":
    main()
