"""Releases through the helm CLI: `helm template` for real on a chart of the test's own, and
every cluster command against a recording stand-in for helm, which keeps a release history."""

import os
import stat
import tempfile
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from conftest import PLANTED
from fakes import FakeHelm

from tess_platform.backends.helm import Helm, HelmError
from tess_platform.chart import JUPYTERHUB, ChartError, ChartFiles, renderable
from tess_platform.secrets import Redactor
from tess_platform.tools import tool
from tess_platform.values import Layer, merge

RELEASE = NAMESPACE = "tess-private-staging"


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """A HOME and a temp folder of the test's own: anything helm or the client leaves shows."""
    home, tmp = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    tmp.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("HELM_DEBUG", "true")  # an operator's setting must not reach helm
    monkeypatch.setenv("TESS_GIT_CRYPT_KEY", PLANTED)  # the platform's: helm's plugins never see it
    monkeypatch.setenv("KUBECONFIG", str(home / ".kube" / "config"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    yield home, tmp
    assert list(home.iterdir()) == [], "something was written to HOME"
    assert list(tmp.iterdir()) == [], "a temporary file was left behind"


@pytest.fixture
def fake(tmp_path, monkeypatch):
    fake = FakeHelm(tmp_path / "fake-helm", monkeypatch)
    yield fake
    for call in fake.calls():
        assert "--debug" not in call["argv"] and "--dry-run" not in call["argv"]
        assert not any(a.startswith(("--debug", "--dry-run")) for a in call["argv"])
        assert call["kubeconfig_exists"]
        env = call["env"]
        assert env["KUBECONFIG"] is None and env["HELM_DEBUG"] is None
        assert call["credentials"] == [], "helm was given the platform's credentials"
        for key in ("HOME", "HELM_CONFIG_HOME", "HELM_CACHE_HOME", "HELM_DATA_HOME"):
            assert env[key].startswith(str(tmp_path / "tmp")), key
        for key in ("KUBECACHEDIR", "TMPDIR"):
            assert env[key].startswith(str(tmp_path / "tmp")), key
        for values in call["files"]:
            assert values["mode"] == 0o600
            assert not Path(values["path"]).exists(), "a values file outlived its call"


VALUES = [
    {"hub": {"config": {"JupyterHub": {"admin_access": False}}}, "proxy": {"https": {}}},
    {"singleuser": {"image": {"name": "tess-user-image", "tag": "0123abcd"}}},
]


def secret_merged():
    return merge(
        [
            Layer("hub_config/values.yaml", {"hub": {"cookieSecret": "not-a-secret"}}),
            Layer(
                "hub_config/tess-private/secrets/staging.yaml",
                {"hub": {"config": {"GitHubOAuthenticator": {"client_secret": PLANTED}}}},
                secret=True,
            ),
        ]
    )


# -- helm template, for real ---------------------------------------------------------------


def small_chart(folder: Path) -> Path:
    (folder / "templates").mkdir(parents=True)
    (folder / "Chart.yaml").write_text("apiVersion: v2\nname: tiny\nversion: 0.1.0\n")
    (folder / "values.yaml").write_text("greeting: hello\nreplicas: 1\n")
    (folder / "templates" / "configmap.yaml").write_text(
        textwrap.dedent(
            """\
            apiVersion: v1
            kind: ConfigMap
            metadata:
              name: {{ .Release.Name }}
              namespace: {{ .Release.Namespace }}
            data:
              greeting: {{ .Values.greeting | quote }}
              replicas: {{ .Values.replicas | quote }}
              colour: {{ .Values.colour | default "none" | quote }}
            """
        )
    )
    return folder


def test_helm_template_renders_the_values_files_in_order(tmp_path):
    chart = small_chart(tmp_path / "tiny")
    helm = Helm(None)  # no cluster needed, and none is looked for
    out = helm.template(
        RELEASE,
        NAMESPACE,
        chart,
        [{"greeting": "from the first file", "colour": "blue"}, {"greeting": "the later wins"}],
    )
    (doc,) = [d for d in yaml.safe_load_all(out) if d]
    assert doc["metadata"] == {"name": RELEASE, "namespace": NAMESPACE}
    assert doc["data"] == {"greeting": "the later wins", "replicas": "1", "colour": "blue"}


def test_helm_template_errors_are_masked(tmp_path):
    chart = small_chart(tmp_path / "tiny")
    (chart / "templates" / "bad.yaml").write_text('{{ fail (printf "no: %s" .Values.token) }}\n')
    helm = Helm(None, redact=Redactor([PLANTED]))
    with pytest.raises(HelmError) as raised:
        helm.template(RELEASE, NAMESPACE, chart, [{"token": PLANTED}])
    assert "helm template of" in str(raised.value) and "no: ***" in str(raised.value)
    assert PLANTED not in str(raised.value)


def test_the_defaults():
    helm = Helm(Path("kubeconfig"))
    assert helm.binary == tool("helm") and helm.timeout == "10m"
    with pytest.raises(ValueError, match="not a duration"):
        Helm(None, timeout="ten minutes")


# -- upgrade -------------------------------------------------------------------------------


def test_upgrade_installs_the_pinned_chart_atomically(fake):
    upgraded = fake.helm().upgrade(RELEASE, NAMESPACE, JUPYTERHUB, VALUES, secret_merged())

    assert fake.commands() == ["status", "upgrade", "status"]
    status, upgrade, after = fake.calls()
    assert status["argv"] == ["status", RELEASE, "--namespace", NAMESPACE, "-o", "json"] + [
        "--kubeconfig",
        str(fake.kubeconfig),
    ]
    files = [f["path"] for f in upgrade["files"]]
    assert upgrade["argv"] == [
        "upgrade",
        "--install",
        RELEASE,
        "jupyterhub",
        "--repo",
        "https://hub.jupyter.org/helm-chart/",
        "--version",
        "4.4.0",
        "--namespace",
        NAMESPACE,
        "--create-namespace",
        "--atomic",
        "--wait",
        "--timeout",
        "7m",
        "--cleanup-on-fail",
        "-f",
        files[0],
        "-f",
        files[1],
        "--kubeconfig",
        str(fake.kubeconfig),
    ]
    # one file a document, in merge order, private, gone after (checked by the fixture too)
    assert [yaml.safe_load(f["content"]) for f in upgrade["files"]] == VALUES
    assert [f["mode"] for f in upgrade["files"]] == [0o600, 0o600]
    assert not any(Path(f).exists() for f in files)
    assert after["argv"][:2] == ["status", RELEASE]

    assert upgraded.revision == 1 and upgraded.recovered is None
    assert upgraded.status["info"]["status"] == "deployed"
    assert upgraded.status["chart"] == {
        "name": "jupyterhub",
        "version": "4.4.0",
        "appVersion": "5.5.0",
    }
    assert "config" not in upgraded.status and "manifest" not in upgraded.status
    assert upgraded.output == "NOTES: your hub is up"
    assert PLANTED not in repr(upgraded)


def test_upgrade_of_a_deployed_release_needs_no_recovery(fake):
    fake.scenario("deployed")
    upgraded = fake.helm().upgrade(RELEASE, NAMESPACE, JUPYTERHUB, VALUES)
    assert fake.commands() == ["status", "upgrade", "status"]
    assert upgraded.revision == 3 and upgraded.recovered is None


def test_a_first_install_stuck_in_pending_install_is_uninstalled_first(fake):
    fake.scenario("pending-install")
    upgraded = fake.helm().upgrade(RELEASE, NAMESPACE, JUPYTERHUB, VALUES)
    assert fake.commands() == ["status", "uninstall", "upgrade", "status"]
    assert fake.calls()[1]["argv"] == [
        "uninstall",
        RELEASE,
        "--namespace",
        NAMESPACE,
        "--wait",
        *fake.tail("--timeout", "7m"),
    ]
    assert upgraded.revision == 1
    assert "pending-install" in upgraded.recovered and "uninstalled" in upgraded.recovered


@pytest.mark.parametrize(
    ("scenario", "good", "new"),
    [
        ("pending-upgrade", 2, 5),
        ("pending-rollback", 2, 6),
        ("pending-upgrade-after-failures", 1, 5),  # the last superseded, as helm's --atomic does
    ],
)
def test_a_stuck_upgrade_or_rollback_is_rolled_back_to_the_last_good_revision(
    fake, scenario, good, new
):
    fake.scenario(scenario)
    upgraded = fake.helm().upgrade(RELEASE, NAMESPACE, JUPYTERHUB, VALUES)
    assert fake.commands() == ["status", "history", "rollback", "upgrade", "status"]
    assert fake.calls()[1]["argv"][:4] == ["history", RELEASE, "--namespace", NAMESPACE]
    assert fake.calls()[2]["argv"] == [
        "rollback",
        RELEASE,
        str(good),
        "--namespace",
        NAMESPACE,
        "--wait",
        *fake.tail("--timeout", "7m"),
    ]
    assert upgraded.revision == new
    assert upgraded.recovered == (
        f"{RELEASE} was stuck in {scenario.split('-after')[0]}: rolled back to revision {good}"
    )


def test_a_stuck_release_with_nothing_to_go_back_to_is_not_upgraded(fake):
    fake.scenario("stuck-with-nothing-good")
    with pytest.raises(HelmError, match="stuck in pending-upgrade and has no deployed revision"):
        fake.helm().upgrade(RELEASE, NAMESPACE, JUPYTERHUB, VALUES)
    assert fake.commands() == ["status", "history"]


def test_a_failed_upgrade_masks_the_secrets_helm_quotes(fake):
    fake.scenario("fresh", fail="upgrade")
    with pytest.raises(HelmError) as raised:
        fake.helm().upgrade(
            RELEASE, NAMESPACE, JUPYTERHUB, VALUES + [{"token": PLANTED}], [PLANTED]
        )
    message = str(raised.value)
    assert message.startswith(f"helm upgrade of {RELEASE} in {NAMESPACE} failed (exit 1): Error:")
    assert "token: ***" in message and PLANTED not in message
    assert PLANTED in fake.calls()[-1]["files"][-1]["content"]  # helm did get the value
    assert fake.commands() == ["status", "upgrade"]


def test_a_failed_upgrade_masks_the_secrets_of_merged_values(fake):
    fake.scenario("fresh", fail="upgrade")
    merged = secret_merged()
    with pytest.raises(HelmError) as raised:
        fake.helm().upgrade(RELEASE, NAMESPACE, JUPYTERHUB, [merged.values], merged)
    assert "client_secret: ***" in str(raised.value) and PLANTED not in str(raised.value)
    assert "not-a-secret" in str(raised.value)  # only the secret layer's values are masked


# -- status, history, rollback -------------------------------------------------------------


def test_status_and_history_of_a_release_that_does_not_exist(fake):
    helm = fake.helm()
    assert helm.status(RELEASE, NAMESPACE) is None
    assert helm.history(RELEASE, NAMESPACE) == []


def test_status_leaves_the_values_out_and_history_is_masked(fake):
    fake.scenario("failed-with-secret")
    helm = fake.helm(redact=Redactor([PLANTED]))
    status = helm.status(RELEASE, NAMESPACE)
    assert status == {
        "name": RELEASE,
        "namespace": NAMESPACE,
        "version": 1,
        "info": {"status": "failed", "description": "Upgrade failed: bad value ***"},
        "chart": {"name": "jupyterhub", "version": "4.4.0", "appVersion": "5.5.0"},
    }
    (past,) = helm.history(RELEASE, NAMESPACE)
    assert past["revision"] == 1 and past["description"] == "Upgrade failed: bad value ***"
    assert fake.calls()[1]["argv"] == [
        "history",
        RELEASE,
        "--namespace",
        NAMESPACE,
        "-o",
        "json",
    ] + [
        "--kubeconfig",
        str(fake.kubeconfig),
    ]


def test_rollback_waits_for_the_revision_it_puts_back(fake):
    fake.scenario("deployed")
    status = fake.helm().rollback(RELEASE, NAMESPACE, 1)
    assert fake.calls()[0]["argv"] == [
        "rollback",
        RELEASE,
        "1",
        "--namespace",
        NAMESPACE,
        "--wait",
        *fake.tail("--timeout", "7m"),
    ]
    assert status["version"] == 3 and status["info"]["description"] == "Rollback to 1"


def test_a_failed_rollback_is_a_masked_helm_error(fake):
    fake.scenario("deployed", fail="rollback")
    with pytest.raises(HelmError, match=f"helm rollback of {RELEASE} to revision 1 failed"):
        fake.helm(redact=Redactor([PLANTED])).rollback(RELEASE, NAMESPACE, 1)


def test_cluster_commands_need_a_kubeconfig(fake):
    helm = Helm(None, binary=str(fake.binary))
    with pytest.raises(HelmError, match="needs a cluster"):
        helm.upgrade(RELEASE, NAMESPACE, JUPYTERHUB, VALUES)
    assert fake.calls() == []  # never falls back to ~/.kube/config or localhost


def test_a_missing_helm_is_a_clear_error(tmp_path):
    helm = Helm(tmp_path / "kubeconfig", binary=str(tmp_path / "no-helm"))
    with pytest.raises(HelmError, match="helm is not installed"):
        helm.status(RELEASE, NAMESPACE)


def test_the_values_files_are_written_with_no_group_or_world_bits_even_with_a_lax_umask(fake):
    old = os.umask(0)
    try:
        fake.helm().upgrade(RELEASE, NAMESPACE, JUPYTERHUB, VALUES)
    finally:
        os.umask(old)
    (upgrade,) = [c for c in fake.calls() if c["argv"][0] == "upgrade"]
    assert {stat.S_IMODE(f["mode"]) for f in upgrade["files"]} == {0o600}


def test_rendering_from_a_values_only_chart_folder_says_it_needs_the_whole_chart(tmp_path):
    """TESS_CHART_DIR with the values and schema serves validate's values, not helm template:
    where the chart cannot be pulled either, the error says what the folder lacks."""
    unreachable = replace(JUPYTERHUB, repo="http://127.0.0.1:9/charts")  # nothing listens
    files = ChartFiles(unreachable, {}, {}, tmp_path / "values-only")
    with pytest.raises(ChartError) as error:
        renderable(files, tmp_path / "cache")
    assert str(error.value).startswith(f"helm could not pull {JUPYTERHUB.label} from ")
    assert str(error.value).endswith(
        "; or set TESS_CHART_DIR to the chart's own folder (Chart.yaml, templates/)"
    )
