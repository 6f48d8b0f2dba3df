"""The terraform wrapper against the real terraform binary, on provider-free modules
(`terraform_data`, local state) written into tmp folders."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pytest
from conftest import PLANTED

from tess_platform.backends.terraform import (
    STATEFUL_TYPES,
    PlanSummary,
    Terraform,
    TerraformError,
    approved_by_tag,
    check_stateful,
    output_values,
    plan_digest,
    summarize,
)
from tess_platform.tags import APPROVE_DESTROY_TAG

TERRAFORM = shutil.which("terraform")
pytestmark = pytest.mark.skipif(TERRAFORM is None, reason="terraform is not installed")

TEST_TYPES = {"terraform_data"}  # stateful for these tests; the defaults are AWS types


def module(trigger: str = "1", greeting: str = "hello", with_b: bool = True) -> str:
    b = f"""
resource "terraform_data" "b" {{
  input            = "bee"
  triggers_replace = ["{trigger}"]
}}
"""
    return f"""
variable "who" {{
  type    = string
  default = "world"
}}

resource "terraform_data" "a" {{
  input = "{greeting} ${{var.who}}"
}}
{b if with_b else ""}
output "greeting" {{
  value = terraform_data.a.output
}}

output "nested" {{
  value = {{ n = 1, list = ["x", "y"], flag = true }}
}}

output "token" {{
  value     = "s3cr3t"
  sensitive = true
}}
"""


class Module:
    def __init__(self, tmp_path: Path, binary: str = "terraform") -> None:
        self.dir = tmp_path / "module"
        self.dir.mkdir()
        self.plans = tmp_path / "plans"
        self.plans.mkdir()
        home = tmp_path / "home"
        home.mkdir()
        cli_config = tmp_path / "terraformrc"
        cli_config.write_text("")
        # terraform's own files stay in tmp too: no home folder, no CLI config of the machine
        env = {"HOME": str(home), "TF_CLI_CONFIG_FILE": str(cli_config)}
        self.tf = Terraform(self.dir, env=env, binary=binary)
        self.count = 0

    def write(self, text: str) -> None:
        (self.dir / "main.tf").write_text(text)

    def plan(self, **kw) -> tuple[PlanSummary, Path]:
        self.count += 1
        out = self.plans / f"{self.count}.tfplan"
        return self.tf.plan(out, **kw), out

    def state(self) -> dict:
        return json.loads((self.dir / "terraform.tfstate").read_text())


@pytest.fixture
def mod(tmp_path: Path) -> Module:
    m = Module(tmp_path)
    m.write(module())
    m.tf.init()
    return m


def applied(m: Module) -> Module:
    summary, plan = m.plan()
    assert m.tf.apply(plan)
    return m


def test_first_plan_adds_and_apply_gives_outputs(mod: Module) -> None:
    summary, plan = mod.plan()
    assert summary.has_changes
    assert sorted(summary.adds) == ["terraform_data.a", "terraform_data.b"]
    assert summary.changes == summary.destroys == summary.replaces == []
    assert summary.counts() == {"add": 2, "change": 0, "forget": 0, "replace": 0, "destroy": 0}
    assert summary.outputs == ("greeting", "nested", "token")
    assert plan.exists()

    assert mod.tf.apply(plan) is True
    outputs = output_values(mod.tf.outputs())
    assert outputs == {
        "greeting": "hello world",
        "nested": {"n": 1, "list": ["x", "y"], "flag": True},
        "token": "s3cr3t",
    }
    # what may be shown (metadata, logs) lacks what infra/ marks sensitive
    assert "token" not in output_values(mod.tf.outputs(), sensitive=False)
    assert {r["name"] for r in mod.state()["resources"]} == {"a", "b"}


def test_plan_summary_keeps_no_values(mod: Module) -> None:
    summary, _ = mod.plan()
    assert "s3cr3t" not in repr(summary)
    assert "s3cr3t" not in summary.markdown()


def test_unchanged_plan_has_no_changes_and_applies_nothing(mod: Module) -> None:
    applied(mod)
    serial = mod.state()["serial"]
    summary, plan = mod.plan()
    assert not summary.has_changes
    assert summary.resources == () and summary.outputs == ()
    assert summary.adds == summary.changes == summary.destroys == summary.replaces == []
    assert "No changes" in summary.markdown()
    assert mod.tf.apply(plan) is False
    assert mod.state()["serial"] == serial
    assert mod.tf.show(plan).has_changes is False


def test_changed_input_is_an_update(mod: Module) -> None:
    applied(mod)
    mod.write(module(greeting="goodbye"))
    summary, plan = mod.plan()
    assert summary.changes == ["terraform_data.a"]
    assert summary.destroys == summary.replaces == summary.adds == []
    assert check_stateful(summary, TEST_TYPES) == []  # an update loses nothing
    mod.tf.apply(plan)
    assert output_values(mod.tf.outputs())["greeting"] == "goodbye world"


def test_replacement_is_refused_unless_approved(mod: Module) -> None:
    applied(mod)
    before = next(r for r in mod.state()["resources"] if r["name"] == "b")
    mod.write(module(trigger="2"))
    summary, plan = mod.plan()
    assert summary.replaces == ["terraform_data.b"]
    assert summary.adds == summary.destroys == summary.changes == []

    with pytest.raises(TerraformError) as refused:
        check_stateful(summary, TEST_TYPES, approved=False)
    message = str(refused.value)
    assert "replace terraform_data.b" in message
    assert f"re-run with the run tag {APPROVE_DESTROY_TAG}=true" in message
    assert "terraform_data.a" not in message

    # the defaults are the AWS stateful types: terraform_data is not one of them
    assert "terraform_data" not in STATEFUL_TYPES
    assert check_stateful(summary) == []

    risky = check_stateful(summary, TEST_TYPES, approved=True)
    assert [r.address for r in risky] == ["terraform_data.b"]
    assert mod.tf.apply(plan)
    after = next(r for r in mod.state()["resources"] if r["name"] == "b")
    assert after["instances"][0]["attributes"]["id"] != before["instances"][0]["attributes"]["id"]


def test_destroy_is_refused_unless_approved(mod: Module) -> None:
    applied(mod)
    mod.write(module(with_b=False))
    summary, plan = mod.plan()
    assert summary.destroys == ["terraform_data.b"]
    assert summary.adds == summary.replaces == summary.changes == []
    with pytest.raises(TerraformError, match=r"destroy terraform_data\.b"):
        check_stateful(summary, TEST_TYPES)
    check_stateful(summary, TEST_TYPES, approved=True)
    assert mod.tf.apply(plan)
    assert [r["name"] for r in mod.state()["resources"]] == ["a"]


def test_markdown_lists_every_address(mod: Module) -> None:
    applied(mod)
    text = module(trigger="2", with_b=True).replace('"terraform_data" "a"', '"terraform_data" "c"')
    mod.write(text.replace("terraform_data.a.output", "terraform_data.c.output"))
    summary, _ = mod.plan()
    assert summary.adds == ["terraform_data.c"]
    assert summary.destroys == ["terraform_data.a"]
    assert summary.replaces == ["terraform_data.b"]
    md = summary.markdown()
    assert "Plan: 1 to add, 0 to change, 1 to replace, 1 to destroy" in md
    assert "| action | resource | type | reason |" in md
    rows = [line for line in md.splitlines() if line.startswith("| ") and "`" in line]
    assert [row.split("|")[1].strip() for row in rows] == ["destroy", "replace", "add"]
    for address in ("terraform_data.a", "terraform_data.b", "terraform_data.c"):
        assert f"`{address}`" in md
    assert summary.digest in md


def test_digest_names_what_a_plan_does(mod: Module) -> None:
    applied(mod)
    mod.write(module(trigger="2"))
    first, _ = mod.plan()
    again, _ = mod.plan()
    assert first.digest == again.digest and len(first.digest) == 64
    mod.write(module(trigger="2", with_b=True, greeting="hi"))
    other, _ = mod.plan()
    assert other.digest != first.digest

    assert approved_by_tag("true", first) and approved_by_tag(" YES ", first)
    assert approved_by_tag(first.digest, first)
    assert approved_by_tag(first.digest[:12], first)
    assert not approved_by_tag(first.digest[:6], first)  # too short to name one plan
    assert not approved_by_tag(other.digest, first)
    assert not approved_by_tag(None, first) and not approved_by_tag("no", first)


def test_summarize_actions() -> None:
    def rc(address: str, *actions: str, **extra) -> dict:
        return {
            "address": address,
            "mode": "managed",
            "type": address.split(".")[0],
            "change": {"actions": list(actions)},
            **extra,
        }

    plan = {
        "applyable": True,
        "resource_changes": [
            rc("aws_efs_file_system.homes", "create", "delete"),
            rc("aws_ecr_repository.r", "delete", "create", action_reason="replace_by_request"),
            rc("aws_eks_cluster.this", "delete"),
            rc("aws_eks_cluster.this", "delete", deposed="00ab"),
            rc("aws_iam_role.x", "update"),
            rc("aws_vpc.v", "no-op"),
            {**rc("data.aws_partition.p", "read"), "mode": "data"},
        ],
        "output_changes": {"a": {"actions": ["no-op"]}, "b": {"actions": ["update"]}},
    }
    summary = summarize(plan)
    assert summary.has_changes
    assert summary.replaces == ["aws_efs_file_system.homes", "aws_ecr_repository.r"]
    assert summary.destroys == ["aws_eks_cluster.this", "aws_eks_cluster.this (deposed 00ab)"]
    assert summary.changes == ["aws_iam_role.x"] and summary.adds == []
    assert summary.outputs == ("b",)
    assert summary.digest == plan_digest(plan)
    with pytest.raises(TerraformError) as refused:
        check_stateful(summary)
    for name in ("aws_efs_file_system.homes", "aws_ecr_repository.r", "aws_eks_cluster.this"):
        assert name in str(refused.value)
    assert "aws_iam_role.x" not in str(refused.value)
    assert "replace by request" in summary.markdown()
    assert not summarize({"applyable": False, "resource_changes": []}).has_changes


def test_var_file(mod: Module, tmp_path: Path) -> None:
    var_file = tmp_path / "test.tfvars"
    var_file.write_text('who = "tess"\n')
    _, plan = mod.plan(var_file=var_file)
    mod.tf.apply(plan)
    assert output_values(mod.tf.outputs())["greeting"] == "hello tess"


def test_apply_runs_exactly_the_saved_plan(mod: Module) -> None:
    """A plan made before the state moved on is stale: terraform refuses it, nothing is
    re-planned behind the operator's back."""
    _, first = mod.plan()
    _, second = mod.plan()
    mod.tf.apply(first)
    with pytest.raises(TerraformError, match="(?i)stale"):
        mod.tf.apply(second)


def test_outputs_before_any_apply_are_empty(mod: Module) -> None:
    assert output_values(mod.tf.outputs()) == {}


def test_syntax_error_carries_terraforms_message(tmp_path: Path) -> None:
    m = Module(tmp_path)
    m.write('resource "terraform_data" "a" {\n  input = \n}\n')
    with pytest.raises(TerraformError) as failed:
        m.tf.init()
    message = str(failed.value)
    assert "terraform init failed" in message
    assert "Invalid expression" in message and "main.tf line 2" in message


def test_plan_error_carries_terraforms_message(mod: Module) -> None:
    mod.write('output "x" {\n  value = var.missing\n}\n')
    with pytest.raises(TerraformError) as failed:
        mod.plan()
    assert "terraform plan failed" in str(failed.value)
    assert "Reference to undeclared input variable" in str(failed.value)


def test_missing_binary(tmp_path: Path) -> None:
    m = Module(tmp_path, binary=str(tmp_path / "no-such-terraform"))
    with pytest.raises(TerraformError, match="not installed"):
        m.tf.init()


def test_command_lines(tmp_path: Path) -> None:
    """What runs: automation settings, no prompts, and never -auto-approve."""
    log = tmp_path / "argv.log"
    wrapper = tmp_path / "terraform-logged"
    wrapper.write_text(
        f'#!/bin/sh\necho "$TF_IN_AUTOMATION $TF_INPUT $* " >> "{log}"\nexec "{TERRAFORM}" "$@"\n'
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    m = Module(tmp_path, binary=str(wrapper))
    m.write(module())
    m.tf.init()
    summary, plan = m.plan()
    m.tf.apply(plan)
    m.tf.outputs()
    lines = log.read_text().splitlines()
    assert all(line.startswith("1 0 ") for line in lines)
    assert not any("auto-approve" in line for line in lines)
    verbs = [line.split()[2] for line in lines]
    assert verbs == ["init", "plan", "show", "show", "apply", "output"]
    plan_line, apply_line = lines[1], lines[4]
    assert "-input=false" in plan_line and "-detailed-exitcode" in plan_line
    assert f"-out={plan}" in plan_line
    assert apply_line.rstrip().endswith(str(plan)) and "-input=false" in apply_line


def test_backend_config_pairs(tmp_path: Path) -> None:
    """Backend settings go to init as -backend-config pairs (a local backend here, which
    takes a path)."""
    m = Module(tmp_path)
    m.write('terraform {\n  backend "local" {}\n}\n' + module())
    state = tmp_path / "elsewhere.tfstate"
    m.tf.init({"path": str(state)})
    _, plan = m.plan()
    m.tf.apply(plan)
    assert state.exists() and not (m.dir / "terraform.tfstate").exists()
    assert output_values(m.tf.outputs())["greeting"] == "hello world"


def test_data_dir_moves_dot_terraform(tmp_path: Path) -> None:
    m = Module(tmp_path)
    m.write('terraform {\n  backend "local" {}\n}\n' + module())
    data_dir = tmp_path / "tfdata"
    m.tf = Terraform(m.dir, env=m.tf.env, data_dir=data_dir)
    m.tf.init()
    assert data_dir.is_dir() and not (m.dir / ".terraform").exists()
    _, plan = m.plan()
    assert m.tf.apply(plan)


def test_environment_is_not_inherited_blindly(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TF_CLI_ARGS_plan", "-this-flag-does-not-exist")
    monkeypatch.setenv("TESS_GIT_CRYPT_KEY", PLANTED)  # the platform's, never a provider's
    seen = tmp_path / "environments"
    wrapper = tmp_path / "terraform-env"
    wrapper.write_text(f'#!/bin/sh\nenv >> "{seen}"\nexec "{TERRAFORM}" "$@"\n')
    wrapper.chmod(0o755)
    m = Module(tmp_path, binary=str(wrapper))
    m.write(module())
    m.tf.init()
    summary, _ = m.plan()  # would fail on the unknown flag if it got through
    assert summary.has_changes
    assert "TF_CLI_ARGS_plan" in os.environ  # this process's environment is left alone
    assert "TF_IN_AUTOMATION=1" in seen.read_text() and PLANTED not in seen.read_text()
