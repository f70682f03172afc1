"""Outpatient visits (门诊): ``outpatient_multiple`` x the inpatient volume, as Parquet drops.

Written under ``<drops root>/outpatient/region=<region code>/month=<YYYY-MM>/*.parquet`` (month = visit
month), one row per visit, every column a string (null = empty). Columns, in order:

=================  =========================  =====================================================
column             field                      content
=================  =========================  =====================================================
就诊流水号          visit_id                   ``MZ`` + region + visit ``YYYYMM`` + 13-digit visit number
统筹区              region                     region code, as the folder
医疗机构编码        hospital_id                the institution visited (same ids as the inpatient drops)
人员编号            person_id                  the insured person (same person as in the inpatient drops)
身份证号            national_id                18-character national id (fake, valid-looking)
险种                insurance_scheme           职工 (employee) / 居民 (resident)
性别                sex                        1 male / 2 female
出生日期            birth_date                 ``yyyy-MM-dd``
年龄                age_years                  completed years at the visit
就诊日期            visit_date                 ``yyyy-MM-dd``
诊断                diagnosis                  ICD-10 医保版 2.0 code (known to the code book)
服务项目            service_items              procedures / service items (ICD-9-CM-3 codes), ``|``-separated, may be empty
总费用              total_cost                 yuan with 2 decimals
基金支付            fund_paid                  fund-paid part
个人自付            self_pay                   patient's co-payment on covered items
个人自费            out_of_pocket              items outside the catalogue
签约家庭医生        family_doctor_signed       ``是`` / ``否``: the person signed with a family doctor
签约机构编码        contracted_institution     the contracted institution (signed people only)
=================  =========================  =====================================================

``总费用 = 基金支付 + 个人自付 + 个人自费`` exactly. Outpatient drops carry neither source-format quirks nor
planted defects (yet). Signed people make ``signed_visits_at_contracted`` of their visits at their
contracted institution; other visits go to a hospital of the region by the grades' outpatient shares.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StringType, StructField, StructType

from casemix.generate.dates import completed_years, ymd
from casemix.generate.people import national_ids, person_core, person_details, person_ids
from casemix.generate.plan import GenerationPlan
from casemix.generate.rng import Draws, from_pool
from casemix.generate.text import code_lists, date_str, int_str, join, money_str

__all__ = ["OUTPATIENT_COLUMNS", "generate_outpatient", "generate_visit_batch", "outpatient_schema"]

#: Chinese column name in an outpatient drop -> field name (order = column order)
OUTPATIENT_COLUMNS: dict[str, str] = {
    "就诊流水号": "visit_id",
    "统筹区": "region",
    "医疗机构编码": "hospital_id",
    "人员编号": "person_id",
    "身份证号": "national_id",
    "险种": "insurance_scheme",
    "性别": "sex",
    "出生日期": "birth_date",
    "年龄": "age_years",
    "就诊日期": "visit_date",
    "诊断": "diagnosis",
    "服务项目": "service_items",
    "总费用": "total_cost",
    "基金支付": "fund_paid",
    "个人自付": "self_pay",
    "个人自费": "out_of_pocket",
    "签约家庭医生": "family_doctor_signed",
    "签约机构编码": "contracted_institution",
}
VISIT_META = ("drop_region", "drop_month")
PERSON_CANDIDATES = 4
MAX_ITEMS = 4


def outpatient_schema() -> StructType:
    return StructType([StructField(n, StringType(), True) for n in (*OUTPATIENT_COLUMNS, *VISIT_META)])


def generate_visit_batch(plan: GenerationPlan, ids: np.ndarray) -> pa.Table:
    """The outpatient rows of visits ``ids`` (pure function of the plan and the ids)."""
    ids = np.asarray(ids, dtype=np.int64)
    spec, cat = plan.spec, plan.catalogue
    n = len(ids)
    d = Draws(spec.seed, ids)
    M = plan.n_months
    block = np.searchsorted(plan.visit_block_start, ids, side="right") - 1
    region, month = block // M, block % M
    day = plan.month_first_day[month] + d.integers("visit.day", plan.month_days[month])

    K = PERSON_CANDIDATES
    kd = Draws(spec.seed, (ids[:, None] * K + np.arange(K)).ravel())
    insured = plan.region_insured[region]
    cand = np.minimum(np.floor(kd.uniform("visit.person").reshape(n, K) * insured[:, None]).astype(np.int64),
                      insured[:, None] - 1)
    sex_k, birth_k, band_k = person_core(plan, np.broadcast_to(region[:, None], (n, K)), cand)
    accept = kd.uniform("visit.accept").reshape(n, K) < plan.age_band_outpatient_accept[band_k]
    choose = np.where(accept.any(axis=1), accept.argmax(axis=1), 0)
    rows = np.arange(n)
    p, sex, birth = cand[rows, choose], sex_k[rows, choose], birth_k[rows, choose]
    det = person_details(plan, region, p, birth, np.zeros(n, dtype=bool))

    at_contracted = det["signed"] & (d.uniform("visit.at_contracted") < plan.province.outpatient.signed_visits_at_contracted)
    grade = d.choice_rows("visit.grade", plan.region_visit_grade_cdf, region)
    hospital = plan.hospital_start[region, grade] + d.integers("visit.hospital", plan.hospital_count[region, grade])
    hospital = np.where(at_contracted, det["contracted"], hospital)
    grade = plan.hospital_grade[hospital].astype(np.int64)

    dx = from_pool(cat.pool_outpatient_dx, cat.pool_outpatient_dx_cdf, d.uniform("visit.dx"))
    n_items = d.poisson("visit.n_items", plan.province.outpatient.service_items_mean, MAX_ITEMS)
    items = np.full((n, MAX_ITEMS), -1, dtype=np.int64)
    for j in range(int(n_items.max(initial=0))):
        code = from_pool(cat.pool_proc, cat.pool_proc_cdf, d.uniform(f"visit.item#{j}"))
        ok = (n_items > j) & ~(items == code[:, None]).any(axis=1)
        items[ok, j] = code[ok]
    items = np.take_along_axis(items, np.argsort(items < 0, axis=1, kind="stable"), axis=1)

    op = plan.province.outpatient
    type_mult = plan.hospital_cost_multiplier[hospital] / plan.grade_cost_multiplier[grade]
    sigma = op.cost_sigma
    cost = (plan.grade_visit_mean_cost[grade] * type_mult * plan.region_price[region] * plan.month_inflation[month]
            * np.exp(sigma * d.normal("visit.cost") - sigma ** 2 / 2))
    total = np.maximum(np.rint(cost * 100).astype(np.int64), 100)
    oop = np.rint(total * op.out_of_pocket_share * (0.5 + d.uniform("visit.oop"))).astype(np.int64)
    covered = total - oop
    scheme = det["scheme"].astype(np.int64)
    fund = np.rint(covered * plan.grade_visit_reimbursement[grade, scheme]).astype(np.int64)
    self_pay = covered - fund

    region_pa = pa.array(plan.region_codes, type=pa.string()).take(pa.array(region))
    y, m, _ = ymd(day)
    iso = np.zeros(n, dtype=np.int64)  # outpatient drops: yyyy-MM-dd only
    hospitals = pa.array(plan.hospital_ids, type=pa.string())
    _lists, items_text = code_lists(pa.array(cat.px_codes.tolist(), type=pa.string()), items)
    signed = det["signed"]
    columns = {
        "就诊流水号": join("MZ", region_pa, int_str(y), pc.utf8_lpad(int_str(m), 2, "0"),
                      pc.utf8_lpad(int_str(ids), 13, "0")),
        "统筹区": region_pa,
        "医疗机构编码": hospitals.take(pa.array(hospital)),
        "人员编号": person_ids(plan, region, p),
        "身份证号": national_ids(plan, region, det["county"], birth, det["seq"], sex),
        "险种": pa.array(["职工", "居民"], type=pa.string()).take(pa.array(scheme)),
        "性别": int_str(sex),
        "出生日期": date_str(birth, iso),
        "年龄": int_str(completed_years(birth, day)),
        "就诊日期": date_str(day, iso),
        "诊断": pa.array(cat.dx_codes.tolist(), type=pa.string()).take(pa.array(dx.astype(np.int64))),
        "服务项目": items_text,
        "总费用": money_str(total),
        "基金支付": money_str(fund),
        "个人自付": money_str(self_pay),
        "个人自费": money_str(oop),
        "签约家庭医生": pa.array(np.where(signed, "是", "否").tolist(), type=pa.string()),
        "签约机构编码": pc.if_else(pa.array(signed), hospitals.take(pa.array(det["contracted"])),
                              pa.scalar(None, pa.string())),
        "drop_region": region_pa,
        "drop_month": pa.array(plan.months, type=pa.string()).take(pa.array(month)),
    }
    return pa.table(columns)


def _batches(plan: GenerationPlan):
    names = [f.name for f in outpatient_schema().fields]

    def run(batches):
        for batch in batches:
            ids = batch.column(0).to_numpy(zero_copy_only=False)
            if len(ids):
                yield from generate_visit_batch(plan, ids).select(names).to_batches()

    return run


def generate_outpatient(spark: SparkSession, plan: GenerationPlan) -> DataFrame:
    """The outpatient visit rows of the plan (columns :data:`OUTPATIENT_COLUMNS` + drop_region, drop_month)."""
    ids = spark.range(0, plan.spec.n_visits, 1, plan.visit_partitions)
    return ids.mapInArrow(_batches(plan), outpatient_schema())
