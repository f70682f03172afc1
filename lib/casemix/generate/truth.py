"""The hidden truth of a generated province: what a weight calibration should recover.

Cost model
----------
A clean inpatient stay ``i`` that groups to DRG ``g`` in hospital ``h`` (grade ``G``, type ``T``) of region
``r``, discharged in year ``y``, costs (yuan, rounded to the fen, at least 1 yuan)::

    cost_i = true_mean_cost(g) x m_grade(G) x m_type(T) x price_level(r) x inflation(y) x eps_i
    eps_i  = exp(b*sL*ZL - (b*sL)^2/2) x exp(sC*ZC - sC^2/2) x s_i

with ``ZL``, ``ZC`` independent standard normals (``ZL`` also drives the length of stay, so cost follows
it with elasticity ``b = costs.los_cost_elasticity``; ``sL = costs.case_los_sigma``,
``sC = costs.case_sigma``), hence ``E[eps_i | g] = s_i``, where ``s_i = 1`` for a routine discharge
(离院方式 1) of at most 60 days, ``costs.status_cost_factor[status]`` for an incomplete stay
(2 transfer, 3 community, 4 against advice, 5 death, 9 other) and ``LOS / expected LOS`` for a long stay
(> 60 days). All multipliers are in ``conf/province.yaml``: ``grades.<G>.cost_multiplier`` (三级 = 1),
``hospital_types.<T>.cost_multiplier`` (general = 1), ``regions[].price_level``, ``inflation[y]``
(``reference_year`` = 1). :func:`reference_multipliers` lists them per hospital.

``true_mean_cost(g)`` is the expected cost at **reference conditions** (三级 general hospital, price level
1.0, reference-year prices, routine discharge within 60 days): ``base_cost[type of the ADRG] x
mdc_multiplier[MDC] x exp(adrg_sigma x z_ADRG) x split_multiplier[4th character of g]`` (``z_ADRG`` a
seeded normal per ADRG), rounded to the fen. Stays that do not group (0000, QY) cost
``costs.ungrouped_cost`` at reference conditions and have no row in the table.

``true_relative_cost(g) = true_mean_cost(g) / C``, where ``C = sum_g n_g true_mean_cost(g) / sum_g n_g``
is the case-weighted mean of the true costs over ``n_g`` = the clean stays of the run grouped to ``g``:
rows without a planted defect (what ingestion accepts; a resubmission counts once, as its version 2),
all regions and years.

How to compare a calibration with it
------------------------------------
1. Deflate each stay's cost to reference conditions:
   ``cost*_i = total_cost_i / (m_grade x m_type x price_level x inflation(y))``, and keep routine
   discharges (离院方式 1) of at most 60 days (the default exclusion already drops the long stays; drop
   the incomplete ones too, or divide their cost by ``status_cost_factor``). Then
   ``E[cost*_i | g] = true_mean_cost(g)`` exactly: the mean of ``cost*`` per DRG estimates
   ``true_mean_cost`` with a relative standard error of about ``sqrt(exp(sC^2 + (b sL)^2) - 1) / sqrt(n_g)``
   (0.42 / sqrt(n_g) at the defaults).
2. Relative weights are ratios to the mean over a case set ``S`` (a region, some years, after
   exclusions): ``RW*_g = mean*_g / mean*_S`` estimates ``true_mean_cost(g) / C_S`` with
   ``C_S`` the mean of ``true_mean_cost(g_i)`` over the stays ``i`` of ``S``. Compare it with the table
   re-normalised to ``S``: ``true_relative_cost(g) / mean_{i in S} true_relative_cost(g_i)``
   (= ``true_relative_cost(g)`` when ``S`` is the whole run).
3. Without deflating, a region's price level cancels in its relative weights, but inflation (year mix) and
   the grade / hospital-type mix of each DRG do not: complex DRGs are treated more in 三级 hospitals
   (multiplier 1.0 against 0.78 / 0.60), so raw weights of complex DRGs come out higher than the truth
   by the ratio of their mean multiplier to the region's mean multiplier.
4. Trimming (IQR, percentiles, ln-cost +-3 SD) cuts the same lognormal tails in every DRG, which lowers
   every trimmed mean by about the same factor: it cancels in relative weights up to sampling noise.
"""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Mapping, Optional

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from casemix.generate.plan import GenerationPlan
from casemix.generate.province import GRADES, HOSPITAL_TYPES
from casemix.tables import SYNTHETIC_TRUE_COSTS

__all__ = ["true_costs", "drg_case_counts", "reference_multipliers", "hospital_register"]

_SIX = Decimal("0.000001")


def drg_case_counts(cases: DataFrame) -> dict[str, int]:
    """Clean grouped stays per DRG in generated rows (a distributed count; at most one row per DRG
    reaches the driver)."""
    rows = (cases.filter(F.col("defect_kind").isNull() & (F.col("case_status") == "grouped"))
            .groupBy("case_drg").count().collect())
    return {r["case_drg"]: int(r["count"]) for r in rows}


def true_costs(spark: SparkSession, plan: GenerationPlan, *, run_id: str, cases: Optional[DataFrame] = None,
               counts: Optional[Mapping[str, int]] = None) -> DataFrame:
    """The ``synthetic_true_costs`` rows of the plan's scheme: every reachable DRG with its true mean
    cost and true relative cost (weights: ``counts``, else counted from ``cases``; see the module
    docstring). ``run_id`` goes to ``generate_run_id``."""
    cat = plan.catalogue
    if counts is None:
        if cases is None:
            raise ValueError("true_costs needs the generated cases or their counts per DRG")
        counts = drg_case_counts(cases)
    costs = [cat.true_cost_decimal(i) for i in range(len(cat.drg_codes))]
    weights = [int(counts.get(drg, 0)) for drg in cat.drg_codes]
    total = sum(weights)
    if total:
        mean = sum(Decimal(w) * c for w, c in zip(weights, costs)) / Decimal(total)
    else:  # nothing grouped (a tiny run): plain mean over the DRGs
        mean = sum(costs) / Decimal(len(costs))
    rows = [
        (cat.scheme_id, drg, adrg, cost, (cost / mean).quantize(_SIX, rounding=ROUND_HALF_UP),
         int(plan.spec.seed), run_id)
        for drg, adrg, cost in zip(cat.drg_codes, cat.drg_adrg, costs)
    ]
    return spark.createDataFrame(rows, schema=SYNTHETIC_TRUE_COSTS.schema)


def hospital_register(plan: GenerationPlan) -> list[dict]:
    """The synthetic province's hospital register (定点医疗机构): id, region, name, grade, type; the rows
    ``casemix.payment.write_register`` writes as the CSV file ``load-hospitals`` reads."""
    rows = []
    for i, hid in enumerate(plan.hospital_ids):
        region = plan.region_codes[int(plan.hospital_region[i])]
        grade = GRADES[int(plan.hospital_grade[i])]
        htype = HOSPITAL_TYPES[int(plan.hospital_type[i])]
        rows.append({"hospital_id": hid, "region": region, "name": f"{region} {grade} {htype} {hid}",
                     "grade": grade, "hospital_type": htype})
    return rows


def reference_multipliers(spark: SparkSession, plan: GenerationPlan) -> DataFrame:
    """Per hospital: region, grade, type and the multipliers that separate its costs from the reference
    conditions (grade, type, region price level); multiply by ``province.inflation[year]`` for a year."""
    prov = plan.province
    rows = []
    for i, hid in enumerate(plan.hospital_ids):
        region = plan.region_codes[int(plan.hospital_region[i])]
        grade = GRADES[int(plan.hospital_grade[i])]
        htype = HOSPITAL_TYPES[int(plan.hospital_type[i])]
        rows.append((hid, region, grade, htype, float(prov.grades[grade].cost_multiplier),
                     float(prov.hospital_types[htype].cost_multiplier),
                     float(plan.region_price[int(plan.hospital_region[i])])))
    return spark.createDataFrame(
        rows, "hospital_id string, region string, grade string, hospital_type string, grade_multiplier double, "
              "type_multiplier double, price_level double")
