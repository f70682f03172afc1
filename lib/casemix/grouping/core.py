"""Vectorised DRG grouping of a pandas DataFrame (no Spark, no Java, no per-record loop).

The driver of the scheme README is run over the whole batch at once, on the engine
program of :func:`casemix.grouping.compile.engine_program`: every row is queued for the
first MDC its gate allows (a necessary condition of the MDC entry rules, looked up per
principal diagnosis / procedure); per MDC, the rows whose entry rule holds are decided with
a few table look-ups (first matching item, then its DRG split), and the rows that fall
through are queued for their next candidate MDC.  The only Python loops are over MDCs (and
the few per-row rule terms that are not code lists).

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

from .compile import OUT_INVALID, OUT_NOGROUP, CompiledScheme, engine_program, load_compiled

__all__ = [
    "group_frame",
    "group_arrow",
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
            a = a.chunk(0) if a.num_chunks == 1 else a.combine_chunks()
        return a
    return None


def _string_array(s: pd.Series | None, n: int, col: str, *, dictionary: bool = False) -> pa.Array:
    """Column of single codes -> pyarrow string array (null for missing; not trimmed yet).

    ``dictionary``: a dictionary<int32, string> array may be returned instead (object columns are
    factorized in pandas -- each distinct value is then converted / looked up once)."""
    if s is None:
        return pa.nulls(n, pa.string())
    a = _to_arrow(s)
    if a is None:
        vals = s.to_numpy(dtype=object)
        if dictionary:
            d = _dictionary_from_objects(vals, col)
            if d is not None:
                return d
        try:
            a = pa.array(vals, type=pa.string(), from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
            raise TypeError(f"column {col!r} must hold code strings: {e}") from None
    if pa.types.is_dictionary(a.type):
        vt = a.type.value_type
        if dictionary and (pa.types.is_string(vt) or pa.types.is_large_string(vt)):
            return pa.DictionaryArray.from_arrays(a.indices, a.dictionary.cast(pa.string()))
        a = a.cast(vt)
    if not (pa.types.is_string(a.type) or pa.types.is_large_string(a.type)):
        if pa.types.is_null(a.type):
            return pa.nulls(n, pa.string())
        raise TypeError(f"column {col!r} must hold code strings, got arrow type {a.type}")
    if pa.types.is_large_string(a.type):
        a = a.cast(pa.string())
    return a


def _dictionary_from_objects(vals: np.ndarray, col: str) -> pa.DictionaryArray | None:
    """Object column -> dictionary array (None: not hashable, use the plain conversion)."""
    try:
        codes, uniq = pd.factorize(vals)
    except TypeError:
        return None
    try:
        dct = pa.array(uniq, type=pa.string(), from_pandas=True)
        na = codes < 0
        if na.any():  # pandas' missing values: accepted exactly when pyarrow takes them as null
            pa.array(vals[na], type=pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise TypeError(f"column {col!r} must hold code strings: {e}") from None
    if dct.null_count:  # (not expected: pandas keeps missing values out of the uniques)
        return None
    return pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32), mask=na), dct)


_NO_CODES = pa.array([], type=pa.string())


def _list_column(s: pd.Series | None, n: int, col: str) -> tuple[pa.Array, np.ndarray]:
    """Column of code lists -> (flat codes, row offsets [n + 1]); not trimmed, blanks not yet dropped.

    Accepts per row: a python list / tuple / numpy array of strings, an Arrow
    list<string> value, a '|'-separated string, or null/empty.
    """
    if s is None:
        return _NO_CODES, np.zeros(n + 1, dtype=np.int64)
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
        return _NO_CODES, np.zeros(n + 1, dtype=np.int64)
    if pa.types.is_string(a.type) or pa.types.is_large_string(a.type):
        a = pc.split_pattern(a, "|")
    if not (pa.types.is_list(a.type) or pa.types.is_large_list(a.type)):
        raise TypeError(f"column {col!r} must hold code lists or '|'-separated strings, got arrow type {a.type}")
    vt = a.type.value_type
    if not (pa.types.is_string(vt) or (pa.types.is_dictionary(vt) and pa.types.is_string(vt.value_type))):
        a = a.cast(pa.list_(pa.string()))  # (dictionary-encoded codes stay so: looked up through their dictionary)
    flat = pc.list_flatten(a)  # skips null rows
    if pa.types.is_large_string(flat.type):
        flat = flat.cast(pa.string())
    offs = np.zeros(n + 1, dtype=np.int64)
    if a.null_count:
        np.cumsum(pc.fill_null(pc.list_value_length(a), 0).to_numpy(zero_copy_only=False), out=offs[1:])
    else:
        o = np.asarray(a.offsets.to_numpy(zero_copy_only=False), dtype=np.int64)
        np.subtract(o, o[0], out=offs)
    return flat, offs


def _raw_lookup(c: CompiledScheme, codes: pa.Array, kind: str, apply_maps: bool) -> np.ndarray:
    """Exact code strings -> vocabulary ids (int32), -1 when not found / null."""
    vocab = c.derived(f"{kind}_vocab_pa", lambda: pa.array(c.arrays[f"{kind}_codes"].tolist(), type=pa.string()))
    ids = _index_in(codes, vocab)
    if apply_maps:
        keys = c.derived(f"{kind}_mapkeys_pa", lambda: pa.array(c.arrays[f"{kind}_map_keys"].tolist(), type=pa.string()))
        mi = _index_in(codes, keys)
        hit = mi >= 0
        ids = ids.copy()
        ids[hit] = c.arrays[f"{kind}_map_tgt"][mi[hit]]
    return ids


def _index_in(codes: pa.Array, value_set: pa.Array) -> np.ndarray:
    """Position of each code in ``value_set`` (int32, possibly a read-only view), -1 for null / not found."""
    r = pc.index_in(codes, value_set=value_set)
    if r.null_count:
        r = pc.fill_null(r, -1)
    return np.asarray(r.to_numpy(zero_copy_only=False), dtype=np.int32)


def _lookup(c: CompiledScheme, codes: pa.Array, kind: str,
            apply_maps: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Code strings -> (vocabulary ids, int32, unknown -> sentinel n; positions of null/blank codes;
    positions of unknown codes (sentinel, not blank)); all positions ascending.

    Codes are looked up as they are first; only the misses (normally none) are stripped
    of surrounding whitespace and looked up again, which keeps clean data on the fast path.
    A dictionary array is looked up through its dictionary.
    """
    n = c.n_dx if kind == "dx" else c.n_px
    if len(codes) == 0:
        return np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    if isinstance(codes, pa.DictionaryArray):
        d_ids, d_blank, d_unk = _lookup(c, codes.dictionary, kind, apply_maps)
        idx = codes.indices
        null = None
        if idx.null_count:
            null = np.asarray(idx.is_null().to_numpy(zero_copy_only=False))
            idx = pc.fill_null(idx, 0)
        idx = np.asarray(idx.to_numpy(zero_copy_only=False))
        if null is not None:
            idx = np.where(null, len(d_ids), idx)  # extra slot: null -> unknown id, blank
        ids = np.append(d_ids, np.int32(n))[idx]
        is_blank = np.zeros(len(d_ids) + 1, dtype=bool)
        is_blank[d_blank] = True
        is_blank[-1] = True
        is_unk = np.zeros(len(d_ids) + 1, dtype=bool)
        is_unk[d_unk] = True
        return ids, np.flatnonzero(is_blank[idx]), (np.flatnonzero(is_unk[idx]) if len(d_unk) else d_unk)
    ids = _raw_lookup(c, codes, kind, apply_maps)
    miss = np.flatnonzero(ids < 0)
    blank = unk = np.zeros(0, dtype=np.int64)
    if len(miss):  # only misses can end up unknown / blank
        sub = pc.utf8_trim_whitespace(codes.take(pa.array(miss)))
        if not ids.flags.writeable:
            ids = ids.copy()
        again = _raw_lookup(c, sub, kind, apply_maps)
        is_blank = np.asarray(pc.fill_null(pc.equal(pc.utf8_length(sub), 0), True).to_numpy(zero_copy_only=False))
        blank = miss[is_blank]
        unk = miss[(again < 0) & ~is_blank]
        ids[miss] = np.where(again < 0, n, again)
    return ids, blank, unk


def _drop(flat: pa.Array, offs: np.ndarray, ids: np.ndarray, blank: np.ndarray, unk: np.ndarray):
    """Remove blank/null items (ascending positions ``blank``) from a flattened list column
    (``unk``: positions of other items, renumbered)."""
    if not len(blank):
        return flat, offs, ids, unk
    keep = np.ones(len(ids), dtype=bool)
    keep[blank] = False
    return (flat.filter(pa.array(keep)), offs - np.searchsorted(blank, offs), ids[keep],
            unk - np.searchsorted(blank, unk))


def _rows_of(offs: np.ndarray) -> np.ndarray:
    """Row number of every flat element of a CSR column (cumsum of row increments: faster than np.repeat)."""
    n = len(offs) - 1
    dt = np.int32 if n < 2 ** 31 else np.int64
    tot = int(offs[-1]) if n else 0
    if not tot:
        return np.zeros(0, dtype=dt)
    nz = np.flatnonzero(offs[1:] > offs[:-1])  # rows with elements
    inc = np.zeros(tot, dtype=dt)
    inc[offs[nz]] = np.diff(nz, prepend=0)
    return np.cumsum(inc, dtype=dt)


def _cc_tables(c: CompiledScheme) -> tuple[dict, object]:
    """MCC / CC / principal-exclusion tables in the narrowest dtype (memory traffic over all secondaries).

    Returns ({name: table}, none): ``none`` marks a code outside the MCC/CC table; a principal
    outside the exclusion tables gets another value, so it never equals a secondary's table.
    """
    a = c.arrays
    k = len(c.meta["exclusion_tables"])
    dt, none, pnone = (np.uint8, 255, 254) if k < 254 else (np.int16, -1, -2) if k < 32766 else (np.int32, -1, -2)
    tabs = {name: np.where(a[name] < 0, pnone if name == "pe_tab" else none, a[name]).astype(dt)
            for name in ("mcc_tab", "cc_tab", "pe_tab")}
    return tabs, dt(none)


def _texts(arr: pa.Array, pos: np.ndarray) -> np.ndarray:
    """Stripped code strings at ``pos`` (object array) -- for the few codes shown in traces."""
    return _obj([None if v is None else v.strip() for v in arr.take(pa.array(pos, type=pa.int64())).to_pylist()])


def _numeric(s: pd.Series | None, n: int, floor: bool = False) -> np.ndarray:
    """Column as float64 (NaN = missing / not a number); ``floor``: rounded down (ages)."""
    if s is None:
        return np.full(n, np.nan)
    if isinstance(s.dtype, pd.ArrowDtype):
        a = _to_arrow(s)
        if pa.types.is_integer(a.type) or pa.types.is_floating(a.type):
            # nulls -> NaN; same values as pandas' to_numpy(float64, na_value=nan)
            v = np.asarray(pc.cast(a, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
            return np.floor(v) if floor and pa.types.is_floating(a.type) else v  # integers: nothing to round
    if not pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype):
        s = pd.to_numeric(s.astype(object).where(s.notna(), None), errors="coerce")
    v = s.to_numpy(dtype=np.float64, na_value=np.nan)
    return np.floor(v) if floor else v


_SEX_STR = [k for k in SEX_VALUES if isinstance(k, str)]
_SEX_STR_PA = pa.array(_SEX_STR, type=pa.string())
_SEX_STR_VAL = np.array([SEX_VALUES[k] for k in _SEX_STR], dtype=np.int8)
_SEX_BYTE = np.zeros(256, dtype=np.int8)  # one-byte strings (stripping a blank leaves "": 0 as well)
for _k in _SEX_STR:
    if len(_k.encode()) == 1:
        _SEX_BYTE[ord(_k)] = SEX_VALUES[_k]


def _sex_objects(o: pd.Series) -> np.ndarray:
    """Python values -> 1/2/0 (the mapping rule, applied elementwise)."""
    m = o.map(SEX_VALUES).to_numpy(dtype=np.float64, na_value=np.nan)
    miss = np.flatnonzero(np.isnan(m))
    if len(miss):  # only unmatched values: retry stripped strings
        sub = o.iloc[miss].str.strip()  # NaN for non-strings
        m[miss] = sub.map(SEX_VALUES).to_numpy(dtype=np.float64, na_value=np.nan)
    return np.nan_to_num(m, nan=0.0).astype(np.int8)


def _sex(s: pd.Series, n: int) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        v = s.to_numpy(dtype=np.float64, na_value=np.nan)
        return np.where(v == 1, 1, np.where(v == 2, 2, 0)).astype(np.int8)
    if s.dtype == object:
        # the mapping is elementwise: apply it to the distinct values only (nulls -> 0)
        codes, uniq = pd.factorize(s.to_numpy())
        res = np.append(_sex_objects(pd.Series(uniq, dtype=object)), np.int8(0))
        return res[codes]  # code -1 (null) -> the appended 0
    a = _to_arrow(s) if isinstance(s.dtype, pd.ArrowDtype) else None
    if a is not None and pa.types.is_dictionary(a.type):  # the rule on the distinct values, then per row
        per_value = np.append(_sex(pd.Series(pd.arrays.ArrowExtensionArray(a.dictionary), copy=False),
                                   len(a.dictionary)), np.int8(0))
        return per_value[pc.fill_null(a.indices.cast(pa.int64()), len(a.dictionary)).to_numpy(zero_copy_only=False)]
    if a is not None:
        if pa.types.is_large_string(a.type):
            a = a.cast(pa.string())
        if pa.types.is_string(a.type):  # strings: no python objects except for the (rare) misses
            if not a.null_count and len(a):
                offs = np.frombuffer(a.buffers()[1], dtype=np.int32, count=len(a) + 1, offset=4 * a.offset)
                if (np.diff(offs) == 1).all():  # all one byte ("1"/"2"/"M"/"F"...): table look-up
                    return _SEX_BYTE[np.frombuffer(a.buffers()[2], dtype=np.uint8)[offs[:-1]]]
            k = _index_in(a, _SEX_STR_PA)
            out = np.where(k >= 0, _SEX_STR_VAL[k], 0).astype(np.int8)
            miss = np.flatnonzero(k < 0)
            if len(miss):  # same rule as below: retry the stripped string
                vals = a.take(pa.array(miss)).to_pylist()
                out[miss] = [SEX_VALUES.get(v.strip(), 0) if v is not None else 0 for v in vals]
            return out
    return _sex_objects(s.astype(object))


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

    __slots__ = ("n", "pdx", "sec_ids", "sec_offs", "sec_rows", "px_ids", "px_offs", "pproc", "sex", "age", "ad",
                 "bw", "dept", "has_mcc", "has_any")

    def __init__(self):
        self.sec_rows = None  # row of every secondary (optional; computed when needed)

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


_ONE = np.uint64(1)
_ALL_BITS = (1 << 64) - 1


def _lowbit(mask: np.ndarray) -> np.ndarray:
    """Index of the lowest set bit of each (non-zero) uint64."""
    iso = mask & (~mask + _ONE)
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(iso - _ONE)
    return np.log2(iso.astype(np.float64)).astype(np.int64)  # pragma: no cover - numpy < 2 (exact: powers of 2)


class _Engine:
    """Runs the engine program (:func:`casemix.grouping.compile.engine_program`) over a batch.

    Rows go through the MDCs in order, but each row only visits the MDCs its gate mask allows
    (one queue of rows per MDC).  Inside an MDC, the decision tables give every candidate row
    its first matching item and that item's DRG outcome (pdx / pproc class gathers, the row
    leaves evaluated on the candidates, the row's split predicate bits); without tables, the
    rows are grouped by their (leaf bits, split bits) and each group is decided once by
    matching the DNF terms.  Rows whose item says "continue" go on with the following items.
    """

    def __init__(self, c: CompiledScheme, b: _Batch):
        self.c = c
        self.b = b
        self.prog = engine_program(c)
        self.dxm = c._derived["dx_member"]
        self.pxm = c._derived["px_member"]
        self.trauma = c._derived["trauma"]
        self._any: dict[str, list] = {}
        self._sbits = None
        self._spat = None
        self._px_rows = None
        self._local: dict[str, tuple] = {}

    # ---------------------------------------------------------------- "any element of the row's list"
    def _any_bits(self, kind: str) -> list[np.ndarray]:
        """Per word, (rows,) OR of the per-code list bits over each row's procedures / secondaries."""
        got = self._any.get(kind)
        if got is None:
            b, prog = self.b, self.prog
            cols = prog.px_any_cols if kind == "px" else prog.dx_any_cols
            lens = np.diff(b.px_offs) if kind == "px" else None
            if kind == "px" and (not len(lens) or lens.max() <= 32):
                # procedure lists are short: OR position by position (position 0 = principal procedure)
                got = [col[b.pproc] for col in cols]  # sentinel id -> 0
                idx = np.flatnonzero(lens > 1)
                j = 1
                while len(idx):
                    ids = b.px_ids[b.px_offs[idx] + j]
                    for acc, col in zip(got, cols):
                        acc[idx] |= col[ids]
                    j += 1
                    idx = idx[lens[idx] > j]
            else:
                ids = b.px_ids if kind == "px" else b.sec_ids
                got = []
                for col in cols:
                    acc = np.zeros(b.n, dtype=col.dtype)
                    v = col[ids]
                    nzp = np.flatnonzero(v)  # usually a small part: reduce only those
                    if len(nzp):
                        r = self._rows(kind)[nzp]
                        f = _first_per_row(r)
                        acc[r[f]] = np.bitwise_or.reduceat(v[nzp], f)
                    got.append(acc)
            self._any[kind] = got
        return got

    def _rows(self, kind: str) -> np.ndarray:
        """Row of every procedure / secondary (flat order)."""
        b = self.b
        if kind == "dx":
            if b.sec_rows is None:
                b.sec_rows = _rows_of(b.sec_offs)
            return b.sec_rows
        if self._px_rows is None:
            self._px_rows = _rows_of(b.px_offs)
        return self._px_rows

    def any_in(self, kind: str, li: int, idx: np.ndarray) -> np.ndarray:
        """Rows ``idx``: does any procedure (kind "px") / secondary diagnosis ("dx") lie in list ``li``?"""
        b = self.b
        pos = (self.prog.px_any_pos if kind == "px" else self.prog.dx_any_pos).get(li)
        if pos is not None:
            w, bit = pos
            words = self._any.get(kind)
            if words is not None:
                v = words[w][idx]
            else:
                loc = self._local.get(kind)
                v = loc[1][w] if loc is not None and loc[0] is idx else None
            if v is not None:
                return (v & v.dtype.type(1 << bit)) != 0
        member = (self.pxm if kind == "px" else self.dxm)[li]
        ids, offs = (b.px_ids, b.px_offs) if kind == "px" else (b.sec_ids, b.sec_offs)
        return _csr_any(member, ids, offs, idx)

    def _local_any(self, kind: str, idx: np.ndarray) -> None:
        """OR of the list bits over the lists of rows ``idx`` (one pass), for the following any_in(kind, _, idx)."""
        b, prog = self.b, self.prog
        cols = prog.px_any_cols if kind == "px" else prog.dx_any_cols
        ids, offs = (b.px_ids, b.px_offs) if kind == "px" else (b.sec_ids, b.sec_offs)
        pos, local = _csr_positions(offs, idx)
        words = []
        for col in cols:
            acc = np.zeros(len(idx), dtype=col.dtype)
            if len(pos):
                v = col[ids[pos]]
                nzp = np.flatnonzero(v)
                if len(nzp):  # local is ascending: reduce runs of equal rows
                    r = local[nzp]
                    f = _first_per_row(r)
                    acc[r[f]] = np.bitwise_or.reduceat(v[nzp], f)
            words.append(acc)
        self._local[kind] = (idx, words)

    # ---------------------------------------------------------------- rules (tree evaluation)
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
            return self.any_in("px", p[1], idx)
        if op == "sdx":
            return self.any_in("dx", p[1], idx)
        if op == "adx":
            res = self.dxm[p[1]][b.pdx[idx]]
            todo = np.flatnonzero(~res)
            if len(todo):
                res[todo] = self.any_in("dx", p[1], idx[todo])
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

    # ---------------------------------------------------------------- DRG split predicates
    def split_pred(self, p) -> np.ndarray:
        """Split predicate ``p`` for every row of the batch."""
        op = p[0]
        b = self.b
        if op == "always":
            return np.ones(b.n, dtype=bool)
        if op == "mcc":
            return b.has_mcc
        if op == "mcc_or_cc":
            return b.has_any
        if op == "age_lt":
            return b.age < p[1]
        if op == "dept_eq":
            return b.dept[p[1]]
        if op == "procs_all":
            res = np.ones(b.n, dtype=bool)
            words = self._any_bits("px")  # every row: one pass over all procedures
            for li in p[1]:
                w, bit = self.prog.px_any_pos[li]
                res &= (words[w] & words[w].dtype.type(1 << bit)) != 0
            return res
        raise ValueError(f"unknown compiled split op {op!r}")  # pragma: no cover

    def split_bits(self) -> np.ndarray:
        """(rows, words) uint64: bit j = split predicate j of the program holds."""
        if self._sbits is None:
            prog = self.prog
            if len(prog.split_specs) <= 31:
                self._sbits = self.split_pattern().astype(np.uint64)[:, None]
            else:
                sb = np.zeros((self.b.n, prog.n_split_words), dtype=np.uint64)
                for j, sp in enumerate(prog.split_specs):
                    w, bit = divmod(j, 64)
                    sb[:, w] |= self.split_pred(sp).astype(np.uint64) << np.uint64(bit)
                self._sbits = sb
        return self._sbits

    def split_pattern(self) -> np.ndarray:
        """Split predicate bits of every row, narrowest unsigned type (at most 31 predicates; bit 0 = always)."""
        if self._spat is None:
            k = len(self.prog.split_specs)
            dt = np.uint8 if k <= 8 else np.uint16 if k <= 16 else np.uint32
            pat = np.ones(self.b.n, dtype=dt)
            for j, sp in enumerate(self.prog.split_specs[1:], 1):
                pat |= np.left_shift(self.split_pred(sp).view(np.uint8), j, dtype=dt)
            self._spat = pat
        return self._spat

    # ---------------------------------------------------------------- driver
    def run(self, active: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Group rows ``active``; returns (outcome id per row, -1 for inactive; fallthrough MDC bitmask)."""
        prog = self.prog
        b = self.b
        n = b.n
        outc = np.full(n, -1, dtype=np.int32)
        fall = np.zeros(n, dtype=np.int64)
        if not len(active):
            return outc, fall
        every = len(active) == n
        low = np.minimum(prog.pdx_low[b.pdx if every else b.pdx[active]],
                         prog.pproc_low[b.pproc if every else b.pproc[active]])
        if prog.all_low != 255:
            np.minimum(low, np.uint8(prog.all_low), out=low)
        sec_gate = self._sec_gate()
        if sec_gate is not None:  # rows with a gating secondary (few): their lowest MDC may be lower
            hit = np.flatnonzero(sec_gate[active] != 0) if not every else np.flatnonzero(sec_gate)
            np.minimum.at(low, hit, _lowbit(sec_gate[active[hit]]).astype(np.uint8))
        pending: list[list[np.ndarray]] = [[] for _ in prog.mdcs]
        self._queue(pending, active, low, outc)
        gate_all = np.uint64(prog.gate_all)
        for mi, mp in enumerate(prog.mdcs):
            lst = pending[mi]
            if not lst:
                continue
            rows = lst[0] if len(lst) == 1 else np.concatenate(lst)
            moved = []
            if mp.entry_exact:
                cand = rows
            else:
                e = self.cond(mp.entry, rows)
                cand = rows[e]
                if len(cand) < len(rows):
                    moved.append(rows[~e])
            if len(cand):
                ft = self._items(mp, cand, outc)
                if len(ft):
                    fall[ft] |= np.int64(1) << mi
                    moved.append(ft)
            if moved:  # on to the next MDC of their gate
                mv = moved[0] if len(moved) == 1 else np.concatenate(moved)
                mask = prog.pdx_gate[b.pdx[mv]] | prog.pproc_gate[b.pproc[mv]]
                if prog.gate_all:
                    mask |= gate_all
                if sec_gate is not None:
                    mask |= sec_gate[mv]
                mask &= np.uint64(_ALL_BITS ^ ((2 << mi) - 1))
                low = np.full(len(mv), 255, dtype=np.uint8)
                nz = mask != 0
                low[nz] = _lowbit(mask[nz])
                self._queue(pending, mv, low, outc)
        return outc, fall

    def _sec_gate(self) -> np.ndarray | None:
        """Per row, OR of the MDC gate bits of its secondary diagnoses (None: the scheme has none)."""
        tab = self.prog.sec_gate
        if tab is None:
            return None
        b = self.b
        out = np.zeros(b.n, dtype=np.uint64)
        nzp = np.flatnonzero(self.prog.sec_gate_cls[b.sec_ids])  # normally very few
        if len(nzp):
            np.bitwise_or.at(out, np.searchsorted(b.sec_offs, nzp, side="right") - 1, tab[b.sec_ids[nzp]])
        return out

    @staticmethod
    def _queue(pending: list, rows: np.ndarray, low: np.ndarray, outc: np.ndarray) -> None:
        """Queue ``rows`` for MDC ``low`` (255: no MDC left -> no group)."""
        none = low == 255
        if none.any():
            outc[rows[none]] = OUT_NOGROUP
            keep = ~none
            rows, low = rows[keep], low[keep]
            if not len(rows):
                return
        first = low[0]
        if (low == first).all():
            pending[first].append(rows)
            return
        order = np.argsort(low, kind="stable")
        cnt = np.bincount(low, minlength=len(pending))
        ends = np.cumsum(cnt)
        srt = rows[order]
        for k in np.flatnonzero(cnt).tolist():
            pending[k].append(srt[ends[k] - cnt[k]:ends[k]])

    def _leaf_bits(self, mp, cand: np.ndarray) -> np.ndarray:
        b = self.b
        if mp.pdx_tab is not None:
            bits = mp.pdx_tab[b.pdx[cand]]
            if mp.pproc_tab is not None:
                bits |= mp.pproc_tab[b.pproc[cand]]
        elif mp.pproc_tab is not None:
            bits = mp.pproc_tab[b.pproc[cand]]
        else:
            bits = np.zeros((len(cand), mp.n_words), dtype=np.uint64)
        for p, w, bit in mp.row_leaves:
            bits[:, w] |= self.cond(p, cand).astype(np.uint64) << np.uint64(bit)
        return bits

    @staticmethod
    def _first_match(mp, bits: np.ndarray, start: np.ndarray | None) -> np.ndarray:
        """Item of the first DNF term holding for each row (terms of items >= ``start``), -1 if none."""
        nr = len(bits)
        res = np.empty(nr, dtype=np.int32)
        ti = mp.term_item
        step = mp.chunk
        for c0 in range(0, nr, step):
            bb = bits[c0:c0 + step]
            ok = None
            for w in range(mp.n_words):
                col = bb[:, w, None]
                mw, cw = mp.must[w], mp.clr[w]
                if mw is not None:
                    x = (col & mw) == mw
                    ok = x if ok is None else np.logical_and(ok, x, out=ok)
                if cw is not None:
                    x = (col & cw) == 0
                    ok = x if ok is None else np.logical_and(ok, x, out=ok)
            if ok is None:
                ok = np.ones((len(bb), mp.n_terms), dtype=bool)
            if start is not None:
                ok &= ti >= start[c0:c0 + step, None]
            t = ok.argmax(axis=1)
            res[c0:c0 + step] = np.where(ok[np.arange(len(bb)), t], ti[t], -1)
        return res

    def _items(self, mp, cand: np.ndarray, outc: np.ndarray) -> np.ndarray:
        """Decide the rows ``cand`` (entry rule held) inside one MDC; returns the rows that fall through."""
        if not mp.n_terms:
            return cand
        b = self.b
        if mp.item_tab is not None:
            # decision tables: (pdx class, pproc class, row leaves) -> item; (item, split bits) -> outcome
            k = None
            if mp.pdx_cls is not None:
                k = mp.pdx_cls[b.pdx[cand]]
                if mp.n_pproc_cls > 1:
                    k *= mp.n_pproc_cls
            if mp.pproc_cls is not None:
                t = mp.pproc_cls[b.pproc[cand]]
                k = t if k is None else np.add(k, t, out=k)
            if k is None:
                k = np.zeros(len(cand), dtype=np.int32)
            for kind in mp.local_any:
                if kind == "px":
                    self._any_bits(kind)  # cheap for all rows at once (short lists)
                elif kind not in self._any:
                    self._local_any(kind, cand)
            for j, (p, _w, _b) in enumerate(mp.row_leaves):
                np.add(k, mp.n_pp_cls << j, out=k, where=self.cond(p, cand))
            self._local.clear()
            it1 = mp.item_tab[k]
            it1 *= mp.n_split_pat
            it1 += self.split_pattern()[cand]
            out = mp.split_tab[it1]
            cont = np.flatnonzero(out == -2)
            if len(cont):  # no split held and the rule says "continue": next items, the general way
                rows = cand[cont]
                item = mp.item_tab[k[cont]] - 1
                bits = self._leaf_bits(mp, rows)
                sb = self.split_bits()[rows]
                out[cont] = self._decide(mp, bits, sb, self._first_match(mp, bits, item + 1))
            outc[cand] = out  # -1 (falls through) leaves the row undecided
            return cand[out < 0]
        # general case: each distinct (leaf bits, split bits) combination is decided once
        bits = self._leaf_bits(mp, cand)
        sb = self.split_bits()[cand]
        inv, rep = _group_rows(bits, sb, mp.n_leaves, len(self.prog.split_specs))
        if rep is None:
            res = self._decide(mp, bits, sb)
        else:
            res = self._decide(mp, bits[rep], sb[rep])[inv]
        dec = res >= 0
        outc[cand[dec]] = res[dec]
        return cand[~dec]

    def _decide(self, mp, bits: np.ndarray, sb: np.ndarray, item: np.ndarray | None = None) -> np.ndarray:
        """Outcome id per row of (leaf bits, split bits); -1 = no item produced a result.

        ``item``: first matching item per row if already known."""
        res = np.full(len(bits), -1, dtype=np.int32)
        if item is None:
            item = self._first_match(mp, bits, None)
        pos = np.arange(len(bits))
        while True:
            hit = item >= 0
            if not hit.all():
                if not hit.any():
                    break
                pos, item = pos[hit], item[hit]
            out = self._splits(mp, sb[pos], item)
            if mp.has_qy:
                q = mp.kind[item] == 1
                out[q] = mp.qy_oid[item[q]]
            bad = out < 0
            if bad.any():  # no split held: return_adrg, or go on with the next item ("continue")
                out[bad] = mp.ret[item[bad]]
                bad = out < 0
            res[pos] = out
            if not bad.any():
                break
            pos = pos[bad]
            item = self._first_match(mp, bits[pos], item[bad] + 1)
        return res

    @staticmethod
    def _splits(mp, sb: np.ndarray, it: np.ndarray) -> np.ndarray:
        """Outcome of the first DRG split of item ``it`` holding for each row of split bits ``sb`` (-1: none)."""
        out = np.full(len(it), -1, dtype=np.int32)
        one_word = sb.shape[1] == 1
        v = sb[:, 0] if one_word else None
        for s in range(mp.n_splits):
            vv = v if one_word else sb[np.arange(len(it)), mp.sp_word[it, s]]
            sel = ((vv & mp.sp_mask[it, s]) != 0) & (out < 0)
            out[sel] = mp.sp_out[it[sel], s]
        return out


def _group_rows(bits: np.ndarray, sb: np.ndarray, n_leaves: int, n_split_bits: int):
    """Rows grouped by identical (bits, sb): (group of each row, one row per group), or (None, None)."""
    nr = len(bits)
    if nr < 64:
        return None, None
    if bits.shape[1] == 1 and sb.shape[1] == 1 and n_leaves + n_split_bits <= 64:
        inv, uniq = pd.factorize(bits[:, 0] | (sb[:, 0] << np.uint64(n_leaves)))
        ng = len(uniq)
    else:
        inv = None
        for col in [bits[:, w] for w in range(bits.shape[1])] + [sb[:, w] for w in range(sb.shape[1])]:
            ci, cu = pd.factorize(col)
            inv = ci if inv is None else pd.factorize(inv * len(cu) + ci)[0]
        ng = int(inv.max()) + 1
    if ng * 2 > nr:
        return None, None
    rep = np.empty(ng, dtype=np.int64)
    rep[inv] = np.arange(nr)  # any row of the group will do: they are identical
    return inv, rep


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
    (:data:`INVALID_REASONS`) and ``trace`` (:data:`TRACE_FORMAT`). :func:`group_arrow` is the
    same with Arrow in and out.
    """
    g = _group(compiled, df, apply_code_maps, unknown_codes, trace)
    d = g.compiled._derived
    res = {
        "mdc": d["out_mdc"][g.outc],
        "adrg": d["out_adrg"][g.outc],
        "drg": d["out_drg"][g.outc],
        "status": d["out_kind"][g.outc],
        "has_mcc": g.has_mcc,
        "has_cc": g.has_cc,
        "cc_code": _cc_codes(d["dx_codes_obj"], g.cc_id, g.compiled.n_dx),
        "invalid_reason": _REASON_NAMES[g.reason],
        "trace": (g.trace_texts.to_numpy(zero_copy_only=False)[g.trace_key] if g.trace_texts is not None
                  else np.full(g.n, None, dtype=object)),
    }
    # copy=False: the (fresh) arrays become the columns as they are, one block each -- no copy into
    # a consolidated object block; explicit dtypes: no object-column type inference
    idx = df.index
    return pd.DataFrame({name: pd.Series(res[name], index=idx, dtype=res[name].dtype, copy=False)
                         for name in OUTPUT_COLUMNS}, copy=False)


def group_arrow(compiled: CompiledScheme | str | os.PathLike, data: pd.DataFrame | pa.Table | pa.RecordBatch, *,
                apply_code_maps: bool = False, unknown_codes: str = "invalid", trace: bool = True) -> pa.Table:
    """:func:`group_frame` with Arrow in and out: the same grouping of the same input columns (a pandas
    frame, or an Arrow table / record batch with those columns), returned as an Arrow table of
    :data:`OUTPUT_COLUMNS` (strings as ``string``, flags as ``bool``; ``trace`` null when
    ``trace=False``), row for row. The grouping job calls this one: each distinct output text is
    converted to Arrow once (the result columns are Arrow ``take``s from per-scheme text arrays),
    instead of once per row from Python strings.
    """
    frame = _ArrowFrame(data) if isinstance(data, (pa.Table, pa.RecordBatch)) else data
    g = _group(compiled, frame, apply_code_maps, unknown_codes, trace)
    c = g.compiled
    texts = c.derived("out_texts_pa", lambda: {k: pa.array(c._derived[f"out_{k}"].tolist(), pa.string())
                                                for k in ("mdc", "adrg", "drg", "kind")})
    outc = pa.array(g.outc)
    # the codes by id, and a null for the "no code" id n_dx
    cc_codes = c.derived("dx_codes_pa_null", lambda: pa.array(c._derived["dx_codes_obj"].tolist(), pa.string()))
    cols = {
        "mdc": texts["mdc"].take(outc),
        "adrg": texts["adrg"].take(outc),
        "drg": texts["drg"].take(outc),
        "status": texts["kind"].take(outc),
        "has_mcc": pa.array(g.has_mcc, pa.bool_()),
        "has_cc": pa.array(g.has_cc, pa.bool_()),
        "cc_code": cc_codes.take(pa.array(g.cc_id)),
        "invalid_reason": _REASON_NAMES_PA.take(pa.array(g.reason)),
        "trace": (g.trace_texts.take(pa.array(g.trace_key)) if g.trace_texts is not None
                  else pa.nulls(g.n, pa.string())),
    }
    return pa.Table.from_arrays([cols[name] for name in OUTPUT_COLUMNS], names=list(OUTPUT_COLUMNS))


class _ArrowFrame:
    """The little of a pandas frame :func:`_group` uses (``columns``, ``len``, ``frame[name]``), over
    an Arrow table or batch: each column is viewed as an Arrow-backed Series, no conversion."""

    def __init__(self, data: pa.Table | pa.RecordBatch):
        self.data, self.columns = data, data.schema.names

    def __len__(self) -> int:
        return self.data.num_rows

    def __getitem__(self, name: str) -> pd.Series:
        return pd.Series(pd.arrays.ArrowExtensionArray(self.data.column(name)), copy=False)


class _Grouped:
    """What :func:`_group` found, per row, as numbers (turned into pandas or Arrow columns by the callers)."""

    #: trace_texts: distinct trace texts (Arrow strings), trace_key: per row, the position of its trace
    #: in trace_texts (both None without traces)
    __slots__ = ("compiled", "n", "outc", "has_mcc", "has_cc", "cc_id", "reason", "trace_texts", "trace_key")

    def __init__(self, **kw):
        for k, v in kw.items():
            setattr(self, k, v)


def _group(compiled, df, apply_code_maps: bool, unknown_codes: str, trace: bool) -> _Grouped:
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
    pdx_str = _string_array(col("principal_dx"), n, "principal_dx", dictionary=True)
    sec_str, sec_offs = _list_column(col("secondary_dxs"), n, "secondary_dxs")
    px_str, px_offs = _list_column(col("procedures"), n, "procedures")
    nd, npx = c.n_dx, c.n_px

    b = _Batch()
    b.n = n
    if isinstance(pdx_str, pa.DictionaryArray) or isinstance(sec_str, pa.DictionaryArray) or not len(sec_str):
        b.pdx, pdx_blank, pdx_unk = _lookup(c, pdx_str, "dx", apply_code_maps)
        sec_ids, blank, sec_unk = _lookup(c, sec_str, "dx", apply_code_maps)
    else:  # one lookup for principal and secondary diagnoses (one hash table of the vocabulary, not two)
        ids, blank, unk = _lookup(c, pa.concat_arrays([pdx_str, sec_str]), "dx", apply_code_maps)
        b.pdx, sec_ids = ids[:n], ids[n:]
        cut_b, cut_u = np.searchsorted(blank, n), np.searchsorted(unk, n)
        pdx_blank, blank = blank[:cut_b], blank[cut_b:] - n
        pdx_unk, sec_unk = unk[:cut_u], unk[cut_u:] - n
    sec_str, b.sec_offs, b.sec_ids, sec_unk = _drop(sec_str, sec_offs, sec_ids, blank, sec_unk)
    px_ids, blank, px_unk = _lookup(c, px_str, "px", apply_code_maps)
    px_str, b.px_offs, b.px_ids, px_unk = _drop(px_str, px_offs, px_ids, blank, px_unk)
    nproc = np.diff(b.px_offs)
    b.pproc = np.full(n, npx, dtype=np.int32)
    hasp = nproc > 0
    b.pproc[hasp] = b.px_ids[b.px_offs[:-1][hasp]]

    b.sex = _sex(df["sex"], n) if n else np.zeros(0, dtype=np.int8)
    age = _numeric(col("age_years"), n, floor=True)
    ad = _numeric(col("age_days"), n, floor=True)
    bw = _numeric(col("birth_weight_g"), n)
    profile = c.validation_profile
    if profile == "zero_fill":
        ad = np.where(np.isnan(ad), 0.0, ad) if np.isnan(ad).any() else ad
        bw = np.where(np.isnan(bw), 0.0, bw) if np.isnan(bw).any() else bw
    b.age, b.ad, b.bw = age, ad, bw
    dept = col("dept")
    if dept is not None and c.meta["dept_literals"]:
        try:
            coded = isinstance(dept.dtype, pd.ArrowDtype) and pa.types.is_dictionary(dept.dtype.pyarrow_dtype)
            d = _string_array(dept, n, "dept", dictionary=coded)
            # a dictionary array: compare its distinct values, then take them per row
            values, rows = (d.dictionary, d.indices) if isinstance(d, pa.DictionaryArray) else (d, None)
            values = pc.utf8_trim_whitespace(values)
            hits = (pc.equal(values, lit) for lit in c.meta["dept_literals"])
            b.dept = [pc.fill_null(h if rows is None else h.take(rows), False).to_numpy(zero_copy_only=False)
                      for h in hits]
        except TypeError:  # non-string department codes (e.g. integers): compare their text
            d = dept.astype(object).map(lambda v: v if v is None or v != v else str(v).strip())
            b.dept = [(d == lit).fillna(False).to_numpy(dtype=bool) for lit in c.meta["dept_literals"]]
    else:
        b.dept = [np.zeros(n, dtype=bool) for _ in c.meta["dept_literals"]]

    # ---------------------------------------------------------------- validation
    pdx_missing = np.zeros(n, dtype=bool)
    pdx_missing[pdx_blank] = True
    reason = np.zeros(n, dtype=np.int8)
    detail_pos = None  # position of the offending code (unknown codes); allocated when there is one
    detail_src = np.zeros(n, dtype=np.int8)  # 1 principal, 2 secondary flat, 3 procedure flat
    checks = []
    if unknown_codes == "invalid":
        for unk, offs, why, src in ((px_unk, b.px_offs, "UNKNOWN_PROC_CODE", 3),
                                    (sec_unk, b.sec_offs, "UNKNOWN_DX_CODE", 2)):
            if len(unk):
                rows_u = np.searchsorted(offs, unk, side="right") - 1
                f = _first_per_row(rows_u)
                reason[rows_u[f]] = _R[why]
                if detail_pos is None:
                    detail_pos = np.full(n, -1, dtype=np.int64)
                detail_pos[rows_u[f]] = unk[f]
                detail_src[rows_u[f]] = src
        pu = pdx_unk
        if len(pu):
            reason[pu] = _R["UNKNOWN_DX_CODE"]
            if detail_pos is None:
                detail_pos = np.full(n, -1, dtype=np.int64)
            detail_pos[pu] = pu
            detail_src[pu] = 1
    if profile == "newborn_strict":
        checks.append(("MISSING_BIRTH_WEIGHT", (age == 0) & (ad <= 28) & (np.isnan(bw) | (bw == 0))))
        checks.append(("MISSING_AGE_DAYS", (age == 0) & np.isnan(ad)))
    checks.append(("MISSING_AGE", np.isnan(age)))
    checks.append(("BAD_SEX", b.sex == 0))
    checks.append(("MISSING_PRINCIPAL_DX", pdx_missing))
    for name, mask in checks:  # lowest priority first; higher priorities overwrite
        if mask.any():
            reason[mask] = _R[name]
            detail_src[mask] = 0
    valid = reason == 0

    # ---------------------------------------------------------------- CC / MCC
    sec_rows = b.sec_rows = _rows_of(b.sec_offs)
    tabs, none = c.derived("cc_tables", lambda: _cc_tables(c))
    Trow = tabs["pe_tab"][b.pdx][sec_rows]  # principal's exclusion table, per secondary
    cc_id = np.full(n, nd, dtype=np.int32)
    has = {}
    for name in ("cc_tab", "mcc_tab"):  # mcc last so it takes precedence for cc_code
        t = tabs[name][b.sec_ids]
        hit = np.flatnonzero((t != none) & (t != Trow))  # counts unless excluded by the principal's table
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
    texts = key = None
    if trace and n:
        trace_texts, key = _build_trace(c, outc, fall, cc_id, retries, px_str)
        bad = np.flatnonzero(~valid)
        if len(bad):
            t = "INVALID=" + _REASON_NAMES[reason[bad]]
            src = detail_src[bad]
            for s_kind, arr in ((1, pdx_str), (2, sec_str), (3, px_str)):
                sel = np.flatnonzero(src == s_kind)
                if len(sel):
                    codes = _texts(arr, detail_pos[bad[sel]])
                    t[sel] = t[sel] + "(" + codes + ")"
            key[bad] = trace_texts.add(pa.array(t, pa.string())) + np.arange(len(bad))  # (not worth sharing)
        texts = trace_texts.array()
    return _Grouped(compiled=c, n=n, outc=outc, has_mcc=b.has_mcc, has_cc=has["cc_tab"], cc_id=cc_id, reason=reason,
                    trace_texts=texts, trace_key=key)


_REASON_NAMES = _obj([None] + list(INVALID_REASONS))
_REASON_NAMES_PA = pa.array(_REASON_NAMES.tolist(), pa.string())


def _cc_codes(codes: np.ndarray, cc_id: np.ndarray, none: int) -> np.ndarray:
    """The code of each row's CC/MCC (object array, None where ``cc_id == none``): only the rows that
    have one are gathered from the (large) code array."""
    out = np.full(len(cc_id), None, dtype=object)
    has = np.flatnonzero(cc_id != none)
    out[has] = codes[cc_id[has]]
    return out


def _dx_paren(c: CompiledScheme) -> pa.Array:
    """"(<code>)" per diagnosis id, "" for the sentinel id n_dx (for trace suffixes)."""
    return pa.array(["(" + x + ")" for x in c.arrays["dx_codes"].tolist()] + [""], pa.string())


class _TraceTexts:
    """The distinct trace texts of a batch, as Arrow strings appended piece by piece; a row's trace is
    the text at its key. The first piece is the scheme's outcome texts, so an outcome id is its key."""

    def __init__(self, c: CompiledScheme):
        self.parts = [c.derived("out_trace_pa", lambda: pa.array(c._derived["out_trace"].tolist(), pa.string()))]
        self.size = len(self.parts[0])

    def add(self, texts: pa.Array) -> int:
        """Append ``texts``; returns the key of the first."""
        start = self.size
        self.parts.append(texts)
        self.size += len(texts)
        return start

    def array(self) -> pa.Array:
        if len(self.parts) > 1:
            self.parts = [pa.concat_arrays(self.parts)]
        return self.parts[0]

    def at(self, keys: np.ndarray) -> list:
        return self.array().take(pa.array(keys)).to_pylist()


def _reps(inv: np.ndarray, n_groups: int) -> np.ndarray:
    """One position per group of ``inv`` (any: the members of a group are interchangeable)."""
    rep = np.empty(n_groups, dtype=np.int64)
    rep[inv] = np.arange(len(inv))
    return rep


def _trace_pass(c: CompiledScheme, o: np.ndarray, f: np.ndarray, cc_id: np.ndarray, texts: _TraceTexts) -> np.ndarray:
    """Trace of one driver pass (fallthrough MDCs + outcome text + "(cc_code)"): the key of each
    row's text in ``texts`` (rows with equal keys have equal texts).

    Each distinct text is built once: rows without fallthrough and suffix have their outcome's text
    (key = outcome id); rows with fallthrough MDCs one text per distinct (fallthrough set, outcome)
    (assembled in Python, few); rows whose DRG split shows the cc code one text per distinct (text
    so far, cc code), joined by one Arrow kernel call.
    """
    n_out = len(c._derived["out_trace"])
    key = o.astype(np.int64)
    fr = np.flatnonzero(f)
    if len(fr):
        finv, fu = pd.factorize(f[fr])
        pinv, pairs = pd.factorize(finv * n_out + o[fr])
        names = [m["fallthrough"] for m in c.meta["mdcs"]]
        prefixes = [";".join(names[i] for i in range(len(names)) if (int(x) >> i) & 1) for x in fu]
        out_trace = c.meta["outcomes"]["trace"]
        heads = [f"{prefixes[fi]};{out_trace[oi]}" for fi, oi in (divmod(k, n_out) for k in pairs.tolist())]
        key[fr] = texts.add(pa.array(heads, pa.string())) + pinv
    sr = np.flatnonzero(c._derived["out_code_suffix"][o])
    if len(sr):
        ks, cs = key[sr], cc_id[sr]
        inv, uniq = pd.factorize(ks * (c.n_dx + 1) + cs)
        rep = sr[_reps(inv, len(uniq))]
        paren = c.derived("dx_paren_pa", lambda: _dx_paren(c))
        new = pc.binary_join_element_wise(texts.array().take(pa.array(key[rep])), paren.take(pa.array(cc_id[rep])), "")
        key[sr] = texts.add(new) + inv
    return key


def _code_texts(arr: pa.Array, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Stripped code strings at ``pos`` as (id per position, distinct texts); each distinct string stripped once."""
    enc = pc.dictionary_encode(arr.take(pa.array(pos, type=pa.int64())))
    uniq = [None if v is None else v.strip() for v in enc.dictionary.to_pylist()]
    idx = enc.indices
    if idx.null_count:
        idx = pc.fill_null(idx, len(uniq))
    return np.asarray(idx.to_numpy(zero_copy_only=False), dtype=np.int64), _obj(uniq + [None])


def _build_trace(c, outc, fall, cc_id, retries, px_str) -> tuple[_TraceTexts, np.ndarray]:
    """The distinct traces and each row's key into them (rows with equal keys have equal traces)."""
    texts = _TraceTexts(c)
    # the first segment describes the first pass (rows that were retried had no group there)
    first = outc.copy() if retries else outc
    for cand, *_ in retries:
        first[cand] = OUT_NOGROUP
    key = _trace_pass(c, first, fall, cc_id, texts)
    for cand, k, ppos, s_out, s_fall in retries:
        # "<previous>;RETRY=<k>(<proc>);<segment>", built per distinct (previous, proc, segment)
        ckey, ctexts = _code_texts(px_str, ppos)
        skey = _trace_pass(c, s_out, s_fall, cc_id[cand], texts)
        inv1, u1 = pd.factorize(key[cand] * len(ctexts) + ckey)
        inv2, u2 = pd.factorize(inv1.astype(np.int64) * (int(skey.max()) + 1) + skey)
        rep = _reps(inv2, len(u2))  # positions in cand
        seg = f";RETRY={k + 1}("
        new = [f"{t}{seg}{code});{rest}" for t, code, rest in
               zip(texts.at(key[cand[rep]]), ctexts[ckey[rep]].tolist(), texts.at(skey[rep]))]
        key[cand] = texts.add(pa.array(new, pa.string())) + inv2
    return texts, key
