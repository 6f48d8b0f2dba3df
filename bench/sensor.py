"""staging_branch_sensor on a TESS_REPO with 5,000 commits: the cost of a tick when nothing
moved and when a merge arrived, and the latency from a push to `staging` until both staging
hubs are healthy under `dagster dev`, against its floor (the same deploy run on its own).
Prints one JSON line last.

    .venv/bin/python bench/sensor.py [--commits 5000] [--idle-ticks 20]
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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from conftest import Site, stop_everything  # noqa: E402


def grow_history(site: Site, commits: int) -> None:
    """`commits` docs-only commits on staging, through git fast-import (seconds, not minutes)."""
    head = site.head("staging")
    stream = []
    for n in range(commits):
        body = f"# changelog entry {n}\n".encode()
        stream += [
            b"commit refs/heads/staging",
            f"committer TESS Ops <ops@tess.test> {1700000000 + n} +0000".encode(),
            b"data 7",
            b"history",
        ]
        if n == 0:
            stream.append(b"from " + head.encode())
        stream += [b"M 644 inline docs/changelog.md", f"data {len(body)}".encode(), body]
    data = b"\n".join(stream) + b"\n"
    subprocess.run(
        ["git", "fast-import", "--quiet", "--force"], cwd=site.repo.path, input=data, check=True
    )
    site.repo.git("checkout", "-q", "-f", "staging")


def tick(site: Site, cursor: str | None):
    from dagster import build_sensor_context

    from tess_dagster.definitions import defs

    staging_branch_sensor = defs.get_sensor_def("staging_branch_sensor")

    context = build_sensor_context(instance=site.instance, cursor=cursor, definitions=defs)
    started = time.perf_counter()
    data = staging_branch_sensor.evaluate_tick(context)
    return time.perf_counter() - started, data


def both_hubs_change(site: Site, n: int) -> str:
    site.repo.edit_yaml(
        "hub_config/values.yaml", lambda d: d["singleuser"].update(startTimeout=400 + n)
    )
    return site.repo.commit(f"all hubs: start timeout {400 + n} s")


def healthy_at(site: Site, sha: str) -> bool:
    import requests
    from dagster import AssetKey

    for d in ("tess_public", "tess_private"):
        mat = site.latest(AssetKey(["staging", f"{d}_staging_release"]))
        if mat is None or mat.metadata["git_sha"].value != sha:
            return False
        try:
            if not requests.get(mat.metadata["url"].value + "hub/health", timeout=2).ok:
                return False
        except requests.RequestException:
            return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--commits", type=int, default=5000)
    parser.add_argument("--idle-ticks", type=int, default=20)
    args = parser.parse_args()
    from tess_dagster.definitions import defs

    staging_branch_sensor = defs.get_sensor_def("staging_branch_sensor")

    interval = staging_branch_sensor.minimum_interval_seconds
    tmp = Path(tempfile.mkdtemp(prefix="tess-bench-"))
    site = Site(tmp)
    os.environ.update(site.env)
    dev = None
    try:
        grow_history(site, args.commits)
        # the baseline: everything deployed at the head, as after a first tick
        _, first = tick(site, None)
        (request,) = first.run_requests
        assert site.run("deploy_staging", request.tags).success
        cursor = first.cursor

        idle = [tick(site, cursor)[0] for _ in range(args.idle_ticks)]
        merges = []
        for n in range(3):
            both_hubs_change(site, n)
            elapsed, data = tick(site, cursor)
            assert len(data.run_requests) == 1
            merges.append(elapsed)
        floor_sha = both_hubs_change(site, 3)
        started = time.perf_counter()
        assert site.run("deploy_staging", {"tess/git_sha": floor_sha}).success
        floor = time.perf_counter() - started

        # dagster dev: the daemon ticks the sensor; the UI and the daemon share DAGSTER_HOME
        shutil.copy(ROOT / "dagster.yaml", site.dagster_home / "dagster.yaml")
        env = {**os.environ, "DAGSTER_HOME": str(site.dagster_home)}
        with open(tmp / "dagster-dev.log", "wb") as log:  # the child keeps its own copy
            dev = subprocess.Popen(
                [str(ROOT / ".venv/bin/dagster"), "dev", "-w", "workspace.yaml", "-p", "3999"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        deadline = time.monotonic() + 600
        while not healthy_at(site, floor_sha):  # the sensor's first tick catches up
            assert time.monotonic() < deadline and dev.poll() is None
            time.sleep(1)
        time.sleep(interval)  # let the daemon settle into its tick rhythm
        sha = both_hubs_change(site, 4)
        pushed = time.perf_counter()
        while not healthy_at(site, sha):
            assert time.perf_counter() - pushed < 600 and dev.poll() is None
            time.sleep(0.25)
        push_to_healthy = time.perf_counter() - pushed
    finally:
        if dev is not None:
            os.killpg(dev.pid, 15)
            dev.wait(60)
        stop_everything(site.home)
        shutil.rmtree(tmp, ignore_errors=True)
    print(
        json.dumps(
            {
                "commits": args.commits,
                "idle_tick_s": round(statistics.median(idle), 4),
                "merge_tick_s": round(statistics.median(merges), 3),
                "push_to_healthy_s": round(push_to_healthy, 2),
                "floor_s": round(floor, 2),
                "sensor_interval_s": interval,
                "budget_s": round(interval + 1.3 * floor, 2),
                "within_budget": push_to_healthy <= interval + 1.3 * floor,
            }
        )
    )


if __name__ == "__main__":
    main()
