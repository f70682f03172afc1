"""A fast, deterministic ``grouped_claims``-shaped DataFrame for benchmarks, notebooks and tests.

Not the province generator (:mod:`casemix.generate`, which generates raw drops that ingestion and
grouping turn into ``grouped_claims``): this builds grouped rows directly from ``spark.range`` with column
expressions, millions of rows per second, when only the calibration is of interest.

Every random quantity is a hash of (seed, field, row id), so the rows do not depend on partitioning.
Cost model of a grouped case of group g in hospital h of region r, discharged in year y::

    cost = base_cost × relative_cost[g] × price_level[r] × hospital_level[h] × inflation[y]
           × exp(σ z − σ²/2) × (outlier_factor with probability outlier_share, else 1)

Hospitals are assigned independently of the group, so the expected relative weight of g in every region
is ``relative_cost[g] / Σ_g' p_g' relative_cost[g']`` (p = group shares): :func:`synthetic_relative_costs`.
Group g (0-based, of G) is drawn with P(index ≤ g) = ((g + 1)/G)^(1/3): a few large groups and a long
tail of rare ones (low-volume groups appear in small data). Small shares of QY and ungroupable records,
stays over 60 days and costs under 5 yuan exercise the exclusions and the 入组率.
"""
from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Optional, Sequence

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from casemix.tables import MONEY, table

__all__ = ["synthetic_grouped_claims", "synthetic_relative_costs", "synthetic_groups", "DEFAULT_REGIONS"]

#: the 16 prefectures of the demo province (conf/province.yaml)
DEFAULT_REGIONS = ("530100", "530300", "530400", "530500", "530600", "530700", "530800", "530900", "532300",
                   "532500", "532600", "532800", "532900", "533100", "533300", "533400")
_MASK = (1 << 53) - 1
_GROUP_POWER = 3.0
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def synthetic_groups(groups: int, seed: int) -> pd.DataFrame:
    """The synthetic DRGs: code, ADRG, MDC, planted relative cost and share of grouped cases."""
    rng = np.random.default_rng(seed)
    rel = np.exp(rng.normal(0.0, 0.8, groups))
    codes, adrgs, mdcs = [], [], []
    for i in range(groups):
        letter = _LETTERS[i % 26]
        adrg = f"{letter}{_LETTERS[(i // 26) % 26]}{(i // 676) % 10}"
        split = "1359"[(i * 7) % 4]
        codes.append(adrg + split)
        adrgs.append(adrg)
        mdcs.append("MDC" + letter)
    g = np.arange(groups + 1) / groups
    share = np.diff(g ** (1.0 / _GROUP_POWER))
    return pd.DataFrame({"drg": codes, "adrg": adrgs, "mdc": mdcs, "relative_cost": rel, "share": share})


def synthetic_relative_costs(groups: int = 200, seed: int = 20240101) -> pd.DataFrame:
    """drg -> the expected relative weight of each synthetic group (``true_relative_cost``): the
    planted relative cost over its share-weighted mean."""
    g = synthetic_groups(groups, seed)
    mean = float((g["share"] * g["relative_cost"]).sum())
    return pd.DataFrame({"drg": g["drg"], "true_relative_cost": g["relative_cost"] / mean})


def _uniform(seed: int, field: int) -> Column:
    bits = F.xxhash64(F.lit(seed), F.lit(field), F.col("id")).bitwiseAND(F.lit(_MASK))
    return bits.cast("double") / float(1 << 53)


def _normal(seed: int, field: int) -> Column:
    u1 = 1.0 - _uniform(seed, field)
    u2 = _uniform(seed, field + 1000)
    return F.sqrt(-2.0 * F.log(u1)) * F.cos(2 * math.pi * u2)


def _pick(values: Sequence, index: Column) -> Column:
    return F.element_at(F.array(*[F.lit(v) for v in values]), index.cast("int") + 1)


def synthetic_grouped_claims(
    spark: SparkSession,
    *,
    cases: int = 100_000,
    regions: Sequence[str] = DEFAULT_REGIONS,
    years: Sequence[int] = (2022, 2023, 2024),
    groups: int = 200,
    hospitals_per_region: int = 20,
    seed: int = 20240101,
    partitions: Optional[int] = None,
    scheme_id: str = "chs-drg-1.1",
    scheme_model_version: str = "1",
    base_cost: float = 4000.0,
    cost_sigma: float = 0.45,
    outlier_share: float = 0.01,
    outlier_factor: float = 6.0,
    qy_share: float = 0.01,
    ungroupable_share: float = 0.005,
    long_stay_share: float = 0.003,
    tiny_cost_share: float = 0.001,
    inflation: Sequence[float] | None = None,
    months: Sequence[int] = tuple(range(1, 13)),
    run_id: str = "synthetic",
) -> DataFrame:
    """``cases`` rows in the ``grouped_claims`` schema (module docstring for the model)."""
    g = synthetic_groups(groups, seed)
    rng = np.random.default_rng(seed + 1)
    price = rng.uniform(0.9, 1.15, len(regions)).round(3).tolist()
    hospital_level = rng.uniform(0.8, 1.2, hospitals_per_region).round(3).tolist()
    infl = list(inflation) if inflation is not None else [1.0 + 0.03 * i for i in range(len(years))]
    parts = partitions or max(2, cases // 500_000)
    df = spark.range(0, cases, 1, parts)

    r_idx = F.floor(_uniform(seed, 1) ** 1.5 * len(regions))
    g_idx = F.floor(_uniform(seed, 2) ** _GROUP_POWER * groups)
    h_idx = F.floor(_uniform(seed, 3) ** 2 * hospitals_per_region)
    y_idx = F.floor(_uniform(seed, 4) * len(years))
    month = _pick([int(m) for m in months], F.floor(_uniform(seed, 5) * len(months)))
    day = F.floor(_uniform(seed, 6) * 28) + 1
    status_u = _uniform(seed, 7)
    outlier = _uniform(seed, 8) < outlier_share
    long_stay = _uniform(seed, 9) < long_stay_share
    tiny = _uniform(seed, 10) < tiny_cost_share
    z_cost, z_los = _normal(seed, 11), _normal(seed, 12)

    rel = _pick(g["relative_cost"].tolist(), g_idx)
    cost = (F.lit(base_cost) * rel * _pick(price, r_idx) * _pick(hospital_level, h_idx) * _pick(infl, y_idx)
            * F.exp(F.lit(cost_sigma) * z_cost - cost_sigma ** 2 / 2)
            * F.when(outlier, F.lit(outlier_factor)).otherwise(F.lit(1.0)))
    cost = F.when(tiny, F.lit(1.0)).otherwise(F.greatest(F.lit(5.0), cost))
    los = F.greatest(F.lit(1), F.round(F.lit(7.0) * F.pow(rel, 0.4) * F.exp(0.4 * z_los - 0.08)).cast("int"))
    los = F.when(long_stay, F.lit(61) + F.floor(_uniform(seed, 13) * 60).cast("int")).otherwise(F.least(los, F.lit(60)))
    status = (F.when(status_u < qy_share, F.lit("QY"))
              .when(status_u < qy_share + ungroupable_share, F.lit("ungroupable")).otherwise(F.lit("grouped")))
    grouped = status == "grouped"
    drg = _pick(g["drg"].tolist(), g_idx)

    year = _pick(list(years), y_idx)
    discharge = F.make_date(year, month, day)
    region = _pick(list(regions), r_idx)
    total = F.round(cost, 2).cast(MONEY)
    fund = F.round(cost * 0.7, 2).cast(MONEY)
    self_pay = F.round(cost * 0.25, 2).cast(MONEY)
    empty_codes = F.array().cast("array<string>")

    out = df.select(
        F.concat(F.lit("S"), F.lpad(F.col("id").cast("string"), 12, "0")).alias("claim_id"),
        F.lit(1).alias("claim_version"),
        region.alias("region"),
        F.date_format(discharge, "yyyy-MM").alias("discharge_month"),
        F.concat(F.lit("H"), region, F.lpad(h_idx.cast("string"), 3, "0")).alias("hospital_id"),
        F.concat(F.lit("P"), F.lpad((F.col("id") * 7919 % 1_000_000_007).cast("string"), 10, "0")).alias("person_id"),
        F.lit(None).cast("string").alias("national_id"),
        F.when(_uniform(seed, 14) < 0.3, F.lit("employee")).otherwise(F.lit("resident")).alias("insurance_scheme"),
        F.when(_uniform(seed, 15) < 0.5, F.lit("1")).otherwise(F.lit("2")).alias("sex"),
        F.lit(None).cast("date").alias("birth_date"),
        (F.floor(_uniform(seed, 16) * 89) + 1).cast("int").alias("age_years"),
        F.lit(None).cast("int").alias("age_days"),
        F.lit(None).cast("int").alias("birth_weight_g"),
        F.date_sub(discharge, los).alias("admission_date"),
        discharge.alias("discharge_date"),
        los.alias("los_days"),
        F.lit("1").alias("discharge_status"),
        F.lit(None).cast("string").alias("dept"),
        F.lit("X00.000").alias("principal_dx"),
        empty_codes.alias("secondary_dxs"),
        empty_codes.alias("procedures"),
        total.alias("total_cost"),
        fund.alias("fund_paid"),
        self_pay.alias("self_pay"),
        (total - fund - self_pay).cast(MONEY).alias("out_of_pocket"),
        F.lit(None).cast(MONEY).alias("drug_cost"),
        F.lit(None).cast(MONEY).alias("consumable_cost"),
        F.lit(None).cast(MONEY).alias("exam_cost"),
        F.lit(scheme_id).alias("scheme_id"),
        F.lit(scheme_model_version).alias("scheme_model_version"),
        _pick(g["mdc"].tolist(), g_idx).alias("mdc"),
        F.when(grouped, _pick(g["adrg"].tolist(), g_idx)).alias("adrg"),
        F.when(grouped, drg).when(status == "ungroupable", F.lit("0000")).alias("drg"),
        status.alias("group_status"),
        (grouped & F.substring(drg, 4, 1).isin("1")).alias("has_mcc"),
        (grouped & F.substring(drg, 4, 1).isin("3")).alias("has_cc"),
        F.lit(None).cast("string").alias("cc_code"),
        F.lit(None).cast("string").alias("invalid_reason"),
        F.lit("synthetic").alias("trace"),
        F.lit(run_id).alias("group_run_id"),
        F.lit(datetime(2025, 1, 1, tzinfo=timezone.utc)).cast("timestamp").alias("grouped_at"),
    )
    return out.select(*table("grouped_claims").columns)
