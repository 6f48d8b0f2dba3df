"""<env>/<hub>_<env>_values and <env>/<hub>_<env>_release, with their checks, for every hub:
one step per hub and environment."""

import yaml
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetsDefinition,
    AssetSpec,
    DataVersion,
    Failure,
    MaterializeResult,
    MetadataValue,
    multi_asset,
)

from tess_platform.chart import JUPYTERHUB, ChartError
from tess_platform.checks import CHECKS, CheckResult
from tess_platform.hubs import Hubs
from tess_platform.manifests import CONTRACT_CHECK, CONTRACT_DESCRIPTION
from tess_platform.releases import Release
from tess_platform.targets import DeployError
from tess_platform.values import ValuesError

from .history import deployed_hash, promoted
from .keys import PROMOTION, USER_IMAGE, infra_keys, release_key, values_key
from .resources import PlatformResource


def bullets(lines: list[str]) -> MetadataValue:
    return MetadataValue.md("\n".join(f"- {line}" for line in lines) or "none")


def hub_asset(release: Release, hubs: Hubs, kubernetes: bool) -> AssetsDefinition:
    """One hub in one environment: its values, its release and the release's checks, in one
    step. Each asset keeps its own key, lineage and metadata; one step instead of three spares
    a process, an instance and a transition each (the checks start the moment the hub is up).
    Any part runs alone (a verification runs the checks a release still needs).

    `kubernetes`: releases go to the cluster infra/ makes, so the values carry the blocking
    cluster_contract check (a release that cannot run there never reaches helm)."""
    values_k, release_k = values_key(release), release_key(release)
    release_deps = [values_k, *infra_keys(hubs, release)]
    if release.env == "prod":
        release_deps.append(release_key(Release(release.deployment, "staging")))
    specs = [
        AssetSpec(
            values_k,
            group_name=release.env,
            deps=[USER_IMAGE] + ([PROMOTION] if release.env == "prod" else []),
            code_version=JUPYTERHUB.label,
            description=f"The merged chart values of {release.name}, validated against the "
            f"{JUPYTERHUB.label} values schema; the user image pinned.",
        ),
        AssetSpec(
            release_k,
            group_name=release.env,
            deps=release_deps,
            code_version=JUPYTERHUB.label,
            description=f"The {release.name} hub: a release of the {JUPYTERHUB.label} chart.",
        ),
    ]
    contract_spec = AssetCheckSpec(
        CONTRACT_CHECK, asset=values_k, description=CONTRACT_DESCRIPTION, blocking=True
    )
    checks = [
        # blocking: promotion relies on them, a failing check fails the run
        AssetCheckSpec(name, asset=release_k, description=description, blocking=True)
        for name, description in CHECKS.items()
    ]

    @multi_asset(
        name=release.name.replace("-", "_"),
        specs=specs,
        check_specs=([contract_spec] if kubernetes else []) + checks,
        can_subset=True,
        pool=release.name,  # one step at a time on a hub, across runs (dagster.yaml)
    )
    def _hub(context: AssetExecutionContext, platform: PlatformResource):
        selected, checked = context.selected_asset_keys, context.selected_asset_check_keys
        names = [k.name for k in checked if k.asset_key == release_k]
        if values_k in selected or contract_spec.key in checked:
            materialization, contract = _values(context, platform, release, kubernetes)
            if values_k in selected:
                yield materialization
            if contract is not None and not contract.passed:
                if contract_spec.key not in checked:
                    raise Failure(description=f"{release.name}: {contract.description}")
                yield contract
                return  # blocking: the step fails, nothing reaches helm
            if contract is not None and contract_spec.key in checked:
                yield contract
        release_hash = None
        if release_k in selected:
            result = _release(context, platform, release)
            release_hash = result.metadata["release_hash"]
            yield result
        if names:
            yield from _checks(context, platform, release, release_hash, names)

    return _hub


def _values(
    context: AssetExecutionContext, platform: PlatformResource, release: Release, kubernetes: bool
) -> tuple[MaterializeResult, AssetCheckResult | None]:
    """The values' materialization, and on kubernetes the cluster contract's result."""
    snapshot = platform.snapshot(context)
    core = platform.platform
    try:
        tree = core.tree(snapshot)
        values = core.values(tree, release, core.image_ref(tree))
        problems = core.cluster_problems(tree, values) if kubernetes else []
    except ChartError as e:  # the chart unreachable: no file of the repository to fix
        raise platform.failure(e, "Nothing was deployed; deploy again once it can.") from None
    except (ValuesError, RuntimeError) as e:
        raise platform.failure(
            e, "Fix the file named above and merge again; nothing was deployed."
        ) from None
    for problem in problems:
        context.log.error(f"{release.name}: {problem}")
    for note in values.hierarchy.notes:
        context.log.info(note)
    masked = yaml.safe_dump(values.merged.masked(), sort_keys=True)
    contract = AssetCheckResult(
        asset_key=values_key(release),
        check_name=CONTRACT_CHECK,
        passed=not problems,
        description=(
            f"{len(problems)} problem(s): fix them and merge again; nothing deployed"
            if problems
            else "valid objects; the cluster of infra/ holds them"
        ),
        metadata={"problems": bullets(problems)},
    )
    materialization = MaterializeResult(
        asset_key=values_key(release),
        metadata={
            "git_sha": snapshot.sha,
            "values_sha256": values.sha256,
            "layers": bullets([f"`{layer.source}`" for layer in values.hierarchy.layers]),
            "notes": bullets(values.hierarchy.notes),
            "values": MetadataValue.md(f"```yaml\n{masked}```"),
        },
        data_version=DataVersion(values.sha256),
    )
    return materialization, contract if kubernetes else None


def _promoted(context, release: Release, sha: str) -> None:
    """A prod release deploys only the SHA its run's promotion let through."""
    if promoted(context.instance) != (sha, context.run.run_id):
        raise Failure(
            description=f"{release.name}: prod deploys only through promote_prod, "
            f"whose gate let {sha[:12]} through in this run. Launch "
            "promote_prod."
        )


def _release(
    context: AssetExecutionContext, platform: PlatformResource, release: Release
) -> MaterializeResult:
    snapshot = platform.snapshot(context)
    core = platform.platform
    try:
        image = core.image_ref(core.tree(snapshot))
        if release.env == "prod":
            _promoted(context, release, snapshot.sha)
            outcome = core.deploy_verified(snapshot, release, image, context.log.info)
        else:
            outcome = core.deploy(snapshot, release, image, context.log.info)
    except (ValuesError, DeployError, RuntimeError) as e:
        raise platform.failure(
            e,
            "Fix the cause named above and deploy again; a revision "
            "that was serving before still serves.",
        ) from None
    deployed = outcome.deployed
    if deployed.notes:
        context.log.info("; ".join(deployed.notes))
    return MaterializeResult(
        asset_key=release_key(release),
        metadata={
            "git_sha": snapshot.sha,
            "image": image.ref,
            "image_tag": image.tag,
            "dockerfile_sha256": image.dockerfile_sha256,
            "values_sha256": outcome.values_sha256,
            "release_hash": outcome.release_hash,
            "url": MetadataValue.url(deployed.url),
            "revision": deployed.revision,
            "chart": JUPYTERHUB.label,
            "target": core.target.name,
            "changes": bullets(outcome.changes),
            "not_applied": bullets(deployed.notes),
            **({"user_servers_run": deployed.runs} if deployed.runs else {}),
        },
        data_version=DataVersion(outcome.release_hash),
    )


def _checks(
    context: AssetExecutionContext,
    platform: PlatformResource,
    release: Release,
    release_hash: str | None,
    names: list[str],
):
    """The release checks `names` (of CHECKS): server_spawns and kernel_runs share one
    check server. Each says what it found serving, so the verification record knows which
    deploy it is evidence about. `release_hash`: what this step deployed; else the last
    deploy's."""
    core = platform.platform
    if release_hash is None:
        release_hash = deployed_hash(context.instance, release)
    try:
        results = core.checks(release, release_hash, platform.snapshot(context), names)
    except (RuntimeError, ValueError) as e:
        why = core.redact(f"could not check: {e}")
        results = {name: CheckResult(False, why) for name in names}
    for name, result in results.items():
        context.log.info(f"{release.name}: {name}: {result.description}")
        yield AssetCheckResult(
            asset_key=release_key(release),
            check_name=name,
            passed=result.passed,
            description=result.description,
            metadata=result.details,
        )


def release_assets(hubs: Hubs, kubernetes: bool) -> list[AssetsDefinition]:
    return [hub_asset(r, hubs, kubernetes) for r in hubs.releases()]
