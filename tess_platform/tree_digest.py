"""A digest of a folder's files: names, executable bits and contents, in a stable order."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def folder_files(folder: Path) -> list[str]:
    if not folder.is_dir():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def _entry(folder: Path, rel: str) -> bytes:
    """What counts of one file: its executable bit and its contents."""
    path = folder / rel
    return f"{os.access(path, os.X_OK)}\0".encode() + path.read_bytes()


def folder_digest(folder: Path, seed: bytes = b"") -> str:
    digest = hashlib.sha256(seed)
    for rel in folder_files(folder):
        digest.update(f"\0{rel}\0".encode() + _entry(folder, rel))
    return digest.hexdigest()


def changed_files(before: Path, after: Path) -> list[str]:
    """The files that differ between two folders (added, removed or changed), sorted."""

    def digests(folder: Path) -> dict[str, bytes]:
        return {rel: hashlib.sha256(_entry(folder, rel)).digest() for rel in folder_files(folder)}

    old, new = digests(before), digests(after)
    return sorted(rel for rel in old.keys() | new.keys() if old.get(rel) != new.get(rel))
