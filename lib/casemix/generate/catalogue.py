"""The case catalogue: clinically coherent case templates and code pools derived from a real DRG scheme.

Built once on the driver from the scheme folder (``adrg.json``, ``mdc.json``, the MCC/CC tables, the
code dictionaries) and the code book of :mod:`casemix.codes`; small (a few thousand templates, a few
ten thousand codes as numpy arrays) and shipped to the generating tasks in their closure.

Case templates
    For every ADRG rule of the scheme, up to ``templates_per_adrg`` templates: a principal diagnosis,
    the secondary diagnoses the rule needs (a second trauma site for MDCZ, ``secondary_dx_in`` lists),
    the procedures in the rule's shape (principal procedure first; both lists of
    ``any_proc_in(ss) & any_proc_in(ss1)``; category combinations of JA1/NA1), and the person the rule
    needs: sex (MDCM male, MDCN/MDCO female, and any sex-specific principal diagnosis), age (MDCP:
    infants aged 0 with days and a birth-weight band; MDCO: 16-45). The template is realised from the
    rule's condition tree together with its MDC's entry rule, then *verified* by grouping it (at the
    corners of its age-days and birth-weight bands) with :func:`casemix.grouping.group_frame`: only
    templates that reach their own ADRG are kept, so generated cases group where they are meant to.
    Extra templates: *ungroupable* (a known principal diagnosis that enters no MDC: result 0000) and
    *ambiguous* (a medical principal diagnosis with an unrelated operating-room procedure: ``QY`` in
    schemes with enabled QY checks, a medical DRG in CHS-DRG 1.1).

Code pools
    Secondary diagnoses (MCC, CC, other) and extra procedures are drawn only from codes that cannot
    change the ADRG: diagnoses outside every ``any_dx_in``/``secondary_dx_in`` list, trauma-site table,
    MDCY (HIV) and MDCP list, and not sex- or newborn-specific; procedures outside every rule list and
    the operating-room (``@surgical``) list. Every code is known to the code book and unchanged by
    :func:`casemix.codes.normalise_code`. Pools are ranked by a seeded shuffle and drawn Zipf-like, so a
    few comorbidities dominate as in real data.

Weights
    An ADRG's frequency is ``mdc_weight x type_weight x (rank + 1) ^ -adrg_zipf`` (rank within its MDC
    by a seeded shuffle), then tilted per hospital grade (``case_mix_tilt``, ``mdc_tilt`` of
    ``conf/province.yaml``): 三级 hospitals see more surgical and MDCA stays, 一级 almost none.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from casemix.codes import CodeBook, load_codebook, normalise_code
from casemix.generate.province import ADRG_TYPES, GRADES, Province
from casemix.generate.rng import Draws, cdf_from_weights, zipf_weights
from casemix.grouping import Scheme, group_frame, load_compiled, load_scheme
from casemix.grouping.scheme import SURGICAL_LIST, Cond, QYCheck

__all__ = ["CaseCatalogue", "build_catalogue", "adrg_type", "TEMPLATE_REGULAR", "TEMPLATE_UNGROUPABLE",
           "TEMPLATE_AMBIGUOUS", "MAX_REQUIRED_SECONDARIES", "MAX_TEMPLATE_PROCEDURES"]

TEMPLATE_REGULAR, TEMPLATE_UNGROUPABLE, TEMPLATE_AMBIGUOUS = 0, 1, 2
MAX_REQUIRED_SECONDARIES = 3
MAX_TEMPLATE_PROCEDURES = 4
#: default age range of adult-or-child templates (pool people are 1 year or older)
AGE_ANY = (1, 120)
AGE_PREGNANCY = (16, 45)
AGE_GYNAECOLOGY = (12, 95)
NEWBORN_DEFAULT_BW = (2500, 4300)
_EXTRA_TEMPLATES = 240
#: sex-specific procedures of ICD-9-CM-3 chapters 87-99 (kept out of the extra-procedure pool)
_SEX_SPECIFIC_PROCEDURES = ("87.8", "88.78", "89.26", "96.14", "96.44", "96.49", "97.7", "98.1")


def adrg_type(adrg: str) -> str:
    """ADRG type from the 2nd character of its code: A-J surgical, K-Q procedure, R-Z medical."""
    c = adrg[1:2]
    if "A" <= c <= "J":
        return "surgical"
    if "K" <= c <= "Q":
        return "procedure"
    return "medical"


def _h(seed: int, text: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{seed}:{text}".encode("utf-8"), digest_size=8).digest(), "little")


def _pick(seed: int, text: str, items: list):
    return items[_h(seed, text) % len(items)]


def _ranked(seed: int, salt: str, codes: list[str]) -> list[str]:
    """A seeded, process-independent shuffle of ``codes`` (sorted first, then ordered by hash)."""
    return sorted(sorted(codes), key=lambda c: _h(seed, f"{salt}:{c}"))


@dataclass
class _Needs:
    pdx: list = field(default_factory=list)
    any_dx: list = field(default_factory=list)
    sec: list = field(default_factory=list)
    pproc: list = field(default_factory=list)
    any_proc: list = field(default_factory=list)
    age_eq: Optional[int] = None
    ad_lte: Optional[int] = None
    bw_gte: Optional[int] = None
    bw_lt: Optional[int] = None
    sex: int = 0
    trauma_min: int = 0


@dataclass(frozen=True)
class _Template:
    rule_id: str
    adrg: str
    mdc: str
    kind: int
    pdx: str
    secs: tuple[str, ...]
    procs: tuple[str, ...]
    sex: int
    age: tuple[int, int]
    newborn: bool
    ad: tuple[int, int]
    bw: tuple[int, int]


@dataclass(frozen=True, eq=False)
class CaseCatalogue:
    """Arrays of templates, pools and DRG truths (indices refer to ``dx_codes`` / ``px_codes``)."""

    scheme_id: str
    scheme_dir: str
    dx_codes: np.ndarray          # str, sorted
    px_codes: np.ndarray
    mdc_codes: tuple[str, ...]    # template MDC index -> MDC code ("other" last)
    # templates
    t_kind: np.ndarray            # int8: regular / ungroupable / ambiguous
    t_adrg: np.ndarray            # int32 index into adrg_codes (-1: none)
    t_mdc: np.ndarray             # int16 index into mdc_codes
    t_type: np.ndarray            # int8 index into ADRG_TYPES
    t_pdx: np.ndarray             # int32
    t_secs: np.ndarray            # int32 [T, MAX_REQUIRED_SECONDARIES], -1 = none
    t_procs: np.ndarray           # int32 [T, MAX_TEMPLATE_PROCEDURES], -1 = none
    t_sex: np.ndarray             # int8: 0 any, 1 male, 2 female
    t_age_min: np.ndarray         # int16
    t_age_max: np.ndarray
    t_age_default: np.ndarray     # bool: no clinical age restriction
    t_newborn: np.ndarray         # bool
    t_ad_min: np.ndarray          # int16 (newborn age in days)
    t_ad_max: np.ndarray
    t_bw_min: np.ndarray          # int16 birth weight band [min, max), 0 = none
    t_bw_max: np.ndarray
    grade_cdf: np.ndarray         # float64 [len(GRADES), T] over regular templates (0 weight elsewhere)
    ungroupable: np.ndarray       # int32 template indices
    ambiguous: np.ndarray
    generic_cdf: np.ndarray       # float64 [T]: neutral adult medical templates (fallback)
    # pools (dx/px indices) and their CDFs
    pool_other: np.ndarray
    pool_other_cdf: np.ndarray
    pool_mcc: np.ndarray
    pool_mcc_cdf: np.ndarray
    pool_cc: np.ndarray
    pool_cc_cdf: np.ndarray
    pool_newborn: np.ndarray
    pool_newborn_cdf: np.ndarray
    pool_proc: np.ndarray
    pool_proc_cdf: np.ndarray
    pool_outpatient_dx: np.ndarray
    pool_outpatient_dx_cdf: np.ndarray
    #: the newborn, MCC, CC and other pools end to end, their CDFs scaled into quarters of [0, 1]:
    #: pool k is drawn with one searchsorted on (k + u) / 4
    pool_secondary: np.ndarray
    pool_secondary_cdf: np.ndarray
    # defect codes
    defect_unknown_dx: tuple[str, ...]
    defect_male_only_dx: np.ndarray    # codes for a woman (dx indices)
    defect_female_only_dx: np.ndarray  # codes for a man
    defect_newborn_dx: np.ndarray      # newborn-only codes for an adult
    # ADRGs and DRGs (the hidden truth)
    adrg_codes: tuple[str, ...]
    adrg_mdc: np.ndarray          # int16 index into mdc_codes
    adrg_type_idx: np.ndarray     # int8
    adrg_mean_los: np.ndarray     # float64
    drg_codes: tuple[str, ...]    # reachable DRGs; index len(drg_codes) = not grouped (0000 / QY)
    drg_adrg: tuple[str, ...]
    drg_true_cost: np.ndarray     # float64 yuan, rounded to the fen; last entry: ungrouped cost
    stats: dict = field(default_factory=dict)

    @property
    def n_templates(self) -> int:
        return len(self.t_kind)

    def true_cost_decimal(self, drg_index: int) -> Decimal:
        return Decimal(f"{self.drg_true_cost[drg_index]:.2f}")

    def fingerprint(self) -> str:
        """sha256 over every array and code list: equal fingerprints, equal generated data."""
        h = hashlib.sha256()
        for name in sorted(self.__dataclass_fields__):
            value = getattr(self, name)
            if name == "stats":
                continue
            if isinstance(value, np.ndarray):
                h.update(name.encode() + (value.astype(str).tobytes() if value.dtype == object else value.tobytes()))
            else:
                h.update(name.encode() + repr(value).encode("utf-8"))
        return h.hexdigest()


class _Builder:
    def __init__(self, scheme: Scheme, codebook: CodeBook, province: Province, seed: int, scheme_dir: str):
        self.s = scheme
        self.cb = codebook
        self.p = province
        self.seed = seed
        self.scheme_dir = scheme_dir
        self.known_dx = codebook.diagnoses
        self.known_px = codebook.procedures
        self.sexed = codebook.male_only | codebook.female_only
        self.trauma_site: dict[str, int] = {}
        self.trauma_sites: list[list[str]] = []
        for m in scheme.mdcs:
            if m.trauma_sites:
                self.trauma_site = m.trauma_site_of()
                per_site: list[list[str]] = [[] for _ in m.trauma_sites]
                for code, site in self.trauma_site.items():
                    per_site[site].append(code)
                self.trauma_sites = [sorted(c) for c in per_site]
        self.rule_dx_any: set[str] = set()
        self.rule_dx_all: set[str] = set()
        self.rule_px_all: set[str] = set()
        for owner, cond in self._all_conds():
            for node in cond.walk():
                if node.list_name is None:
                    continue
                codes = scheme.resolve_list(owner, node.list_name)
                if node.op in ("any_dx_in", "secondary_dx_in"):
                    self.rule_dx_any.update(codes)
                if node.op.endswith("_dx_in"):
                    self.rule_dx_all.update(codes)
                elif node.list_name != SURGICAL_LIST:
                    self.rule_px_all.update(codes)
        for d in scheme.drg_splits.values():
            if d.split.kind == "procs_include_all":
                self.rule_px_all.update(d.split.value)  # type: ignore[arg-type]
        self.mdc_zd = {m.mdc: list(m.lists.get("zd", ())) for m in scheme.mdcs}
        self.surgical = set(scheme.surgical)
        self._mdco = set(self.mdc_zd.get("MDCO", ()))
        #: known codes that normalise_code leaves unchanged (ingestion gives them back as written)
        self.good_dx = frozenset(c for c in self.known_dx if self.stable(c))
        self.good_px = frozenset(c for c in self.known_px if self.stable(c))
        self._filter_memo: dict = {}
        self._set_memo: dict = {}

    def _all_conds(self):
        for m in self.s.mdcs:
            yield ("mdc", m.mdc), m.entry
            for item in m.sequence:
                if isinstance(item, QYCheck):
                    yield ("mdc", m.mdc), item.when
        for r in self.s.rules.values():
            yield ("rule", r.rule_id), r.when

    # -- code filters ---------------------------------------------------------------------------
    def stable(self, code: str) -> bool:
        return normalise_code(code) == code

    def dx_ok(self, code: str, sex: int, newborn: bool) -> bool:
        if code not in self.good_dx:
            return False
        if not newborn and code in self.cb.newborn_only:
            return False
        if sex == 1 and code in self.cb.female_only:
            return False
        if sex == 2 and code in self.cb.male_only:
            return False
        return True

    def px_ok(self, code: str) -> bool:
        return code in self.good_px

    def neutral_filter(self, codes: list[str], newborn: bool) -> list[str]:
        key = (id(codes), len(codes), "neutral", newborn)
        hit = self._filter_memo.get(key)
        if hit is None:
            hit = self._filter_memo[key] = (
                [c for c in codes if self.dx_ok(c, 0, newborn) and c not in self.sexed], codes)
        return hit[0]

    def px_filter(self, codes: list[str]) -> list[str]:
        key = (id(codes), len(codes), "px")
        hit = self._filter_memo.get(key)
        if hit is None:
            hit = self._filter_memo[key] = ([c for c in codes if c in self.good_px], codes)
        return hit[0]

    def dx_filter(self, codes: list[str], sex: int, newborn: bool) -> list[str]:
        key = (id(codes), len(codes), sex, newborn)
        hit = self._filter_memo.get(key)
        if hit is None:
            hit = self._filter_memo[key] = ([c for c in codes if self.dx_ok(c, sex, newborn)], codes)
        return hit[0]

    # -- template realisation -------------------------------------------------------------------
    def _collect(self, cond: Cond, owner, needs: _Needs, path: str) -> None:
        op = cond.op
        if op == "all":
            for i, c in enumerate(cond.children):
                self._collect(c, owner, needs, f"{path}.{i}")
        elif op == "any":
            i = _h(self.seed, path) % len(cond.children)
            self._collect(cond.children[i], owner, needs, f"{path}.{i}")
        elif op in ("not", "always"):
            return  # negations are enforced by verifying the template with the grouper
        elif op.endswith("_in"):
            codes = self.s.resolve_list(owner, cond.list_name)  # the scheme's own tuple: memo keys by identity
            {"principal_dx_in": needs.pdx, "any_dx_in": needs.any_dx, "secondary_dx_in": needs.sec,
             "principal_proc_in": needs.pproc, "any_proc_in": needs.any_proc}[op].append(codes)
        elif op == "age_years_eq":
            needs.age_eq = int(cond.value)
        elif op == "age_days_lte":
            needs.ad_lte = int(cond.value)
        elif op == "birth_weight_gte":
            needs.bw_gte = int(cond.value)
        elif op == "birth_weight_lt":
            needs.bw_lt = int(cond.value)
        elif op == "sex_eq":
            needs.sex = int(cond.value)
        elif op == "trauma_sites_min":
            needs.trauma_min = int(cond.value)

    def _generic_principals(self) -> list[str]:
        out: set[str] = set()
        for mdc in ("MDCB", "MDCE", "MDCF", "MDCG", "MDCI", "MDCK", "MDCL"):
            out.update(self.mdc_zd.get(mdc, ()))
        return sorted(c for c in out if self.dx_ok(c, 0, False) and c not in self.sexed and c not in self.trauma_site)

    def _as_set(self, codes: list[str]) -> frozenset:
        key = (id(codes), len(codes))
        hit = self._set_memo.get(key)
        if hit is None:
            hit = self._set_memo[key] = (frozenset(codes), codes)
        return hit[0]

    def _intersect(self, lists: list) -> tuple[str, ...]:
        """Codes in every list, in the order of the shortest one (memoised by the lists' identity)."""
        key = tuple((id(x), len(x)) for x in lists)
        hit = self._set_memo.get(key)
        if hit is None:
            shortest = min(lists, key=len)
            others = [self._as_set(x) for x in lists if x is not shortest]
            hit = self._set_memo[key] = (tuple(c for c in shortest if all(c in o for o in others)), lists)
        return hit[0]

    def realise(self, rule, k: int) -> Optional[_Template]:
        mdc = self.s.mdc(rule.mdc)
        needs = _Needs()
        key = f"{rule.rule_id}#{k}"
        self._collect(mdc.entry, ("mdc", mdc.mdc), needs, key + ":entry")
        self._collect(rule.when, ("rule", rule.rule_id), needs, key + ":when")
        newborn = needs.age_eq == 0
        sex = needs.sex
        # principal diagnosis
        if len(needs.pdx) == 1:
            cands = needs.pdx[0]
        elif needs.pdx:
            cands = self._intersect(needs.pdx)
        else:
            cands = self._generic_principals_cache
        cands = self.dx_filter(cands, sex, newborn)
        if needs.trauma_min:
            cands = [c for c in cands if c in self.trauma_site and c not in self.sexed]
        secs: list[str] = []
        pdx = None
        for lst in needs.any_dx:
            lst_set = self._as_set(lst)
            both = [c for c in cands if c in lst_set]
            if both and pdx is None:
                pdx = _pick(self.seed, key + ":pdx-any", both)
            else:
                extra = self.neutral_filter(lst, newborn)
                if not extra:
                    return None
                secs.append(_pick(self.seed, key + f":any{len(secs)}", extra))
        if pdx is None:
            if not cands:
                return None
            pdx = _pick(self.seed, key + ":pdx", cands)
        for i, lst in enumerate(needs.sec):
            extra = self.neutral_filter(lst, newborn)
            if not extra:
                return None
            secs.append(_pick(self.seed, key + f":sec{i}", extra))
        if needs.trauma_min:
            site = self.trauma_site[pdx]
            others = [i for i in range(len(self.trauma_sites)) if i != site]
            for j in range(needs.trauma_min - 1):
                i = others.pop(_h(self.seed, f"{key}:site{j}") % len(others))
                codes = [c for c in self.trauma_sites[i] if self.dx_ok(c, sex, False) and c not in self.sexed]
                if not codes:
                    return None
                secs.append(_pick(self.seed, f"{key}:trauma{j}", codes))
        if pdx in self.cb.male_only:
            sex = sex or 1
        elif pdx in self.cb.female_only:
            sex = sex or 2
        # procedures, principal first
        procs: list[str] = []
        if len(needs.pproc) == 1:
            pc = self.px_filter(needs.pproc[0])
        elif needs.pproc:
            pc = self.px_filter(self._intersect(needs.pproc))
        if needs.pproc:
            if not pc:
                return None
            procs.append(_pick(self.seed, key + ":pproc", pc))
        for i, lst in enumerate(needs.any_proc):
            if any(p in self._as_set(lst) for p in procs):
                continue
            pc = self.px_filter(lst)
            if not pc:
                return None
            procs.append(_pick(self.seed, key + f":proc{i}", pc))
        if len(secs) > MAX_REQUIRED_SECONDARIES or len(procs) > MAX_TEMPLATE_PROCEDURES:
            return None
        # person
        if newborn:
            ad = (0, needs.ad_lte) if needs.ad_lte is not None else (29, 364)
            if ad[1] <= 28:
                lo = needs.bw_gte if needs.bw_gte is not None else (700 if needs.bw_lt is not None else NEWBORN_DEFAULT_BW[0])
                hi = needs.bw_lt if needs.bw_lt is not None else NEWBORN_DEFAULT_BW[1]
                bw = (max(lo, 500), hi)
            else:
                bw = (0, 0)
            age = (0, 0)
        else:
            ad, bw = (0, 0), (0, 0)
            if rule.mdc == "MDCO" or pdx in self._mdco:
                age = AGE_PREGNANCY
            elif rule.mdc == "MDCN":
                age = AGE_GYNAECOLOGY
            else:
                age = AGE_ANY
        return _Template(rule.rule_id, rule.adrg, rule.mdc, TEMPLATE_REGULAR, pdx, tuple(secs), tuple(procs), sex,
                         age, newborn, ad, bw)

    # -- verification ---------------------------------------------------------------------------
    def verify(self, templates: list[_Template], compiled) -> list[tuple[str, str, str]]:
        """Group each template at the corners of its bands (and, when it allows any sex, as a man and as a
        woman); returns (mdc, adrg, status) per template, with adrg/status '?' when the variants disagree."""
        if not templates:
            return []
        rows, owner = [], []
        for i, t in enumerate(templates):
            sexes = (t.sex,) if t.sex else (1, 2)
            if t.newborn:
                corners = [(0, t.ad[0], t.bw[0] if t.bw[1] else None),
                           (0, t.ad[1], (t.bw[1] - 1) if t.bw[1] else None)]
            else:
                corners = [(t.age[0], None, None), (min(t.age[1], 95), None, None)]
            for sex in sexes:
                for age, ad, bw in corners:
                    rows.append({"sex": str(sex), "age_years": age, "age_days": ad, "birth_weight_g": bw,
                                 "principal_dx": t.pdx, "secondary_dxs": "|".join(t.secs),
                                 "procedures": "|".join(t.procs)})
                    owner.append(i)
        frame = pd.DataFrame(rows)
        for col in ("age_days", "birth_weight_g"):
            frame[col] = pd.to_numeric(frame[col], errors="coerce")
        res = group_frame(compiled, frame, trace=False)
        res["owner"] = owner
        by = res.groupby("owner", sort=True)
        first = by.first()
        same = (by["adrg"].nunique() == 1) & (by["status"].nunique() == 1)
        return [(m, a if ok else "?", st if ok else "?")
                for m, a, st, ok in zip(first["mdc"], first["adrg"], first["status"], same)]

    def _verified_templates(self, rules: list, compiled, per_rule: int) -> tuple[dict[str, list[_Template]], int]:
        """Up to ``per_rule`` templates per rule that group to the rule's own ADRG, and how many
        candidates were rejected."""
        kept: dict[str, list[_Template]] = {}
        seen: dict[str, set] = {}
        rejected = 0
        # rounds of candidates; a rule whose lists overlap earlier rules' (e.g. RA4 after RA1/RA2) keeps
        # few of them, so it gets more attempts in the next rounds
        start = 0
        for attempts in (3 * per_rule, 12 * per_rule, 60 * per_rule):
            todo = [r for r in rules if len(kept.get(r.rule_id, ())) < max(1, per_rule // 4)]
            if not todo:
                break
            candidates: list[_Template] = []
            for r in todo:
                done = seen.setdefault(r.rule_id, set())
                for k in range(start, start + attempts):
                    t = self.realise(r, k)
                    if t is None or (t.pdx, t.secs, t.procs) in done:
                        continue
                    done.add((t.pdx, t.secs, t.procs))
                    candidates.append(t)
            start += attempts
            for t, (_mdc, adrg, status) in zip(candidates, self.verify(candidates, compiled)):
                if status == "grouped" and adrg == t.adrg:
                    lst = kept.setdefault(t.rule_id, [])
                    if len(lst) < per_rule:
                        lst.append(t)
                else:
                    rejected += 1
        return kept, rejected

    # -- the catalogue --------------------------------------------------------------------------
    def build(self) -> CaseCatalogue:
        compiled = load_compiled(self.scheme_dir)
        cm = self.p.case_mix
        self._generic_principals_cache = self._generic_principals()
        rules = [r for m in self.s.mdcs for r in (self.s.rules[i] for i in m.sequence if isinstance(i, str))
                 if not r.never_matches]
        per_rule = cm.templates_per_adrg
        kept, rejected = self._verified_templates(rules, compiled, per_rule)
        regular = [t for r in rules for t in kept.get(r.rule_id, [])]
        ungroupable = self._ungroupable(compiled)
        ambiguous = self._ambiguous(regular, compiled)
        templates = regular + ungroupable + ambiguous

        # vocabularies
        pools = self._pools()
        dx_vocab = set(pools["dx"])
        px_vocab = set(pools["px"])
        for t in templates:
            dx_vocab.add(t.pdx)
            dx_vocab.update(t.secs)
            px_vocab.update(t.procs)
        defects = self._defect_codes()
        for key in ("male", "female", "newborn"):
            dx_vocab.update(defects[key])
        dx_codes = np.array(sorted(dx_vocab), dtype=object)
        px_codes = np.array(sorted(px_vocab), dtype=object)
        dx_index = {c: i for i, c in enumerate(dx_codes)}
        px_index = {c: i for i, c in enumerate(px_codes)}

        # ADRGs / DRGs and their hidden truth
        adrg_codes, adrg_mdc_code = [], []
        for r in rules:
            if r.adrg not in adrg_codes:
                adrg_codes.append(r.adrg)
                adrg_mdc_code.append(r.mdc)
        mdc_codes = tuple(m.mdc for m in self.s.mdcs) + ("other",)
        mdc_index = {m: i for i, m in enumerate(mdc_codes)}
        adrg_index = {a: i for i, a in enumerate(adrg_codes)}
        costs = self.p.costs
        adrg_type_idx = np.array([ADRG_TYPES.index(adrg_type(a)) for a in adrg_codes], dtype=np.int8)
        z = Draws(self.seed, np.array([_h(self.seed, f"adrg:{a}") for a in adrg_codes], dtype=np.uint64))
        adrg_cost = np.array([
            costs.base_cost[adrg_type(a)] * costs.mdc_multiplier.get(m, 1.0) for a, m in zip(adrg_codes, adrg_mdc_code)
        ]) * np.exp(costs.adrg_sigma * z.normal("adrg.cost"))
        adrg_los = np.array([
            costs.mean_los[adrg_type(a)] * costs.mdc_los_multiplier.get(m, 1.0) for a, m in zip(adrg_codes, adrg_mdc_code)
        ]) * np.exp(costs.adrg_los_sigma * z.normal("adrg.los") - costs.adrg_los_sigma ** 2 / 2)
        drg_codes, drg_adrg, drg_cost = [], [], []
        for d in self.s.drg_splits.values():
            if not d.reachable or d.adrg not in adrg_index:
                continue
            drg_codes.append(d.drg)
            drg_adrg.append(d.adrg)
            mult = costs.split_multiplier.get(d.drg[3:4], 1.0)
            drg_cost.append(_fen(adrg_cost[adrg_index[d.adrg]] * mult))
        drg_cost.append(_fen(costs.ungrouped_cost))

        # template arrays
        T = len(templates)

        def codes_matrix(lists, index, width):
            m = np.full((T, width), -1, dtype=np.int32)
            for i, lst in enumerate(lists):
                for j, c in enumerate(lst):
                    m[i, j] = index[c]
            return m

        t_kind = np.array([t.kind for t in templates], dtype=np.int8)
        t_adrg = np.array([adrg_index.get(t.adrg, -1) for t in templates], dtype=np.int32)
        t_mdc = np.array([mdc_index.get(t.mdc, len(mdc_codes) - 1) for t in templates], dtype=np.int16)
        t_type = np.array([ADRG_TYPES.index(adrg_type(t.adrg)) if t.kind == TEMPLATE_REGULAR else
                           ADRG_TYPES.index("surgical" if t.kind == TEMPLATE_AMBIGUOUS else "medical")
                           for t in templates], dtype=np.int8)
        # frequencies: MDC weight x type weight x Zipf(rank of the ADRG within its MDC), then per template Zipf
        adrg_weight = np.zeros(len(adrg_codes))
        by_mdc: dict[str, list[int]] = {}
        for i, m in enumerate(adrg_mdc_code):
            by_mdc.setdefault(m, []).append(i)
        for m, idx in by_mdc.items():
            ranked = _ranked(self.seed, f"adrg-rank:{m}", [adrg_codes[i] for i in idx])
            raw = np.array([cm.type_weights[adrg_type(a)] for a in ranked]) * zipf_weights(len(ranked), cm.adrg_zipf)
            if raw.sum() > 0:
                raw = raw / raw.sum() * cm.mdc_weights.get(m, 1.0)
            for a, w in zip(ranked, raw):
                adrg_weight[adrg_index[a]] = w
        template_weight = np.zeros(T)
        pos = 0
        for r in rules:
            lst = kept.get(r.rule_id, [])
            if lst:
                template_weight[pos:pos + len(lst)] = zipf_weights(len(lst), cm.template_zipf) / zipf_weights(
                    len(lst), cm.template_zipf).sum()
            pos += len(lst)
        # an ADRG with several rules (e.g. IB1_1/IB1_2) shares its weight between them
        share = np.zeros(len(adrg_codes))
        np.add.at(share, t_adrg[:len(regular)], template_weight[:len(regular)])
        base = np.zeros(T)
        reg = np.arange(len(regular))
        base[reg] = template_weight[reg] / share[t_adrg[reg]] * adrg_weight[t_adrg[reg]]
        grade_rows = []
        for g in GRADES:
            pol = self.p.grades[g]
            tilt = np.array([pol.case_mix_tilt.get(ADRG_TYPES[ti], 1.0) for ti in t_type])
            mdc_tilt = np.array([pol.mdc_tilt.get(mdc_codes[mi], 1.0) for mi in t_mdc])
            grade_rows.append(cdf_from_weights(base * tilt * mdc_tilt))
        generic = np.array([
            t.kind == TEMPLATE_REGULAR and t.sex == 0 and not t.newborn and t.age == AGE_ANY
            and adrg_type(t.adrg) == "medical" and t.mdc not in ("MDCA", "MDCP", "MDCY", "MDCZ")
            for t in templates
        ])
        generic_cdf = cdf_from_weights(base * generic)

        stats = {
            "rules": len(rules),
            "rules_with_templates": len(kept),
            "adrgs_with_templates": int((share > 0).sum()),
            "templates": len(regular),
            "candidates_rejected": rejected,
            "ungroupable_templates": len(ungroupable),
            "ambiguous_templates": len(ambiguous),
            "rules_without_templates": sorted(r.rule_id for r in rules if r.rule_id not in kept),
        }

        letters = cm.diagnosis_letter_weights

        def pool(name):
            codes = pools[name]
            idx = np.array([dx_index[c] if name != "proc" else px_index[c] for c in codes], dtype=np.int32)
            expo = {"other": 1.0, "mcc": 0.9, "cc": 0.9, "newborn": 0.8, "proc": 1.0, "outpatient": 1.0}[name]
            w = zipf_weights(len(idx), expo)
            if name in ("other", "mcc", "cc", "outpatient"):
                w = w * np.array([letters.get(c[:1], 1.0) for c in codes])
            return idx, cdf_from_weights(w)

        p_other, p_mcc, p_cc, p_nb, p_proc, p_out = (pool(n) for n in ("other", "mcc", "cc", "newborn", "proc",
                                                                       "outpatient"))
        return CaseCatalogue(
            scheme_id=self.s.scheme_id,
            scheme_dir=self.scheme_dir,
            dx_codes=dx_codes,
            px_codes=px_codes,
            mdc_codes=mdc_codes,
            t_kind=t_kind,
            t_adrg=t_adrg,
            t_mdc=t_mdc,
            t_type=t_type,
            t_pdx=np.array([dx_index[t.pdx] for t in templates], dtype=np.int32),
            t_secs=codes_matrix([t.secs for t in templates], dx_index, MAX_REQUIRED_SECONDARIES),
            t_procs=codes_matrix([t.procs for t in templates], px_index, MAX_TEMPLATE_PROCEDURES),
            t_sex=np.array([t.sex for t in templates], dtype=np.int8),
            t_age_min=np.array([t.age[0] for t in templates], dtype=np.int16),
            t_age_max=np.array([t.age[1] for t in templates], dtype=np.int16),
            t_age_default=np.array([t.age == AGE_ANY for t in templates]),
            t_newborn=np.array([t.newborn for t in templates]),
            t_ad_min=np.array([t.ad[0] for t in templates], dtype=np.int16),
            t_ad_max=np.array([t.ad[1] for t in templates], dtype=np.int16),
            t_bw_min=np.array([t.bw[0] for t in templates], dtype=np.int16),
            t_bw_max=np.array([t.bw[1] for t in templates], dtype=np.int16),
            grade_cdf=np.vstack(grade_rows),
            ungroupable=np.arange(len(regular), len(regular) + len(ungroupable), dtype=np.int32),
            ambiguous=np.arange(len(regular) + len(ungroupable), T, dtype=np.int32),
            generic_cdf=generic_cdf,
            pool_other=p_other[0], pool_other_cdf=p_other[1],
            pool_mcc=p_mcc[0], pool_mcc_cdf=p_mcc[1],
            pool_cc=p_cc[0], pool_cc_cdf=p_cc[1],
            pool_newborn=p_nb[0], pool_newborn_cdf=p_nb[1],
            pool_proc=p_proc[0], pool_proc_cdf=p_proc[1],
            pool_outpatient_dx=p_out[0], pool_outpatient_dx_cdf=p_out[1],
            pool_secondary=np.concatenate([p_nb[0], p_mcc[0], p_cc[0], p_other[0]]),
            pool_secondary_cdf=np.concatenate([(k + cdf) / 4 for k, cdf in enumerate(
                (p_nb[1], p_mcc[1], p_cc[1], p_other[1]))]),
            defect_unknown_dx=tuple(defects["unknown"]),
            defect_male_only_dx=np.array([dx_index[c] for c in defects["male"]], dtype=np.int32),
            defect_female_only_dx=np.array([dx_index[c] for c in defects["female"]], dtype=np.int32),
            defect_newborn_dx=np.array([dx_index[c] for c in defects["newborn"]], dtype=np.int32),
            adrg_codes=tuple(adrg_codes),
            adrg_mdc=np.array([mdc_index[m] for m in adrg_mdc_code], dtype=np.int16),
            adrg_type_idx=adrg_type_idx,
            adrg_mean_los=adrg_los,
            drg_codes=tuple(drg_codes),
            drg_adrg=tuple(drg_adrg),
            drg_true_cost=np.array(drg_cost, dtype=np.float64),
            stats=stats,
        )

    def _ungroupable(self, compiled) -> list[_Template]:
        in_zd = set().union(*map(set, self.mdc_zd.values()))
        cands = [c for c in self.s.diagnoses if c not in in_zd and c not in self.rule_dx_all and c not in self.sexed
                 and c not in self.trauma_site and self.dx_ok(c, 0, False)]
        cands = _ranked(self.seed, "ungroupable", cands)[:_EXTRA_TEMPLATES]
        ts = [_Template("", "", "other", TEMPLATE_UNGROUPABLE, c, (), (), 0, AGE_ANY, False, (0, 0), (0, 0))
              for c in cands]
        verdict = self.verify(ts, compiled)
        return [t for t, (_m, _a, status) in zip(ts, verdict) if status == "ungroupable"]

    def _ambiguous(self, regular: list[_Template], compiled) -> list[_Template]:
        """Medical principal diagnosis + an operating-room procedure of another MDC's surgical ADRG."""
        mdca_px: set[str] = set()
        for r in self.s.rules.values():
            if r.mdc == "MDCA":
                for lst in r.lists.values():
                    mdca_px.update(lst)
        for lst in self.s.mdc("MDCA").lists.values():
            mdca_px.update(lst)
        surgical_by_mdc: dict[str, list[str]] = {}
        for r in self.s.rules.values():
            if adrg_type(r.adrg) == "surgical" and r.mdc not in ("MDCA", "MDCP", "MDCZ", "MDCY"):
                for name, lst in r.lists.items():
                    if name.startswith("ss"):
                        surgical_by_mdc.setdefault(r.mdc, []).extend(
                            c for c in lst if c in self.surgical and c not in mdca_px and self.px_ok(c))
        medical = [t for t in regular if adrg_type(t.adrg) == "medical" and t.sex == 0 and not t.newborn
                   and t.mdc not in ("MDCA", "MDCP", "MDCZ", "MDCY") and t.age == AGE_ANY]
        mdcs = sorted(surgical_by_mdc)
        if not medical or len(mdcs) < 2:
            return []
        ts = []
        for k in range(min(_EXTRA_TEMPLATES, len(medical) * 2)):
            t = medical[_h(self.seed, f"amb-t:{k}") % len(medical)]
            other = [m for m in mdcs if m != t.mdc]
            m = other[_h(self.seed, f"amb-m:{k}") % len(other)]
            proc = sorted(set(surgical_by_mdc[m]))[_h(self.seed, f"amb-p:{k}") % len(set(surgical_by_mdc[m]))]
            ts.append(_Template("", "", t.mdc, TEMPLATE_AMBIGUOUS, t.pdx, t.secs, (proc,), 0, AGE_ANY, False,
                                (0, 0), (0, 0)))
        ts = list(dict.fromkeys(ts))
        verdict = self.verify(ts, compiled)
        qy = [t for t, (_m, _a, status) in zip(ts, verdict) if status == "QY"]
        if qy:  # the scheme checks for ambiguous records: keep the stays it flags
            return qy
        return [t for t, (_m, _a, status) in zip(ts, verdict) if status == "grouped"]

    def _pools(self) -> dict[str, list[str]]:
        mdcp = set(self.mdc_zd.get("MDCP", ()))
        mdcy = set(self.mdc_zd.get("MDCY", ()))
        excluded = self.sexed | self.cb.newborn_only | set(self.trauma_site) | self.rule_dx_any | mdcp | mdcy
        base = [c for c in self.s.diagnoses if c not in excluded and self.stable(c) and c in self.known_dx]
        mcc = [c for c in base if c in self.s.mcc]
        cc = [c for c in base if c in self.s.cc]
        other = [c for c in base if c not in self.s.mcc and c not in self.s.cc]
        newborn = [c for c in self.cb.newborn_only if c not in self.rule_dx_any and c not in self.sexed
                   and self.stable(c) and c in self.s.diagnoses]
        chapters = tuple(self.p.case_mix.extra_procedure_chapters)
        proc = [c for c in self.s.procedures if c not in self.surgical and c not in self.rule_px_all and self.px_ok(c)
                and c[:2] in chapters and not c.startswith(_SEX_SPECIFIC_PROCEDURES)]
        # outpatient diagnoses: principal-diagnosis codes of medical MDC lists, neutral, no trauma
        medical_zd: set[str] = set()
        for m, codes in self.mdc_zd.items():
            if m not in ("MDCA", "MDCP", "MDCY", "MDCZ", "MDCM", "MDCN", "MDCO"):
                medical_zd.update(codes)
        outpatient = [c for c in medical_zd if c not in excluded and self.stable(c) and c in self.s.diagnoses]
        out = {
            "other": _ranked(self.seed, "pool-other", other),
            "mcc": _ranked(self.seed, "pool-mcc", mcc),
            "cc": _ranked(self.seed, "pool-cc", cc),
            "newborn": _ranked(self.seed, "pool-newborn", newborn),
            "proc": _ranked(self.seed, "pool-proc", proc),
            "outpatient": _ranked(self.seed, "pool-outpatient", outpatient),
        }
        for name, codes in out.items():
            if not codes:
                raise ValueError(f"scheme {self.s.scheme_id}: the generator's {name} code pool is empty")
        out["dx"] = sorted(set(out["other"]) | set(out["mcc"]) | set(out["cc"]) | set(out["newborn"])
                           | set(out["outpatient"]))
        out["px"] = sorted(out["proc"])
        return out

    def _defect_codes(self) -> dict[str, list[str]]:
        cb = self.cb
        male = sorted(c for c in cb.male_only if self.stable(c) and c not in cb.newborn_only)
        female = sorted(c for c in cb.female_only if self.stable(c) and c not in cb.newborn_only)
        newborn = sorted(c for c in cb.newborn_only if self.stable(c) and c not in self.sexed)
        # unknown codes: a letter O typed for a zero, and local codes outside ICD-10 (checked against the book)
        unknown = []
        for c in _ranked(self.seed, "unknown", [c for c in self.s.diagnoses if "0" in c[1:]])[:200]:
            i = c.rfind("0")
            cand = c[:i] + "O" + c[i + 1:]
            nc = normalise_code(cand)
            if nc not in cb.diagnoses and cb.map_diagnosis(nc) is None:
                unknown.append(cand)
            if len(unknown) >= 48:
                break
        for n in range(16):
            cand = f"ZZ{n % 10}.{n:02d}9"
            if normalise_code(cand) not in cb.diagnoses and cb.map_diagnosis(normalise_code(cand)) is None:
                unknown.append(cand)
        if not (male and female and newborn and unknown):
            raise ValueError(f"scheme {self.s.scheme_id}: cannot find codes to plant sex/newborn/unknown defects")
        return {"male": male[:200], "female": female[:200], "newborn": newborn[:200], "unknown": unknown}


def _fen(value: float) -> float:
    return float(Decimal(repr(float(value))).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


_MEMO: dict[tuple, CaseCatalogue] = {}


def build_catalogue(scheme_dir: str | os.PathLike, province: Province, seed: int) -> CaseCatalogue:
    """The catalogue for one scheme folder, province and seed (memoised per process)."""
    folder = str(Path(scheme_dir).resolve())
    key = (folder, province.model_dump_json(), int(seed))
    hit = _MEMO.get(key)
    if hit is None:
        scheme = load_scheme(folder)
        hit = _MEMO[key] = _Builder(scheme, load_codebook(folder), province, int(seed), folder).build()
    return hit
