"""MLflow: one helper that opens the tracking store from configuration and starts tagged runs.

Every run is tagged with the git commit of the code, the configuration name and the Delta version
of every table it read (``casemix.input.<table>.version``), so a result can be traced to its inputs.
Default store: a sqlite database and an artifact folder under the data directory.
"""
from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path
from typing import Iterator, Mapping, Optional

import mlflow
from mlflow.tracking import MlflowClient

from casemix.config import Settings

__all__ = ["configure_tracking", "ensure_experiment", "start_run", "git_commit", "input_version_tags", "EXPERIMENTS"]

#: one experiment per activity (design.md, "Tracking")
EXPERIMENTS = ("generate", "ingest", "grouping", "weight-calibration", "settlement")

TAG_COMMIT = "casemix.git_commit"
TAG_CONFIG = "casemix.config"
TAG_JOB = "casemix.job"


def git_commit(root: str | os.PathLike | None = None) -> str:
    """The commit of the running code: ``$CASEMIX_GIT_COMMIT``, else ``git rev-parse HEAD`` in the
    project root (with ``-dirty`` when it has uncommitted changes), else ``unknown``."""
    env = os.environ.get("CASEMIX_GIT_COMMIT")
    if env:
        return env
    cwd = str(root or Path(__file__).resolve().parents[2])
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
        if sha.returncode != 0:
            return "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=10)
        return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def configure_tracking(settings: Settings) -> MlflowClient:
    """Point MLflow at the configured tracking (and registry) store; create the local folders of the
    default sqlite store. Returns a client for that store."""
    uri = settings.tracking_uri
    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    registry = settings.mlflow.registry_uri or uri
    # mlflow.set_*_uri also write MLFLOW_*_URI into os.environ; restore them so a later configuration
    # load does not mistake this store for a user's override
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(registry)
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    return MlflowClient(tracking_uri=uri, registry_uri=registry)


def ensure_experiment(client: MlflowClient, settings: Settings, name: str) -> str:
    """The id of experiment ``name``, created with its artifacts under the configured artifact root."""
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    root = settings.artifact_root
    location = root if "://" in root else Path(root, name).resolve().as_uri()
    try:
        return client.create_experiment(name, artifact_location=location)
    except mlflow.exceptions.MlflowException:  # created concurrently
        return client.get_experiment_by_name(name).experiment_id


def input_version_tags(versions: Mapping[str, Optional[int]]) -> dict[str, str]:
    return {f"casemix.input.{table}.version": "none" if v is None else str(v) for table, v in versions.items()}


@contextlib.contextmanager
def start_run(
    settings: Settings,
    experiment: str,
    *,
    job: str,
    run_name: str | None = None,
    inputs: Mapping[str, Optional[int]] | None = None,
    tags: Mapping[str, str] | None = None,
    nested: bool = False,
) -> Iterator[mlflow.ActiveRun]:
    """Start an MLflow run in ``experiment`` tagged with commit, configuration, job and input table
    versions. Use as a context manager; the run ends (FAILED on an exception) when the block exits."""
    client = configure_tracking(settings)
    experiment_id = ensure_experiment(client, settings, experiment)
    all_tags = {
        TAG_COMMIT: git_commit(settings.root),
        TAG_CONFIG: settings.name,
        TAG_JOB: job,
        **input_version_tags(inputs or {}),
        **(tags or {}),
    }
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=all_tags, nested=nested) as run:
        yield run
