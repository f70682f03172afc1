"""Compile a :class:`~casemix.grouping.scheme.Scheme` into compact numpy structures.

The compiled form is what the vectorised core (:mod:`casemix.grouping.core`) runs on:

* integer ids for every diagnosis / procedure code of the scheme's vocabulary
  (``diagnoses.csv`` / ``procedures.csv`` first, then every other code referenced by a
  rule list, trauma table, CC/MCC/exclusion table, ``@surgical`` or a split); id ``n``
  (one past the end) is the sentinel "unknown code / no code", member of no list;
* one boolean membership row per distinct code list (``dx_member[k, id]``,
  ``px_member[k, id]``);
* MCC / CC / principal-exclusion tables as ``int32`` arrays indexed by diagnosis id
  (interned exclusion-table id, ``-1`` = not in the table);
* per trauma table, the site index (+1) of every diagnosis id;
* the driver program (MDC entries, ADRG rules, QY checks, DRG splits) as small nested
  lists (JSON-able) referring to those rows, and the table of possible outcomes with
  their result codes and trace text.

The compiled form can be cached on disk as one ``.npz`` file (no pickles: arrays plus a
JSON document) named after the scheme's content hash and :data:`CODE_VERSION`.
:func:`load_compiled` is memoised per (resolved path, content hash) inside the process,
so an executor compiles (or reads the cache) once.
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .scheme import QYCheck, Scheme, SchemeError, load_scheme, scheme_content_hash

__all__ = ["CODE_VERSION", "CompiledScheme", "compile_scheme", "load_compiled", "save_compiled", "read_compiled",
           "default_cache_dir"]

log = logging.getLogger(__name__)

#: bump whenever the compiled layout or the grouping semantics change (invalidates caches)
CODE_VERSION = "1"

# outcome kinds (column "status" of the output is derived from these)
OUT_NOGROUP = 0
OUT_INVALID = 1
KIND_GROUPED, KIND_QY, KIND_NOGROUP, KIND_INVALID = "grouped", "QY", "ungroupable", "invalid"


@dataclass(eq=False)
class CompiledScheme:
    """Compiled scheme.  ``arrays`` are numpy arrays, ``meta`` a JSON-able dict."""

    arrays: dict[str, np.ndarray]
    meta: dict[str, Any]
    _derived: dict[str, Any] = field(default_factory=dict, repr=False)

    # --- convenience accessors
    @property
    def scheme_id(self) -> str:
        return self.meta["scheme_id"]

    @property
    def content_hash(self) -> str:
        return self.meta["content_hash"]

    @property
    def validation_profile(self) -> str:
        return self.meta["validation_profile"]

    @property
    def n_dx(self) -> int:
        return int(self.arrays["dx_codes"].shape[0])

    @property
    def n_px(self) -> int:
        return int(self.arrays["px_codes"].shape[0])

    def derived(self, key: str, make):
        """Per-object lazily built helper (e.g. pyarrow value sets); not saved in the cache."""
        try:
            return self._derived[key]
        except KeyError:
            val = self._derived[key] = make()
            return val

    def __repr__(self) -> str:  # pragma: no cover - cosmetic
        return (f"CompiledScheme({self.scheme_id!r}, hash={self.content_hash[:12]}, dx={self.n_dx}, px={self.n_px}, "
                f"rules={len(self.meta['rules'])}, outcomes={len(self.meta['outcomes']['drg'])})")


# ----------------------------------------------------------------------------- compilation


class _Lists:
    """Deduplicated code lists -> membership rows."""

    def __init__(self, vocab_index: dict[str, int]):
        self.vocab_index = vocab_index
        self.rows: list[np.ndarray] = []
        self.keys: dict[frozenset, int] = {}

    def add(self, codes) -> int:
        key = frozenset(codes)
        if key not in self.keys:
            self.keys[key] = len(self.rows)
            self.rows.append(np.array(sorted(self.vocab_index[c] for c in key), dtype=np.int32))
        return self.keys[key]


def _intern(table: dict[str, int], val: str) -> int:
    if val not in table:
        table[val] = len(table)
    return table[val]


def compile_scheme(scheme: Scheme) -> CompiledScheme:
    """Compile ``scheme`` (takes well under a second for the bundled schemes)."""
    dx_codes = scheme.known_diagnosis_codes()
    px_codes = scheme.known_procedure_codes()
    dx_index = {c: i for i, c in enumerate(dx_codes)}
    px_index = {c: i for i, c in enumerate(px_codes)}
    ndx, npx = len(dx_codes), len(px_codes)
    dx_lists, px_lists = _Lists(dx_index), _Lists(px_index)
    trauma_tables: list[np.ndarray] = []
    dept_literals: list[str] = []

    def comp_cond(cond, owner, trauma_idx):
        op = cond.op
        if op == "always":
            return ["always"]
        if op in ("all", "any"):
            return [op, [comp_cond(c, owner, trauma_idx) for c in cond.children]]
        if op == "not":
            return ["not", comp_cond(cond.children[0], owner, trauma_idx)]
        if op in ("principal_dx_in", "any_dx_in", "secondary_dx_in"):
            li = dx_lists.add(scheme.resolve_list(owner, cond.list_name))
            return [{"principal_dx_in": "pdx", "any_dx_in": "adx", "secondary_dx_in": "sdx"}[op], li]
        if op in ("principal_proc_in", "any_proc_in"):
            li = px_lists.add(scheme.resolve_list(owner, cond.list_name))
            return [{"principal_proc_in": "pproc", "any_proc_in": "aproc"}[op], li]
        if op == "age_years_eq":
            return ["age_eq", cond.value]
        if op == "age_days_lte":
            return ["ad_lte", cond.value]
        if op == "birth_weight_gte":
            return ["bw_gte", cond.value]
        if op == "birth_weight_lt":
            return ["bw_lt", cond.value]
        if op == "sex_eq":
            return ["sex", int(cond.value)]
        if op == "trauma_sites_min":
            if trauma_idx is None:  # pragma: no cover - rejected by the loader
                raise SchemeError(f"trauma_sites_min used outside an MDC with trauma_sites ({owner})")
            return ["trauma", cond.value, trauma_idx]
        raise SchemeError(f"cannot compile rule term {op!r} ({owner})")  # pragma: no cover

    def comp_split(split):
        k = split.kind
        if k in ("always", "mcc", "mcc_or_cc"):
            return [k]
        if k == "age_years_lt":
            return ["age_lt", split.value]
        if k == "dept_eq":
            if split.value not in dept_literals:
                dept_literals.append(split.value)
            return ["dept_eq", dept_literals.index(split.value)]
        if k == "procs_include_all":
            return ["procs_all", [px_lists.add([c]) for c in split.value]]
        raise SchemeError(f"cannot compile split {k!r}")  # pragma: no cover

    # outcomes: parallel lists
    out = {"mdc": [], "adrg": [], "drg": [], "kind": [], "trace": [], "code_suffix": [], "rule": [], "mdc_index": []}

    def add_outcome(mdc, adrg, drg, kind, trace, code_suffix=False, rule=-1, mdc_index=-1):
        for k, v in zip(out, (mdc, adrg, drg, kind, trace, code_suffix, rule, mdc_index)):
            out[k].append(v)
        return len(out["mdc"]) - 1

    d = scheme.driver
    add_outcome(d.no_group_mdc, d.no_group_adrg, d.no_group_drg, KIND_NOGROUP, f"NOGROUP={d.no_group_drg}")  # 0
    add_outcome(None, None, None, KIND_INVALID, "INVALID")  # 1

    rule_index = {rid: i for i, rid in enumerate(scheme.rules)}
    rules_meta: list[dict] = [None] * len(scheme.rules)  # type: ignore[list-item]
    mdcs_meta = []
    for mi, m in enumerate(scheme.mdcs):
        owner = ("mdc", m.mdc)
        trauma_idx = None
        if m.trauma_sites is not None:
            site_of = m.trauma_site_of()
            arr = np.zeros(ndx + 1, dtype=np.int8)
            for code, s in site_of.items():
                arr[dx_index[code]] = s + 1
            trauma_idx = len(trauma_tables)
            trauma_tables.append(arr)
        entry_text = f"{m.mdc}:entry={m.entry.render()}"
        items = []
        for item in m.sequence:
            if isinstance(item, QYCheck):
                if not item.enabled:
                    continue  # disabled checks never fire (kept in the scheme for documentation)
                oid = add_outcome(m.mdc, "QY", item.result_drg, KIND_QY,
                                  f"{entry_text};QY={item.result_drg}:{item.when.render()}", mdc_index=mi)
                items.append(["qy", comp_cond(item.when, owner, trauma_idx), oid])
                continue
            r = scheme.rules[item]
            ri = rule_index[item]
            rowner = ("rule", r.rule_id)
            head = f"{entry_text};ADRG={r.adrg}(rule {r.rule_id}):{r.when.render()}"
            drgs = []
            for drg in r.drg_sequence:
                sp = scheme.drg_splits[drg].split
                oid = add_outcome(m.mdc, r.adrg, drg, KIND_GROUPED, f"{head};DRG={drg}:{sp.render()}",
                                  code_suffix=sp.kind in ("mcc", "mcc_or_cc"), rule=ri, mdc_index=mi)
                drgs.append([comp_split(sp), oid])
            ret = -1
            if r.if_no_drg_matches == "return_adrg":
                ret = add_outcome(m.mdc, r.adrg, r.adrg, KIND_GROUPED, f"{head};DRG={r.adrg}:return_adrg",
                                  rule=ri, mdc_index=mi)
            rules_meta[ri] = {"rule_id": r.rule_id, "adrg": r.adrg, "when": comp_cond(r.when, rowner, None),
                              "drgs": drgs, "return_adrg": ret}
            items.append(["rule", ri])
        mdcs_meta.append({"mdc": m.mdc, "entry": comp_cond(m.entry, owner, trauma_idx), "items": items,
                          "fallthrough": f"{m.mdc}:fallthrough"})

    # CC / MCC / principal exclusion
    tables: dict[str, int] = {}
    mcc_tab = np.full(ndx + 1, -1, dtype=np.int32)
    cc_tab = np.full(ndx + 1, -1, dtype=np.int32)
    pe_tab = np.full(ndx + 1, -1, dtype=np.int32)
    for src, arr in ((scheme.mcc, mcc_tab), (scheme.cc, cc_tab), (scheme.principal_exclusion, pe_tab)):
        for code, t in src.items():
            arr[dx_index[code]] = _intern(tables, t)

    # code maps: keys + target ids (-1 when the target is outside the vocabulary -> unknown)
    def code_map(mapping, index):
        keys = list(mapping)
        tgt = np.array([index.get(mapping[k], -1) for k in keys], dtype=np.int32)
        return np.array(keys, dtype=str), tgt

    dx_map_keys, dx_map_tgt = code_map(scheme.diagnosis_map, dx_index)
    px_map_keys, px_map_tgt = code_map(scheme.procedure_map, px_index)

    def csr(rows):
        offs = np.zeros(len(rows) + 1, dtype=np.int64)
        if rows:
            offs[1:] = np.cumsum([len(r) for r in rows])
            flat = np.concatenate(rows).astype(np.int32)
        else:
            flat = np.zeros(0, dtype=np.int32)
        return flat, offs

    dx_list_flat, dx_list_offs = csr(dx_lists.rows)
    px_list_flat, px_list_offs = csr(px_lists.rows)
    arrays = {
        "dx_codes": np.array(dx_codes, dtype=str),
        "px_codes": np.array(px_codes, dtype=str),
        "dx_map_keys": dx_map_keys,
        "dx_map_tgt": dx_map_tgt,
        "px_map_keys": px_map_keys,
        "px_map_tgt": px_map_tgt,
        "dx_list_flat": dx_list_flat,
        "dx_list_offs": dx_list_offs,
        "px_list_flat": px_list_flat,
        "px_list_offs": px_list_offs,
        "mcc_tab": mcc_tab,
        "cc_tab": cc_tab,
        "pe_tab": pe_tab,
    }
    for i, t in enumerate(trauma_tables):
        arrays[f"trauma_{i}"] = t
    meta = {
        "code_version": CODE_VERSION,
        "scheme_id": scheme.scheme_id,
        "content_hash": scheme.content_hash,
        "source_path": scheme.path,
        "source": dict(scheme.source),
        "validation_profile": scheme.validation_profile,
        "retry_single_procedure": scheme.driver.retry_with_single_secondary_procedure,
        "no_group": [d.no_group_mdc, d.no_group_adrg, d.no_group_drg],
        "n_trauma_tables": len(trauma_tables),
        "dept_literals": dept_literals,
        "exclusion_tables": list(tables),
        "mdcs": mdcs_meta,
        "rules": rules_meta,
        "outcomes": out,
    }
    return _finish(CompiledScheme(arrays=arrays, meta=meta))


def _membership(flat: np.ndarray, offs: np.ndarray, n: int) -> np.ndarray:
    """Boolean matrix [list, id]; column ``n`` (sentinel) is always False."""
    nl = len(offs) - 1
    m = np.zeros((nl, n + 1), dtype=bool)
    if len(flat):
        m[np.repeat(np.arange(nl), np.diff(offs)), flat] = True
    return m


def _finish(c: CompiledScheme) -> CompiledScheme:
    """Build the in-memory-only structures (membership matrices, object arrays for output)."""
    a = c.arrays
    c._derived["dx_member"] = _membership(a["dx_list_flat"], a["dx_list_offs"], c.n_dx)
    c._derived["px_member"] = _membership(a["px_list_flat"], a["px_list_offs"], c.n_px)
    c._derived["trauma"] = [a[f"trauma_{i}"] for i in range(c.meta["n_trauma_tables"])]
    o = c.meta["outcomes"]
    for k in ("mdc", "adrg", "drg", "kind", "trace"):
        arr = np.empty(len(o[k]), dtype=object)
        arr[:] = o[k]
        c._derived[f"out_{k}"] = arr
    c._derived["out_code_suffix"] = np.asarray(o["code_suffix"], dtype=bool)
    # +1 slot for "no code": index n -> None
    dxo = np.empty(c.n_dx + 1, dtype=object)
    dxo[:-1] = a["dx_codes"].tolist()
    c._derived["dx_codes_obj"] = dxo
    pxo = np.empty(c.n_px + 1, dtype=object)
    pxo[:-1] = a["px_codes"].tolist()
    c._derived["px_codes_obj"] = pxo
    return c


# ----------------------------------------------------------------------------- engine program (in memory only)
#
# The vectorised core does not interpret the rule trees row set by row set; it runs a flat
# "program" derived here once per CompiledScheme (lazily, on first use; never saved):
#
# * MDC gates: per diagnosis / procedure id a uint64 bitmask of the MDCs whose entry rule can
#   only hold when the principal diagnosis / procedure (or, for any_dx_in / secondary_dx_in
#   entries, a secondary diagnosis) is that code (a necessary condition of the entry rule).  A
#   record is only ever tested against the MDCs of its gate mask.
# * per MDC, every item (QY check / ADRG rule) condition in disjunctive normal form over
#   "leaf" bits: ``pdx``/``pproc`` leaves come from per-code uint64 tables, other leaves (ages,
#   weights, sex, any-procedure / secondary lists, trauma) are evaluated per row.  Term ``t``
#   holds for a row when ``bits & must[t] == must[t]`` and ``bits & clr[t] == 0``; the first term
#   that holds (terms are in item order) gives the item.
# * per item, its DRG splits as bit masks into a per-row split-predicate word and the outcome ids.
# * per MDC, when small enough (always for the bundled schemes), decision tables that fold the
#   above: a code's pdx (pproc) leaf bits only matter as one of a few distinct patterns
#   ("classes"), so (pdx class, pproc class, row leaf bits) -> first item and (item, split
#   predicate bits) -> outcome are tabulated by evaluating the terms on every combination; a
#   record is then decided with a few small gathers.
# * per-code bitsets of every list used by ``any_proc_in`` / ``secondary_dx_in`` / ``any_dx_in``
#   and ``procs_include_all`` (one gather + OR per row's list instead of one pass per list).

_MAX_TERMS = 64  # DNF larger than this: the whole condition becomes one row leaf (never the case in practice)


class _TooBig(Exception):
    pass


@dataclass(eq=False)
class MdcProgram:
    entry: list                     # compiled entry condition
    entry_exact: bool               # the gate is the entry rule itself (no need to evaluate it)
    n_words: int                    # leaf words per row
    n_leaves: int
    pdx_tab: np.ndarray | None      # (n_dx + 1, n_words) uint64 leaf bits per principal diagnosis id
    pproc_tab: np.ndarray | None    # (n_px + 1, n_words) uint64 leaf bits per principal procedure id
    row_leaves: list                # [(compiled condition, word, bit)] evaluated per row
    must: list                      # per word: (T,) uint64 or None when no term needs a bit of that word
    clr: list                       # per word: (T,) uint64 or None
    term_item: np.ndarray           # (T,) int32 item of each term (ascending)
    n_terms: int
    chunk: int                      # rows per block when matching (bounds the (rows, terms) temporaries)
    kind: np.ndarray                # (items,) int8: 0 ADRG rule, 1 QY check
    has_qy: bool
    qy_oid: np.ndarray              # (items,) int32 outcome of a QY check
    ret: np.ndarray                 # (items,) int32 return_adrg outcome or -1 ("continue")
    n_splits: int
    sp_word: np.ndarray             # (items, n_splits) int64 word of the split predicate
    sp_mask: np.ndarray             # (items, n_splits) uint64 bit of the split predicate (0 = padding)
    sp_out: np.ndarray              # (items, n_splits) int32 outcome id
    # decision tables (None when too large: then rows are grouped by leaf bits at run time):
    # item + 1 (0 = none) = item_tab[(pdx_cls[pdx] * n_pproc_cls + pproc_cls[pproc]) + row leaf pattern * n_pp_cls]
    # outcome = split_tab[(item + 1) * n_split_pat + split bits]; -1 no item (falls through), -2 "continue"
    pdx_cls: np.ndarray | None = None
    pproc_cls: np.ndarray | None = None
    n_pproc_cls: int = 1
    n_pp_cls: int = 1               # n_pdx_cls * n_pproc_cls: stride of the row leaf pattern
    item_tab: np.ndarray | None = None
    split_tab: np.ndarray | None = None
    n_split_pat: int = 0
    local_any: tuple = ()           # "px"/"dx": kinds used by several row leaves (one pass over the rows' lists)


@dataclass(eq=False)
class EngineProgram:
    mdcs: list
    pdx_gate: np.ndarray            # (n_dx + 1,) uint64
    pproc_gate: np.ndarray          # (n_px + 1,) uint64
    gate_all: int                   # MDCs without a gate (every record is a candidate)
    sec_gate: np.ndarray | None     # (n_dx + 1,) uint64: gates by a secondary diagnosis (OR over the row's)
    sec_gate_cls: np.ndarray | None  # (n_dx + 1,) uint8/16 index into sec_gate_masks (0 = none): narrow gather
    sec_gate_masks: np.ndarray | None
    px_any_cols: list               # per word: (n_px + 1,) uint64 bits of the lists used by any_proc_in / splits
    px_any_pos: dict                # procedure list index -> (word, bit)
    dx_any_cols: list               # per word: (n_dx + 1,) uint64 bits of the secondary_dx_in / any_dx_in lists
    dx_any_pos: dict
    split_specs: list               # compiled split predicates; index = bit (0 = always)
    n_split_words: int
    pdx_low: np.ndarray             # (n_dx + 1,) uint8 lowest MDC of pdx_gate (255 = none)
    pproc_low: np.ndarray           # (n_px + 1,) uint8
    all_low: int                    # lowest MDC of gate_all (255 = none)


def engine_program(c: CompiledScheme) -> EngineProgram:
    """The (memoised) engine program of ``c``."""
    return c.derived("engine_program", lambda: _build_program(c))


def _walk(p, fn):
    fn(p)
    if p[0] in ("all", "any"):
        for k in p[1]:
            _walk(k, fn)
    elif p[0] == "not":
        _walk(p[1], fn)


def _bit_columns(n_rows: int, members: list[np.ndarray]) -> list[np.ndarray]:
    """Per word, a (n_rows,) unsigned array with bit j % 64 of word j // 64 set on the rows in ``members[j]``."""
    nw = max(1, (len(members) + 63) // 64)
    cols = []
    for w in range(nw):
        nbits = min(64, len(members) - 64 * w)
        dt = np.uint8 if nbits <= 8 else np.uint16 if nbits <= 16 else np.uint32 if nbits <= 32 else np.uint64
        cols.append(np.zeros(n_rows, dtype=dt))  # narrowest type: smaller table, cheaper gathers
    for j, ids in enumerate(members):
        col = cols[j // 64]
        col[ids] |= col.dtype.type(1 << (j % 64))
    return cols


def _gate(p):
    """(pdx lists, pproc lists, secondary lists, exact): the condition implies that the principal
    diagnosis / principal procedure / a secondary diagnosis is in one of them ("exact": iff); None if
    there is no such necessary condition."""
    op = p[0]
    if op == "pdx":
        return {p[1]}, set(), set(), True
    if op == "pproc":
        return set(), {p[1]}, set(), True
    if op == "sdx":
        return set(), set(), {p[1]}, True
    if op == "adx":
        return {p[1]}, set(), {p[1]}, True
    if op == "all":
        for k in p[1]:
            g = _gate(k)
            if g is not None:
                return g[0], g[1], g[2], g[3] and len(p[1]) == 1
        return None
    if op == "any" and p[1]:
        gs = [_gate(k) for k in p[1]]
        if any(g is None for g in gs):
            return None
        return tuple(set().union(*(g[i] for g in gs)) for i in range(3)) + (all(g[3] for g in gs),)
    return None


def _dnf(p, neg: bool) -> list[tuple[frozenset, frozenset]]:
    """Condition -> list of (positive literals, negative literals); literal = ("pdx"|"pproc"|"row", key)."""
    op = p[0]
    if op == "always":
        return [] if neg else [(frozenset(), frozenset())]
    if op == "not":
        return _dnf(p[1], not neg)
    if op == "adx":
        return _dnf(["any", [["pdx", p[1]], ["sdx", p[1]]]], neg)
    if op in ("all", "any"):
        parts = [_dnf(k, neg) for k in p[1]]
        if (op == "all") != neg:  # conjunction
            terms = [(frozenset(), frozenset())]
            for part in parts:
                terms = [(a | c, b | d) for a, b in terms for c, d in part if not ((a | c) & (b | d))]
                if len(terms) > _MAX_TERMS:
                    raise _TooBig
            return terms
        terms = [t for part in parts for t in part]
        if len(terms) > _MAX_TERMS:
            raise _TooBig
        return terms
    lit = ("pdx", p[1]) if op == "pdx" else ("pproc", p[1]) if op == "pproc" else ("row", json.dumps(p))
    return [(frozenset(), frozenset([lit]))] if neg else [(frozenset([lit]), frozenset())]


def _build_program(c: CompiledScheme) -> EngineProgram:
    a, meta = c.arrays, c.meta
    ndx, npx = c.n_dx, c.n_px
    mdcs = meta["mdcs"]
    rules = meta["rules"]
    if len(mdcs) > 63:
        raise ValueError(f"{c.scheme_id}: at most 63 MDCs are supported, got {len(mdcs)}")

    def dx_ids(li):
        return a["dx_list_flat"][a["dx_list_offs"][li]:a["dx_list_offs"][li + 1]]

    def px_ids(li):
        return a["px_list_flat"][a["px_list_offs"][li]:a["px_list_offs"][li + 1]]

    # split predicates (bit 0 = always)
    split_index = {json.dumps(["always"]): 0}
    split_specs = [["always"]]
    for r in rules:
        for sp, _oid in r["drgs"]:
            key = json.dumps(sp)
            if key not in split_index:
                split_index[key] = len(split_specs)
                split_specs.append(sp)

    # lists used by "any element of the row" terms
    px_any: dict[int, int] = {}
    dx_any: dict[int, int] = {}

    def collect(p):
        if p[0] == "aproc":
            px_any.setdefault(p[1], len(px_any))
        elif p[0] in ("sdx", "adx"):
            dx_any.setdefault(p[1], len(dx_any))

    for m in mdcs:
        _walk(m["entry"], collect)
        for item in m["items"]:
            if item[0] == "qy":
                _walk(item[1], collect)
    for r in rules:
        _walk(r["when"], collect)
    for sp in split_specs:
        if sp[0] == "procs_all":
            for li in sp[1]:
                px_any.setdefault(li, len(px_any))
    px_any_cols = _bit_columns(npx + 1, [px_ids(li) for li in px_any])
    dx_any_cols = _bit_columns(ndx + 1, [dx_ids(li) for li in dx_any])

    pdx_gate = np.zeros(ndx + 1, dtype=np.uint64)
    pproc_gate = np.zeros(npx + 1, dtype=np.uint64)
    sec_gate = np.zeros(ndx + 1, dtype=np.uint64)
    gate_all = 0
    progs = []
    for mi, m in enumerate(mdcs):
        bit = np.uint64(1 << mi)
        g = _gate(m["entry"])
        if g is None:
            gate_all |= 1 << mi
            exact = False
        else:
            for li in g[0]:
                pdx_gate[dx_ids(li)] |= bit
            for li in g[1]:
                pproc_gate[px_ids(li)] |= bit
            for li in g[2]:
                sec_gate[dx_ids(li)] |= bit
            exact = g[3]
        progs.append(_mdc_program(m, rules, split_index, ndx, npx, dx_ids, px_ids, exact))
    for mp in progs:
        _decision_tables(mp, len(split_specs))
    sec_cls = sec_masks = None
    if sec_gate.any():
        sec_masks, inv = np.unique(sec_gate, return_inverse=True)  # sec_masks[0] == 0 (most codes)
        sec_cls = inv.astype(np.uint8 if len(sec_masks) <= 256 else np.uint16 if len(sec_masks) <= 65536 else np.int64)
    return EngineProgram(mdcs=progs, pdx_gate=pdx_gate, pproc_gate=pproc_gate, gate_all=gate_all,
                         sec_gate=sec_gate if sec_gate.any() else None,
                         sec_gate_cls=sec_cls, sec_gate_masks=sec_masks,
                         pdx_low=_lowest_bit(pdx_gate), pproc_low=_lowest_bit(pproc_gate),
                         all_low=int(_lowest_bit(np.array([gate_all], dtype=np.uint64))[0]),
                         px_any_cols=px_any_cols, px_any_pos={li: divmod(j, 64) for li, j in px_any.items()},
                         dx_any_cols=dx_any_cols, dx_any_pos={li: divmod(j, 64) for li, j in dx_any.items()},
                         split_specs=split_specs, n_split_words=(len(split_specs) + 63) // 64)


def _mdc_program(m, rules, split_index, ndx, npx, dx_ids, px_ids, entry_exact) -> MdcProgram:
    items = m["items"]
    n_items = len(items)
    kind = np.zeros(n_items, dtype=np.int8)
    qy_oid = np.full(n_items, -1, dtype=np.int32)
    ret = np.full(n_items, -1, dtype=np.int32)
    splits: list[list] = []
    item_terms = []
    for i, item in enumerate(items):
        if item[0] == "qy":
            cond = item[1]
            kind[i] = 1
            qy_oid[i] = item[2]
            splits.append([])
        else:
            rule = rules[item[1]]
            cond = rule["when"]
            ret[i] = rule["return_adrg"]
            splits.append(rule["drgs"])
        try:
            terms = _dnf(cond, False)
        except _TooBig:
            terms = [(frozenset([("row", json.dumps(cond))]), frozenset())]
        # deterministic literal order; drop duplicate terms
        seen = set()
        uniq = []
        for t in terms:
            if t not in seen:
                seen.add(t)
                uniq.append(t)
        item_terms.append(uniq)

    lits = sorted({lit for terms in item_terms for t in terms for part in t for lit in part})
    lit_index = {lit: j for j, lit in enumerate(lits)}
    n_words = max(1, (len(lits) + 63) // 64)
    pdx_tab = pproc_tab = None
    row_leaves = []
    for lit, j in lit_index.items():
        w, b = divmod(j, 64)
        if lit[0] == "pdx":
            if pdx_tab is None:
                pdx_tab = np.zeros((ndx + 1, n_words), dtype=np.uint64)
            pdx_tab[dx_ids(lit[1]), w] |= np.uint64(1 << b)
        elif lit[0] == "pproc":
            if pproc_tab is None:
                pproc_tab = np.zeros((npx + 1, n_words), dtype=np.uint64)
            pproc_tab[px_ids(lit[1]), w] |= np.uint64(1 << b)
        else:
            row_leaves.append((json.loads(lit[1]), w, b))

    n_terms = sum(len(t) for t in item_terms)
    must = np.zeros((n_terms, n_words), dtype=np.uint64)
    clr = np.zeros((n_terms, n_words), dtype=np.uint64)
    term_item = np.zeros(n_terms, dtype=np.int32)
    k = 0
    for i, terms in enumerate(item_terms):
        for pos, negs in terms:
            for arr, lits_ in ((must, pos), (clr, negs)):
                for lit in lits_:
                    w, b = divmod(lit_index[lit], 64)
                    arr[k, w] |= np.uint64(1 << b)
            term_item[k] = i
            k += 1

    n_splits = max([1] + [len(s) for s in splits])
    sp_word = np.zeros((n_items, n_splits), dtype=np.int64)
    sp_mask = np.zeros((n_items, n_splits), dtype=np.uint64)
    sp_out = np.full((n_items, n_splits), -1, dtype=np.int32)
    for i, drgs in enumerate(splits):
        for s, (sp, oid) in enumerate(drgs):
            w, b = divmod(split_index[json.dumps(sp)], 64)
            sp_word[i, s] = w
            sp_mask[i, s] = np.uint64(1 << b)
            sp_out[i, s] = oid
    uses = {"px": 0, "dx": 0}

    def count(q):
        if q[0] == "aproc":
            uses["px"] += 1
        elif q[0] in ("sdx", "adx"):
            uses["dx"] += 1

    for p, _w, _b in row_leaves:
        _walk(p, count)
    return MdcProgram(
        local_any=tuple(k for k, v in uses.items() if v >= 2),
        entry=m["entry"], entry_exact=entry_exact, n_words=n_words, n_leaves=len(lits),
        pdx_tab=pdx_tab, pproc_tab=pproc_tab,
        row_leaves=row_leaves,
        must=[np.ascontiguousarray(must[:, w]) if must[:, w].any() else None for w in range(n_words)],
        clr=[np.ascontiguousarray(clr[:, w]) if clr[:, w].any() else None for w in range(n_words)],
        term_item=term_item, n_terms=n_terms, chunk=max(256, 262144 // max(1, n_terms)),
        kind=kind, has_qy=bool((kind == 1).any()), qy_oid=qy_oid, ret=ret,
        n_splits=n_splits, sp_word=sp_word, sp_mask=sp_mask, sp_out=sp_out)


# ----------------------------------------------------------------------------- disk cache


def default_cache_dir() -> Path:
    env = os.environ.get("CASEMIX_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "casemix"


def _cache_file(cache_dir: Path, content_hash: str) -> Path:
    return Path(cache_dir) / f"grouping-{content_hash}-v{CODE_VERSION}.npz"


def save_compiled(compiled: CompiledScheme, path: str | os.PathLike) -> Path:
    """Write ``compiled`` to ``path`` (atomically: temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = np.array(json.dumps(compiled.meta, ensure_ascii=False))
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, __meta__=meta, **compiled.arrays)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def read_compiled(path: str | os.PathLike) -> CompiledScheme:
    """Read a file written by :func:`save_compiled` (no pickles are loaded)."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if k != "__meta__"}
        meta = json.loads(str(z["__meta__"]))
    if meta.get("code_version") != CODE_VERSION:
        raise ValueError(f"{path}: compiled with code version {meta.get('code_version')!r}, need {CODE_VERSION!r}")
    return _finish(CompiledScheme(arrays=arrays, meta=meta))


_MEMO: dict[tuple[str, str], CompiledScheme] = {}
_MEMO_LOCK = threading.Lock()


def load_compiled(scheme_dir: str | os.PathLike, cache_dir: str | os.PathLike | None = None, *,
                  use_disk_cache: bool = True) -> CompiledScheme:
    """Compiled form of the scheme folder ``scheme_dir``.

    Order of look-ups: in-process memo keyed by (resolved path, content hash) -> on-disk
    cache ``<cache_dir>/grouping-<hash>-v<CODE_VERSION>.npz`` -> load + validate + compile
    (then written to the cache).  ``cache_dir`` defaults to ``$CASEMIX_CACHE_DIR`` or
    ``~/.cache/casemix``.  A cache file that cannot be read is replaced; a cache dir that
    cannot be written is ignored (with a warning).  Raises :class:`SchemeError` for an
    invalid scheme.
    """
    folder = Path(scheme_dir).resolve()
    content_hash = scheme_content_hash(folder)
    key = (str(folder), content_hash)
    with _MEMO_LOCK:
        hit = _MEMO.get(key)
    if hit is not None:
        return hit
    compiled = None
    cfile = _cache_file(Path(cache_dir) if cache_dir is not None else default_cache_dir(), content_hash)
    if use_disk_cache and cfile.is_file():
        try:
            compiled = read_compiled(cfile)
            if compiled.content_hash != content_hash:
                compiled = None
        except Exception as e:  # corrupt / stale cache: recompile
            log.warning("ignoring unreadable grouping cache %s: %s", cfile, e)
            compiled = None
    if compiled is None:
        compiled = compile_scheme(load_scheme(folder))
        if compiled.content_hash != content_hash:  # folder changed while loading: try again later
            content_hash = compiled.content_hash
            key = (str(folder), content_hash)
            cfile = _cache_file(cfile.parent, content_hash)
        if use_disk_cache:
            try:
                save_compiled(compiled, cfile)
            except OSError as e:
                log.warning("cannot write grouping cache %s: %s", cfile, e)
    with _MEMO_LOCK:
        _MEMO[key] = compiled
    return compiled


def clear_memo() -> None:
    """Forget the in-process memo (for tests)."""
    with _MEMO_LOCK:
        _MEMO.clear()


def _lowest_bit(x: np.ndarray) -> np.ndarray:
    """uint8 index of the lowest set bit of each uint64 (255 for 0)."""
    out = np.full(len(x), 255, dtype=np.uint8)
    for i in range(63, -1, -1):  # descending: the lowest set bit is written last
        out[(x & np.uint64(1 << i)) != 0] = i
    return out


_MAX_ITEM_TAB = 1 << 16
_MAX_SPLIT_BITS = 12


def _first_item(mp: MdcProgram, bits: np.ndarray, start: np.ndarray | None = None) -> np.ndarray:
    """Item of the first DNF term holding for each leaf word in ``bits`` (single word), -1 if none."""
    ok = np.ones((len(bits), mp.n_terms), dtype=bool)
    col = bits[:, None]
    if mp.must[0] is not None:
        ok &= (col & mp.must[0]) == mp.must[0]
    if mp.clr[0] is not None:
        ok &= (col & mp.clr[0]) == 0
    if start is not None:
        ok &= mp.term_item >= start[:, None]
    t = ok.argmax(axis=1)
    return np.where(ok[np.arange(len(bits)), t], mp.term_item[t], -1)


def _decision_tables(mp: MdcProgram, n_split_specs: int) -> None:
    """Fill the decision tables of ``mp`` when they are small enough (else leave them None)."""
    if mp.n_words != 1 or not mp.n_terms or n_split_specs > _MAX_SPLIT_BITS:
        return

    def classes(tab):
        if tab is None:
            return None, np.zeros(1, dtype=np.uint64)
        import pandas as pd  # (only needed here; keeps the module import light)

        cls, uniq = pd.factorize(tab[:, 0])
        return cls.astype(np.int32), np.asarray(uniq, dtype=np.uint64)

    pdx_cls, pdx_bits = classes(mp.pdx_tab)
    pproc_cls, pproc_bits = classes(mp.pproc_tab)
    k = len(mp.row_leaves)
    n_pp = len(pdx_bits) * len(pproc_bits)
    size = n_pp << k
    if size > _MAX_ITEM_TAB:
        return
    # every (pdx class, pproc class, row leaf pattern): its leaf word and first matching item
    combo = np.arange(size)
    pat, rest = np.divmod(combo, n_pp)
    bits = pdx_bits[rest // len(pproc_bits)] | pproc_bits[rest % len(pproc_bits)]
    for j, (_p, w, b) in enumerate(mp.row_leaves):
        bits |= ((pat >> j) & 1).astype(np.uint64) << np.uint64(b)
    item = _first_item(mp, bits)
    # every (item, split bits): outcome (QY / first split holding / return_adrg), -2 when "continue"
    n_pat = 1 << n_split_specs
    v = np.arange(n_pat, dtype=np.uint64)
    split_tab = np.full((len(mp.kind) + 1, n_pat), -1, dtype=np.int32)  # row 0: no item
    for i in range(len(mp.kind)):
        if mp.kind[i] == 1:
            split_tab[i + 1] = mp.qy_oid[i]
            continue
        out = np.full(n_pat, -1, dtype=np.int32)
        for s in range(mp.n_splits):
            sel = ((v & mp.sp_mask[i, s]) != 0) & (out < 0)
            out[sel] = mp.sp_out[i, s]
        out[out < 0] = mp.ret[i] if mp.ret[i] >= 0 else -2
        split_tab[i + 1] = out
    mp.pdx_cls, mp.pproc_cls = pdx_cls, pproc_cls
    mp.n_pproc_cls, mp.n_pp_cls = len(pproc_bits), n_pp
    mp.item_tab = (item + 1).astype(np.int32)
    mp.split_tab = split_tab.ravel()
    mp.n_split_pat = n_pat
