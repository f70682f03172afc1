"""Ingestion on small hand-written drops: every rule's reason code, nothing lost, idempotent, latest version wins."""
from __future__ import annotations

import csv
import io
import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from casemix.codes import load_codebook
from casemix.ingest import ingest_drops, discover_drops
from casemix.ingest.pseudonym import DEMO_KEY, PseudonymKey, hmac_hex
from casemix.ingest.raw import FIELD_TO_RAW, RAW_COLUMNS, RAW_FIELDS
from casemix.ingest.validate import check_codes

KEY = PseudonymKey(b"test-key", "test")
HEADER = list(RAW_COLUMNS)


def record(claim_id, **overrides) -> dict:
    """A valid adult appendicitis case of region 530100, as a hospital would send it."""
    base = {
        "claim_id": claim_id, "claim_version": "1", "region": "530100", "hospital_id": "H530100001",
        "person_id": "P0001", "national_id": "53010019800101123X", "insurance_scheme": "职工", "sex": "1",
        "birth_date": "1980-01-01", "age_years": "43", "age_days": "", "birth_weight_g": "",
        "admission_date": "2023-01-02", "discharge_date": "2023-01-07", "los_days": "5", "discharge_status": "1",
        "dept": "普外科", "principal_dx": "K35.800", "secondary_dxs": "I10.x00|E11.900", "procedures": "47.0900",
        "total_cost": "12000.50", "fund_paid": "9000.00", "self_pay": "2500.50", "out_of_pocket": "500.00",
        "drug_cost": "3000.00", "consumable_cost": "2000.00", "exam_cost": "1000.00",
    }
    base.update(overrides)
    return base


def write_csv(folder: Path, records: list[dict], extra_lines: list[str] = ()) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(HEADER)
    for r in records:
        w.writerow([r[f] for f in RAW_FIELDS])
    for line in extra_lines:
        buf.write(line + "\n")
    path = folder / "part-0.csv"
    path.write_text(buf.getvalue(), encoding="utf-8")
    return path


def write_parquet(folder: Path, records: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    table = pa.table({FIELD_TO_RAW[f]: pa.array([r[f] for r in records], pa.string()) for f in RAW_FIELDS})
    path = folder / "part-0.parquet"
    pq.write_table(table, path)
    return path


@pytest.fixture(scope="module")
def book(schemes_dir):
    return load_codebook(schemes_dir / "chs-drg-1.1")


def ingest(spark, store, book, *paths, run="run-1"):
    return ingest_drops(spark, store, discover_drops([str(p) for p in paths]), book, KEY, run)


def rejected_reasons(store) -> dict[str, list[str]]:
    return {(r.claim_id or r.raw_record[:12]): sorted(r.reason_codes) for r in store.read("claims_rejected").collect()}


def test_code_rules_on_a_pandas_batch(book):
    out = check_codes(
        principal=pd.Series([" k35.８00 ", "N40.x00", "P07.100", "ZZZ.999", "A01.000x002", None]),
        secondary=pd.Series(["i10.X00 | e11.900", "", "O80.000", "I10.x00|BAD.1", None, "I10.x00"]),
        procedures=pd.Series(["47.0900", "", "37.8300x002", "99.9999x999", None, ""]),
        sex=pd.Series(["1", "2", "1", "1", "1", "1"]),
        age_years=pd.Series([43, 60, 30, 40, 40, 40]),
        book=book,
    )
    assert out["principal_dx"].tolist() == ["K35.800", "N40.x00", "P07.100", "ZZZ.999", "A01.003", None]
    assert out["secondary_dxs"].tolist() == [["I10.x00", "E11.900"], [], ["O80.000"], ["I10.x00", "BAD.1"], [], ["I10.x00"]]
    assert out["procedures"].tolist() == [["47.0900"], [], ["00.5000x004"], ["99.9999x999"], [], []]
    assert out["unknown_dx"].tolist() == [False, False, False, True, False, False]
    assert out["unknown_proc"].tolist() == [False, False, False, True, False, False]
    # N40.x00 (prostate) for a woman; O80.000 (delivery) for a man
    assert out["sex_mismatch"].tolist() == [False, True, True, False, False, False]
    # P07.100 (low birth weight, perinatal) at age 30
    assert out["newborn_adult"].tolist() == [False, False, True, False, False, False]


def test_vectorised_normalisation_equals_the_per_code_function():
    from casemix.codes import normalise_code
    from casemix.ingest.validate import _explode_codes, normalise_codes

    codes = ["a01.x00", " I10.x00 ", "Ｉ１０．ｘ００", "k35.8\u3000", "\tj18.9\x1c", "\x0bc34", "", None, "x",
             "xx.Xx", "ä1", "Ａ", "  ", "c34.900x001", "β2", "i10\u00a0x00"]
    assert normalise_codes(pd.Series(codes)).tolist() == [normalise_code(c) for c in codes]
    lists = pd.Series(["a01|b02 | |c03", None, "", "Ｉ１０|x", "|"], index=[10, 11, 12, 13, 14])
    exploded = _explode_codes(lists)
    assert list(zip(exploded.index, exploded)) == [(10, "A01"), (10, "B02"), (10, "C03"), (13, "I10"), (13, "X")]


def test_every_rule_gives_its_reason_code_and_valid_records_pass(spark, store, book, tmp_path):
    drop = tmp_path / "drops" / "inpatient" / "region=530100" / "month=2023-01"
    good = [
        record("OK1"),
        record("OK2", principal_dx=" ｋ３５．８００", secondary_dxs="i10.X00", sex="男", admission_date="20230103",
               discharge_date="2023/01/06", los_days=""),  # quirks that normalise
        record("OK3", claim_version="1", age_years="0", age_days="3", birth_weight_g="3100", principal_dx="P07.100",
               secondary_dxs="", procedures="", insurance_scheme="居民", sex="2", birth_date="2022-12-30"),
    ]
    bad = [
        record("B_MISSPD", principal_dx=" "),
        record("B_UNKDX", secondary_dxs="I10.x00|XYZ.123"),
        record("B_UNKPROC", procedures="47.0900|12.3456x999"),
        record("B_DISCH", admission_date="2023-01-09", discharge_date="2023-01-07"),
        record("B_NEG", drug_cost="-5.00"),
        record("B_NONNUM", total_cost="12000元"),
        record("B_FUND", fund_paid="13000.00"),
        record("B_SEX", sex="2", principal_dx="N40.x00"),
        record("B_NEWBORN", secondary_dxs="P07.100"),
        record("B_TYPE", age_years="四十三"),
        record("B_DATE", discharge_date="2023-02-30"),
        record("B_MISSING", hospital_id=""),
        record("B_SEXVAL", sex="X"),
        record("B_CAT", insurance_scheme="商业", discharge_status="7"),
        record("B_REGION", region="530300"),
        record("B_INFANT", age_years="0", age_days="", principal_dx="P07.100", secondary_dxs="", procedures=""),
        record("B_MULTI", fund_paid="13000.00", sex="2", principal_dx="N40.x00"),
    ]
    dup = record("DUP1")
    malformed = ['M1,1,530100,"H1,unclosed', "M2,1,530100"]
    write_csv(drop, good + bad + [dup, dup], malformed)
    result = ingest(spark, store, book, tmp_path / "drops")

    reasons = rejected_reasons(store)
    assert reasons == {
        "B_MISSPD": ["MISSING_PRINCIPAL_DX"],
        "B_UNKDX": ["UNKNOWN_DX_CODE"],
        "B_UNKPROC": ["UNKNOWN_PROC_CODE"],
        "B_DISCH": ["DISCHARGE_BEFORE_ADMISSION"],
        "B_NEG": ["NEGATIVE_COST"],
        "B_NONNUM": ["NON_NUMERIC_COST"],
        "B_FUND": ["FUND_EXCEEDS_TOTAL"],
        "B_SEX": ["SEX_DX_MISMATCH"],
        "B_NEWBORN": ["NEWBORN_DX_ADULT"],
        "B_TYPE": ["INVALID_TYPE"],
        "B_DATE": ["INVALID_TYPE"],
        "B_MISSING": ["MISSING_FIELD"],
        "B_SEXVAL": ["INVALID_SEX"],
        "B_CAT": ["INVALID_CATEGORY"],
        "B_REGION": ["REGION_MISMATCH"],
        "B_INFANT": ["MISSING_FIELD"],
        "B_MULTI": ["FUND_EXCEEDS_TOTAL", "SEX_DX_MISMATCH"],
        "DUP1": ["DUPLICATE_CLAIM_ID"],
        'M1,1,530100,': ["MALFORMED_ROW"],
        "M2,1,530100": ["MALFORMED_ROW"],
    }
    assert (result.read, result.accepted, result.rejected) == (len(good) + len(bad) + 2 + 2, len(good) + 1, len(bad) + 3)
    assert result.read == result.accepted + result.rejected
    assert (result.inserted, result.updated, result.unchanged, result.superseded) == (4, 0, 0, 0)

    claims = {r.claim_id: r for r in store.read("claims").collect()}
    assert sorted(claims) == ["DUP1", "OK1", "OK2", "OK3"]
    ok2 = claims["OK2"]
    assert (ok2.principal_dx, ok2.secondary_dxs, ok2.sex) == ("K35.800", ["I10.x00"], "1")
    assert (ok2.admission_date, ok2.discharge_date, ok2.los_days, ok2.discharge_month) == (
        date(2023, 1, 3), date(2023, 1, 6), 3, "2023-01")
    ok1 = claims["OK1"]
    assert (ok1.total_cost, ok1.fund_paid, ok1.insurance_scheme) == (Decimal("12000.50"), Decimal("9000.00"), "employee")
    # ids are pseudonymised with the key, never stored in clear
    assert ok1.person_id == hmac_hex("P0001", KEY) and ok1.national_id == hmac_hex("53010019800101123X", KEY)
    raw = {r.claim_id: r.raw_record for r in store.read("claims_rejected").collect()}
    assert "P0001" not in "".join(raw.values()) and "53010019800101123X" not in "".join(raw.values())
    assert json.loads(raw["B_NONNUM"])["总费用"] == "12000元"
    assert json.loads(raw["B_NONNUM"])["人员编号"] == hmac_hex("P0001", KEY)
    malformed_raw = [r.raw_record for r in store.read("claims_rejected").collect() if r.claim_id is None]
    assert sorted(malformed_raw) == sorted(['M1,1,530100,"H1,unclosed', "M2,1,530100"])

    quality = store.read("ingest_quality").toPandas()
    by_measure = quality.groupby("measure")["records"].sum().to_dict()
    assert by_measure["read"] == result.read and by_measure["rejected"] == result.rejected
    assert by_measure["MALFORMED_ROW"] == 2 and by_measure["FUND_EXCEEDS_TOTAL"] == 2


def test_parquet_drops_and_column_type_drift_are_read(spark, store, book, tmp_path):
    drops = tmp_path / "drops" / "inpatient"
    write_parquet(drops / "region=530100" / "month=2023-01", [record("P1"), record("P2", total_cost="abc")])
    # a file whose 年龄 column arrived as integers instead of strings is still read, value by value
    other = drops / "region=530100" / "month=2023-02"
    other.mkdir(parents=True)
    table = pa.table({FIELD_TO_RAW[f]: pa.array([record("P3", discharge_date="2023-02-03")[f]], pa.string())
                      for f in RAW_FIELDS}).set_column(9, "年龄", pa.array([43], pa.int64()))
    pq.write_table(table, other / "part-0.parquet")
    result = ingest(spark, store, book, drops)
    assert (result.read, result.accepted, result.rejected) == (3, 2, 1)
    assert sorted(r.claim_id for r in store.read("claims").collect()) == ["P1", "P3"]
    assert rejected_reasons(store) == {"P2": ["NON_NUMERIC_COST"]}
    rej = store.read("claims_rejected").collect()[0]
    assert (rej.source_format, rej.source_line, rej.drop_id) == ("parquet", 2, "530100/2023-01")


def test_reingesting_the_same_drop_is_idempotent(spark, store, book, tmp_path):
    drop = tmp_path / "drops" / "inpatient" / "region=530100" / "month=2023-01"
    write_csv(drop, [record("A"), record("B"), record("C", total_cost="x")])
    first = ingest(spark, store, book, drop, run="run-1")
    claims_before = sorted(tuple(r) for r in store.read("claims").collect())
    rejected_before = sorted((r.claim_id, tuple(r.reason_codes), r.raw_record) for r in store.read("claims_rejected").collect())
    second = ingest(spark, store, book, drop, run="run-2")
    assert (first.inserted, second.inserted, second.updated, second.unchanged) == (2, 0, 0, 2)
    assert sorted(tuple(r) for r in store.read("claims").collect()) == claims_before
    assert sorted((r.claim_id, tuple(r.reason_codes), r.raw_record)
                  for r in store.read("claims_rejected").collect()) == rejected_before
    assert store.version("claims") == first.versions["claims"] + 1  # one new version per run, same content


def test_a_corrected_resubmission_replaces_the_earlier_record(spark, store, book, tmp_path):
    drops = tmp_path / "drops" / "inpatient" / "region=530100"
    write_csv(drops / "month=2023-01", [record("R1", total_cost="12000.50"), record("R2")])
    ingest(spark, store, book, drops / "month=2023-01", run="run-1")
    # next month's drop: a corrected version 2 of R1, and a stale copy of version 1 of R2
    write_csv(drops / "month=2023-02", [record("R1", claim_version="2", total_cost="11000.50", fund_paid="8000.00")])
    second = ingest(spark, store, book, drops / "month=2023-02", run="run-2")
    assert (second.updated, second.inserted) == (1, 0)
    claims = {r.claim_id: r for r in store.read("claims").collect()}
    assert (claims["R1"].claim_version, claims["R1"].total_cost) == (2, Decimal("11000.50"))
    # both versions in one run: the later wins and the earlier counts as superseded
    write_csv(drops / "month=2023-03", [record("R3", claim_version="1"), record("R3", claim_version="2", total_cost="1.00",
                                                                              fund_paid="1.00", self_pay="0", out_of_pocket="0")])
    third = ingest(spark, store, book, drops / "month=2023-03", run="run-3")
    assert (third.read, third.accepted, third.inserted, third.superseded) == (2, 2, 1, 1)
    assert {r.claim_id: r.claim_version for r in store.read("claims").collect()}["R3"] == 2


def test_without_a_key_ingestion_refuses_to_run_outside_the_demo(settings):
    from casemix.ingest.pseudonym import MissingKeyError, load_key

    assert load_key(settings, env={}).secret == DEMO_KEY  # local.yaml is the embedded demo
    strict = settings.model_copy(update={"privacy": settings.privacy.model_copy(update={"allow_demo_key": False})})
    with pytest.raises(MissingKeyError, match="CASEMIX_PSEUDONYM_KEY"):
        load_key(strict, env={})
    assert load_key(strict, env={"CASEMIX_PSEUDONYM_KEY": "s3cret"}).label == "env:CASEMIX_PSEUDONYM_KEY"


def test_spark_hmac_equals_python_hmac(spark):
    from pyspark.sql import functions as F

    from casemix.ingest.pseudonym import hmac_column

    long_key = PseudonymKey(b"k" * 100, "long")  # longer than a block: hashed first, as HMAC specifies
    values = ["P0001", "身份证530101", ""]
    for key in (KEY, long_key):
        got = [r[0] for r in spark.createDataFrame([(v,) for v in values] + [(None,)], "v string")
               .select(hmac_column(F.col("v"), key)).collect()]
        assert got == [hmac_hex(v, key) for v in values] + [None]
