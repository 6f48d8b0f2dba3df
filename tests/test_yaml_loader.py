"""The one YAML loader, on the corpus of hostile input and on what values files may hold."""

import re

import pytest
from hostile import CORPUS, Case

from tess_platform.chart import JUPYTERHUB, ChartError, chart_files
from tess_platform.values import ValuesError, dotted
from tess_platform.yaml_loader import load_generated, load_mapping


@pytest.mark.parametrize("case", [c for c in CORPUS if c.loader], ids=str)
def test_hostile_input_is_a_one_line_error_naming_file_line_and_key(case: Case):
    with pytest.raises(ValuesError) as error:
        load_mapping(case.content, case.relpath, secret="/secrets/" in case.relpath)
    message = str(error.value)
    assert re.match(case.error, message), message
    assert "\n" not in message and len(message) < 300
    if case.planted:
        assert case.planted not in message


@pytest.mark.parametrize(
    "text, where",
    [
        ("hub:\n  config: [\n", "x.yaml:3:1"),
        ("a: b: c\n", "x.yaml:1:5"),
    ],
)
def test_malformed_yaml_names_the_file_and_line(text, where):
    with pytest.raises(ValuesError, match=f"^{where}: malformed YAML"):
        load_mapping(text.encode(), "x.yaml")


def test_a_file_that_is_not_a_mapping_is_an_error():
    for text, kind in (("null", "null \\(an empty value\\)"), ("just text", "a single value")):
        with pytest.raises(
            ValuesError, match=f"x.yaml: must be a mapping of values .*, not {kind}$"
        ):
            load_mapping(text.encode(), "x.yaml")
    with pytest.raises(
        ValuesError, match=r"x.yaml: must be a mapping of values \(key: value\), not a list"
    ):
        load_mapping(b"- a\n- b\n", "x.yaml")
    assert load_mapping(b"# only a comment\n", "x.yaml") == {}
    assert load_mapping(b"", "x.yaml") == {}


def test_what_values_files_may_hold_reads_as_helm_reads_it():
    text = (
        b"\xef\xbb\xbf"  # a byte-order mark, as some editors write
        b"base: &base {cpu: 1, memory: 1G}\n"
        b"singleuser:\n  <<: *base\n  memory: 2G\n"  # a merge key, then an override
        b"release: 2024-01-01\n"  # a date stays text, as in helm
        b"quoted: '!not-a-tag'\n"
        b"forced: !!str 600\n"
    )
    assert load_mapping(text, "x.yaml") == {
        "base": {"cpu": 1, "memory": "1G"},
        "singleuser": {"cpu": 1, "memory": "2G"},
        "release": "2024-01-01",
        "quoted": "!not-a-tag",
        "forced": "600",
    }


def test_the_charts_own_files_read_as_values_files_do(tmp_path):
    """The chart's defaults and schema go through libyaml (no person wrote them): the same
    data as values files give, and a broken file of the chart is an error naming it."""
    text = "base: &base {cpu: 1}\nsingleuser:\n  <<: *base\n  memory: 2G\nrelease: 2024-01-01\n"
    assert load_generated(text) == [load_mapping(text.encode(), "x.yaml")]
    chart = tmp_path / "chart"
    chart.mkdir()
    (chart / "values.schema.json").write_text("{}")
    (chart / "values.yaml").write_text("hub: [\n")
    with pytest.raises(ChartError, match=f"^{chart}/values.yaml: not the YAML of jupyterhub"):
        chart_files(JUPYTERHUB, chart, tmp_path / "cache")
    (chart / "values.yaml").write_text("- a list\n")
    with pytest.raises(ChartError, match=f"^{chart}/values.yaml: not one mapping"):
        chart_files(JUPYTERHUB, chart, tmp_path / "cache")


def test_a_megabyte_key_is_named_clipped():
    name = dotted(("hub", "k" * 1_000_000))
    assert name.startswith("hub.kkk") and name.endswith("… (1000000 characters)")
    assert len(name) < 100
