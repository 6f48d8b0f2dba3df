"""The corpus of hostile and broken input: what many hands commit to a deployment repository
on a bad day. Each case is a file's content and the error an operator must get for it (the
file, the line and the key). A case with `planted` holds a secret value that must appear
nowhere."""

from __future__ import annotations

from dataclasses import dataclass

from conftest import PLANTED

VALUES = "hub_config/tess-public/common.yaml"
STAGING_VALUES = "hub_config/tess-public/staging.yaml"
SECRETS = "hub_config/tess-public/secrets/staging.yaml"


@dataclass(frozen=True)
class Case:
    name: str
    relpath: str
    content: bytes
    error: str  # a regex the one-line error matches, from its start
    planted: str | None = None  # a secret value in `content` that must never show
    loader: bool = True  # the YAML loader itself refuses it (else: what reads the values)

    def __str__(self) -> str:
        return self.name


def _bomb(levels: int = 9) -> bytes:
    """A billion-laughs file: 9 lines that stand for 9**9 values."""
    lines = [b"l0: &l0 [x, x, x, x, x, x, x, x, x]"]
    for n in range(1, levels):
        refs = ", ".join([f"*l{n - 1}"] * 9).encode()
        lines.append(b"l%d: &l%d [%s]" % (n, n, refs))
    return b"\n".join(lines) + b"\n"


CORPUS = [
    Case(
        "not_utf8",
        VALUES,
        b"cull:\n  timeout: \xff\xfe600\n",
        rf"{VALUES}:2:12: not UTF-8 text",
    ),
    Case(
        "control_character",
        VALUES,
        b"cull:\n  timeout: 600\x00\n",
        rf"{VALUES}:2: a control character",
    ),
    Case(
        "nested_too_deep",
        VALUES,
        b"custom: " + b"[" * 5000 + b"]" * 5000 + b"\n",
        rf"{VALUES}:1:\d+: nested more than 64 deep",
    ),
    Case(
        "alias_bomb",
        VALUES,
        _bomb(),
        rf"{VALUES}:\d+:\d+: l\d: more than 200,000 values once its aliases are expanded",
    ),
    Case(
        "alias_inside_itself",
        VALUES,
        b"custom: &loop {tess: [*loop]}\n",
        rf"{VALUES}:1:\d+: custom.tess.0: a YAML alias refers to itself",
    ),
    Case(
        "duplicate_key",
        VALUES,
        b"cull:\n  timeout: 600\n  every: 60\n  timeout: 1200\n",
        rf"{VALUES}:4:3: cull.timeout: set twice in one mapping",
    ),
    Case(
        "tag",
        VALUES,
        b"cull:\n  timeout: !!python/object:os.system 600\n",
        rf"{VALUES}:2:12: cull.timeout: a YAML tag \(tag:yaml.org,2002:python/object:os.system\)",
    ),
    Case(
        "too_big",
        VALUES,
        b"custom:\n  notes: '" + b"x" * 1_000_000 + b"'\n",
        rf"{VALUES}: 1,000,\d+ bytes; a values file holds at most 1,000,000",
    ),
    Case(
        "secret_read_as_a_tag",
        SECRETS,
        f"hub:\n  cookieSecret: !{PLANTED}\n".encode(),
        rf"{SECRETS}:2:17: hub.cookieSecret: a YAML tag is not plain data",
        planted=PLANTED,
    ),
    Case(
        "secret_read_as_an_alias",
        SECRETS,
        f"hub:\n  cookieSecret: *{PLANTED}\n".encode(),
        rf"{SECRETS}:2:17: malformed YAML: found undefined alias '…'; a value that starts "
        r"with `\*` or `&` must be quoted",
        planted=PLANTED,
    ),
    Case(
        "secret_malformed",
        SECRETS,
        f"hub:\n  cookieSecret: {PLANTED}: oops\n".encode(),
        rf"{SECRETS}:2:\d+: malformed YAML",
        planted=PLANTED,
    ),
    Case(
        "secret_pasted_as_a_key",  # a key no schema allows: its name would be the token
        SECRETS,
        f"hub:\n  cookieSecret: x\n  {PLANTED}: y\n".encode(),
        rf"{SECRETS}: hub\.‹a key›: not allowed by the jupyterhub",
        planted=PLANTED,
        loader=False,
    ),
    Case(
        "secret_pasted_as_a_key_twice",
        SECRETS,
        f"hub:\n  config:\n    {PLANTED}: a\n    {PLANTED}: b\n".encode(),
        rf"{SECRETS}:4:5: hub\.config\.‹a key›: set twice in one mapping",
        planted=PLANTED,
    ),
    Case(
        "number_too_long",  # Python refuses to read an int past 4,300 digits: a traceback
        VALUES,
        b"cull:\n  timeout: " + b"9" * 5000 + b"\n",
        rf"{VALUES}:2:12: cull.timeout: a number of 5,000 characters; no setting takes one",
    ),
    Case(
        "key_that_moves_the_terminal_cursor",  # would overwrite the FAIL line with a fake one
        STAGING_VALUES,
        b'cull:\n  "\\rok\\e[2K": 1\n',
        rf"{STAGING_VALUES}: cull\.\\rok\\x1b\[2K: not allowed by the jupyterhub",
        loader=False,
    ),
    Case(
        "empty_local_yaml",
        "hub_config/tess-public/local.yaml",
        b"",
        r"hub_config/tess-public/local.yaml: custom.tess.local.ports.staging: is not set",
        loader=False,
    ),
]
