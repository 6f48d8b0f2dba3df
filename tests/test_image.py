"""The user image: rendered by the real repo2docker, tagged by its content."""

import shutil
from pathlib import Path

from tess_platform.backends.image import render

ROOT = Path(__file__).resolve().parent.parent


def tree_with_image(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "image", tmp_path / "image")
    return tmp_path


def test_repo2docker_renders_the_conda_environment(tmp_path):
    rendered = render(tree_with_image(tmp_path))
    assert rendered.buildpack == "CondaBuildPack"
    assert 'env update -p ${NB_PYTHON_PREFIX} --file "environment.yml"' in rendered.dockerfile
    assert "RUN ./postBuild" in rendered.dockerfile
    assert rendered.files == ("environment.yml", "postBuild")


def test_the_tag_follows_the_content_only(tmp_path):
    first = render(tree_with_image(tmp_path / "a"))
    again = render(tree_with_image(tmp_path / "b"))
    assert first.tag == again.tag and len(first.tag) == 16
    env = tmp_path / "b" / "image" / "environment.yml"
    env.write_text(env.read_text().replace("lightkurve=2.5.0", "lightkurve=2.5.1"))
    assert render(tmp_path / "b").tag != first.tag


def test_the_image_lists_what_tess_science_needs():
    spec = (ROOT / "image" / "environment.yml").read_text()
    for package in (
        "jupyterlab",
        "ipywidgets",
        "jupyter-server-proxy",
        "voila",
        "nbgitpuller",
        "numpy",
        "scipy",
        "matplotlib",
        "altair",
        "astropy",
        "astroquery",
        "lightkurve",
        "requests",
        "boto3",
        "s3fs",
    ):
        assert f"  - {package}=" in spec, package
    assert "c.HistoryManager.enabled = False" in (ROOT / "image" / "postBuild").read_text()
