"""The recalibration notebook runs top to bottom headless on small data, in the project's interpreter."""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "recalibrate_weights.ipynb"


def test_the_recalibration_notebook_compares_two_runs_and_promotes_one(tmp_path, schemes_dir, monkeypatch, spark,
                                                                      mlflow_template):
    import nbformat
    from mlflow.tracking import MlflowClient
    from nbclient import NotebookClient

    from casemix.calibrate import promoted_weights
    from casemix.storage.deltars import DeltaRsStore

    conf = yaml.safe_load((ROOT / "conf" / "local.yaml").read_text(encoding="utf-8"))
    conf.update(name="notebook-test", data_dir=str(tmp_path / "data"), policy=str(ROOT / "conf/policy/default.yaml"))
    conf["spark"].update(master="local[2]", shuffle_partitions=2, driver_memory="1g")
    conf["storage"]["warehouse"] = str(tmp_path / "warehouse")
    conf["mlflow"].update(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_root=str(tmp_path / "artifacts"))
    conf["schemes"].update(dir=str(schemes_dir), cache_dir=str(tmp_path / "cache"))
    shutil.copyfile(mlflow_template, tmp_path / "mlflow.db")  # a migrated, empty store: saves seconds
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "notebook.yaml").write_text(yaml.safe_dump(conf, allow_unicode=True), encoding="utf-8")
    for var in ("CASEMIX_WAREHOUSE", "CASEMIX_DATA_DIR", "MLFLOW_TRACKING_URI", "CASEMIX_SPARK_MASTER"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CASEMIX_CONF", str(tmp_path / "conf" / "notebook.yaml"))
    monkeypatch.setenv("CASEMIX_LOG_PLOTS", "0")
    monkeypatch.setenv("PYSPARK_PYTHON", sys.executable)

    nb = nbformat.read(NOTEBOOK, as_version=4)
    # kernel "python3": jupyter_client starts it with this interpreter (sys.executable), the project's venv
    NotebookClient(nb, kernel_name="python3", timeout=600, resources={"metadata": {"path": str(ROOT)}}).execute()

    text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                     if o.get("output_type") == "stream")
    assert f"python: {sys.executable}" in text
    summary = json.loads(text[text.index("{\n"):text.index("\n}") + 2])
    assert set(summary["runs"]) == {"iqr", "percentile"}
    assert summary["promoted_regions"] == ["530100", "530300", "532300"]

    client = MlflowClient(tracking_uri=conf["mlflow"]["tracking_uri"])
    for label, run_id in summary["runs"].items():
        run = client.get_run(run_id)
        assert run.info.status == "FINISHED" and run.data.params["trimming.method"] == label
    tags = client.get_run(summary["promoted_run_id"]).data.tags
    assert tags[f"casemix.promoted.530100.{summary['target_year']}"] == "true"
    store = DeltaRsStore(spark, str(tmp_path / "warehouse"))
    paid = promoted_weights(spark, store, target_year=summary["target_year"]).toPandas()
    assert set(paid["calibration_run_id"]) == {summary["promoted_run_id"]}
    assert len(paid) == summary["promoted_rows"]
