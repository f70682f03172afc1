"""Configuration files load into typed settings, and every kind of mistake gets one clear message."""
from __future__ import annotations

from pathlib import Path

import pytest

from casemix.config import ConfigError, load_settings

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    conf = tmp_path / "conf"
    conf.mkdir(exist_ok=True)
    path = conf / "env.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_local_default_resolves_paths_against_project_root():
    s = load_settings(ROOT / "conf" / "local.yaml", env={})
    assert s.name == "local"
    assert s.spark.master == "local[*]"
    assert s.storage.engine == "delta-rs"
    assert s.warehouse_path == str(ROOT / "data" / "warehouse")
    assert s.tracking_uri == "sqlite:///" + str(ROOT / "data" / "mlflow" / "mlflow.db")
    assert s.schemes_path == str((ROOT.parent / "shared" / "schemes").resolve())


def test_cluster_example_is_valid_and_keeps_uris():
    s = load_settings(ROOT / "conf" / "cluster.yaml", env={})
    assert s.storage.engine == "delta-spark"
    assert s.warehouse_path == "hdfs:///casemix/warehouse"
    assert s.spark.master is None
    assert s.spark.conf["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path / "nope.yaml", env={})
    assert "nope.yaml" in str(err.value) and "file not found" in str(err.value)


def test_unknown_top_level_key_is_rejected_with_its_name(tmp_path):
    path = write(tmp_path, "name: x\nwarehouse: /tmp/w\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path, env={})
    msg = str(err.value)
    assert str(path) in msg and "key 'warehouse' is not a known setting" in msg


def test_misspelt_nested_key_is_rejected_with_its_dotted_name(tmp_path):
    path = write(tmp_path, "name: x\nstorage:\n  engin: delta-rs\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path, env={})
    assert "key 'storage.engin' is not a known setting" in str(err.value)


def test_wrong_type_names_key_and_expectation(tmp_path):
    path = write(tmp_path, "name: x\nspark:\n  shuffle_partitions: many\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path, env={})
    msg = str(err.value)
    assert "key 'spark.shuffle_partitions'" in msg and "valid integer" in msg and "'many'" in msg


def test_invalid_choice_lists_the_allowed_values(tmp_path):
    path = write(tmp_path, "name: x\nstorage:\n  engine: parquet\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path, env={})
    msg = str(err.value)
    assert "key 'storage.engine'" in msg and "'auto', 'delta-rs' or 'delta-spark'" in msg


def test_missing_required_key_and_bad_yaml(tmp_path):
    path = write(tmp_path, "spark: {}\n")
    with pytest.raises(ConfigError, match="key 'name' is required but missing"):
        load_settings(path, env={})
    path.write_text("name: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(path, env={})
    path.write_text("- a list\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_settings(path, env={})


def test_every_problem_is_reported_at_once(tmp_path):
    path = write(tmp_path, "name: x\nspark:\n  shuffle_partitions: 0\n  colour: red\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path, env={})
    assert len(err.value.problems) == 2


def test_environment_overrides_paths(tmp_path):
    path = write(tmp_path, "name: x\n")
    s = load_settings(path, env={
        "CASEMIX_SCHEMES_DIR": "/opt/schemes",
        "MLFLOW_TRACKING_URI": "http://mlflow:5000",
        "CASEMIX_WAREHOUSE": "s3a://bucket/wh",
        "CASEMIX_STORAGE_ENGINE": "delta-spark",
    })
    assert s.schemes_path == "/opt/schemes"
    assert s.tracking_uri == "http://mlflow:5000"
    assert s.warehouse_path == "s3a://bucket/wh"
    assert s.storage.engine == "delta-spark"
    # relative paths resolve against the folder holding conf/
    assert s.data_path == str(tmp_path / "data")


def test_an_invalid_environment_override_is_reported_like_a_file_value(tmp_path):
    path = write(tmp_path, "name: x\n")
    with pytest.raises(ConfigError, match="key 'storage.engine'"):
        load_settings(path, env={"CASEMIX_STORAGE_ENGINE": "sqlite"})
