"""Secrets: git-crypt files decrypted in memory, and scrubbing of secret values from text."""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets as _random
import subprocess
from collections.abc import Callable, Iterable

from .files import private_temp_file
from .values import Path_, dotted, node_paths

SERVICE = "tess-platform"  # the hub service whose token the pipeline's checks use

GIT_CRYPT_MAGIC = b"\0GITCRYPT\0"


class SecretsError(RuntimeError):
    pass


def is_encrypted(blob: bytes) -> bool:
    return blob.startswith(GIT_CRYPT_MAGIC)


def decrypt(blob: bytes, key_b64: str, source: str) -> bytes:
    """Decrypt one git-crypt blob with an exported key given as base64 (TESS_GIT_CRYPT_KEY)."""
    try:
        key = base64.b64decode(key_b64, validate=True)
    except (binascii.Error, ValueError):
        raise SecretsError(
            "TESS_GIT_CRYPT_KEY is not base64: export it with "
            "`git-crypt export-key FILE` and set `base64 -w0 FILE`"
        ) from None
    return decrypt_with(blob, key, source, "TESS_GIT_CRYPT_KEY")


def decrypt_with(blob: bytes, key: bytes, source: str, key_name: str) -> bytes:
    """Decrypt one git-crypt blob with a key as `git-crypt export-key` writes it; `key_name`
    says where the key came from, for the error."""
    # git-crypt reads its key from a file: a 0600 one, removed at once
    try:
        with private_temp_file(key, prefix="tess-git-crypt-") as key_path:
            result = subprocess.run(
                ["git-crypt", "smudge", f"--key-file={key_path}"],
                input=blob,
                capture_output=True,
                timeout=60,
            )
    except FileNotFoundError:
        raise SecretsError(f"{source}: git-crypt is not installed; run `bash .ci/setup`") from None
    if result.returncode != 0 or is_encrypted(result.stdout):
        raise SecretsError(
            f"{source}: git-crypt could not decrypt it with {key_name} "
            "(is it the key of this repository?)"
        )
    return result.stdout


def generate_token(nbytes: int = 32) -> str:
    return _random.token_hex(nbytes)


def hub_secrets(service: str = SERVICE, token: Callable[[], str] = generate_token) -> dict:
    """The secrets every hub needs, freshly generated: the proxy token, the cookie secret, and
    the token of the pipeline's service (its health checks). `token=str` gives their shape."""
    return {
        "proxy": {"secretToken": token()},
        "hub": {
            "cookieSecret": token(),
            "services": {service: {"apiToken": token()}},
        },
    }


def github_secrets(client_id: str, client_secret: str, callback_url: str) -> dict:
    """What a hub that logs in with GitHub adds to its secrets file: the OAuth app's."""
    return {
        "GitHubOAuthenticator": {
            "client_id": client_id,
            "client_secret": client_secret,
            "oauth_callback_url": callback_url,
        }
    }


def _names(tree: dict) -> set[str]:
    return {path[-1] for path in node_paths(tree, ()) if path}


# The names a secrets file holds as the platform writes it: public (they are in this code and
# the examples), so a message about a secrets file may name them; any other key of one, maybe a
# token pasted where a key goes, is never shown (values.dotted).
SECRETS_FILE_KEYS = frozenset(
    _names(hub_secrets(token=str)) | {"config"} | _names(github_secrets("", "", ""))
)


def key_path(path: Path_, secret: bool) -> str:
    """A key's path for a message; of a `secret` file's key, only the names in
    SECRETS_FILE_KEYS, any other shown as values.HIDDEN_KEY."""
    return dotted(path, SECRETS_FILE_KEYS if secret else None)


class Redactor:
    """Replaces every known secret value in a text by `***`."""

    def __init__(self, secret_values: Iterable[str] = ()) -> None:
        self._values: set[str] = set()
        self.add(secret_values)

    def add(self, values: Iterable[str]) -> None:
        # very short values would mask ordinary words; secrets here are tokens and passwords.
        # Each also as a message may quote it: repr's and JSON's escapes (a `\` doubled)
        for v in (v for v in values if len(v) >= 6):
            self._values.update({v, repr(v)[1:-1], json.dumps(v)[1:-1]})
        ordered = sorted(self._values, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def __call__(self, text: str) -> str:
        return self._pattern.sub("***", text) if self._pattern else text
