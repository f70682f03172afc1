"""Planted defects: listed in _defects, each really in the drops, each triggering exactly its reason code."""
from __future__ import annotations

from collections import Counter, defaultdict

import pandas as pd

from casemix.ingest.raw import DEFECT_KINDS, DUPLICATE_CLAIM_ID, RAW_COLUMNS, SUPERSEDED

from ._reference_checks import parse_date, parse_money, reasons


def _reasons_per_record(drop_records, codebook):
    out = []
    seen: dict[tuple, set] = defaultdict(set)
    for rec in drop_records.to_dict("records"):
        drop = (rec["drop_region"], rec["drop_month"])
        out.append(reasons(rec, codebook, rec["drop_region"], seen[drop]))
    return out


def test_the_side_file_lists_every_defect_kind_with_about_its_share(generated, plan):
    d = generated.defects
    assert list(d.columns) == ["claim_id", "claim_version", "drop_id", "defect_kind", "expected_reason", "defect_field"]
    counts = Counter(d["defect_kind"])
    assert set(counts) == set(DEFECT_KINDS)
    n_bad = len(d)
    assert abs(n_bad / plan.spec.n_cases - plan.spec.bad_record_share) < 0.015
    for kind, n in counts.items():
        assert 0.3 < n / (n_bad / len(DEFECT_KINDS)) < 2.0, (kind, n)
    assert (d["expected_reason"] == d["defect_kind"].map(DEFECT_KINDS)).all()
    assert d["drop_id"].str.match(r"^\d{6}/\d{4}-\d{2}$").all()
    assert not d.duplicated(["claim_id", "claim_version"]).any()
    assert generated.summary["defects"] == dict(sorted(counts.items()))


def test_clean_records_trigger_no_reason_code_and_each_defect_exactly_its_own(drop_records, generated, codebook):
    found = _reasons_per_record(drop_records, codebook)
    by_key = defaultdict(list)
    for rec, rs in zip(drop_records.to_dict("records"), found):
        by_key[(rec["结算清单号"], rec["版本号"] or "?")].append((rec, rs))
    expected = {(r.claim_id, str(r.claim_version)): r for r in generated.defects.itertuples()}
    clean = 0
    for key, recs in by_key.items():
        d = expected.get(key)
        if d is None:
            for rec, rs in recs:
                assert rs == [], (key, rs, rec)
                clean += 1
        elif d.defect_kind == "duplicate_claim_id":
            assert [rs for _rec, rs in recs] == [[], [DUPLICATE_CLAIM_ID]]
        elif d.defect_kind == "resubmission":
            assert [rs for _rec, rs in recs] == [[]]  # version 1 is valid; version 2 supersedes it
        else:
            assert [rs for _rec, rs in recs] == [[d.expected_reason]], (d, recs)
    malformed = expected.keys() - by_key.keys()
    assert clean > 5000
    # a line cut short may have lost its version field: it is still found by claim id
    cut_ids = {rec["结算清单号"] for rec in drop_records.to_dict("records") if rec["malformed"]}
    assert {k[0] for k in malformed} <= cut_ids


def test_each_defect_record_has_the_planted_problem_in_its_raw_fields(drop_records, generated, codebook):
    recs = {(r["结算清单号"], r["版本号"], f"{r['drop_region']}/{r['drop_month']}"): r
            for r in drop_records.to_dict("records")}
    cut = {(r["结算清单号"], f"{r['drop_region']}/{r['drop_month']}"): r
           for r in drop_records.to_dict("records") if r["malformed"]}
    for d in generated.defects.itertuples():
        kind = d.defect_kind
        if kind == "malformed_csv_row":
            rec = cut[(d.claim_id, d.drop_id)]
            assert rec["source_format"] == "csv"
            continue
        rec = recs[(d.claim_id, str(d.claim_version), d.drop_id)]
        pdx = rec["主要诊断"]
        if kind == "missing_principal_dx":
            assert pdx is None
        elif kind == "unknown_dx_code":
            from casemix.codes import normalise_code
            assert codebook.map_diagnosis(normalise_code(pdx)) is None
        elif kind == "discharge_before_admission":
            assert parse_date(rec["出院日期"]) < parse_date(rec["入院日期"])
        elif kind == "negative_cost":
            assert parse_money(rec["个人自付"]) < 0
        elif kind == "non_numeric_cost":
            raw_name = {v: k for k, v in RAW_COLUMNS.items()}[d.defect_field]
            assert parse_money(rec[raw_name]) is None
        elif kind == "fund_exceeds_total":
            assert parse_money(rec["基金支付"]) > parse_money(rec["总费用"])
        elif kind == "sex_dx_mismatch":
            male = rec["性别"] in ("1", "男")
            assert pdx in (codebook.female_only if male else codebook.male_only)
        elif kind == "newborn_dx_adult":
            assert pdx in codebook.newborn_only and int(rec["年龄"]) >= 18
        elif kind == "wrong_type":
            raw_name = {v: k for k, v in RAW_COLUMNS.items()}[d.defect_field]
            value = rec[raw_name]
            assert (parse_date(value) is None) if d.defect_field == "birth_date" else not value.isdigit()
        elif kind == "duplicate_claim_id":
            same = drop_records[(drop_records["结算清单号"] == d.claim_id)]
            assert len(same) == 2 and same.drop(columns=["source_file"]).duplicated().iloc[1]
        elif kind == "resubmission":
            assert d.expected_reason == SUPERSEDED


def test_a_resubmission_sends_a_corrected_version_2_in_the_next_months_drop(drop_records, generated):
    resub = generated.defects[generated.defects["defect_kind"] == "resubmission"]
    assert len(resub) > 5
    for d in resub.itertuples():
        versions = drop_records[drop_records["结算清单号"] == d.claim_id]
        assert sorted(versions["版本号"]) == ["1", "2"]
        v1 = versions[versions["版本号"] == "1"].iloc[0]
        v2 = versions[versions["版本号"] == "2"].iloc[0]
        assert f"{v1['drop_region']}/{v1['drop_month']}" == d.drop_id
        month = pd.Period(v1["drop_month"], "M")
        assert v2["drop_region"] == v1["drop_region"] and pd.Period(v2["drop_month"], "M") == month + 1
        assert parse_money(v2["总费用"]) < parse_money(v1["总费用"])
        assert parse_date(v2["出院日期"]) == parse_date(v1["出院日期"])


def test_malformed_lines_are_corrupt_records_to_sparks_csv_reader_and_only_they(spark, generated):
    from pyspark.sql.types import StringType, StructField, StructType

    schema = StructType([StructField(n, StringType()) for n in RAW_COLUMNS] + [StructField("_corrupt_record", StringType())])
    df = (spark.read.schema(schema).option("header", True).option("escape", '"').option("mode", "PERMISSIVE")
          .option("columnNameOfCorruptRecord", "_corrupt_record")
          .csv(str(generated.root / "inpatient" / "region=*" / "month=*" / "*.csv")).cache())
    corrupt = {r[0] for r in df.filter(df["_corrupt_record"].isNotNull()).select("结算清单号").collect()}
    planted = set(generated.defects.loc[generated.defects["defect_kind"] == "malformed_csv_row", "claim_id"])
    df.unpersist()
    assert planted and corrupt == planted


def test_source_format_quirks_are_present_but_are_not_defects(clean_records):
    pdx = clean_records["主要诊断"]
    assert pdx.str.contains(r"[a-wyz]", regex=True).any()          # lower case
    assert pdx.str.contains("[０-９．]", regex=True).any()          # full-width
    assert pdx.str.contains(r"\s", regex=True).any()                # spaces inside or around
    dates = clean_records["出院日期"]
    assert dates.str.match(r"^\d{4}-\d{2}-\d{2}$").any() and dates.str.match(r"^\d{8}$").any()
    assert dates.str.match(r"^\d{4}/\d{2}/\d{2}$").any()
    assert set(clean_records["性别"]) == {"1", "2", "男", "女"}
    assert clean_records["身份证号"].str.match(r"^\d{17}[\dX]$").all()
