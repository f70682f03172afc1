"""Relative weights per region: group statistics (Spark), then per-region finishing (pandas per region).

Notation (per region r, group g = scheme + DRG; sums over the group's usable cases i of all data years;
``w_i`` = normalised year weight of the case's year; ``K_g`` = the cases kept by trimming):

- ``cases_raw``            n_g = number of usable cases (grouped, not excluded), before trimming
- ``cases_after_trimming`` number of kept cases |K_g|
- ``cases_weighted``       ñ_g = Σ_i w_i (all usable cases): the year-weighted cases per year, the
                            volume "n" of budget neutrality
- ``kept_weight``          W_g = Σ_{i∈K_g} w_i
- ``mean_cost``            m_g = Σ_{i∈K_g} w_i c_i / W_g (the trimmed mean, year-weighted)
- ``ss_within``            SS_g = Σ_{i∈K_g} w_i (c_i − m_g)²
- ``all_case_mean``        M_r = Σ_g W_g m_g / Σ_g W_g = the year-weighted mean over all kept cases of
                            the region (every group trimmed by its own bounds)
- ``region_weight``        RW_g = m_g / M_r   (so Σ_g W_g RW_g / Σ_g W_g = 1)
- ``cv``                   CV_g = sqrt(SS_g / W_g) / m_g (weighted, population form); null below 2 kept cases
- ``ss_between``           W_g (m_g − M_r)²; RIV_r = 1 − Σ_g SS_g / Σ_g (SS_g + W_g (m_g − M_r)²)
                            = 1 − SS_within / SS_total over the kept cases (the exact decomposition)
- ``province_weight``      RW^P_g: the same computation over the cases of all regions grouped with the
                            group's scheme (trimmed by province-wide bounds per scheme + DRG), relative to
                            the province-wide all-case mean of that scheme's cases. It never depends on
                            which regions a run calibrates.

The trimmed statistics (n, ñ, W, m, SS per group, province-wide and per region) come from one
vectorised numpy pass per ``applyInPandas`` call over a bucket of DRGs
(:func:`casemix.calibrate.trimming.trimmed_statistics`; sums of squares in two passes, so they are exact).

Finishing, per region (:func:`finish_region`, in this order):

1. low volume (n_g < ``low_volume.min_cases``, including groups the region never saw, n_g = 0):
   ``borrow``: RW'_g = RW^P_g; ``shrink``: RW'_g = λ RW_g + (1 − λ) RW^P_g with λ = n_g / (n_g + k)
   (k = ``low_volume.shrinkage_k``; λ = 0 when n_g = 0). Other groups: RW'_g = RW_g.
2. tilts: k_g = ``tilts[drg]``, else ``tilts[adrg]``, else 1; RW''_g = s · k_g · RW'_g with
   s = Σ_g ñ_g RW'_g / Σ_g ñ_g k_g RW'_g, so Σ RW''·ñ = Σ RW'·ñ (budget neutral; s = 1 without tilts).
3. cap (``max_yearly_change`` = c, when the region has promoted weights of an earlier target year):
   RW_g = min(max(RW''_g, (1 − c) P_g), (1 + c) P_g) for groups with a promoted weight P_g; not
   rescaled afterwards (``budget_ratio`` = Σ RW·ñ / Σ RW'·ñ reports the effect).

Means and weights are doubles (ratios of money); decimal money columns are rounded to the fen when the
table rows are built (:func:`weights_table`).
"""
from __future__ import annotations

import math
from datetime import datetime
from typing import Optional, Sequence

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import BooleanType, DoubleType, LongType, StringType, StructField, StructType

from casemix.calibrate.cases import usable_cases
from casemix.calibrate.trimming import trimmed_statistics
from casemix.policy import CalibrationPolicy
from casemix.tables import MONEY, table

__all__ = [
    "group_statistics",
    "trimmed_group_statistics",
    "province_weights",
    "region_weights",
    "finish_region",
    "weights_table",
    "REGION_KEYS",
    "GROUP_KEYS",
    "STATS_SCHEMA",
    "WEIGHTS_SCHEMA",
]

GROUP_KEYS = ("scheme_id", "drg")
REGION_KEYS = ("region", "scheme_id", "drg")

_S, _L, _D, _B = StringType(), LongType(), DoubleType(), BooleanType()

#: one row per region and group: the statistics :func:`finish_region` needs
STATS_SCHEMA = StructType([
    StructField("region", _S), StructField("scheme_id", _S), StructField("drg", _S), StructField("mdc", _S),
    StructField("adrg", _S), StructField("cases_raw", _L), StructField("cases_after_trimming", _L),
    StructField("cases_weighted", _D), StructField("kept_weight", _D), StructField("mean_cost", _D),
    StructField("ss_within", _D), StructField("province_weight", _D), StructField("previous_weight", _D),
])

#: :data:`STATS_SCHEMA` + the finished weights (internal; :func:`weights_table` selects the table's columns)
WEIGHTS_SCHEMA = StructType(STATS_SCHEMA.fields + [
    StructField("all_case_mean", _D), StructField("ss_between", _D), StructField("cv", _D),
    StructField("region_weight", _D), StructField("weight_before_tilt", _D), StructField("tilt_factor", _D),
    StructField("relative_weight", _D), StructField("low_volume", _B), StructField("tilted", _B),
    StructField("capped", _B),
])


#: the trimmed statistics of a group, province-wide (``region`` null) or in one region
_TRIMMED_SCHEMA = StructType([
    StructField("region", _S), StructField("scheme_id", _S), StructField("drg", _S), StructField("mdc", _S),
    StructField("adrg", _S), StructField("cases_raw", _L), StructField("cases_weighted", _D),
    StructField("cases_after_trimming", _L), StructField("kept_weight", _D), StructField("mean_cost", _D),
    StructField("ss_within", _D),
])
#: DRGs are spread over this many ``applyInPandas`` calls (balanced, without one call per DRG)
BUCKETS = 64


def trimmed_group_statistics(usable: DataFrame, trimming, regions: Optional[Sequence[str]] = None,
                             buckets: int = BUCKETS) -> DataFrame:
    """:func:`~casemix.calibrate.trimming.trimmed_statistics` of every scheme + DRG province-wide
    (rows with ``region`` null) and of every region + scheme + DRG for ``regions`` (None: all), in one
    pass: ``applyInPandas`` over a hash bucket of scheme + DRG, so all cases of a DRG meet in one call
    (one shuffle, one transfer to Python for both levels)."""
    names = _TRIMMED_SCHEMA.fieldNames()
    wanted = None if regions is None else set(regions)

    def stats(pdf: pd.DataFrame) -> pd.DataFrame:
        province = trimmed_statistics(pdf, GROUP_KEYS, trimming, carry=("mdc", "adrg"))
        province.insert(0, "region", None)
        own = pdf if wanted is None else pdf[pdf["region"].isin(wanted)]
        if own.empty:
            return province[names]
        region = trimmed_statistics(own, REGION_KEYS, trimming, carry=("mdc", "adrg"))
        return pd.concat([province[names], region[names]], ignore_index=True)

    frame = usable.select(*REGION_KEYS, "mdc", "adrg", "year_weight", "cost") \
        .withColumn("_bucket", F.pmod(F.xxhash64("scheme_id", "drg"), F.lit(buckets)))
    return frame.groupBy("_bucket").applyInPandas(stats, schema=_TRIMMED_SCHEMA)


def province_weights(province_stats: DataFrame) -> DataFrame:
    """RW^P per scheme + DRG from the province-wide trimmed statistics (columns scheme_id, drg, mdc,
    adrg, kept_weight, mean_cost): the group mean over the year-weighted mean of all kept cases of the
    scheme. Columns scheme_id, drg, mdc, adrg, province_weight."""
    scheme = Window.partitionBy("scheme_id")
    all_case = (F.sum(F.col("kept_weight") * F.col("mean_cost")).over(scheme)
                / F.sum("kept_weight").over(scheme))
    return province_stats.select(*GROUP_KEYS, "mdc", "adrg",
                                 (F.col("mean_cost") / all_case).alias("province_weight"))


def group_statistics(cases: DataFrame, spec: CalibrationPolicy, regions: Optional[Sequence[str]] = None,
                     previous: Optional[DataFrame] = None) -> DataFrame:
    """One row per requested region and group (:data:`STATS_SCHEMA`), from :func:`calibration_cases`
    output covering **all** regions (the province-wide weights need them); ``regions`` = the regions
    to calibrate (None: all). Eager: the trimmed statistics (small) are computed and checkpointed when
    this is called; the rest is lazy.

    The rows of a region are every DRG of the schemes its cases use that has a usable case anywhere in
    the province (groups without cases in the region get n = 0 and borrow the province weight).
    ``previous``: promoted weights to cap against (columns region, scheme_id, drg, previous_weight).
    """
    usable = usable_cases(cases)
    # small (one row per region and group) and used three times below: computed once
    trimmed = trimmed_group_statistics(usable, spec.trimming, regions).localCheckpoint(eager=True)
    prov = province_weights(trimmed.filter(F.col("region").isNull()))
    own = trimmed.filter(F.col("region").isNotNull())
    region_schemes = own.select("region", "scheme_id").distinct()
    grid = region_schemes.join(F.broadcast(prov), "scheme_id")
    has_kept = F.col("kept_weight") > 0
    stats = grid.join(own.drop("mdc", "adrg"), list(REGION_KEYS), "left").select(
        "region", "scheme_id", "drg", "mdc", "adrg",
        F.coalesce(F.col("cases_raw"), F.lit(0)).cast("long").alias("cases_raw"),
        F.coalesce(F.col("cases_after_trimming"), F.lit(0)).cast("long").alias("cases_after_trimming"),
        F.coalesce(F.col("cases_weighted"), F.lit(0.0)).alias("cases_weighted"),
        F.coalesce(F.col("kept_weight"), F.lit(0.0)).alias("kept_weight"),
        F.when(has_kept, F.col("mean_cost")).alias("mean_cost"),
        F.when(has_kept, F.col("ss_within")).alias("ss_within"), "province_weight")
    if previous is not None:
        prev = previous.select(*REGION_KEYS, F.col("previous_weight").cast("double"))
        stats = stats.join(prev, list(REGION_KEYS), "left")
    else:
        stats = stats.withColumn("previous_weight", F.lit(None).cast("double"))
    return stats.select(*STATS_SCHEMA.fieldNames())


def _tilt(drg: pd.Series, adrg: pd.Series, tilts: dict[str, float]) -> np.ndarray:
    by_drg = drg.map(tilts)
    by_adrg = adrg.map(tilts)
    return by_drg.fillna(by_adrg).fillna(1.0).to_numpy(dtype=float)


def finish_region(stats: pd.DataFrame, spec: CalibrationPolicy) -> pd.DataFrame:
    """The weights of one region from its :data:`STATS_SCHEMA` rows (pandas, no Spark): all-case mean,
    RW, CV, low volume, tilts with budget-neutral rescaling, cap (module docstring). Rows are sorted
    by scheme and DRG first, so the sums do not depend on the input order."""
    df = stats.sort_values(["scheme_id", "drg"], kind="stable").reset_index(drop=True).copy()
    kept_w = df["kept_weight"].to_numpy(dtype=float)
    mean = df["mean_cost"].to_numpy(dtype=float, na_value=np.nan)
    has = (kept_w > 0) & ~np.isnan(mean)
    total_w = kept_w[has].sum()
    all_case = float((kept_w[has] * mean[has]).sum() / total_w) if total_w > 0 else math.nan
    df["all_case_mean"] = all_case
    region_weight = np.where(has, mean / all_case, np.nan)
    ss = df["ss_within"].to_numpy(dtype=float, na_value=np.nan)
    df["ss_between"] = np.where(has, kept_w * (mean - all_case) ** 2, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        cv = np.sqrt(ss / kept_w) / mean
    df["cv"] = np.where(has & (df["cases_after_trimming"].to_numpy() >= 2), cv, np.nan)
    df["region_weight"] = region_weight

    n = df["cases_raw"].to_numpy(dtype=float)
    province = df["province_weight"].to_numpy(dtype=float)
    low = n < spec.low_volume.min_cases
    if spec.low_volume.method == "borrow":
        adjusted = np.where(low, province, region_weight)
    else:
        lam = n / (n + spec.low_volume.shrinkage_k)
        shrunk = lam * np.nan_to_num(region_weight) + (1.0 - lam) * province
        adjusted = np.where(low, shrunk, region_weight)
    df["low_volume"] = low
    df["weight_before_tilt"] = adjusted

    volume = df["cases_weighted"].to_numpy(dtype=float)
    k = _tilt(df["drg"], df["adrg"], dict(spec.tilts)) if spec.tilts else np.ones(len(df))
    tilted = k != 1.0
    if tilted.any():
        raw_total = float((volume * adjusted).sum())
        tilted_total = float((volume * k * adjusted).sum())
        scale = raw_total / tilted_total if tilted_total > 0 else 1.0
        after_tilt = scale * k * adjusted
    else:
        after_tilt = adjusted
    df["tilt_factor"] = k
    df["tilted"] = tilted

    previous = df["previous_weight"].to_numpy(dtype=float, na_value=np.nan)
    final = after_tilt
    if spec.max_yearly_change is not None:
        c = spec.max_yearly_change
        has_prev = ~np.isnan(previous)
        clipped = np.clip(after_tilt, (1 - c) * np.nan_to_num(previous), (1 + c) * np.nan_to_num(previous))
        final = np.where(has_prev, clipped, after_tilt)
    df["capped"] = final != after_tilt
    df["relative_weight"] = final
    return df[WEIGHTS_SCHEMA.fieldNames()]


def region_weights(stats: DataFrame, spec: CalibrationPolicy) -> DataFrame:
    """:func:`finish_region` applied to every region in parallel (``applyInPandas`` grouped by region):
    :data:`WEIGHTS_SCHEMA` rows."""

    def finish(pdf: pd.DataFrame) -> pd.DataFrame:
        return finish_region(pdf, spec)

    return stats.groupBy("region").applyInPandas(finish, schema=WEIGHTS_SCHEMA)


def _money(col: Column) -> Column:
    """Yuan rounded half-up to the fen, as the catalogue's decimal money type."""
    return F.round(col, 2).cast(MONEY)


def weights_table(weights: DataFrame, *, run_id: str, target_year: int, calibrated_at: datetime) -> DataFrame:
    """The ``relative_weights`` rows of a run from :func:`region_weights` output."""
    out = weights.select(
        F.lit(run_id).alias("calibration_run_id"), "region", F.lit(int(target_year)).cast("int").alias("target_year"),
        "scheme_id", "mdc", "adrg", "drg", "cases_raw", "cases_after_trimming", "cases_weighted",
        _money(F.col("mean_cost")).alias("trimmed_mean_cost"), "cv", "region_weight", "province_weight",
        "tilt_factor", "previous_weight", "relative_weight",
        (F.col("relative_weight") * 100.0).alias("base_points"),
        _money(F.col("relative_weight") * F.col("all_case_mean")).alias("standard_cost"),
        _money(F.col("all_case_mean")).alias("all_case_mean_cost"),
        "low_volume", "tilted", "capped",
        F.lit(calibrated_at).cast("timestamp").alias("calibrated_at"),
    )
    return out.select(*table("relative_weights").columns)
