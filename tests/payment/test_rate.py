"""The rate method (费率法) per case on hand-worked cases.

Region R2: budget 14 000, expected reimbursement ratio 0.7 → 20 000 over Σ RW·n = 2 + 1 + 1 + 1 = 5
(the QY case has no weight) → base rate F = 4 000; P(RW 2) = 8 000, P(RW 1) = 4 000.
  r1  H1 三级 employee RW 2, 自费 500:  (8 000 − 500 − 800) × 0.85 = 5 695
  r2  H1 三级 resident RW 1, cost 13 000 > 3 × 4 000: high cost; H1 has 3 cases → at most
      floor(3 × 0.05) = 0 paid fee-for-service → standard: (4 000 − 0 − 1 000) × 0.65 = 1 950
  r3  H2 二级 resident RW 1:  (4 000 − 600) × 0.75 = 2 550
  r4  H2 二级 employee RW 1, 自费 100:  (4 000 − 100 − 500) × 0.88 = 2 992
  r5  H1 QY: fee-for-service, its fund_paid 700
"""
from __future__ import annotations

from decimal import Decimal as D

from casemix.payment.rate import base_rates, rate_cases
from tests.payment.conftest import case, params

REGION = "R2"


def points_frame(spark):
    from pyspark.sql import functions as F

    rows = [case("r1", "H1", "BB13", 9000, oop=500, region=REGION),
            case("r2", "H1", "AA11", 13000, scheme="resident", fund=9000, region=REGION),
            case("r3", "H2", "AA11", 2000, scheme="resident", region=REGION),
            case("r4", "H2", "AA11", 1000, oop=100, region=REGION),
            case("r5", "H1", "GQY", 1000, group_status="QY", fund=700, region=REGION)]
    from tests.payment.conftest import CASE_SCHEMA

    df = spark.createDataFrame(rows, CASE_SCHEMA)
    bp = {"BB13": "200.0000", "AA11": "100.0000"}
    grade = {"H1": "三级", "H2": "二级"}
    base = F.create_map(*[x for k, v in bp.items() for x in (F.lit(k), F.lit(v))])
    grades = F.create_map(*[x for k, v in grade.items() for x in (F.lit(k), F.lit(v))])
    return df.withColumn("base_points", F.when(F.col("group_status") == "grouped", base[F.col("drg")])
                         .cast("decimal(20,4)")).withColumn("grade", grades[F.col("hospital_id")])


def test_base_rate_and_case_payments(spark):
    p = {REGION: params(REGION)}
    df = points_frame(spark)
    rates = base_rates(df, {REGION: D("14000.00")}, p)
    assert rates == {REGION: D("4000.0000000000")}
    got = {r["claim_id"]: (r["rate_case_type"], r["rate_fund"], r["rate_standard"], r["rate_points"])
           for r in rate_cases(df, rates, p).collect()}
    assert got == {
        "r1": ("standard", D("5695.000000"), D("8000.000000"), D("200.0000")),
        "r2": ("standard", D("1950.000000"), D("4000.000000"), D("100.0000")),
        "r3": ("standard", D("2550.000000"), D("4000.000000"), D("100.0000")),
        "r4": ("standard", D("2992.000000"), D("4000.000000"), D("100.0000")),
        "r5": ("ffs", D("700.000000"), None, D("0.0000")),
    }


def test_high_cost_cases_are_paid_fee_for_service_up_to_the_cap(spark):
    p = {REGION: params(REGION, **{"rate.high_cost_max_share": "0.34"})}   # floor(3 × 0.34) = 1 case at H1
    df = points_frame(spark)
    got = {r["claim_id"]: (r["rate_case_type"], r["rate_fund"]) for r in rate_cases(df, {REGION: D("4000")}, p).collect()}
    assert got["r2"] == ("high_cost_ffs", D("9000.000000"))
    assert got["r1"] == ("standard", D("5695.000000"))
