"""Vectorised DRG grouping of a pandas DataFrame (no Spark, no Java, no per-record loop).

The driver of the scheme README is run over the whole batch at once: a set of
"still undecided" row indices goes through the MDCs in order; each MDC entry rule,
QY check, ADRG rule and DRG split is evaluated as numpy operations on exactly the rows
that reach it, and the rows it decides are removed.  The only Python loops are over
MDCs / rules / splits (a few hundred iterations per batch).

Secondary diagnoses and procedures are handled as one flat array of code ids per
column plus row offsets (CSR layout), built with pyarrow compute from either Arrow
``list<string>`` values / python lists / numpy arrays per row, or ``|``-separated strings.

See :func:`group_frame` for the input and output contract and :data:`TRACE_FORMAT` for
the trace column.
"""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .compile import OUT_INVALID, OUT_NOGROUP, CompiledScheme, load_compiled

__all__ = [
    "group_frame",
    "STATUS_GROUPED",
    "STATUS_QY",
    "STATUS_UNGROUPABLE",
    "STATUS_INVALID",
    "STATUSES",
    "INPUT_COLUMNS",
    "REQUIRED_INPUT_COLUMNS",
    "OUTPUT_COLUMNS",
    "INVALID_REASONS",
    "SEX_VALUES",
    "TRACE_FORMAT",
]

STATUS_GROUPED = "grouped"
STATUS_QY = "QY"
STATUS_UNGROUPABLE = "ungroupable"
STATUS_INVALID = "invalid"
STATUSES = (STATUS_GROUPED, STATUS_QY, STATUS_UNGROUPABLE, STATUS_INVALID)

INPUT_COLUMNS = ("sex", "age_years", "age_days", "birth_weight_g", "dept", "los_days", "discharge_status",
                 "principal_dx", "secondary_dxs", "procedures")
#: columns that must exist in the input frame (the others are treated as all-null when absent)
REQUIRED_INPUT_COLUMNS = ("sex", "age_years", "principal_dx")
OUTPUT_COLUMNS = ("mdc", "adrg", "drg", "status", "has_mcc", "has_cc", "cc_code", "invalid_reason", "trace")

#: reasons for status "invalid", in priority order (a record gets the first that applies)
INVALID_REASONS = (
    "MISSING_PRINCIPAL_DX",   # principal_dx null/empty
    "BAD_SEX",                # sex not one of SEX_VALUES
    "MISSING_AGE",            # age_years null / not a number
    "MISSING_AGE_DAYS",       # newborn_strict profile only (chs-drg-1.1): age_years == 0 and age_days null
    "MISSING_BIRTH_WEIGHT",   # newborn_strict only: age_years == 0, age_days <= 28, birth weight null or 0
    "UNKNOWN_DX_CODE",        # a principal/secondary diagnosis not in the scheme vocabulary (after code maps)
    "UNKNOWN_PROC_CODE",      # a procedure not in the scheme vocabulary (after code maps)
)
_R = {r: i + 1 for i, r in enumerate(INVALID_REASONS)}

#: accepted spellings of sex -> "1" (male) / "2" (female); anything else is BAD_SEX
SEX_VALUES = {"1": 1, "2": 2, "M": 1, "F": 2, "m": 1, "f": 2, "男": 1, "女": 2, 1: 1, 2: 2}

TRACE_FORMAT = """\
trace := segment (";" segment)*          (format version 1; no spaces except in "(rule <id>)")
segments, in the order they happened:
  <MDC>:fallthrough                      entry rule of <MDC> held but no item of the MDC produced a result
  <MDC>:entry=<cond>                     the MDC that produced the result, with its entry rule
  ADRG=<adrg>(rule <rule_id>):<cond>     the ADRG rule that matched, with its condition
  DRG=<drg>:<split>                      the DRG chosen; <split> is the predicate that held:
                                         always | mcc(<code>) | mcc_or_cc(<code>) | age_years_lt(<n>) |
                                         dept_eq(<dept>) | procs_include_all(<c1>+<c2>) | return_adrg
                                         (<code> = cc_code: the first counted MCC, else the first counted CC)
  QY=<drg>:<cond>                        an enabled QY (ambiguous-record) check fired
  NOGROUP=<drg>                          no MDC produced a result (drg = 0000 / 0000A)
  RETRY=<k>(<proc>)                      zhejiang retry: grouping re-run with only procedure number <k>
                                         (1-based); the segments after it describe that run
  INVALID=<reason>[(<code>)]             input validation failed (<code> = first unknown code)
<cond> is the rule rendered compactly: term(arg), a&b (all), a|b (any), !a (not), nested
combinations in parentheses, e.g. principal_dx_in(zd)&!principal_proc_in(@surgical).
Example: MDCA:fallthrough;MDCF:entry=principal_dx_in(zd);ADRG=FB2(rule FB2):principal_proc_in(ss);DRG=FB21:mcc(I50.900)
"""


# ============================================================================ input parsing


def _to_arrow(s: pd.Series) -> pa.Array | None:
    arr = s.array
    if hasattr(arr, "__arrow_array__"):
        a = arr.__arrow_array__()
        if isinstance(a, pa.ChunkedArray):
            a = a.combine_chunks()
        return a
    return None


def _string_array(s: pd.Series | None, n: int, col: str) -> pa.Array:
    """Column of single codes -> pyarrow string array (null for missing; not trimmed yet)."""
    if s is None:
        return pa.nulls(n, pa.string())
    a = _to_arrow(s)
    if a is None:
        try:
            a = pa.array(s.to_numpy(dtype=object), type=pa.string(), from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
            raise TypeError(f"column {col!r} must hold code strings: {e}") from None
    if pa.types.is_dictionary(a.type):
        a = a.cast(a.type.value_type)
    if not (pa.types.is_string(a.type) or pa.types.is_large_string(a.type)):
        if pa.types.is_null(a.type):
            return pa.nulls(n, pa.string())
        raise TypeError(f"column {col!r} must hold code strings, got arrow type {a.type}")
    if pa.types.is_large_string(a.type):
        a = a.cast(pa.string())
    return a


def _list_column(s: pd.Series | None, n: int, col: str) -> tuple[pa.Array, np.ndarray]:
    """Column of code lists -> (flat codes, row index of each code); not trimmed, blanks not yet dropped.

    Accepts per row: a python list / tuple / numpy array of strings, an Arrow
    list<string> value, a '|'-separated string, or null/empty.  Row indices are ascending.
    """
    if s is None:
        return pa.array([], type=pa.string()), np.zeros(0, dtype=np.int64)
    a = _to_arrow(s)
    if a is None:
        vals = s.to_numpy(dtype=object)
        try:
            # type inference in C++: all strings -> string, all list-likes -> list<...>;
            # a mix of strings and lists raises (handled below)
            a = pa.array(vals, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            # rare mixed column (some rows '|'-strings, some lists): normalise row by row
            fixed = [v.split("|") if isinstance(v, str) else v for v in vals]
            try:
                a = pa.array(fixed, type=pa.list_(pa.string()), from_pandas=True)
            except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
                raise TypeError(f"column {col!r} must hold, per row, a list of code strings or a "
                                f"'|'-separated string: {e}") from None
    if pa.types.is_dictionary(a.type):
        a = a.cast(a.type.value_type)
    if pa.types.is_null(a.type):
        return pa.array([], type=pa.string()), np.zeros(0, dtype=np.int64)
    if pa.types.is_string(a.type) or pa.types.is_large_string(a.type):
        a = pc.split_pattern(a, "|")
    if not (pa.types.is_list(a.type) or pa.types.is_large_list(a.type)):
        raise TypeError(f"column {col!r} must hold code lists or '|'-separated strings, got arrow type {a.type}")
    if not pa.types.is_string(a.type.value_type):
        a = a.cast(pa.list_(pa.string()))
    flat = pc.list_flatten(a)
    if pa.types.is_large_string(flat.type):
        flat = flat.cast(pa.string())
    rows = np.asarray(pc.list_parent_indices(a).to_numpy(zero_copy_only=False), dtype=np.int64)
    return flat, rows


def _raw_lookup(c: CompiledScheme, codes: pa.Array, kind: str, apply_maps: bool) -> np.ndarray:
    """Exact code strings -> vocabulary ids (int32), -1 when not found / null."""
    vocab = c.derived(f"{kind}_vocab_pa", lambda: pa.array(c.arrays[f"{kind}_codes"].tolist(), type=pa.string()))
    ids = pc.fill_null(pc.index_in(codes, value_set=vocab), -1).to_numpy(zero_copy_only=False).astype(np.int32)
    if apply_maps:
        keys = c.derived(f"{kind}_mapkeys_pa", lambda: pa.array(c.arrays[f"{kind}_map_keys"].tolist(), type=pa.string()))
        mi = pc.fill_null(pc.index_in(codes, value_set=keys), -1).to_numpy(zero_copy_only=False)
        hit = mi >= 0
        ids[hit] = c.arrays[f"{kind}_map_tgt"][mi[hit]]
    return ids


def _lookup(c: CompiledScheme, codes: pa.Array, kind: str, apply_maps: bool) -> tuple[np.ndarray, np.ndarray]:
    """Code strings -> (vocabulary ids, int32, unknown -> sentinel n; positions of null/blank codes).

    Codes are looked up as they are first; only the misses (normally none) are stripped
    of surrounding whitespace and looked up again, which keeps clean data on the fast path.
    """
    n = c.n_dx if kind == "dx" else c.n_px
    if len(codes) == 0:
        return np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int64)
    ids = _raw_lookup(c, codes, kind, apply_maps)
    miss = np.flatnonzero(ids < 0)
    blank = np.zeros(0, dtype=np.int64)
    if len(miss):
        sub = pc.utf8_trim_whitespace(codes.take(pa.array(miss)))
        ids[miss] = _raw_lookup(c, sub, kind, apply_maps)
        blank = miss[pc.fill_null(pc.equal(pc.utf8_length(sub), 0), True).to_numpy(zero_copy_only=False)]
    ids[ids < 0] = n
    return ids, blank


def _drop(flat: pa.Array, rows: np.ndarray, ids: np.ndarray, blank: np.ndarray):
    """Remove blank/null items from a flattened list column."""
    if not len(blank):
        return flat, rows, ids
    keep = np.ones(len(ids), dtype=bool)
    keep[blank] = False
    return flat.filter(pa.array(keep)), rows[keep], ids[keep]


def _texts(arr: pa.Array, pos: np.ndarray) -> np.ndarray:
    """Stripped code strings at ``pos`` (object array) -- for the few codes shown in traces."""
    return _obj([None if v is None else v.strip() for v in arr.take(pa.array(pos, type=pa.int64())).to_pylist()])


def _numeric(s: pd.Series | None, n: int) -> np.ndarray:
    if s is None:
        return np.full(n, np.nan)
    if not pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype):
        s = pd.to_numeric(s.astype(object).where(s.notna(), None), errors="coerce")
    return s.to_numpy(dtype=np.float64, na_value=np.nan)


def _sex(s: pd.Series, n: int) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        v = s.to_numpy(dtype=np.float64, na_value=np.nan)
        return np.where(v == 1, 1, np.where(v == 2, 2, 0)).astype(np.int8)
    o = s.astype(object)
    m = o.map(SEX_VALUES).to_numpy(dtype=np.float64, na_value=np.nan)
    miss = np.flatnonzero(np.isnan(m))
    if len(miss):  # only unmatched values: retry stripped strings
        sub = o.iloc[miss].str.strip()  # NaN for non-strings
        m[miss] = sub.map(SEX_VALUES).to_numpy(dtype=np.float64, na_value=np.nan)
    return np.nan_to_num(m, nan=0.0).astype(np.int8)


# ============================================================================ batch


def _csr_positions(offs: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flat positions of the elements of rows ``idx`` and their local row numbers."""
    starts = offs[idx]
    lens = offs[idx + 1] - starts
    tot = int(lens.sum())
    if tot == 0:
        z = np.zeros(0, dtype=np.int64)
        return z, z
    new_offs = np.cumsum(lens) - lens
    pos = np.repeat(starts - new_offs, lens) + np.arange(tot)
    local = np.repeat(np.arange(len(idx)), lens)
    return pos, local


class _Batch:
    """Parsed batch: code ids + CSR lists + numeric fields (all numpy)."""

    __slots__ = ("n", "pdx", "sec_ids", "sec_offs", "px_ids", "px_offs", "pproc", "sex", "age", "ad", "bw",
                 "dept", "has_mcc", "has_any", "full")

    def take(self, rows: np.ndarray, single_proc: np.ndarray) -> "_Batch":
        """Sub-batch of ``rows`` whose procedure list is replaced by one procedure each."""
        b = _Batch()
        b.n = len(rows)
        b.pdx = self.pdx[rows]
        pos, local = _csr_positions(self.sec_offs, rows)
        b.sec_ids = self.sec_ids[pos]
        b.sec_offs = np.zeros(b.n + 1, dtype=np.int64)
        b.sec_offs[1:] = np.cumsum(self.sec_offs[rows + 1] - self.sec_offs[rows])
        b.px_ids = single_proc.astype(np.int32)
        b.px_offs = np.arange(b.n + 1, dtype=np.int64)
        b.pproc = b.px_ids.copy()
        for k in ("sex", "age", "ad", "bw", "has_mcc", "has_any"):
            setattr(b, k, getattr(self, k)[rows])
        b.dept = [d[rows] for d in self.dept]
        return b


def _csr_any(member: np.ndarray, ids: np.ndarray, offs: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """For each row of ``idx``: does any element of its list have member[id]?"""
    pos, local = _csr_positions(offs, idx)
    out = np.zeros(len(idx), dtype=bool)
    if len(pos):
        out[local[member[ids[pos]]]] = True
    return out


class _Engine:
    def __init__(self, c: CompiledScheme, b: _Batch):
        self.c = c
        self.b = b
        self.dxm = c._derived["dx_member"]
        self.pxm = c._derived["px_member"]
        self.trauma = c._derived["trauma"]

    # ---------------------------------------------------------------- rules
    def cond(self, p, idx: np.ndarray) -> np.ndarray:
        op = p[0]
        b = self.b
        if op == "pdx":
            return self.dxm[p[1]][b.pdx[idx]]
        if op == "pproc":
            return self.pxm[p[1]][b.pproc[idx]]
        if op == "all" or op == "any":
            kids = p[1]
            res = self.cond(kids[0], idx)
            for k in kids[1:]:
                todo = np.flatnonzero(res) if op == "all" else np.flatnonzero(~res)
                if not len(todo):
                    break
                r = self.cond(k, idx[todo])
                if op == "all":
                    res[todo[~r]] = False
                else:
                    res[todo[r]] = True
            return res
        if op == "not":
            return ~self.cond(p[1], idx)
        if op == "aproc":
            return _csr_any(self.pxm[p[1]], b.px_ids, b.px_offs, idx)
        if op == "sdx":
            return _csr_any(self.dxm[p[1]], b.sec_ids, b.sec_offs, idx)
        if op == "adx":
            res = self.dxm[p[1]][b.pdx[idx]]
            todo = np.flatnonzero(~res)
            if len(todo):
                res[todo] = _csr_any(self.dxm[p[1]], b.sec_ids, b.sec_offs, idx[todo])
            return res
        if op == "always":
            return np.ones(len(idx), dtype=bool)
        if op == "age_eq":
            return b.age[idx] == p[1]
        if op == "ad_lte":
            return b.ad[idx] <= p[1]  # NaN (unknown) -> False
        if op == "bw_gte":
            w = b.bw[idx]
            return (w != 0) & (w >= p[1])  # NaN -> False
        if op == "bw_lt":
            w = b.bw[idx]
            return (w != 0) & (w < p[1])
        if op == "sex":
            return b.sex[idx] == p[1]
        if op == "trauma":
            return self.trauma_sites(p[2], idx) >= p[1]
        raise ValueError(f"unknown compiled rule op {op!r}")  # pragma: no cover

    def trauma_sites(self, table: int, idx: np.ndarray) -> np.ndarray:
        site = self.trauma[table]  # dx id -> site+1 (0 = none)
        b = self.b
        bits = np.zeros(len(idx), dtype=np.int64)
        ps = site[b.pdx[idx]].astype(np.int64)
        bits[ps > 0] = np.left_shift(1, ps[ps > 0] - 1)
        pos, local = _csr_positions(b.sec_offs, idx)
        if len(pos):
            ss = site[b.sec_ids[pos]].astype(np.int64)
            hit = ss > 0
            np.bitwise_or.at(bits, local[hit], np.left_shift(1, ss[hit] - 1))
        return _popcount(bits)

    def split(self, p, idx: np.ndarray) -> np.ndarray:
        op = p[0]
        b = self.b
        if op == "always":
            return np.ones(len(idx), dtype=bool)
        if op == "mcc":
            return b.has_mcc[idx]
        if op == "mcc_or_cc":
            return b.has_any[idx]
        if op == "age_lt":
            return b.age[idx] < p[1]
        if op == "dept_eq":
            return b.dept[p[1]][idx]
        if op == "procs_all":
            res = np.ones(len(idx), dtype=bool)
            for li in p[1]:
                todo = np.flatnonzero(res)
                if not len(todo):
                    break
                res[todo] = _csr_any(self.pxm[li], b.px_ids, b.px_offs, idx[todo])
            return res
        raise ValueError(f"unknown compiled split op {op!r}")  # pragma: no cover

    # ---------------------------------------------------------------- driver
    def run(self, active: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Group rows ``active``; returns (outcome id per row, -1 for inactive; fallthrough MDC bitmask)."""
        meta = self.c.meta
        rules = meta["rules"]
        n = self.b.n
        outc = np.full(n, -1, dtype=np.int32)
        fall = np.zeros(n, dtype=np.int64)
        undecided = active
        for mi, m in enumerate(meta["mdcs"]):
            if not len(undecided):
                break
            cand = undecided[self.cond(m["entry"], undecided)]
            if not len(cand):
                continue
            remaining = cand
            for item in m["items"]:
                if not len(remaining):
                    break
                if item[0] == "qy":
                    hit = self.cond(item[1], remaining)
                    outc[remaining[hit]] = item[2]
                    remaining = remaining[~hit]
                    continue
                rule = rules[item[1]]
                hit = self.cond(rule["when"], remaining)
                if not hit.any():
                    continue
                matched = remaining[hit]
                rest = remaining[~hit]
                for sp, oid in rule["drgs"]:
                    h = self.split(sp, matched)
                    outc[matched[h]] = oid
                    matched = matched[~h]
                    if not len(matched):
                        break
                if len(matched):
                    if rule["return_adrg"] >= 0:
                        outc[matched] = rule["return_adrg"]
                    else:  # "continue": these rows go on with the next item of the MDC
                        rest = np.sort(np.concatenate([rest, matched]))
                remaining = rest
            if len(remaining):
                fall[remaining] |= np.int64(1) << mi
            undecided = undecided[outc[undecided] < 0]
        outc[undecided] = OUT_NOGROUP
        return outc, fall


def _popcount(x: np.ndarray) -> np.ndarray:
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(x.astype(np.uint64)).astype(np.int64)
    cnt = np.zeros(len(x), dtype=np.int64)  # pragma: no cover - numpy < 2
    x = x.copy()
    while x.any():
        cnt += x & 1
        x >>= 1
    return cnt


def _first_per_row(rows_of_hits: np.ndarray) -> np.ndarray:
    """Positions (into rows_of_hits, ascending) of the first hit of each row."""
    if not len(rows_of_hits):
        return np.zeros(0, dtype=np.int64)
    first = np.ones(len(rows_of_hits), dtype=bool)
    first[1:] = rows_of_hits[1:] != rows_of_hits[:-1]
    return np.flatnonzero(first)


def _obj(values, n: int | None = None) -> np.ndarray:
    arr = np.empty(len(values) if n is None else n, dtype=object)
    if n is None:
        arr[:] = values
    return arr


# ============================================================================ public API


def group_frame(compiled: CompiledScheme | str | os.PathLike, df: pd.DataFrame, *, apply_code_maps: bool = False,
                unknown_codes: str = "invalid", trace: bool = True) -> pd.DataFrame:
    """Group every row of ``df`` with the compiled scheme; returns a new frame with the same index.

    Input columns (:data:`INPUT_COLUMNS`; ``sex``, ``age_years``, ``principal_dx`` are
    required, the others default to null when absent):

    * ``sex``: "1"/"2", "M"/"F" (any case), "男"/"女", or 1/2 numbers; anything else -> BAD_SEX
    * ``age_years``, ``age_days``, ``birth_weight_g``: numbers (nullable; non-integers are
      floored for ages); birth weight null or 0 = unknown
    * ``dept``: string compared (after stripping) with the literal of ``dept_eq`` splits
    * ``los_days``, ``discharge_status``: accepted, not used by any rule
    * ``principal_dx``: code string; ``secondary_dxs`` and ``procedures``: per row a list /
      numpy array / Arrow list of code strings, or a '|'-separated string; null = empty.
      Codes are stripped of surrounding whitespace; empty items are dropped; the first
      procedure is the principal procedure.

    ``apply_code_maps``: translate every code that is a key of ``diagnosis_map.csv`` /
    ``procedure_map.csv`` once (not transitively) before grouping; codes that are not keys
    are kept as they are.  ``unknown_codes``: ``"invalid"`` (default) marks a record with a
    code outside the scheme vocabulary as invalid (UNKNOWN_DX_CODE / UNKNOWN_PROC_CODE);
    ``"ignore"`` groups it anyway (an unknown code simply matches no list, as in the
    original grouper).  ``trace=False`` skips building the trace strings (column is null).

    Output columns (:data:`OUTPUT_COLUMNS`): ``mdc``, ``adrg``, ``drg``, ``status``
    (:data:`STATUSES`), ``has_mcc``, ``has_cc``, ``cc_code``, ``invalid_reason``
    (:data:`INVALID_REASONS`) and ``trace`` (:data:`TRACE_FORMAT`).
    """
    if not isinstance(compiled, CompiledScheme):
        compiled = load_compiled(compiled)
    if unknown_codes not in ("invalid", "ignore"):
        raise ValueError(f"unknown_codes must be 'invalid' or 'ignore', got {unknown_codes!r}")
    missing = [col for col in REQUIRED_INPUT_COLUMNS if col not in df.columns]
    if missing:
        raise KeyError(f"input frame lacks required column(s) {missing}; expected columns: {list(INPUT_COLUMNS)}")
    c = compiled
    n = len(df)
    col = lambda name: df[name] if name in df.columns else None  # noqa: E731

    # ---------------------------------------------------------------- parse
    pdx_str = _string_array(col("principal_dx"), n, "principal_dx")
    sec_str, sec_rows = _list_column(col("secondary_dxs"), n, "secondary_dxs")
    px_str, px_rows = _list_column(col("procedures"), n, "procedures")
    nd, npx = c.n_dx, c.n_px

    b = _Batch()
    b.n = n
    b.pdx, pdx_blank = _lookup(c, pdx_str, "dx", apply_code_maps)
    sec_ids, blank = _lookup(c, sec_str, "dx", apply_code_maps)
    sec_str, sec_rows, b.sec_ids = _drop(sec_str, sec_rows, sec_ids, blank)
    b.sec_offs = np.zeros(n + 1, dtype=np.int64)
    b.sec_offs[1:] = np.cumsum(np.bincount(sec_rows, minlength=n))
    px_ids, blank = _lookup(c, px_str, "px", apply_code_maps)
    px_str, px_rows, b.px_ids = _drop(px_str, px_rows, px_ids, blank)
    b.px_offs = np.zeros(n + 1, dtype=np.int64)
    nproc = np.bincount(px_rows, minlength=n)
    b.px_offs[1:] = np.cumsum(nproc)
    b.pproc = np.full(n, npx, dtype=np.int32)
    hasp = nproc > 0
    b.pproc[hasp] = b.px_ids[b.px_offs[:-1][hasp]]

    b.sex = _sex(df["sex"], n) if n else np.zeros(0, dtype=np.int8)
    age = np.floor(_numeric(col("age_years"), n))
    ad = np.floor(_numeric(col("age_days"), n))
    bw = _numeric(col("birth_weight_g"), n)
    profile = c.validation_profile
    if profile == "zero_fill":
        ad = np.where(np.isnan(ad), 0.0, ad)
        bw = np.where(np.isnan(bw), 0.0, bw)
    b.age, b.ad, b.bw = age, ad, bw
    dept = col("dept")
    if dept is not None and c.meta["dept_literals"]:
        try:
            d = pc.utf8_trim_whitespace(_string_array(dept, n, "dept"))
            b.dept = [pc.fill_null(pc.equal(d, lit), False).to_numpy(zero_copy_only=False)
                      for lit in c.meta["dept_literals"]]
        except TypeError:  # non-string department codes (e.g. integers): compare their text
            d = dept.astype(object).map(lambda v: v if v is None or v != v else str(v).strip())
            b.dept = [(d == lit).fillna(False).to_numpy(dtype=bool) for lit in c.meta["dept_literals"]]
    else:
        b.dept = [np.zeros(n, dtype=bool) for _ in c.meta["dept_literals"]]

    # ---------------------------------------------------------------- validation
    pdx_missing = np.zeros(n, dtype=bool)
    pdx_missing[pdx_blank] = True
    reason = np.zeros(n, dtype=np.int8)
    detail_pos = np.full(n, -1, dtype=np.int64)  # position of the offending code (unknown codes)
    detail_src = np.zeros(n, dtype=np.int8)  # 1 principal, 2 secondary flat, 3 procedure flat
    checks = []
    if unknown_codes == "invalid":
        unk_p = (b.px_ids == npx)
        pu = np.flatnonzero(unk_p)
        rows_pu = px_rows[pu]
        fp = _first_per_row(rows_pu)
        reason[rows_pu[fp]] = _R["UNKNOWN_PROC_CODE"]
        detail_pos[rows_pu[fp]] = pu[fp]
        detail_src[rows_pu[fp]] = 3
        su = np.flatnonzero(b.sec_ids == nd)
        rows_su = sec_rows[su]
        fs = _first_per_row(rows_su)
        reason[rows_su[fs]] = _R["UNKNOWN_DX_CODE"]
        detail_pos[rows_su[fs]] = su[fs]
        detail_src[rows_su[fs]] = 2
        pu_mask = (b.pdx == nd) & ~pdx_missing
        reason[pu_mask] = _R["UNKNOWN_DX_CODE"]
        detail_pos[pu_mask] = np.flatnonzero(pu_mask)
        detail_src[pu_mask] = 1
    if profile == "newborn_strict":
        checks.append(("MISSING_BIRTH_WEIGHT", (age == 0) & (ad <= 28) & (np.isnan(bw) | (bw == 0))))
        checks.append(("MISSING_AGE_DAYS", (age == 0) & np.isnan(ad)))
    checks.append(("MISSING_AGE", np.isnan(age)))
    checks.append(("BAD_SEX", b.sex == 0))
    checks.append(("MISSING_PRINCIPAL_DX", pdx_missing))
    for name, mask in checks:  # lowest priority first; higher priorities overwrite
        reason[mask] = _R[name]
        detail_src[mask] = 0
    valid = reason == 0

    # ---------------------------------------------------------------- CC / MCC
    T = c.arrays["pe_tab"][b.pdx]
    Trow = T[sec_rows]
    cc_id = np.full(n, nd, dtype=np.int32)
    has = {}
    for name in ("cc_tab", "mcc_tab"):  # mcc last so it takes precedence for cc_code
        t = c.arrays[name][b.sec_ids]
        hit = np.flatnonzero((t >= 0) & (t != Trow))
        rows_h = sec_rows[hit]
        f = _first_per_row(rows_h)
        m = np.zeros(n, dtype=bool)
        m[rows_h] = True
        cc_id[rows_h[f]] = b.sec_ids[hit[f]]
        has[name] = m & valid
    cc_id[~valid] = nd
    b.has_mcc = has["mcc_tab"]
    b.has_any = has["mcc_tab"] | has["cc_tab"]

    # ---------------------------------------------------------------- group
    eng = _Engine(c, b)
    active = np.flatnonzero(valid)
    outc, fall = eng.run(active)
    outc[~valid] = OUT_INVALID
    retries = []
    if c.meta["retry_single_procedure"] and n:
        k = 1
        fail = np.flatnonzero((outc == OUT_NOGROUP) & (nproc >= 2))
        while len(fail):
            cand = fail[nproc[fail] > k]
            if not len(cand):
                break
            ppos = b.px_offs[cand] + k
            sub = b.take(cand, b.px_ids[ppos])
            s_out, s_fall = _Engine(c, sub).run(np.arange(len(cand)))
            ok = s_out != OUT_NOGROUP
            outc[cand[ok]] = s_out[ok]
            retries.append((cand, k, ppos, s_out, s_fall))
            fail = cand[~ok]
            k += 1

    # ---------------------------------------------------------------- output
    d = c._derived
    res = {
        "mdc": d["out_mdc"][outc],
        "adrg": d["out_adrg"][outc],
        "drg": d["out_drg"][outc],
        "status": d["out_kind"][outc],
        "has_mcc": b.has_mcc,
        "has_cc": has["cc_tab"],
        "cc_code": d["dx_codes_obj"][cc_id],
    }
    reason_names = _obj([None] + list(INVALID_REASONS))
    res["invalid_reason"] = reason_names[reason]

    if trace and n:
        tr = _build_trace(c, outc, fall, cc_id, retries, px_str)
        bad = np.flatnonzero(~valid)
        if len(bad):
            t = "INVALID=" + reason_names[reason[bad]]
            src = detail_src[bad]
            for s_kind, arr in ((1, pdx_str), (2, sec_str), (3, px_str)):
                sel = np.flatnonzero(src == s_kind)
                if len(sel):
                    codes = _texts(arr, detail_pos[bad[sel]])
                    t[sel] = t[sel] + "(" + codes + ")"
            tr[bad] = t
        res["trace"] = tr
    else:
        res["trace"] = np.full(n, None, dtype=object)
    # column by column: avoids copying all object columns into one consolidated block
    # (explicit dtype: no object-column type inference)
    out = pd.DataFrame(index=df.index)
    for name in OUTPUT_COLUMNS:
        v = res[name]
        out[name] = pd.Series(v, index=df.index, dtype=v.dtype, copy=False)
    return out


def _run_trace(c: CompiledScheme, o: np.ndarray, f: np.ndarray, cc_id: np.ndarray) -> np.ndarray:
    """Trace text of one driver pass: fallthrough MDCs + outcome text (+ "(cc_code)").

    Built once per distinct (fallthrough set, outcome, cc_code) combination, then gathered.
    """
    d = c._derived
    t = d["out_trace"][o]
    suffix = d["out_code_suffix"][o]
    rows = np.flatnonzero(suffix | (f != 0))
    if not len(rows):
        return t
    nd1 = c.n_dx + 1
    n_out = len(d["out_trace"])
    finv, fu = pd.factorize(f[rows])
    code = np.where(suffix[rows], cc_id[rows], c.n_dx).astype(np.int64)
    key = (finv.astype(np.int64) * n_out + o[rows]) * nd1 + code
    inv, uniq = pd.factorize(key)
    names = [m["fallthrough"] for m in c.meta["mdcs"]]
    prefixes = [";".join(names[i] for i in range(len(names)) if (int(x) >> i) & 1) for x in fu]
    out_trace = c.meta["outcomes"]["trace"]
    dx = d["dx_codes_obj"]
    texts = []
    for k in uniq.tolist():
        fi, rest = divmod(k, n_out * nd1)
        oi, ci = divmod(rest, nd1)
        txt = out_trace[oi] if ci == c.n_dx else f"{out_trace[oi]}({dx[ci]})"
        texts.append(f"{prefixes[fi]};{txt}" if prefixes[fi] else txt)
    t[rows] = _obj(texts)[inv]
    return t


def _build_trace(c, outc, fall, cc_id, retries, px_str) -> np.ndarray:
    # the first segment describes the first pass (rows that were retried had no group there)
    first = outc.copy()
    for cand, *_ in retries:
        first[cand] = OUT_NOGROUP
    tr = _run_trace(c, first, fall, cc_id)
    for cand, k, ppos, s_out, s_fall in retries:
        code = _texts(px_str, ppos)
        seg = _run_trace(c, s_out, s_fall, cc_id[cand])
        tr[cand] = tr[cand] + (";RETRY=" + str(k + 1) + "(") + code + ");" + seg
    return tr
