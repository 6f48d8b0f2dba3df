"""A digest of a folder's files: names, executable bits and contents, in a stable order."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def folder_files(folder: Path) -> list[str]:
    if not folder.is_dir():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def folder_digest(folder: Path, seed: bytes = b"") -> str:
    digest = hashlib.sha256(seed)
    for rel in folder_files(folder):
        path = folder / rel
        digest.update(f"\0{rel}\0{os.access(path, os.X_OK)}\0".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()
