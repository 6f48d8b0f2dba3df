"""Values checked against the real chart schema, errors naming the file and the key."""

import pytest

from tess_platform.hierarchy import WorkTree, release_hierarchy, release_values
from tess_platform.releases import Release
from tess_platform.values import ValuesError

PUBLIC = Release("tess-public", "staging")


def values_of(repo, chart, release=PUBLIC, target="local"):
    tree = WorkTree(repo.path)
    return release_values(
        chart, release_hierarchy(tree, release, target=target, git_crypt_key=None), None, release
    )


@pytest.mark.parametrize(
    "release", [Release(d, e) for d in ("tess-public", "tess-private") for e in ("staging", "prod")]
)
def test_the_shipped_hierarchy_passes_the_chart_schema(repo, chart, release):
    merged = values_of(repo, chart, release).values
    assert merged["singleuser"]["memory"] == {"guarantee": "128M", "limit": "1G"}
    assert merged["singleuser"]["uid"] == 1000
    assert merged["singleuser"]["allowPrivilegeEscalation"] is False
    assert merged["singleuser"]["defaultUrl"] == "/lab"
    assert merged["singleuser"]["networkPolicy"]["egressAllowRules"]["cloudMetadataServer"] is False
    assert merged["prePuller"]["continuous"]["enabled"] is (release.env == "prod")


def test_the_deployments_differ_as_designed(repo, chart):
    for d in ("tess-public", "tess-private"):  # an unlocked checkout, as an operator's
        repo.write(f"hub_config/{d}/secrets/prod.yaml", {"proxy": {"secretToken": "0" * 64}})
    public = values_of(repo, chart, Release("tess-public", "prod"), target="aws").values
    private = values_of(repo, chart, Release("tess-private", "prod"), target="aws").values
    assert public["hub"]["config"]["JupyterHub"]["authenticator_class"] == "tmp"
    assert public["singleuser"]["storage"]["type"] == "none"
    assert (public["cull"]["timeout"], public["cull"]["maxAge"], public["cull"]["users"]) == (
        600,
        28800,
        True,
    )
    assert private["hub"]["config"]["JupyterHub"]["authenticator_class"] == "github"
    assert private["singleuser"]["storage"]["dynamic"]["storageClass"] == "efs-homes"
    assert (private["cull"]["timeout"], private["cull"]["users"]) == (1800, False)


def test_an_unknown_key_names_its_file_and_key_path(repo, chart):
    repo.edit_yaml(
        "hub_config/tess-public/common.yaml",
        lambda d: d["singleuser"].update(memry={"limit": "2G"}),
    )
    with pytest.raises(ValuesError) as err:
        values_of(repo, chart)
    assert (
        "hub_config/tess-public/common.yaml: singleuser.memry: not allowed by the "
        "jupyterhub 4.4.0 values schema; did you mean `memory`?"
    ) in str(err.value)


def test_a_wrong_type_names_the_environment_file(repo, chart):
    repo.write("hub_config/tess-public/staging.yaml", {"cull": {"timeout": "ten minutes"}})
    with pytest.raises(ValuesError) as err:
        values_of(repo, chart)
    assert "hub_config/tess-public/staging.yaml: cull.timeout: must be of type integer" in str(
        err.value
    )
    assert "ten minutes" not in str(err.value)


def test_a_missing_file_is_named(repo, chart):
    (repo.path / "hub_config/tess-public/staging.yaml").unlink()
    with pytest.raises(ValuesError, match="hub_config/tess-public/staging.yaml: missing"):
        values_of(repo, chart)


def test_null_deletes_a_chart_default_and_the_schema_sees_it(repo, chart):
    repo.write("hub_config/tess-public/staging.yaml", {"cull": None})
    with pytest.raises(ValuesError, match="hub_config/tess-public/staging.yaml: cull: is required"):
        values_of(repo, chart)
