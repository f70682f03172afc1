"""Trimming (修剪) of extreme costs per group before averaging, and the trimmed group statistics.

Bounds are computed per group (region + scheme + DRG, or scheme + DRG province-wide) from the costs
``c`` of the group's usable cases over all data years, each case counted once (year weights do not
enter the bounds: a case is an outlier or not whatever its year's weight). A case is kept when
``lower ≤ c ≤ upper``:

- ``iqr``: ``lower = Q1 − k·(Q3 − Q1)``, ``upper = Q3 + k·(Q3 − Q1)``, quartiles by linear interpolation
  between order statistics (numpy's default ``method="linear"``: position (n − 1)·p), k = ``iqr_k``;
- ``percentile``: ``lower = P(lower_percentile)``, ``upper = P(upper_percentile)`` with the inverted-CDF
  percentile (numpy ``method="inverted_cdf"``, SQL ``percentile_disc``): the order statistic of rank
  ceil(n·p), the smallest cost whose cumulative share is ≥ p. It is always a cost of the group, so a
  group of fewer than 1/p cases loses nothing (P1..P99 trims only groups of 100+ cases), unlike
  interpolated percentiles that would cut the minimum and maximum of every small group;
- ``log_sd``: ``lower, upper = exp(m ∓ k·s)`` with ``m``, ``s`` the mean and sample standard deviation
  (n − 1) of ``ln c``, k = ``log_sd_k``; a group of one case keeps it (costs are > 0: the spec refuses
  log_sd with ``exclusions.min_cost`` ≤ 0);
- ``none``: every case is kept.

Comparisons allow a relative slack of 1e-9 (a cost equal to a bound up to floating-point rounding is
kept); a group whose bounds would remove every case (only possible with log_sd and k < 1) keeps all.

The computation is vectorised numpy over many groups at once (:func:`trimmed_statistics`): one sort by
(group, cost), order statistics by index, sums by ``np.add.reduceat``. Spark runs it per region (and
per bucket of DRGs) with ``applyInPandas`` (:mod:`casemix.calibrate.weights`); :func:`trimming_bounds`
and :func:`mark_kept` expose the same bounds as DataFrames.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, StructField, StructType

from casemix.policy import TrimmingPolicy

__all__ = ["group_bounds", "trimmed_statistics", "trimming_bounds", "within_bounds", "mark_kept", "SLACK",
           "STATISTICS_COLUMNS"]

SLACK = 1e-9
_RANK_EPS = 1e-9

#: per group, after the key columns (see :func:`trimmed_statistics`)
STATISTICS_COLUMNS = ("cases_raw", "cases_weighted", "cases_after_trimming", "kept_weight", "mean_cost",
                      "ss_within", "lower", "upper", "centre")


def _at(sorted_cost: np.ndarray, starts: np.ndarray, index: np.ndarray) -> np.ndarray:
    return sorted_cost[starts + index]


def _linear(sorted_cost, starts, n, p):
    h = (n - 1) * p
    j = np.floor(h).astype(np.int64)
    frac = h - j
    lo = _at(sorted_cost, starts, j)
    hi = _at(sorted_cost, starts, np.minimum(j + 1, n - 1))
    return lo + frac * (hi - lo)


def _inverted_cdf(sorted_cost, starts, n, p):
    rank = np.maximum(1, np.ceil(n * p - _RANK_EPS).astype(np.int64))
    return _at(sorted_cost, starts, np.minimum(rank, n) - 1)


def group_bounds(sorted_cost: np.ndarray, starts: np.ndarray, n: np.ndarray,
                 trimming: TrimmingPolicy) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lower, upper, centre) per group of costs sorted by (group, cost); group g is
    ``sorted_cost[starts[g]: starts[g] + n[g]]``. Unbounded sides are ±inf; ``centre`` is the median
    (iqr, percentile, none) or exp(mean ln cost) (log_sd)."""
    method = trimming.method
    if method == "iqr":
        q1, q2, q3 = (_linear(sorted_cost, starts, n, p) for p in (0.25, 0.5, 0.75))
        k = trimming.iqr_k
        return q1 - k * (q3 - q1), q3 + k * (q3 - q1), q2
    if method == "percentile":
        return (_inverted_cdf(sorted_cost, starts, n, trimming.lower_percentile),
                _inverted_cdf(sorted_cost, starts, n, trimming.upper_percentile),
                _inverted_cdf(sorted_cost, starts, n, 0.5))
    if method == "log_sd":
        ln = np.log(sorted_cost)
        mean = np.add.reduceat(ln, starts) / n
        dev = ln - np.repeat(mean, n)
        var = np.add.reduceat(dev * dev, starts) / np.maximum(n - 1, 1)
        s = np.where(n > 1, np.sqrt(var), 0.0)
        k = trimming.log_sd_k
        return np.exp(mean - k * s), np.exp(mean + k * s), np.exp(mean)
    if method == "none":
        return np.full(len(n), -np.inf), np.full(len(n), np.inf), _linear(sorted_cost, starts, n, 0.5)
    raise ValueError(f"unknown trimming method {method!r}")  # pragma: no cover - the policy admits no other


def _within(cost: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        lo = np.where(np.isinf(lower), lower, lower - np.abs(lower) * SLACK)
        hi = np.where(np.isinf(upper), upper, upper + np.abs(upper) * SLACK)
    return (cost >= lo) & (cost <= hi)


def trimmed_statistics(frame: pd.DataFrame, keys: Sequence[str], trimming: TrimmingPolicy,
                       carry: Sequence[str] = ()) -> pd.DataFrame:
    """Per group of ``keys`` in ``frame`` (columns ``cost``, ``year_weight``, the keys and ``carry``):

    ``cases_raw`` n, ``cases_weighted`` Σ w, ``cases_after_trimming``, ``kept_weight`` W = Σ_kept w,
    ``mean_cost`` m = Σ_kept w c / W, ``ss_within`` Σ_kept w (c − m)² (two passes: exact),
    ``lower``/``upper``/``centre`` (the bounds; ±inf as null), and the first value of each ``carry``
    column. Groups come out sorted by their keys."""
    keys = list(keys)
    out_cols = [*keys, *carry, *STATISTICS_COLUMNS]
    if frame.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in out_cols})
    codes = frame.groupby(keys, sort=True, dropna=False).ngroup().to_numpy()
    cost = frame["cost"].to_numpy(dtype=float)
    weight = frame["year_weight"].to_numpy(dtype=float)
    order = np.lexsort((cost, codes))
    codes_s, cost_s, weight_s = codes[order], cost[order], weight[order]
    starts = np.flatnonzero(np.r_[True, codes_s[1:] != codes_s[:-1]])
    n = np.diff(np.r_[starts, len(codes_s)])

    lower, upper, centre = group_bounds(cost_s, starts, n, trimming)
    kept = _within(cost_s, np.repeat(lower, n), np.repeat(upper, n))
    none_kept = np.add.reduceat(kept.astype(np.int64), starts) == 0
    if none_kept.any():  # keep every case of a group its bounds would empty
        kept |= np.repeat(none_kept, n)
    w_kept = np.where(kept, weight_s, 0.0)
    kept_weight = np.add.reduceat(w_kept, starts)
    mean = np.add.reduceat(w_kept * cost_s, starts) / kept_weight
    dev = cost_s - np.repeat(mean, n)
    ss = np.add.reduceat(w_kept * dev * dev, starts)

    first = frame.iloc[order[starts]]
    out = pd.DataFrame({c: first[c].to_numpy() for c in [*keys, *carry]})
    out["cases_raw"] = n.astype(np.int64)
    out["cases_weighted"] = np.add.reduceat(weight_s, starts)
    out["cases_after_trimming"] = np.add.reduceat(kept.astype(np.int64), starts)
    out["kept_weight"] = kept_weight
    out["mean_cost"] = mean
    out["ss_within"] = ss
    out["lower"] = np.where(np.isinf(lower), np.nan, lower)
    out["upper"] = np.where(np.isinf(upper), np.nan, upper)
    out["centre"] = centre
    return out[out_cols]


def trimming_bounds(cases: DataFrame, trimming: TrimmingPolicy, keys: Sequence[str], *,
                    prefix: str = "") -> DataFrame:
    """Per group of ``keys``: ``<prefix>lower``, ``<prefix>upper`` (null = unbounded) and ``<prefix>centre``
    of the ``cost`` column (weights play no part in bounds), computed by :func:`trimmed_statistics`
    in ``applyInPandas`` per group."""
    keys = list(keys)
    key_fields = [cases.schema[k] for k in keys]
    schema = StructType([*key_fields, *[StructField(prefix + c, DoubleType()) for c in ("lower", "upper", "centre")]])

    def bounds(pdf: pd.DataFrame) -> pd.DataFrame:
        stats = trimmed_statistics(pdf.assign(year_weight=1.0), keys, trimming)
        return stats[[*keys, "lower", "upper", "centre"]].rename(
            columns={c: prefix + c for c in ("lower", "upper", "centre")})

    return cases.select(*keys, "cost").groupBy(*keys).applyInPandas(bounds, schema=schema)


def within_bounds(cost: Column, lower: Column, upper: Column) -> Column:
    """True when ``lower ≤ cost ≤ upper`` up to a relative slack of 1e-9; a null bound is no bound."""
    lo_ok = lower.isNull() | (cost >= lower - F.abs(lower) * SLACK)
    hi_ok = upper.isNull() | (cost <= upper + F.abs(upper) * SLACK)
    return lo_ok & hi_ok


def mark_kept(cases: DataFrame, bounds: DataFrame, keys: Sequence[str], *, prefix: str = "",
              column: str = "kept") -> DataFrame:
    """``cases`` with a boolean ``column``: the case lies within its group's bounds (null when its group
    has no bounds row). ``bounds`` is small (one row per group) and is broadcast. (A group whose bounds
    keep nothing, see the module docstring, is not special-cased here.)"""
    joined = cases.join(F.broadcast(bounds), list(keys), "left")
    kept = F.when(F.col(prefix + "centre").isNull(), F.lit(None).cast("boolean")).otherwise(
        within_bounds(F.col("cost"), F.col(prefix + "lower"), F.col(prefix + "upper")))
    return joined.withColumn(column, kept)
