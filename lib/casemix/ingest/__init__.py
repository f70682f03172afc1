"""Ingestion: raw drops -> ``claims`` (valid records, merged by claim id, latest version wins),
``claims_rejected`` (every rejected record with all its reason codes and raw values) and
``ingest_quality`` (counts per drop, hospital and rule).

Nothing is dropped: records read = accepted + rejected, and accepted = inserted + updated +
unchanged + superseded; a run where either does not hold raises :class:`IngestInvariantError`.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

import pyarrow.parquet as pq
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from casemix.codes import CodeBook
from casemix.ingest.pseudonym import PseudonymKey
from casemix.ingest.raw import REASON_CODES
from casemix.ingest.read import DropFile, _first_line, _fs_and_path, _plain, discover_drops, read_drops
from casemix.ingest.validate import validate
from casemix.storage import DeltaStore
from casemix.tables import CATALOGUE

__all__ = ["ingest_drops", "IngestResult", "IngestInvariantError", "discover_drops", "count_input_records"]

log = logging.getLogger(__name__)


class IngestInvariantError(RuntimeError):
    """Records were lost or double counted: the run's counts do not add up."""


@dataclass
class IngestResult:
    run_id: str
    files: int
    drops: int
    read: int
    accepted: int
    rejected: int
    inserted: int
    updated: int
    unchanged: int
    superseded: int
    reasons: dict[str, int] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def count_input_records(spark: SparkSession, files: list[DropFile]) -> int:
    """Records in the input, counted independently of parsing: Parquet footers' row counts plus the
    CSV lines that are neither a header nor blank."""
    total = 0
    for f in files:
        if f.format == "parquet":
            fs, p = _fs_and_path(f.path)
            with fs.open_input_file(p) as handle:
                total += pq.ParquetFile(handle).metadata.num_rows
    csv_files = [f.path for f in files if f.format == "csv"]
    if csv_files:
        headers = spark.createDataFrame([(_plain(p), _first_line(p)) for p in csv_files], "f string, h string")
        lines = spark.read.text(csv_files).select(
            F.regexp_replace(F.ltrim(F.col("value")), "^\ufeff", "").alias("value"),
            F.regexp_replace(F.col("_metadata.file_path"), r"^file:(//)?", "").alias("f"))
        total += (lines.join(F.broadcast(headers), "f")
                  .filter((F.col("value") != F.col("h")) & (F.trim(F.col("value")) != "")).count())
    return total


def ingest_drops(
    spark: SparkSession,
    store: DeltaStore,
    files: list[DropFile],
    book: CodeBook,
    key: PseudonymKey,
    run_id: str,
) -> IngestResult:
    """Validate every record of ``files`` and write the three tables (one new version each)."""
    now = datetime.now(timezone.utc)
    expected = count_input_records(spark, files)
    checked = validate(read_drops(spark, files, key), book, key).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        quality = (
            checked.select("drop_id", F.col("drop_region").alias("region"), "hospital_id",
                           F.explode(F.array_union(
                               F.array(F.lit("read"), F.when(F.size("reason_codes") == 0, F.lit("accepted"))
                                       .otherwise(F.lit("rejected"))),
                               F.col("reason_codes"))).alias("measure"))
            .groupBy("drop_id", "region", "hospital_id", "measure").agg(F.count("*").cast("long").alias("records"))
            .withColumn("ingest_run_id", F.lit(run_id))
        ).cache()
        totals = {r["measure"]: r["n"] for r in quality.groupBy("measure").agg(F.sum("records").alias("n")).collect()}
        read, accepted, rejected = totals.get("read", 0), totals.get("accepted", 0), totals.get("rejected", 0)
        if read != expected or read != accepted + rejected:
            raise IngestInvariantError(
                f"ingest {run_id}: {expected} records in the input, {read} read, {accepted} accepted + "
                f"{rejected} rejected; refusing to write"
            )

        valid = checked.filter(F.size("reason_codes") == 0).select(
            *[c for c in CATALOGUE["claims"].columns if c not in ("ingest_run_id", "ingested_at")],
        ).withColumn("ingest_run_id", F.lit(run_id)).withColumn("ingested_at", F.lit(now))
        rejected_rows = checked.filter(F.size("reason_codes") > 0).select(
            "drop_id", "source_file", "source_format", "source_line", "claim_id",
            F.coalesce("region", "drop_region").alias("region"), "hospital_id", "reason_codes", "raw_record",
            F.lit(run_id).alias("ingest_run_id"), F.lit(now).alias("rejected_at"),
        )
        meta = {"casemix.run_id": run_id}
        merged = store.merge("claims", valid, metadata=meta)
        rejected_version = store.replace_partitions(
            "claims_rejected", rejected_rows, {"drop_id": sorted({f.drop_id for f in files})}, metadata=meta)
        quality_version = store.append("ingest_quality", quality.select(*CATALOGUE["ingest_quality"].columns),
                                       metadata=meta)
        if merged.source_rows != accepted:
            raise IngestInvariantError(
                f"ingest {run_id}: {accepted} records accepted but the merge accounted for {merged.source_rows} "
                f"({merged}); claims version {merged.version} must be checked"
            )
        result = IngestResult(
            run_id=run_id, files=len(files), drops=len({f.drop_id for f in files}), read=read, accepted=accepted,
            rejected=rejected, inserted=merged.inserted, updated=merged.updated, unchanged=merged.unchanged,
            superseded=merged.superseded,
            reasons={code: totals[code] for code in REASON_CODES if totals.get(code)},
            versions={"claims": merged.version, "claims_rejected": rejected_version, "ingest_quality": quality_version},
        )
        log.info("ingest %s: read %d = accepted %d + rejected %d; accepted = inserted %d + updated %d + unchanged %d"
                 " + superseded %d", run_id, read, accepted, rejected, result.inserted, result.updated,
                 result.unchanged, result.superseded)
        quality.unpersist()
        return result
    finally:
        checked.unpersist()
