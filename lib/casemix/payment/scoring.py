"""Case points under the DRG point method (病组点数法), as Spark column expressions over all cases.

For a case of region r in settlement year y, with the promoted weights of (r, y): RW_g and base points
B_g = round(RW_g × 100, 4); the group mean cost = the weights' standard cost of g (RW_g × the region's
all-case mean); ratio = round(total cost / group mean, 6); c = hospital coefficient. The case type is the
first that applies, in this order (parameters: ``payment.years.<y>`` of conf/policy, per region):

=============  ===========================================================  ===========================
case type      when                                                         points
=============  ===========================================================  ===========================
ungrouped      group status QY, ungroupable (0000) or invalid               round(cost / all-case mean,
                                                                            6) × 100 × ungrouped_discount
bed_day        grouped, DRG or ADRG in bed_day.points_per_day, LOS >=       points_per_day × LOS
               min_los_days (with or without a weight: B is not used)
no_weight      grouped, but the promoted weights have no row for its DRG    as ungrouped
incomplete     discharge status in incomplete_stay.statuses, or a death     B × c × min(1, ratio)
               status with LOS <= death_max_los_days
high_cost      ratio > m (m from high_cost tiers by B: 3 / 2 / 1.5)         B × c + (ratio − m) × B
low_cost       ratio <= low_cost_ratio (0.4)                                B × ratio
band           band.enabled and ratio <= band.upper_ratio (0.8)             B × (ratio + band.add)
normal         otherwise                                                    B × c
=============  ===========================================================  ===========================

Readmission: a grouped stay followed by another stay of the same person (any hospital, any region)
in the same DRG (``readmission.same: adrg``: ADRG), admitted 0..window_days days after this stay's
discharge, has its points × ``readmission.factor`` (halved), whatever its case type; the later stay's
claim id is kept. Stays up to window_days into the next year are read to find them. The rule (drg / adrg,
window) is the earlier stay's region's, whatever the region of the later stay and whether it is scored.

Hospital coefficient c: ``coefficient.source: grade`` → the grade's coefficient from the ``hospitals``
register; ``history`` → the hospital's case-weighted cost-consumption index over the data years of the
promoted calibration run (``hospital_indicators``), clamped to ``history_bounds``, or its grade's
coefficient without history (source ``grade_default``). A case whose DRG or ADRG is in
``same_price_groups`` has c = 1 (同病同价). A hospital missing from the register gets c = 1, source
``unregistered`` (it is still scored and paid; the score-cases job reports how many).

Points are decimals rounded half up to ``points_decimals`` once, before and after the readmission factor
(at most the 4 decimals ``case_points`` keeps: more is refused).
"""
from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Mapping, Optional

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import (ArrayType, BooleanType, DecimalType, IntegerType, MapType, StringType, StructField,
                               StructType)

from casemix.policy import PaymentParams
from casemix.tables import table

__all__ = ["score_cases", "params_frame", "scoring_window", "CASE_TYPES", "ScoringError"]

CASE_TYPES = ("ungrouped", "bed_day", "no_weight", "incomplete", "high_cost", "low_cost", "band", "normal")
_P = DecimalType(18, 6)


class ScoringError(ValueError):
    """The inputs cannot be scored (inconsistent parameters across regions, ...)."""


def scoring_window(year: int, params_by_region: Mapping[str, PaymentParams]) -> tuple[str, str, date]:
    """(first discharge month, last discharge month, last admission date) of the grouped claims scoring
    reads for ``year``: the year itself plus the readmission window into the next year."""
    window = max((p.readmission.window_days for p in params_by_region.values()), default=0)
    last_admission = date(year, 12, 31) + timedelta(days=window)
    return f"{year:04d}-01", f"{last_admission.year:04d}-12", last_admission


_PARAMS_SCHEMA = StructType([
    StructField("region", StringType(), False),
    StructField("p_coef_source", StringType(), False),
    StructField("p_grade_coef", MapType(StringType(), _P), False),
    StructField("p_hist_lo", _P, False),
    StructField("p_hist_hi", _P, False),
    StructField("p_same_price", ArrayType(StringType()), False),
    StructField("p_hc_bounds", ArrayType(_P), False),
    StructField("p_hc_multiples", ArrayType(_P), False),
    StructField("p_low_ratio", _P, False),
    StructField("p_band_on", BooleanType(), False),
    StructField("p_band_upper", _P, False),
    StructField("p_band_add", _P, False),
    StructField("p_inc_statuses", ArrayType(StringType()), False),
    StructField("p_death_statuses", ArrayType(StringType()), False),
    StructField("p_death_max_los", IntegerType(), False),
    StructField("p_bed_points", MapType(StringType(), _P), False),
    StructField("p_bed_min_los", IntegerType(), False),
    StructField("p_readmit_window", IntegerType(), False),
    StructField("p_readmit_factor", _P, False),
    StructField("p_readmit_same", StringType(), False),
    StructField("p_discount", _P, False),
])


def params_frame(spark: SparkSession, params_by_region: Mapping[str, PaymentParams]) -> DataFrame:
    """One row per region with its scoring parameters as columns (joined to the cases, broadcast)."""
    rows = []
    for region, p in sorted(params_by_region.items()):
        c = p.coefficient
        rows.append((
            region, c.source, dict(c.grades), c.history_bounds[0], c.history_bounds[1], list(c.same_price_groups),
            [t.up_to_points for t in p.high_cost], [t.multiple for t in p.high_cost], p.low_cost_ratio,
            p.band.enabled, p.band.upper_ratio, p.band.add, list(p.incomplete_stay.statuses),
            list(p.incomplete_stay.death_statuses), p.incomplete_stay.death_max_los_days,
            dict(p.bed_day.points_per_day), p.bed_day.min_los_days, p.readmission.window_days,
            p.readmission.factor, p.readmission.same, p.ungrouped_discount,
        ))
    return spark.createDataFrame(rows, _PARAMS_SCHEMA)


def _ratio(num: Column, den: Column) -> Column:
    return F.when(den > 0, F.round(num / den, 6)).cast(_P)


def score_cases(grouped: DataFrame, weights: DataFrame, hospitals: DataFrame, params_by_region: Mapping[str, PaymentParams],
                year: int, *, run_id: str, scored_at: datetime, indicators: Optional[DataFrame] = None) -> DataFrame:
    """``case_points`` rows of the cases of ``grouped`` discharged in ``year`` (module docstring).

    ``grouped``: grouped_claims rows covering :func:`scoring_window` (later stays only find readmissions);
    ``weights``: the promoted ``relative_weights`` rows of the regions for ``year`` (one run per region, as
    :func:`casemix.calibrate.promoted_weights` returns them);
    ``hospitals``: the ``hospitals`` register; ``indicators``: ``hospital_indicators`` of the promoted runs
    (needed when a region's coefficient source is ``history``).
    """
    decimals = {p.points_decimals for p in params_by_region.values()}
    if len(decimals) > 1:
        raise ScoringError(f"payment.points_decimals differs between regions ({sorted(decimals)}): points must "
                           "have one precision in a year")
    digits = decimals.pop() if decimals else 4
    scale = table("case_points").field("points").dataType.scale
    if digits > scale:
        raise ScoringError(f"payment.points_decimals is {digits} but case_points keeps points with {scale} "
                           f"decimals: set payment.points_decimals <= {scale} (more would be rounded twice)")
    spark = grouped.sparkSession
    pr = F.broadcast(params_frame(spark, params_by_region))
    _, _, last_admission = scoring_window(year, params_by_region)

    stays = grouped.filter(F.col("admission_date") <= F.lit(last_admission)).join(pr, "region", "left")
    # -- readmission: the next stay of the same person in the same DRG (ADRG). Every stay is linked under
    # each rule in use, and the earlier stay's region picks its rule: the later stay may be in a region
    # with another rule, or one that is not scored in this run (it has no parameters here).
    grouped_ok = F.col("group_status") == "grouped"
    order = ("admission_date", "discharge_date", "claim_id")
    halved_by, next_by = {}, {}
    for same in sorted({p.readmission.same for p in params_by_region.values()} or {"drg"}):
        key = F.when(grouped_ok, F.col(same))
        w = Window.partitionBy(F.col("person_id"), key).orderBy(*order)
        stays = stays.withColumn(f"_next_adm_{same}", F.lead("admission_date").over(w)) \
            .withColumn(f"_next_claim_{same}", F.lead("claim_id").over(w))
        gap = F.datediff(F.col(f"_next_adm_{same}"), F.col("discharge_date"))
        halved_by[same] = key.isNotNull() & gap.isNotNull() & (gap >= 0) & (gap <= F.col("p_readmit_window"))
        next_by[same] = F.col(f"_next_claim_{same}")
    if len(halved_by) == 1:
        (halved,), (next_claim,) = halved_by.values(), next_by.values()
    else:
        use_adrg = F.col("p_readmit_same") == "adrg"
        halved = F.when(use_adrg, halved_by["adrg"]).otherwise(halved_by["drg"])
        next_claim = F.when(use_adrg, next_by["adrg"]).otherwise(next_by["drg"])
    stays = stays.withColumn("readmission_halved", F.coalesce(halved, F.lit(False))) \
        .withColumn("readmission_claim_id", F.when(F.col("readmission_halved"), next_claim))
    cases = stays.filter(F.substring("discharge_month", 1, 4) == F.lit(f"{year:04d}"))

    # -- weights of the promoted run: region-level (run id, all-case mean) and per DRG
    runs = weights.groupBy("region").agg(F.min("calibration_run_id").alias("calibration_run_id"),
                                         F.min("all_case_mean_cost").alias("all_case_mean_cost"))
    per_drg = weights.select("region", "scheme_id", "drg", "relative_weight",
                             F.round(F.col("relative_weight") * 100, 4).cast(table("case_points").field("base_points").dataType)
                             .alias("base_points"), F.col("standard_cost").alias("group_mean_cost"))
    cases = cases.join(F.broadcast(runs), "region", "left") \
        .join(F.broadcast(per_drg), ["region", "scheme_id", "drg"], "left") \
        .join(F.broadcast(hospitals.select("hospital_id", "grade")), "hospital_id", "left")
    if indicators is not None:
        hist = indicators.groupBy("calibration_run_id", "region", "hospital_id").agg(
            (F.sum(F.col("cases") * F.col("cost_index")) / F.sum("cases")).alias("_hist_index"))
        cases = cases.join(F.broadcast(hist), ["calibration_run_id", "region", "hospital_id"], "left")
    else:
        cases = cases.withColumn("_hist_index", F.lit(None).cast("double"))

    # -- hospital coefficient
    grade_coef = F.element_at("p_grade_coef", F.col("grade"))
    hist_coef = F.least(F.greatest(F.round(F.col("_hist_index"), 6).cast(_P), F.col("p_hist_lo")), F.col("p_hist_hi"))
    same_price = F.array_contains("p_same_price", F.col("drg")) | F.array_contains("p_same_price", F.col("adrg"))
    coef_source = (F.when(F.coalesce(same_price, F.lit(False)), F.lit("same_price"))
                   .when(F.col("grade").isNull(), F.lit("unregistered"))
                   .when((F.col("p_coef_source") == "history") & F.col("_hist_index").isNotNull(), F.lit("history"))
                   .when(F.col("p_coef_source") == "history", F.lit("grade_default"))
                   .otherwise(F.lit("grade")))
    coef = (F.when(coef_source.isin("same_price", "unregistered"), F.lit(1).cast(_P))
            .when(coef_source == "history", hist_coef).otherwise(grade_coef)).cast(_P)
    cases = cases.withColumn("coefficient_source", coef_source).withColumn("hospital_coefficient", coef)

    # -- case type and points
    B, c = F.col("base_points"), F.col("hospital_coefficient")
    ratio = _ratio(F.col("total_cost"), F.col("group_mean_cost"))
    cases = cases.withColumn("cost_ratio", ratio)
    ratio = F.col("cost_ratio")
    tier = F.element_at(F.filter(F.arrays_zip(F.col("p_hc_bounds").alias("b"), F.col("p_hc_multiples").alias("m")),
                                 lambda t: t["b"].isNull() | (B <= t["b"])), 1)
    m = tier["m"]
    bed_ppd = F.coalesce(F.element_at("p_bed_points", F.col("drg")), F.element_at("p_bed_points", F.col("adrg")))
    incomplete = (F.array_contains("p_inc_statuses", F.col("discharge_status"))
                  | (F.array_contains("p_death_statuses", F.col("discharge_status"))
                     & (F.col("los_days") <= F.col("p_death_max_los"))))
    case_type = (F.when(~grouped_ok, F.lit("ungrouped"))
                 .when(bed_ppd.isNotNull() & (F.col("los_days") >= F.col("p_bed_min_los")), F.lit("bed_day"))
                 .when(B.isNull(), F.lit("no_weight"))
                 .when(incomplete, F.lit("incomplete"))
                 .when(ratio > m, F.lit("high_cost"))
                 .when(ratio <= F.col("p_low_ratio"), F.lit("low_cost"))
                 .when(F.col("p_band_on") & (ratio <= F.col("p_band_upper")), F.lit("band"))
                 .otherwise(F.lit("normal")))
    cases = cases.withColumn("case_type", case_type)
    all_ratio = _ratio(F.col("total_cost"), F.col("all_case_mean_cost"))
    t = F.col("case_type")
    raw = (F.when(t.isin("ungrouped", "no_weight"), all_ratio * 100 * F.col("p_discount"))
           .when(t == "bed_day", bed_ppd * F.col("los_days"))
           .when(t == "incomplete", B * c * F.least(ratio, F.lit(1).cast(_P)))
           .when(t == "high_cost", B * c + (ratio - m) * B)
           .when(t == "low_cost", B * ratio)
           .when(t == "band", B * (ratio + F.col("p_band_add")))
           .otherwise(B * c))
    points_type = table("case_points").field("points").dataType
    before = F.coalesce(F.round(raw, digits), F.lit(0)).cast(points_type)
    cases = cases.withColumn("points_before_readmission", before)
    final = F.when(F.col("readmission_halved"),
                   F.round(F.col("points_before_readmission") * F.col("p_readmit_factor"), digits)) \
        .otherwise(F.col("points_before_readmission")).cast(points_type)
    money = table("case_points").field("total_cost").dataType
    cases = cases.withColumn("points", final) \
        .withColumn("patient_paid", (F.col("total_cost") - F.col("fund_paid")).cast(money)) \
        .withColumn("score_run_id", F.lit(run_id)).withColumn("scored_at", F.lit(scored_at).cast("timestamp"))
    return cases.select(*[F.col(f.name).cast(f.dataType).alias(f.name) for f in table("case_points").schema])
