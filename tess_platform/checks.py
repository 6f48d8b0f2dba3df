"""The release checks: their names, what each proves, and what one found. How they run
against a hub is health's; this is what the assets, the promotion gate and the verification
record agree on, with nothing to import."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SMOKE_TEST = "checks/smoke_test.py"  # what kernel_runs runs: science code, offline


@dataclass
class CheckResult:
    passed: bool
    description: str
    details: dict[str, Any] = field(default_factory=dict)


HUB_HEALTHY, SERVER_SPAWNS, KERNEL_RUNS = "hub_healthy", "server_spawns", "kernel_runs"
# the asset checks of every release, by name: what each proves
CHECKS = {
    HUB_HEALTHY: "The hub runs what the pipeline deployed, answers /hub/health and its REST API.",
    SERVER_SPAWNS: "A check user's server starts, answers its API, and is stopped.",
    KERNEL_RUNS: f"In a check user's server, a kernel runs the repository's {SMOKE_TEST} to "
    "its end.",
}
