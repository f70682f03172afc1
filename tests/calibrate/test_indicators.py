"""Hospital CMI, cost- and time-consumption indices, and the error against true costs, by hand."""
from __future__ import annotations

import pytest

from casemix.calibrate import calibration_cases, hospital_indicators, true_cost_errors
from tests.calibrate.conftest import AT, by_key, claims, spec

# One region, 2024. RW_A = 0.5, RW_B = 2.0 (given).
#   H1: A 100 (LOS 2), A 300 (LOS 4), B 1000 (LOS 10)      + an excluded and a QY case, not counted
#   H2: A 200 (LOS 3), B 2000 (LOS 20), B 3000 (LOS 30)
# region means 2024: cost A 200, B 2000; LOS A 3, B 20
#   H1: CMI = (2*.5 + 2)/3 = 1; cost index = (2*(200/200) + 1*(1000/2000))/3 = 2.5/3; time = (2*1 + 10/20)/3
#   H2: CMI = (.5 + 2*2)/3 = 1.5; cost index = (1 + 2*(2500/2000))/3 = 3.5/3; time = (1 + 2*(25/20))/3
# 2023: H1 has one A case alone -> every ratio 1, CMI 0.5
ROWS = [
    ("R1", "H1", "2024-02", 2, 100, "AA11"), ("R1", "H1", "2024-02", 4, 300, "AA11"),
    ("R1", "H1", "2024-03", 10, 1000, "BB11"), ("R1", "H1", "2024-03", 70, 9000, "BB11"),
    ("R1", "H1", "2024-03", 5, 800, "BB11", "QY"),
    ("R1", "H2", "2024-04", 3, 200, "AA11"), ("R1", "H2", "2024-04", 20, 2000, "BB11"),
    ("R1", "H2", "2024-05", 30, 3000, "BB11"),
    ("R1", "H1", "2023-05", 7, 640, "AA11"),
]


def test_cmi_and_consumption_indices_per_hospital_and_year(spark):
    cases = calibration_cases(claims(spark, ROWS), spec(inflation={2022: 1.0, 2023: 1.1, 2024: 1.0}), 2025)
    weights = spark.createDataFrame([("R1", "chs-drg-1.1", "AA11", 0.5), ("R1", "chs-drg-1.1", "BB11", 2.0)],
                                    "region string, scheme_id string, drg string, relative_weight double")
    out = by_key(hospital_indicators(cases, weights, run_id="r", target_year=2025, calibrated_at=AT),
                 "hospital_id", "data_year")
    h1, h2 = out["H1", 2024], out["H2", 2024]
    assert (h1["cases"], h1["total_weight"], h1["cmi"]) == (3, 3.0, 1.0)
    assert h1["cost_index"] == pytest.approx(2.5 / 3, rel=1e-12)
    assert h1["time_index"] == pytest.approx(2.5 / 3, rel=1e-12)
    assert (h2["cases"], h2["cmi"]) == (3, 1.5)
    assert h2["cost_index"] == pytest.approx(3.5 / 3, rel=1e-12)
    assert h2["time_index"] == pytest.approx(3.5 / 3, rel=1e-12)
    assert (out["H1", 2023]["cmi"], out["H1", 2023]["cost_index"], out["H1", 2023]["time_index"]) == (0.5, 1.0, 1.0)
    assert set(out) == {("H1", 2024), ("H2", 2024), ("H1", 2023)}
    # the region's case-weighted mean index is 1
    assert (3 * h1["cost_index"] + 3 * h2["cost_index"]) / 6 == pytest.approx(1.0, rel=1e-12)


def test_error_against_true_costs_rescales_both_to_the_same_case_weighted_mean(spark):
    # X: RW 1, n 100; Y: RW 2, n 100; Z: n 10 (< 30, left out). Truth X 1.0, Y 2.2.
    # mean RW = 1.5 -> a = 2/3, 4/3; mean T = 1.6 -> b = 0.625, 1.375
    # e_X = (2/3 - .625)/.625 = 1/15, e_Y = (1.375 - 4/3)/1.375 = 1/33; median = mean of the two (equal n)
    weights = spark.createDataFrame(
        [("R1", "s", "X", 100, 1.0), ("R1", "s", "Y", 100, 2.0), ("R1", "s", "Z", 10, 9.0)],
        "region string, scheme_id string, drg string, cases_raw long, region_weight double")
    truth = spark.createDataFrame([("s", "X", 1.0), ("s", "Y", 2.2), ("s", "Z", 1.0)],
                                  "scheme_id string, drg string, true_relative_cost double")
    row = true_cost_errors(weights, truth, 30).collect()[0]
    assert row["true_cost_groups"] == 2
    assert row["true_cost_median_abs_error"] == pytest.approx((1 / 15 + 1 / 33) / 2, rel=1e-12)
    assert row["true_cost_weighted_abs_error"] == pytest.approx((1 / 15 + 1 / 33) / 2, rel=1e-12)
