"""<env>/<hub>_<env>_values and <env>/<hub>_<env>_release, with their checks, for every hub."""

import yaml
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetsDefinition,
    DataVersion,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
    multi_asset_check,
)

from tess_platform import health
from tess_platform.chart import JUPYTERHUB
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


def values_asset(release: Release, kubernetes: bool) -> AssetsDefinition:
    """`kubernetes`: releases go to the cluster infra/ makes, so the values carry the blocking
    cluster_contract check (a release that cannot run there never reaches helm)."""
    deps = [USER_IMAGE] + ([PROMOTION] if release.env == "prod" else [])
    key = values_key(release)
    contract = AssetCheckSpec(
        CONTRACT_CHECK, asset=key, description=CONTRACT_DESCRIPTION, blocking=True
    )

    @asset(
        key=key,
        group_name=release.env,
        deps=deps,
        code_version=JUPYTERHUB.label,
        description=f"The merged chart values of {release.name}, validated against the "
        f"{JUPYTERHUB.label} values schema; the user image pinned.",
        check_specs=[contract] if kubernetes else None,
    )
    def _values(context: AssetExecutionContext, platform: PlatformResource) -> MaterializeResult:
        snapshot = platform.snapshot(context)
        core = platform.platform
        try:
            tree = core.tree(snapshot)
            values = core.values(tree, release, core.image_ref(tree))
            problems = core.cluster_problems(tree, values) if kubernetes else []
        except (ValuesError, RuntimeError) as e:
            raise platform.failure(
                e, "Fix the file named above and merge again; nothing was deployed."
            ) from None
        for problem in problems:
            context.log.error(f"{release.name}: {problem}")
        for note in values.hierarchy.notes:
            context.log.info(note)
        masked = yaml.safe_dump(values.merged.masked(), sort_keys=True)
        return MaterializeResult(
            metadata={
                "git_sha": snapshot.sha,
                "values_sha256": values.sha256,
                "layers": bullets([f"`{layer.source}`" for layer in values.hierarchy.layers]),
                "notes": bullets(values.hierarchy.notes),
                "values": MetadataValue.md(f"```yaml\n{masked}```"),
            },
            data_version=DataVersion(values.sha256),
            check_results=[
                AssetCheckResult(
                    check_name=CONTRACT_CHECK,
                    passed=not problems,
                    description=(
                        f"{len(problems)} problem(s): fix them and merge again; nothing deployed"
                        if problems
                        else "valid objects; the cluster of infra/ holds them"
                    ),
                    metadata={"problems": bullets(problems)},
                )
            ]
            if kubernetes
            else [],
        )

    return _values


def _promoted(context, release: Release, sha: str) -> None:
    """A prod release deploys only the SHA its run's promotion let through."""
    if promoted(context.instance) != (sha, context.run.run_id):
        raise Failure(
            description=f"{release.name}: prod deploys only through promote_prod, "
            f"whose gate let {sha[:12]} through in this run. Launch "
            "promote_prod."
        )


def release_asset(release: Release, hubs: Hubs) -> AssetsDefinition:
    deps = [values_key(release), *infra_keys(hubs, release)]
    if release.env == "prod":
        deps.append(release_key(Release(release.deployment, "staging")))

    @asset(
        key=release_key(release),
        group_name=release.env,
        pool=release.name,  # one step at a time on a hub, across runs (dagster.yaml)
        deps=deps,
        code_version=JUPYTERHUB.label,
        description=f"The {release.name} hub: a release of the {JUPYTERHUB.label} chart.",
    )
    def _release(context: AssetExecutionContext, platform: PlatformResource) -> MaterializeResult:
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

    return _release


def release_checks(release: Release):
    """The release checks (health.CHECKS), run together: server_spawns and kernel_runs share
    one check server. Each says what it found serving, so the verification record knows which
    deploy it is evidence about."""
    key = release_key(release)

    @multi_asset_check(
        name=f"{release.name.replace('-', '_')}_checks",
        specs=[
            # blocking: promotion relies on them, a failing check fails the run
            AssetCheckSpec(name, asset=key, description=description, blocking=True)
            for name, description in health.CHECKS.items()
        ],
        can_subset=True,  # a verification runs the checks a release still needs
        pool=release.name,
    )
    def _run(context: AssetCheckExecutionContext, platform: PlatformResource):
        core = platform.platform
        names = [k.name for k in context.selected_asset_check_keys]
        try:
            results = core.checks(
                release,
                deployed_hash(context.instance, release),
                platform.snapshot(context),
                names,
            )
        except (RuntimeError, ValueError) as e:
            why = core.redact(f"could not check: {e}")
            results = {name: health.CheckResult(False, why) for name in names}
        for name, result in results.items():
            context.log.info(f"{release.name}: {name}: {result.description}")
            yield AssetCheckResult(
                asset_key=key,
                check_name=name,
                passed=result.passed,
                description=result.description,
                metadata=result.details,
            )

    return _run


def release_assets(hubs: Hubs, kubernetes: bool) -> list[AssetsDefinition]:
    return [
        a for r in hubs.releases() for a in (values_asset(r, kubernetes), release_asset(r, hubs))
    ]


def release_checks_of(hubs: Hubs) -> list:
    return [release_checks(r) for r in hubs.releases()]
