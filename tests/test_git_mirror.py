"""The git mirror in the cache, which the sensors, every run worker and the CLI share: a
snapshot taken while another process fetches the commit it names is whole."""

import multiprocessing
import subprocess
from pathlib import Path

from tess_platform.git import GitError, Repo


def _snapshot_as_soon_as_seen(url: str, cache: str, sha: str, answers) -> None:
    repo = Repo(url, Path(cache))
    try:
        while not repo.has_commit(sha):  # the moment the fetch beside it brings the commit
            pass
        snapshot = repo.snapshot(sha)
        answers.put(sorted(p.name for p in snapshot.root.iterdir()))
    except GitError as e:
        answers.put(str(e))


def test_a_snapshot_taken_while_another_process_fetches_its_commit_is_whole(tmp_path):
    source = tmp_path / "source"
    source.mkdir()

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=source, check=True, capture_output=True, text=True
        ).stdout.strip()

    git("init", "-q", "-b", "staging")
    git("config", "user.email", "ops@tess.test")
    git("config", "user.name", "TESS Ops")
    (source / "README").write_text("hubs\n")
    git("add", ".")
    git("commit", "-qm", "first")
    cache = tmp_path / "cache"
    Repo(str(source), cache).fetch()
    context = multiprocessing.get_context("fork")
    for n in range(20):  # each push: ~80 objects, below git's unpack limit, written one by one
        for i in range(40):
            (source / f"hub-{n}-{i}").mkdir()
            (source / f"hub-{n}-{i}" / "common.yaml").write_text(f"n: {n}\ni: {i}\n" * 20)
        git("add", ".")
        git("commit", "-qm", f"push {n}")
        sha = git("rev-parse", "HEAD")
        answers = context.Queue()
        reader = context.Process(
            target=_snapshot_as_soon_as_seen, args=(str(source), str(cache), sha, answers)
        )
        reader.start()
        Repo(str(source), cache).fetch()  # the sensor's fetch, in this process
        reader.join(60)
        tree = sorted(p.name for p in source.iterdir() if p.name != ".git")
        assert answers.get(timeout=5) == tree  # not "unable to read tree", not "corrupt"
