"""The generate job: drops, defects, outpatient drops, synthetic_true_costs and an MLflow run."""
from __future__ import annotations

from pathlib import Path

import mlflow

import casemix_jobs.generate_claims as job
from casemix.jobkit import run_module

ROOT = Path(__file__).resolve().parents[2]


def test_the_job_writes_drops_and_true_costs_and_logs_a_generate_run(spark, store, tmp_path, schemes_dir):
    conf = tmp_path / "conf" / "test.yaml"
    conf.parent.mkdir()
    conf.write_text(
        f"name: test\ndata_dir: {tmp_path / 'data'}\nstorage:\n  engine: delta-rs\n  warehouse: {tmp_path / 'warehouse'}\n"
        f"mlflow:\n  tracking_uri: sqlite:///{tmp_path / 'mlflow.db'}\n  artifact_root: {tmp_path / 'artifacts'}\n"
        f"schemes:\n  dir: {schemes_dir}\n", encoding="utf-8")
    summary = run_module(job, ["--conf", str(conf), "--cases", "900", "--seed", "5", "--years", "2023-2024",
                               "--partitions", "2", "--outpatient-multiple", "0.5", "--bad-share", "0.05",
                               "--regions", "530100,530600",
                               "--province", str(ROOT / "conf" / "province.yaml")], spark=spark, store=store)
    assert summary["cases"] == 900 and summary["outpatient_visits"] == 450
    assert sum(summary["defects"].values()) > 20
    drops = Path(summary["paths"]["inpatient"])
    assert drops == tmp_path / "data" / "drops" / "inpatient"
    assert any(drops.glob("region=530100/month=2023-*/*.parquet")) and (drops / "_defects").is_dir()
    assert summary["synthetic_true_costs_version"] >= 0
    truth = store.read("synthetic_true_costs")
    assert truth.count() == 628 and truth.select("generate_run_id").distinct().collect()[0][0] == summary["run_id"]
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.get_experiment_by_name("generate")
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 1 and runs[0].data.params["n_cases"] == "900" and runs[0].data.metrics["cases"] == 900


def test_the_job_refuses_an_invalid_spec_with_a_clear_message(capsys, tmp_path):
    code = job.main(["--cases", "0", "--province", str(ROOT / "conf" / "province.yaml")])
    assert code == 2
    assert "n_cases" in capsys.readouterr().err
