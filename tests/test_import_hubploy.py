"""`tess-platform import-hubploy`: a hubploy repository in the prototype's shape (a wrapper
chart on jupyterhub 0.9.0, two deployments, auth, culling, storage, extraConfig, secrets under
git-crypt with a key) imported into a tess-platform checkout, validated, its facts read back."""

import hashlib
import os
import stat
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import CHART_DIR, GitRepo, cli, make_repo, run

from tess_platform.hubploy import chart_keys
from tess_platform.hubploy.image_check import check_image
from tess_platform.hubploy.report import CHECK, NOT_IMPORTED, TRANSLATED, Report
from tess_platform.schema import chart_values, rejected
from tess_platform.values import Layer, leaf_paths

CLIENT_SECRET = "gh-client-secret-8c1f0e77"  # planted: must never be shown
PROXY_TOKEN = "a" * 63 + "1"
HOOK_CODE = "os.environ['TESS_HOOK_TOKEN']"  # code of an extraConfig snippet: never copied

WRAPPER_VALUES = f"""\
jupyterhub:
  proxy:
    https:
      letsencrypt:
        contactEmail: tess@example.org
  hub:
    extraConfig:
      timeouts: |
        c.KubeSpawner.start_timeout = 600
        c.KubeSpawner.http_timeout = 120
      lab: |
        # JupyterLab for everyone
        c.Spawner.cmd = ['jupyter-labhub']
      hooks: |
        import os
        def pre_spawn(spawner):
            spawner.environment['TOKEN'] = {HOOK_CODE}
        c.KubeSpawner.pre_spawn_hook = pre_spawn
  singleuser:
    defaultUrl: /lab
    memory:
      guarantee: 512M
      limit: 2G
    cloudMetadata:
      enabled: false
  cull:
    enabled: true
    timeout: 3600
nfsPVC:
  enabled: true
  nfs:
    serverIP: 10.0.0.2
"""
PUBLIC_COMMON = """\
jupyterhub:
  auth:
    type: tmp
  singleuser:
    storage:
      type: none
  cull:
    timeout: 600
    maxAge: 28800
    users: true
"""
PRIVATE_COMMON = """\
jupyterhub:
  auth:
    type: github
    admin:
      users: [tess-admin]
    github:
      orgWhitelist: [tess-science]
  hub:
    uid: 1000
    fsGid: 1000
  singleuser:
    storage:
      capacity: 10Gi
  cull:
    timeout: 1800
    users: false
  scheduling:
    userScheduler:
      policy:
        priorities: [{name: MostRequestedPriority, weight: 1}]
"""
HUBPLOY_YAML = """\
images:
  image_name: 123456789012.dkr.ecr.us-east-1.amazonaws.com/tess-user-image
  registry:
    provider: aws
    aws:
      service_key: aws-ecr-config.cfg
      zone: us-east-1
cluster:
  provider: aws
  aws:
    service_key: aws-eks-config.cfg
    cluster: tess-cluster
    zone: us-east-1
"""
IMAGE = {
    "runtime.txt": "python-3.7\n",
    "requirements.txt": "numpy\nastropy==4.0\n",
    "postBuild": "#!/bin/bash\njupyter labextension list\n",
}


def hosts(host: str) -> str:
    return f"jupyterhub:\n  proxy:\n    https:\n      hosts: [{host}]\n"


def make_hubploy_repo(path: Path) -> GitRepo:
    """The prototype's repository, as hubploy deployed it."""
    path.mkdir(parents=True)
    repo = GitRepo(path)
    repo.git("init", "-q", "-b", "main")
    repo.git("config", "user.email", "ops@tess.test")
    repo.git("config", "user.name", "TESS Ops")
    repo.write("hub/Chart.yaml", "apiVersion: v1\nname: hub\nversion: 0.1.0\n")
    repo.write(
        "hub/requirements.yaml",
        "dependencies:\n- name: jupyterhub\n  version: 0.9.0\n"
        "  repository: https://jupyterhub.github.io/helm-chart/\n",
    )
    repo.write("hub/values.yaml", WRAPPER_VALUES)
    repo.write("hub/templates/nfs-pvc.yaml", "kind: PersistentVolumeClaim\n")
    repo.write(".gitattributes", "deployments/*/secrets/** filter=git-crypt diff=git-crypt\n")
    for name, common in (("tess-public", PUBLIC_COMMON), ("tess-private", PRIVATE_COMMON)):
        d = f"deployments/{name}"
        domain = name.removeprefix("tess-") + ".tess.example.org"
        repo.write(f"{d}/config/common.yaml", common)
        repo.write(f"{d}/config/staging.yaml", hosts(f"staging.{domain}"))
        repo.write(f"{d}/config/prod.yaml", hosts(domain))
        repo.write(f"{d}/hubploy.yaml", HUBPLOY_YAML)
        repo.write(f"{d}/config/dev.yaml", hosts(f"dev.{domain}"))  # an environment of its own
        repo.write(f"{d}/secrets/aws-ecr-config.cfg", "[default]\naws_secret_access_key = x\n")
        for env in ("staging", "prod"):
            secrets = {"jupyterhub": {"proxy": {"secretToken": PROXY_TOKEN}}}
            if name == "tess-private":
                secrets["jupyterhub"]["auth"] = {
                    "github": {
                        "clientId": f"tess-{env}",
                        "clientSecret": CLIENT_SECRET,
                        "callbackUrl": f"https://{domain}/hub/oauth_callback",
                    }
                }
            repo.write(f"{d}/secrets/{env}.yaml", secrets)
        image = {**IMAGE}
        if name == "tess-private":  # its own image, one package more
            image["requirements.txt"] += "lightkurve\n"
        for file, text in image.items():
            repo.write(f"{d}/image/{file}", text)
    run("git-crypt", "init", cwd=path)
    repo.git("add", "-A")
    repo.git("commit", "-q", "-m", "the prototype")
    run("git-crypt", "export-key", str(path.parent / "hubploy.key"), cwd=path)
    run("git-crypt", "lock", cwd=path)  # as a fresh clone has it: ciphertext
    return repo


@pytest.fixture(scope="module")
def hubploy(tmp_path_factory):
    root = tmp_path_factory.mktemp("hubploy")
    repo = make_hubploy_repo(root / "prototype")
    assert (
        (repo.path / "deployments/tess-private/secrets/prod.yaml")
        .read_bytes()
        .startswith(b"\0GITCRYPT\0")
    )
    return repo, root / "hubploy.key"


def import_(hubploy_repo: GitRepo, into: Path, *args: str):
    env = {"TESS_CHART_DIR": str(CHART_DIR), "TESS_TARGET": "local"}
    return cli("import-hubploy", str(hubploy_repo.path), "--into", str(into), *args, env=env)


@pytest.fixture(scope="module")
def imported(hubploy, tmp_path_factory):
    """A checkout the prototype was imported into, with its key; the import's output."""
    repo, key = hubploy
    into = make_repo(tmp_path_factory.mktemp("into") / "tess")
    out = import_(repo, into.path, "--git-crypt-key", str(key))
    return into, out


def common(into: GitRepo, name: str) -> dict:
    return into.read_yaml(f"hub_config/{name}/common.yaml")


def test_the_imported_layout_passes_validate(imported):
    into, out = imported
    assert out.returncode == 0, out.stdout + out.stderr
    assert "#### `tess-platform validate` passes" in out.stdout
    for release in ("tess-public-staging", "tess-public-prod", "tess-private-prod"):
        assert f"ok   {release}: values_sha256" in out.stdout
    again = cli("validate", "--tree", str(into.path), env={"TESS_CHART_DIR": str(CHART_DIR)})
    assert again.returncode == 0, again.stdout + again.stderr


def test_auth_becomes_hub_config_and_who_may_log_in_the_platforms_setting(imported):
    into, _ = imported
    private = common(into, "tess-private")
    config = private["hub"]["config"]
    assert config["JupyterHub"]["authenticator_class"] == "github"
    assert config["Authenticator"]["admin_users"] == ["tess-admin"]
    assert private["custom"]["tess"]["access"] == {"github": ["tess-science"]}
    assert "GitHubOAuthenticator" not in config  # allowed_organizations: custom.tess.access
    assert "auth" not in private
    # tmpauthenticator had no allow-list: JupyterHub 5 admits nobody without allow_all
    public = common(into, "tess-public")["hub"]["config"]
    assert public["JupyterHub"]["authenticator_class"] == "tmp"
    assert public["Authenticator"]["allow_all"] is True


def test_moved_keys_hosts_and_kept_defaults(imported):
    into, _ = imported
    private = common(into, "tess-private")
    assert private["custom"]["tess"]["domain"] == "private.tess.example.org"
    assert private["hub"]["containerSecurityContext"] == {"runAsUser": 1000}
    assert private["hub"]["podSecurityContext"] == {"fsGroup": 1000}
    assert "uid" not in private["hub"] and "fsGid" not in private["hub"]
    assert private["singleuser"]["cloudMetadata"] == {"blockWithIptables": True}
    # 0.9.0 served HTTPS on its hosts by default, and named home volumes the old way
    assert private["proxy"]["https"]["enabled"] is True
    assert "hosts" not in private["proxy"]["https"]  # the pipeline sets them from the domain
    assert private["singleuser"]["storage"]["dynamic"]["pvcNameTemplate"] == (
        "claim-{username}{servername}"
    )
    assert private["hub"]["config"]["KubeSpawner"]["slug_scheme"] == "escape"
    # tess-public has no homes: no volume names to keep
    assert "dynamic" not in common(into, "tess-public")["singleuser"]["storage"]
    # the wrapper chart's values are beneath each deployment's own
    assert private["singleuser"]["memory"] == {"guarantee": "512M", "limit": "2G"}
    assert private["cull"] == {"enabled": True, "timeout": 1800, "users": False}
    assert common(into, "tess-public")["cull"] == {
        "enabled": True,
        "timeout": 600,
        "maxAge": 28800,
        "users": True,
    }
    for env in ("staging", "prod"):  # hosts were all these files said
        assert into.read_yaml(f"hub_config/tess-private/{env}.yaml") == {}


def test_literal_extra_config_becomes_hub_config_and_code_is_reported_not_copied(imported):
    into, out = imported
    spawner = common(into, "tess-private")["hub"]["config"]
    assert spawner["KubeSpawner"]["start_timeout"] == 600
    assert spawner["KubeSpawner"]["http_timeout"] == 120
    assert spawner["Spawner"]["cmd"] == ["jupyter-labhub"]
    assert "extraConfig" not in common(into, "tess-private")["hub"]
    written = "".join(p.read_text() for p in (into.path / "hub_config").rglob("*.yaml"))
    assert "pre_spawn" not in written and "TESS_HOOK_TOKEN" not in written
    assert (
        "| `hub/values.yaml` | `hub.extraConfig.hooks` | line 1 is not a `c.Class.trait = "
        "value` setting: rewrite it as hub.config settings" in out.stdout
    )
    assert "TESS_HOOK_TOKEN" not in out.stdout


def test_the_wrapper_chart_hubploy_settings_and_credentials_are_reported(imported):
    into, out = imported
    report = out.stdout
    assert "| `hub/templates/nfs-pvc.yaml` | — | a template of the wrapper chart" in report
    assert "| `hub/values.yaml` | `nfsPVC` | a value of the wrapper chart's own templates" in report
    for d in ("tess-public", "tess-private"):
        assert f"| `deployments/{d}/secrets/aws-ecr-config.cfg` | — | a credentials file" in report
        assert f"| `deployments/{d}/hubploy.yaml` | `cluster` | the cluster is infra/'s" in report
    assert (
        "| `deployments/tess-public/config/dev.yaml` | — | not an environment here (common, "
        "staging, prod)" in report
    )
    assert (
        "| `deployments/tess-public/image` | — | a second image: every hub here runs "
        "image/, which is tess-private's |" in report
    )
    assert "aws_secret_access_key" not in report
    # a key the pinned chart's schema refuses: named, never written
    assert (
        "| `deployments/tess-private/config/common.yaml` | `scheduling.userScheduler.policy` | "
        "not allowed by the jupyterhub 4.4.0 values schema |" in report
    )
    assert "scheduling" not in common(into, "tess-private")
    assert (
        "| `hub_config/tess-public/common.yaml` | `singleuser.networkPolicy` | user servers "
        "reached private addresses under the old chart" in report
    )
    # what a first deploy on EKS would hit, said before it
    assert (
        "| `hub_config/tess-private/common.yaml` | `singleuser.storage.dynamic.storageClass` | "
        "homes were on the old cluster's default storage class; EKS has none" in report
    )
    assert (
        "| `deployments/tess-private/secrets/staging.yaml` | "
        "`hub.config.GitHubOAuthenticator.oauth_callback_url` | not "
        "https://staging.private.tess.example.org/hub/oauth_callback: set it there" in report
    )
    assert "tess-private/secrets/prod.yaml` | `hub.config.GitHubOAuthenticator.oauth" not in report
    assert "nfsPVC" not in common(into, "tess-private")


def test_secrets_are_decrypted_translated_and_written_for_this_repositorys_key(imported):
    into, out = imported
    relpath = "hub_config/tess-private/secrets/staging.yaml"
    path = into.path / relpath
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    secrets = into.read_yaml(relpath)
    assert secrets["hub"]["config"]["GitHubOAuthenticator"] == {
        "client_id": "tess-staging",
        "client_secret": CLIENT_SECRET,
        "oauth_callback_url": "https://private.tess.example.org/hub/oauth_callback",
    }
    assert secrets["proxy"]["secretToken"] == PROXY_TOKEN  # the old one, kept
    # what the platform needs besides: a cookie secret, the pipeline's service token
    assert len(secrets["hub"]["cookieSecret"]) == 64
    assert len(secrets["hub"]["services"]["tess-platform"]["apiToken"]) == 64
    # committed, git-crypt encrypts it with this repository's key
    into.git("add", relpath)
    staged = subprocess.run(["git", "show", f":{relpath}"], cwd=into.path, capture_output=True)
    into.git("reset", "-q")
    assert staged.stdout.startswith(b"\0GITCRYPT\0")
    # the example names the keys, never a value
    example = into.read_yaml("hub_config/tess-private/secrets/example.yaml")
    assert example["hub"]["config"]["GitHubOAuthenticator"]["client_secret"] == (
        "<hub.config.GitHubOAuthenticator.client_secret>"
    )
    for text in (out.stdout, out.stderr):
        assert CLIENT_SECRET not in text and PROXY_TOKEN not in text
        assert secrets["hub"]["cookieSecret"] not in text


def test_the_image_is_copied_and_what_may_not_build_is_said(imported):
    into, out = imported
    # the first deployment's (tess-private's), the other's named in the report
    assert (into.path / "image/requirements.txt").read_text() == (
        IMAGE["requirements.txt"] + "lightkurve\n"
    )
    assert not (into.path / "image/smoke").exists()
    report = out.stdout
    assert "| `image/runtime.txt` | — | Python 3.7 is past its end of life |" in report
    assert (
        "| `image/requirements.txt` | — | not pinned (==): numpy, lightkurve: the image" in report
    )


def tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and ".git" not in p.parts):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def test_a_second_run_on_the_same_input_changes_nothing(hubploy, imported):
    (repo, key), (into, _) = hubploy, imported
    before = tree_digest(into.path)
    out = import_(repo, into.path, "--git-crypt-key", str(key))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "#### written (0)" in out.stdout
    assert tree_digest(into.path) == before


def test_without_the_key_the_shape_is_written_and_secrets_init_named(hubploy, tmp_path):
    repo, _ = hubploy
    into = make_repo(tmp_path / "tess")
    for leftover in (".import-new-image", ".import-old-image"):  # of an import killed before
        (into.path / leftover / "half").mkdir(parents=True)
    out = import_(repo, into.path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert not list(into.path.glob(".import-*"))
    assert (into.path / "image/runtime.txt").read_text() == IMAGE["runtime.txt"]
    assert not (into.path / "hub_config/tess-private/secrets/staging.yaml").exists()
    example = into.read_yaml("hub_config/tess-private/secrets/example.yaml")
    assert set(example["hub"]["config"]["GitHubOAuthenticator"]) == {
        "client_id",
        "client_secret",
        "oauth_callback_url",
    }
    assert (
        "| `deployments/tess-private/secrets/prod.yaml` | — | encrypted and no key given "
        "(--git-crypt-key): its keys are unknown here; write hub_config/tess-private/secrets/"
        "<env>.yaml with `tess-platform secrets init <env> tess-private`" in out.stdout
    )


def test_a_wrong_key_hostile_yaml_or_a_linked_file_write_nothing(hubploy, tmp_path):
    repo, key = hubploy
    into = make_repo(tmp_path / "tess")
    before = tree_digest(into.path)
    wrong = tmp_path / "wrong.key"
    run("git-crypt", "export-key", str(wrong), cwd=into.path)  # this repository's, not the old
    out = import_(repo, into.path, "--git-crypt-key", str(wrong))
    assert out.returncode == 1
    assert out.stderr == (
        "tess-platform: deployments/tess-private/secrets/prod.yaml: git-crypt could not decrypt "
        "it with the key given with --git-crypt-key (is it the key of this repository?)\n"
    )

    hostile = GitRepo(tmp_path / "hostile")
    run("cp", "-r", str(repo.path), str(hostile.path))
    hostile.write(
        "deployments/tess-public/config/prod.yaml", "a: &a [*a, *a]\nb: !!python/name:os.system\n"
    )
    out = import_(hostile, into.path, "--git-crypt-key", str(key))
    assert out.returncode == 1
    assert out.stderr.startswith("tess-platform: deployments/tess-public/config/prod.yaml")

    odd = GitRepo(tmp_path / "odd")
    run("cp", "-r", str(repo.path), str(odd.path))
    odd.write(
        "deployments/tess-public/config/common.yaml",
        "jupyterhub:\n  auth:\n    type: custom\n    custom: just-a-string\n",
    )
    out = import_(odd, into.path, "--git-crypt-key", str(key))
    assert out.returncode == 1
    assert out.stderr.startswith(
        "tess-platform: deployments/tess-public/config/common.yaml: a key or value of an "
        "unexpected kind"
    )
    out = import_(repo, into.path, "--git-crypt-key", str(tmp_path / "no-such.key"))
    assert out.returncode == 1
    assert out.stderr == (
        f"tess-platform: {tmp_path / 'no-such.key'}: No such file or directory; give the old "
        "key's file\n"
    )

    linked = GitRepo(tmp_path / "linked")
    run("cp", "-r", str(repo.path), str(linked.path))
    target = linked.path / "deployments/tess-public/config/staging.yaml"
    target.unlink()
    target.symlink_to(key)
    out = import_(linked, into.path, "--git-crypt-key", str(key))
    assert out.returncode == 1
    assert "deployments/tess-public/config/staging.yaml: is a symbolic link" in out.stderr
    target.unlink()
    run("cp", str(repo.path / "deployments/tess-public/config/staging.yaml"), str(target))
    (linked.path / "deployments/tess-private/image/key").symlink_to(key)  # a key into image/
    out = import_(linked, into.path, "--git-crypt-key", str(key))
    assert out.returncode == 1
    assert out.stderr.startswith(
        "tess-platform: deployments/tess-private/image/key: a symbolic link: it could bring"
    )
    assert tree_digest(into.path) == before


def test_an_uncommitted_change_is_not_replaced_without_force(hubploy, tmp_path):
    repo, key = hubploy
    into = make_repo(tmp_path / "tess")
    into.write("hub_config/tess-public/common.yaml", "# my edit, not committed\n")
    out = import_(repo, into.path, "--git-crypt-key", str(key))
    assert out.returncode == 1
    assert "would replace what git does not hold: hub_config/tess-public/common.yaml" in out.stderr
    assert (into.path / "hub_config/tess-public/common.yaml").read_text().startswith("# my edit")
    assert not (into.path / "hub_config/tess-private/secrets/staging.yaml").exists()
    out = import_(repo, into.path, "--git-crypt-key", str(key), "--force")
    assert out.returncode == 0, out.stdout + out.stderr


def test_only_defaults_that_changed_since_the_old_chart_are_made_explicit(hubploy, tmp_path):
    repo, key = hubploy
    newer = GitRepo(tmp_path / "newer")
    run("cp", "-r", str(repo.path), str(newer.path))
    requirements = newer.path / "hub/requirements.yaml"
    requirements.write_text(requirements.read_text().replace("0.9.0", "3.3.8"))
    into = make_repo(tmp_path / "tess")
    out = import_(newer, into.path, "--git-crypt-key", str(key))
    assert out.returncode == 0, out.stdout + out.stderr
    private = common(into, "tess-private")
    assert "enabled" not in private["proxy"]["https"]  # 3.3.8 had it off: nothing to keep
    assert "`singleuser.networkPolicy`" not in out.stdout  # 3.3.8 made them too
    # KubeSpawner 7 came with chart 4: home volume names still to keep
    assert private["singleuser"]["storage"]["dynamic"]["pvcNameTemplate"] == (
        "claim-{username}{servername}"
    )


def test_allow_all_only_where_an_environment_had_no_allow_list(hubploy, tmp_path):
    repo, key = hubploy
    closed = GitRepo(tmp_path / "closed")
    run("cp", "-r", str(repo.path), str(closed.path))
    closed.write(
        "deployments/tess-public/config/prod.yaml",
        hosts("public.tess.example.org") + "  auth:\n    whitelist:\n      users: [ada]\n",
    )
    into = make_repo(tmp_path / "tess")
    out = import_(closed, into.path, "--git-crypt-key", str(key))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "allow_all" not in common(into, "tess-public")["hub"]["config"].get("Authenticator", {})
    staging = into.read_yaml("hub_config/tess-public/staging.yaml")
    assert staging["hub"]["config"]["Authenticator"] == {"allow_all": True}
    prod = into.read_yaml("hub_config/tess-public/prod.yaml")
    assert prod["hub"]["config"]["Authenticator"] == {"allowed_users": ["ada"]}


def test_a_requirement_from_a_url_is_counted_never_quoted(tmp_path):
    (tmp_path / "image").mkdir()
    (tmp_path / "image/runtime.txt").write_text("python-3.11\n")
    (tmp_path / "image/requirements.txt").write_text(
        "numpy==2.0.0\ngit+https://ci:tok3n-8d2f@git.example.org/tess/tools.git\n"
    )
    report = Report("old", "new")
    check_image(tmp_path, report)
    assert "tok3n" not in report.markdown()
    assert [f.message for f in report.findings] == [
        "1 requirement(s) from a URL: pin each to a commit or a file's hash"
    ]


# the translation itself, one old key at a time


def translated(values: dict) -> tuple[dict, Report]:
    report = Report("old", "new")
    return chart_keys.translate(values, "config/common.yaml", report), report


PULL_SECRET = {"registry": "r.example.org", "username": "u", "password": "p"}


@pytest.mark.parametrize(
    "old",
    [
        {"hub": {"uid": 1000, "fsGid": 1000}},
        {"rbac": {"enabled": False}},
        {"proxy": {"networkPolicy": {"enabled": True}, "pdb": {"minAvailable": 1}}},
        {"proxy": {"nodeSelector": {"pool": "core"}}},
        {"singleuser": {"imagePullSecret": {"enabled": True, **PULL_SECRET}}},
        {"hub": {"imagePullSecret": {"enabled": True, **PULL_SECRET}}},
        {"hub": {"extraConfigMap": {"motd": "hello"}}},
        {"singleuser": {"cloudMetadata": {"enabled": True}}},
    ],
)
def test_each_moved_key_lands_where_the_pinned_chart_takes_it(chart, old):
    out, report = translated(old)
    assert rejected(chart, chart_values(chart, [Layer("old", out)])) == []
    assert not report.of(NOT_IMPORTED)
    assert not set(leaf_paths(old)) & set(leaf_paths(out))  # nothing left at its old key


def test_homes_on_the_nodes_disk_become_a_host_path_volume(chart):
    storage = {"type": "hostPath", "homeHostPathTemplate": "/data/{username}"}
    out, report = translated({"singleuser": {"storage": storage}})
    assert out["singleuser"]["storage"] == {
        "type": "none",
        "extraVolumes": [{"name": "home", "hostPath": {"path": "/data/{username}"}}],
        "extraVolumeMounts": [{"name": "home", "mountPath": "/home/jovyan"}],
    }
    assert rejected(chart, chart_values(chart, [Layer("old", out)])) == []
    assert [f.key for f in report.of(CHECK)] == ["singleuser.storage.type"]


def test_two_image_pull_secrets_merge_and_a_conflict_is_named():
    out, report = translated(
        {
            "singleuser": {"imagePullSecret": {"enabled": True, "registry": "a", "username": "u"}},
            "hub": {"imagePullSecret": {"enabled": True, "registry": "b"}},
        }
    )
    assert out == {"imagePullSecret": {"create": True, "registry": "a", "username": "u"}}
    (left,) = report.of(NOT_IMPORTED)
    assert left.key == "hub.imagePullSecret.registry"


def test_a_custom_authenticator_and_its_config():
    out, report = translated(
        {"auth": {"type": "custom", "custom": {"className": "x.MyAuth", "config": {"a": 1}}}}
    )
    assert out == {
        "hub": {"config": {"JupyterHub": {"authenticator_class": "x.MyAuth"}, "MyAuth": {"a": 1}}}
    }
    assert report.of(TRANSLATED)


def test_allowing_cloud_metadata_is_kept_and_flagged():
    out, report = translated({"singleuser": {"cloudMetadata": {"enabled": True}}})
    assert out["singleuser"] == {
        "cloudMetadata": {"blockWithIptables": False},
        "networkPolicy": {"egressAllowRules": {"cloudMetadataServer": True}},
    }
    assert any("cloud credentials" in f.message for f in report.findings)


def test_unknown_auth_settings_and_bad_extra_config_are_findings_not_values():
    out, report = translated(
        {
            "auth": {"type": "github", "github": {"clientId": "x", "teamWhitelist": ["t"]}},
            "hub": {"extraConfig": {"broken": "c.A.b = (", "call": "c.A.b = f()"}},
        }
    )
    assert out == {
        "hub": {
            "config": {
                "JupyterHub": {"authenticator_class": "github"},
                "GitHubOAuthenticator": {"client_id": "x"},
            }
        }
    }
    left = {(f.key, f.message.split(":")[0]) for f in report.of(NOT_IMPORTED)}
    assert left == {
        ("auth.github.teamWhitelist", "a setting this import does not know"),
        ("hub.extraConfig.broken", "not valid Python (line 1)"),
        ("hub.extraConfig.call", "line 1 sets c.A.b from code"),
    }


@pytest.mark.parametrize("name", ["Tess_Hub", "-x"])
def test_a_deployment_that_cannot_be_a_release_name_is_named(hubploy, tmp_path, name):
    repo, key = hubploy
    bad = GitRepo(tmp_path / "bad")
    run("cp", "-r", str(repo.path), str(bad.path))
    os.rename(bad.path / "deployments/tess-public", bad.path / f"deployments/{name}")
    into = make_repo(tmp_path / "tess")
    out = import_(bad, into.path, "--git-crypt-key", str(key))
    assert out.returncode == 1
    assert out.stderr.startswith(f"tess-platform: deployments/{name}/: ")
    assert yaml.safe_load((into.path / "hub_config/tess-public/common.yaml").read_text())
