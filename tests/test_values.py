"""Helm's merge rules, provenance for errors, masking and fingerprints."""

from tess_platform.values import Layer, diff, merge


def test_later_layers_win_maps_merge_lists_replace_null_deletes():
    merged = merge(
        [
            Layer(
                "a.yaml",
                {
                    "hub": {"config": {"A": 1, "B": 2}},
                    "list": [1, 2],
                    "keep": "x",
                    "gone": {"deep": True},
                },
            ),
            Layer("b.yaml", {"hub": {"config": {"B": 3}}, "list": [9], "gone": None}),
        ]
    )
    assert merged.values == {"hub": {"config": {"A": 1, "B": 3}}, "list": [9], "keep": "x"}


def test_a_scalar_replaces_a_map_and_a_map_replaces_a_scalar():
    merged = merge([Layer("a", {"x": {"y": 1}, "z": 1}), Layer("b", {"x": 2, "z": {"w": 1}})])
    assert merged.values == {"x": 2, "z": {"w": 1}}


def test_every_key_remembers_the_file_that_set_it():
    merged = merge(
        [
            Layer("chart defaults", {"singleuser": {"memory": {"limit": None, "guarantee": "1G"}}}),
            Layer("hub_config/values.yaml", {"singleuser": {"memory": {"guarantee": "128M"}}}),
            Layer("hub_config/tess-public/common.yaml", {"singleuser": {"memry": {"limit": "1G"}}}),
        ]
    )
    assert (
        merged.source_of(("singleuser", "memry", "limit")) == "hub_config/tess-public/common.yaml"
    )
    assert merged.source_of(("singleuser", "memory", "guarantee")) == "hub_config/values.yaml"


def test_secrets_are_masked_and_fingerprinted_never_shown():
    merged = merge(
        [
            Layer("values.yaml", {"proxy": {"secretToken": None}, "hub": {"x": 1}}),
            Layer("secrets/staging.yaml", {"proxy": {"secretToken": "s3cr3t-token"}}, secret=True),
        ]
    )
    assert merged.values["proxy"]["secretToken"] == "s3cr3t-token"
    assert merged.masked() == {"proxy": {"secretToken": "***"}, "hub": {"x": 1}}
    assert "s3cr3t-token" not in str(merged.fingerprint())
    rotated = merge(
        [
            Layer("secrets/staging.yaml", {"proxy": {"secretToken": "other-token"}}, secret=True),
            Layer("values.yaml", {"hub": {"x": 1}}),
        ]
    )
    assert rotated.sha256() != merged.sha256()
    assert diff(merged.fingerprint(), rotated.fingerprint(), rotated.secret_paths) == [
        "`proxy.secretToken`: secret changed"
    ]


def test_a_secret_overridden_by_a_later_plain_layer_is_no_longer_secret():
    merged = merge([Layer("s", {"a": "secret-value"}, secret=True), Layer("p", {"a": "plain"})])
    assert merged.secret_paths == set()
    assert merged.masked() == {"a": "plain"}


def test_diff_lists_added_removed_and_changed_keys():
    old = {"cull": {"timeout": 600}, "hub": {"a": 1}}
    new = {"cull": {"timeout": 1800}, "singleuser": {"defaultUrl": "/lab"}}
    assert diff(old, new, set()) == [
        "`cull.timeout`: 600 → 1800",
        "`hub.a`: removed (was 1)",
        '`singleuser.defaultUrl`: added "/lab"',
    ]
    assert diff(None, new, set()) == ["first revision"]


def test_diff_of_an_empty_mapping_filled_names_its_keys_not_the_mapping_removed():
    old = {"singleuser": {"extraEnv": {}}}
    new = {"singleuser": {"extraEnv": {"TESS_SECTOR": "42"}}}
    assert diff(old, new, set()) == ['`singleuser.extraEnv.TESS_SECTOR`: added "42"']
    assert diff(new, old, set()) == ['`singleuser.extraEnv.TESS_SECTOR`: removed (was "42")']
    assert diff(old, {"singleuser": {"extraEnv": "x"}}, set()) == [
        '`singleuser.extraEnv`: {} → "x"'  # no longer a mapping: a change of its own
    ]
