"""The deployed repository: branch heads, and read-only snapshots of its tree at one SHA.

A run deploys a snapshot, never a working tree. Snapshots come from a bare mirror in the
cache; blobs are extracted as stored in git, so git-crypt files stay encrypted on disk.
Symbolic links that lead out of the snapshot are left out (and named on the Snapshot): whatever
reads a snapshot never reads a file outside it through one.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from .files import write_file
from .locks import file_lock
from .quoting import quoted
from .settings import tool_environment


def check_sha(text: str) -> str:
    """`text` if it can be a commit SHA (4 to 40 hex digits), else a GitError saying so."""
    if not re.fullmatch(r"[0-9a-f]{4,40}", text or ""):
        raise GitError(f"{quoted(text)} is not a git SHA")
    return text


class GitError(RuntimeError):
    pass


def git(*args: str, cwd: Path | None = None, input: bytes | None = None) -> bytes:
    result = subprocess.run(
        ["git", *args],
        cwd=cwd,
        input=input,
        capture_output=True,
        timeout=600,
        env=tool_environment(),
    )
    if result.returncode != 0:
        raise GitError(f"git {' '.join(args[:2])} failed: {result.stderr.decode().strip()}")
    return result.stdout


@dataclass(frozen=True)
class Snapshot:
    """The repository's tree at one commit, extracted read-only."""

    sha: str
    root: Path
    links_out: tuple[str, ...] = ()  # links out of the snapshot, not extracted

    @property
    def notes(self) -> list[str]:
        """What an operator should know about the snapshot."""
        return [
            f"{path}: a symbolic link out of the repository; left out of the snapshot"
            for path in self.links_out
        ]


class Repo:
    def __init__(self, url: str, cache: Path) -> None:
        self.url = url
        digest = hashlib.sha256(url.encode()).hexdigest()[:16]
        self.mirror = cache / "git" / f"{digest}.git"
        self.snapshots = cache / "snapshots" / digest

    def head(self, branch: str) -> str | None:
        """The SHA at the tip of `branch`, asked of the remote without cloning (None: no branch)."""
        out = git("ls-remote", "--heads", self.url, f"refs/heads/{branch}").decode().split()
        return out[0] if out else None

    def default_head(self) -> tuple[str, str]:
        """(sha, how it was chosen): the head of `staging`, or HEAD where there is none."""
        sha = self.head("staging")
        if sha:
            return sha, "head of branch staging"
        out = git("ls-remote", self.url, "HEAD").decode().split()
        if not out:
            raise GitError(f"{self.url}: has no staging branch and no HEAD to deploy")
        return out[0], "HEAD (the repository has no staging branch)"

    def _fetching(self) -> AbstractContextManager[None]:
        """Held while the mirror fetches: the sensor, the run workers and the CLI share it."""
        self.mirror.parent.mkdir(parents=True, exist_ok=True)
        return file_lock(self.mirror.with_suffix(".lock"))

    def fetch(self) -> None:
        with self._fetching():
            if not (self.mirror / "HEAD").exists():
                git("init", "--bare", "--quiet", str(self.mirror))
            git(
                "fetch",
                "--quiet",
                "--prune",
                "--force",
                self.url,
                "+refs/heads/*:refs/heads/*",
                cwd=self.mirror,
            )

    def has_commit(self, sha: str) -> bool:
        """Whether the mirror holds `sha` whole. Asked between fetches: a fetch writes a
        commit before its trees, so a commit seen mid-fetch may have none yet."""
        with self._fetching():
            if not (self.mirror / "HEAD").exists():
                return False
            probe = subprocess.run(
                ["git", "cat-file", "-e", f"{sha}^{{commit}}"],
                cwd=self.mirror,
                capture_output=True,
            )
        return probe.returncode == 0

    def resolve(self, sha: str) -> str:
        """A full commit SHA known to the mirror, fetching once if it is not yet."""
        check_sha(sha)
        if not self.has_commit(sha):
            self.fetch()
        if not self.has_commit(sha):
            raise GitError(f"commit {sha} is not in {self.url}")
        return git("rev-parse", f"{sha}^{{commit}}", cwd=self.mirror).decode().strip()

    def commit(self, ref: str) -> str:
        """The full SHA `ref` names: a SHA, or a branch of the repository."""
        if re.fullmatch(r"[0-9a-f]{4,40}", ref or ""):
            return self.resolve(ref)
        sha = self.head(ref)
        if sha is None:
            raise GitError(f"{quoted(ref)}: neither a SHA nor a branch of {self.url}")
        return self.resolve(sha)

    def is_ancestor(self, ancestor: str, sha: str) -> bool:
        probe = subprocess.run(
            ["git", "merge-base", "--is-ancestor", ancestor, sha],
            cwd=self.mirror,
            capture_output=True,
        )
        return probe.returncode == 0

    def is_on_branch(self, sha: str, branch: str) -> bool:
        self.fetch()
        return self.is_ancestor(sha, f"refs/heads/{branch}")

    def fast_forwards(self, branch: str, sha: str) -> bool:
        """Whether `branch` can move to `sha` without losing a commit (or does not exist)."""
        head = self.head(branch)
        return head is None or self.is_ancestor(self.resolve(head), sha)

    def move_branch(self, branch: str, sha: str) -> str | None:
        """Fast-forward `branch` of the remote to `sha`; its previous head. git itself refuses
        anything but a fast-forward."""
        before = self.head(branch)
        if before != sha:
            git("push", "--quiet", self.url, f"{sha}:refs/heads/{branch}", cwd=self.mirror)
        return before

    def committer(self, sha: str) -> str:
        sha = self.resolve(sha)
        return git("log", "-1", "--format=%cn <%ce>", sha, cwd=self.mirror).decode().strip()

    def recent(self, branch: str, depth: int) -> list[str]:
        """The newest `depth` commits of `branch`, newest first."""
        self.fetch()
        return (
            git("rev-list", f"--max-count={depth}", f"refs/heads/{branch}", cwd=self.mirror)
            .decode()
            .split()
        )

    def snapshot(self, sha: str) -> Snapshot:
        """The tree at `sha`, extracted once into the cache and reused after."""
        sha = self.resolve(sha)
        root = self.snapshots / sha
        record = self.snapshots / f"{sha}.links-out.json"
        if not root.exists():
            self.snapshots.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(dir=self.snapshots, prefix=".partial-"))
            archive = git("archive", "--format=tar", sha, cwd=self.mirror)
            links_out: list[str] = []
            with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
                tar.extractall(tmp, filter=_in_snapshot_filter(links_out))
            links_out += _remove_links_out(tmp)
            # beside the snapshot, before it appears: every reader of it finds the record
            write_file(record, json.dumps(sorted(links_out)))  # the same whoever extracts it
            try:
                tmp.rename(root)
            except OSError:  # another process extracted it first
                shutil.rmtree(tmp)
        # no record: extracted before links out were skipped, when any would have failed it
        links = json.loads(record.read_text()) if record.exists() else []
        return Snapshot(sha, root, tuple(links))


def _in_snapshot_filter(links_out: list[str]):
    """tarfile's "data" filter, except that a link out of the snapshot (absolute, or relative
    and climbing out) is skipped and its path added to `links_out`, not an error: one such link
    anywhere in the repository, docs/ included, must not make every snapshot of it fail."""

    def keep(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
        try:
            return tarfile.data_filter(member, dest)
        except (tarfile.AbsoluteLinkError, tarfile.LinkOutsideDestinationError):
            links_out.append(member.name)
            return None

    return keep


def _remove_links_out(root: Path) -> list[str]:
    """Removes the links that resolve outside `root` through other links (a -> d/b/../.. with
    d/b -> ..), which the filter, seeing one link at a time, cannot tell; their paths."""
    removed: list[str] = []
    while out := [link for link in _links(root) if not _resolves_inside(link, root)]:
        for link in out:  # removing one can change where another resolves: look again
            link.unlink()
            removed.append(link.relative_to(root).as_posix())
    return removed


def _links(root: Path) -> list[Path]:
    return [
        Path(folder, name)
        for folder, dirs, files in os.walk(root)  # os.walk does not descend into links
        for name in dirs + files
        if Path(folder, name).is_symlink()
    ]


def _resolves_inside(path: Path, root: Path) -> bool:
    return Path(os.path.realpath(path)).is_relative_to(os.path.realpath(root))
