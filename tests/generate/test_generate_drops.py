"""Drop layout: a folder per region and discharge month, CSV or Parquet as each region sends them."""
from __future__ import annotations

import glob
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from casemix.ingest.raw import RAW_COLUMNS


def test_one_folder_per_region_and_month_in_the_regions_format(generated, plan):
    root = generated.root / "inpatient"
    regions = {p.name.split("=", 1)[1] for p in root.glob("region=*")}
    assert regions == set(plan.region_codes)
    allowed_months = set(plan.months) | {plan.next_month_label}
    for code, csv_region in zip(plan.region_codes, plan.region_csv):
        months = {p.name.split("=", 1)[1] for p in (root / f"region={code}").glob("month=*")}
        assert months and months <= allowed_months
        files = [Path(f) for f in glob.glob(str(root / f"region={code}" / "month=*" / "*")) if not Path(f).name.startswith(("_", "."))]
        suffixes = {f.suffix for f in files if f.suffix not in (".crc",)}
        assert suffixes == ({".csv"} if csv_region else {".parquet"}), (code, suffixes)
    big = plan.region_codes[0]
    assert len(list((root / f"region={big}").glob("month=*"))) == len(plan.months)


def test_csv_drops_have_the_chinese_header_once_and_quote_values_with_commas_or_quotes(generated, drop_records):
    header = ",".join(RAW_COLUMNS)
    texts = [Path(f).read_text(encoding="utf-8") for f in glob.glob(str(generated.root / "inpatient" / "*" / "*" / "*.csv"))]
    assert texts and all(t.split("\n", 1)[0] == header and t.count(header) == 1 for t in texts)
    csv_dept = drop_records.loc[drop_records["source_format"] == "csv", "科室"].dropna()
    with_comma = csv_dept[csv_dept.str.contains(",")]
    with_quote = csv_dept[csv_dept.str.contains('"')]
    assert len(with_comma) and len(with_quote)
    whole = "\n".join(texts)
    assert f'"{with_comma.iloc[0]}"' in whole
    assert '"' + with_quote.iloc[0].replace('"', '""') + '"' in whole


def test_parquet_drops_have_the_chinese_columns_all_strings(generated, plan):
    files = glob.glob(str(generated.root / "inpatient" / "region=*" / "month=*" / "*.parquet"))
    assert files
    for f in files[:20]:
        schema = pq.read_schema(f)
        assert schema.names == list(RAW_COLUMNS)
        assert all(t == pa.string() for t in schema.types)


def test_the_region_field_matches_the_drop_folder_and_months_are_discharge_months(drop_records):
    from ._reference_checks import parse_date

    assert (drop_records["统筹区"] == drop_records["drop_region"]).all()
    ok = drop_records[~drop_records["malformed"] & (drop_records["版本号"] == "1")]
    month = ok["出院日期"].map(lambda s: parse_date(s).strftime("%Y-%m"))
    assert (month == ok["drop_month"]).all()


def test_outpatient_drops_are_parquet_per_region_and_month(generated, plan):
    from casemix.generate import OUTPATIENT_COLUMNS

    root = generated.root / "outpatient"
    files = glob.glob(str(root / "region=*" / "month=*" / "*.parquet"))
    assert files and {Path(f).parent.parent.name.split("=")[1] for f in files} == set(plan.region_codes)
    schema = pq.read_schema(files[0])
    assert schema.names == list(OUTPATIENT_COLUMNS) and all(t == pa.string() for t in schema.types)
