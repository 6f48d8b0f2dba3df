"""`tess-platform plan` for a one-hub change on a TESS_REPO with 5,000 commits (bench/sensor.py's
history), as a whole process, against `tess-platform validate` of the same tree, alternated in
one run. Prints one JSON line last: both medians and the ratio (target: at most 1.5).

    .venv/bin/python bench/plan.py [--commits 5000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]

from conftest import Site  # noqa: E402
from sensor import grow_history  # noqa: E402


def timed(cmd: list[str], cwd: Path, env: dict[str, str], ok: tuple[int, ...]) -> float:
    started = time.perf_counter()
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if out.returncode not in ok:
        raise SystemExit(f"{' '.join(cmd[1:])}: exit {out.returncode}\n{out.stdout}{out.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--commits", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-plan-") as tmp:
        site = Site(Path(tmp))
        grow_history(site, args.commits)
        site.repo.edit_yaml(  # the pull request: one hub's change, in the working tree
            "hub_config/tess-public/common.yaml",
            lambda d: d["cull"].update(timeout=d["cull"]["timeout"] + 60),
        )
        env = {**os.environ, **site.env}
        cli = [str(ROOT / ".venv/bin/tess-platform")]
        plan = [*cli, "plan", "--base", "staging"]
        validate = [*cli, "validate"]
        timed(plan, site.repo.path, env, (2,))  # the first run fills the caches for both
        plans, validates = [], []
        for _ in range(args.rounds):
            plans.append(timed(plan, site.repo.path, env, (2,)))
            validates.append(timed(validate, site.repo.path, env, (0,)))
        plan_s, validate_s = statistics.median(plans), statistics.median(validates)
        print(
            json.dumps(
                {
                    "commits": args.commits,
                    "plan_s": round(plan_s, 2),
                    "validate_s": round(validate_s, 2),
                    "ratio": round(plan_s / validate_s, 2),
                    "target": 1.5,
                }
            )
        )


if __name__ == "__main__":
    main()
