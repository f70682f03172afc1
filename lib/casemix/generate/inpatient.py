"""Inpatient settlement lists (医保结算清单), generated per Spark partition with vectorised numpy code.

:func:`generate_inpatient` is ``spark.range(n_cases)`` followed by one ``mapInArrow`` whose function
turns a batch of case ids into drop rows. Every random quantity is a counter-based hash of
(seed, case id, field salt) (:mod:`casemix.generate.rng`), so a case is the same whichever partition
computes it; the driver holds only the :class:`~casemix.generate.plan.GenerationPlan`.

One case, in the order it is drawn:

1. drop (region, discharge month) from the id's block, day of discharge, hospital grade (region's
   grade shares) and hospital;
2. case template from the catalogue, with the grade's case-mix tilt (a small share deliberately
   ungroupable or ambiguous);
3. the person: up to 16 candidate insured people of the region, the first whose sex and age suit the
   template (and who is accepted with the age band's relative admission rate); newborn templates get a
   newborn; if none suits, a neutral medical template instead;
4. secondary diagnoses (Poisson by age and grade; MCC / CC / other pools) and extra procedures;
5. discharge status (离院方式), long stay (> 60 days), length of stay, admission date;
6. readmissions: a share of cases re-admit the person of an earlier case of the same region (among
   about two months' worth of its preceding ids) 1-15 days (or 16-90 days) after its discharge, at the same hospital with the same diagnoses and
   procedures, hence the same ADRG and DRG;
7. DRG by the vectorised grouper (:func:`casemix.grouping.group_frame`) on the clean codes;
8. cost around the DRG's hidden true mean (see :mod:`casemix.generate.truth`), split into fund
   (基金支付), 自付 (self pay) and 自费 (out of pocket) in integer fen, so the parts add up exactly;
9. the raw strings of :data:`casemix.ingest.raw.RAW_COLUMNS` with the hospital's date and sex style and
   per-record code quirks, then the planted defects (:mod:`casemix.generate.defects`).

Output columns: the 27 Chinese raw columns (strings, null = empty) followed by :data:`META_COLUMNS`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import IntegerType, LongType, StringType, StructField, StructType

from casemix.generate.catalogue import TEMPLATE_AMBIGUOUS, TEMPLATE_REGULAR, TEMPLATE_UNGROUPABLE
from casemix.generate.dates import completed_years, ymd
from casemix.generate.defects import plant_defects
from casemix.generate.people import national_ids, person_core, person_details, person_ids
from casemix.generate.plan import GenerationPlan
from casemix.generate.province import ADRG_TYPES
from casemix.generate.rng import Draws, from_pool
from casemix.generate.text import apply_code_quirks, code_lists, date_str, int_str, join, money_str
from casemix.grouping import group_frame, load_compiled
from casemix.ingest.raw import RAW_COLUMNS

__all__ = ["generate_inpatient", "generate_batch", "case_facts", "inpatient_schema", "META_COLUMNS", "RAW_NAMES",
           "ROW_ORIGINAL", "ROW_DUPLICATE", "ROW_RESUBMISSION"]

RAW_NAMES = tuple(RAW_COLUMNS)
ROW_ORIGINAL, ROW_DUPLICATE, ROW_RESUBMISSION = "original", "duplicate", "resubmission"

#: meta columns after the raw ones (generator truth; never part of a drop file)
META_COLUMNS: dict[str, object] = {
    "case_id": LongType(),            # the spark.range id the case was generated from
    "drop_region": StringType(),      # region folder of the drop this row goes to
    "drop_month": StringType(),       # month folder (discharge month; the next month for a resubmission's v2)
    "drop_format": StringType(),      # csv | parquet
    "row_role": StringType(),         # original | duplicate (2nd copy) | resubmission (corrected version 2)
    "defect_kind": StringType(),      # a key of casemix.ingest.raw.DEFECT_KINDS, null for a clean row
    "defect_field": StringType(),     # the casemix field the defect touched (null when it is the whole row)
    "expected_reason": StringType(),  # reason code ingestion must report (or SUPERSEDED)
    "csv_fields": IntegerType(),      # malformed_csv_row: number of leading fields kept on the line
    "case_kind": StringType(),        # regular | ungroupable | ambiguous (template kind)
    "case_mdc": StringType(),         # grouping of the clean codes with the plan's scheme
    "case_adrg": StringType(),
    "case_drg": StringType(),
    "case_status": StringType(),      # grouped | QY | ungroupable
    "readmission_of": StringType(),   # claim id of the earlier stay this one re-admits
    "readmission_gap_days": IntegerType(),
}
_KIND_NAMES = {TEMPLATE_REGULAR: "regular", TEMPLATE_UNGROUPABLE: "ungroupable", TEMPLATE_AMBIGUOUS: "ambiguous"}
MAX_SECONDARIES = 8
MAX_EXTRA_PROCEDURES = 4
PERSON_CANDIDATES = 16
READMISSION_MONTHS = 2


def inpatient_schema() -> StructType:
    fields = [StructField(name, StringType(), True) for name in RAW_NAMES]
    fields += [StructField(name, dtype, True) for name, dtype in META_COLUMNS.items()]
    return StructType(fields)


def _arrow_schema() -> pa.Schema:
    conv = {StringType(): pa.string(), LongType(): pa.int64(), IntegerType(): pa.int32()}
    return pa.schema([pa.field(f.name, conv[f.dataType]) for f in inpatient_schema().fields])


# ============================================================================ the clinical case


def _los(plan: GenerationPlan, t, split_key, status, long_stay, z_los, d: Draws, salt: str):
    """(length of stay in days, expected stay without the long-stay override)."""
    cat, costs = plan.catalogue, plan.province.costs
    adrg = cat.t_adrg[t]
    medical = costs.mean_los["medical"]
    mean = np.where(adrg >= 0, cat.adrg_mean_los[np.maximum(adrg, 0)], medical)
    split_mult = np.array([costs.split_los_multiplier.get(k, 1.0) for k in ("1", "3", "5")])[split_key]
    status_mult = np.ones(len(t))
    for code, f in costs.status_los_factor.items():
        status_mult[status == int(code)] = f
    expected = mean * split_mult * status_mult
    sigma = costs.case_los_sigma
    los = np.clip(np.rint(expected * np.exp(sigma * z_los - sigma ** 2 / 2)), 1, 60).astype(np.int64)
    long_days = 61 + d.integers(salt + ".long_days", 120)
    return np.where(long_stay, long_days, los), expected


def _draw_case(plan: GenerationPlan, ids: np.ndarray) -> dict:
    """Everything of a case that does not depend on another case (no readmission linking)."""
    spec, cat = plan.spec, plan.catalogue
    n = len(ids)
    d = Draws(spec.seed, ids)
    M = plan.n_months
    block = np.searchsorted(plan.case_block_start, ids, side="right") - 1
    region, month = block // M, block % M
    disch = plan.month_first_day[month] + d.integers("case.day", plan.month_days[month])
    grade = d.choice_rows("case.grade", plan.region_grade_cdf, region)
    hospital = plan.hospital_start[region, grade] + d.integers("case.hospital", plan.hospital_count[region, grade])

    # template: ungroupable / ambiguous on purpose, else by the grade's case mix
    u = d.uniform("case.special")
    ung = u < spec.ungroupable_share
    amb = ~ung & (u < spec.ungroupable_share + spec.ambiguous_share)
    t = np.zeros(n, dtype=np.int64)
    t[ung] = cat.ungroupable[d.integers("case.ungroupable", len(cat.ungroupable))[ung]]
    t[amb] = cat.ambiguous[d.integers("case.ambiguous", len(cat.ambiguous))[amb]] if len(cat.ambiguous) else 0
    u_t = d.uniform("case.template")
    for gi in range(cat.grade_cdf.shape[0]):
        m = ~(ung | amb) & (grade == gi)
        t[m] = np.minimum(np.searchsorted(cat.grade_cdf[gi], u_t[m], side="right"), cat.n_templates - 1)
    if not len(cat.ambiguous):
        t[amb] = np.minimum(np.searchsorted(cat.generic_cdf, u_t[amb], side="right"), cat.n_templates - 1)

    # person: the first suitable of K candidates (newborn templates: a newborn)
    newborn = cat.t_newborn[t]
    K = PERSON_CANDIDATES
    kd = Draws(spec.seed, (ids[:, None] * K + np.arange(K)).ravel())
    insured = plan.region_insured[region]
    cand_p = np.minimum(np.floor(kd.uniform("case.person").reshape(n, K) * insured[:, None]).astype(np.int64),
                        insured[:, None] - 1)
    sex_k, birth_k, band_k = person_core(plan, np.broadcast_to(region[:, None], (n, K)), cand_p)
    age_k = ((disch[:, None] - birth_k) / 365.25).astype(np.int64)
    t_sex = cat.t_sex[t][:, None]
    compat = ((t_sex == 0) | (sex_k == t_sex)) & (age_k >= cat.t_age_min[t][:, None]) & (age_k <= cat.t_age_max[t][:, None])
    accept = compat & (~cat.t_age_default[t][:, None]
                       | (kd.uniform("case.accept").reshape(n, K) < plan.age_band_inpatient_accept[band_k]))
    choose = np.where(accept.any(axis=1), accept.argmax(axis=1), compat.argmax(axis=1))
    fallback = ~compat.any(axis=1) & ~newborn
    if fallback.any():
        t[fallback] = np.minimum(np.searchsorted(cat.generic_cdf, d.uniform("case.generic")[fallback], side="right"),
                                 cat.n_templates - 1)
        choose[fallback] = 0
    rows = np.arange(n)
    p = cand_p[rows, choose]
    sex = sex_k[rows, choose]
    birth = birth_k[rows, choose]
    if newborn.any():
        p[newborn] = insured[newborn] + ids[newborn]
        nb_sex, _b, _band = person_core(plan, region[newborn], p[newborn])
        sex[newborn] = nb_sex

    # secondary diagnoses: required by the template first, then drawn
    age_approx = np.where(newborn, 0, (disch - birth) / 365.25)
    cm = plan.province.case_mix
    mean = (cm.secondary_dx_base + cm.secondary_dx_per_decade * age_approx / 10) * plan.grade_secondary_multiplier[grade]
    mean = np.where(newborn, 0.4, mean)
    secs = np.full((n, MAX_SECONDARIES), -1, dtype=np.int64)
    req = cat.t_secs[t]
    n_req = (req >= 0).sum(axis=1)
    secs[:, :req.shape[1]] = req
    n_draw = np.minimum(d.poisson("case.n_secondary", mean, MAX_SECONDARIES), MAX_SECONDARIES - n_req)
    pdx = cat.t_pdx[t].astype(np.int64)
    mcc_drawn = np.zeros(n, dtype=bool)
    cc_drawn = np.zeros(n, dtype=bool)
    for j in range(int(n_draw.max(initial=0))):
        active = n_draw > j
        kind_u = d.uniform(f"case.secondary.kind#{j}")
        code_u = d.uniform(f"case.secondary#{j}")
        is_mcc = active & ~newborn & (kind_u < cm.mcc_share)
        is_cc = active & ~newborn & ~is_mcc & (kind_u < cm.mcc_share + cm.cc_share)
        pool = np.select([newborn, is_mcc, is_cc], [0, 1, 2], 3)
        code = from_pool(cat.pool_secondary, cat.pool_secondary_cdf, (pool + code_u) / 4)
        dup = (code == pdx) | (secs == code[:, None]).any(axis=1)
        ok = active & ~dup
        slot = n_req + j
        secs[rows[ok], slot[ok]] = code[ok]
        mcc_drawn |= is_mcc & ok
        cc_drawn |= is_cc & ok
    # compact the secondary slots (drop holes left by duplicates)
    order = np.argsort(secs < 0, axis=1, kind="stable")
    secs = np.take_along_axis(secs, order, axis=1)

    # procedures: the template's (principal first), then extra non-grouping items
    t_type = cat.t_type[t]
    extra_mean = np.array([cm.extra_procedures.get(k, 0.0) for k in ADRG_TYPES])[t_type]
    n_extra = d.poisson("case.n_extra_procedures", np.where(newborn, 0.3, extra_mean), MAX_EXTRA_PROCEDURES)
    procs = np.full((n, cat.t_procs.shape[1] + MAX_EXTRA_PROCEDURES), -1, dtype=np.int64)
    procs[:, :cat.t_procs.shape[1]] = cat.t_procs[t]
    n_tp = (cat.t_procs[t] >= 0).sum(axis=1)
    for j in range(int(n_extra.max(initial=0))):
        active = n_extra > j
        code = from_pool(cat.pool_proc, cat.pool_proc_cdf, d.uniform(f"case.procedure#{j}"))
        ok = active & ~(procs == code[:, None]).any(axis=1)
        procs[rows[ok], (n_tp + j)[ok]] = code[ok]
    order = np.argsort(procs < 0, axis=1, kind="stable")
    procs = np.take_along_axis(procs, order, axis=1)

    # discharge status, long stays, length of stay
    age_mult = np.select([newborn, age_approx < 15, age_approx < 45, age_approx < 65], [0.2, 0.2, 0.3, 0.8], 2.2)
    p_death = spec.death_share * age_mult
    shares = [(5, p_death), (2, spec.transfer_share), (3, spec.community_transfer_share),
              (4, spec.against_advice_share), (9, spec.other_discharge_share)]
    u_s = d.uniform("case.status")
    status = np.ones(n, dtype=np.int64)
    acc = np.zeros(n)
    for code, share in shares:
        hit = (status == 1) & (u_s >= acc) & (u_s < acc + share)
        status[hit] = code
        acc = acc + share
    long_stay = d.uniform("case.long_stay") < spec.long_stay_share
    split_key = np.where(mcc_drawn, 0, np.where(cc_drawn, 1, 2))
    z_los = d.normal("case.los")
    los, expected_los = _los(plan, t, split_key, status, long_stay, z_los, d, "case")

    return {
        "id": ids, "region": region, "month": month, "disch": disch, "grade": grade, "hospital": hospital,
        "t": t, "newborn": newborn, "p": p, "sex": sex, "birth": birth, "secs": secs, "procs": procs,
        "status": status, "long_stay": long_stay, "split_key": split_key, "z_los": z_los, "los": los,
        "expected_los": expected_los, "adm": disch - los,
    }


def _link_readmissions(plan: GenerationPlan, c: dict) -> None:
    """Turn a share of cases into readmissions of an earlier case (in place)."""
    spec = plan.spec
    ids = c["id"]
    d = Draws(spec.seed, ids)
    cand = (d.uniform("case.readmit") < spec.readmission_share) & ~c["newborn"] & (ids > 0)
    c["parent"] = np.full(len(ids), -1, dtype=np.int64)
    c["parent_month"] = np.zeros(len(ids), dtype=np.int64)
    c["gap"] = np.zeros(len(ids), dtype=np.int64)
    if not cand.any():
        return
    # the earlier stay: one of the previous ~2 months' cases of the same region (ids are laid out by
    # region, then month)
    M = plan.n_months
    region_start = plan.case_block_start[c["region"] * M]
    region_cases = plan.case_block_start[(c["region"] + 1) * M] - region_start
    window = np.maximum(np.ceil(region_cases * READMISSION_MONTHS / M), 1).astype(np.int64)
    cand &= ids > region_start
    idx = np.flatnonzero(cand)
    if not len(idx):
        return
    sub = d.subset(idx)
    parent = ids[idx] - 1 - sub.integers("case.readmit.parent", np.minimum(ids[idx] - region_start[idx], window[idx]))
    pb = _draw_case(plan, parent)
    parent_is_readmission = Draws(spec.seed, parent).uniform("case.readmit") < spec.readmission_share
    within = sub.uniform("case.readmit.within") < spec.readmission_within_15_days_share
    gap = np.where(within, 1 + sub.integers("case.readmit.gap15", 15), 16 + sub.integers("case.readmit.gap90", 75))
    adm = pb["disch"] + gap
    los, expected = _los(plan, pb["t"], pb["split_key"], c["status"][idx], c["long_stay"][idx], c["z_los"][idx],
                         sub, "case.readmit")
    disch = adm + los
    ok = (~pb["newborn"] & ~parent_is_readmission & (pb["region"] == c["region"][idx]) & (disch <= plan.last_day))
    rows = idx[ok]
    for key in ("region", "grade", "hospital", "t", "newborn", "p", "sex", "birth", "secs", "procs", "split_key"):
        c[key][rows] = pb[key][ok]
    c["los"][rows] = los[ok]
    c["expected_los"][rows] = expected[ok]
    c["adm"][rows] = adm[ok]
    c["disch"][rows] = disch[ok]
    y, m, _d = ymd(disch[ok])
    c["month"][rows] = (y - plan.spec.years[0]) * 12 + m - 1
    c["parent"][rows] = parent[ok]
    c["parent_month"][rows] = pb["month"][ok]
    c["gap"][rows] = gap[ok]


def _newborn_and_age(plan: GenerationPlan, c: dict) -> None:
    cat = plan.catalogue
    d = Draws(plan.spec.seed, c["id"])
    t, nb = c["t"], c["newborn"]
    ad = cat.t_ad_min[t] + d.integers("case.age_days", cat.t_ad_max[t].astype(np.int64) - cat.t_ad_min[t] + 1)
    bw_span = np.maximum(cat.t_bw_max[t].astype(np.int64) - cat.t_bw_min[t], 1)
    bw = np.where(cat.t_bw_max[t] > 0, cat.t_bw_min[t] + d.integers("case.birth_weight", bw_span), 0)
    c["birth"] = np.where(nb, c["adm"] - ad, c["birth"])
    c["age_years"] = np.where(nb, 0, completed_years(c["birth"], c["adm"]))
    c["age_days"] = np.where(nb, ad, -1)
    c["birth_weight"] = np.where(nb & (bw > 0), bw, -1)


# ============================================================================ grouping and money


def _group(plan: GenerationPlan, c: dict, pdx_pa, sec_lists, proc_lists) -> pd.DataFrame:
    frame = pd.DataFrame({
        "sex": c["sex"].astype(np.int64),
        "age_years": c["age_years"].astype(np.float64),
        "age_days": np.where(c["age_days"] >= 0, c["age_days"], np.nan),
        "birth_weight_g": np.where(c["birth_weight"] > 0, c["birth_weight"], np.nan),
        "principal_dx": pd.Series(pd.arrays.ArrowExtensionArray(pdx_pa)),
        "secondary_dxs": pd.Series(pd.arrays.ArrowExtensionArray(sec_lists)),
        "procedures": pd.Series(pd.arrays.ArrowExtensionArray(proc_lists)),
    })
    return group_frame(load_compiled(plan.scheme_dir), frame, trace=False)


def _payments(plan: GenerationPlan, total: np.ndarray, c: dict, d: Draws) -> dict:
    """Split integer fen totals into fund / 自付 / 自费 and cost categories (all integer fen)."""
    costs = plan.province.costs
    grade, scheme, t_type = c["grade"], c["scheme"], plan.catalogue.t_type[c["t"]]
    oop_share = np.clip(costs.out_of_pocket_share * (1 + costs.out_of_pocket_spread * (2 * d.uniform("pay.oop") - 1)),
                        0, 0.5)
    oop = np.rint(total * oop_share).astype(np.int64)
    covered = total - oop
    deductible = np.rint(plan.grade_deductible[grade, scheme] * 100).astype(np.int64)
    ratio = plan.grade_reimbursement[grade, scheme]
    above = np.maximum(covered - deductible, 0)
    self_pay = np.minimum(covered, deductible) + np.rint(above * (1 - ratio)).astype(np.int64)
    fund = covered - self_pay
    spread = costs.category_spread
    shares = []
    for name, table in (("drug", costs.drug_share), ("consumable", costs.consumable_share), ("exam", costs.exam_share)):
        base = np.array([table.get(k, 0.0) for k in ADRG_TYPES])[t_type]
        shares.append(np.clip(base * (1 + spread * (2 * d.uniform(f"pay.{name}") - 1)), 0, 1))
    total_share = shares[0] + shares[1] + shares[2]
    scale = np.where(total_share > 0.95, 0.95 / np.maximum(total_share, 1e-9), 1.0)
    drug, consumable, exam = (np.floor(total * s * scale).astype(np.int64) for s in shares)
    return {"total": total, "fund": fund, "self_pay": self_pay, "out_of_pocket": oop, "drug": drug,
            "consumable": consumable, "exam": exam}


def _costs(plan: GenerationPlan, c: dict, grouped: pd.DataFrame) -> None:
    cat, costs = plan.catalogue, plan.province.costs
    d = Draws(plan.spec.seed, c["id"])
    drg_index = pd.Index(cat.drg_codes).get_indexer(grouped["drg"].to_numpy(dtype=object))
    drg_index = np.where(drg_index < 0, len(cat.drg_codes), drg_index)
    true_mean = cat.drg_true_cost[drg_index]
    beta, sl, sc = costs.los_cost_elasticity, costs.case_los_sigma, costs.case_sigma
    eps = np.exp(beta * sl * c["z_los"] - (beta * sl) ** 2 / 2) * np.exp(sc * d.normal("case.cost") - sc ** 2 / 2)
    status_factor = np.ones(len(eps))
    for code, f in costs.status_cost_factor.items():
        status_factor[c["status"] == int(code)] = f
    long_factor = np.where(c["long_stay"], c["los"] / np.maximum(c["expected_los"], 1.0), 1.0)
    cost = (true_mean * plan.hospital_cost_multiplier[c["hospital"]] * plan.region_price[c["region"]]
            * plan.month_inflation[c["month"]] * eps * status_factor * long_factor)
    total = np.maximum(np.rint(cost * 100).astype(np.int64), 100)
    c["pay"] = _payments(plan, total, c, d)
    # a resubmission's corrected version 2: the audited total, 85-97 % of the first
    factor = 0.85 + 0.12 * d.uniform("case.resubmission.factor")
    c["pay_v2"] = _payments(plan, np.maximum(np.rint(total * factor).astype(np.int64), 100), c, d)


# ============================================================================ rendering


def case_facts(plan: GenerationPlan, ids: np.ndarray, *, costs: bool = True) -> tuple[dict, pd.DataFrame, tuple]:
    """The clinical facts of cases ``ids`` (numpy arrays), their grouping, and the Arrow code columns
    used to group them (principal dx, secondary dx lists, procedure lists)."""
    ids = np.asarray(ids, dtype=np.int64)
    cat = plan.catalogue
    c = _draw_case(plan, ids)
    _link_readmissions(plan, c)
    _newborn_and_age(plan, c)
    c.update(person_details(plan, c["region"], c["p"], c["birth"], c["newborn"]))
    dx_vocab = pa.array(cat.dx_codes.tolist(), type=pa.string())
    px_vocab = pa.array(cat.px_codes.tolist(), type=pa.string())
    pdx_pa = dx_vocab.take(pa.array(cat.t_pdx[c["t"]].astype(np.int64)))
    sec = code_lists(dx_vocab, c["secs"])
    proc = code_lists(px_vocab, c["procs"])
    grouped = _group(plan, c, pdx_pa, sec[0], proc[0])
    if costs:
        _costs(plan, c, grouped)
    return c, grouped, (pdx_pa, sec, proc)


def generate_batch(plan: GenerationPlan, ids: np.ndarray) -> pa.Table:
    """All drop rows of the cases ``ids`` (a pure function of the plan and the ids)."""
    ids = np.asarray(ids, dtype=np.int64)
    cat = plan.catalogue
    c, grouped, (pdx_pa, (_sec_lists, sec_text), (_proc_lists, proc_text)) = case_facts(plan, ids)

    n = len(ids)
    d = Draws(plan.spec.seed, ids)
    hosp = c["hospital"]
    date_style = plan.hospital_date_style[hosp]
    region_codes = pa.array(plan.region_codes, type=pa.string())
    region_pa = region_codes.take(pa.array(c["region"]))
    y, m, _day = ymd(c["disch"])
    yyyymm = join(int_str(y), pc.utf8_lpad(int_str(m), 2, "0"))
    claim_id = join(region_pa, yyyymm, pc.utf8_lpad(int_str(ids), 12, "0"))
    quirk = np.where(d.uniform("case.quirk") < plan.spec.quirk_share, 1 + d.integers("case.quirk.kind", 4), 0)
    sex_style = plan.hospital_sex_style[hosp]
    t = c["t"]
    surgical = (cat.t_type[t] != ADRG_TYPES.index("medical")).astype(np.int64)
    dept = plan.dept_of_mdc[cat.t_mdc[t], surgical]
    n_styles, n_wards = 4, 3
    dept_label = (dept * n_styles + plan.hospital_dept_style[hosp]) * n_wards + (hosp % n_wards)
    pay = c["pay"]
    null_int = lambda arr, keep: pc.if_else(pa.array(keep), int_str(arr), pa.scalar(None, pa.string()))  # noqa: E731

    raw = {
        "claim_id": claim_id,
        "claim_version": pa.array(["1"] * n, type=pa.string()),
        "region": region_pa,
        "hospital_id": pa.array(plan.hospital_ids, type=pa.string()).take(pa.array(hosp)),
        "person_id": person_ids(plan, c["region"], c["p"]),
        "national_id": national_ids(plan, c["region"], c["county"], c["birth"], c["seq"], c["sex"]),
        "insurance_scheme": pa.array(["职工", "居民"], type=pa.string()).take(pa.array(c["scheme"].astype(np.int64))),
        "sex": pa.array(["1", "2", "男", "女"], type=pa.string()).take(
            pa.array((c["sex"].astype(np.int64) - 1) + 2 * sex_style)),
        "birth_date": date_str(c["birth"], date_style),
        "age_years": int_str(c["age_years"]),
        "age_days": null_int(c["age_days"], c["age_days"] >= 0),
        "birth_weight_g": null_int(c["birth_weight"], c["birth_weight"] > 0),
        "admission_date": date_str(c["adm"], date_style),
        "discharge_date": date_str(c["disch"], date_style),
        "los_days": int_str(c["los"]),
        "discharge_status": int_str(c["status"]),
        "dept": pa.array(plan.dept_labels, type=pa.string()).take(pa.array(dept_label)),
        "principal_dx": apply_code_quirks(pdx_pa, quirk),
        "secondary_dxs": apply_code_quirks(sec_text, quirk),
        "procedures": apply_code_quirks(proc_text, quirk),
        "total_cost": money_str(pay["total"]),
        "fund_paid": money_str(pay["fund"]),
        "self_pay": money_str(pay["self_pay"]),
        "out_of_pocket": money_str(pay["out_of_pocket"]),
        "drug_cost": money_str(pay["drug"]),
        "consumable_cost": money_str(pay["consumable"]),
        "exam_cost": money_str(pay["exam"]),
    }
    months = pa.array(plan.months, type=pa.string())
    has_parent = c["parent"] >= 0
    parent_claim = join(region_pa, pc.replace_substring(months.take(pa.array(c["parent_month"])), "-", ""),
                        pc.utf8_lpad(int_str(np.maximum(c["parent"], 0)), 12, "0"))
    meta = {
        "case_id": pa.array(ids),
        "drop_region": region_pa,
        "drop_month": months.take(pa.array(c["month"])),
        "drop_format": pa.array(np.where(plan.region_csv[c["region"]], "csv", "parquet").tolist(), type=pa.string()),
        "row_role": pa.array([ROW_ORIGINAL] * n, type=pa.string()),
        "case_kind": pa.array([_KIND_NAMES[k] for k in range(3)], type=pa.string()).take(
            pa.array(cat.t_kind[t].astype(np.int64))),
        "case_mdc": pa.array(grouped["mdc"].to_numpy(dtype=object), type=pa.string()),
        "case_adrg": pa.array(grouped["adrg"].to_numpy(dtype=object), type=pa.string()),
        "case_drg": pa.array(grouped["drg"].to_numpy(dtype=object), type=pa.string()),
        "case_status": pa.array(grouped["status"].to_numpy(dtype=object), type=pa.string()),
        "readmission_of": pc.if_else(pa.array(has_parent), parent_claim, pa.scalar(None, pa.string())),
        "readmission_gap_days": pa.array(np.where(has_parent, c["gap"], 0).astype(np.int32),
                                         mask=~has_parent),
    }
    return plant_defects(plan, c, raw, meta)


def _batches(plan: GenerationPlan):
    schema = _arrow_schema()

    def run(batches):
        for batch in batches:
            ids = batch.column(0).to_numpy(zero_copy_only=False)
            if not len(ids):
                continue
            table = generate_batch(plan, ids).select(schema.names).cast(schema)
            yield from table.to_batches()

    return run


def generate_inpatient(spark: SparkSession, plan: GenerationPlan) -> DataFrame:
    """The inpatient drop rows of the plan: raw columns (strings) + :data:`META_COLUMNS`.

    Lazy: nothing is computed until an action. Deterministic: the same plan gives the same rows whatever
    ``plan.partitions`` is (row order aside).
    """
    ids = spark.range(0, plan.spec.n_cases, 1, plan.partitions)
    return ids.mapInArrow(_batches(plan), inpatient_schema())
