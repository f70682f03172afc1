"""Writing the generated cases as raw drops, exactly in the format of :mod:`casemix.ingest.raw`.

Layout under the drops root::

    inpatient/region=<code>/month=<YYYY-MM>/part-*.parquet | part-*.csv   one folder per drop
    inpatient/_defects/part-*.parquet                                      the planted defects
    outpatient/region=<code>/month=<YYYY-MM>/part-*.parquet                outpatient visits

Parquet drops have the Chinese columns of ``RAW_COLUMNS``, all strings. CSV drops are UTF-8 with the
Chinese header line and RFC-4180 quoting (a value holding a comma, a quote or a line break is quoted,
quotes doubled; ingestion must read them with ``escape='"'``). The CSV lines are built in the vectorised
generator (:func:`casemix.generate.text.csv_lines`), so the generator controls the quoting and can cut a
line short for ``malformed_csv_row``, and are written verbatim through Spark's CSV writer as one column
whose name is the header line, with a separator and quote character that never occur in the data: every
file starts with exactly one header line, whatever the partitioning.

``_defects`` columns: ``claim_id``, ``claim_version`` (int), ``drop_id`` (``<region>/<YYYY-MM>``),
``defect_kind`` (key of ``DEFECT_KINDS``), ``expected_reason`` (reason code, or ``SUPERSEDED``),
``defect_field`` (the field the defect altered, null when it is the whole row). One row per defective
record (a duplicated claim once, a resubmission as its version 1).

How it runs: instead of caching the generated rows, each output is a pass that regenerates
(deterministically) only the cases it needs and hands Spark only what its sink needs: the Parquet
regions' rows, the CSV regions' lines, the defect rows (about ``bad_record_share`` of the cases), or
per-batch counts (no text rendered). A case's region, hence its drop format, and whether it is drawn
to carry a defect follow from its id alone, so the passes together generate each case about 1.6 times.
The vectorised generation is cheap; caching 43 wide string columns in the JVM is not. Writing replaces the whole ``inpatient`` (or ``outpatient``)
tree: a drops folder always holds exactly one generator run.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import IntegerType, LongType, StringType, StructField, StructType

from casemix.generate.defects import KINDS, choose_kinds, may_be_defective
from casemix.generate.inpatient import RAW_NAMES, case_facts, generate_batch
from casemix.generate.outpatient import OUTPATIENT_COLUMNS, generate_outpatient
from casemix.generate.plan import GenerationPlan
from casemix.generate.text import csv_lines

__all__ = ["write_drops", "write_outpatient_drops", "csv_header", "drop_summary", "DropsResult", "DEFECTS_FOLDER",
           "DEFECT_COLUMNS"]

DEFECTS_FOLDER = "_defects"
#: CSV writer settings that write the pre-built line verbatim (the separator / quote never occur in data)
_VERBATIM = {"header": "true", "sep": "\u0001", "quote": "", "escapeQuotes": "false", "quoteAll": "false",
             "ignoreLeadingWhiteSpace": "false", "ignoreTrailingWhiteSpace": "false", "encoding": "UTF-8",
             "lineSep": "\n", "maxRecordsPerFile": "0"}
DEFECT_COLUMNS = ("claim_id", "claim_version", "drop_id", "defect_kind", "expected_reason", "defect_field")
_STAT_KEYS = ("drop_format", "row_role", "defect_kind", "case_status", "case_drg")


def csv_header() -> str:
    return ",".join(RAW_NAMES)


def _schema(kind: str) -> StructType:
    s = StringType()
    part = [StructField("region", s), StructField("month", s)]
    if kind == "parquet":
        return StructType([StructField(n, s) for n in RAW_NAMES] + part)
    if kind == "csv":
        return StructType([StructField(csv_header(), s)] + part)
    if kind == "defects":
        return StructType([StructField("claim_id", s), StructField("claim_version", IntegerType()),
                           StructField("drop_id", s), StructField("defect_kind", s), StructField("expected_reason", s),
                           StructField("defect_field", s)])
    return StructType([StructField(k, s) for k in _STAT_KEYS]
                      + [StructField(k, LongType()) for k in ("n", "readmissions", "within15")])


def _project(plan: GenerationPlan, ids: np.ndarray, kind: str) -> pa.Table:
    """What pass ``kind`` needs of cases ``ids``, generating only the cases it needs: the Parquet pass
    only cases of Parquet regions, the CSV pass only those of CSV regions (a case's region follows from
    its id), the defects pass only cases drawn to carry a defect, the stats pass no text at all."""
    if kind in ("parquet", "csv"):
        ids = ids[plan.region_csv[plan.case_region(ids)] == (kind == "csv")]
    elif kind == "defects":
        ids = ids[may_be_defective(plan, ids)]
    if not len(ids):
        return _schema_arrow(kind).empty_table()
    if kind == "stats":
        return _stats(plan, ids)
    table = generate_batch(plan, ids)
    if kind == "parquet":
        return pa.table({**{n: table[n] for n in RAW_NAMES}, "region": table["drop_region"],
                         "month": table["drop_month"]})
    if kind == "csv":
        keep = np.nan_to_num(np.asarray(table["csv_fields"].to_numpy(zero_copy_only=False), dtype=np.float64), nan=0)
        lines = csv_lines([table[n].combine_chunks() for n in RAW_NAMES], keep.astype(np.int64))
        return pa.table({csv_header(): lines, "region": table["drop_region"], "month": table["drop_month"]})
    t = table.filter(pc.and_(pc.is_valid(table["defect_kind"]), pc.equal(table["row_role"], "original")))
    return pa.table({
        "claim_id": t["结算清单号"], "claim_version": pc.cast(t["版本号"], pa.int32()),
        "drop_id": pc.binary_join_element_wise(t["drop_region"], t["drop_month"], "/"),
        "defect_kind": t["defect_kind"], "expected_reason": t["expected_reason"], "defect_field": t["defect_field"]})


def _stats(plan: GenerationPlan, ids: np.ndarray) -> pa.Table:
    """Counts of the rows the cases ``ids`` produce, by (format, role, defect kind, status, DRG)."""
    c, grouped, _codes = case_facts(plan, ids, costs=False)
    kind = choose_kinds(plan, c)
    kinds = np.array([None, *KINDS], dtype=object)[kind + 1]
    fmt = np.where(plan.region_csv[c["region"]], "csv", "parquet").astype(object)
    status = grouped["status"].to_numpy(dtype=object)
    drg = grouped["drg"].to_numpy(dtype=object)
    readm = (c["parent"] >= 0).astype(np.int64)
    within = ((c["parent"] >= 0) & (c["gap"] <= 15)).astype(np.int64)
    dup = kinds == "duplicate_claim_id"
    resub = kinds == "resubmission"
    parts = [
        (fmt, np.full(len(ids), "original", dtype=object), kinds, status, drg, readm, within),
        (fmt[dup], np.full(dup.sum(), "duplicate", dtype=object), kinds[dup], status[dup], drg[dup], readm[dup],
         within[dup]),
        (fmt[resub], np.full(resub.sum(), "resubmission", dtype=object), np.full(resub.sum(), None, dtype=object),
         status[resub], drg[resub], readm[resub], within[resub]),
    ]
    frame = pd.DataFrame({name: np.concatenate([p[i] for p in parts])
                          for i, name in enumerate((*_STAT_KEYS, "readmissions", "within15"))})
    frame["n"] = 1
    agg = frame.groupby(list(_STAT_KEYS), dropna=False, sort=False)[["n", "readmissions", "within15"]].sum()
    agg = agg.reset_index()
    out = {k: pa.array(agg[k].astype(object).where(agg[k].notna(), None).tolist(), type=pa.string())
           for k in _STAT_KEYS}
    out.update({k: pa.array(agg[k].to_numpy(dtype=np.int64)) for k in ("n", "readmissions", "within15")})
    return pa.table(out)


def _schema_arrow(kind: str) -> pa.Schema:
    conv = {StringType(): pa.string(), LongType(): pa.int64(), IntegerType(): pa.int32()}
    return pa.schema([pa.field(f.name, conv[f.dataType]) for f in _schema(kind).fields])


def _pass(spark: SparkSession, plan: GenerationPlan, kind: str) -> DataFrame:
    schema = _schema(kind)
    arrow_schema = _schema_arrow(kind)

    def run(batches):
        for batch in batches:
            ids = batch.column(0).to_numpy(zero_copy_only=False)
            if len(ids):
                table = _project(plan, ids, kind)
                if table.num_rows:
                    yield from table.select(arrow_schema.names).cast(arrow_schema).to_batches()

    return spark.range(0, plan.spec.n_cases, 1, plan.partitions).mapInArrow(run, schema)


@dataclass
class DropsResult:
    """Paths written, counts of what was written, and clean grouped cases per DRG (weights of the truth)."""

    paths: dict[str, str]
    summary: dict[str, Any]
    drg_counts: dict[str, int] = field(default_factory=dict)


def write_drops(spark: SparkSession, plan: GenerationPlan, root: str) -> DropsResult:
    """Generate the plan's inpatient cases and write them under ``root`` as drops, with ``_defects``."""
    inpatient = f"{root.rstrip('/')}/inpatient"
    (_pass(spark, plan, "parquet").write.mode("overwrite").option("partitionOverwriteMode", "static")
     .partitionBy("region", "month").parquet(inpatient))
    _pass(spark, plan, "csv").write.mode("append").options(**_VERBATIM).partitionBy("region", "month").csv(inpatient)
    _pass(spark, plan, "defects").coalesce(max(1, min(plan.partitions, 64))).write.mode("overwrite").parquet(
        f"{inpatient}/{DEFECTS_FOLDER}")
    stats = (_pass(spark, plan, "stats").groupBy(*_STAT_KEYS)
             .agg(F.sum("n").alias("n"), F.sum("readmissions").alias("readmissions"),
                  F.sum("within15").alias("within15")).collect())
    summary = _summarise([r.asDict() for r in stats])
    drg_counts: dict[str, int] = {}
    for r in stats:
        if r["defect_kind"] is None and r["case_status"] == "grouped":
            drg_counts[r["case_drg"]] = drg_counts.get(r["case_drg"], 0) + int(r["n"])
    return DropsResult({"inpatient": inpatient, "defects": f"{inpatient}/{DEFECTS_FOLDER}"}, summary, drg_counts)


def write_outpatient_drops(spark: SparkSession, plan: GenerationPlan, root: str) -> dict[str, str]:
    """Generate the plan's outpatient visits and write them as Parquet drops under ``root``."""
    outpatient = f"{root.rstrip('/')}/outpatient"
    rows = generate_outpatient(spark, plan).select(
        *[F.col(f"`{n}`") for n in OUTPATIENT_COLUMNS], F.col("drop_region").alias("region"),
        F.col("drop_month").alias("month"))
    (rows.write.mode("overwrite").option("partitionOverwriteMode", "static")
     .partitionBy("region", "month").parquet(outpatient))
    return {"outpatient": outpatient}


def _summarise(rows: list[dict]) -> dict[str, Any]:
    out: dict[str, Any] = {"rows": 0, "cases": 0, "rows_by_format": {}, "rows_by_role": {}, "defects": {},
                           "clean_cases_by_status": {}, "readmissions": 0, "readmissions_within_15_days": 0}

    def add(d: dict, key, n: int) -> None:
        d[key] = d.get(key, 0) + n

    for r in rows:
        n = int(r["n"])
        out["rows"] += n
        add(out["rows_by_format"], r["drop_format"], n)
        add(out["rows_by_role"], r["row_role"], n)
        if r["row_role"] == "original":
            out["cases"] += n
            out["readmissions"] += int(r["readmissions"])
            out["readmissions_within_15_days"] += int(r["within15"])
            if r["defect_kind"] is not None:
                add(out["defects"], r["defect_kind"], n)
        if r["defect_kind"] is None:
            add(out["clean_cases_by_status"], r["case_status"], n)
    for key in ("rows_by_format", "rows_by_role", "defects", "clean_cases_by_status"):
        out[key] = dict(sorted(out[key].items()))
    return out


def drop_summary(cases: DataFrame) -> dict[str, Any]:
    """The counts of :class:`DropsResult` ``.summary`` for a DataFrame of generated rows
    (:func:`casemix.generate.generate_inpatient`), in one small aggregation."""
    readmitted = F.col("readmission_of").isNotNull()
    rows = (cases.groupBy(*_STAT_KEYS[:-1])
            .agg(F.count(F.lit(1)).alias("n"),
                 F.sum(F.when(readmitted, 1).otherwise(0)).alias("readmissions"),
                 F.sum(F.when(readmitted & (F.col("readmission_gap_days") <= 15), 1).otherwise(0)).alias("within15"))
            .collect())
    return _summarise([r.asDict() for r in rows])
