"""Shared generated data for the generator tests: one small province written once per session.

``generated`` runs the whole generator (inpatient drops, ``_defects``, outpatient drops, true costs) on
6,000 cases over one year with 5 % planted defects (so every defect kind occurs) into a session temp folder;
``rows`` holds the same generated rows (raw columns + truth columns) as a pandas frame. Tests read the
files back the way ingestion would: CSV with Python's RFC-4180 reader, Parquet with pyarrow.
"""
from __future__ import annotations

import csv
import glob
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

ROOT = Path(__file__).resolve().parents[2]
SEED = 20240607
N_CASES = 6000


@pytest.fixture(scope="session")
def province():
    from casemix.generate import load_province

    return load_province(ROOT / "conf" / "province.yaml")


@pytest.fixture(scope="session")
def spec():
    from casemix.generate import GeneratorSpec

    return GeneratorSpec(seed=SEED, n_cases=N_CASES, years=(2024,), bad_record_share=0.05, outpatient_multiple=0.5,
                         partitions=3)


@pytest.fixture(scope="session")
def plan(spec, province, schemes_dir):
    from casemix.generate import build_plan

    return build_plan(spec, province, schemes_dir)


@pytest.fixture(scope="session")
def codebook(schemes_dir):
    from casemix.codes import load_codebook

    return load_codebook(schemes_dir / "chs-drg-1.1")


@dataclass
class Generated:
    root: Path
    summary: dict
    truth: pd.DataFrame
    defects: pd.DataFrame


@pytest.fixture(scope="session")
def generated(spark, plan, tmp_path_factory) -> Generated:
    from casemix.generate import generate_province

    root = tmp_path_factory.mktemp("drops")
    result = generate_province(spark, plan, str(root), run_id="test-run")
    defects = pd.read_parquet(root / "inpatient" / "_defects")
    return Generated(root=root, summary=result.summary, truth=result.truth.toPandas(), defects=defects)


@pytest.fixture(scope="session")
def rows(spark, plan) -> pd.DataFrame:
    """Every generated row (raw Chinese columns + truth columns), as the library returns them."""
    from casemix.generate import generate_inpatient

    return generate_inpatient(spark, plan).toPandas()


def read_drop_files(root: Path) -> pd.DataFrame:
    """All inpatient drop records as ingestion would read them, with ``drop_region``, ``drop_month``,
    ``source_format``, ``source_file`` and ``malformed`` (CSV line with the wrong number of fields)."""
    from casemix.ingest.raw import RAW_COLUMNS

    header = list(RAW_COLUMNS)
    records = []
    for path in sorted(glob.glob(str(root / "inpatient" / "region=*" / "month=*" / "*"))):
        region = Path(path).parent.parent.name.split("=", 1)[1]
        month = Path(path).parent.name.split("=", 1)[1]
        base = {"drop_region": region, "drop_month": month, "source_file": os.path.basename(path)}
        if path.endswith(".csv"):
            with open(path, encoding="utf-8", newline="") as f:
                reader = csv.reader(f)
                assert next(reader) == header, f"{path}: header is not the Chinese column names"
                for fields in reader:
                    rec = dict(base, source_format="csv", malformed=len(fields) != len(header))
                    rec.update({h: (v if v != "" else None) for h, v in zip(header, fields)})
                    records.append(rec)
        elif path.endswith(".parquet"):
            for rec in pq.read_table(path).to_pylist():
                records.append(dict(base, source_format="parquet", malformed=False, **rec))
    return pd.DataFrame.from_records(records)


@pytest.fixture(scope="session")
def drop_records(generated) -> pd.DataFrame:
    return read_drop_files(generated.root)


@pytest.fixture(scope="session")
def clean_records(drop_records, generated) -> pd.DataFrame:
    """Drop records with no planted defect (the rows ingestion must accept)."""
    bad = set(zip(generated.defects["claim_id"], generated.defects["claim_version"].astype(str)))
    keys = list(zip(drop_records["结算清单号"], drop_records["版本号"]))
    keep = pd.Series([k not in bad for k in keys], index=drop_records.index)
    return drop_records[keep & ~drop_records["malformed"]].reset_index(drop=True)
