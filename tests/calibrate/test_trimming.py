"""Trimming bounds per group, worked out by hand (quartiles: linear interpolation; percentiles: inverted CDF)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from casemix.calibrate import mark_kept, trimming_bounds
from casemix.policy import TrimmingPolicy


def costs(spark, groups: dict[str, list[float]]):
    return spark.createDataFrame([(g, float(c)) for g, values in groups.items() for c in values],
                                 "drg string, cost double")


def kept(spark, groups, trimming):
    df = costs(spark, groups)
    marked = mark_kept(df, trimming_bounds(df, trimming, ["drg"]), ["drg"])
    out: dict[str, list[float]] = {}
    for r in marked.filter("kept").collect():
        out.setdefault(r["drg"], []).append(r["cost"])
    return {g: sorted(v) for g, v in out.items()}, {r["drg"]: r for r in trimming_bounds(df, trimming, ["drg"]).collect()}


def test_iqr_keeps_q1_minus_1_5_iqr_to_q3_plus_1_5_iqr(spark):
    # A: n = 5, h = (n-1)p -> Q1 = x[1] = 200, Q3 = x[3] = 400, IQR = 200 -> [-100, 700]: 5000 goes
    # B: n = 2 -> Q1 = 10 + 0.25*10 = 12.5, Q3 = 17.5, IQR = 5 -> [5, 25]: both stay
    # C: n = 4, [10, 10, 10, 1000] -> Q1 = 10, Q3 = x[2] + 0.25*(x[3]-x[2]) = 257.5, IQR = 247.5
    #    -> upper 257.5 + 371.25 = 628.75: 1000 goes
    groups = {"A": [100, 200, 300, 400, 5000], "B": [10, 20], "C": [10, 10, 10, 1000]}
    result, bounds = kept(spark, groups, TrimmingPolicy(method="iqr"))
    assert result == {"A": [100, 200, 300, 400], "B": [10, 20], "C": [10, 10, 10]}
    assert (bounds["A"]["lower"], bounds["A"]["upper"], bounds["A"]["centre"]) == (-100.0, 700.0, 300.0)
    assert (bounds["B"]["lower"], bounds["B"]["upper"]) == (5.0, 25.0)
    assert bounds["C"]["upper"] == 628.75
    # the same quartiles as numpy's default (linear) method
    assert np.quantile([10, 10, 10, 1000], [0.25, 0.75]).tolist() == [10.0, 257.5]


def test_iqr_factor_comes_from_the_spec(spark):
    # A with k = 0.5: [200 - 100, 400 + 100] = [100, 500]: 5000 goes, 100 stays (bounds are inclusive)
    result, _ = kept(spark, {"A": [100, 200, 300, 400, 5000]}, TrimmingPolicy(method="iqr", iqr_k=0.5))
    assert result == {"A": [100, 200, 300, 400]}
    # k = 0.25: [150, 450]: 100 goes too
    result, _ = kept(spark, {"A": [100, 200, 300, 400, 5000]}, TrimmingPolicy(method="iqr", iqr_k=0.25))
    assert result == {"A": [200, 300, 400]}


def test_percentile_bounds_are_values_of_the_group(spark):
    # 1..10 with P20..P80: lower = smallest x with F(x) >= 0.2 = x[ceil(10*0.2)] = 2,
    # upper = x[ceil(10*0.8)] = 8 -> keep 2..8
    result, bounds = kept(spark, {"A": list(range(1, 11))},
                          TrimmingPolicy(method="percentile", lower_percentile=0.2, upper_percentile=0.8))
    assert result == {"A": [2, 3, 4, 5, 6, 7, 8]}
    assert (bounds["A"]["lower"], bounds["A"]["upper"]) == (2.0, 8.0)
    assert np.quantile(np.arange(1, 11), [0.2, 0.8], method="inverted_cdf").tolist() == [2, 8]


def test_percentile_p1_p99_trims_nothing_below_100_cases_and_the_tails_above(spark):
    # 50 cases: P1 = x[ceil(0.5)] = x[1] = min, P99 = x[ceil(49.5)] = x[50] = max -> nothing trimmed
    # 1000 cases 1..1000: P1 = x[10] = 10 -> 1..9 go; P99 = x[990] = 990 -> 991..1000 go: 981 stay
    result, _ = kept(spark, {"S": list(range(1, 51)), "L": list(range(1, 1001))}, TrimmingPolicy(method="percentile"))
    assert result["S"] == list(range(1, 51))
    assert result["L"] == list(range(10, 991))


def test_log_sd_keeps_ln_cost_within_k_sample_sd_of_its_mean(spark):
    # ln cost = 0, 1, 2: mean 1, sample SD 1. k = 0.5 keeps only e; k = 1 keeps all three (a cost on a
    # bound stays, up to the 1e-9 slack)
    values = [1.0, math.e, math.e ** 2]
    result, bounds = kept(spark, {"A": values}, TrimmingPolicy(method="log_sd", log_sd_k=0.5))
    assert result == {"A": [math.e]}
    assert bounds["A"]["lower"] == pytest.approx(math.exp(0.5), rel=1e-12)
    assert bounds["A"]["upper"] == pytest.approx(math.exp(1.5), rel=1e-12)
    result, _ = kept(spark, {"A": values, "one": [123.45]}, TrimmingPolicy(method="log_sd", log_sd_k=1.0))
    assert result == {"A": values, "one": [123.45]}


def test_method_none_keeps_every_case(spark):
    result, bounds = kept(spark, {"A": [1, 2, 1e9]}, TrimmingPolicy(method="none"))
    assert result == {"A": [1, 2, 1e9]}
    assert bounds["A"]["lower"] is None and bounds["A"]["upper"] is None
