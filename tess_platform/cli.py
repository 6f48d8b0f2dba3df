"""`tess-platform`: what operators do by hand."""

from __future__ import annotations

import argparse
import getpass
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import yaml

from .backends.image import IMAGE_DIR, ImageError, build, docker_answers, render
from .backends.local.supervisor import SupervisorError
from .backends.local.target import IMAGE_REPOSITORY
from .chart import ChartError
from .control_plane import (
    CHART,
    CHART_REPO,
    CHART_VERSION,
    NAMESPACE,
    RELEASE,
    ControlPlane,
    ControlPlaneError,
    read_outputs,
)
from .dagster_dev import DagsterDev, DagsterDevError
from .git import GitError, check_sha
from .hierarchy import AUTHENTICATOR, CONFIG_DIR, Tree, WorkTree
from .hubploy.source import KEY_OPTION
from .hubploy.source import read as read_hubploy
from .hubs import hubs_of
from .manifests import ManifestError
from .plan import Plan, ReleaseSide, plan_release
from .platform import PROD, STAGING, Platform
from .promotion import staging_verified
from .releases import ENVIRONMENTS, Release, UnknownReleaseError
from .secrets import SecretsError
from .secrets_init import init_secrets, preflight, release_callback_url, uses_github
from .settings import SettingsError
from .tags import APPROVER_TAG, SHA_TAG, approver_problem
from .targets import DeployError, last_deployed
from .values import ValuesError, get_path
from .verification import Deploy, summary

USER_ERRORS = (
    ValuesError,
    ControlPlaneError,
    SecretsError,
    GitError,
    ChartError,
    UnknownReleaseError,
    SettingsError,
    DeployError,
    ImageError,
    DagsterDevError,
    SupervisorError,  # e.g. a state file of the local target that cannot be read
    ManifestError,
)


LOCAL_ACTIONS = {
    "up": "start Dagster (UI and daemon), deploy staging, and follow the run",
    "status": "each release's revision, hub, user servers and URL; Dagster's home and port",
    "stop": "stop RELEASE's hub and user servers, else every one's and Dagster; homes stay",
    "start": "start RELEASE's hub again, else every one's, at its current revision",
    "gc": "remove user environments no hub runs and none used within --days",
}


def _tree(platform: Platform, args: argparse.Namespace) -> Tree:
    return _tree_and_notes(platform, args)[0]


def _tree_and_notes(platform: Platform, args: argparse.Namespace) -> tuple[Tree, list[str]]:
    """The tree to read, and what an operator should know about it (links left out)."""
    if args.sha:
        snapshot = platform.repo.snapshot(args.sha)
        return platform.tree(snapshot), snapshot.notes
    root = Path(args.tree).resolve()
    top = subprocess.run(
        ["git", "rev-parse", "--show-toplevel"], cwd=root, capture_output=True, text=True
    )
    root = Path(top.stdout.strip()) if top.returncode == 0 else root
    if not (root / CONFIG_DIR).is_dir():
        raise ValuesError(
            f"{root}: no {CONFIG_DIR}/ here; run inside a tess-platform checkout "
            "or pass --tree or --sha"
        )
    return WorkTree(root, f"working tree {root}"), []


def cmd_values(platform: Platform, args: argparse.Namespace) -> int:
    tree, notes = _tree_and_notes(platform, args)
    for note in notes:  # stdout is the values alone
        print(f"note {note}", file=sys.stderr)
    release = hubs_of(tree).known(Release(args.deployment, args.env))
    image = platform.image_ref(tree, offline=True)
    values = platform.values(tree, release, image, offline=True)
    for note in [*image.unknown, *values.hierarchy.notes]:
        print(f"note {note}", file=sys.stderr)
    sys.stdout.write(platform.redact(yaml.safe_dump(values.merged.masked(), sort_keys=True)))
    return 0


def cmd_validate(platform: Platform, args: argparse.Namespace) -> int:
    tree, notes = _tree_and_notes(platform, args)
    for note in notes:
        print(f"note {note}")
    lines, failed = _validation(platform, tree)
    print("\n".join(lines))
    return 1 if failed else 0


def _validation(platform: Platform, tree: Tree) -> tuple[list[str], int]:
    """`validate`'s lines for every release of `tree`, and how many failed."""
    lines = []
    image = platform.image_ref(tree, offline=True)
    lines += [f"note not known here: {unknown}" for unknown in image.unknown]
    hubs = hubs_of(tree)
    lines += [f"FAIL {platform.redact(problem)}" for problem in hubs.problems]
    failed = len(hubs.problems)
    for release in hubs.releases():
        try:
            values = platform.values(tree, release, image, offline=True)
            problems = platform.cluster_problems(tree, values)
        except USER_ERRORS as e:
            values, problems = None, [str(e)]
        lines += [f"FAIL {release.name}: {platform.redact(problem)}" for problem in problems]
        if values is None or problems:
            failed += 1
            continue
        lines.append(f"ok   {release.name}: values_sha256 {values.sha256[:16]}")
        lines += [f"     {note}" for note in values.hierarchy.notes]
    return lines, failed


def cmd_import_hubploy(platform: Platform, args: argparse.Namespace) -> int:
    # imported here: only this command needs the translation; every other starts without it
    from .hubploy.adopt import adopt
    from .hubploy.adopt import write as write_adoption
    from .hubploy.image_check import check_image
    from .hubploy.report import Report

    try:
        key = Path(args.git_crypt_key).read_bytes() if args.git_crypt_key else None
    except OSError as e:
        raise SecretsError(f"{args.git_crypt_key}: {e.strerror}; give the old key's file") from None
    into = Path(args.into).resolve()
    report = Report(source=str(Path(args.path).resolve()), into=str(into))
    repo = read_hubploy(Path(args.path), key)
    adoption = adopt(repo, into, platform.chart, report)
    platform.redact.add(adoption.secret_values)
    write_adoption(adoption, into, args.force, report)
    if adoption.image is not None:
        check_image(into, report)
    report.validation, failed = _validation(platform, WorkTree(into, f"working tree {into}"))
    report.valid = not failed
    print(platform.redact(report.markdown()), end="")
    return 1 if failed else 0


def _dagster(platform: Platform, args: argparse.Namespace) -> DagsterDev:
    """The `dagster dev` that `local up` starts: DAGSTER_HOME is $TESS_LOCAL_HOME/dagster."""
    return DagsterDev(platform.settings.local_home / "dagster", port=args.dagster_port)


def _follow(dagster: DagsterDev, job: str, run_id: str) -> int:
    """Prints the run's steps as they go, then its outcome and what failed; 0 on success."""
    outcome = dagster.wait(run_id, progress=lambda line: print(f"  {line}", flush=True))
    print(f"{job}: {outcome.status}")
    for message in outcome.failures:
        print(message)
    return 0 if outcome.ok else 1


def _release_line(status) -> str:
    """A release as `local status` and `local up` show it: the revision that serves, and where."""
    if status.revision is None:
        return f"{status.release}: not deployed"
    state = f"running (pid {status.pid})" if status.running else "stopped"
    servers = _count(status.user_servers, "user server")
    line = f"{status.release}: revision {status.revision}, {state}, {servers}, {status.url}"
    return line + (f"\n  {status.problem}" if status.problem else "")


def _shared_password(current) -> bool:
    """Whether the revision that serves logs users in with the shared password."""
    values = current.record.get("fingerprint", {}) if current else {}
    return get_path(values, AUTHENTICATOR) == "shared-password"


def _server_users() -> str:
    from .backends.local.isolation import FIRST_UID, runs_as_root

    if runs_as_root():
        return f"each user as an unprivileged uid of its own (from {FIRST_UID})"
    return f"as {getpass.getuser()}, who runs the hubs (run as root, each user gets a uid)"


def _memory_limit() -> str:
    from .backends.local.isolation import memory_cgroups, memory_enforcement

    return memory_enforcement(memory_cgroups() is not None)


def _count(n: int, thing: str) -> str:
    return f"{n} {thing}{'' if n == 1 else 's'}"


def _verification(dagster: DagsterDev, release: Release, revision: int | None) -> str:
    try:
        return summary(dagster.record(release), revision)
    except DagsterDevError as e:
        return f"verification unknown: {e}"


def cmd_local(platform: Platform, args: argparse.Namespace) -> int:
    from .backends.local.target import LocalTarget
    from .backends.local.user_env import collect

    if not isinstance(platform.target, LocalTarget):
        raise SettingsError("`local` commands are for TESS_TARGET=local")
    target, supervisor = platform.target, platform.target.supervisor
    dagster = _dagster(platform, args)
    if args.action == "status":
        print(f"state folder: {platform.settings.local_home}")
        proc = dagster.running()
        print(f"dagster dev:  {dagster.url if proc else 'not running'}")
        print(f"DAGSTER_HOME: {dagster.home}")
        print(f"user servers: {_server_users()}")
        print(f"memory limit: {_memory_limit()}")
        print("promote with `tess-platform promote --approver NAME`, or queue the job by hand:")
        print(f"  {dagster.launch_command('promote_prod', {APPROVER_TAG: 'NAME'})}")
        unreadable = 0
        for name in supervisor.releases():
            try:
                status, drift = supervisor.status(name), supervisor.drift(name)
            except SupervisorError as e:  # this release's state only: the others are shown
                print(f"{name}: {e}")
                unreadable += 1
                continue
            print(_release_line(status))
            if drift:  # an interrupted deploy, a hub that died: what serves is not as deployed
                print(f"  not as deployed: {drift}")
            if proc:  # the verification record, as Dagster holds it
                print(f"  {_verification(dagster, Release.parse(name), status.revision)}")
            if _shared_password(supervisor.current(name)):
                print(
                    f"  password: key hub.config.SharedPasswordAuthenticator.user_password "
                    f"in {target.password_file(Release.parse(name))}"
                )
        return 1 if unreadable else 0
    if args.action == "gc":
        done = collect(target.user_envs, args.days)
        for tag, size in done.removed:
            print(f"removed user environment {tag} ({size} MB)")
        freed = sum(size for _, size in done.removed)
        print(
            f"{_count(len(done.removed), 'environment')} removed ({freed} MB); kept "
            f"{len(done.running)} in use and {len(done.recent)} used in the last {args.days:g} "
            f"days, in {target.user_envs}"
        )
        return 0
    if args.release and args.release not in supervisor.releases():
        raise SupervisorError(
            f"no release {args.release} on this machine; there are: "
            f"{', '.join(supervisor.releases()) or 'none'}"
        )
    if args.action == "stop":
        names = [args.release] if args.release else supervisor.releases()
        for name in names:
            hub, servers = supervisor.stop(name)
            if hub or servers:
                print(f"stopped {name}: its hub and {_count(servers, 'user server')}")
        if not args.release and dagster.stop():
            print("stopped dagster dev")
        return 0
    if args.action == "start":
        for name in [args.release] if args.release else supervisor.releases():
            supervisor.start(name, log=print)
            print(_release_line(supervisor.status(name)))
        return 0
    # up: the Dagster UI, and the staging hubs deployed through it
    dagster.start(dict(os.environ))
    print(f"Dagster UI: {dagster.url}")
    run_id = dagster.launch("deploy_staging")
    print(f"deploy_staging: run {run_id} ({dagster.run_url(run_id)}); waiting for it")
    code = _follow(dagster, "deploy_staging", run_id)
    for name in supervisor.releases():  # what serves now, whatever the run did
        if Release.parse(name).env == "staging":
            print(_release_line(supervisor.status(name)))
    print("the shared passwords of hubs that have one: `tess-platform local status` says where")
    return code


def cmd_promote(platform: Platform, args: argparse.Namespace) -> int:
    dagster = _dagster(platform, args)
    dagster.require()
    tags = {APPROVER_TAG: args.approver, **({SHA_TAG: args.sha} if args.sha else {})}
    run_id = dagster.launch("promote_prod", tags)
    print(f"promote_prod: run {run_id} ({dagster.run_url(run_id)})", flush=True)
    return 0 if args.no_wait else _follow(dagster, "promote_prod", run_id)


def _sha(text: str) -> str:
    """A SHA checked before a run is launched for it."""
    try:
        return check_sha(text)
    except GitError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _approver(name: str) -> str:
    """A name that names someone: the gate records it on the run and in prod's metadata."""
    if problem := approver_problem(name):
        raise argparse.ArgumentTypeError(problem)
    return name.strip()


def cmd_secrets(platform: Platform, args: argparse.Namespace) -> int:
    tree = _tree(platform, argparse.Namespace(sha=None, tree=args.tree))
    release = hubs_of(tree).known(Release(args.deployment, args.env))
    preflight(tree.root, release, force=args.force)  # before asking anything
    github = None
    if uses_github(tree.root, release):
        print(
            f"{release.name} logs in with GitHub. Its OAuth app's callback URL is "
            f"{release_callback_url(tree.root, release)}",
            file=sys.stderr,
        )
        try:
            client_id = args.github_client_id or input("GitHub OAuth client id: ").strip()
            secret = (
                getpass.getpass("GitHub OAuth client secret: ")
                if sys.stdin.isatty()
                else sys.stdin.readline().strip()
            )
        except EOFError:
            client_id = secret = ""
        if not (client_id and secret):
            raise SecretsError(
                f"{release.name}: no GitHub OAuth client id and secret given (the id with "
                "--github-client-id or typed, the secret typed or on stdin); nothing written"
            )
        github = (client_id, secret)
    path = init_secrets(tree.root, release, github, force=args.force)
    print(f"wrote {path.relative_to(tree.root)} (0600); commit it: git-crypt encrypts it")
    return 0


def cmd_plan(platform: Platform, args: argparse.Namespace) -> int:
    problems: list[str] = []
    if args.promotion:  # what promote_prod would give prod: staging's head, or --sha
        args.sha = args.sha or platform.repo.commit(STAGING)
        args.env = PROD
    head, found = _tree_and_notes(platform, args)
    notes = list(found)  # the snapshot's own stay as they are
    head_hubs = hubs_of(head)
    envs = [args.env] if args.env else list(ENVIRONMENTS)
    if args.promotion:
        problems += _staging_unverified(platform, args, head)
    after = {r: platform.release_side(head, r, head.label) for r in _releases(head_hubs, envs)}
    if args.base:
        sha = platform.repo.commit(args.base)
        snapshot = platform.repo.snapshot(sha)
        base = platform.tree(snapshot)
        label = f"base {args.base} ({sha[:12]})"
        before = {r: platform.release_side(base, r, label) for r in _releases(hubs_of(base), envs)}
        against = label
    else:
        recorded = _recorded(platform, args, list(after))
        against = (
            "what runs (each release's serving revision, at the SHA that deployed it)"
            if recorded is None
            else "what runs, as Dagster recorded each release's last deploy"
        )
        sides = {r: _running(platform, r, recorded, notes) for r in after}
        before = {r: side for r, side in sides.items() if side is not None}
    releases = sorted(after.keys() | before.keys(), key=lambda r: (envs.index(r.env), r.name))
    plan = Plan(head.label, against, problems=[*head_hubs.problems, *problems], notes=notes)
    plan.releases = [plan_release(r, before.get(r), after.get(r)) for r in releases]
    if platform.settings.kubernetes:
        plan.infra = _infra_plan(platform, head, plan.notes)
    text = plan.json() if args.format == "json" else plan.markdown()
    print(platform.redact(text), end="")  # a key a secrets file brought in may be a token
    return plan.exit_code


def _infra_plan(platform: Platform, head: Tree, notes: list[str]) -> str:
    """terraform's plan of the head's infra/ against the state, as Markdown, where the state
    is shared (TESS_STATE_BUCKET) and reachable; else why not, in `notes`."""
    if not platform.settings.state_bucket:
        notes.append("no TESS_STATE_BUCKET here: terraform's plan of infra/ is not part of it")
        return ""
    try:
        return platform.target.plan_infra(head.root).markdown()
    except (RuntimeError, ValueError) as e:
        notes.append(f"terraform's plan of infra/ could not run here: {platform.redact(str(e))}")
        return ""


def _staging_unverified(platform: Platform, args: argparse.Namespace, head: Tree) -> list[str]:
    """Why promote_prod's gate would refuse the SHA, asked of the records the `dagster dev` of
    `local up` keeps."""
    dagster = _dagster(platform, args)
    dagster.require()
    records = [dagster.record(release) for release in hubs_of(head).releases(STAGING)]
    desired = platform.desired(platform.repo.snapshot(args.sha), STAGING)
    return staging_verified(args.sha, desired, platform.image_ref(head).ref, records)


def _releases(hubs, envs: list[str]) -> list[Release]:
    return [r for env in envs for r in hubs.releases(env)]


def _recorded(
    platform: Platform, args: argparse.Namespace, releases: list[Release]
) -> dict[Release, Deploy | None] | None:
    """Each release's last deploy as the Dagster instance of `local up` records it, where its
    `dagster dev` answers; None where it does not (what runs is then the target's word)."""
    dagster = _dagster(platform, args)
    if dagster.running() is None:
        return None
    try:
        dagster.require()
    except DagsterDevError:
        return None
    return {release: dagster.deployed(release) for release in releases}


def _running(
    platform: Platform,
    release: Release,
    recorded: dict[Release, Deploy | None] | None,
    notes: list[str],
) -> ReleaseSide | None:
    """The release as what runs it was made: the values at the SHA that deployed it, as Dagster
    recorded it where it can tell, else as the target serves it."""
    try:
        serving = platform.target.serving(release)
    except (RuntimeError, ValueError) as e:
        raise DeployError(
            f"what runs is not known here ({e}); plan against a base instead: --base staging"
        ) from None
    if recorded is None:
        if serving is None:  # nothing serves as deployed: against what was deployed, if any
            serving = last_deployed(platform.target.history(release))
            if serving is None:
                return None
            notes.append(
                f"{release.name}: revision {serving.revision} does not serve as deployed "
                "(its hub stopped, or changed by hand); planned against it"
            )
        sha, revision, said = serving.record.get("git_sha"), serving.revision, ""
    else:
        deployed = recorded.get(release)
        if deployed is None:
            return None
        sha, revision, said = deployed.git_sha, deployed.revision, ", as Dagster recorded it"
        if serving is not None and serving.revision != revision:
            notes.append(
                f"{release.name}: Dagster recorded revision {revision}, but revision "
                f"{serving.revision} serves: changed outside the pipeline "
                "(release_drift_sensor reports it); planned against Dagster's record"
            )
    if not sha:
        return ReleaseSide(label=f"revision {revision}, not deployed by the pipeline")
    snapshot = platform.repo.snapshot(sha)
    label = f"{release.name} revision {revision} ({sha[:12]}){said}"
    side = platform.release_side(platform.tree(snapshot), release, label)
    chart = serving.record.get("chart") if serving is not None else None
    return replace(side, chart=chart or side.chart)  # as deployed


def cmd_image(platform: Platform, args: argparse.Namespace) -> int:
    tree = _tree(platform, args)
    rendered = render(tree.root, platform.settings.cache)
    name = f"{IMAGE_REPOSITORY}:{rendered.tag}"
    print(
        f"{name}: rendered by repo2docker ({rendered.buildpack}), Dockerfile sha256 "
        f"{rendered.dockerfile_sha256[:16]}, from {', '.join(rendered.files)}"
    )
    if args.build:
        if not docker_answers():
            print("no Docker daemon here: rendered, not built")
            return 0
        build(tree.root / IMAGE_DIR, name)
        print(f"{name}: built (not pushed)")
    return 0


def cmd_control_plane(platform: Platform, args: argparse.Namespace) -> int:
    settings = platform.settings
    if not settings.state_bucket:
        raise ControlPlaneError(
            "TESS_STATE_BUCKET is not set: the bucket of infra/'s state, which the control "
            "plane keeps using"
        )
    outputs = read_outputs(Path(args.outputs))
    plane = ControlPlane.of(outputs, args.image_tag, settings.state_bucket, settings.repo)
    print(
        f"# values of the Dagster chart {CHART_VERSION} ({CHART_REPO}); install with\n"
        f"#   helm upgrade --install {RELEASE} {CHART} --repo {CHART_REPO} --version "
        f"{CHART_VERSION} -n {NAMESPACE} -f THIS_FILE"
    )
    sys.stdout.write(yaml.safe_dump(plane.chart_values(), sort_keys=False))
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tess-platform", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    def tree_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--tree", default=".", help="a checkout (default: the one you are in)")
        sp.add_argument("--sha", help="read TESS_REPO at this commit instead of a checkout")

    values = sub.add_parser("values", help="the merged chart values of a release, secrets masked")
    values.add_argument("env", choices=ENVIRONMENTS)
    values.add_argument("deployment", help="a hub: a folder of hub_config/")
    tree_args(values)
    values.set_defaults(func=cmd_values)

    validate = sub.add_parser("validate", help="check the values of every release of every hub")
    tree_args(validate)
    validate.set_defaults(func=cmd_validate)

    secrets = sub.add_parser("secrets", help="write a release's secrets file")
    secrets.add_argument("action", choices=["init"])
    secrets.add_argument("env", choices=ENVIRONMENTS)
    secrets.add_argument("deployment", help="a hub: a folder of hub_config/")
    secrets.add_argument("--tree", default=".", help="the checkout (default: the one you are in)")
    secrets.add_argument("--github-client-id", help="else asked; the secret is always asked")
    secrets.add_argument("--force", action="store_true", help="replace an existing file")
    secrets.set_defaults(func=cmd_secrets)

    local = sub.add_parser(
        "local",
        help="the local target: hubs on this machine",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="actions:\n"
        + "\n".join(f"  {name:<7}{what}" for name, what in LOCAL_ACTIONS.items()),
    )
    local.add_argument("action", choices=list(LOCAL_ACTIONS))
    local.add_argument("release", nargs="?", help="one release, e.g. tess-public-staging")
    local.add_argument(
        "--dagster-port", type=int, help="default: the port `local up` started Dagster on, or 3000"
    )
    local.add_argument(
        "--days", type=float, default=30, help="gc: keep environments used this recently"
    )
    local.set_defaults(func=cmd_local)

    promote = sub.add_parser(
        "promote", help="run promote_prod on the `dagster dev` of `local up` and follow it"
    )
    promote.add_argument("--approver", required=True, type=_approver, help="who approves it")
    promote.add_argument(
        "--sha", type=_sha, help="the SHA to promote (default: the newest staging verified)"
    )
    promote.add_argument("--no-wait", action="store_true", help="return once it is launched")
    promote.add_argument(
        "--dagster-port", type=int, help="default: the port `local up` started Dagster on, or 3000"
    )
    promote.set_defaults(func=cmd_promote)
    plan = sub.add_parser(
        "plan", help="what a change would deploy: each release against what runs or a base"
    )
    tree_args(plan)
    plan.add_argument("--base", help="compare with this branch or SHA of TESS_REPO instead")
    plan.add_argument("--env", choices=ENVIRONMENTS, help="one environment (default: both)")
    plan.add_argument("--format", choices=["markdown", "json"], default="markdown")
    plan.add_argument(
        "--promotion",
        action="store_true",
        help="what promote_prod would give prod (staging's head, or --sha), and whether "
        "staging verified it (read from the dagster dev of `local up`)",
    )
    plan.add_argument(
        "--dagster-port", type=int, help="default: the port `local up` started Dagster on, or 3000"
    )
    plan.set_defaults(func=cmd_plan)

    image = sub.add_parser("image", help="render the user image with repo2docker (and build it)")
    tree_args(image)
    image.add_argument("--build", action="store_true", help="build it where Docker answers")
    image.set_defaults(func=cmd_image)

    control = sub.add_parser(
        "control-plane", help="the Dagster chart's values for the control plane in the cluster"
    )
    control.add_argument("action", choices=["values"])
    control.add_argument(
        "--outputs", required=True, help="`terraform -chdir=infra output -json` saved to a file"
    )
    control.add_argument(
        "--image-tag", required=True, help="tag of the tess-platform image pushed to ECR"
    )
    control.set_defaults(func=cmd_control_plane)

    adopt_ = sub.add_parser(
        "import-hubploy", help="write this layout from a hubploy repository, and report"
    )
    adopt_.add_argument("path", help="the hubploy repository (a checkout)")
    adopt_.add_argument("--into", default=".", help="the tess-platform checkout to write into")
    adopt_.add_argument(
        KEY_OPTION, help="the old repository's key (`git-crypt export-key FILE`): its secrets"
    )
    adopt_.add_argument(
        "--force", action="store_true", help="replace files git does not hold as they are"
    )
    adopt_.set_defaults(func=cmd_import_hubploy)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    platform = None
    try:
        platform = Platform()
        if getattr(args, "release", None):
            Release.parse(args.release)
        return args.func(platform, args)
    except USER_ERRORS as e:
        message = platform.redact(str(e)) if platform else str(e)
        print(f"tess-platform: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
