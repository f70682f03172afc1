"""Hospital indicators under a run's weights: CMI, cost- and time-consumption index (费用/时间消耗指数).

Per region r, hospital h and data year y (every data year of the calibration; the most recent one is
what the run's plots and metrics show), over the hospital's usable cases (grouped, not excluded,
**untrimmed**: every case the hospital is paid for), with n_hg = its cases in group g that year:

- ``cases``        = Σ_g n_hg
- ``total_weight`` = Σ_g RW_g n_hg, with RW_g the run's final ``relative_weight``
- ``cmi``          = total_weight / cases
- ``cost_index``   = Σ_g n_hg · (mean cost_hg / mean cost_g) / Σ_g n_hg
- ``time_index``   = Σ_g n_hg · (mean LOS_hg / mean LOS_g) / Σ_g n_hg  (a ratio of 1 when mean LOS_g = 0)

where mean_g are the region's means of group g over the same year's usable cases (all hospitals),
so the case-weighted average of each index over a region's hospitals is exactly 1. Costs are in the
calibration's (inflated) double form; within a year the inflation factor cancels in the ratios.
"""
from __future__ import annotations

from datetime import datetime

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from casemix.calibrate.cases import usable_cases
from casemix.tables import table

__all__ = ["hospital_indicators"]


def hospital_indicators(cases: DataFrame, weights: DataFrame, *, run_id: str, target_year: int,
                        calibrated_at: datetime) -> DataFrame:
    """``hospital_indicators`` rows for the regions of ``weights`` (:func:`region_weights` output or the
    ``relative_weights`` table: region, scheme_id, drg, relative_weight)."""
    rw = weights.select("region", "scheme_id", "drg", "relative_weight")
    regions = rw.select("region").distinct()
    usable = usable_cases(cases).join(F.broadcast(regions), "region", "left_semi")
    cell_keys = ["region", "data_year", "hospital_id", "scheme_id", "drg"]
    cells = usable.groupBy(*cell_keys).agg(
        F.count(F.lit(1)).alias("n"), F.sum("cost").alias("cost"), F.sum(F.col("los_days").cast("double")).alias("los"))
    group_year = Window.partitionBy("region", "data_year", "scheme_id", "drg")
    joined = (cells.withColumn("g_cost", F.sum("cost").over(group_year) / F.sum("n").over(group_year))
              .withColumn("g_los", F.sum("los").over(group_year) / F.sum("n").over(group_year))
              .join(F.broadcast(rw), ["region", "scheme_id", "drg"], "left"))
    n = F.col("n").cast("double")
    cost_ratio = (F.col("cost") / n) / F.col("g_cost")
    time_ratio = F.when(F.col("g_los") == 0, F.lit(1.0)).otherwise((F.col("los") / n) / F.col("g_los"))
    out = joined.groupBy("region", "data_year", "hospital_id").agg(
        F.sum("n").cast("long").alias("cases"),
        F.sum(n * F.col("relative_weight")).alias("total_weight"),
        F.sum(n * cost_ratio).alias("_cost"),
        F.sum(n * time_ratio).alias("_time"),
    )
    return out.select(
        F.lit(run_id).alias("calibration_run_id"), "region", F.lit(int(target_year)).alias("target_year"),
        F.col("data_year").cast("int"), "hospital_id", "cases", "total_weight",
        (F.col("total_weight") / F.col("cases")).alias("cmi"),
        (F.col("_cost") / F.col("cases")).alias("cost_index"),
        (F.col("_time") / F.col("cases")).alias("time_index"),
        F.lit(calibrated_at).cast("timestamp").alias("calibrated_at"),
    ).select(*table("hospital_indicators").columns)
