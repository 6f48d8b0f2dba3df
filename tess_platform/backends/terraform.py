"""The terraform CLI, driven the way the aws target needs it: init, a saved plan that is
summarised and checked, then exactly that plan applied, and the outputs read back.

Nothing here approves anything on its own: `apply` only ever applies a saved plan (which needs
no approval flag), and `check_stateful` refuses a plan that destroys or replaces a stateful
resource unless the caller says the operator approved it.

A saved plan's JSON holds every value terraform knows, sensitive ones included, so it is read
into a `PlanSummary` (addresses and actions only) and never kept or logged.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..markdown import cell, code
from ..settings import tool_environment
from ..tags import APPROVE_DESTROY_TAG

# Destroying or replacing one of these loses data or takes every hub down.
# The control plane (its database, logs bucket, key's secret, namespace and the nodes it runs
# on) is the pipeline's own ground: a run must not take it away from under itself.
STATEFUL_TYPES = frozenset(
    {
        "aws_eks_cluster",
        "aws_eks_node_group",
        "aws_efs_file_system",
        "aws_ecr_repository",
        "aws_db_instance",
        "aws_s3_bucket",
        "aws_secretsmanager_secret",
        "kubernetes_namespace_v1",
    }
)
APPROVE_WORDS = frozenset({"true", "yes"})
MIN_DIGEST_PREFIX = 12  # an approval may quote the digest's first characters only

STDERR_TAIL = 40  # lines of terraform's output kept in an error
INTERRUPT_GRACE = 300.0  # seconds terraform gets after SIGINT to write state and unlock

# Display order: what loses something first.
ACTIONS = ("delete", "replace", "forget", "update", "create")
ACTION_LABEL = {
    "delete": "destroy",
    "replace": "replace",
    "forget": "forget",
    "update": "change",
    "create": "add",
}


class TerraformError(RuntimeError):
    """terraform failed, or a plan was refused; the message says what and why."""


@dataclass(frozen=True)
class ResourceChange:
    address: str
    type: str
    action: str  # one of ACTIONS
    reason: str | None = None  # terraform's action_reason, e.g. replace_because_cannot_update
    deposed: str | None = None  # a deposed object left by a failed create-before-destroy

    @property
    def label(self) -> str:
        return f"{self.address} (deposed {self.deposed})" if self.deposed else self.address


@dataclass(frozen=True)
class PlanSummary:
    """What a saved plan would do, by resource address; no attribute values."""

    has_changes: bool
    resources: tuple[ResourceChange, ...] = ()
    outputs: tuple[str, ...] = ()  # names of outputs the plan changes
    digest: str = ""

    def _with(self, action: str) -> list[str]:
        return [r.label for r in self.resources if r.action == action]

    @property
    def adds(self) -> list[str]:
        return self._with("create")

    @property
    def changes(self) -> list[str]:
        return self._with("update")

    @property
    def destroys(self) -> list[str]:
        return self._with("delete")

    @property
    def replaces(self) -> list[str]:
        return self._with("replace")

    def counts(self) -> dict[str, int]:
        return {ACTION_LABEL[a]: len(self._with(a)) for a in reversed(ACTIONS)}

    def headline(self) -> str:
        if not self.has_changes:
            return "No changes: the infrastructure matches the configuration."
        counts = self.counts()
        parts = [f"{counts['add']} to add", f"{counts['change']} to change"]
        parts += [f"{counts['replace']} to replace", f"{counts['destroy']} to destroy"]
        if counts["forget"]:
            parts.append(f"{counts['forget']} to forget")
        if self.outputs:
            parts.append(f"{len(self.outputs)} output(s) to change")
        return "Plan: " + ", ".join(parts) + "."

    def markdown(self) -> str:
        """A table of every change, for the Dagster UI."""
        lines = [f"**{self.headline()}**"]
        if self.digest:
            lines.append(f"\nPlan digest: `{self.digest}`")
        if self.resources:
            lines += ["", "| action | resource | type | reason |", "|---|---|---|---|"]
            order = {a: i for i, a in enumerate(ACTIONS)}
            for r in sorted(self.resources, key=lambda r: (order[r.action], r.label)):
                reason = cell(r.reason.replace("_", " ")) if r.reason else ""
                lines.append(
                    f"| {ACTION_LABEL[r.action]} | {code(r.label)} | `{r.type}` | {reason} |"
                )
        if self.outputs:
            lines += ["", "Outputs changing: " + ", ".join(code(o) for o in self.outputs)]
        return "\n".join(lines) + "\n"


def _action(actions: Iterable[str]) -> str | None:
    acts = set(actions)
    if "delete" in acts and "create" in acts:
        return "replace"  # delete-then-create or create-then-delete: the object is new
    for name in ("delete", "forget", "update", "create"):
        if name in acts:
            return name
    return None  # no-op, read (data sources)


def _changed_resources(plan_json: Mapping[str, Any]) -> list[ResourceChange]:
    changes = []
    for rc in plan_json.get("resource_changes") or []:
        action = _action(rc.get("change", {}).get("actions", []))
        if action is None or rc.get("mode", "managed") != "managed":
            continue
        changes.append(
            ResourceChange(
                address=rc["address"],
                type=rc.get("type", ""),
                action=action,
                reason=rc.get("action_reason"),
                deposed=rc.get("deposed"),
            )
        )
    return changes


def _changed_outputs(plan_json: Mapping[str, Any]) -> list[str]:
    outputs = plan_json.get("output_changes") or {}
    return sorted(n for n, c in outputs.items() if _action(c.get("actions", [])) is not None)


def plan_digest(plan_json: Mapping[str, Any]) -> str:
    """A digest of what a plan does (addresses, actions, reasons; no values), so that an
    approval of one plan matches a re-plan that does the same, and nothing else."""
    what = [
        [r.address, r.deposed, r.action, r.reason]
        for r in sorted(_changed_resources(plan_json), key=lambda r: (r.address, r.deposed or ""))
    ]
    doc = {"resources": what, "outputs": _changed_outputs(plan_json)}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def summarize(plan_json: Mapping[str, Any], has_changes: bool | None = None) -> PlanSummary:
    """The summary of `terraform show -json PLAN`; `has_changes` from plan's exit code if
    known, else from whether terraform calls the plan applyable."""
    resources = tuple(_changed_resources(plan_json))
    outputs = tuple(_changed_outputs(plan_json))
    if has_changes is None:
        applyable = plan_json.get("applyable")
        has_changes = bool(applyable) if applyable is not None else bool(resources or outputs)
    return PlanSummary(has_changes, resources, outputs, plan_digest(plan_json))


def approved_by_tag(tag_value: str | None, summary: PlanSummary) -> bool:
    """Whether the run tag tess/approve_destroy approves this plan: "true" or "yes" approve
    any plan; the plan's digest (or its first 12+ characters) approves this one only."""
    value = (tag_value or "").strip().lower()
    if value in APPROVE_WORDS:
        return True
    return len(value) >= MIN_DIGEST_PREFIX and summary.digest.startswith(value)


def check_stateful(
    summary: PlanSummary,
    stateful_types: Iterable[str] = STATEFUL_TYPES,
    approved: bool = False,
) -> list[ResourceChange]:
    """Refuse a plan that destroys or replaces a stateful resource, unless approved.

    Returns the stateful destroys and replacements (empty for a safe plan) so an approved run
    can say what it was allowed to do."""
    types = set(stateful_types)
    risky = [r for r in summary.resources if r.action in ("delete", "replace") and r.type in types]
    if risky and not approved:
        listed = "\n".join(f"  - {ACTION_LABEL[r.action]} {r.label}" for r in risky)
        raise TerraformError(
            "the terraform plan would destroy or replace stateful resources, so it was not "
            f"applied:\n{listed}\n"
            f"If this is intended, re-run with the run tag {APPROVE_DESTROY_TAG}=true (or "
            f"{APPROVE_DESTROY_TAG}={summary.digest[:MIN_DIGEST_PREFIX]} to approve this plan "
            "only)."
        )
    return risky


def _tail(text: str, lines: int = STDERR_TAIL) -> str:
    kept = text.strip().splitlines()[-lines:]
    return "\n".join(kept)


def output_values(raw: Mapping[str, Any], sensitive: bool = True) -> dict[str, Any]:
    """Name to value, from what `terraform output -json` prints; without the outputs infra/
    marks `sensitive` unless `sensitive` (what may be shown: metadata, logs)."""
    return {
        name: out.get("value") for name, out in raw.items() if sensitive or not out.get("sensitive")
    }


class Terraform:
    """One terraform working directory (a root module).

    `env` is added to this process's environment (credentials, TF_VAR_*). `data_dir` moves
    `.terraform` out of `workdir`, for a workdir that is read-only (a git snapshot)."""

    def __init__(
        self,
        workdir: Path,
        env: dict[str, str] | None = None,
        binary: str = "terraform",
        *,
        data_dir: Path | None = None,
        timeout: float = 3600.0,
        lock_timeout: str = "10m",
    ) -> None:
        self.workdir = Path(workdir)
        self.env = dict(env or {})
        self.binary = binary
        self.data_dir = data_dir
        self.timeout = timeout  # EKS creation alone takes ~15 minutes
        self.lock_timeout = lock_timeout  # wait for a concurrent run's state lock, then fail

    def init(self, backend_config: dict[str, str] | None = None) -> None:
        """`terraform init`; with `backend_config`, the backend's settings (bucket, key, region)
        as -backend-config pairs. Without, the module's own backend (local state if none)."""
        args = ["init", "-input=false"]
        if backend_config:
            # reconfigure: take these settings as given, never migrate state between backends
            args.append("-reconfigure")
            args += [f"-backend-config={k}={v}" for k, v in sorted(backend_config.items())]
        if (self.workdir / ".terraform.lock.hcl").exists():
            args.append("-lockfile=readonly")  # providers exactly as committed
        self._run(args)

    def plan(self, out: Path, var_file: Path | None = None) -> PlanSummary:
        """Plan into the file `out` and summarise it."""
        out = Path(out).resolve()
        args = ["plan", "-input=false", f"-lock-timeout={self.lock_timeout}"]
        args += ["-detailed-exitcode", f"-out={out}"]
        if var_file is not None:
            args.append(f"-var-file={Path(var_file).resolve()}")
        result = self._run(args, ok=(0, 2))  # 2: the plan has changes
        return summarize(self._show_json(out), has_changes=result.returncode == 2)

    def show(self, plan: Path) -> PlanSummary:
        """The summary of a saved plan."""
        return summarize(self._show_json(Path(plan).resolve()))

    def apply(self, plan: Path) -> bool:
        """Apply exactly the saved plan; a plan without changes applies nothing. True if it
        applied. Call `check_stateful` on the plan's summary first."""
        plan = Path(plan).resolve()
        if not self.show(plan).has_changes:
            return False
        # A saved plan is the approval: terraform applies it without asking, and refuses it
        # if the state moved on since it was made.
        self._run(["apply", "-input=false", f"-lock-timeout={self.lock_timeout}", str(plan)])
        return True

    def outputs(self) -> dict[str, Any]:
        """What `terraform output -json` prints: each output's value and whether infra/ marks it
        sensitive (read with `output_values`)."""
        return json.loads(self._run(["output", "-json"]).stdout or "{}")

    def _show_json(self, plan: Path) -> dict[str, Any]:
        result = self._run(["show", "-json", str(plan)])
        try:
            return json.loads(result.stdout)
        except json.JSONDecodeError as e:
            raise TerraformError(f"terraform show -json {plan.name}: not JSON ({e})") from None

    def _environ(self) -> dict[str, str]:
        # TF_CLI_ARGS* would slip flags into every command: automation runs what it says
        env = {k: v for k, v in tool_environment().items() if not k.startswith("TF_CLI_ARGS")}
        env.update(self.env)
        env.update({"TF_IN_AUTOMATION": "1", "TF_INPUT": "0", "CHECKPOINT_DISABLE": "1"})
        if self.data_dir is not None:
            env["TF_DATA_DIR"] = str(self.data_dir)
        return env

    def _run(self, args: list[str], ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess:
        binary = shutil.which(self.binary) or self.binary
        cmd = [binary, args[0], "-no-color", *args[1:]]
        what = f"terraform {args[0]}"
        try:
            proc = subprocess.Popen(
                cmd,
                cwd=self.workdir,
                env=self._environ(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        except FileNotFoundError:
            raise TerraformError(f"{what}: {self.binary} is not installed") from None
        except NotADirectoryError:
            raise TerraformError(f"{what}: {self.workdir} is not a directory") from None
        try:
            stdout, stderr = proc.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            # SIGINT, not SIGKILL: terraform stops its operations, writes state, and unlocks
            proc.send_signal(signal.SIGINT)
            try:
                stdout, stderr = proc.communicate(timeout=INTERRUPT_GRACE)
            except subprocess.TimeoutExpired:
                proc.kill()
                stdout, stderr = proc.communicate()
            raise TerraformError(
                f"{what} took longer than {self.timeout:.0f}s and was interrupted "
                f"in {self.workdir}:\n{_tail(stderr or stdout)}"
            ) from None
        if proc.returncode not in ok:
            raise TerraformError(
                f"{what} failed (exit {proc.returncode}) in {self.workdir}:\n"
                f"{_tail(stderr or stdout)}"
            )
        return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)
