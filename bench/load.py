"""What every run worker, sensor process and CLI call pays before it does anything: the code
location's import, against a bare `import dagster`, each as a whole new process, alternated
round by round so that both see the same machine. Prints one JSON line last.

    .venv/bin/python bench/load.py [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMPORTS = {
    "dagster_s": "import dagster",
    "definitions_s": "import tess_dagster.definitions",
    "cli_s": "import tess_platform.cli",
}


def seconds(statement: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", statement], cwd=ROOT, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    for statement in IMPORTS.values():  # warm the file cache: every round reads the same
        seconds(statement)
    times: dict[str, list[float]] = {name: [] for name in IMPORTS}
    for n in range(args.rounds):
        for name, statement in IMPORTS.items():
            times[name].append(seconds(statement))
        print(f"round {n + 1}: " + ", ".join(f"{k} {v[-1]:.2f}" for k, v in times.items()))
    median = {name: statistics.median(values) for name, values in times.items()}
    print(
        json.dumps(
            {
                **{name: round(value, 3) for name, value in median.items()},
                "ratio": round(median["definitions_s"] / median["dagster_s"], 2),
                "target_ratio": 1.3,
                "rounds": args.rounds,
            }
        )
    )


if __name__ == "__main__":
    main()
