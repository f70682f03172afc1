"""Seeded random record generator for the grouping cross-check and the benchmark.

Records are built from the scheme's own rule lists so that most of them group
(a randomly chosen ADRG rule is "satisfied" by walking its condition), plus noise:
extra procedures, secondaries from the MCC/CC tables (including ones excluded by the
principal's exclusion table), multiple-trauma diagnoses, HIV codes in any position,
newborn fields, ICU department, invalid values, unknown codes and fully random codes.
"""
from __future__ import annotations

import random

import numpy as np
import pandas as pd

from casemix.grouping.scheme import SURGICAL_LIST, Cond, Scheme


class RecordGenerator:
    def __init__(self, scheme: Scheme, seed: int = 0):
        self.s = scheme
        self.rng = random.Random(seed)
        self.rules = list(scheme.rules.values())
        self.dx_all = list(scheme.diagnoses)
        self.px_all = list(scheme.procedures)
        self.surg = list(scheme.surgical)
        self.mcc = list(scheme.mcc)
        self.cc = list(scheme.cc)
        # secondaries sharing the exclusion table of a principal (to exercise exclusion)
        self.by_table: dict[str, list[str]] = {}
        for code, t in list(scheme.mcc.items()) + list(scheme.cc.items()):
            self.by_table.setdefault(t, []).append(code)
        self.mdc_zd = {m.mdc: list(m.lists.get("zd", ())) for m in scheme.mdcs}
        z = [m for m in scheme.mdcs if m.trauma_sites]
        self.trauma_sites = [list(c) for _s, c in z[0].trauma_sites] if z else []
        self.hiv = self.mdc_zd.get("MDCY", [])
        self.map_keys = [k for k, v in scheme.diagnosis_map.items() if k != v]
        self.pmap_keys = [k for k, v in scheme.procedure_map.items() if k != v]
        self.split_codes = sorted({c for d in scheme.drg_splits.values() if d.split.kind == "procs_include_all"
                                   for c in d.split.value})

    # ------------------------------------------------------------------ helpers
    def pick(self, seq):
        return seq[self.rng.randrange(len(seq))] if seq else None

    def codes(self, owner, name):
        return list(self.s.resolve_list(owner, name)) if name != SURGICAL_LIST else self.surg

    def satisfy(self, cond: Cond, owner, rec: dict):
        r = self.rng
        op = cond.op
        if op == "all":
            for ch in cond.children:
                self.satisfy(ch, owner, rec)
        elif op == "any":
            self.satisfy(self.pick(list(cond.children)), owner, rec)
        elif op == "not":
            pass  # leave to chance
        elif op == "principal_dx_in":
            c = self.pick(self.codes(owner, cond.list_name))
            if c:
                rec["pdx"] = c
        elif op in ("any_dx_in", "secondary_dx_in"):
            c = self.pick(self.codes(owner, cond.list_name))
            if c:
                if op == "any_dx_in" and r.random() < 0.5:
                    rec["pdx"] = c
                else:
                    rec["secs"].append(c)
        elif op == "principal_proc_in":
            c = self.pick(self.codes(owner, cond.list_name))
            if c:
                rec["procs"].insert(0, c)
        elif op == "any_proc_in":
            c = self.pick(self.codes(owner, cond.list_name))
            if c:
                rec["procs"].insert(r.randrange(len(rec["procs"]) + 1), c)
        elif op == "age_years_eq":
            rec["age"] = cond.value
        elif op == "age_days_lte":
            rec["age"] = 0
            rec["age_days"] = r.randint(0, cond.value)
        elif op == "birth_weight_gte":
            rec["bw_lo"] = max(rec.get("bw_lo", 0), cond.value)
        elif op == "birth_weight_lt":
            rec["bw_hi"] = min(rec.get("bw_hi", 10 ** 6), cond.value)
        elif op == "sex_eq":
            rec["sex"] = cond.value

    # ------------------------------------------------------------------ records
    def record(self, realistic: bool = False) -> dict:
        """One record.  ``realistic``: claim-like mix for benchmarks (few newborns, ~4 secondaries,
        no deliberately invalid values); otherwise a test mix that over-samples edge cases."""
        if realistic:
            return self._realistic()
        r = self.rng
        rec = {"pdx": None, "secs": [], "procs": [], "age": r.choice([r.randint(1, 95), r.randint(1, 16), 0]),
               "sex": r.choice("12"), "age_days": None}
        u = r.random()
        if u < 0.62:  # built from an ADRG rule
            rule = self.pick(self.rules)
            self.satisfy(rule.when, ("rule", rule.rule_id), rec)
            m = self.s.mdc(rule.mdc)
            self.satisfy(m.entry, ("mdc", m.mdc), rec)
            if rec["pdx"] is None:
                rec["pdx"] = self.pick(self.mdc_zd.get(rule.mdc) or self.dx_all)
        elif u < 0.77:  # MDC level
            m = self.pick(list(self.s.mdcs))
            self.satisfy(m.entry, ("mdc", m.mdc), rec)
            if rec["pdx"] is None:
                rec["pdx"] = self.pick(self.dx_all)
        elif u < 0.90:  # special cases
            k = r.randrange(5)
            rec["pdx"] = self.pick(self.dx_all)
            if k == 0 and self.trauma_sites:  # multiple trauma
                sites = r.sample(self.trauma_sites, min(len(self.trauma_sites), r.randint(1, 3)))
                codes = [self.pick(s) for s in sites]
                rec["pdx"] = self.pick(self.mdc_zd.get("MDCZ") or codes)
                rec["secs"] += codes
            elif k == 1 and self.hiv:
                rec["secs"].append(self.pick(self.hiv))
            elif k == 2:  # non-surgical first procedure
                rec["procs"] = [self.pick(self.px_all), self.pick(self.surg)]
            elif k == 3:
                rec["procs"] += r.sample(self.split_codes, min(len(self.split_codes), r.randint(1, 2))) \
                    if self.split_codes else []
                rec["dept"] = "ICU"
                rec["procs"].insert(0, self.pick(self.surg))
            else:  # cross-MDC surgery
                rec["procs"] = [self.pick(self.surg) for _ in range(r.randint(1, 3))]
        else:  # fully random
            rec["pdx"] = self.pick(self.dx_all)
            rec["procs"] = [self.pick(self.px_all) for _ in range(r.randint(0, 3))]
        # noise: secondaries from MCC/CC tables (sometimes excluded by the principal's table)
        for _ in range(r.choice([0, 0, 1, 1, 2, 3])):
            v = r.random()
            if v < 0.3:
                t = self.s.principal_exclusion.get(rec["pdx"])
                rec["secs"].append(self.pick(self.by_table.get(t) or self.cc))
            elif v < 0.6:
                rec["secs"].append(self.pick(self.mcc))
            elif v < 0.9:
                rec["secs"].append(self.pick(self.cc))
            else:
                rec["secs"].append(self.pick(self.dx_all))
        if r.random() < 0.3:
            rec["procs"].append(self.pick(self.surg if r.random() < 0.5 else self.px_all))
        r.shuffle(rec["secs"])
        # newborn fields
        if rec["age"] == 0:
            if rec.get("age_days") is None and r.random() < 0.9:
                rec["age_days"] = r.choice([r.randint(0, 28), r.randint(29, 364)])
            lo, hi = rec.get("bw_lo", 500), rec.get("bw_hi", 4500)
            bw = r.randint(lo, max(lo, hi - 1)) if lo < hi else lo
            rec["bw"] = r.choice([bw, bw, bw, None, 0])
        else:
            rec["bw"] = None if r.random() < 0.9 else r.randint(500, 4500)
        sex = rec["sex"]
        w = r.random()
        if w < 0.15:
            sex = {"1": "M", "2": "F"}[sex]
        elif w < 0.25:
            sex = int(sex)
        elif w < 0.26:
            sex = r.choice(["9", None, "X"])
        age = rec["age"] if r.random() > 0.005 else None
        pdx = rec["pdx"] if r.random() > 0.005 else r.choice([None, "", "  "])
        secs, procs = rec["secs"], rec["procs"]
        if r.random() < 0.01:  # unknown codes
            if r.random() < 0.5:
                secs = secs + ["ZZZ.999"]
            else:
                procs = procs + ["99.9999x999"]
        if r.random() < 0.02 and self.map_keys:  # old-version codes (changed by the code maps)
            secs = secs + [self.pick(self.map_keys)]
            if r.random() < 0.5:
                pdx = self.pick(self.map_keys)
        if r.random() < 0.01 and self.pmap_keys:
            procs = procs + [self.pick(self.pmap_keys)]
        if r.random() < 0.02 and pdx:
            pdx = f" {pdx} "
        return {
            "sex": sex,
            "age_years": age,
            "age_days": rec.get("age_days"),
            "birth_weight_g": rec.get("bw"),
            "dept": rec.get("dept", r.choice(["ICU", "CARD", None, "GEN"]) if r.random() < 0.1 else None),
            "los_days": r.randint(1, 30),
            "discharge_status": r.choice(["1", "2", "5"]),
            "principal_dx": pdx,
            "secondary_dxs": secs,
            "procedures": procs,
        }

    def _realistic(self) -> dict:
        r = self.rng
        rec = self.record()
        rec["sex"] = r.choice("12")
        newborn = r.random() < 0.02
        rec["age_years"] = 0 if newborn else r.randint(1, 95)
        rec["age_days"] = r.randint(0, 364) if newborn else None
        rec["birth_weight_g"] = r.randint(900, 4500) if newborn else None
        known_dx, known_px = self.s.diagnoses, self.s.procedures
        if rec["principal_dx"] not in known_dx:
            rec["principal_dx"] = self.pick(self.dx_all)
        secs = [c for c in rec["secondary_dxs"] if c in known_dx or c in self.s.mcc or c in self.s.cc]
        k = min(12, int(r.expovariate(1 / 4)))
        while len(secs) < k:
            v = r.random()
            secs.append(self.pick(self.mcc if v < 0.1 else self.cc if v < 0.4 else self.dx_all))
        rec["secondary_dxs"] = secs
        rec["procedures"] = [c for c in rec["procedures"] if c in known_px or c in self.s.surgical][:4]
        return rec

    def frame(self, n: int, *, realistic: bool = False) -> pd.DataFrame:
        """n records as a DataFrame (secondaries as numpy arrays, procedures as lists, as pandas gets them)."""
        recs = [self.record(realistic) for _ in range(n)]
        df = pd.DataFrame(recs)
        df["age_years"] = df["age_years"].astype("Int64")
        df["age_days"] = df["age_days"].astype("Int64")
        df["birth_weight_g"] = df["birth_weight_g"].astype("Int64")
        df["sex"] = df["sex"].astype(object)
        df["secondary_dxs"] = [np.array(v, dtype=object) for v in df["secondary_dxs"]]
        return df
