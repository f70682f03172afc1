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
