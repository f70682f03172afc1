"""Relative weights, CV, RIV, low volume, tilts and cap on hand-built groups (numbers worked out in comments)."""
from __future__ import annotations

import math

import pytest

from casemix.calibrate import calibrate, calibration_cases, group_statistics, region_weights
from casemix.calibrate.errors import CalibrationSpecError
from tests.calibrate.conftest import AT, by_key, claims, spec


def weights_of(spark, rows, s, regions=None, previous=None):
    cases = calibration_cases(claims(spark, rows), s, 2025)
    return by_key(region_weights(group_statistics(cases, s, regions, previous), s), "region", "drg")


# Target 2025: data years 2022, 2023, 2024 with weights 2:3:5 -> w = 0.2, 0.3, 0.5;
# inflation 2022 x1.5, 2023 x1.2, 2024 x1.0.
# A: 1000 (2022 -> 1500, w .2), 2000 and 4000 (2024, w .5)
#    W_A = 1.2, Σwc = 300 + 1000 + 2000 = 3300, m_A = 2750
# B: 500 (2023 -> 600, w .3), 1000 (2024, w .5)
#    W_B = 0.8, Σwc = 180 + 500 = 680, m_B = 850
# M = (3300 + 680) / 2.0 = 1990 -> RW_A = 2750/1990, RW_B = 850/1990
# SS_A = .2*1250² + .5*750² + .5*1250² = 1,375,000; SS_B = .3*250² + .5*150² = 30,000
# CV_A = sqrt(1,375,000/1.2)/2750, CV_B = sqrt(30,000/.8)/850
# SS_between = 1.2*760² + .8*1140² = 693,120 + 1,039,680 = 1,732,800; SS_total = 3,137,800 (checked case by case)
# RIV = 1 - 1,405,000/3,137,800
# Not used: LOS 61 (excluded), cost 4.99 (excluded), a QY case, 2021 and 2025 cases (outside the data years).
HAND_ROWS = [
    ("R1", "H1", "2022-03", 5, 1000, "AB11"),
    ("R1", "H1", "2024-05", 5, 2000, "AB11"),
    ("R1", "H2", "2024-07", 60, 4000, "AB11"),       # LOS 60 is kept (exclusion is LOS > 60)
    ("R1", "H1", "2023-01", 3, 500, "BC13"),
    ("R1", "H2", "2024-02", 3, 1000, "BC13"),
    ("R1", "H2", "2024-03", 61, 3000, "AB11"),       # excluded: LOS > 60
    ("R1", "H2", "2024-03", 2, 4.99, "AB11"),        # excluded: cost < 5
    ("R1", "H2", "2024-04", 2, 777, "AB11", "QY"),   # not grouped
    ("R1", "H1", "2021-12", 2, 99999, "AB11"),       # before the data years
    ("R1", "H1", "2025-01", 2, 99999, "AB11"),       # the target year itself
]
EXACT = dict(**{"trimming.method": "none", "low_volume.min_cases": 0,
                "inflation": {2022: 1.5, 2023: 1.2, 2024: 1.0}})


def test_relative_weight_is_year_weighted_trimmed_group_mean_over_all_case_mean(spark):
    w = weights_of(spark, HAND_ROWS, spec(**EXACT))
    a, b = w["R1", "AB11"], w["R1", "BC13"]
    assert a["all_case_mean"] == pytest.approx(1990.0, rel=1e-12)
    assert a["mean_cost"] == pytest.approx(2750.0, rel=1e-12)
    assert b["mean_cost"] == pytest.approx(850.0, rel=1e-12)
    assert a["relative_weight"] == pytest.approx(2750 / 1990, rel=1e-12)
    assert b["relative_weight"] == pytest.approx(850 / 1990, rel=1e-12)
    assert (a["cases_raw"], a["cases_after_trimming"], b["cases_raw"]) == (3, 3, 2)
    assert a["cases_weighted"] == pytest.approx(1.2, rel=1e-12)
    assert a["cv"] == pytest.approx(math.sqrt(1_375_000 / 1.2) / 2750, rel=1e-12)
    assert b["cv"] == pytest.approx(math.sqrt(30_000 / 0.8) / 850, rel=1e-12)
    riv = 1 - (a["ss_within"] + b["ss_within"]) / (a["ss_within"] + b["ss_within"] + a["ss_between"] + b["ss_between"])
    assert riv == pytest.approx(1 - 1_405_000 / 3_137_800, rel=1e-12)


def test_quality_reports_riv_grouping_rate_and_counts(spark):
    s = spec(**EXACT)
    cases = calibration_cases(claims(spark, HAND_ROWS), s, 2025)
    result = calibrate(cases, s, 2025, run_id="run-1", calibrated_at=AT)
    q = result.quality.collect()[0].asDict()
    # 8 records in 2022-2024: 5 usable, 2 excluded, 1 QY -> 入组率 = 5 / (8 - 2)
    assert (q["cases_all"], q["cases_excluded"], q["cases_grouped"]) == (8, 2, 5)
    assert q["grouping_rate"] == pytest.approx(5 / 6, rel=1e-12)
    assert q["riv"] == pytest.approx(1 - 1_405_000 / 3_137_800, rel=1e-12)
    assert (q["trimmed_share"], q["groups"], q["low_volume_groups"], q["cv_ge_1_share"]) == (0.0, 2, 0, 0.0)
    assert str(q["all_case_mean_cost"]) == "1990.00"
    table = by_key(result.relative_weights, "drg")
    assert str(table["AB11"]["trimmed_mean_cost"]) == "2750.00"
    assert table["AB11"]["base_points"] == pytest.approx(100 * 2750 / 1990, rel=1e-12)
    assert str(table["BC13"]["standard_cost"]) == "850.00"
    assert table["AB11"]["calibration_run_id"] == "run-1" and table["AB11"]["target_year"] == 2025


def test_trimming_happens_per_group_before_averaging(spark):
    # one year (2024, w = .5 each). A: 100, 200, 300, 400, 5000 -> IQR drops 5000: m_A = 250;
    # B: 10, 20 -> kept: m_B = 15. M = (4*250 + 2*15)/6 = 1030/6 -> RW_A = 250*6/1030
    rows = [("R1", "H1", "2024-01", 2, c, "AA11") for c in (100, 200, 300, 400, 5000)] + \
           [("R1", "H1", "2024-01", 2, c, "BB11") for c in (10, 20)]
    s = spec(**{"low_volume.min_cases": 0})
    w = weights_of(spark, rows, s)
    assert (w["R1", "AA11"]["cases_raw"], w["R1", "AA11"]["cases_after_trimming"]) == (5, 4)
    assert w["R1", "AA11"]["relative_weight"] == pytest.approx(250 * 6 / 1030, rel=1e-12)
    assert w["R1", "BB11"]["relative_weight"] == pytest.approx(15 * 6 / 1030, rel=1e-12)
    q = calibrate(calibration_cases(claims(spark, rows), s, 2025), s, 2025, run_id="r", calibrated_at=AT).quality
    assert q.collect()[0]["trimmed_share"] == pytest.approx(1 / 7, rel=1e-12)


def test_cv_of_one_or_more_is_counted(spark):
    # 10, 10, 10, 1000 untrimmed: mean 257.5, population SD sqrt(183,768.75) -> CV 1.665 ≥ 1; B: CV 0
    rows = [("R1", "H1", "2024-01", 2, c, "AA11") for c in (10, 10, 10, 1000)] + \
           [("R1", "H1", "2024-01", 2, 50, "BB11")] * 2
    s = spec(**{"trimming.method": "none", "low_volume.min_cases": 0})
    w = weights_of(spark, rows, s)
    assert w["R1", "AA11"]["cv"] == pytest.approx(math.sqrt(183_768.75) / 257.5, rel=1e-12)
    q = calibrate(calibration_cases(claims(spark, rows), s, 2025), s, 2025, run_id="r", calibrated_at=AT).quality
    assert q.collect()[0]["cv_ge_1_share"] == 0.5


# Two regions, one scheme, all cases in 2024 (w = .5, cancels), no trimming:
# R1: A 6 x 1000, B 2 x 3000;  R2: A 4 x 2000, B 4 x 5000, C 1 x 2500
# province: m_A = 14000/10 = 1400, m_B = 26000/6, m_C = 2500, M = 42500/17 = 2500
#   -> RW^P_A = 0.56, RW^P_B = 26/15, RW^P_C = 1
# R1 own: M = 12000/8 = 1500 -> RW_A = 2/3, RW_B = 2; R1 has no C case: n = 0 row borrowing 1.0
PROVINCE_ROWS = ([("R1", "H1", "2024-06", 3, 1000, "AA11")] * 6 + [("R1", "H1", "2024-06", 3, 3000, "BB11")] * 2
                 + [("R2", "H9", "2024-06", 3, 2000, "AA11")] * 4 + [("R2", "H9", "2024-06", 3, 5000, "BB11")] * 4
                 + [("R2", "H9", "2024-06", 3, 2500, "CC11")])


def test_low_volume_groups_borrow_the_province_wide_weight(spark):
    w = weights_of(spark, PROVINCE_ROWS, spec(**{"trimming.method": "none"}))
    a, b, c = w["R1", "AA11"], w["R1", "BB11"], w["R1", "CC11"]
    assert (a["low_volume"], b["low_volume"], c["low_volume"]) == (False, True, True)
    assert a["relative_weight"] == pytest.approx(2 / 3, rel=1e-12)
    assert b["region_weight"] == pytest.approx(2.0, rel=1e-12)
    assert b["province_weight"] == pytest.approx(26 / 15, rel=1e-12)
    assert b["relative_weight"] == pytest.approx(26 / 15, rel=1e-12)
    assert (c["cases_raw"], c["region_weight"], c["relative_weight"]) == (0, None, pytest.approx(1.0, rel=1e-12))
    # R2: every group has < 5 cases -> all borrowed
    assert w["R2", "AA11"]["relative_weight"] == pytest.approx(0.56, rel=1e-12)


def test_shrinkage_moves_low_volume_weights_toward_the_province_by_n_over_n_plus_k(spark):
    # B in R1: n = 2, k = 5 -> λ = 2/7: 2/7 * 2 + 5/7 * 26/15 = 38/21; C: n = 0 -> λ = 0 -> 1.0
    w = weights_of(spark, PROVINCE_ROWS, spec(**{"trimming.method": "none", "low_volume.method": "shrink"}))
    assert w["R1", "BB11"]["relative_weight"] == pytest.approx(38 / 21, rel=1e-12)
    assert w["R1", "CC11"]["relative_weight"] == pytest.approx(1.0, rel=1e-12)
    assert w["R1", "AA11"]["relative_weight"] == pytest.approx(2 / 3, rel=1e-12)


def test_province_weights_do_not_depend_on_the_regions_calibrated(spark):
    s = spec(**{"trimming.method": "none"})
    alone = weights_of(spark, PROVINCE_ROWS, s, regions=["R1"])
    together = weights_of(spark, PROVINCE_ROWS, s)
    assert set(alone) == {k for k in together if k[0] == "R1"}
    for key, row in alone.items():
        for col in ("relative_weight", "province_weight", "cases_raw", "low_volume"):
            assert row[col] == pytest.approx(together[key][col], rel=1e-12), (key, col)


def test_tilts_are_rescaled_so_the_budget_is_unchanged(spark):
    # R1 with A tilted x1.2: ñ_A = 6*.5 = 3, ñ_B = 1, ñ_C = 0; RW' = 2/3, 26/15, 1
    # Σ ñ RW' = 56/15; tilted Σ = 3*0.8 + 26/15 = 62/15 -> s = 28/31
    w = weights_of(spark, PROVINCE_ROWS, spec(**{"trimming.method": "none", "tilts": {"AA11": 1.2}}))
    a, b, c = w["R1", "AA11"], w["R1", "BB11"], w["R1", "CC11"]
    assert a["relative_weight"] == pytest.approx(0.8 * 28 / 31, rel=1e-12)
    assert b["relative_weight"] == pytest.approx(26 / 15 * 28 / 31, rel=1e-12)
    assert c["relative_weight"] == pytest.approx(28 / 31, rel=1e-12)
    assert (a["tilted"], b["tilted"], a["tilt_factor"]) == (True, False, 1.2)
    budget = sum(r["cases_weighted"] * r["relative_weight"] for k, r in w.items() if k[0] == "R1")
    assert budget == pytest.approx(56 / 15, rel=1e-12)


def test_a_tilt_on_an_adrg_applies_to_its_drgs_unless_the_drg_has_its_own(spark):
    rows = ([("R1", "H1", "2024-06", 3, 1000, "AA11")] * 5 + [("R1", "H1", "2024-06", 3, 1000, "AA13")] * 5
            + [("R1", "H1", "2024-06", 3, 1000, "BB11")] * 5)
    w = weights_of(spark, rows, spec(**{"trimming.method": "none", "tilts": {"AA1": 2.0, "AA13": 0.5}}))
    assert [w["R1", d]["tilt_factor"] for d in ("AA11", "AA13", "BB11")] == [2.0, 0.5, 1.0]
    # all RW' = 1, ñ equal: s = 3 / 3.5 -> 2*s, 0.5*s, s
    assert w["R1", "AA11"]["relative_weight"] == pytest.approx(2 * 3 / 3.5, rel=1e-12)


def test_budget_neutrality_holds_to_1e_9_on_a_synthetic_province(spark):
    from casemix.calibrate.synthetic import synthetic_grouped_claims, synthetic_groups

    codes = synthetic_groups(40, 3)["drg"].tolist()
    grouped = synthetic_grouped_claims(spark, cases=6000, regions=("530100", "530300"), groups=40, seed=3,
                                       months=(6,), partitions=2)
    tilts = {codes[0]: 1.3, codes[5]: 0.7, codes[17]: 1.1, codes[33]: 2.0}
    plain, tilted = spec(), spec(tilts=tilts)
    cases = calibration_cases(grouped, plain, 2025).cache()
    before = by_key(region_weights(group_statistics(cases, plain), plain), "region", "drg")
    after = by_key(region_weights(group_statistics(cases, tilted), tilted), "region", "drg")
    cases.unpersist()
    for region in ("530100", "530300"):
        b = sum(r["cases_weighted"] * r["relative_weight"] for k, r in before.items() if k[0] == region)
        a = sum(r["cases_weighted"] * r["relative_weight"] for k, r in after.items() if k[0] == region)
        assert abs(a / b - 1) < 1e-9
        assert sum(after[k]["tilted"] for k in after if k[0] == region) == 4


def test_cap_limits_the_change_against_the_promoted_weights(spark):
    # R1 with a 10 % cap: A 2/3 against 0.5 -> 0.55 (capped); B 26/15 against 1.7 -> within
    # [1.53, 1.87], unchanged; C has no promoted weight -> unchanged.
    # budget ratio = (3*0.55 + 26/15) / (56/15) = 203/224
    w, q = _with_a_10_percent_cap(spark, {"AA11": 0.5, "BB11": 1.7})
    assert (w["AA11"]["relative_weight"], w["AA11"]["capped"], w["AA11"]["previous_weight"]) == \
        (pytest.approx(0.55, rel=1e-12), True, 0.5)
    assert (w["BB11"]["relative_weight"], w["BB11"]["capped"]) == (pytest.approx(26 / 15, rel=1e-12), False)
    assert (w["CC11"]["capped"], w["CC11"]["previous_weight"]) == (False, None)
    assert (q["capped_groups"], q["budget_ratio"]) == (1, pytest.approx(203 / 224, rel=1e-12))


def _with_a_10_percent_cap(spark, previous: dict[str, float]):
    """R1 of PROVINCE_ROWS calibrated untrimmed with a 10 % cap against ``previous`` (DRG -> promoted
    weight): its weights by DRG and its quality row."""
    rows = [("R1", "chs-drg-1.1", drg, weight) for drg, weight in previous.items()]
    promoted = spark.createDataFrame(rows, "region string, scheme_id string, drg string, previous_weight double")
    s = spec(**{"trimming.method": "none", "max_yearly_change": 0.1})
    cases = calibration_cases(claims(spark, PROVINCE_ROWS), s, 2025)
    result = calibrate(cases, s, 2025, run_id="r", calibrated_at=AT, regions=["R1"], previous=promoted)
    return by_key(result.relative_weights, "drg"), result.quality.collect()[0]


def test_an_inflation_table_missing_a_data_year_is_refused_with_the_fix(spark):
    with pytest.raises(CalibrationSpecError, match=r"no factor for data year\(s\) \[2022\]"):
        calibration_cases(claims(spark, HAND_ROWS), spec(inflation={2023: 1.1, 2024: 1.0}), 2025)


def test_a_spec_override_is_validated():
    with pytest.raises(CalibrationSpecError, match="trimming.method"):
        spec(**{"trimming.method": "winsorise"})
    with pytest.raises(CalibrationSpecError, match="year_weights has 2 values but window_years is 3"):
        spec(year_weights=[1, 1])
    with pytest.raises(CalibrationSpecError, match="no key 'trimming.k'"):
        spec(**{"trimming.k": 2})


def test_cap_also_raises_a_weight_that_fell_more_than_the_cap(spark):
    # as the cap test above, plus a promoted C of 1.2: C borrows 1.0 < 0.9 * 1.2 -> 1.08 (capped from below);
    # ñ_C = 0, so the budget ratio is still 203/224
    w, q = _with_a_10_percent_cap(spark, {"AA11": 0.5, "BB11": 1.7, "CC11": 1.2})
    assert (w["CC11"]["relative_weight"], w["CC11"]["capped"], w["CC11"]["low_volume"]) == \
        (pytest.approx(1.08, rel=1e-12), True, True)
    assert (q["capped_groups"], q["budget_ratio"]) == (2, pytest.approx(203 / 224, rel=1e-12))


def test_log_sd_trimming_needs_a_positive_minimum_cost():
    # ln 0 = -inf makes the group's bounds NaN, and the group would silently keep every case
    with pytest.raises(CalibrationSpecError, match="log_sd.*min_cost"):
        spec(**{"trimming.method": "log_sd", "exclusions.min_cost": 0})
    assert spec(**{"trimming.method": "log_sd", "exclusions.min_cost": 0.01}).exclusions.min_cost > 0
    assert spec(**{"exclusions.min_cost": 0}).trimming.method == "iqr"  # the other methods take any cost


def test_a_tilt_or_an_inflation_factor_can_be_set_by_its_own_dotted_key():
    s = spec(**{"tilts.AA11": 1.2, "tilts.BB1": 0.9})
    assert s.tilts == {"AA11": 1.2, "BB1": 0.9}
    s = spec(**{"inflation.2022": 1.1, "inflation.2023": 1.05, "inflation.2024": 1.0})
    assert s.inflation == {2022: 1.1, 2023: 1.05, 2024: 1.0}
    with pytest.raises(CalibrationSpecError, match="tilts"):
        spec(**{"tilts.AA11": 0})
    with pytest.raises(CalibrationSpecError, match="no key 'exclusions.max_los'"):
        spec(**{"exclusions.max_los": 30})
