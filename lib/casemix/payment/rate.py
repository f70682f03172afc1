"""The DRG rate method (费率法, CHS-DRG) per case, as Spark expressions.

Per region r and settlement year: base rate F = (budget / expected_reimbursement_ratio) / Σ RW·n over the
year's cases that have a weight (RW = base points / 100, the same rounded weights the point method uses),
kept with 10 decimals (:func:`base_rates`). Per case (:func:`rate_cases`):

- standard P_g = RW_g × F, rounded to 6 decimals;
- ``standard``: fund amount = max(0, (P_g − 自费 (out_of_pocket) − deductible) × reimbursement), with the
  deductible and reimbursement ratio of the hospital's grade and the case's insurance scheme;
- ``high_cost_ffs``: total cost > ``high_cost_multiple[grade]`` × P_g: paid fee-for-service (its
  ``fund_paid``) after review, at most floor(``high_cost_max_share`` × the hospital's cases of the year)
  cases per hospital, those with the highest cost / P_g first (ties: claim id); the other high-cost
  cases are paid the standard;
- ``ffs``: ungrouped cases (QY, 0000, invalid, no weight) and cases of hospitals missing from the register
  (no grade, so no benefit parameters) are paid fee-for-service.

Amounts stay unrounded (6 decimals) per case; the settlement rounds each hospital's year once.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Mapping

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import DecimalType, MapType, StringType, StructField, StructType

from casemix.payment.settlement import PV_QUANTUM, SettlementError
from casemix.policy import PaymentParams

__all__ = ["base_rates", "rate_cases", "RATE_AMOUNT"]

RATE_AMOUNT = DecimalType(38, 6)
_P = DecimalType(18, 6)


def base_rates(points: DataFrame, budgets: Mapping[str, Decimal], params_by_region: Mapping[str, PaymentParams]) \
        -> dict[str, Decimal]:
    """F per region (module docstring) from the year's ``case_points`` rows and the regions' budgets."""
    sums = {r["region"]: r["rw_points"] for r in points.filter(F.col("base_points").isNotNull()
                                                               & (F.col("group_status") == "grouped"))
            .groupBy("region").agg(F.sum("base_points").alias("rw_points")).collect()}
    out = {}
    for region, budget in budgets.items():
        total = sums.get(region)
        if not total:
            raise SettlementError(f"region {region}: no grouped case with a weight, so no base rate")
        ratio = params_by_region[region].rate.expected_reimbursement_ratio
        out[region] = ((budget / ratio) / (Decimal(total) / 100)).quantize(PV_QUANTUM)
    return out


def rate_cases(points: DataFrame, rates: Mapping[str, Decimal], params_by_region: Mapping[str, PaymentParams]) \
        -> DataFrame:
    """Per case of ``points`` (``case_points`` rows): ``rate_standard``, ``rate_case_type``, ``rate_fund``
    (unrounded) and ``rate_points`` (RW × 100, 0 without a weight)."""
    spark = points.sparkSession
    rows = []
    for region, p in sorted(params_by_region.items()):
        if region not in rates:
            continue
        benefit = {f"{g}|{s}": (b.deductible[s], b.reimbursement[s]) for g, b in p.rate.benefits.items()
                   for s in b.deductible}
        rows.append((region, rates[region], {k: v[0] for k, v in benefit.items()}, {k: v[1] for k, v in benefit.items()},
                     dict(p.rate.high_cost_multiple), p.rate.high_cost_max_share))
    schema = StructType([
        StructField("region", StringType(), False), StructField("r_rate", DecimalType(24, 10), False),
        StructField("r_deductible", MapType(StringType(), _P), False),
        StructField("r_reimbursement", MapType(StringType(), _P), False),
        StructField("r_multiple", MapType(StringType(), _P), False), StructField("r_max_share", _P, False)])
    pr = F.broadcast(spark.createDataFrame(rows, schema))
    df = points.join(pr, "region", "inner")
    has_weight = (F.col("group_status") == "grouped") & F.col("base_points").isNotNull()
    standard = F.when(has_weight, F.round(F.col("base_points") * F.col("r_rate") / 100, 6)).cast(RATE_AMOUNT)
    df = df.withColumn("rate_standard", standard)
    bkey = F.concat_ws("|", F.col("grade"), F.col("insurance_scheme"))
    deductible, reimb = F.element_at("r_deductible", bkey), F.element_at("r_reimbursement", bkey)
    std_fund = F.greatest(F.lit(0).cast(RATE_AMOUNT),
                          (F.col("rate_standard") - F.col("out_of_pocket") - deductible) * reimb)
    multiple = F.element_at("r_multiple", F.col("grade"))
    eligible = has_weight & F.col("grade").isNotNull() & deductible.isNotNull()
    high = eligible & (F.col("total_cost") > multiple * F.col("rate_standard"))
    year_cases = Window.partitionBy("region", "hospital_id")
    df = df.withColumn("_eligible", eligible).withColumn("_high", high) \
        .withColumn("_allowed", F.floor(F.count(F.lit(1)).over(year_cases) * F.col("r_max_share")))
    rank_w = Window.partitionBy("region", "hospital_id", "_high").orderBy(
        F.desc(F.col("total_cost") / F.col("rate_standard")), "claim_id")
    df = df.withColumn("_rank", F.row_number().over(rank_w))
    case_type = (F.when(~F.col("_eligible"), F.lit("ffs"))
                 .when(F.col("_high") & (F.col("_rank") <= F.col("_allowed")), F.lit("high_cost_ffs"))
                 .otherwise(F.lit("standard")))
    df = df.withColumn("rate_case_type", case_type)
    fund = F.when(F.col("rate_case_type") == "standard", std_fund).otherwise(F.col("fund_paid"))
    return df.withColumn("rate_fund", fund.cast(RATE_AMOUNT)) \
        .withColumn("rate_points", F.when(has_weight, F.col("base_points")).otherwise(F.lit(0)).cast("decimal(20,4)")) \
        .drop("r_rate", "r_deductible", "r_reimbursement", "r_multiple", "r_max_share", "_eligible", "_high",
              "_allowed", "_rank")
