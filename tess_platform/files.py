"""Files the platform writes: private (0600) unless said, from their first byte, and whole or
not at all. Secrets, tokens, state a sensor reads while a run writes it: all go through here."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def write_file(path: Path, data: str | bytes, mode: int = 0o600, first_wins: bool = False) -> bool:
    """Writes `path` through a temporary file beside it that has `mode` before any content
    (nobody else reads it meanwhile), then renamed over it (a reader sees the old file or the
    new one, never a part). With `first_wins`, a file already there is kept: whether this call
    wrote it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # created 0600
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        if not first_wins:
            os.replace(tmp, path)
            return True
        try:
            os.link(tmp, path)  # fails if another process wrote it first
        except FileExistsError:
            return False
        return True
    finally:
        Path(tmp).unlink(missing_ok=True)


@contextmanager
def private_temp_file(data: str | bytes, prefix: str, suffix: str = "") -> Iterator[Path]:
    """A 0600 temporary file holding `data` (a key, a kubeconfig), removed when done."""
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix)  # created 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        yield Path(tmp)
    finally:
        Path(tmp).unlink(missing_ok=True)
