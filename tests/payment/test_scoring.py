"""Case points on hand-worked cases: every case type, each with its exact points worked out in the
comments (region R1: all-case mean 10 000 yuan; AA11 RW 0.8 → B 80, standard 8 000, high-cost multiple 3;
BB13 RW 2 → B 200, standard 20 000, m 2; CC15 RW 4 → B 400, standard 40 000, m 1.5; CB39 RW 1.2 → B 120,
同病同价 via ADRG CB3; TR19 → bed-day 4 points/day via ADRG TR1; grades 三级 1.0, 二级 0.9, 一级 0.8)."""
from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from casemix.payment.scoring import score_cases
from tests.payment.conftest import YEAR, case, params

WHEN = datetime(2026, 1, 2, tzinfo=timezone.utc)

CASES = [
    # id,  hospital, drg, cost
    case("c01", "H2", "BB13", 20000),                    # ratio 1 → normal: 200 × 0.9 = 180
    case("c02", "H1", "BB13", 50000),                    # 2.5 > 2 → high: 200 × 1 + 0.5 × 200 = 300
    case("c03", "H3", "AA11", 26000),                    # 3.25 > 3 → high: 80 × 0.8 + 0.25 × 80 = 84
    case("c04", "H1", "CC15", 70000),                    # 1.75 > 1.5 → high: 400 + 0.25 × 400 = 500
    case("c05", "H2", "CC15", 64000),                    # 1.6 > 1.5 → high: 400 × 0.9 + 0.1 × 400 = 400
    case("c06", "H2", "BB13", 32000),                    # 1.6 ≤ 2 → normal: 180
    case("c07", "H1", "AA11", 3000),                     # 0.375 ≤ 0.4 → low: 80 × 0.375 = 30
    case("c08", "H2", "AA11", 5000),                     # 0.625 → band: 80 × 0.825 = 66
    case("c09", "H2", "AA11", 3200),                     # 0.4 exactly → low: 80 × 0.4 = 32
    case("c10", "H2", "AA11", 6400),                     # 0.8 exactly → band: 80 × 1.0 = 80
    case("c11", "H1", "BB13", 10000, status="2"),        # transfer → incomplete: 200 × 1 × min(1, 0.5) = 100
    case("c12", "H2", "BB13", 12000, status="5", los=1),  # death in 1 day → incomplete: 200 × 0.9 × 0.6 = 108
    case("c13", "H2", "BB13", 12000, status="5", los=3),  # death after 3 days → band: 200 × 0.8 = 160
    case("c14", "H3", "TR19", 9000, los=30),             # bed-day: 4 × 30 = 120
    case("c15", "H3", "CB39", 12000),                    # 同病同价: c = 1 (not 0.8): 120 × 1 = 120
    case("c16", "H1", "GQY", 5000, group_status="QY"),   # 5000/10000 × 100 × 0.9 = 45
    case("c17", "H1", "0000", "23456.78", group_status="ungroupable"),  # 2.345678 × 100 × 0.9 = 211.1110(2)
    case("c18", "H1", "ZZ19", 15000),                    # no weight for ZZ19: 1.5 × 100 × 0.9 = 135
    case("c19", "H4", "BB13", 20000),                    # H4 not registered → c = 1: 200
    case("c28", "H1", "CC15", 40000, status="4"),        # left against advice, ratio 1: 400 × 1 × 1 = 400
    case("c29", "H1", "CC15", 100000, status="2"),       # transfer, ratio 2.5: incomplete wins: 400 × min(1, 2.5) = 400
    # readmissions (same person, same DRG, admitted ≤ 15 days after discharge: the earlier stay × 0.5)
    case("c20", "H1", "BB13", 20000, person="P1", discharged=date(YEAR, 3, 10)),   # 200 → 100
    case("c21", "H2", "BB13", 20000, person="P1", admitted=date(YEAR, 3, 20), discharged=date(YEAR, 3, 25)),  # 180
    case("c22", "H1", "AA11", 8000, person="P2", discharged=date(YEAR, 5, 1)),     # 12 days: 80 → 40
    case("c23", "H1", "AA11", 8000, person="P2", admitted=date(YEAR, 5, 13), discharged=date(YEAR, 5, 16)),  # 80
    case("c24", "H1", "AA11", 8000, person="P3", discharged=date(YEAR, 6, 1)),     # next stay other DRG: 80
    case("c25", "H1", "BB13", 20000, person="P3", admitted=date(YEAR, 6, 5), discharged=date(YEAR, 6, 9)),  # 200
    case("c26", "H1", "AA11", 8000, person="P4", discharged=date(YEAR, 12, 28)),   # readmitted in 2026: 80 → 40
    case("c27", "H1", "AA11", 8000, person="P4", admitted=date(YEAR + 1, 1, 5), discharged=date(YEAR + 1, 1, 10)),
    case("c30", "H1", "AA11", 8000, person="P5", discharged=date(YEAR, 7, 1)),     # same-day readmission: 40
    case("c31", "H2", "AA11", 8000, person="P5", admitted=date(YEAR, 7, 1), discharged=date(YEAR, 7, 4)),  # 72
]

EXPECTED = {  # claim: (case type, points, readmission halved)
    "c01": ("normal", "180.0000", False), "c02": ("high_cost", "300.0000", False),
    "c03": ("high_cost", "84.0000", False), "c04": ("high_cost", "500.0000", False),
    "c05": ("high_cost", "400.0000", False), "c06": ("normal", "180.0000", False),
    "c07": ("low_cost", "30.0000", False), "c08": ("band", "66.0000", False), "c09": ("low_cost", "32.0000", False),
    "c10": ("band", "80.0000", False), "c11": ("incomplete", "100.0000", False),
    "c12": ("incomplete", "108.0000", False), "c13": ("band", "160.0000", False),
    "c14": ("bed_day", "120.0000", False), "c15": ("normal", "120.0000", False),
    "c16": ("ungrouped", "45.0000", False), "c17": ("ungrouped", "211.1110", False),
    "c18": ("no_weight", "135.0000", False), "c19": ("normal", "200.0000", False),
    "c28": ("incomplete", "400.0000", False), "c29": ("incomplete", "400.0000", False),
    "c20": ("normal", "100.0000", True), "c21": ("normal", "180.0000", False),
    "c22": ("normal", "40.0000", True), "c23": ("normal", "80.0000", False),
    "c24": ("normal", "80.0000", False), "c25": ("normal", "200.0000", False),
    "c26": ("normal", "40.0000", True),
    "c30": ("normal", "40.0000", True), "c31": ("normal", "72.0000", False),
}


def score(frames, cases=CASES, **changes):
    grouped, weights, hospitals = frames(cases)
    out = score_cases(grouped, weights, hospitals, {"R1": params(**changes)}, YEAR, run_id="t", scored_at=WHEN)
    return {r["claim_id"]: r for r in out.collect()}


def test_every_case_type_gets_its_hand_worked_points(frames):
    got = score(frames)
    assert "c27" not in got, "a stay of the next year only serves to find readmissions"
    assert set(got) == set(EXPECTED)
    actual = {k: (r["case_type"], str(r["points"]), r["readmission_halved"]) for k, r in got.items()}
    assert actual == EXPECTED


def test_case_details_are_recorded(frames):
    got = score(frames)
    assert got["c20"]["readmission_claim_id"] == "c21"
    assert got["c20"]["points_before_readmission"] == Decimal("200.0000")
    assert got["c15"]["coefficient_source"] == "same_price" and got["c15"]["hospital_coefficient"] == Decimal("1")
    assert got["c19"]["coefficient_source"] == "unregistered" and got["c19"]["grade"] is None
    assert got["c03"]["hospital_coefficient"] == Decimal("0.8") and got["c03"]["cost_ratio"] == Decimal("3.25")
    assert got["c02"]["base_points"] == Decimal("200.0000") and got["c02"]["group_mean_cost"] == Decimal("20000.00")
    assert got["c17"]["cost_ratio"] is None and got["c17"]["calibration_run_id"] == "run-1"
    assert got["c01"]["patient_paid"] == Decimal("6000.00")   # total 20 000 − fund 14 000


def test_without_the_band_the_04_08_cases_are_normal(frames):
    got = score(frames, **{"band.enabled": False})
    # c08: 80 × 0.9 = 72; c10: 72; c13: 200 × 0.9 = 180; the low-cost cases stay low-cost
    assert {k: (got[k]["case_type"], str(got[k]["points"])) for k in ("c08", "c10", "c13", "c07", "c09")} == {
        "c08": ("normal", "72.0000"), "c10": ("normal", "72.0000"), "c13": ("normal", "180.0000"),
        "c07": ("low_cost", "30.0000"), "c09": ("low_cost", "32.0000")}
    assert not any(r["case_type"] == "band" for r in got.values())


def test_a_10_day_readmission_window_halves_only_stays_readmitted_within_10_days(frames):
    got = score(frames, **{"readmission.window_days": 10})
    halved = {k for k, r in got.items() if r["readmission_halved"]}
    assert halved == {"c20", "c26", "c30"}          # c22 (12 days) is no longer halved
    assert str(got["c22"]["points"]) == "80.0000"
    with15 = score(frames)
    assert {k for k, r in with15.items() if r["readmission_halved"]} == {"c20", "c22", "c26", "c30"}
    # nothing else changes
    assert {k: r["points"] for k, r in got.items() if k != "c22"} == \
        {k: r["points"] for k, r in with15.items() if k != "c22"}


def test_readmission_by_adrg_also_links_different_splits_of_one_adrg(frames):
    cases = [case("a1", "H1", "BB13", 20000, person="Q", discharged=date(YEAR, 4, 1)),
             case("a2", "H1", "BB15", 20000, person="Q", admitted=date(YEAR, 4, 3), discharged=date(YEAR, 4, 6))]
    by_drg = score(frames, cases)
    by_adrg = score(frames, cases, **{"readmission.same": "adrg"})
    assert not by_drg["a1"]["readmission_halved"]
    assert by_adrg["a1"]["readmission_halved"] and str(by_adrg["a1"]["points"]) == "100.0000"


def test_history_coefficients_are_bounded_and_fall_back_to_the_grade(frames, spark):
    grouped, weights, hospitals = frames([case("h1", "H1", "BB13", 20000), case("h2", "H2", "BB13", 20000),
                                          case("h3", "H3", "BB13", 20000)])
    # H1: (100 × 1.5 + 300 × 1.1) / 400 = 1.2 → within bounds; H2: 0.5 → bounded to 0.8; H3: no history → 0.8
    indicators = spark.createDataFrame(
        [("run-1", "R1", "H1", 100, 1.5), ("run-1", "R1", "H1", 300, 1.1), ("run-1", "R1", "H2", 50, 0.5)],
        "calibration_run_id string, region string, hospital_id string, cases long, cost_index double")
    out = score_cases(grouped, weights, hospitals, {"R1": params(**{"coefficient.source": "history"})}, YEAR,
                      run_id="t", scored_at=WHEN, indicators=indicators)
    got = {r["claim_id"]: (r["coefficient_source"], str(r["hospital_coefficient"]), str(r["points"]))
           for r in out.collect()}
    assert got == {"h1": ("history", "1.200000", "240.0000"), "h2": ("history", "0.800000", "160.0000"),
                   "h3": ("grade_default", "0.800000", "160.0000")}


def test_inconsistent_point_precision_across_regions_is_refused(frames):
    from casemix.payment.scoring import ScoringError

    grouped, weights, hospitals = frames(CASES[:1])
    with pytest.raises(ScoringError, match="points_decimals"):
        score_cases(grouped, weights, hospitals, {"R1": params(), "R2": params("R2", points_decimals=2)}, YEAR,
                    run_id="t", scored_at=WHEN)


def test_a_readmission_is_found_by_the_earlier_stays_rule_whatever_the_other_regions_rule(frames):
    # R1 links readmissions by ADRG; the person's next stay (BB15, same ADRG BB1) is in R2. Whether R2 is
    # scored in the same run, or links by DRG itself, must not change R1's result.
    cases = [case("x1", "H1", "BB13", 20000, person="Q", discharged=date(YEAR, 4, 1)),
             case("x2", "H2", "BB15", 20000, person="Q", admitted=date(YEAR, 4, 3), discharged=date(YEAR, 4, 6),
                  region="R2"),
             # R2 links by DRG: its stay y1 is readmitted in R1 in the same DRG AA11
             case("y1", "H2", "AA11", 8000, person="V", discharged=date(YEAR, 5, 1), region="R2"),
             case("y2", "H1", "AA11", 8000, person="V", admitted=date(YEAR, 5, 5), discharged=date(YEAR, 5, 8))]
    from tests.payment.conftest import weights_rows

    grouped, weights, hospitals = frames(cases, weights=weights_rows() + weights_rows("R2"))
    adrg = params(**{"readmission.same": "adrg"})
    for regions in ({"R1": adrg}, {"R1": adrg, "R2": params("R2")}):
        got = {r["claim_id"]: r for r in score_cases(grouped, weights, hospitals, regions, YEAR, run_id="t",
                                                     scored_at=WHEN).collect()}
        assert got["x1"]["readmission_halved"] and got["x1"]["readmission_claim_id"] == "x2", sorted(regions)
        assert str(got["x1"]["points"]) == "100.0000"
        if "R2" in regions:
            assert got["y1"]["readmission_halved"] and got["y1"]["readmission_claim_id"] == "y2"
            assert not got["x2"]["readmission_halved"]


def test_a_bed_day_group_is_paid_by_bed_days_even_without_a_weight(frames):
    # TR15 has no row in the weights, but its ADRG TR1 is a bed-day group: 4 points × 40 days = 160
    got = score(frames, [case("b1", "H1", "TR15", 30000, los=40)])
    assert (got["b1"]["case_type"], str(got["b1"]["points"])) == ("bed_day", "160.0000")


def test_points_decimals_above_the_case_points_scale_are_refused(frames):
    from casemix.payment.scoring import ScoringError

    grouped, weights, hospitals = frames(CASES[:1])
    with pytest.raises(ScoringError, match="points_decimals"):
        score_cases(grouped, weights, hospitals, {"R1": params(points_decimals=6)}, YEAR, run_id="t", scored_at=WHEN)
