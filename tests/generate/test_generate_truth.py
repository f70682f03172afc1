"""The hidden truth: true mean cost per DRG, recovered by deflating generated costs as documented."""
from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd

from casemix.generate import reference_multipliers

from ._reference_checks import parse_date


def test_every_reachable_drg_has_a_true_cost_and_relative_costs_average_one_over_the_cases(generated, rows):
    truth = generated.truth
    assert len(truth) == 628 and truth["drg"].is_unique
    assert (truth["scheme_id"] == "chs-drg-1.1").all() and (truth["generator_seed"] == 20240607).all()
    assert (truth["true_mean_cost"] > 0).all()
    clean = rows[rows["defect_kind"].isna() & (rows["case_status"] == "grouped")]
    n = clean["case_drg"].value_counts()
    rel = truth.set_index("drg")["true_relative_cost"].map(Decimal)
    weighted = sum(rel[d] * k for d, k in n.items()) / sum(n)
    assert abs(weighted - 1) < Decimal("0.0001")


def test_deflated_costs_of_routine_stays_average_to_the_true_mean_cost(spark, rows, plan, generated):
    mult = reference_multipliers(spark, plan).toPandas().set_index("hospital_id")
    clean = rows[rows["defect_kind"].isna() & (rows["case_status"] == "grouped") & (rows["row_role"] == "original")
                 & (rows["离院方式"] == "1") & (pd.to_numeric(rows["住院天数"], errors="coerce") <= 60)]
    year = clean["出院日期"].map(lambda s: parse_date(s).year)
    h = mult.loc[clean["医疗机构编码"]]
    factor = (h["grade_multiplier"].to_numpy() * h["type_multiplier"].to_numpy() * h["price_level"].to_numpy()
              * year.map(plan.province.inflation).to_numpy())
    deflated = clean["总费用"].astype(float).to_numpy() / factor
    frame = pd.DataFrame({"drg": clean["case_drg"].to_numpy(), "cost": deflated})
    stats = frame.groupby("drg")["cost"].agg(["mean", "count"])
    true = generated.truth.set_index("drg")["true_mean_cost"].astype(float)
    big = stats[stats["count"] >= 40]
    assert len(big) >= 5
    ratio = big["mean"] / true[big.index]
    assert (np.abs(ratio - 1) < 5 * 0.42 / np.sqrt(big["count"])).all(), ratio
    # pooled over many DRGs the ratio is 1 within a percent or two
    pooled = (stats["mean"] * stats["count"]).sum() / (true[stats.index] * stats["count"]).sum()
    assert abs(pooled - 1) < 0.03
