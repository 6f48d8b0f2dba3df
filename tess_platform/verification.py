"""The verification record: what each release runs and what its checks last found on it.

Plain data in, one decision out. The Dagster layer (and the command line, over Dagster's API)
gathers a release's latest deploy and its check evaluations; this decides which evaluations
are evidence. An evaluation counts only if a check *executed* and states the release_hash it
found serving: a check planned in a run that never reached the hub is not evidence, and a check
re-executed later (from the UI, by the drift sensor, by promote_prod) counts as soon as it ran.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from .checks import CHECKS, HUB_HEALTHY
from .releases import Release

# check executions read per check: planned rows of runs that never reached the hub come
# first, so this bounds how many such runs in a row the record looks past
HISTORY_DEPTH = 50


@dataclass(frozen=True)
class Deploy:
    """What the pipeline last deployed of a release: its latest materialization."""

    git_sha: str | None
    release_hash: str
    image: str | None
    revision: int | None
    timestamp: float  # when it was recorded: evidence is what checks found after it
    run_id: str = ""


@dataclass(frozen=True)
class Evaluation:
    """One executed check: what it found serving, and whether it passed."""

    check: str
    passed: bool
    release_hash: str | None  # what served when it ran; None: nothing served as deployed
    revision: int | None
    timestamp: float
    run_id: str = ""
    description: str = ""
    drift: str = ""  # how the release differed from its deploy, when that is why it failed


@dataclass(frozen=True)
class ReleaseRecord:
    release: Release
    deployed: Deploy | None
    checks: dict[str, Evaluation] = field(default_factory=dict)  # evidence on `deployed`

    @property
    def verified(self) -> bool:
        return self.deployed is not None and all(
            c in self.checks and self.checks[c].passed for c in CHECKS
        )

    def unverified(self) -> list[str]:
        """Why the deploy is not verified, one reason a check; nothing when it is."""
        revision = self.deployed.revision if self.deployed else None
        reasons = []
        for name in CHECKS:
            found = self.checks.get(name)
            if found is None:
                reasons.append(f"check {name} has not run on revision {revision} since its deploy")
            elif not found.passed:
                reasons.append(f"check {name} failed on revision {revision}: {found.description}")
        return reasons


def release_record(
    release: Release, deployed: Deploy | None, evaluations: list[Evaluation]
) -> ReleaseRecord:
    """The record of a release: per check, the latest evaluation executed since its deploy. A
    pass counts only if the check found that deploy's release_hash serving; a failure always
    counts (whatever served, the deploy is not what answers)."""
    if deployed is None:
        return ReleaseRecord(release, None)
    latest: dict[str, Evaluation] = {}
    for evaluation in sorted(evaluations, key=lambda e: e.timestamp):
        if evaluation.check not in CHECKS or evaluation.timestamp < deployed.timestamp:
            continue
        if evaluation.passed and evaluation.release_hash != deployed.release_hash:
            continue
        latest[evaluation.check] = evaluation
    return ReleaseRecord(release, deployed, latest)


@dataclass(frozen=True)
class Verify:
    """A verification the record needs: which checks to run on a release, and why."""

    checks: tuple[str, ...]
    reason: str
    marker: str  # the same need is asked for once


def needs_verification(
    record: ReleaseRecord, drift: str | None, unexecuted: list[str]
) -> Verify | None:
    """Whether a release's checks must run again so that the record (and the UI) tell the
    truth about what serves: it drifted since its checks last said so; the latest planned
    checks never executed (their run ended before reaching the hub: the UI would show a
    healthy hub's checks as failed); or no check ran since its deploy (a rollback, a crash)."""
    deployed = record.deployed
    if deployed is None:
        return None
    if drift:
        told = record.checks.get(HUB_HEALTHY)
        if told is not None and told.drift == drift:
            return None
        return Verify((HUB_HEALTHY,), f"drift: {drift}", f"drift:{deployed.run_id}:{drift}")
    if unexecuted:
        return Verify(
            tuple(CHECKS),
            f"its checks planned in run {unexecuted[0]} never ran",
            f"unexecuted:{unexecuted[0]}",
        )
    if any(name not in record.checks for name in CHECKS):
        return Verify(
            tuple(CHECKS),
            f"no check ran on revision {deployed.revision} since its deploy",
            f"deploy:{deployed.run_id}:{deployed.timestamp:.3f}",
        )
    return None


def summary(record: ReleaseRecord, serving: int | None) -> str:
    """One line for an operator: what the record says of a release, against the revision
    that serves (`local status`)."""
    deployed = record.deployed
    if deployed is None:
        return "record: never deployed by the pipeline"
    what = f"revision {deployed.revision} ({(deployed.git_sha or '?')[:12]})"
    if record.verified:
        line = f"verified: {what}: " + ", ".join(
            f"{name} passed at {when(e.timestamp)}" for name, e in record.checks.items()
        )
    else:
        line = f"not verified: {what}: " + "; ".join(record.unverified())
    if serving != deployed.revision:
        line += f"; but revision {serving} serves: drift, which release_drift_sensor checks"
    return line


def when(timestamp: float) -> str:
    """A moment as the record shows it to operators."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
