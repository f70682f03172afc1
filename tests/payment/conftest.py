"""Shared inputs of the payment tests: explicit policy parameters (the documented defaults, written out so
a hand-worked value never depends on conf/) and builders of small hand-made frames."""
from __future__ import annotations

import copy
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from casemix.policy import PaymentPolicy

YEAR = 2025

BASE = {
    "method": "point",
    "budget": {"basis": "fixed", "amount": "1000000.00"},
    "provisional_share": "0.85",
    "surplus": {"hospital_share_of_surplus": "0.95", "hospital_share_of_overrun": "0.95"},
    "coefficient": {"source": "grade", "grades": {"三级": "1.0", "二级": "0.9", "一级": "0.8"},
                    "history_bounds": ["0.8", "1.2"], "same_price_groups": ["CB3"]},
    "high_cost": [{"up_to_points": 100, "multiple": 3}, {"up_to_points": 300, "multiple": 2}, {"multiple": "1.5"}],
    "low_cost_ratio": "0.4",
    "band": {"enabled": True, "upper_ratio": "0.8", "add": "0.2"},
    "incomplete_stay": {"statuses": ["2", "4"], "death_statuses": ["5"], "death_max_los_days": 1},
    "bed_day": {"points_per_day": {"TR1": "4.0"}, "min_los_days": 0},
    "readmission": {"window_days": 15, "factor": "0.5", "same": "drg"},
    "ungrouped_discount": "0.9",
    "points_decimals": 4,
    "rate": {
        "expected_reimbursement_ratio": "0.7",
        "high_cost_multiple": {"三级": 3, "二级": 2, "一级": 2},
        "high_cost_max_share": "0.05",
        "benefits": {
            "三级": {"deductible": {"employee": 800, "resident": 1000}, "reimbursement": {"employee": "0.85", "resident": "0.65"}},
            "二级": {"deductible": {"employee": 500, "resident": 600}, "reimbursement": {"employee": "0.88", "resident": "0.75"}},
            "一级": {"deductible": {"employee": 200, "resident": 300}, "reimbursement": {"employee": "0.9", "resident": "0.85"}},
        },
    },
}


def params(region: str = "R1", **changes):
    """PaymentParams of BASE with dotted-key changes, e.g. params(**{"band.enabled": False})."""
    doc = copy.deepcopy(BASE)
    for dotted, value in changes.items():
        node = doc
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node[key]
        node[leaf] = value
    return PaymentPolicy(years={YEAR: doc}).params(YEAR, region)


CASE_SCHEMA = ("claim_id string, region string, discharge_month string, hospital_id string, person_id string, "
               "insurance_scheme string, admission_date date, discharge_date date, los_days int, "
               "discharge_status string, scheme_id string, drg string, adrg string, group_status string, "
               "total_cost decimal(18,2), fund_paid decimal(18,2), out_of_pocket decimal(18,2)")


def case(claim_id, hospital, drg, cost, *, status="1", los=5, group_status="grouped", person=None,
         admitted=None, discharged=None, fund=None, oop="0", scheme="employee", region="R1"):
    discharged = discharged or date(YEAR, 3, 1)
    admitted = admitted or date.fromordinal(discharged.toordinal() - los)
    adrg = drg[:3] if drg and group_status == "grouped" else None
    cost = Decimal(str(cost))
    return (claim_id, region, f"{discharged:%Y-%m}", hospital, person or f"P-{claim_id}", scheme, admitted, discharged,
            los, status, "chs-drg-1.1", drg, adrg, group_status, cost,
            Decimal(str(fund)) if fund is not None else (cost * Decimal("0.7")).quantize(Decimal("0.01")),
            Decimal(str(oop)))


WEIGHTS_SCHEMA = ("region string, target_year int, scheme_id string, drg string, relative_weight double, "
                  "standard_cost decimal(18,2), all_case_mean_cost decimal(18,2), calibration_run_id string")


def weights_rows(region="R1", run="run-1", mean="10000.00"):
    # RW, standard cost = RW × all-case mean 10 000
    table = {"AA11": 0.8, "BB13": 2.0, "CC15": 4.0, "CB39": 1.2, "TR19": 0.5}
    return [(region, YEAR, "chs-drg-1.1", drg, rw, Decimal(str(rw * 10000)).quantize(Decimal("0.01")),
             Decimal(mean), run) for drg, rw in table.items()]


HOSPITALS = [("H1", "R1", "三级"), ("H2", "R1", "二级"), ("H3", "R1", "一级")]


@pytest.fixture
def frames(spark):
    def build(cases, weights=None, hospitals=None):
        from casemix.tables import table

        when = datetime(2026, 1, 1, tzinfo=timezone.utc)
        hs = spark.createDataFrame([(h, r, None, g, "general", "test", when) for h, r, g in (hospitals or HOSPITALS)],
                                   table("hospitals").schema)
        return (spark.createDataFrame(cases, CASE_SCHEMA),
                spark.createDataFrame(weights or weights_rows(), WEIGHTS_SCHEMA), hs)
    return build
