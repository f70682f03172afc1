"""Settlement of a hand-worked region in exact decimals (no Spark), and the money rules it rests on.

Region R1, year 2025, budget B = 1 000 000.00 (fixed), cells (hospital, month, cases, points, patients'
payments, fee-for-service fund, deductions):
  H1 2025-01  10  1000    60 000  300 000      0
  H2 2025-01   5   500    20 000  150 000      0
  H1 2025-02   8   700    50 000  200 000  1 000
  H3 2025-02   3   300.5  10 000   90 000      0
P = 140 000, A = 740 000, S = B − A = 260 000 (surplus); hospitals' part H = 0.95 S = 247 000, fund keeps
R = 13 000; T = B + P − R = 1 127 000; Σ points 2 500.5, PV = 450.7098580284.
Gross by points (largest remainder): H1 1700 → 766 206.76, H2 500 → 225 354.93, H3 300.5 → 135 438.31.
Monthly budget 1/12: 83 333.333… → Jan–Apr 83 333.34 (the 4 missing fen go to the first months on a tie).
"""
from __future__ import annotations

from decimal import Decimal as D

import pytest

from casemix.payment.money import AllocationError, allocate, to_fen
from casemix.payment.settlement import HospitalMonth, ReconciliationError, SettlementError, check_region, settle_region
from tests.payment.conftest import YEAR, params

CELLS = [
    HospitalMonth("H1", "2025-01", 10, D("1000"), D("60000"), D("300000")),
    HospitalMonth("H2", "2025-01", 5, D("500"), D("20000"), D("150000")),
    HospitalMonth("H1", "2025-02", 8, D("700"), D("50000"), D("200000"), deductions=D("1000")),
    HospitalMonth("H3", "2025-02", 3, D("300.5"), D("10000"), D("90000")),
]


def rows(result, period_type):
    return {(r["hospital_id"], r["period"]): r for r in result.hospitals if r["period_type"] == period_type}


def test_allocate_splits_to_the_fen_by_largest_remainder():
    assert allocate(D("100.00"), [D(1), D(1), D(1)], ["a", "b", "c"]) == [D("33.34"), D("33.33"), D("33.33")]
    assert allocate(D("100.00"), [D(1), D(1), D(1)], ["c", "b", "a"]) == [D("33.33"), D("33.33"), D("33.34")]
    assert allocate(D("-100.00"), [D(1), D(2)]) == [D("-33.33"), D("-66.67")]
    assert allocate(D("0.05"), [D(0), D(3), D(1)]) == [D("0.00"), D("0.04"), D("0.01")]
    with pytest.raises(AllocationError):
        allocate(D("1.00"), [D(0), D(0)])
    with pytest.raises(AllocationError):
        allocate(D("1.005"), [D(1)])
    assert to_fen(D("2.345")) == D("2.35") and to_fen(D("-2.345")) == D("-2.35")
    with pytest.raises(TypeError):
        to_fen(2.5)


def test_year_end_point_value_surplus_sharing_and_hospital_payments():
    result = settle_region("R1", YEAR, params(), D("1000000.00"), CELLS)
    value = next(v for v in result.values if v["period_type"] == "year")
    assert (value["patient_payments"], value["ffs_fund"], value["surplus"], value["hospital_share"],
            value["fund_retained"], value["settlement_total"]) == \
        (D("140000"), D("740000"), D("260000"), D("247000.00"), D("13000.00"), D("1127000.00"))
    assert value["total_points"] == D("2500.5") and value["point_value"] == D("450.7098580284")
    year = rows(result, "year")
    expected = {  # gross, patient, deductions, final, surplus share, Σ provisional, released
        "H1": ("766206.76", "110000", "1000", "655206.76", "167926.42", "83446.28", "571760.48"),
        "H2": ("225354.93", "20000", "0", "205354.93", "49390.12", "29277.78", "176077.15"),
        "H3": ("135438.31", "10000", "0", "125438.31", "29683.46", "28092.62", "97345.69"),
    }
    for h, (gross, patient, ded, final, share, paid, released) in expected.items():
        r = year[(h, "2025")]
        assert (r["gross_amount"], r["patient_payments"], r["audit_deductions"], r["final_fund_payment"],
                r["surplus_share"], r["provisional_paid"], r["released"]) == \
            (D(gross), D(patient), D(ded), D(final), D(share), D(paid), D(released)), h


def test_monthly_provisional_payments():
    result = settle_region("R1", YEAR, params(), D("1000000.00"), CELLS)
    month = rows(result, "month")
    expected = {  # gross, due, paid (85 %), withheld
        ("H1", "2025-01"): ("108888.89", "48888.89", "41555.56", "7333.33"),
        ("H2", "2025-01"): ("54444.45", "34444.45", "29277.78", "5166.67"),
        ("H1", "2025-02"): ("100283.20", "49283.20", "41890.72", "7392.48"),
        ("H3", "2025-02"): ("43050.14", "33050.14", "28092.62", "4957.52"),
    }
    assert {k: (str(r["gross_amount"]), str(r["fund_due"]), str(r["provisional_paid"]), str(r["withheld"]))
            for k, r in month.items()} == expected
    values = {v["period"]: v for v in result.values if v["period_type"] == "month"}
    assert values["2025-01"]["budget"] == D("83333.34") and values["2025-01"]["settlement_total"] == D("163333.34")
    assert values["2025-01"]["point_value"] == D("108.8888933333")
    # Σ monthly paid + released = final, for every hospital
    for (h, _), r in rows(result, "year").items():
        assert sum(m["provisional_paid"] for (mh, _), m in month.items() if mh == h) + r["released"] == \
            r["final_fund_payment"]


def test_an_overrun_is_borne_95_percent_by_the_hospitals():
    result = settle_region("R1", YEAR, params(), D("500000.00"), CELLS)
    value = next(v for v in result.values if v["period_type"] == "year")
    # S = 500 000 − 740 000 = −240 000; H = −228 000; the fund bears R = −12 000: T = 500 000 + 140 000 + 12 000
    assert (value["surplus"], value["hospital_share"], value["fund_retained"], value["settlement_total"]) == \
        (D("-240000"), D("-228000.00"), D("-12000.00"), D("652000.00"))
    fund = sum(r["final_fund_payment"] + r["audit_deductions"] for r in rows(result, "year").values())
    assert fund == D("512000.00")   # the budget + the fund's 5 % of the overrun


def test_surplus_shares_come_from_the_policy():
    result = settle_region("R1", YEAR, params(**{"surplus.hospital_share_of_surplus": "1"}), D("1000000.00"), CELLS)
    value = next(v for v in result.values if v["period_type"] == "year")
    assert value["fund_retained"] == D("0") and value["settlement_total"] == D("1140000.00")


def test_provisional_share_and_monthly_budget_shares_are_policy():
    shares = ["0.5", "0.5"] + ["0"] * 10
    result = settle_region("R1", YEAR, params(**{"provisional_share": "1", "budget.monthly_shares": shares}),
                           D("1000000.00"), CELLS)
    month = rows(result, "month")
    # Jan: T = 500 000 + 80 000 = 580 000; H1 1000/1500 → 386 666.67 (remainder 0.67 fen) , H2 193 333.33
    assert month[("H1", "2025-01")]["gross_amount"] == D("386666.67")
    assert month[("H2", "2025-01")]["gross_amount"] == D("193333.33")
    assert month[("H2", "2025-01")]["withheld"] == D("0.00")   # 100 % paid


def test_the_rate_method_rounds_each_hospital_year_once_and_splits_it_over_months():
    cells = [HospitalMonth("H1", "2025-01", 1, D("0"), D("100"), D("900"), rate_fund=D("1000.004"), rate_points=D(100)),
             HospitalMonth("H1", "2025-02", 1, D("0"), D("100"), D("900"), rate_fund=D("1000.004"), rate_points=D(100))]
    result = settle_region("R1", YEAR, params(method="rate"), D("5000.00"), cells, base_rate=D("4000"))
    year = rows(result, "year")[("H1", "2025")]
    # Σ = 2000.008 → 2000.01 once; split 1000.01 / 1000.00 (tie → the earlier month)
    assert year["final_fund_payment"] == D("2000.01") and year["point_value"] is None
    month = rows(result, "month")
    assert (month[("H1", "2025-01")]["fund_due"], month[("H1", "2025-02")]["fund_due"]) == (D("1000.01"), D("1000.00"))
    value = next(v for v in result.values if v["period_type"] == "year")
    assert value["base_rate"] == D("4000") and value["surplus"] == D("2999.99") and value["method"] == "rate"


def test_simulation_compares_the_three_methods_per_hospital_and_month():
    cells = [HospitalMonth(c.hospital_id, c.month, c.cases, c.points, c.patient, c.ffs_fund, c.deductions,
                           rate_fund=c.ffs_fund * D("0.9")) for c in CELLS]
    result = settle_region("R1", YEAR, params(), D("1000000.00"), cells)
    sim = {(s["hospital_id"], s["month"]): s for s in result.simulation}
    # point method: T = 1 127 000 over the 4 cells by points; H1 Jan 1000 / 2500.5 → 450 709.86 − 60 000
    assert sim[("H1", "2025-01")]["point_fund"] == D("390709.86")
    assert sim[("H1", "2025-01")]["rate_fund"] == D("270000.00")
    assert sim[("H1", "2025-01")]["point_minus_ffs"] == D("90709.86")
    assert sim[("H1", "2025-01")]["rate_minus_ffs"] == D("-30000.00")
    assert sum(s["point_fund"] + c.patient for s, c in zip(result.simulation, CELLS)) == D("1127000.00")


def test_bad_inputs_are_refused_and_a_broken_settlement_does_not_pass_the_check():
    with pytest.raises(SettlementError, match="given twice"):
        settle_region("R1", YEAR, params(), D("1000000.00"), CELLS + CELLS[:1])
    with pytest.raises(SettlementError, match="not in settlement year"):
        settle_region("R1", YEAR, params(), D("1000000.00"),
                      [HospitalMonth("H1", "2024-12", 1, D(1), D(1), D(1))])
    with pytest.raises(SettlementError, match="no points"):
        settle_region("R1", YEAR, params(), D("1000000.00"), [HospitalMonth("H1", "2025-01", 1, D(0), D(1), D(1))])
    result = settle_region("R1", YEAR, params(), D("1000000.00"), CELLS)
    next(r for r in result.hospitals if r["period_type"] == "year")["final_fund_payment"] += D("0.01")
    with pytest.raises(ReconciliationError, match="does not reconcile"):
        check_region(result)


def test_the_year_so_far_is_settled_with_the_budget_of_its_months():
    from casemix.payment.settlement import monthly_budgets

    p = params()
    ytd_budget = sum(monthly_budgets(D("1000000.00"), p)[:2])
    assert ytd_budget == D("166666.68")                 # 83 333.34 + 83 333.34
    full = settle_region("R1", YEAR, p, D("1000000.00"), CELLS)
    ytd = settle_region("R1", YEAR, p, ytd_budget, CELLS, last_month=2)
    assert rows(ytd, "month") == rows(full, "month")   # same monthly budgets, same provisional payments
    value = next(v for v in ytd.values if v["period_type"] == "year")
    # S = 166 666.68 − 740 000 = −573 333.32; hospitals bear 95 %: H = −544 666.65 (half up), R = −28 666.67
    assert (value["surplus"], value["hospital_share"], value["fund_retained"], value["settlement_total"]) == \
        (D("-573333.32"), D("-544666.65"), D("-28666.67"), D("335333.35"))
    with pytest.raises(SettlementError, match="after the period"):
        settle_region("R1", YEAR, p, ytd_budget, CELLS, last_month=1)


def test_an_audit_deduction_in_a_month_without_cases_is_settled_not_refused():
    # March has no case in R1, only a deduction of 500 for H1: nothing of March's budget share is paid out
    # provisionally (no points to split it by); the deduction is withheld (due −500, nothing paid) and the
    # year end is as if it were deducted in February.
    march = HospitalMonth("H1", "2025-03", 0, D(0), D(0), D(0), deductions=D("500.00"))
    result = settle_region("R1", YEAR, params(), D("1000000.00"), CELLS + [march])
    m = rows(result, "month")[("H1", "2025-03")]
    assert (m["gross_amount"], m["fund_due"], m["provisional_paid"], m["withheld"]) == \
        (D("0.00"), D("-500.00"), D("0.00"), D("-500.00"))
    value = next(v for v in result.values if v["period"] == "2025-03")
    assert value["settlement_total"] == D("0.00") and value["point_value"] is None
    y = rows(result, "year")[("H1", "2025")]
    assert y["audit_deductions"] == D("1500") and y["final_fund_payment"] == D("654706.76")
    assert y["provisional_paid"] + y["released"] == y["final_fund_payment"]
    # a month with cases but not a single point still cannot be paid
    with pytest.raises(SettlementError, match="no points"):
        settle_region("R1", YEAR, params(), D("1000000.00"),
                      CELLS + [HospitalMonth("H1", "2025-03", 2, D(0), D(10), D(10))])
