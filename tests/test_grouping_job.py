"""The grouping job, the scheme as an MLflow registered model, and the file-grouping command."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from casemix.jobkit import JobContext
from tests.test_ingest import KEY, record, write_csv

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def ctx(spark, settings, store):
    return JobContext.create(settings, "test", spark=spark, store=store)


def run_job(module_name, ctx, argv):
    import importlib

    from casemix.jobkit import build_parser

    module = importlib.import_module(module_name)
    return module.run(ctx, build_parser(module).parse_args(argv))


def ingest_sample_claims(spark, store, tmp_path, schemes_dir):
    """Five claims in three partitions ingested into ``store``'s ``claims`` (expected DRGs in comments)."""
    from casemix.codes import load_codebook
    from casemix.ingest import discover_drops, ingest_drops

    drops = tmp_path / "drops" / "inpatient"
    write_csv(drops / "region=530100" / "month=2024-03", [
        # appendicectomy for perforated appendicitis, no complication -> GD15
        record("G1", principal_dx="K35.200", secondary_dxs="", procedures="47.0100",
               admission_date="2024-03-01", discharge_date="2024-03-05"),
        # same with acute respiratory failure (J96.000, an MCC) -> GD13 under CHS 1.1 (split mcc_or_cc)
        record("G2", principal_dx="K35.200", secondary_dxs="J96.000", procedures="47.0100",
               admission_date="2024-03-01", discharge_date="2024-03-05"),
        # a principal diagnosis outside every MDC list -> 0000
        record("G3", principal_dx="I10.x00", secondary_dxs="", procedures="",
               admission_date="2024-03-01", discharge_date="2024-03-05"),
    ])
    # Chuxiong (532300) uses yunnan-2023 from 2024-01-01 (conf/policy/default.yaml): its GD1 splits by MCC -> GD11
    write_csv(drops / "region=532300" / "month=2024-03", [
        record("Y1", region="532300", principal_dx="K35.200", secondary_dxs="J96.000", procedures="47.0100",
               admission_date="2024-03-01", discharge_date="2024-03-05"),
    ])
    write_csv(drops / "region=532300" / "month=2023-12", [
        record("Y0", region="532300", principal_dx="K35.200", secondary_dxs="J96.000", procedures="47.0100",
               admission_date="2023-12-01", discharge_date="2023-12-05"),
    ])
    ingest_drops(spark, store, discover_drops([str(drops)]), load_codebook(schemes_dir / "chs-drg-1.1"),
                 KEY, "ingest-1")


def test_registering_unchanged_scheme_data_reuses_the_version(ctx):
    first = run_job("casemix_jobs.register_scheme", ctx, ["chs-drg-1.1", "--alias", "production"])
    again = run_job("casemix_jobs.register_scheme", ctx, ["chs-drg-1.1", "--alias", "production"])
    (a,), (b,) = first["registered"], again["registered"]
    assert (a["version"], a["created"]) == ("1", True)
    assert (b["version"], b["created"]) == ("1", False)
    client = MlflowClient(tracking_uri=ctx.settings.tracking_uri)
    mv = client.get_model_version_by_alias("drg-scheme-chs-drg-1.1", "production")
    assert str(mv.version) == "1"
    assert mv.tags["casemix.scheme.content_hash"] == a["content_hash"]
    assert "Apache" in mv.tags["casemix.scheme.licence"] and "OpenDRG" in mv.tags["casemix.scheme.source"]
    assert len(client.search_model_versions("name = 'drg-scheme-chs-drg-1.1'")) == 1


def test_the_registered_model_groups_a_pandas_frame(ctx):
    import mlflow

    run_job("casemix_jobs.register_scheme", ctx, ["chs-drg-1.1"])
    model = mlflow.pyfunc.load_model("models:/drg-scheme-chs-drg-1.1@production")
    out = model.predict(pd.DataFrame({"sex": ["1"], "age_years": [40], "principal_dx": ["K35.200"],
                                      "secondary_dxs": [""], "procedures": ["47.0100"]}))
    assert out[["mdc", "adrg", "drg", "status"]].iloc[0].tolist() == ["MDCG", "GD1", "GD15", "grouped"]


@pytest.mark.parametrize("io", ["files", "dataframe"])
def test_group_claims_writes_the_drg_of_every_claim_with_the_scheme_of_its_region_and_date(ctx, tmp_path, schemes_dir,
                                                                                          io):
    from casemix.config import GroupingSettings

    ctx = JobContext.create(ctx.settings.model_copy(update={"grouping": GroupingSettings(io=io)}), "test",
                            spark=ctx.spark, store=ctx.store)

    ingest_sample_claims(ctx.spark, ctx.store, tmp_path, schemes_dir)
    run_job("casemix_jobs.register_scheme", ctx, [])
    summary = run_job("casemix_jobs.group_claims", ctx, [])
    rows = {r.claim_id: r for r in ctx.store.read("grouped_claims").collect()}
    got = {k: (r.scheme_id, r.mdc, r.adrg, r.drg, r.group_status, r.has_mcc or r.has_cc, r.cc_code) for k, r in rows.items()}
    assert got == {
        "G1": ("chs-drg-1.1", "MDCG", "GD1", "GD15", "grouped", False, None),
        "G2": ("chs-drg-1.1", "MDCG", "GD1", "GD13", "grouped", True, "J96.000"),
        "G3": ("chs-drg-1.1", "0000", "00", "0000", "ungroupable", False, None),
        "Y0": ("chs-drg-1.1", "MDCG", "GD1", "GD13", "grouped", True, "J96.000"),
        "Y1": ("yunnan-2023", "MDCG", "GD1", "GD11", "grouped", True, "J96.000"),
    }
    assert "ADRG=GD1" in rows["G2"].trace and "J96.000" in rows["G2"].trace
    assert rows["G1"].scheme_model_version == "1" and rows["Y1"].scheme_model_version == "1"
    assert summary["status.grouped"] == 4 and summary["status.ungroupable"] == 1
    assert summary["grouping_rate"] == pytest.approx(4 / 5)
    assert summary["grouped_claims_version"] == 0 and summary["io"] == io
    # the MLflow run records the scheme versions and the claims version it read
    client = MlflowClient(tracking_uri=ctx.settings.tracking_uri)
    exp = client.get_experiment_by_name("grouping")
    (run,) = client.search_runs([exp.experiment_id], "tags.`casemix.job` = 'group-claims'")
    assert run.data.tags["casemix.input.claims.version"] == str(summary["claims_version"])
    assert run.data.tags["casemix.scheme.yunnan-2023.model_version"] == "1"
    assert run.data.metrics["mdc_share.MDCG"] == 1.0
    # regrouping the same period replaces its partitions: same content, one more version
    again = run_job("casemix_jobs.group_claims", ctx, ["--from-month", "2023-12", "--to-month", "2024-03"])
    assert again["grouped_claims_version"] == 1
    assert sorted(r.claim_id for r in ctx.store.read("grouped_claims").collect()) == ["G1", "G2", "G3", "Y0", "Y1"]


def test_group_file_needs_neither_spark_nor_java(tmp_path, schemes_dir):
    cases = tmp_path / "cases.csv"
    cases.write_text(
        "case_id,sex,age_years,age_days,birth_weight_g,dept,los_days,discharge_status,principal_dx,secondary_dxs,procedures\n"
        "c1,1,40,,,,5,1,K35.200,,47.0100\n"
        "c2,M,40,,,,5,1,K35.200,J96.000,47.0100\n"
        "c3,F,30,,,,3,1,,,\n",
        encoding="utf-8")
    out = tmp_path / "grouped.csv"
    # pyspark is made unimportable and JAVA_HOME/PATH carry no Java
    code = ("import sys; sys.modules['pyspark'] = None; from casemix.cli import main; "
            f"sys.exit(main(['group-file', '--scheme', 'chs-drg-1.1', '--input', r'{cases}', '--output', r'{out}']))")
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    env["PATH"] = os.path.dirname(sys.executable)
    env["CASEMIX_SCHEMES_DIR"] = str(schemes_dir)
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(result.columns) == ["case_id", "mdc", "adrg", "drg", "status", "trace"]
    assert result[["case_id", "drg", "status"]].values.tolist() == [
        ["c1", "GD15", "grouped"], ["c2", "GD13", "grouped"], ["c3", "", "invalid"]]
    parquet_out = tmp_path / "grouped.parquet"
    from casemix.grouping.files import group_file

    group_file(schemes_dir / "chs-drg-1.1", cases, parquet_out)
    assert pd.read_parquet(parquet_out)["drg"].tolist()[:2] == ["GD15", "GD13"]


def test_a_store_without_data_file_support_gets_the_dataframe_path_or_a_clear_error(ctx, tmp_path, schemes_dir):
    from casemix.config import GroupingSettings
    from casemix.jobkit import JobError
    from casemix.storage.deltars import DeltaRsStore

    class SparkWritesOnly(DeltaRsStore):  # as the delta-spark store: no replace_partitions_with_files
        accepts_data_files = False

    store = SparkWritesOnly(ctx.spark, ctx.store.warehouse)
    ingest_sample_claims(ctx.spark, store, tmp_path, schemes_dir)
    run_job("casemix_jobs.register_scheme", ctx, [])

    def with_io(io):
        settings = ctx.settings.model_copy(update={"grouping": GroupingSettings(io=io)})
        return JobContext.create(settings, "test", spark=ctx.spark, store=store)

    with pytest.raises(JobError, match="grouping.io: files needs the delta-rs storage engine"):
        run_job("casemix_jobs.group_claims", with_io("files"), [])
    summary = run_job("casemix_jobs.group_claims", with_io("auto"), [])
    assert summary["io"] == "dataframe" and summary["status.grouped"] == 4
