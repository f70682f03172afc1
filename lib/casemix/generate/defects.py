"""Deliberately bad records: each planted so that exactly its reason code of casemix.ingest.raw applies.

A share ``bad_record_share`` of cases (a hash of the case id) gets one defect kind of
:data:`casemix.ingest.raw.DEFECT_KINDS`, drawn with the spec's ``defect_weights`` among the kinds that
can apply to the case (``malformed_csv_row`` only in CSV regions, where it is boosted so that its overall
share still follows its weight; ``newborn_dx_adult`` only for adults; ``resubmission`` not in the last
generated month). What each kind does to the raw record, and nothing else:

=========================  ======================================================================
missing_principal_dx       主要诊断 empty
unknown_dx_code            主要诊断 a code outside the code book even after its map (a letter O typed
                           for a zero, e.g. ``K40.3O6``, or a local code ``ZZ3.039``)
discharge_before_admission 入院日期 1-10 days after 出院日期 (same date format)
negative_cost              个人自付 negative
non_numeric_cost           药品费, 耗材费 or 检查费 is text (``待定``, ``见明细``, ...)
fund_exceeds_total         基金支付 above 总费用
sex_dx_mismatch            主要诊断 a male-only code for a woman / female-only for a man
newborn_dx_adult           主要诊断 a perinatal (newborn-only) code for a person aged 18 or more
duplicate_claim_id         an exact second copy of the row in the same drop
resubmission               version 1 in the discharge month's drop, a corrected version 2 (85-97 % of
                           the cost, same claim id) in the next month's drop of the region; version 1
                           must end up superseded, not rejected
malformed_csv_row          (CSV regions) the line is cut after its first 3-20 fields
wrong_type                 年龄 in Chinese numerals (``三十二``), 住院天数 with a unit (``12天``), or
                           出生日期 on February 30th
=========================  ======================================================================

The codes used for sex/newborn defects are known to the code book, in exactly one of its implausibility
sets, and unchanged by :func:`casemix.codes.normalise_code`.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from casemix.generate.rng import Draws
from casemix.generate.text import date_str, impossible_date_str, int_str, join, money_str
from casemix.ingest.raw import DEFECT_KINDS, FIELD_TO_RAW

__all__ = ["plant_defects", "choose_kinds", "may_be_defective", "DEFECT_FIELDS", "NON_NUMERIC_TEXTS", "KINDS"]

KINDS = tuple(DEFECT_KINDS)
#: the field each kind alters (None: the whole row)
DEFECT_FIELDS = {
    "missing_principal_dx": "principal_dx", "unknown_dx_code": "principal_dx",
    "discharge_before_admission": "admission_date", "negative_cost": "self_pay", "non_numeric_cost": None,
    "fund_exceeds_total": "fund_paid", "sex_dx_mismatch": "principal_dx", "newborn_dx_adult": "principal_dx",
    "duplicate_claim_id": None, "resubmission": None, "malformed_csv_row": None, "wrong_type": None,
}
NON_NUMERIC_TEXTS = ("待定", "见明细", "壹仟贰佰元整", "约1200元")
_NON_NUMERIC_FIELDS = ("drug_cost", "consumable_cost", "exam_cost")
_WRONG_TYPE_FIELDS = ("age_years", "los_days", "birth_date")
_NULL = pa.scalar(None, pa.string())
MONEY_KEYS = {"total_cost": "total", "fund_paid": "fund", "self_pay": "self_pay", "out_of_pocket": "out_of_pocket",
              "drug_cost": "drug", "consumable_cost": "consumable", "exam_cost": "exam"}


def _csv_boost(weights: np.ndarray, csv_share: float) -> float:
    """Factor b on the weight w of malformed_csv_row in CSV regions such that its overall share is
    w / W: solves s b w / (W_o + b w) = w / (W_o + w) for b, with s the CSV share of cases and W_o the
    other kinds' weight (capped when the CSV regions are too small to reach the share)."""
    wm = weights[KINDS.index("malformed_csv_row")]
    wo = weights.sum() - wm
    if wm <= 0 or csv_share <= 0:
        return 0.0
    denom = csv_share * wo - (1 - csv_share) * wm
    return float(min(wo / denom, 1000.0)) if denom > 0 else 1000.0


def may_be_defective(plan, ids: np.ndarray) -> np.ndarray:
    """The cases drawn to carry a defect (from the ids alone; a few of them end up clean when no kind
    can apply to them)."""
    if plan.spec.bad_record_share <= 0:
        return np.zeros(len(ids), dtype=bool)
    return Draws(plan.spec.seed, ids).uniform("defect") < plan.spec.bad_record_share


def choose_kinds(plan, c: dict) -> np.ndarray:
    """Defect kind index per case (-1: clean).

    Drawn per case from the kinds that can apply to it, weighted so that every kind's overall share
    follows ``defect_weights``: ``malformed_csv_row`` (possible only in CSV regions) is boosted there
    (:func:`_csv_boost`).
    """
    spec = plan.spec
    n = len(c["id"])
    kind = np.full(n, -1, dtype=np.int64)
    weights = np.array([spec.defect_weights[k] for k in KINDS])
    if spec.bad_record_share <= 0 or weights.sum() <= 0:
        return kind
    d = Draws(spec.seed, c["id"])
    bad = np.flatnonzero(may_be_defective(plan, c["id"]))
    if not len(bad):
        return kind
    w = np.broadcast_to(weights, (len(bad), len(KINDS))).copy()
    csv = plan.region_csv[c["region"][bad]]
    w[:, KINDS.index("malformed_csv_row")] *= np.where(csv, _csv_boost(weights, plan.csv_case_share), 0.0)
    w[:, KINDS.index("newborn_dx_adult")] *= c["age_years"][bad] >= 18
    w[:, KINDS.index("resubmission")] *= c["month"][bad] < plan.n_months - 1
    total = w.sum(axis=1)
    cum = np.cumsum(w, axis=1)
    u = d.subset(bad).uniform("defect.kind") * total
    pick = np.minimum((u[:, None] >= cum).sum(axis=1), len(KINDS) - 1)
    kind[bad] = np.where(total > 0, pick, -1)
    return kind


def _put(raw: dict, field: str, mask: np.ndarray, values: pa.Array) -> None:
    """Replace ``raw[field]`` at ``mask`` by ``values`` (one value per masked row)."""
    raw[field] = pc.replace_with_mask(raw[field], pa.array(mask), values.cast(pa.string()))


def plant_defects(plan, c: dict, raw: dict, meta: dict) -> pa.Table:
    """Plant the defects into the rendered rows; returns the batch's table (originals, then the second
    copies of duplicates, then the version-2 rows of resubmissions)."""
    cat = plan.catalogue
    ids = c["id"]
    n = len(ids)
    d = Draws(plan.spec.seed, ids)
    kind = choose_kinds(plan, c)
    is_kind = {k: kind == i for i, k in enumerate(KINDS)}
    field = np.full(n, None, dtype=object)
    style = plan.hospital_date_style[c["hospital"]]
    csv_fields = np.full(n, -1, dtype=np.int64)

    def sub(mask):
        return d.subset(np.flatnonzero(mask))

    m = is_kind["missing_principal_dx"]
    if m.any():
        raw["principal_dx"] = pc.if_else(pa.array(m), _NULL, raw["principal_dx"])
    m = is_kind["unknown_dx_code"]
    if m.any():
        codes = pa.array(cat.defect_unknown_dx, type=pa.string())
        _put(raw, "principal_dx", m, codes.take(pa.array(sub(m).integers("defect.unknown", len(codes)))))
    m = is_kind["discharge_before_admission"]
    if m.any():
        adm = c["disch"][m] + 1 + sub(m).integers("defect.admission", 10)
        _put(raw, "admission_date", m, date_str(adm, style[m]))
    m = is_kind["negative_cost"]
    if m.any():
        _put(raw, "self_pay", m, money_str(-np.maximum(c["pay"]["self_pay"][m], 1500)))
    m = is_kind["non_numeric_cost"]
    if m.any():
        s = sub(m)
        which = s.integers("defect.non_numeric.field", len(_NON_NUMERIC_FIELDS))
        text = pa.array(NON_NUMERIC_TEXTS, type=pa.string()).take(
            pa.array(s.integers("defect.non_numeric.text", len(NON_NUMERIC_TEXTS))))
        rows = np.flatnonzero(m)
        for fi, name in enumerate(_NON_NUMERIC_FIELDS):
            sel = which == fi
            if sel.any():
                mask = np.zeros(n, dtype=bool)
                mask[rows[sel]] = True
                _put(raw, name, mask, text.filter(pa.array(sel)))
                field[rows[sel]] = name
    m = is_kind["fund_exceeds_total"]
    if m.any():
        over = 100 + sub(m).integers("defect.fund_over", 50_000)
        _put(raw, "fund_paid", m, money_str(c["pay"]["total"][m] + over))
    m = is_kind["sex_dx_mismatch"]
    if m.any():
        s = sub(m)
        woman = c["sex"][m] == 2
        male_codes = cat.defect_male_only_dx[s.integers("defect.sex.male", len(cat.defect_male_only_dx))]
        female_codes = cat.defect_female_only_dx[s.integers("defect.sex.female", len(cat.defect_female_only_dx))]
        codes = np.where(woman, male_codes, female_codes).astype(np.int64)
        _put(raw, "principal_dx", m, pa.array(cat.dx_codes[codes].tolist(), type=pa.string()))
    m = is_kind["newborn_dx_adult"]
    if m.any():
        codes = cat.defect_newborn_dx[sub(m).integers("defect.newborn", len(cat.defect_newborn_dx))]
        _put(raw, "principal_dx", m, pa.array(cat.dx_codes[codes].tolist(), type=pa.string()))
    m = is_kind["wrong_type"]
    if m.any():
        s = sub(m)
        which = s.integers("defect.wrong_type.field", len(_WRONG_TYPE_FIELDS))
        rows = np.flatnonzero(m)
        numerals = pa.array(plan.chinese_numerals, type=pa.string())
        values = {
            "age_years": numerals.take(pa.array(np.clip(c["age_years"][m], 0, len(plan.chinese_numerals) - 1))),
            "los_days": join(int_str(c["los"][m]), "天"),
            "birth_date": impossible_date_str(c["birth"][m], style[m]),
        }
        for fi, name in enumerate(_WRONG_TYPE_FIELDS):
            sel = which == fi
            if sel.any():
                mask = np.zeros(n, dtype=bool)
                mask[rows[sel]] = True
                _put(raw, name, mask, values[name].filter(pa.array(sel)))
                field[rows[sel]] = name
    m = is_kind["malformed_csv_row"]
    if m.any():
        csv_fields[m] = 3 + sub(m).integers("defect.csv_fields", 18)
    for k, f in DEFECT_FIELDS.items():
        if f is not None:
            field[is_kind[k]] = f

    kinds_pa = pa.array(list(KINDS), type=pa.string())
    has = kind >= 0
    meta = dict(meta)
    meta["defect_kind"] = pc.if_else(pa.array(has), kinds_pa.take(pa.array(np.maximum(kind, 0))), _NULL)
    meta["defect_field"] = pa.array(field.tolist(), type=pa.string())
    meta["expected_reason"] = pc.if_else(
        pa.array(has), pa.array([DEFECT_KINDS[k] for k in KINDS], type=pa.string()).take(pa.array(np.maximum(kind, 0))),
        _NULL)
    meta["csv_fields"] = pa.array(csv_fields.astype(np.int32), mask=csv_fields < 0)
    columns = {FIELD_TO_RAW[k]: v for k, v in raw.items()}
    columns.update(meta)
    table = pa.table(columns)

    parts = [table]
    dup = np.flatnonzero(is_kind["duplicate_claim_id"])
    if len(dup):
        copy = table.take(pa.array(dup))
        parts.append(copy.set_column(copy.schema.get_field_index("row_role"), "row_role",
                                     pa.array(["duplicate"] * len(dup), type=pa.string())))
    res = np.flatnonzero(is_kind["resubmission"])
    if len(res):
        v2 = table.take(pa.array(res))

        def setcol(t, name, values):
            return t.set_column(t.schema.get_field_index(name), name, values)

        v2 = setcol(v2, FIELD_TO_RAW["claim_version"], pa.array(["2"] * len(res), type=pa.string()))
        for raw_field, key in MONEY_KEYS.items():
            v2 = setcol(v2, FIELD_TO_RAW[raw_field], money_str(c["pay_v2"][key][res]))
        v2 = setcol(v2, "drop_month", pa.array(plan.months, type=pa.string()).take(pa.array(c["month"][res] + 1)))
        v2 = setcol(v2, "row_role", pa.array(["resubmission"] * len(res), type=pa.string()))
        for name in ("defect_kind", "defect_field", "expected_reason"):
            v2 = setcol(v2, name, pa.nulls(len(res), pa.string()))
        parts.append(v2)
    return pa.concat_tables(parts) if len(parts) > 1 else table
