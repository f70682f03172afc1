"""Scheme loading: the real schemes, malformed copies (SchemeError), and driver semantics on modified copies."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from casemix.grouping import RULE_TERMS, SchemeError, group_frame, group_record, load_scheme, scheme_content_hash
from casemix.grouping.compile import compile_scheme
from casemix.grouping.scheme import Cond

EXPECTED = {  # rules, DRGs with a split predicate, no-group DRG, retry, validation profile
    "chs-drg-1.1": (376, 628, "0000", False, "newborn_strict"),
    "yunnan-2023": (381, 740, "0000A", False, "zero_fill"),
    "zhejiang-2022": (376, 1006, "0000", True, "zero_fill"),
}


@pytest.mark.parametrize("sid", sorted(EXPECTED))
def test_real_schemes_load(schemes, schemes_dir, sid):
    s = schemes(sid)
    n_rules, n_drgs, nogroup, retry, profile = EXPECTED[sid]
    assert s.scheme_id == sid
    assert len(s.mdcs) == 26 and s.mdc_order[:4] == ("MDCA", "MDCP", "MDCY", "MDCZ")
    assert len(s.rules) == n_rules and len(s.drg_splits) == n_drgs
    assert s.driver.no_group_drg == nogroup and s.driver.retry_with_single_secondary_procedure is retry
    assert s.validation_profile == profile
    assert "Apache License" in s.licence_text and "OpenDRG" in s.licence_text
    assert s.source["commit"] == "5d523a26b110082fee8d6e324e2e527ad0b87ee5"
    assert s.content_hash == scheme_content_hash(schemes_dir / sid) and len(s.content_hash) == 64
    assert len(s.diagnoses) == 33304 and len(s.procedures) == 13686


def test_known_codes_include_referenced_ones(schemes):
    s = schemes("chs-drg-1.1")
    known = set(s.known_diagnosis_codes())
    # the README's 4 referenced codes missing from diagnoses.csv
    extra = known - set(s.diagnoses)
    assert extra == {"K43.900", "K43.900x001", "K43.902", "P78.300x004"}
    assert set(s.known_procedure_codes()) == set(s.procedures)


def test_cond_render():
    inner = Cond("all", (Cond("any_proc_in", list_name="ss_cat_2"), Cond("not", (Cond("age_days_lte", value=28),))))
    c = Cond("all", (Cond("principal_dx_in", list_name="zd"),
                     Cond("any", (Cond("any_proc_in", list_name="ss_cat_1"), inner))))
    assert c.render() == "principal_dx_in(zd)&(any_proc_in(ss_cat_1)|(any_proc_in(ss_cat_2)&!age_days_lte(28)))"


# ----------------------------------------------------------------------------- malformed copies


@pytest.fixture
def scheme_copy(schemes_dir, tmp_path):
    """Fresh copy of a scheme folder (with ../NOTICE) under tmp_path."""

    def make(sid: str) -> Path:
        root = tmp_path / "schemes"
        root.mkdir(exist_ok=True)
        shutil.copy(schemes_dir / "NOTICE", root / "NOTICE")
        dst = root / sid
        shutil.copytree(schemes_dir / sid, dst)
        return dst

    return make


def edit_json(path: Path, fn):
    data = json.loads(path.read_text(encoding="utf-8"))
    fn(data)
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def rule(doc, rid):
    return next(r for r in doc["rules"] if r["rule_id"] == rid)


def mdc(doc, name):
    return next(m for m in doc["mdcs"] if m["mdc"] == name)


def assert_scheme_error(folder, *fragments):
    with pytest.raises(SchemeError) as ei:
        load_scheme(folder)
    msg = str(ei.value)
    for f in fragments:
        assert f in msg, f"{f!r} not in message: {msg}"
    assert isinstance(ei.value, ValueError)
    return msg


def test_unknown_rule_term(scheme_copy):
    d = scheme_copy("chs-drg-1.1")
    edit_json(d / "adrg.json", lambda doc: rule(doc, "FB2").__setitem__("when", {"principal_proc_inn": "ss"}))
    msg = assert_scheme_error(d, "adrg.json", "rule FB2", "'principal_proc_inn'", "allowed terms")
    assert all(t in msg for t in RULE_TERMS)


def test_unknown_rule_term_nested_in_mdc_entry(scheme_copy):
    d = scheme_copy("chs-drg-1.1")
    edit_json(d / "mdc.json", lambda doc: mdc(doc, "MDCZ").__setitem__(
        "entry", {"all": [{"principal_dx_in": "zd"}, {"trauma_sites_max": 2}]}))
    assert_scheme_error(d, "mdc.json", "MDC MDCZ entry", "'trauma_sites_max'", "allowed terms")


def test_unknown_split_predicate(scheme_copy):
    d = scheme_copy("chs-drg-1.1")

    def bad(doc):
        next(x for x in doc["drgs"] if x["drg"] == "FB21")["when"] = "mcc_only"

    edit_json(d / "drg_splits.json", bad)
    assert_scheme_error(d, "drg_splits.json", "DRG FB21", "'mcc_only'", "allowed", "mcc_or_cc", "procs_include_all")


def test_unknown_split_predicate_object(scheme_copy):
    d = scheme_copy("zhejiang-2022")

    def bad(doc):
        next(x for x in doc["drgs"] if x["drg"] == "BV10")["when"] = {"los_days_gt": 30}

    edit_json(d / "drg_splits.json", bad)
    assert_scheme_error(d, "drg_splits.json", "DRG BV10", "'los_days_gt'", "age_years_lt")


def test_unknown_list_reference(scheme_copy):
    d = scheme_copy("chs-drg-1.1")
    edit_json(d / "adrg.json", lambda doc: rule(doc, "FB2").__setitem__("when", {"principal_proc_in": "ss9"}))
    assert_scheme_error(d, "adrg.json", "rule FB2", "'principal_proc_in'", "unknown list 'ss9'", "ss", "@surgical")


def test_surgical_list_used_as_diagnosis_list(scheme_copy):
    d = scheme_copy("chs-drg-1.1")
    edit_json(d / "adrg.json", lambda doc: rule(doc, "FR1").__setitem__("when", {"principal_dx_in": "@surgical"}))
    assert_scheme_error(d, "adrg.json", "rule FR1", "'principal_dx_in'", "@surgical")


def test_trauma_term_outside_mdcz(scheme_copy):
    d = scheme_copy("chs-drg-1.1")
    edit_json(d / "adrg.json", lambda doc: rule(doc, "FR1").__setitem__("when", {"trauma_sites_min": 2}))
    assert_scheme_error(d, "adrg.json", "rule FR1", "trauma_sites_min", "trauma_sites")


def test_bad_term_argument(scheme_copy):
    d = scheme_copy("chs-drg-1.1")
    edit_json(d / "mdc.json", lambda doc: mdc(doc, "MDCM").__setitem__(
        "entry", {"all": [{"principal_dx_in": "zd"}, {"sex_eq": 1}]}))
    assert_scheme_error(d, "mdc.json", "MDC MDCM entry", "sex_eq")


@pytest.mark.parametrize("name", ["cc.csv", "adrg.json", "surgical_procedures.csv", "drg_splits.json"])
def test_missing_file(scheme_copy, name):
    d = scheme_copy("chs-drg-1.1")
    (d / name).unlink()
    assert_scheme_error(d, name, "missing")


def test_missing_notice(scheme_copy):
    d = scheme_copy("chs-drg-1.1")
    (d.parent / "NOTICE").unlink()
    assert_scheme_error(d, "NOTICE")


def test_bad_csv_header(scheme_copy):
    d = scheme_copy("chs-drg-1.1")
    p = d / "mcc.csv"
    p.write_text(p.read_text(encoding="utf-8").replace("code,exclusion_table", "code,table", 1), encoding="utf-8")
    assert_scheme_error(d, "mcc.csv", "code,exclusion_table")


def test_dangling_references(scheme_copy):
    d = scheme_copy("chs-drg-1.1")
    edit_json(d / "adrg.json", lambda doc: rule(doc, "FU1").__setitem__("drg_sequence", ["FU11", "FU99"]))
    assert_scheme_error(d, "adrg.json", "rule FU1", "FU99")
    d = scheme_copy("yunnan-2023")
    edit_json(d / "mdc.json", lambda doc: mdc(doc, "MDCF")["adrg_sequence"].insert(0, "FX9"))
    assert_scheme_error(d, "mdc.json", "MDC MDCF", "FX9")


# ----------------------------------------------------------------------------- semantics on modified copies


_COMPILED: dict = {}


def run_both(folder, **rec):
    """Group one record on a (modified) scheme folder with core and reference; both must agree."""
    base = {"sex": "1", "age_years": 50, "principal_dx": None, "secondary_dxs": [], "procedures": []}
    base.update(rec)
    key = scheme_content_hash(folder)
    if key not in _COMPILED:
        s = load_scheme(folder)
        _COMPILED[key] = (s, compile_scheme(s))
    s, c = _COMPILED[key]
    df = pd.DataFrame([base])
    for col in ("secondary_dxs", "procedures"):
        df[col] = pd.Series([base[col]], dtype=object)
    core = group_frame(c, df).iloc[0].to_dict()
    core = {k: (v.item() if hasattr(v, "item") else v) for k, v in core.items()}
    ref = group_record(s, base)
    assert core == ref
    return core


def test_dept_eq_when_reachable(scheme_copy):
    # zhejiang BR1's BR19 (dept_eq ICU) is unreachable in the real data; move it first
    d = scheme_copy("zhejiang-2022")
    edit_json(d / "adrg.json", lambda doc: rule(doc, "BR1").__setitem__("drg_sequence", ["BR19", "BR11", "BR13", "BR15"]))
    assert run_both(d, principal_dx="I60.000", dept="ICU")["drg"] == "BR19"
    assert run_both(d, principal_dx="I60.000", dept=" ICU ")["drg"] == "BR19"  # stripped
    assert run_both(d, principal_dx="I60.000", dept="icu")["drg"] == "BR15"  # literal, case-sensitive
    assert run_both(d, principal_dx="I60.000")["drg"] == "BR15"
    # the same with the department (and sex) dictionary-encoded, as the file-wise job reads them
    import pyarrow as pa

    from casemix.grouping import group_arrow

    depts = ["ICU", " ICU ", "icu", None, "ICU"]
    batch = pa.RecordBatch.from_pydict({
        "sex": pa.array(["1", "2", "1", None, "1"]).dictionary_encode(), "age_years": [50] * 5,
        "principal_dx": ["I60.000"] * 5, "secondary_dxs": pa.array([[]] * 5, pa.list_(pa.string())),
        "procedures": pa.array([[]] * 5, pa.list_(pa.string())), "dept": pa.array(depts).dictionary_encode()})
    compiled = _COMPILED[scheme_content_hash(d)][1]
    got = group_arrow(compiled, batch)
    assert got.column("drg").to_pylist() == ["BR19", "BR19", "BR15", None, "BR19"]  # (no sex: invalid)
    plain = pa.RecordBatch.from_arrays([c.dictionary_decode() if isinstance(c, pa.DictionaryArray) else c
                                        for c in batch.columns], names=batch.schema.names)
    assert got.equals(group_arrow(compiled, plain))


def test_if_no_drg_matches_continue_vs_return_adrg(scheme_copy):
    # keep only FU1's mcc split; I44.200 without an MCC then matches FU1 but no DRG
    def only_mcc(doc):
        doc["drgs"] = [x for x in doc["drgs"] if x["drg"] not in ("FU13", "FU15")]

    d = scheme_copy("chs-drg-1.1")
    edit_json(d / "drg_splits.json", only_mcc)
    edit_json(d / "adrg.json", lambda doc: rule(doc, "FU1").__setitem__("drg_sequence", ["FU11"]))
    # CHS rules say return_adrg: the bare ADRG code is the DRG
    r = run_both(d, principal_dx="I44.200")
    assert (r["mdc"], r["adrg"], r["drg"], r["status"]) == ("MDCF", "FU1", "FU1", "grouped")
    assert r["trace"].endswith("DRG=FU1:return_adrg")
    assert run_both(d, principal_dx="I44.200", secondary_dxs=["J96.000"])["drg"] == "FU11"
    # 'continue': the next items of MDCF are tried (none lists I44.200) -> MDCF falls through -> 0000
    edit_json(d / "adrg.json", lambda doc: rule(doc, "FU1").__setitem__("if_no_drg_matches", "continue"))
    r = run_both(d, principal_dx="I44.200")
    assert (r["drg"], r["status"], r["trace"]) == ("0000", "ungroupable", "MDCF:fallthrough;NOGROUP=0000")


def test_trauma_code_under_several_sites_belongs_to_the_last(scheme_copy):
    # real chs: S06.000 (head) + S71.800x011 (lower limb) = 2 sites -> MDCZ
    d = scheme_copy("chs-drg-1.1")
    assert run_both(d, principal_dx="S06.000", secondary_dxs=["S71.800x011"])["mdc"] == "MDCZ"

    def add_to_lower_limb(doc):
        sites = mdc(doc, "MDCZ")["trauma_sites"]["sites"]
        sites[7]["codes"].append("S06.000")  # now also listed under the LAST of its sites: lower limb

    edit_json(d / "mdc.json", add_to_lower_limb)
    # both codes are lower limb now -> 1 site -> MDCB BY1; S71.800x011 is a CC (203 != 196) -> BY13
    r = run_both(d, principal_dx="S06.000", secondary_dxs=["S71.800x011"])
    assert (r["mdc"], r["adrg"], r["drg"]) == ("MDCB", "BY1", "BY13")


def test_qy_check_position(scheme_copy):
    d = scheme_copy("chs-drg-1.1")

    def enable(doc):
        for item in mdc(doc, "MDCF")["adrg_sequence"]:
            if isinstance(item, dict):
                item["qy_check"]["enabled"] = True

    edit_json(d / "mdc.json", enable)
    # QY (any_proc_in @surgical) sits after the surgical ADRGs: FB2 still wins for 35.0101 ...
    assert run_both(d, principal_dx="I21.001", procedures=["35.0101"])["drg"] == "FB25"
    # ... while an unrelated surgical procedure now gives FQY instead of FR19
    r = run_both(d, principal_dx="I21.001", procedures=["47.0900"])
    assert (r["mdc"], r["adrg"], r["drg"], r["status"]) == ("MDCF", "QY", "FQY", "QY")
