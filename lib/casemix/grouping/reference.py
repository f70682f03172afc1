"""Per-record pure-Python reference grouper (benchmark baseline and cross-check oracle).

Deliberately simple and independent of :mod:`casemix.grouping.compile` /
:mod:`casemix.grouping.core`: it walks the loaded :class:`~casemix.grouping.scheme.Scheme`
directly with a recursive rule interpreter over Python sets, following the driver
pseudo-code of the scheme README line by line.  Same input fields, output fields and
trace format as :func:`casemix.grouping.core.group_frame`.
"""
from __future__ import annotations

import math
import weakref
from typing import Any

import pandas as pd

from .scheme import SURGICAL_LIST, Cond, QYCheck, Scheme

__all__ = ["group_record"]

_SEX = {"1": "1", "2": "2", "M": "1", "F": "2", "m": "1", "f": "2", "男": "1", "女": "2"}
_REASONS = ("MISSING_PRINCIPAL_DX", "BAD_SEX", "MISSING_AGE", "MISSING_AGE_DAYS", "MISSING_BIRTH_WEIGHT",
            "UNKNOWN_DX_CODE", "UNKNOWN_PROC_CODE")


class _Helper:
    """Sets derived once per scheme object."""

    def __init__(self, scheme: Scheme):
        self.scheme = scheme
        self.sets: dict = {}
        dx_lists, px_lists = [], []

        def walk(cond: Cond, owner):
            if cond.op in ("principal_dx_in", "any_dx_in", "secondary_dx_in"):
                dx_lists.append(self.codes(owner, cond.list_name))
            elif cond.op in ("principal_proc_in", "any_proc_in"):
                px_lists.append(self.codes(owner, cond.list_name))
            for ch in cond.children:
                walk(ch, owner)

        for m in scheme.mdcs:
            walk(m.entry, ("mdc", m.mdc))
            for item in m.sequence:
                if isinstance(item, QYCheck):
                    walk(item.when, ("mdc", m.mdc))
        for r in scheme.rules.values():
            walk(r.when, ("rule", r.rule_id))
        known_dx = set(scheme.diagnoses) | set(scheme.mcc) | set(scheme.cc) | set(scheme.principal_exclusion)
        for s in dx_lists:
            known_dx |= s
        for m in scheme.mdcs:
            for _site, codes in m.trauma_sites or ():
                known_dx |= set(codes)
        known_px = set(scheme.procedures) | set(scheme.surgical)
        for s in px_lists:
            known_px |= s
        for d in scheme.drg_splits.values():
            if d.split.kind == "procs_include_all":
                known_px |= set(d.split.value)
        self.known_dx = known_dx
        self.known_px = known_px
        self.site_of = {m.mdc: m.trauma_site_of() for m in scheme.mdcs if m.trauma_sites is not None}

    def codes(self, owner, name) -> frozenset:
        key = (owner, name)
        if key not in self.sets:
            if name == SURGICAL_LIST:
                self.sets[key] = frozenset(self.scheme.surgical)
            elif owner[0] == "mdc":
                self.sets[key] = frozenset(self.scheme.mdc(owner[1]).lists[name])
            else:
                self.sets[key] = frozenset(self.scheme.rules[owner[1]].lists[name])
        return self.sets[key]


_HELPERS: "weakref.WeakKeyDictionary[Scheme, _Helper]" = weakref.WeakKeyDictionary()


def _helper(scheme: Scheme) -> _Helper:
    h = _HELPERS.get(scheme)
    if h is None:
        h = _HELPERS[scheme] = _Helper(scheme)
    return h


# ----------------------------------------------------------------------------- field parsing


def _is_null(v) -> bool:
    """None, NaN, pd.NA, NaT (scalars only)."""
    if v is None:
        return True
    if isinstance(v, (str, bytes, list, tuple, dict, set)) or hasattr(v, "__array__") and getattr(v, "ndim", 0) > 0:
        return False
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _num(v) -> float | None:
    if _is_null(v):
        return None
    if isinstance(v, bool):
        return float(v)
    try:
        x = float(v.strip()) if isinstance(v, str) else float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(x) else x


def _sex(v) -> str | None:
    if _is_null(v):
        return None
    if isinstance(v, str):
        return _SEX.get(v.strip())
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return "1" if x == 1 else "2" if x == 2 else None


def _code_list(v) -> list[str]:
    """A list-like of codes or a '|'-separated string -> stripped, non-empty codes."""
    if _is_null(v):
        return []
    items = v.split("|") if isinstance(v, str) else list(v)
    out = []
    for it in items:
        if _is_null(it):
            continue
        it = str(it).strip()
        if it:
            out.append(it)
    return out


# ----------------------------------------------------------------------------- grouping


class _Rec:
    def __init__(self, sex, age, age_days, weight, dept, dxs, procs):
        self.sex = sex
        self.age = age
        self.age_days = age_days
        self.weight = weight
        self.dept = dept
        self.dxs = dxs
        self.procs = procs


def _holds(h: _Helper, cond: Cond, owner, mdc: str, r: _Rec) -> bool:
    op = cond.op
    if op == "always":
        return True
    if op == "all":
        return all(_holds(h, c, owner, mdc, r) for c in cond.children)
    if op == "any":
        return any(_holds(h, c, owner, mdc, r) for c in cond.children)
    if op == "not":
        return not _holds(h, cond.children[0], owner, mdc, r)
    if op == "principal_dx_in":
        return r.dxs[0] in h.codes(owner, cond.list_name)
    if op == "any_dx_in":
        s = h.codes(owner, cond.list_name)
        return any(d in s for d in r.dxs)
    if op == "secondary_dx_in":
        s = h.codes(owner, cond.list_name)
        return any(d in s for d in r.dxs[1:])
    if op == "principal_proc_in":
        return len(r.procs) > 0 and r.procs[0] in h.codes(owner, cond.list_name)
    if op == "any_proc_in":
        s = h.codes(owner, cond.list_name)
        return any(p in s for p in r.procs)
    if op == "age_years_eq":
        return r.age == cond.value
    if op == "age_days_lte":
        return r.age_days is not None and r.age_days <= cond.value
    if op == "birth_weight_gte":
        return bool(r.weight) and r.weight >= cond.value
    if op == "birth_weight_lt":
        return bool(r.weight) and r.weight < cond.value
    if op == "sex_eq":
        return r.sex == cond.value
    if op == "trauma_sites_min":
        site_of = h.site_of[mdc]
        sites = {site_of[d] for d in r.dxs if d in site_of}
        return len(sites) >= cond.value
    raise ValueError(f"unknown rule term {op!r}")


def _split_holds(split, r: _Rec, has_mcc: bool, has_cc: bool) -> bool:
    k = split.kind
    if k == "always":
        return True
    if k == "mcc":
        return has_mcc
    if k == "mcc_or_cc":
        return has_mcc or has_cc
    if k == "age_years_lt":
        return r.age < split.value
    if k == "dept_eq":
        return r.dept == split.value
    if k == "procs_include_all":
        return all(c in r.procs for c in split.value)
    raise ValueError(f"unknown split predicate {k!r}")


def _run(scheme: Scheme, h: _Helper, r: _Rec, has_mcc, has_cc, cc_code):
    """One pass of the driver: returns (mdc, adrg, drg, status, trace segments)."""
    segs: list[str] = []
    for m in scheme.mdcs:
        mowner = ("mdc", m.mdc)
        if not _holds(h, m.entry, mowner, m.mdc, r):
            continue
        head = f"{m.mdc}:entry={m.entry.render()}"
        for item in m.sequence:
            if isinstance(item, QYCheck):
                if item.enabled and _holds(h, item.when, mowner, m.mdc, r):
                    segs += [head, f"QY={item.result_drg}:{item.when.render()}"]
                    return m.mdc, "QY", item.result_drg, "QY", segs
                continue
            rule = scheme.rules[item]
            if not _holds(h, rule.when, ("rule", rule.rule_id), m.mdc, r):
                continue
            rseg = f"ADRG={rule.adrg}(rule {rule.rule_id}):{rule.when.render()}"
            for drg in rule.drg_sequence:
                split = scheme.drg_splits[drg].split
                if _split_holds(split, r, has_mcc, has_cc):
                    dseg = f"DRG={drg}:{split.render()}"
                    if split.kind in ("mcc", "mcc_or_cc"):
                        dseg += f"({cc_code})"
                    segs += [head, rseg, dseg]
                    return m.mdc, rule.adrg, drg, "grouped", segs
            if rule.if_no_drg_matches == "return_adrg":
                segs += [head, rseg, f"DRG={rule.adrg}:return_adrg"]
                return m.mdc, rule.adrg, rule.adrg, "grouped", segs
        segs.append(f"{m.mdc}:fallthrough")
    d = scheme.driver
    segs.append(f"NOGROUP={d.no_group_drg}")
    return d.no_group_mdc, d.no_group_adrg, d.no_group_drg, "ungroupable", segs


def group_record(scheme: Scheme, record: dict[str, Any], *, apply_code_maps: bool = False,
                 unknown_codes: str = "invalid") -> dict[str, Any]:
    """Group one record (a dict with the input columns of ``group_frame``); returns a dict
    with the output columns of ``group_frame``."""
    h = _helper(scheme)
    out = {"mdc": None, "adrg": None, "drg": None, "status": None, "has_mcc": False, "has_cc": False,
           "cc_code": None, "invalid_reason": None, "trace": None}

    pdx_raw = record.get("principal_dx")
    pdx = "" if _is_null(pdx_raw) else str(pdx_raw).strip()
    secs = _code_list(record.get("secondary_dxs"))
    procs = _code_list(record.get("procedures"))
    sex = _sex(record.get("sex"))
    age = _num(record.get("age_years"))
    age = None if age is None else math.floor(age)
    age_days = _num(record.get("age_days"))
    age_days = None if age_days is None else math.floor(age_days)
    weight = _num(record.get("birth_weight_g"))
    dept_raw = record.get("dept")
    dept = None if _is_null(dept_raw) else str(dept_raw).strip()
    if scheme.validation_profile == "zero_fill":
        age_days = 0 if age_days is None else age_days
        weight = 0.0 if weight is None else weight

    def mapped(code, table):
        return table.get(code, code) if apply_code_maps else code

    dxs = [mapped(pdx, scheme.diagnosis_map)] + [mapped(s, scheme.diagnosis_map) for s in secs] if pdx else []
    pxs = [mapped(p, scheme.procedure_map) for p in procs]

    # --- validation (first reason in priority order)
    problem = None
    if not pdx:
        problem = ("MISSING_PRINCIPAL_DX", None)
    elif sex is None:
        problem = ("BAD_SEX", None)
    elif age is None:
        problem = ("MISSING_AGE", None)
    elif scheme.validation_profile == "newborn_strict" and age == 0 and age_days is None:
        problem = ("MISSING_AGE_DAYS", None)
    elif scheme.validation_profile == "newborn_strict" and age == 0 and age_days <= 28 and not weight:
        problem = ("MISSING_BIRTH_WEIGHT", None)
    elif unknown_codes == "invalid":
        raw_dx = [pdx] + secs
        for raw, code in zip(raw_dx, dxs):
            if code not in h.known_dx:
                problem = ("UNKNOWN_DX_CODE", raw)
                break
        if problem is None:
            for raw, code in zip(procs, pxs):
                if code not in h.known_px:
                    problem = ("UNKNOWN_PROC_CODE", raw)
                    break
    if problem is not None:
        out["status"] = "invalid"
        out["invalid_reason"] = problem[0]
        out["trace"] = f"INVALID={problem[0]}" + (f"({problem[1]})" if problem[1] is not None else "")
        return out

    # --- CC / MCC with exclusion tables
    T = scheme.principal_exclusion.get(dxs[0])
    first_mcc = first_cc = None
    for d in dxs[1:]:
        if d in scheme.mcc and not (T is not None and T == scheme.mcc[d]):
            if first_mcc is None:
                first_mcc = d
        if d in scheme.cc and not (T is not None and T == scheme.cc[d]):
            if first_cc is None:
                first_cc = d
    has_mcc, has_cc = first_mcc is not None, first_cc is not None
    cc_code = first_mcc if has_mcc else first_cc

    r = _Rec(sex, age, age_days, weight, dept, dxs, pxs)
    mdc, adrg, drg, status, segs = _run(scheme, h, r, has_mcc, has_cc, cc_code)
    if status == "ungroupable" and scheme.driver.retry_with_single_secondary_procedure and len(pxs) > 1:
        for k in range(1, len(pxs)):
            r2 = _Rec(sex, age, age_days, weight, dept, dxs, [pxs[k]])
            segs.append(f"RETRY={k + 1}({procs[k]})")
            mdc, adrg, drg, status, more = _run(scheme, h, r2, has_mcc, has_cc, cc_code)
            segs += more
            if status != "ungroupable":
                break
    out.update(mdc=mdc, adrg=adrg, drg=drg, status=status, has_mcc=has_mcc, has_cc=has_cc, cc_code=cc_code,
               trace=";".join(segs))
    return out
