"""The asset graph is DESIGN.md's public surface, and Dagster loads it as operators will."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import AssetCheckKey, AssetKey

from tess_dagster.definitions import defs

ROOT = Path(__file__).resolve().parent.parent
DEPLOYMENTS = ("tess_public", "tess_private")


def graph():
    return defs.resolve_asset_graph()


def test_the_asset_keys_and_groups_are_the_public_names():
    keys = {k.to_user_string(): graph().get(k).group_name for k in graph().get_all_asset_keys()}
    expected = {
        "infra/eks_cluster": "infra",
        "infra/efs": "infra",
        "image/user_image": "image",
        "prod/promotion": "prod",
    }
    for env in ("staging", "prod"):
        for d in DEPLOYMENTS:
            expected[f"{env}/{d}_{env}_values"] = env
            expected[f"{env}/{d}_{env}_release"] = env
    assert keys == expected


def test_lineage_runs_from_infra_and_image_through_staging_to_prod():
    def parents(key: str) -> set[str]:
        node = graph().get(AssetKey(key.split("/")))
        return {p.to_user_string() for p in node.parent_keys}

    assert parents("infra/efs") == {"infra/eks_cluster"}
    assert parents("staging/tess_public_staging_values") == {"image/user_image"}
    assert parents("staging/tess_public_staging_release") == {
        "staging/tess_public_staging_values",
        "infra/eks_cluster",
    }
    assert parents("staging/tess_private_staging_release") == {
        "staging/tess_private_staging_values",
        "infra/eks_cluster",
        "infra/efs",
    }
    assert parents("prod/promotion") == {
        "staging/tess_public_staging_release",
        "staging/tess_private_staging_release",
    }
    assert parents("prod/tess_public_prod_values") == {"image/user_image", "prod/promotion"}
    assert parents("prod/tess_private_prod_release") == {
        "prod/tess_private_prod_values",
        "infra/eks_cluster",
        "infra/efs",
        "staging/tess_private_staging_release",
    }


def test_every_release_has_both_checks():
    checks = {(k.asset_key.to_user_string(), k.name) for k in graph().asset_check_keys}
    assert checks == {
        (f"{env}/{d}_{env}_release", name)
        for env in ("staging", "prod")
        for d in DEPLOYMENTS
        for name in ("hub_healthy", "server_spawns", "kernel_runs")
    }


def test_deploy_staging_selects_infra_image_and_staging_only():
    job = defs.resolve_job_def("deploy_staging")
    selected = {k.to_user_string() for k in job.asset_layer.selected_asset_keys}
    assert selected == {
        "infra/eks_cluster",
        "infra/efs",
        "image/user_image",
        *(f"staging/{d}_staging_{a}" for d in DEPLOYMENTS for a in ("values", "release")),
    }
    assert job.tags["tess/env"] == "staging"


def test_the_jobs_and_sensors_operators_use():
    assert {j.name for j in defs.jobs} == {
        "deploy_staging",
        "promote_prod",
        "rollback",
        "uninstall",
        "verify_releases",
    }
    assert {s.name for s in defs.sensors} == {
        "staging_branch_sensor",
        "prod_branch_sensor",
        "release_drift_sensor",
        "verify_after_failed_run",
        "notify_success",
        "notify_failure",
    }
    promote = defs.resolve_job_def("promote_prod")
    assert {k.to_user_string() for k in promote.asset_layer.selected_asset_keys} == {
        "prod/promotion",
        *(f"prod/{d}_prod_{a}" for d in DEPLOYMENTS for a in ("values", "release")),
    }
    assert promote.tags["tess/env"] == "prod"


def test_dagster_validates_the_workspace():
    out = subprocess.run(
        [str(ROOT / ".venv/bin/dagster"), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "All code locations passed validation" in out.stderr + out.stdout


HEAVY = (
    "rfc3987_syntax",
    "kubernetes_validate",
    "jsonschema",
    "repo2docker",
    "tess_platform.hubploy.adopt",
    "hcl2",
    "tornado.websocket",
)


@pytest.mark.parametrize(
    "module, heavy",
    [
        # a step or a sensor tick that needs them imports the checks' HTTP client and the
        # local supervisor's process library (a deploy's run worker: once, before it forks)
        ("tess_dagster.definitions", (*HEAVY, "requests", "psutil", "tess_platform.health")),
        ("tess_platform.cli", HEAVY),
    ],
)
def test_the_code_location_loads_without_what_only_some_steps_use(module, heavy):
    """Every run worker, sensor process and CLI call imports the code location: it must not
    build rfc3987-syntax's grammar (0.9 s, through jsonschema, for a format checker no
    validation here runs) nor import what only a deploy step or one command uses."""
    probe = f"import sys, {module}\nprint([m for m in {heavy!r} if sys.modules.get(m) is not None])"
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_a_local_hub_runs_jupyterhub_without_building_the_iri_grammar():
    """A hub imports jsonschema through jupyter_events: the local target's launcher runs
    JupyterHub's own main with rfc3987-syntax marked absent (2.8 s of CPU a hub start here)."""
    import jupyterhub

    from tess_platform.backends.local import hub_main

    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", hub_main.__name__, "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    imported = {line.rpartition("|")[2].strip() for line in out.stderr.splitlines()}
    assert {"jupyterhub.app", "jsonschema", "jupyter_events"} <= imported
    assert "lark" not in imported  # rfc3987-syntax's grammars are lark's
    assert out.stdout.strip() == jupyterhub.__version__


def test_the_core_does_not_import_dagster():
    core = list((ROOT / "tess_platform").rglob("*.py"))
    offenders = [
        str(p.relative_to(ROOT))
        for p in core
        if "import dagster" in p.read_text() or "from dagster" in p.read_text()
    ]
    assert offenders == []


def _core_imports() -> dict[str, set[str]]:
    """Each module of tess_platform/ and the modules of tess_platform/ it imports."""
    files = {
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
        for p in (ROOT / "tess_platform").rglob("*.py")
    }
    graph = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                parts = [*base] if node.level else []
                module = ".".join([*parts, *([node.module] if node.module else [])])
                found |= {f"{module}.{a.name}" for a in node.names} | {module}
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
        graph[name] = (found & files.keys()) - {name}
    return graph


def test_the_platform_installs_only_its_two_packages():
    """Nothing of tess-platform lands in site-packages under a generic name (`assets`,
    `sensors`) that another distribution could shadow or be shadowed by."""
    from importlib.metadata import packages_distributions

    ours = {name for name, dists in packages_distributions().items() if "tess-platform" in dists}
    assert ours == {"tess_platform", "tess_dagster"}


def test_the_core_has_no_import_cycle():
    graph = _core_imports()

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(
            m == goal or (m not in seen and not seen.add(m) and reaches(m, goal, seen))
            for m in graph[start]
        )

    assert sorted(m for m in graph if reaches(m, m, set())) == []


def test_a_run_locks_the_environments_it_deploys_even_without_a_tag():
    from dagster import DagsterRun

    from tess_dagster.assets.resources import run_environments

    def run(tags=None, keys=(), checks=()):
        return DagsterRun(
            job_name="__ASSET_JOB",
            tags=tags or {},
            asset_selection=frozenset(AssetKey(k.split("/")) for k in keys),
            asset_check_selection=frozenset(
                AssetCheckKey(AssetKey(k.split("/")), "server_spawns") for k in checks
            ),
        )

    assert run_environments(run({"tess/env": "prod"})) == ["prod"]
    assert run_environments(
        run(keys=["staging/tess_public_staging_release", "image/user_image"])
    ) == ["staging"]
    assert run_environments(
        run(keys=["prod/promotion", "staging/tess_private_staging_values"])
    ) == [
        "prod",
        "staging",
    ]
    assert run_environments(run(keys=["infra/efs"])) == []
    assert run_environments(run(checks=["prod/tess_public_prod_release"])) == ["prod"]


def test_hubs_deploy_side_by_side_one_step_at_a_time_per_hub_and_checks_block():
    for name in ("deploy_staging", "promote_prod", "verify_releases"):
        job = defs.resolve_job_def(name)
        assert job.executor_def.name == "hubs_side_by_side"
        bound = job.executor_def.config_schema.as_field().config_type.fields["max_concurrent"]
        assert bound.default_value == 4  # TESS_DEPLOY_CONCURRENCY; a run's config may change it
    for key in graph().asset_check_keys:  # promotion relies on them: a failure fails the run
        assert graph().get(key).blocking
    release = AssetKey(["staging", "tess_private_staging_release"])
    assert graph().get(release).pools == {"tess-private-staging"}
