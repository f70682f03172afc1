"""Input handling: validation reasons, unknown codes, code maps, accepted column forms, output shape."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from casemix.grouping import INVALID_REASONS, OUTPUT_COLUMNS, STATUS_INVALID, group_frame, group_record

CHS = "chs-drg-1.1"
YN = "yunnan-2023"


def invalid(r, reason):
    assert (r["status"], r["invalid_reason"]) == (STATUS_INVALID, reason), r
    assert (r["mdc"], r["adrg"], r["drg"], r["cc_code"]) == (None, None, None, None)
    assert (r["has_mcc"], r["has_cc"]) == (False, False)


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize("kw,reason,trace", [
    (dict(principal_dx=None), "MISSING_PRINCIPAL_DX", "INVALID=MISSING_PRINCIPAL_DX"),
    (dict(principal_dx="   "), "MISSING_PRINCIPAL_DX", "INVALID=MISSING_PRINCIPAL_DX"),
    (dict(principal_dx="I21.001", sex="3"), "BAD_SEX", "INVALID=BAD_SEX"),
    (dict(principal_dx="I21.001", sex=None), "BAD_SEX", "INVALID=BAD_SEX"),
    (dict(principal_dx="I21.001", sex=0), "BAD_SEX", "INVALID=BAD_SEX"),
    (dict(principal_dx="I21.001", age_years=None), "MISSING_AGE", "INVALID=MISSING_AGE"),
    # CHS proxy: age_days required when age_years == 0
    (dict(principal_dx="P23.900", age_years=0), "MISSING_AGE_DAYS", "INVALID=MISSING_AGE_DAYS"),
    # CHS proxy: newborn (age 0, <= 28 days) needs a birth weight; 0 counts as missing
    (dict(principal_dx="P23.900", age_years=0, age_days=3), "MISSING_BIRTH_WEIGHT", "INVALID=MISSING_BIRTH_WEIGHT"),
    (dict(principal_dx="P23.900", age_years=0, age_days=28, birth_weight_g=0), "MISSING_BIRTH_WEIGHT",
     "INVALID=MISSING_BIRTH_WEIGHT"),
    (dict(principal_dx="X99.999"), "UNKNOWN_DX_CODE", "INVALID=UNKNOWN_DX_CODE(X99.999)"),
    (dict(principal_dx="I21.001", secondary_dxs=["I50.900", "X99.999", "Y99.999"]), "UNKNOWN_DX_CODE",
     "INVALID=UNKNOWN_DX_CODE(X99.999)"),
    (dict(principal_dx="I21.001", procedures=["35.0101", "99.9999x999"]), "UNKNOWN_PROC_CODE",
     "INVALID=UNKNOWN_PROC_CODE(99.9999x999)"),
    # a diagnosis code is not a procedure code
    (dict(principal_dx="I21.001", procedures=["I50.900"]), "UNKNOWN_PROC_CODE", "INVALID=UNKNOWN_PROC_CODE(I50.900)"),
    # matching is exact: case is not folded (ingest normalises)
    (dict(principal_dx="i21.001"), "UNKNOWN_DX_CODE", "INVALID=UNKNOWN_DX_CODE(i21.001)"),
])
def test_invalid_reasons_chs(group, kw, reason, trace):
    r = group(CHS, **kw)
    invalid(r, reason)
    assert r["trace"] == trace


def test_invalid_reason_priority(group):
    # several problems: the first in INVALID_REASONS order is reported
    r = group(CHS, principal_dx="X99.999", sex="9", age_years=None, procedures=["nope"])
    invalid(r, "BAD_SEX")
    r = group(CHS, principal_dx="X99.999", age_years=0, procedures=["nope"])
    invalid(r, "MISSING_AGE_DAYS")
    r = group(CHS, principal_dx="I21.001", secondary_dxs=["X99.999"], procedures=["nope"])
    invalid(r, "UNKNOWN_DX_CODE")
    assert INVALID_REASONS[0] == "MISSING_PRINCIPAL_DX"


def test_newborn_checks_only_in_chs(group):
    # yunnan fills empty age_days/weight with 0: no MISSING_AGE_DAYS / MISSING_BIRTH_WEIGHT
    r = group(YN, principal_dx="P23.900", age_years=0, age_days=3)
    assert r["status"] == "grouped" and r["mdc"] == "MDCP"
    # older than 28 days: CHS does not need a weight
    r = group(CHS, principal_dx="P23.900", age_years=0, age_days=29)
    assert (r["mdc"], r["adrg"], r["drg"]) == ("MDCP", "PV1", "PV15")


def test_unknown_codes_ignore_mode(group):
    # 'ignore': an unknown code matches no list (as in the original grouper). FB2 on 35.0101 -> FB25
    r = group(CHS, principal_dx="I21.001", secondary_dxs=["X99.999"], procedures=["35.0101", "99.9999x999"],
              unknown_codes="ignore")
    assert (r["mdc"], r["adrg"], r["drg"], r["status"]) == ("MDCF", "FB2", "FB25", "grouped")
    # an unknown principal diagnosis enters no MDC -> 0000 (unless a surgical principal procedure enters MDCA)
    r = group(CHS, principal_dx="X99.999", unknown_codes="ignore")
    assert (r["drg"], r["status"]) == ("0000", "ungroupable")
    # validation of fields still applies
    invalid(group(CHS, principal_dx="X99.999", sex="x", unknown_codes="ignore"), "BAD_SEX")


# ----------------------------------------------------------------------------- code maps


def test_code_maps(group):
    # A01.000x002 is neither in diagnoses.csv nor referenced -> unknown without maps;
    # diagnosis_map: A01.000x002 -> A01.003 (MDCS list, SR1.zd: SR11 mcc, SR13 mcc_or_cc, SR15) -> SR15
    invalid(group(CHS, principal_dx="A01.000x002"), "UNKNOWN_DX_CODE")
    r = group(CHS, principal_dx="A01.000x002", apply_code_maps=True)
    assert (r["mdc"], r["adrg"], r["drg"]) == ("MDCS", "SR1", "SR15")
    # maps apply once, not transitively: A19.800x010 -> A19.000x001 (which itself maps to A19.001).
    # A19.000x001 is a CC (table 2); with principal I44.200 (table 95) it counts -> FU13 and cc_code shows it
    r = group(CHS, principal_dx="I44.200", secondary_dxs=["A19.800x010"], apply_code_maps=True)
    assert (r["adrg"], r["drg"], r["cc_code"]) == ("FU1", "FU13", "A19.000x001")
    # procedure map: 00.6600x008 -> 00.6601 (FB1.ss1): FB1 = any_proc_in(ss)&any_proc_in(ss1) -> FB19
    r = group(CHS, principal_dx="I21.001", procedures=["35.0101", "00.6600x008"], apply_code_maps=True)
    assert (r["mdc"], r["adrg"], r["drg"]) == ("MDCF", "FB1", "FB19")
    r = group(CHS, principal_dx="I21.001", procedures=["35.0101", "00.6600x008"])
    invalid(r, "UNKNOWN_PROC_CODE")
    # a code that is not a map key is kept as it is
    r = group(CHS, principal_dx="I21.001", apply_code_maps=True)
    assert (r["adrg"], r["drg"]) == ("FR1", "FR19")


# ----------------------------------------------------------------------------- column forms


def _records():
    return [
        dict(sex="1", age_years=60, principal_dx="I21.001", secondary_dxs=["I50.900"], procedures=["35.0101"]),
        dict(sex="2", age_years=45, principal_dx="I44.200", secondary_dxs=["E87.100", "J96.000"], procedures=[]),
        dict(sex="1", age_years=70, principal_dx="C61.x00", secondary_dxs=[], procedures=["40.2400", "89.5200"]),
        dict(sex="2", age_years=0, age_days=3, birth_weight_g=1800, principal_dx="P23.900",
             secondary_dxs=["P07.200"], procedures=[]),
        dict(sex="1", age_years=30, principal_dx="X99.999", secondary_dxs=[], procedures=[]),
    ]


def _expected():
    return [("MDCF", "FB2", "FB21"), ("MDCF", "FU1", "FU11"), ("MDCM", "MA1", "MA19"), ("MDCP", "PS2", "PS25"),
            (None, None, None)]


def _frame(form: str) -> pd.DataFrame:
    df = pd.DataFrame(_records())
    for col in ("secondary_dxs", "procedures"):
        vals = [r[col] for r in _records()]
        if form == "lists":
            df[col] = pd.Series(vals, dtype=object)
        elif form == "numpy":
            df[col] = pd.Series([np.array(v, dtype=object) for v in vals], dtype=object)
        elif form == "pipes":
            df[col] = ["|".join(v) for v in vals]
        elif form == "pipes_padded":
            df[col] = [" | ".join(v) + ("||" if v else "") for v in vals]
        elif form == "arrow":
            df[col] = pd.Series(pd.array(vals, dtype=pd.ArrowDtype(pa.list_(pa.string()))))
        elif form == "string_dtype":
            df[col] = pd.Series(["|".join(v) for v in vals], dtype="string")
        elif form == "mixed":
            df[col] = pd.Series([v if i % 2 else "|".join(v) for i, v in enumerate(vals)], dtype=object)
    return df


@pytest.mark.parametrize("form", ["lists", "numpy", "pipes", "pipes_padded", "arrow", "string_dtype", "mixed"])
def test_list_column_forms(compiled, form):
    out = group_frame(compiled(CHS), _frame(form))
    assert list(zip(out.mdc, out.adrg, out.drg)) == _expected()
    assert out.invalid_reason.tolist() == [None, None, None, None, "UNKNOWN_DX_CODE"]


def test_null_list_cells_and_whitespace(compiled):
    df = pd.DataFrame([
        dict(sex=" 1 ", age_years=60.0, principal_dx=" I21.001 ", secondary_dxs=None, procedures=[" 35.0101", None, ""]),
        dict(sex="F", age_years="45", principal_dx="I44.200", secondary_dxs=np.nan, procedures=None),
    ])
    out = group_frame(compiled(CHS), df)
    assert list(zip(out.adrg, out.drg)) == [("FB2", "FB25"), ("FU1", "FU15")]


@pytest.mark.parametrize("sex,mdc", [("1", "MDCM"), ("M", "MDCM"), ("m", "MDCM"), (1, "MDCM"), (1.0, "MDCM"),
                                     ("男", "MDCM"), ("2", None), ("F", None), ("女", None), (2, None)])
def test_sex_spellings(group, sex, mdc):
    # C61.x00 enters MDCM only for males; females -> 0000 (mdc "0000")
    r = group(CHS, principal_dx="C61.x00", sex=sex)
    assert r["mdc"] == (mdc or "0000")


def test_numeric_sex_column_and_nullable_ints(compiled):
    df = pd.DataFrame({"sex": pd.array([1, 2, None], dtype="Int64"), "age_years": pd.array([70, 70, 70], dtype="Int64"),
                       "principal_dx": ["C61.x00", "C61.x00", "C61.x00"]})
    out = group_frame(compiled(CHS), df)
    assert out.mdc.tolist() == ["MDCM", "0000", None]
    assert out.invalid_reason.tolist() == [None, None, "BAD_SEX"]


def test_dictionary_encoded_sex_with_narrow_indices(compiled):
    """Sex as a dictionary array (as the file-wise job reads it, or a pandas categorical): the rule on
    each distinct value, then per row; int8 indices and 128 distinct spellings (no int8 left for the null)."""
    from casemix.grouping import group_arrow

    spellings = ["1", "M", "2", "F", "3"] + [f"x{i}" for i in range(123)]
    rows = [0, 1, 2, 3, 4, None, 127]
    sex = pa.DictionaryArray.from_arrays(pa.array(rows, pa.int8()), pa.array(spellings))
    batch = pa.RecordBatch.from_pydict({"sex": sex, "age_years": [70] * 7, "principal_dx": ["C61.x00"] * 7})
    out = group_arrow(compiled(CHS), batch)
    assert out.column("mdc").to_pylist() == ["MDCM", "MDCM", "0000", "0000", None, None, None]
    assert out.column("invalid_reason").to_pylist() == [None] * 4 + ["BAD_SEX"] * 3


def test_index_and_order_preserved(compiled):
    df = _frame("lists")
    df.index = ["e", "a", "d", "b", "c"]
    out = group_frame(compiled(CHS), df)
    assert out.index.tolist() == ["e", "a", "d", "b", "c"]
    assert list(zip(out.mdc, out.adrg, out.drg)) == _expected()
    # a shuffled frame gives the shuffled results
    perm = [3, 0, 4, 2, 1]
    out2 = group_frame(compiled(CHS), df.iloc[perm])
    pd.testing.assert_frame_equal(out2, out.iloc[perm])


def test_duplicate_index_labels(compiled):
    df = _frame("lists")
    df.index = [7, 7, 3, 3, 3]
    out = group_frame(compiled(CHS), df)
    assert out.index.tolist() == [7, 7, 3, 3, 3]
    assert list(zip(out.mdc, out.adrg, out.drg)) == _expected()


def test_arrow_backed_frame(compiled):
    # what pyarrow's Table.to_pandas(types_mapper=pd.ArrowDtype) produces (the fast path)
    df = _frame("lists")
    table = pa.Table.from_pandas(df, preserve_index=False)
    adf = table.to_pandas(types_mapper=pd.ArrowDtype)
    assert isinstance(adf["procedures"].dtype, pd.ArrowDtype)
    out = group_frame(compiled(CHS), adf)
    assert list(zip(out.mdc, out.adrg, out.drg)) == _expected()
    # and the default conversion (numpy arrays per row)
    out = group_frame(compiled(CHS), table.to_pandas())
    assert list(zip(out.mdc, out.adrg, out.drg)) == _expected()


def test_output_columns_types_and_empty_frame(compiled):
    out = group_frame(compiled(CHS), _frame("lists"))
    assert list(out.columns) == list(OUTPUT_COLUMNS)
    assert out.has_mcc.dtype == bool and out.has_cc.dtype == bool
    empty = group_frame(compiled(CHS), _frame("lists").iloc[:0])
    assert list(empty.columns) == list(OUTPUT_COLUMNS) and len(empty) == 0


def test_optional_columns_and_required_ones(compiled):
    out = group_frame(compiled(CHS), pd.DataFrame({"sex": ["1"], "age_years": [50], "principal_dx": ["I21.001"]}))
    assert (out.adrg[0], out.drg[0]) == ("FR1", "FR19")
    with pytest.raises(KeyError, match="principal_dx"):
        group_frame(compiled(CHS), pd.DataFrame({"sex": ["1"], "age_years": [50]}))


def test_trace_off(compiled):
    out = group_frame(compiled(CHS), _frame("lists"), trace=False)
    assert out.trace.isna().all()
    assert list(zip(out.mdc, out.adrg, out.drg)) == _expected()


def test_group_record_accepts_pipe_strings(schemes):
    r = group_record(schemes(CHS), dict(sex="1", age_years=60, principal_dx="I21.001", secondary_dxs="I50.900",
                                        procedures="35.0101|"))
    assert (r["adrg"], r["drg"], r["cc_code"]) == ("FB2", "FB21", "I50.900")


def test_bad_unknown_codes_argument(compiled):
    with pytest.raises(ValueError):
        group_frame(compiled(CHS), _frame("lists"), unknown_codes="drop")


@pytest.mark.parametrize("maps", [False, True])
def test_arrow_backed_and_object_columns_give_identical_results_on_messy_codes(compiled, maps):
    """Arrow-backed columns look principal and secondary diagnoses up in one call; object columns
    look the principal diagnosis up through a dictionary: both must agree on blanks, padding, unknown
    codes (and which code the trace names) and mapped codes, row by row."""
    df = pd.DataFrame({
        "sex": ["1", "2", "1", "1", "2", "1", "2", "1"],
        "age_years": [60, 40, 30, 70, 50, 20, 65, 45],
        "principal_dx": ["I21.001", " I21.001 ", "", None, "X99.999", "K35.200", "I21.001", "K35.200"],
        "secondary_dxs": [["I50.900"], [" I50.900", ""], ["I50.900"], [], ["", "  "], ["Q99.999", "I50.900"],
                          None, ["J96.000", "X00.000"]],
        "procedures": [["35.0101"], [], ["47.0100"], ["47.0100"], [], ["47.0100"], ["99.9999", "35.0101"], []],
    })
    arrow = pa.Table.from_pandas(df, preserve_index=False).to_pandas(types_mapper=pd.ArrowDtype)
    a = group_frame(compiled(CHS), arrow, apply_code_maps=maps)
    o = group_frame(compiled(CHS), df, apply_code_maps=maps)
    pd.testing.assert_frame_equal(a.astype(object).where(a.notna(), None), o.astype(object).where(o.notna(), None))
    assert a.invalid_reason.tolist() == [None, None, "MISSING_PRINCIPAL_DX", "MISSING_PRINCIPAL_DX", "UNKNOWN_DX_CODE",
                                         "UNKNOWN_DX_CODE", "UNKNOWN_PROC_CODE", "UNKNOWN_DX_CODE"]
    assert a.trace.tolist()[4:] == ["INVALID=UNKNOWN_DX_CODE(X99.999)", "INVALID=UNKNOWN_DX_CODE(Q99.999)",
                                    "INVALID=UNKNOWN_PROC_CODE(99.9999)", "INVALID=UNKNOWN_DX_CODE(X00.000)"]
    assert a.drg.tolist()[:2] == ["FB21", "FR19"]  # padded codes are trimmed, blank items dropped
