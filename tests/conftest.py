"""Shared fixtures: one Spark session for the whole run (local[2], 2 shuffle partitions, UTC, no UI)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def project_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def schemes_dir() -> Path:
    path = Path(os.environ.get("CASEMIX_SCHEMES_DIR", ROOT.parent / "shared" / "schemes")).resolve()
    if not (path / "chs-drg-1.1" / "mdc.json").is_file():
        pytest.fail(f"grouping schemes not found at {path}: put shared/ beside the checkout or set CASEMIX_SCHEMES_DIR")
    return path


@pytest.fixture(scope="session")
def spark():
    from casemix.config import SparkSettings
    from casemix.spark import build_session

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = build_session(
        SparkSettings(master="local[2]", shuffle_partitions=2, arrow_batch_size=10_000, driver_memory="2g"), "tests"
    )
    yield session
    session.stop()


def isolated_settings(folder: Path, schemes_dir: Path):
    """conf/local.yaml with every data path (data, warehouse, MLflow store and artifacts) inside ``folder``."""
    from casemix.config import load_settings

    env = {
        "CASEMIX_DATA_DIR": str(folder / "data"),
        "CASEMIX_WAREHOUSE": str(folder / "warehouse"),
        "CASEMIX_SCHEMES_DIR": str(schemes_dir),
        "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}",
    }
    s = load_settings(ROOT / "conf" / "local.yaml", env=env)
    return s.model_copy(update={"mlflow": s.mlflow.model_copy(update={"artifact_root": str(folder / "artifacts")})})


@pytest.fixture
def settings(tmp_path, schemes_dir):
    """conf/local.yaml with every data path inside this test's temp folder."""
    return isolated_settings(tmp_path, schemes_dir)


@pytest.fixture
def store(spark, tmp_path):
    from casemix.storage.deltars import DeltaRsStore

    return DeltaRsStore(spark, str(tmp_path / "warehouse"))


@pytest.fixture
def sync_calls(monkeypatch):
    """Every ``fdatasync`` / ``fsync`` / ``posix_fadvise`` this process makes, in order, as (name, path of
    the descriptor, further arguments) (Linux: the path comes from /proc/self/fd)."""
    seen = []

    def spy(name, real):
        def call(fd, *args):
            seen.append((name, os.readlink(f"/proc/self/fd/{fd}"), *args))
            return real(fd, *args)
        return call

    monkeypatch.setattr(os, "fdatasync", spy("fdatasync", os.fdatasync))
    monkeypatch.setattr(os, "fsync", spy("fsync", os.fsync))
    monkeypatch.setattr(os, "posix_fadvise", spy("fadvise", os.posix_fadvise))
    return seen
