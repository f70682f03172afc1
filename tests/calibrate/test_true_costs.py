"""Calibrated weights recover the true relative costs of generated data.

Uses the province generator (lib/casemix/generate): skipped only when that package is absent.

Setup (see casemix.generate.truth, "How to compare a calibration with it"): one region, 3 years
(2022-2024, target 2025, weights 2:3:5), routine discharges; costs deflated to reference conditions
(grade, hospital type, price level, inflation) so that E[cost* | g] = true_mean_cost(g).

Tolerance: the mean of cost* estimates the true mean with relative SE 0.42/sqrt(n) at the generator's
defaults; year weights 2:3:5 reduce the effective sample to ~0.88 n (SE ~0.45/sqrt(n)), and IQR trimming
cuts the same lognormal tails in every DRG (a common factor, removed by the rescaling). So every group
with n ≥ 150 cases must be within 4 SE: |RW/T − 1| ≤ 4 × 0.45/sqrt(n) (≤ 15 % at n = 150), and the
case-weighted mean error within 1.5 SE at the median n (pure sampling noise gives about 0.8 SE, the mean
absolute value of a normal error; a systematic bias such as the hospital-grade mix of raw costs, 10-20 %
for complex DRGs, would break both bounds).
"""
from __future__ import annotations

import math
from pathlib import Path

import pytest
from pyspark.sql import functions as F

import casemix
from casemix.calibrate import calibrate, calibration_cases, true_cost_errors
from tests.calibrate.conftest import AT, spec

GENERATE = Path(casemix.__file__).parent / "generate"
pytestmark = pytest.mark.skipif(not (GENERATE / "__init__.py").is_file(),
                                reason="lib/casemix/generate (the province generator) is not in this checkout")
MIN_CASES = 150


def test_calibrated_weights_are_within_4_standard_errors_of_the_true_relative_costs(spark, schemes_dir):
    from casemix.generate import GeneratorSpec, build_plan, generate_inpatient, load_province, reference_multipliers
    from casemix.generate.truth import true_costs

    plan = build_plan(GeneratorSpec(seed=31, n_cases=50_000, regions=("530100",), outpatient_multiple=0,
                                    bad_record_share=0.0), load_province(), schemes_dir)
    rows = generate_inpatient(spark, plan).filter(F.col("defect_kind").isNull() & (F.col("row_role") == "original"))
    rows = rows.persist()
    year = F.substring("drop_month", 1, 4).cast("int")
    inflation = F.element_at(F.create_map(*[x for y in (2022, 2023, 2024)
                                            for x in (F.lit(y), F.lit(plan.province.inflation_index(y)))]), year)
    hospitals = reference_multipliers(spark, plan)
    reference = F.col("grade_multiplier") * F.col("type_multiplier") * F.col("price_level") * inflation
    grouped = (rows.filter(F.col("离院方式") == "1")
               .join(F.broadcast(hospitals.drop("region")), rows["医疗机构编码"] == hospitals["hospital_id"])
               .select(F.col("drop_region").alias("region"), "hospital_id", F.col("drop_month").alias("discharge_month"),
                       F.col("住院天数").cast("int").alias("los_days"),
                       (F.col("总费用").cast("double") / reference).cast("decimal(18,2)").alias("total_cost"),
                       F.lit(plan.catalogue.scheme_id).alias("scheme_id"), F.col("case_mdc").alias("mdc"),
                       F.col("case_adrg").alias("adrg"), F.col("case_drg").alias("drg"),
                       F.col("case_status").alias("group_status")))
    truth = true_costs(spark, plan, run_id="test", cases=rows)

    s = spec()
    result = calibrate(calibration_cases(grouped, s, 2025), s, 2025, run_id="r", calibrated_at=AT, true_costs=truth)
    weights = result.weights.toPandas()
    compared = weights[(weights["cases_raw"] >= MIN_CASES) & weights["region_weight"].notna()].merge(
        truth.select("drg", F.col("true_relative_cost").cast("double")).toPandas(), on="drg")
    rows.unpersist()
    assert len(compared) >= 20, "too few DRGs with enough cases to compare"
    n = compared["cases_raw"].astype(float)
    a = compared["region_weight"] / ((n * compared["region_weight"]).sum() / n.sum())
    b = compared["true_relative_cost"] / ((n * compared["true_relative_cost"]).sum() / n.sum())
    error = (a - b).abs() / b
    limit = 4 * 0.45 / n.pow(0.5)
    worst = compared.assign(error=error, limit=limit).sort_values("error", ascending=False).head(3)
    assert (error <= limit).all(), worst[["drg", "cases_raw", "error", "limit"]].to_string()
    assert (n * error).sum() / n.sum() <= 1.5 * 0.45 / math.sqrt(n.median())

    # the quality table reports the same comparison (all groups with ≥ true_cost_min_cases = 30)
    q = result.quality.collect()[0]
    direct = true_cost_errors(result.weights, truth, 30).collect()[0]
    assert q["true_cost_groups"] == direct["true_cost_groups"] >= len(compared)
    assert q["true_cost_weighted_abs_error"] == pytest.approx(direct["true_cost_weighted_abs_error"], rel=1e-12)
