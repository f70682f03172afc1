"""Randomised cross-check: vectorised core == per-record reference on every output field (trace included).

~20k seeded records per scheme, built from the scheme's own rule lists (most group) plus
noise (see ``_grouping_records.py``); a second, smaller batch uses '|'-string columns,
code maps and the 'ignore' mode for unknown codes.
"""
from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from _grouping_records import RecordGenerator

from casemix.grouping import OUTPUT_COLUMNS, group_arrow, group_frame, group_record

N_MAIN = 20_000
N_VARIANT = 4_000


def _compare(scheme, compiled, df, **kw):
    out = group_frame(compiled, df, **kw)
    recs = df.to_dict("records")
    ref = pd.DataFrame([group_record(scheme, r, **kw) for r in recs], index=df.index, columns=list(OUTPUT_COLUMNS))
    assert out.index.equals(ref.index)
    for col in OUTPUT_COLUMNS:
        a, b = out[col].tolist(), ref[col].tolist()
        bad = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
        if bad:
            i = bad[0]
            pytest.fail(f"{scheme.scheme_id}: column {col!r} differs on {len(bad)} of {len(df)} records; first: "
                        f"record={recs[i]}\ncore={out.iloc[i].to_dict()}\nref ={ref.iloc[i].to_dict()}")
    return out


@pytest.mark.parametrize("sid", ["chs-drg-1.1", "yunnan-2023", "zhejiang-2022"])
def test_core_equals_reference(schemes, compiled, sid):
    scheme = schemes(sid)
    gen = RecordGenerator(scheme, seed=20240601)
    df = gen.frame(N_MAIN)
    out = _compare(scheme, compiled(sid), df)
    # sanity: the sample exercises the logic broadly
    status = out.status.value_counts().to_dict()
    assert status.get("grouped", 0) > 0.6 * N_MAIN, status
    assert status.get("ungroupable", 0) > 0 and status.get("invalid", 0) > 0, status
    if sid == "yunnan-2023":
        assert status.get("QY", 0) > 0, status
    assert out.adrg.nunique() > 300
    assert out.trace.str.contains("fallthrough").any()
    if sid == "zhejiang-2022":
        assert out.trace.str.contains("RETRY=").any()


@pytest.mark.parametrize("sid", ["chs-drg-1.1", "yunnan-2023", "zhejiang-2022"])
def test_core_equals_reference_variants(schemes, compiled, sid):
    scheme = schemes(sid)
    gen = RecordGenerator(scheme, seed=7)
    df = gen.frame(N_VARIANT)
    for c in ("secondary_dxs", "procedures"):  # '|'-separated strings this time
        df[c] = ["|".join(v) for v in df[c]]
    _compare(scheme, compiled(sid), df, apply_code_maps=True)
    _compare(scheme, compiled(sid), df, unknown_codes="ignore")


def _dictionary_coded(table: pa.Table) -> pa.Table:
    """``table`` with its code columns, sex and department dictionary-encoded, as the file-wise grouping
    job reads them."""
    def lists(col: pa.ChunkedArray) -> pa.Array:
        arr = col.combine_chunks()
        return pa.ListArray.from_arrays(arr.offsets, pc.dictionary_encode(arr.values), mask=arr.is_null())

    for name in ("principal_dx", "sex", "dept"):
        table = table.set_column(table.schema.get_field_index(name), name, pc.dictionary_encode(table.column(name)))
    return (table
            .set_column(table.schema.get_field_index("secondary_dxs"), "secondary_dxs", lists(table["secondary_dxs"]))
            .set_column(table.schema.get_field_index("procedures"), "procedures", lists(table["procedures"])))


@pytest.mark.parametrize("sid", ["chs-drg-1.1", "yunnan-2023", "zhejiang-2022"])
def test_arrow_core_equals_pandas_core(schemes, compiled, sid):
    """``group_arrow`` (what both job paths call; traces built as Arrow strings) gives ``group_frame``'s
    results, row for row and column for column, on plain and on dictionary-encoded code columns and on
    the pandas frame itself (the same records as above: fallthroughs, QY, invalid records, zhejiang's
    retries), with and without code maps."""
    df = RecordGenerator(schemes(sid), seed=20240601).frame(N_MAIN)
    # (Arrow columns have one type: the records' numeric sexes 1/2 become "1"/"2", which mean the same)
    table = pa.Table.from_pandas(df.assign(sex=df.sex.map(lambda v: v if v is None else str(v))), preserve_index=False)
    coded = _dictionary_coded(table)
    assert pa.types.is_dictionary(coded.schema.field("secondary_dxs").type.value_type)
    assert pa.types.is_dictionary(coded.schema.field("dept").type) and coded.column("dept").null_count
    assert len(set(coded.column("sex").to_pylist())) > 3  # 1/2, M/F, unknown values and nulls
    for kw in ({}, {"apply_code_maps": True}, {"unknown_codes": "ignore"}):
        want = group_frame(compiled(sid), df, **kw)
        for data in (table, coded, coded.to_batches()[0], df):
            got = group_arrow(compiled(sid), data, **kw)
            assert got.schema.names == list(OUTPUT_COLUMNS) and got.num_rows == len(df)
            for col in OUTPUT_COLUMNS:
                a, b = got.column(col).to_pylist(), want[col].tolist()
                bad = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
                assert not bad, f"{sid} {kw} {type(data).__name__}: {col} differs on {len(bad)} rows, first " \
                                f"{a[bad[0]]!r} != {b[bad[0]]!r}"
    off = group_arrow(compiled(sid), table.slice(0, 10), trace=False)
    assert off.column("trace").null_count == 10 and off.column("drg").to_pylist() == want.drg.tolist()[:10]
    assert group_arrow(compiled(sid), table.slice(0, 0)).num_rows == 0
