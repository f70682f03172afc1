"""The hospital register (定点医疗机构): which region, grade and type each hospital has.

Scoring takes hospital coefficients from the grade and the rate method takes benefits by grade, so the
register is an input like the claims: ``casemix load-hospitals --input hospitals.csv`` validates a CSV
file (UTF-8, header ``hospital_id,region,name,grade,hospital_type``) and merges it into ``hospitals``.
A file with any bad row is refused as a whole with every problem listed (a register is small and a
wrong grade changes payments, so it is fixed at the source rather than quarantined).
"""
from __future__ import annotations

import csv
from datetime import datetime, timezone
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession

from casemix.tables import table

__all__ = ["read_register", "write_register", "RegisterError", "GRADES", "HOSPITAL_TYPES", "COLUMNS"]

GRADES = ("三级", "二级", "一级")
HOSPITAL_TYPES = ("general", "tcm", "specialty")
COLUMNS = ("hospital_id", "region", "name", "grade", "hospital_type")


class RegisterError(ValueError):
    """The hospital register file is missing or has bad rows (all listed)."""


def read_register(spark: SparkSession, path: str | Path, *, loaded_at: datetime | None = None) -> DataFrame:
    """The register file as ``hospitals`` rows; raises :class:`RegisterError` listing every bad row."""
    path = Path(path)
    if not path.is_file():
        raise RegisterError(f"hospital register {path} not found (columns: {', '.join(COLUMNS)})")
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise RegisterError(f"{path}: header lacks column(s) {missing} (expected {', '.join(COLUMNS)})")
        rows, problems, seen = [], [], {}
        for line, rec in enumerate(reader, start=2):
            rec = {k: (rec.get(k) or "").strip() for k in COLUMNS}
            bad = [f"empty {k}" for k in ("hospital_id", "region", "grade", "hospital_type") if not rec[k]]
            if rec["grade"] and rec["grade"] not in GRADES:
                bad.append(f"grade {rec['grade']!r} is not one of {', '.join(GRADES)}")
            if rec["hospital_type"] and rec["hospital_type"] not in HOSPITAL_TYPES:
                bad.append(f"hospital_type {rec['hospital_type']!r} is not one of {', '.join(HOSPITAL_TYPES)}")
            if rec["hospital_id"] in seen:
                bad.append(f"hospital_id {rec['hospital_id']} already on line {seen[rec['hospital_id']]}")
            seen.setdefault(rec["hospital_id"], line)
            if bad:
                problems.append(f"line {line}: {'; '.join(bad)}")
            rows.append(rec)
    if problems:
        raise RegisterError(f"{path}: {len(problems)} bad row(s), nothing loaded: " + " | ".join(problems[:20]))
    when = loaded_at or datetime.now(timezone.utc)
    data = [(r["hospital_id"], r["region"], r["name"] or None, r["grade"], r["hospital_type"], str(path), when)
            for r in rows]
    return spark.createDataFrame(data, table("hospitals").schema)


def write_register(path: str | Path, rows) -> Path:
    """Write register rows (dicts with :data:`COLUMNS`) as the CSV file :func:`read_register` reads."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        for r in rows:
            writer.writerow({k: r.get(k) for k in COLUMNS})
    return path
