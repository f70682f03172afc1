"""Reference inputs of payment: the hospital register (定点医疗机构) and audit deductions (审核扣款).

Scoring takes hospital coefficients from the grade and the rate method takes benefits by grade, so the
register is an input like the claims: ``casemix load-hospitals --input hospitals.csv`` validates a CSV
file (UTF-8, header ``hospital_id,region,name,grade,hospital_type``) and merges it into ``hospitals``.
A file with any bad row is refused as a whole with every problem listed (a register is small and a
wrong grade changes payments, so it is fixed at the source rather than quarantined).

Audit deductions come from the bureau's audit system as a CSV file the same way
(``casemix load-deductions --input deductions.csv``), merged into ``audit_deductions`` by deduction id.
"""
from __future__ import annotations

import csv
import re
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession

from casemix.codes import HOSPITAL_GRADES, HOSPITAL_TYPES
from casemix.tables import table

__all__ = ["read_register", "write_register", "read_deductions", "RegisterError", "GRADES", "HOSPITAL_TYPES", "COLUMNS",
           "DEDUCTION_COLUMNS"]

GRADES = HOSPITAL_GRADES
COLUMNS = ("hospital_id", "region", "name", "grade", "hospital_type")


class RegisterError(ValueError):
    """The hospital register file is missing or has bad rows (all listed)."""


def _read_rows(path: str | Path, columns: tuple[str, ...], what: str, key: str, required: tuple[str, ...],
               check) -> list[dict]:
    """The rows of a small reference CSV file (UTF-8, header naming ``columns``), values trimmed; every
    row must have the ``required`` fields, a ``key`` not seen before, and pass ``check(row) -> [problems]``.
    Raises :class:`RegisterError` listing every bad row (nothing is loaded from a file with one)."""
    path = Path(path)
    if not path.is_file():
        raise RegisterError(f"{what} {path} not found (columns: {', '.join(columns)})")
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            raise RegisterError(f"{path}: header lacks column(s) {missing} (expected {', '.join(columns)})")
        rows, problems, seen = [], [], {}
        for line, rec in enumerate(reader, start=2):
            rec = {k: (rec.get(k) or "").strip() for k in columns}
            bad = [f"empty {k}" for k in required if not rec[k]] + check(rec)
            if rec[key] in seen:
                bad.append(f"{key} {rec[key]} already on line {seen[rec[key]]}")
            seen.setdefault(rec[key], line)
            if bad:
                problems.append(f"line {line}: {'; '.join(bad)}")
            rows.append(rec)
    if problems:
        raise RegisterError(f"{path}: {len(problems)} bad row(s), nothing loaded: " + " | ".join(problems[:20]))
    return rows


def _check_hospital(rec: dict) -> list[str]:
    bad = []
    if rec["grade"] and rec["grade"] not in GRADES:
        bad.append(f"grade {rec['grade']!r} is not one of {', '.join(GRADES)}")
    if rec["hospital_type"] and rec["hospital_type"] not in HOSPITAL_TYPES:
        bad.append(f"hospital_type {rec['hospital_type']!r} is not one of {', '.join(HOSPITAL_TYPES)}")
    return bad


def read_register(spark: SparkSession, path: str | Path, *, loaded_at: datetime | None = None) -> DataFrame:
    """The register file as ``hospitals`` rows; raises :class:`RegisterError` listing every bad row."""
    rows = _read_rows(path, COLUMNS, "hospital register", "hospital_id",
                      ("hospital_id", "region", "grade", "hospital_type"), _check_hospital)
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


DEDUCTION_COLUMNS = ("deduction_id", "region", "hospital_id", "month", "amount", "reason")


def _check_deduction(rec: dict) -> list[str]:
    bad = []
    if rec["month"] and not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", rec["month"]):
        bad.append(f"month {rec['month']!r} is not YYYY-MM")
    if rec["amount"]:
        try:
            amount = Decimal(rec["amount"])
            if not amount.is_finite() or amount < 0 or amount != amount.quantize(Decimal("0.01")):
                raise InvalidOperation
        except InvalidOperation:
            bad.append(f"amount {rec['amount']!r} is not a yuan amount >= 0 with at most 2 decimals")
    return bad


def read_deductions(spark: SparkSession, path: str | Path) -> DataFrame:
    """An audit-deduction file (CSV, UTF-8, header :data:`DEDUCTION_COLUMNS`; ``amount`` in yuan with at most
    two decimals, ``month`` YYYY-MM) as ``audit_deductions`` rows; raises :class:`RegisterError` listing
    every bad row (a deduction changes a payment: a bad file is fixed at the source, not half loaded)."""
    rows = _read_rows(path, DEDUCTION_COLUMNS, "deduction file", "deduction_id",
                      ("deduction_id", "region", "hospital_id", "month", "amount"), _check_deduction)
    data = [(r["deduction_id"], r["region"], r["hospital_id"], r["month"], Decimal(r["amount"]).quantize(Decimal("0.01")),
             r["reason"] or None) for r in rows]
    return spark.createDataFrame(data, table("audit_deductions").schema)
