"""The user image: rendered by the real repo2docker, tagged by its content; its spec in the one
form both repo2docker and the local target build (their builds: test_user_env.py)."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tess_platform.backends.image import render
from tess_platform.backends.local.user_env import UserEnvError, interpreter, python_version

ROOT = Path(__file__).resolve().parent.parent


def tree_with_image(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "image", tmp_path / "image")
    return tmp_path


def test_repo2docker_renders_the_python_spec_with_its_postbuild(tmp_path):
    rendered = render(tree_with_image(tmp_path))
    assert rendered.buildpack == "PythonBuildPack"
    assert 'pip install --no-cache-dir -r "requirements.txt"' in rendered.dockerfile
    assert "RUN ./postBuild" in rendered.dockerfile
    assert "ENV NB_PYTHON_PREFIX=" in rendered.dockerfile  # where postBuild writes, there too
    assert rendered.files == ("postBuild", "requirements.txt", "runtime.txt")


def test_the_tag_follows_the_content_only(tmp_path):
    first = render(tree_with_image(tmp_path / "a"))
    again = render(tree_with_image(tmp_path / "b"))
    assert first.tag == again.tag and len(first.tag) == 16
    spec = tmp_path / "b" / "image" / "requirements.txt"
    spec.write_text(spec.read_text().replace("lightkurve==2.5.0", "lightkurve==2.5.1"))
    assert render(tmp_path / "b").tag != first.tag


# a process that renders with a cache, as a step or a CLI call does: whether it imported
# repo2docker, and what it rendered
RENDER = """
import json, sys
from dataclasses import asdict
from pathlib import Path
from tess_platform.backends.image import render
rendered = render(Path(sys.argv[1]), Path(sys.argv[2]))
print(json.dumps({"repo2docker": "repo2docker" in sys.modules, **asdict(rendered)}))
"""


def render_in_a_process(tree: Path, cache: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", RENDER, str(tree), str(cache)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def test_a_rendering_is_kept_and_read_back_until_image_changes(tmp_path):
    tree, cache = tree_with_image(tmp_path / "tree"), tmp_path / "cache"
    first = render_in_a_process(tree, cache)
    assert first.pop("repo2docker")
    again = render_in_a_process(tree, cache)
    assert not again.pop("repo2docker") and again == first  # read back, repo2docker not loaded
    (kept,) = (cache / "rendered-images").iterdir()
    kept.write_text(kept.read_text()[:40])  # cut short (a disk that filled up, a crash)
    anew = render_in_a_process(tree, cache)
    assert anew.pop("repo2docker") and anew == first
    assert json.loads(kept.read_text())["tag"] == first["tag"]  # whole again
    spec = tree / "image" / "requirements.txt"
    spec.write_text(spec.read_text().replace("lightkurve==2.5.0", "lightkurve==2.5.1"))
    changed = render_in_a_process(tree, cache)
    assert changed.pop("repo2docker") and changed["tag"] != first["tag"]


def test_every_package_of_the_shipped_spec_is_pinned():
    lines = (ROOT / "image" / "requirements.txt").read_text().splitlines()
    packages = [line for line in lines if line and not line.startswith("#")]
    unpinned = [p for p in packages if not re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[\w.+!]+", p)]
    assert unpinned == [] and len(packages) > 100
    assert python_version(ROOT / "image") == "3.11"


@pytest.mark.parametrize(
    "runtime, error",
    [
        (None, "image/runtime.txt: missing; the local target builds"),
        ("python 3.11", "image/runtime.txt: not `python-X.Y` (for example `python-3.11`)"),
        ("r-4.1-2022-01-01", "image/runtime.txt: not `python-X.Y`"),
    ],
)
def test_a_runtime_the_local_build_cannot_honour_is_named(tmp_path, runtime, error):
    if runtime is not None:
        (tmp_path / "runtime.txt").write_text(runtime)
    with pytest.raises(UserEnvError) as raised:
        python_version(tmp_path)
    assert str(raised.value).startswith(error)


def test_a_python_this_machine_lacks_says_how_to_get_one():
    with pytest.raises(UserEnvError) as raised:
        interpreter("3.99")
    assert str(raised.value) == (
        "image/runtime.txt asks for Python 3.99, which this machine does not have: install it "
        "(Debian: apt-get install python3.99 python3.99-venv) or set TESS_USER_PYTHON to one"
    )
