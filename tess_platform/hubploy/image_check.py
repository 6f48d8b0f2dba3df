"""Why an imported image may not build, read from its files: repo2docker renders it here
(no Docker needed), and what the local target or time will refuse is said before a build
finds it: end-of-life bases and Pythons, conda channels, unpinned packages."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from ..backends.image import IMAGE_DIR, render
from .report import CHECK, Report

OLDEST_PYTHON = (3, 10)  # 3.9 reached its end of life in October 2025
# the Docker Hub names of the Jupyter docker stacks, no longer updated since 2023 (quay.io now)
RETIRED_BASES = ("jupyter/",)
LOCAL_FORM = "the local target builds only the Python form (runtime.txt, requirements.txt)"


def check_image(tree_root: Path, report: Report) -> None:
    folder = tree_root / IMAGE_DIR
    try:
        rendered = render(tree_root)
    except Exception as e:  # ImageError, and repo2docker's own errors of many kinds
        report.add(CHECK, f"{IMAGE_DIR}/", "", f"repo2docker cannot render it: {e}")
        return
    if rendered.buildpack != "PythonBuildPack":
        report.add(CHECK, f"{IMAGE_DIR}/", "", f"{rendered.buildpack}: {LOCAL_FORM}")
    _runtime(folder, report)
    _requirements(folder, report)
    _conda(folder, report)
    _dockerfile(folder, report)
    if (folder / "apt.txt").is_file():
        report.add(CHECK, f"{IMAGE_DIR}/apt.txt", "", "system packages the local target lacks")


def _runtime(folder: Path, report: Report) -> None:
    where = f"{IMAGE_DIR}/runtime.txt"
    if not (folder / "runtime.txt").is_file():
        if not (folder / "environment.yml").is_file():  # there, the Python is a dependency
            report.add(CHECK, where, "", "missing: repo2docker picks a Python; pin one")
        return
    runtime = (folder / "runtime.txt").read_text().strip()
    found = re.fullmatch(r"python-(\d+\.\d+)(\.\d+)?", runtime)
    if found and (old := _past_its_end(found[1])):
        report.add(CHECK, where, "", old)


def _past_its_end(version: str) -> str | None:
    """`X.Y` said to be past its end of life, if it is."""
    major, minor = map(int, version.split("."))
    return f"Python {version} is past its end of life" if (major, minor) < OLDEST_PYTHON else None


def _requirements(folder: Path, report: Report) -> None:
    path = folder / "requirements.txt"
    if not path.is_file():
        return
    unpinned, urls = [], 0
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "://" in line or "@" in line:  # a URL may hold a token: counted, never quoted
            urls += 1
        elif line and not line.startswith("-") and "==" not in line:
            unpinned.append(re.split(r"[<>=!~;\[ ]", line, maxsplit=1)[0])
    if urls:
        report.add(
            CHECK,
            f"{IMAGE_DIR}/requirements.txt",
            "",
            f"{urls} requirement(s) from a URL: pin each to a commit or a file's hash",
        )
    if unpinned:
        report.add(
            CHECK,
            f"{IMAGE_DIR}/requirements.txt",
            "",
            f"not pinned (==): {', '.join(unpinned)}: the image changes under you",
        )


def _conda(folder: Path, report: Report) -> None:
    path = folder / "environment.yml"
    if not path.is_file():
        return
    where = f"{IMAGE_DIR}/environment.yml"
    try:
        spec = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError:
        report.add(CHECK, where, "", "not YAML")
        return
    channels = spec.get("channels") or [] if isinstance(spec, dict) else []
    if channels:
        report.add(
            CHECK,
            where,
            "channels",
            f"conda channels ({', '.join(map(str, channels))}): {LOCAL_FORM}; `defaults` "
            "needs Anaconda's terms",
        )
    deps = spec.get("dependencies") or [] if isinstance(spec, dict) else []
    for dep in deps:
        found = re.fullmatch(r"python\s*=+\s*(\d+\.\d+).*", dep) if isinstance(dep, str) else None
        if found and (old := _past_its_end(found[1])):
            report.add(CHECK, where, "dependencies", old)
    unpinned = [d for d in deps if isinstance(d, str) and "=" not in d]
    if unpinned:
        report.add(CHECK, where, "dependencies", f"not pinned: {', '.join(unpinned)}")


def _dockerfile(folder: Path, report: Report) -> None:
    path = folder / "Dockerfile"
    if not path.is_file():
        return
    where = f"{IMAGE_DIR}/Dockerfile"
    report.add(CHECK, where, "", f"a Dockerfile: repo2docker builds it as it is; {LOCAL_FORM}")
    for base in re.findall(r"^\s*FROM\s+(\S+)", path.read_text(), re.M | re.I):
        if base.startswith(RETIRED_BASES):
            report.add(CHECK, where, "FROM", f"{base}: a retired base, no longer updated")
        elif ":" not in base.rsplit("/", 1)[-1] or base.endswith(":latest"):
            report.add(CHECK, where, "FROM", f"{base}: not pinned to a tag")
