"""Quality of a calibration per region (the ``calibration_quality`` table).

Per region r, over the data years:

- ``cases_all``: every grouped_claims record of the region (any status); ``cases_excluded``: those
  excluded (LOS, minimum cost); ``cases_grouped``: grouped and not excluded (the usable cases);
- ``grouping_rate`` (入组率) = cases_grouped / (cases_all − cases_excluded) (QY, 0000 and invalid
  records count against it, as in the Chuxiong/Yunnan monitoring rule);
- ``trimmed_share`` = 1 − cases_after_trimming / cases_grouped;
- ``groups``: weight rows of the region (including DRGs it borrows for, without cases);
  ``groups_with_cases``: n_g > 0; ``low_volume_groups``: 0 < n_g < low_volume.min_cases;
- ``cv_ge_1_share``: groups with CV ≥ 1 / groups with a CV (≥ 2 kept cases);
- ``riv`` = 1 − Σ_g SS_g / Σ_g (SS_g + W_g (m_g − M_r)²) on the kept, year-weighted cases
  (see :mod:`casemix.calibrate.weights`);
- ``tilted_groups``, ``capped_groups``, ``budget_ratio`` = Σ RW·ñ / Σ RW'·ñ (1 unless the cap bit);
- against the generator's ``synthetic_true_costs`` (when given): groups with n_g ≥
  ``true_cost_min_cases`` and the same scheme + DRG in the truth; both the region's own weights RW_g
  (before low volume, tilt and cap) and the true relative costs T_g are rescaled to a case-weighted mean
  of 1 over those groups (a_g = RW_g / (Σ n RW / Σ n), b_g = T_g / (Σ n T / Σ n), n = n_g: the truth
  re-normalised to the case set, as casemix.generate.truth describes), then
  e_g = |a_g − b_g| / b_g; ``true_cost_median_abs_error`` = median e_g (interpolated),
  ``true_cost_weighted_abs_error`` = Σ n_g e_g / Σ n_g. Raw costs carry the hospital-grade mix of each
  DRG, so this error is not pure sampling noise (see casemix.generate.truth, point 3).
"""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from casemix.calibrate.cases import STATUS_GROUPED
from casemix.tables import MONEY, table

__all__ = ["case_counts", "calibration_quality", "true_cost_errors"]


def case_counts(cases: DataFrame) -> DataFrame:
    """Per region: cases_all, cases_excluded, cases_grouped (module docstring)."""
    grouped = (F.col("group_status") == STATUS_GROUPED) & ~F.col("excluded")
    return cases.groupBy("region").agg(
        F.count(F.lit(1)).alias("cases_all"),
        F.sum(F.col("excluded").cast("long")).alias("cases_excluded"),
        F.sum(grouped.cast("long")).alias("cases_grouped"),
    )


def true_cost_errors(weights: DataFrame, true_costs: DataFrame, min_cases: int) -> DataFrame:
    """Per region: true_cost_groups, true_cost_median_abs_error, true_cost_weighted_abs_error
    (module docstring); ``weights`` needs region, scheme_id, drg, cases_raw, region_weight."""
    truth = true_costs.select("scheme_id", "drg", F.col("true_relative_cost").cast("double").alias("truth"))
    pairs = (weights.filter((F.col("cases_raw") >= min_cases) & F.col("region_weight").isNotNull())
             .select("region", "scheme_id", "drg", F.col("cases_raw").cast("double").alias("n"), "region_weight")
             .join(truth, ["scheme_id", "drg"]))
    region = Window.partitionBy("region")
    total = F.sum("n").over(region)
    a = F.col("region_weight") / (F.sum(F.col("n") * F.col("region_weight")).over(region) / total)
    b = F.col("truth") / (F.sum(F.col("n") * F.col("truth")).over(region) / total)
    errors = pairs.withColumn("error", F.abs(a - b) / b)
    return errors.groupBy("region").agg(
        F.count(F.lit(1)).cast("int").alias("true_cost_groups"),
        F.percentile("error", F.lit(0.5)).alias("true_cost_median_abs_error"),
        (F.sum(F.col("n") * F.col("error")) / F.sum("n")).alias("true_cost_weighted_abs_error"),
    )


def calibration_quality(cases: DataFrame, weights: DataFrame, *, run_id: str, target_year: int,
                        calibrated_at: datetime, true_costs: Optional[DataFrame] = None,
                        true_cost_min_cases: int = 30, low_volume_min_cases: int = 5) -> DataFrame:
    """``calibration_quality`` rows from the run's cases (:func:`calibration_cases`) and weights
    (:func:`region_weights` output, :data:`~casemix.calibrate.weights.WEIGHTS_SCHEMA`)."""
    has_cases = F.col("cases_raw") > 0
    per_region = weights.groupBy("region").agg(
        F.sum("cases_after_trimming").cast("long").alias("cases_after_trimming"),
        F.count(F.lit(1)).cast("int").alias("groups"),
        F.sum(has_cases.cast("int")).cast("int").alias("groups_with_cases"),
        F.sum((has_cases & (F.col("cases_raw") < low_volume_min_cases)).cast("int")).cast("int")
        .alias("low_volume_groups"),
        (F.sum((F.col("cv") >= 1).cast("int")) / F.count("cv")).alias("cv_ge_1_share"),
        (1 - F.sum("ss_within") / (F.sum("ss_within") + F.sum("ss_between"))).alias("riv"),
        F.max("all_case_mean").alias("all_case_mean"),
        F.sum(F.col("tilted").cast("int")).cast("int").alias("tilted_groups"),
        F.sum(F.col("capped").cast("int")).cast("int").alias("capped_groups"),
        (F.sum(F.col("cases_weighted") * F.col("relative_weight"))
         / F.sum(F.col("cases_weighted") * F.col("weight_before_tilt"))).alias("budget_ratio"),
    )
    counts = case_counts(cases)
    out = per_region.join(counts, "region", "left")
    if true_costs is not None:
        out = out.join(true_cost_errors(weights, true_costs, true_cost_min_cases), "region", "left")
    else:
        out = (out.withColumn("true_cost_groups", F.lit(None).cast("int"))
               .withColumn("true_cost_median_abs_error", F.lit(None).cast("double"))
               .withColumn("true_cost_weighted_abs_error", F.lit(None).cast("double")))
    usable_base = F.col("cases_all") - F.col("cases_excluded")
    return out.select(
        F.lit(run_id).alias("calibration_run_id"), "region", F.lit(int(target_year)).alias("target_year"),
        "cases_all", "cases_excluded", "cases_grouped",
        F.when(usable_base > 0, F.col("cases_grouped") / usable_base).alias("grouping_rate"),
        "cases_after_trimming",
        F.when(F.col("cases_grouped") > 0, 1 - F.col("cases_after_trimming") / F.col("cases_grouped"))
        .alias("trimmed_share"),
        "groups", "groups_with_cases", "low_volume_groups", "cv_ge_1_share", "riv",
        F.round("all_case_mean", 2).cast(MONEY).alias("all_case_mean_cost"),
        "tilted_groups", "capped_groups", "budget_ratio",
        F.col("true_cost_groups").cast("int"), "true_cost_median_abs_error", "true_cost_weighted_abs_error",
        F.lit(calibrated_at).cast("timestamp").alias("calibrated_at"),
    ).select(*table("calibration_quality").columns)
