"""The pinned Zero to JupyterHub chart: its coordinates, default values and values schema."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from .tools import tool
from .yaml_loader import load_generated

# what TESS_CHART_DIR must hold for the values and schema alone (validate, values)
VALUES_AND_SCHEMA = "a folder with the chart's values.yaml and schema"


class ChartError(RuntimeError):
    pass


@dataclass(frozen=True)
class Chart:
    name: str
    version: str
    repo: str
    app_version: str

    @property
    def label(self) -> str:
        return f"{self.name} {self.version}"


JUPYTERHUB = Chart(
    name="jupyterhub",
    version="4.4.0",
    repo="https://hub.jupyter.org/helm-chart/",
    app_version="5.5.0",
)


@dataclass(frozen=True)
class ChartFiles:
    """What the pipeline needs from the chart: its default values and its values schema."""

    chart: Chart
    defaults: dict[str, Any]
    schema: dict[str, Any]
    where: Path


def chart_files(chart: Chart, chart_dir: Path | None, cache_dir: Path) -> ChartFiles:
    """The chart's files from `chart_dir` (TESS_CHART_DIR) if given, else from the chart itself,
    pulled once with helm into the cache."""
    folder = chart_dir or _pulled(chart, cache_dir)
    return _read(chart, folder)


@cache
def _read(chart: Chart, folder: Path) -> ChartFiles:
    if not folder.is_dir():
        raise ChartError(f"TESS_CHART_DIR {folder}: no such folder (it holds the chart's files)")
    schema_json, schema_yaml = folder / "values.schema.json", folder / "values.schema.yaml"
    defaults = folder / "values.yaml"
    if schema_json.exists():
        schema = json.loads(schema_json.read_text())
    elif schema_yaml.exists():
        schema = _mapping(schema_yaml, chart)
    else:
        raise ChartError(f"{folder}: no values.schema.json (or .yaml) for {chart.label}")
    if not defaults.exists():
        raise ChartError(f"{folder}: no values.yaml for {chart.label}")
    return ChartFiles(chart, _mapping(defaults, chart), schema, folder)


def _mapping(path: Path, chart: Chart) -> dict[str, Any]:
    try:
        documents = load_generated(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise ChartError(f"{path}: not the YAML of {chart.label}: {type(e).__name__}") from None
    if len(documents) != 1 or not isinstance(documents[0], dict):
        raise ChartError(f"{path}: not one mapping, as {chart.label}'s files are")
    return documents[0]


def renderable(files: ChartFiles, cache_dir: Path) -> Path:
    """A folder with the whole chart, for `helm template`: TESS_CHART_DIR if it holds it (not
    only the values and schema), else the chart pulled once into the cache."""
    if (files.where / "Chart.yaml").exists():
        return files.where
    return _pulled(files.chart, cache_dir, "the chart's own folder (Chart.yaml, templates/)")


def _pulled(chart: Chart, cache_dir: Path, needs: str = VALUES_AND_SCHEMA) -> Path:
    """The chart pulled once into the cache; else why not, and what TESS_CHART_DIR would
    have to hold (`needs`) to do without."""
    target = cache_dir / "charts" / f"{chart.name}-{chart.version}"
    if (target / "Chart.yaml").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        cmd = [
            tool("helm"),
            "pull",
            chart.name,
            "--repo",
            chart.repo,
            "--version",
            chart.version,
            "--untar",
            "--untardir",
            tmp,
        ]
        try:
            subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=300)
        except FileNotFoundError:
            raise ChartError(
                f"helm is not installed, so {chart.label} cannot be pulled: run `bash .ci/setup`, "
                f"or set TESS_CHART_DIR to {needs}"
            ) from None
        except subprocess.CalledProcessError as e:
            raise ChartError(
                f"helm could not pull {chart.label} from {chart.repo}: {e.stderr.strip()}; "
                f"or set TESS_CHART_DIR to {needs}"
            ) from None
        shutil.move(str(Path(tmp) / chart.name), target)
    return target
