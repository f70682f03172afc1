"""The generator and ingestion together on a small generated province: every planted defect is
caught with its reason code and nothing else is rejected; and the Spark grouping job equals the
pandas core on 100 k generated cases."""
from __future__ import annotations

import importlib

import pandas as pd
import pytest
from pyspark.sql import functions as F

from casemix.jobkit import JobContext, build_parser


def run_job(module_name, ctx, argv):
    module = importlib.import_module(module_name)
    stage = JobContext.create(ctx.settings, module.NAME, spark=ctx.spark, store=ctx.store)
    return module.run(stage, build_parser(module).parse_args(argv))


@pytest.fixture(scope="module")
def province(spark, tmp_path_factory, schemes_dir):
    """3 000 generated cases (5 % of them defective) of a Parquet region and a CSV region over two years,
    written as drops and ingested once."""
    from casemix.storage.deltars import DeltaRsStore
    from tests.conftest import isolated_settings

    tmp = tmp_path_factory.mktemp("province")
    settings = isolated_settings(tmp, schemes_dir)
    ctx = JobContext.create(settings, "test", spark=spark, store=DeltaRsStore(spark, str(tmp / "warehouse")))
    generated = run_job("casemix_jobs.generate_claims", ctx, [
        "--cases", "3000", "--seed", "11", "--bad-share", "0.05", "--outpatient-multiple", "0.5",
        "--regions", "530100,530600", "--years", "2023-2024"])
    ingested = run_job("casemix_jobs.ingest_claims", ctx, [])
    defects = pd.read_parquet(tmp / "data" / "drops" / "inpatient" / "_defects")
    return ctx, generated, ingested, defects


def test_every_planted_defect_is_caught_with_its_reason_and_nothing_else_is_rejected(province):
    ctx, generated, ingested, defects = province
    store = ctx.store
    assert set(defects["defect_kind"]) == {
        "missing_principal_dx", "unknown_dx_code", "discharge_before_admission", "negative_cost", "non_numeric_cost",
        "fund_exceeds_total", "sex_dx_mismatch", "newborn_dx_adult", "duplicate_claim_id", "resubmission",
        "malformed_csv_row", "wrong_type"}
    rejected = store.read("claims_rejected").select("drop_id", "claim_id", "reason_codes", "raw_record").toPandas()
    # a malformed line has no parsed claim id: it is the line's first field
    rejected["claim_id"] = rejected["claim_id"].fillna(rejected["raw_record"].str.split(",").str[0])
    got = {(r.drop_id, r.claim_id): set(r.reason_codes) for r in rejected.itertuples()}
    assert len(got) == len(rejected), "one rejected record per planted defect"

    planted = defects[defects["expected_reason"] != "SUPERSEDED"]
    expected = {(r.drop_id, r.claim_id): r.expected_reason for r in planted.itertuples()}
    assert set(got) == set(expected), "rejected records are exactly the planted defects"
    wrong = {k: (expected[k], sorted(got[k])) for k in expected if expected[k] not in got[k]}
    assert not wrong, f"defects caught with another reason: {wrong}"

    # a resubmission's first version is superseded by the corrected second one, not rejected
    resubmitted = set(defects.loc[defects["expected_reason"] == "SUPERSEDED", "claim_id"])
    versions = {r.claim_id: r.claim_version for r in store.read("claims")
                .filter(F.col("claim_id").isin(list(resubmitted))).collect()}
    assert versions == {c: 2 for c in resubmitted}
    assert ingested["superseded"] == len(resubmitted)


def test_counts_add_up_with_the_generator_summary(province):
    ctx, generated, ingested, defects = province
    assert ingested["read"] == ingested["accepted"] + ingested["rejected"]
    assert ingested["accepted"] == (ingested["inserted"] + ingested["updated"] + ingested["unchanged"]
                                    + ingested["superseded"])
    assert ingested["read"] == generated["rows"]
    assert ingested["rejected"] == int((defects["expected_reason"] != "SUPERSEDED").sum())
    assert ctx.store.read("claims").count() == ingested["inserted"]
    quality = ctx.store.read("ingest_quality").groupBy("measure").agg(F.sum("records").alias("n")).collect()
    by_measure = {r.measure: r.n for r in quality}
    assert by_measure["read"] == ingested["read"] and by_measure["rejected"] == ingested["rejected"]


def test_spark_grouping_job_equals_the_pandas_core_on_100k_generated_cases(spark, schemes_dir, tmp_path):
    """100 000 generated clean cases, validated like ingestion does, grouped by the Spark job's
    mapInArrow function and by the pandas core directly: identical on every output column; and the
    file-wise path (casemix.grouping.direct) writes exactly the rows of the mapInArrow path."""
    from datetime import datetime, timezone

    from casemix.codes import load_codebook
    from casemix.generate import GeneratorSpec, build_plan, generate_inpatient, load_province
    from casemix.grouping import group_frame, load_compiled
    from casemix.grouping.direct import replace_grouped_claims
    from casemix.grouping.distributed import GROUPER_INPUTS, group_claims
    from casemix.ingest.pseudonym import DEMO_KEY, PseudonymKey
    from casemix.ingest.raw import RAW_COLUMNS
    from casemix.ingest.validate import validate
    from casemix.policy import GroupingPolicy
    from casemix.storage.deltars import DeltaRsStore
    from casemix.tables import CATALOGUE

    plan = build_plan(GeneratorSpec(seed=5, n_cases=100_000, bad_record_share=0.0, outpatient_multiple=0,
                                    partitions=4), load_province(), str(schemes_dir))
    raw = generate_inpatient(spark, plan).filter("row_role = 'original'").select(
        *[F.col(f"`{zh}`").alias(en) for zh, en in RAW_COLUMNS.items()],
        F.lit("generated").alias("source_file"), F.lit("parquet").alias("source_format"),
        F.col("case_id").alias("source_line"), F.concat_ws("/", "drop_region", "drop_month").alias("drop_id"),
        F.col("drop_region"), F.lit(False).alias("_malformed"), F.lit(None).cast("string").alias("_raw_line"),
        F.col("case_id").alias("_order"))
    key = PseudonymKey(DEMO_KEY, "demo")
    checked = validate(raw, load_codebook(schemes_dir / "chs-drg-1.1"), key)
    claims = checked.filter(F.size("reason_codes") == 0).select(
        *[c for c in CATALOGUE["claims"].columns if c not in ("ingest_run_id", "ingested_at")],
        F.lit("t").alias("ingest_run_id"), F.lit(datetime.now(timezone.utc)).alias("ingested_at"))
    store = DeltaRsStore(spark, str(tmp_path / "warehouse"))
    odd = F.abs(F.hash("claim_id")) % 2 == 1
    store.append("claims", claims.filter(odd))  # two commits: two files in each partition
    store.append("claims", claims.filter(~odd))
    claims = store.read("claims")
    assert claims.count() == 100_000

    policy = GroupingPolicy(default_scheme="chs-drg-1.1")
    scheme = str(schemes_dir / "chs-drg-1.1")
    grouped_at = datetime.now(timezone.utc)
    rows = group_claims(claims, {"chs-drg-1.1": scheme}, policy, run_id="r", grouped_at=grouped_at)
    by_spark = rows.select(
        "claim_id", "mdc", "adrg", "drg", "group_status", "has_mcc", "has_cc", "cc_code", "invalid_reason", "trace"
    ).toPandas().sort_values("claim_id").reset_index(drop=True)

    # the file-wise path writes the very same rows, every column; with small batches and tasks, so that
    # partitions span batches, batches span partitions, and partitions are split between tasks by file
    months = sorted(r[0] for r in claims.select("discharge_month").distinct().collect())
    files = store.data_files("claims")
    _, results = replace_grouped_claims(spark, store, files, months, {"chs-drg-1.1": scheme}, policy, run_id="r",
                                        grouped_at=grouped_at, batch_rows=7_000, task_rows=120, tasks=3)
    by_files = store.read("grouped_claims")
    assert by_files.count() == 100_000 == sum(r.rows_out for r in results) == sum(r.rows_logged for r in results)
    partitions = {tuple(f.partition_values.values()) for f in files}
    assert len(partitions) < len(results) == len(by_files.inputFiles()) <= len(files)
    assert by_files.exceptAll(rows).count() == 0 and rows.exceptAll(by_files).count() == 0

    cases = claims.select("claim_id", *GROUPER_INPUTS).toPandas().sort_values("claim_id").reset_index(drop=True)
    by_pandas = group_frame(load_compiled(scheme), cases[list(GROUPER_INPUTS)])
    by_pandas = by_pandas.rename(columns={"status": "group_status"})
    by_pandas.insert(0, "claim_id", cases["claim_id"])
    by_pandas["trace"] = by_pandas["trace"].fillna("")
    columns = list(by_spark.columns)
    pd.testing.assert_frame_equal(by_spark[columns].astype(object).where(by_spark.notna(), None),
                                  by_pandas[columns].astype(object).where(by_pandas[columns].notna(), None),
                                  check_dtype=False)
    assert (by_spark["group_status"] == "grouped").mean() > 0.95
