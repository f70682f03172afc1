"""Load a DRG grouping scheme folder into typed, validated objects.

A scheme folder (e.g. ``/work/shared/schemes/chs-drg-1.1``) holds the engine-neutral
data described in its ``README.md``: ``mdc.json``, ``adrg.json``, ``drg_splits.json``
and the CSV code tables.  The licence notice is read from ``NOTICE`` in the folder or
in its parent.  Nothing of the scheme data is bundled with this package: every loader
takes the folder path as an argument.

Everything is validated when loading.  Anything the grouping engine would not
understand (an unknown rule term or split predicate, a reference to a list that does
not exist, a missing file or column, an inconsistent reference between the files)
raises :class:`SchemeError` naming the file, the rule and the offending term, and
saying what is allowed.  Nothing is silently ignored.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

__all__ = [
    "SchemeError",
    "Cond",
    "Split",
    "QYCheck",
    "AdrgRule",
    "Mdc",
    "DrgSplit",
    "DrgInfo",
    "DriverSettings",
    "Scheme",
    "load_scheme",
    "scheme_content_hash",
    "RULE_TERMS",
    "SPLIT_PREDICATES",
    "SURGICAL_LIST",
    "VALIDATION_PROFILES",
]


class SchemeError(ValueError):
    """A scheme folder is missing a file or contains something the engine does not understand."""


# ----------------------------------------------------------------------------- vocabulary

#: reference to ``surgical_procedures.csv`` inside a rule
SURGICAL_LIST = "@surgical"

DX_LIST_TERMS = ("principal_dx_in", "any_dx_in", "secondary_dx_in")
PROC_LIST_TERMS = ("principal_proc_in", "any_proc_in")
INT_TERMS = ("age_years_eq", "age_days_lte", "birth_weight_gte", "birth_weight_lt", "trauma_sites_min")
BOOL_TERMS = ("always",)
COMBINATORS = ("all", "any", "not")
#: every rule term understood by the engine (MDC entry, ADRG ``when``, QY checks)
RULE_TERMS = COMBINATORS + BOOL_TERMS + DX_LIST_TERMS + PROC_LIST_TERMS + INT_TERMS + ("sex_eq",)

SPLIT_NAMES = ("always", "mcc", "mcc_or_cc")
SPLIT_TERMS = ("age_years_lt", "dept_eq", "procs_include_all")
#: every DRG split predicate understood by the engine
SPLIT_PREDICATES = SPLIT_NAMES + SPLIT_TERMS

IF_NO_DRG = ("return_adrg", "continue")
IF_NO_ADRG = ("continue_with_next_mdc",)

#: Input validation done before grouping, per scheme id (the data files do not encode it;
#: it is described in each scheme's README, section "Input validation"):
#:   ``newborn_strict`` (CHS 1.1 proxy): age_days required when age_years == 0, birth
#:       weight (non-zero) required for a newborn (age_years == 0 and age_days <= 28);
#:   ``zero_fill`` (yunnan/zhejiang string interface): an empty age_days / birth weight
#:       counts as 0, so those checks never fire.
#: Unknown scheme ids get ``newborn_strict`` (the national standard's behaviour).
VALIDATION_PROFILES = {
    "chs-drg-1.1": "newborn_strict",
    "yunnan-2023": "zero_fill",
    "zhejiang-2022": "zero_fill",
}
DEFAULT_VALIDATION_PROFILE = "newborn_strict"

DATA_FILES = (
    "mdc.json",
    "adrg.json",
    "drg_splits.json",
    "drgs.csv",
    "diagnoses.csv",
    "procedures.csv",
    "diagnosis_map.csv",
    "procedure_map.csv",
    "mcc.csv",
    "cc.csv",
    "principal_exclusion.csv",
    "surgical_procedures.csv",
)

CSV_COLUMNS = {
    "diagnoses.csv": ("code", "name"),
    "procedures.csv": ("code", "name"),
    "diagnosis_map.csv": ("source_code", "grouper_code"),
    "procedure_map.csv": ("source_code", "grouper_code"),
    "mcc.csv": ("code", "exclusion_table"),
    "cc.csv": ("code", "exclusion_table"),
    "principal_exclusion.csv": ("principal_code", "exclusion_table"),
    "surgical_procedures.csv": ("code", "name"),
    "drgs.csv": ("drg", "name", "adrg", "suffix", "split", "reachable"),
}

SUPPORTED_FORMAT_VERSIONS = (1,)


# ----------------------------------------------------------------------------- data model


@dataclass(frozen=True)
class Cond:
    """One node of a rule tree.

    ``op`` is a term of :data:`RULE_TERMS`.  Combinators keep their operands in
    ``children``; list terms name their list in ``list_name`` (a key of the owner's
    ``lists`` or ``"@surgical"``); ``age_*``/``birth_weight_*``/``trauma_sites_min``
    keep an ``int`` and ``sex_eq`` a ``str`` in ``value``.
    """

    op: str
    children: tuple["Cond", ...] = ()
    list_name: str | None = None
    value: int | str | None = None

    def render(self) -> str:
        """Compact, stable text form used in traces, e.g.
        ``principal_dx_in(zd)&!principal_proc_in(@surgical)``.

        ``all`` -> ``a&b``, ``any`` -> ``a|b``, ``not`` -> ``!a``; a nested ``all``/``any``
        is parenthesised; leaves are ``term(argument)``; ``always`` is ``always``.
        """
        return self._render(top=True)

    def _render(self, top: bool) -> str:
        if self.op == "always":
            return "always"
        if self.op in ("all", "any"):
            sep = "&" if self.op == "all" else "|"
            text = sep.join(c._render(top=False) for c in self.children)
            return text if top else f"({text})"
        if self.op == "not":
            return "!" + self.children[0]._render(top=False)
        arg = self.list_name if self.list_name is not None else self.value
        return f"{self.op}({arg})"

    def walk(self) -> Iterator["Cond"]:
        yield self
        for c in self.children:
            yield from c.walk()


@dataclass(frozen=True)
class Split:
    """A DRG split predicate: ``kind`` in :data:`SPLIT_PREDICATES`, ``value`` its argument
    (``int`` for age_years_lt, ``str`` for dept_eq, ``tuple[str, ...]`` for procs_include_all)."""

    kind: str
    value: int | str | tuple[str, ...] | None = None

    def render(self) -> str:
        if self.kind in SPLIT_NAMES:
            return self.kind
        if self.kind == "procs_include_all":
            return f"procs_include_all({'+'.join(self.value)})"  # type: ignore[arg-type]
        return f"{self.kind}({self.value})"


@dataclass(frozen=True)
class QYCheck:
    enabled: bool
    when: Cond
    result_drg: str


@dataclass(frozen=True)
class AdrgRule:
    rule_id: str
    adrg: str
    adrg_name: str
    mdc: str
    when: Cond
    drg_sequence: tuple[str, ...]
    if_no_drg_matches: str  # "return_adrg" | "continue"
    fallthrough_reachable: bool
    never_matches: str | None
    lists: Mapping[str, tuple[str, ...]]


@dataclass(frozen=True)
class Mdc:
    mdc: str
    position: int
    entry: Cond
    sequence: tuple["str | QYCheck", ...]  # ADRG rule ids interleaved with QY checks
    if_no_adrg_matches: str
    lists: Mapping[str, tuple[str, ...]]
    #: ``((site name, codes), ...)`` for MDCZ, else ``None``
    trauma_sites: tuple[tuple[str, tuple[str, ...]], ...] | None = None

    def trauma_site_of(self) -> dict[str, int]:
        """code -> site index (0-based); a code under several sites belongs to the LAST one."""
        out: dict[str, int] = {}
        for i, (_site, codes) in enumerate(self.trauma_sites or ()):
            for c in codes:
                out[c] = i
        return out


@dataclass(frozen=True)
class DrgSplit:
    drg: str
    adrg: str
    name: str
    split: Split
    reachable: bool


@dataclass(frozen=True)
class DrgInfo:
    """One row of ``drgs.csv`` (catalogue incl. QY codes; informative)."""

    drg: str
    name: str
    adrg: str
    suffix: str
    split: str
    reachable: bool


@dataclass(frozen=True)
class DriverSettings:
    no_group_mdc: str
    no_group_adrg: str
    no_group_drg: str
    retry_with_single_secondary_procedure: bool
    retry_rule: str | None = None


@dataclass(frozen=True, eq=False)
class Scheme:
    scheme_id: str
    path: str
    source: Mapping[str, Any]
    licence_text: str
    content_hash: str
    format_version: int
    validation_profile: str
    driver: DriverSettings
    mdc_order: tuple[str, ...]
    mdcs: tuple[Mdc, ...]  # in evaluation order
    rules: Mapping[str, AdrgRule]  # rule_id -> rule, in adrg.json order
    drg_splits: Mapping[str, DrgSplit]  # drg -> split
    drg_catalogue: Mapping[str, DrgInfo]  # drgs.csv
    diagnoses: Mapping[str, str]  # code -> name
    procedures: Mapping[str, str]
    diagnosis_map: Mapping[str, str]  # source_code -> grouper_code
    procedure_map: Mapping[str, str]
    mcc: Mapping[str, str]  # code -> exclusion table id (string)
    cc: Mapping[str, str]
    principal_exclusion: Mapping[str, str]  # principal code -> exclusion table id
    surgical: tuple[str, ...]
    #: (owner, list name) -> "dx" | "proc"; owner is ("mdc", MDCx) or ("rule", rule_id)
    list_kinds: Mapping[tuple[tuple[str, str], str], str] = field(default_factory=dict)

    # -- helpers -------------------------------------------------------------
    def mdc(self, name: str) -> Mdc:
        for m in self.mdcs:
            if m.mdc == name:
                return m
        raise KeyError(name)

    def resolve_list(self, owner: tuple[str, str], name: str) -> tuple[str, ...]:
        """Codes of list ``name`` as seen from ``owner`` (``("mdc", "MDCA")`` or ``("rule", "FB2")``)."""
        if name == SURGICAL_LIST:
            return self.surgical
        kind, key = owner
        lists = self.mdc(key).lists if kind == "mdc" else self.rules[key].lists
        return lists[name]

    def referenced_diagnosis_codes(self) -> list[str]:
        """Every diagnosis code referenced by a rule list, trauma table or CC/MCC/exclusion table
        (in a deterministic order, duplicates removed)."""
        seen: dict[str, None] = {}
        for (owner, name), kind in self.list_kinds.items():
            if kind == "dx":
                seen.update(dict.fromkeys(self.resolve_list(owner, name)))
        for m in self.mdcs:
            for _site, codes in m.trauma_sites or ():
                seen.update(dict.fromkeys(codes))
        seen.update(dict.fromkeys(self.mcc))
        seen.update(dict.fromkeys(self.cc))
        seen.update(dict.fromkeys(self.principal_exclusion))
        return list(seen)

    def referenced_procedure_codes(self) -> list[str]:
        seen: dict[str, None] = dict.fromkeys(self.surgical)
        for (owner, name), kind in self.list_kinds.items():
            if kind == "proc" and name != SURGICAL_LIST:
                seen.update(dict.fromkeys(self.resolve_list(owner, name)))
        for d in self.drg_splits.values():
            if d.split.kind == "procs_include_all":
                seen.update(dict.fromkeys(d.split.value))  # type: ignore[arg-type]
        return list(seen)

    def known_diagnosis_codes(self) -> list[str]:
        """Diagnosis vocabulary: ``diagnoses.csv`` codes, then every other referenced code."""
        out = dict.fromkeys(self.diagnoses)
        out.update(dict.fromkeys(self.referenced_diagnosis_codes()))
        return list(out)

    def known_procedure_codes(self) -> list[str]:
        out = dict.fromkeys(self.procedures)
        out.update(dict.fromkeys(self.referenced_procedure_codes()))
        return list(out)


# ----------------------------------------------------------------------------- hashing


def _scheme_files(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")), key=lambda p: p.name)


def scheme_content_hash(scheme_dir: str | os.PathLike) -> str:
    """sha256 over every (non-hidden) file of the scheme folder, sorted by name
    (each file contributes its name, its size and its bytes)."""
    folder = Path(scheme_dir)
    if not folder.is_dir():
        raise SchemeError(f"{folder}: scheme folder does not exist")
    h = hashlib.sha256()
    for p in _scheme_files(folder):
        data = p.read_bytes()
        h.update(p.name.encode("utf-8") + b"\0" + str(len(data)).encode("ascii") + b"\0")
        h.update(data)
    return h.hexdigest()


# ----------------------------------------------------------------------------- loading helpers


def _read_json(folder: Path, name: str) -> dict:
    p = folder / name
    if not p.is_file():
        raise SchemeError(f"{name}: required scheme file is missing in {folder} (required files: {', '.join(DATA_FILES)})")
    try:
        with open(p, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise SchemeError(f"{name}: not valid JSON: {e}") from e
    if not isinstance(data, dict):
        raise SchemeError(f"{name}: top level must be a JSON object")
    return data


def _read_csv(folder: Path, name: str) -> list[list[str]]:
    p = folder / name
    if not p.is_file():
        raise SchemeError(f"{name}: required scheme file is missing in {folder} (required files: {', '.join(DATA_FILES)})")
    with open(p, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    expected = CSV_COLUMNS[name]
    if not rows or tuple(rows[0]) != expected:
        got = rows[0] if rows else "<empty file>"
        raise SchemeError(f"{name}: header must be {','.join(expected)}, got {got}")
    body = rows[1:]
    for i, r in enumerate(body, start=2):
        if len(r) != len(expected):
            raise SchemeError(f"{name}: line {i}: expected {len(expected)} columns ({','.join(expected)}), got {len(r)}")
        if not r[0]:
            raise SchemeError(f"{name}: line {i}: empty {expected[0]}")
    return body


def _code_table(folder: Path, name: str) -> dict[str, str]:
    """code -> second column; a duplicated code with two different values is an error."""
    out: dict[str, str] = {}
    for i, (code, val, *_rest) in enumerate(_read_csv(folder, name), start=2):
        if code in out and out[code] != val:
            raise SchemeError(f"{name}: line {i}: code {code!r} listed twice with different values ({out[code]!r}, {val!r})")
        if name in ("mcc.csv", "cc.csv", "principal_exclusion.csv") and not val:
            raise SchemeError(f"{name}: line {i}: empty exclusion_table for {code!r}")
        out[code] = val
    return out


def _req(obj: Mapping, key: str, where: str, types: type | tuple[type, ...]) -> Any:
    if key not in obj:
        raise SchemeError(f"{where}: missing key {key!r}")
    val = obj[key]
    if not isinstance(val, types) or (types is int and isinstance(val, bool)):
        tn = types.__name__ if isinstance(types, type) else "/".join(t.__name__ for t in types)
        raise SchemeError(f"{where}: key {key!r} must be {tn}, got {val!r}")
    return val


def _parse_lists(obj: Mapping, where: str) -> dict[str, tuple[str, ...]]:
    raw = obj.get("lists", {})
    if not isinstance(raw, dict):
        raise SchemeError(f"{where}: 'lists' must be an object of name -> list of codes")
    out: dict[str, tuple[str, ...]] = {}
    for name, codes in raw.items():
        if name.startswith("@"):
            raise SchemeError(f"{where}: list name {name!r} may not start with '@' (reserved for {SURGICAL_LIST})")
        if not isinstance(codes, list) or not all(isinstance(c, str) and c for c in codes):
            raise SchemeError(f"{where}: list {name!r} must be a list of non-empty code strings")
        out[name] = tuple(dict.fromkeys(codes))  # de-duplicate, order kept
    return out


class _CondParser:
    """Parses a rule object into :class:`Cond`, checking every term and list reference."""

    def __init__(self, file: str, owner_desc: str, owner: tuple[str, str], lists: Mapping[str, tuple[str, ...]],
                 has_trauma: bool, list_kinds: dict):
        self.file = file
        self.owner_desc = owner_desc
        self.owner = owner
        self.lists = lists
        self.has_trauma = has_trauma
        self.list_kinds = list_kinds

    def fail(self, msg: str) -> SchemeError:
        return SchemeError(f"{self.file}: {self.owner_desc}: {msg}")

    def parse(self, obj: Any) -> Cond:
        if not isinstance(obj, dict) or len(obj) != 1:
            raise self.fail(
                f"a rule must be an object with exactly one term, got {json.dumps(obj, ensure_ascii=False)[:120]}; "
                f"allowed terms: {', '.join(RULE_TERMS)}")
        (term, arg), = obj.items()
        if term not in RULE_TERMS:
            raise self.fail(f"unknown rule term {term!r}; allowed terms: {', '.join(RULE_TERMS)}")
        if term in ("all", "any"):
            if not isinstance(arg, list) or not arg:
                raise self.fail(f"term {term!r} needs a non-empty list of rules, got {arg!r}")
            return Cond(term, tuple(self.parse(a) for a in arg))
        if term == "not":
            return Cond(term, (self.parse(arg),))
        if term == "always":
            if arg is not True:
                raise self.fail(f"term 'always' must be written {{\"always\": true}}, got {arg!r}")
            return Cond(term)
        if term in DX_LIST_TERMS or term in PROC_LIST_TERMS:
            kind = "dx" if term in DX_LIST_TERMS else "proc"
            if not isinstance(arg, str):
                raise self.fail(f"term {term!r} needs a list name (string), got {arg!r}")
            if arg == SURGICAL_LIST:
                if kind != "proc":
                    raise self.fail(f"term {term!r} refers to {SURGICAL_LIST!r}, which is a procedure list; "
                                    f"diagnosis terms need one of the lists {sorted(self.lists)}")
            elif arg not in self.lists:
                raise self.fail(f"term {term!r} refers to unknown list {arg!r}; allowed: "
                                f"{', '.join(sorted(self.lists)) or '(no lists defined)'} or {SURGICAL_LIST!r}")
            key = (self.owner, arg)
            prev = self.list_kinds.get(key)
            if prev is not None and prev != kind:
                raise self.fail(f"list {arg!r} is used both as a diagnosis list and as a procedure list (term {term!r})")
            self.list_kinds[key] = kind
            return Cond(term, list_name=arg)
        if term in INT_TERMS:
            if not isinstance(arg, int) or isinstance(arg, bool):
                raise self.fail(f"term {term!r} needs an integer, got {arg!r}")
            if term == "trauma_sites_min" and not self.has_trauma:
                raise self.fail("term 'trauma_sites_min' is only allowed in an MDC that defines 'trauma_sites'")
            return Cond(term, value=arg)
        if term == "sex_eq":
            if arg not in ("1", "2"):
                raise self.fail(f"term 'sex_eq' needs \"1\" (male) or \"2\" (female), got {arg!r}")
            return Cond(term, value=arg)
        raise AssertionError(term)  # pragma: no cover


def _parse_split(obj: Any, file: str, drg: str) -> Split:
    where = f"{file}: DRG {drg}"
    allowed = f"allowed: {', '.join(repr(s) for s in SPLIT_NAMES)} or an object with one of {', '.join(SPLIT_TERMS)}"
    if isinstance(obj, str):
        if obj not in SPLIT_NAMES:
            raise SchemeError(f"{where}: unknown split predicate {obj!r}; {allowed}")
        return Split(obj)
    if not isinstance(obj, dict) or len(obj) != 1:
        raise SchemeError(f"{where}: unknown split predicate {json.dumps(obj, ensure_ascii=False)[:120]}; {allowed}")
    (term, arg), = obj.items()
    if term not in SPLIT_TERMS:
        raise SchemeError(f"{where}: unknown split predicate {term!r}; {allowed}")
    if term == "age_years_lt":
        if not isinstance(arg, int) or isinstance(arg, bool):
            raise SchemeError(f"{where}: split 'age_years_lt' needs an integer, got {arg!r}")
        return Split(term, arg)
    if term == "dept_eq":
        if not isinstance(arg, str) or not arg:
            raise SchemeError(f"{where}: split 'dept_eq' needs a non-empty string, got {arg!r}")
        return Split(term, arg)
    if not isinstance(arg, list) or not arg or not all(isinstance(c, str) and c for c in arg):
        raise SchemeError(f"{where}: split 'procs_include_all' needs a non-empty list of procedure codes, got {arg!r}")
    return Split(term, tuple(arg))


def _find_notice(folder: Path) -> Path:
    for p in (folder / "NOTICE", folder.parent / "NOTICE"):
        if p.is_file():
            return p
    raise SchemeError(f"NOTICE: licence notice not found (looked for {folder / 'NOTICE'} and {folder.parent / 'NOTICE'}); "
                      "the scheme data is Apache-2.0 licensed and must be used with its NOTICE")


# ----------------------------------------------------------------------------- main loader


def load_scheme(scheme_dir: str | os.PathLike) -> Scheme:
    """Load and validate the scheme folder ``scheme_dir``.  Raises :class:`SchemeError`."""
    folder = Path(scheme_dir).resolve()
    if not folder.is_dir():
        raise SchemeError(f"{folder}: scheme folder does not exist")
    for name in DATA_FILES:
        if not (folder / name).is_file():
            raise SchemeError(f"{name}: required scheme file is missing in {folder} (required files: {', '.join(DATA_FILES)})")
    content_hash = scheme_content_hash(folder)
    licence_text = _find_notice(folder).read_text(encoding="utf-8")

    mdc_doc = _read_json(folder, "mdc.json")
    adrg_doc = _read_json(folder, "adrg.json")
    split_doc = _read_json(folder, "drg_splits.json")

    scheme_id = _req(mdc_doc, "scheme", "mdc.json", str)
    for fname, doc in (("adrg.json", adrg_doc), ("drg_splits.json", split_doc)):
        sid = _req(doc, "scheme", fname, str)
        if sid != scheme_id:
            raise SchemeError(f"{fname}: scheme id {sid!r} differs from mdc.json's {scheme_id!r}")
    fmt = _req(mdc_doc, "format_version", "mdc.json", int)
    for fname, doc in (("mdc.json", mdc_doc), ("adrg.json", adrg_doc), ("drg_splits.json", split_doc)):
        v = doc.get("format_version")
        if v not in SUPPORTED_FORMAT_VERSIONS:
            raise SchemeError(f"{fname}: format_version {v!r} not supported; allowed: {SUPPORTED_FORMAT_VERSIONS}")

    # --- code tables
    diagnoses = {r[0]: r[1] for r in _read_csv(folder, "diagnoses.csv")}
    procedures = {r[0]: r[1] for r in _read_csv(folder, "procedures.csv")}
    diagnosis_map = _code_table(folder, "diagnosis_map.csv")
    procedure_map = _code_table(folder, "procedure_map.csv")
    for fname, m in (("diagnosis_map.csv", diagnosis_map), ("procedure_map.csv", procedure_map)):
        for k, v in m.items():
            if not v:
                raise SchemeError(f"{fname}: empty grouper_code for source_code {k!r}")
    mcc = _code_table(folder, "mcc.csv")
    cc = _code_table(folder, "cc.csv")
    principal_exclusion = _code_table(folder, "principal_exclusion.csv")
    surgical = tuple(dict.fromkeys(r[0] for r in _read_csv(folder, "surgical_procedures.csv")))
    both = set(mcc) & set(cc)
    if both:
        raise SchemeError(f"mcc.csv/cc.csv: {len(both)} code(s) are both MCC and CC (e.g. {sorted(both)[0]!r}); "
                          "the lists must be disjoint")
    catalogue: dict[str, DrgInfo] = {}
    for i, r in enumerate(_read_csv(folder, "drgs.csv"), start=2):
        if r[0] in catalogue:
            raise SchemeError(f"drgs.csv: line {i}: DRG {r[0]!r} listed twice")
        if r[5] not in ("yes", "no"):
            raise SchemeError(f"drgs.csv: line {i}: column reachable must be yes/no, got {r[5]!r}")
        catalogue[r[0]] = DrgInfo(r[0], r[1], r[2], r[3], r[4], r[5] == "yes")

    # --- DRG splits
    drg_splits: dict[str, DrgSplit] = {}
    raw_drgs = _req(split_doc, "drgs", "drg_splits.json", list)
    for i, d in enumerate(raw_drgs):
        where = f"drg_splits.json: drgs[{i}]"
        if not isinstance(d, dict):
            raise SchemeError(f"{where}: must be an object")
        code = _req(d, "drg", where, str)
        if code in drg_splits:
            raise SchemeError(f"drg_splits.json: DRG {code!r} listed twice")
        if "when" not in d:
            raise SchemeError(f"drg_splits.json: DRG {code}: missing key 'when'")
        drg_splits[code] = DrgSplit(
            drg=code,
            adrg=_req(d, "adrg", f"drg_splits.json: DRG {code}", str),
            name=str(d.get("name", "")),
            split=_parse_split(d["when"], "drg_splits.json", code),
            reachable=bool(d.get("reachable", True)),
        )

    list_kinds: dict = {}

    # --- ADRG rules
    rules: dict[str, AdrgRule] = {}
    raw_rules = _req(adrg_doc, "rules", "adrg.json", list)
    for i, r in enumerate(raw_rules):
        where = f"adrg.json: rules[{i}]"
        if not isinstance(r, dict):
            raise SchemeError(f"{where}: must be an object")
        rid = _req(r, "rule_id", where, str)
        where = f"adrg.json: rule {rid}"
        if rid in rules:
            raise SchemeError(f"{where}: rule_id listed twice")
        lists = _parse_lists(r, where)
        if "when" not in r:
            raise SchemeError(f"{where}: missing key 'when'")
        parser = _CondParser("adrg.json", f"rule {rid}", ("rule", rid), lists, False, list_kinds)
        when = parser.parse(r["when"])
        seq = _req(r, "drg_sequence", where, list)
        if not seq:
            raise SchemeError(f"{where}: drg_sequence is empty")
        for drg in seq:
            if drg not in drg_splits:
                raise SchemeError(f"{where}: drg_sequence refers to DRG {drg!r}, which has no split predicate in drg_splits.json")
        nodrg = _req(r, "if_no_drg_matches", where, str)
        if nodrg not in IF_NO_DRG:
            raise SchemeError(f"{where}: unknown if_no_drg_matches {nodrg!r}; allowed: {', '.join(IF_NO_DRG)}")
        rules[rid] = AdrgRule(
            rule_id=rid,
            adrg=_req(r, "adrg", where, str),
            adrg_name=str(r.get("adrg_name", "")),
            mdc=_req(r, "mdc", where, str),
            when=when,
            drg_sequence=tuple(seq),
            if_no_drg_matches=nodrg,
            fallthrough_reachable=bool(r.get("fallthrough_reachable", True)),
            never_matches=r.get("never_matches"),
            lists=lists,
        )

    # --- MDCs and driver
    driver_raw = _req(mdc_doc, "driver", "mdc.json", dict)
    rc = _req(driver_raw, "result_codes", "mdc.json: driver", dict)
    ng = _req(rc, "no_group", "mdc.json: driver.result_codes", dict)
    driver = DriverSettings(
        no_group_mdc=_req(ng, "mdc", "mdc.json: driver.result_codes.no_group", str),
        no_group_adrg=_req(ng, "adrg", "mdc.json: driver.result_codes.no_group", str),
        no_group_drg=_req(ng, "drg", "mdc.json: driver.result_codes.no_group", str),
        retry_with_single_secondary_procedure=_req(driver_raw, "retry_with_single_secondary_procedure", "mdc.json: driver", bool),
        retry_rule=driver_raw.get("retry_rule"),
    )

    mdc_order = tuple(_req(mdc_doc, "mdc_order", "mdc.json", list))
    raw_mdcs = _req(mdc_doc, "mdcs", "mdc.json", list)
    by_name: dict[str, Mdc] = {}
    used_rules: dict[str, str] = {}
    for i, m in enumerate(raw_mdcs):
        where = f"mdc.json: mdcs[{i}]"
        if not isinstance(m, dict):
            raise SchemeError(f"{where}: must be an object")
        name = _req(m, "mdc", where, str)
        where = f"mdc.json: MDC {name}"
        if name in by_name:
            raise SchemeError(f"{where}: listed twice")
        lists = _parse_lists(m, where)
        trauma = None
        if "trauma_sites" in m:
            ts = m["trauma_sites"]
            if not isinstance(ts, dict) or not isinstance(ts.get("sites"), list):
                raise SchemeError(f"{where}: trauma_sites must be an object with a list 'sites'")
            sites = []
            for j, s in enumerate(ts["sites"]):
                if not isinstance(s, dict) or not isinstance(s.get("site"), str) or not isinstance(s.get("codes"), list) \
                        or not all(isinstance(c, str) and c for c in s["codes"]):
                    raise SchemeError(f"{where}: trauma_sites.sites[{j}] must be {{'site': str, 'codes': [str, ...]}}")
                sites.append((s["site"], tuple(dict.fromkeys(s["codes"]))))
            if len(sites) > 62:
                raise SchemeError(f"{where}: at most 62 trauma sites are supported, got {len(sites)}")
            trauma = tuple(sites)
        if "entry" not in m:
            raise SchemeError(f"{where}: missing key 'entry'")
        entry = _CondParser("mdc.json", f"MDC {name} entry", ("mdc", name), lists, trauma is not None, list_kinds).parse(m["entry"])
        seq_raw = _req(m, "adrg_sequence", where, list)
        seq: list = []
        for j, item in enumerate(seq_raw):
            if isinstance(item, str):
                if item not in rules:
                    raise SchemeError(f"{where}: adrg_sequence[{j}] refers to rule {item!r}, which is not in adrg.json")
                if item in used_rules:
                    raise SchemeError(f"{where}: rule {item!r} is already used by {used_rules[item]}")
                if rules[item].mdc != name:
                    raise SchemeError(f"{where}: rule {item!r} belongs to {rules[item].mdc} (adrg.json), not {name}")
                used_rules[item] = name
                seq.append(item)
            elif isinstance(item, dict) and set(item) == {"qy_check"} and isinstance(item["qy_check"], dict):
                q = item["qy_check"]
                qw = f"{where}: adrg_sequence[{j}].qy_check"
                enabled = _req(q, "enabled", qw, bool)
                if "when" not in q:
                    raise SchemeError(f"{qw}: missing key 'when'")
                qwhen = _CondParser("mdc.json", f"MDC {name} qy_check", ("mdc", name), lists, trauma is not None,
                                    list_kinds).parse(q["when"])
                seq.append(QYCheck(enabled, qwhen, _req(q, "result_drg", qw, str)))
            else:
                raise SchemeError(f"{where}: adrg_sequence[{j}] must be a rule id or {{\"qy_check\": {{...}}}}, got "
                                  f"{json.dumps(item, ensure_ascii=False)[:120]}")
        nomatch = m.get("if_no_adrg_matches", "continue_with_next_mdc")
        if nomatch not in IF_NO_ADRG:
            raise SchemeError(f"{where}: unknown if_no_adrg_matches {nomatch!r}; allowed: {', '.join(IF_NO_ADRG)}")
        by_name[name] = Mdc(
            mdc=name,
            position=int(m.get("position", i + 1)),
            entry=entry,
            sequence=tuple(seq),
            if_no_adrg_matches=nomatch,
            lists=lists,
            trauma_sites=trauma,
        )
    if sorted(mdc_order) != sorted(by_name) or len(set(mdc_order)) != len(mdc_order):
        raise SchemeError(f"mdc.json: mdc_order {list(mdc_order)} must list every MDC of 'mdcs' exactly once "
                          f"({sorted(by_name)})")
    unused = [rid for rid in rules if rid not in used_rules]
    if unused:
        raise SchemeError(f"adrg.json: rule {unused[0]} is not referenced by any adrg_sequence of mdc.json "
                          f"({len(unused)} unreferenced rule(s))")
    used_drgs = {d for r in rules.values() for d in r.drg_sequence}
    unused_drgs = [d for d in drg_splits if d not in used_drgs]
    if unused_drgs:
        raise SchemeError(f"drg_splits.json: DRG {unused_drgs[0]} is not in the drg_sequence of any rule of adrg.json")

    profile = VALIDATION_PROFILES.get(scheme_id, DEFAULT_VALIDATION_PROFILE)

    return Scheme(
        scheme_id=scheme_id,
        path=str(folder),
        source=dict(mdc_doc.get("source", {})),
        licence_text=licence_text,
        content_hash=content_hash,
        format_version=fmt,
        validation_profile=profile,
        driver=driver,
        mdc_order=mdc_order,
        mdcs=tuple(by_name[n] for n in mdc_order),
        rules=rules,
        drg_splits=drg_splits,
        drg_catalogue=catalogue,
        diagnoses=diagnoses,
        procedures=procedures,
        diagnosis_map=diagnosis_map,
        procedure_map=procedure_map,
        mcc=mcc,
        cc=cc,
        principal_exclusion=principal_exclusion,
        surgical=surgical,
        list_kinds=list_kinds,
    )


def iter_rule_conds(scheme: Scheme) -> Iterable[tuple[str, Cond]]:
    """(description, condition) for every condition of the scheme (entries, QY checks, ADRG rules)."""
    for m in scheme.mdcs:
        yield f"MDC {m.mdc} entry", m.entry
        for item in m.sequence:
            if isinstance(item, QYCheck):
                yield f"MDC {m.mdc} qy_check", item.when
    for r in scheme.rules.values():
        yield f"rule {r.rule_id}", r.when
