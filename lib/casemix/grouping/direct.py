"""Grouping the ``claims`` table's files directly on the executors (delta-rs engine).

The DataFrame path (:func:`casemix.grouping.distributed.group_claims`) lets Spark read the claims,
convert every row to Arrow for the Python grouper, convert the result back to rows, shuffle them by
partition and write them with Spark's Parquet writer. On 1 M claims on ``local[2]`` that is about
20 s, of which the grouping is about 1 s (bench/RESULTS.md). This path keeps every row in Arrow:

* the driver takes the snapshot's file list from the Delta log (no Spark read) and deals the
  ``claims`` partitions of the period out to tasks, whole partitions per task, balanced by rows;
* each task reads its files with Arrow (in batches), groups them with the same
  :class:`~casemix.grouping.distributed.BatchGrouper` as the DataFrame path, and writes each
  partition's rows as one Parquet file into the folder the store gave it, in the partition's
  sub-folder (``claims`` and ``grouped_claims`` have the same partition columns, so no row moves
  between tasks: there is no shuffle);
* the store reads the new files' footers and commits them in one version
  (:meth:`casemix.storage.deltars.DeltaRsStore.replace_partitions_with_files`), after the job
  checked that every claim read came out as exactly one grouped row.

Spark still schedules the tasks (``spark-submit`` on a cluster, ``local[*]`` here), so executors
need read and write access to the warehouse through ``pyarrow.fs`` (local paths, HDFS, S3).
The rows are the same as the DataFrame path's, column for column (tests/test_generated_province.py).
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Iterator, Mapping, Sequence

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from pyspark.sql import SparkSession
from pyspark.sql.pandas.types import to_arrow_schema

from casemix.grouping.distributed import BatchGrouper, passed_columns, scheme_dirs_here, scheme_ids, ship_schemes
from casemix.policy import GroupingPolicy
from casemix.storage.deltars import DataFile, partition_dir
from casemix.tables import CATALOGUE

__all__ = ["replace_grouped_claims", "group_claim_files", "deal_partitions", "PartitionResult",
           "GroupingCountError"]

#: rows read per task before the buffered claims are grouped together (Spark's Arrow batch size)
DEFAULT_BATCH_ROWS = 100_000
#: rows one task should take on at most (many more partitions than tasks: they are dealt out by size)
DEFAULT_TASK_ROWS = 2_000_000


class GroupingCountError(RuntimeError):
    """Claims read and grouped rows written do not match: nothing is committed."""


@dataclass(frozen=True)
class PartitionResult:
    """What a task did with one ``claims`` partition: rows read and written, and the file written
    (relative to the output folder; None for a partition without rows)."""

    partition: tuple
    rows_in: int
    rows_out: int
    file: str | None


def deal_partitions(files: Sequence[DataFile], partition_by: Sequence[str], tasks: int) -> list[list[tuple]]:
    """The files grouped by partition and the partitions dealt out to at most ``tasks`` tasks, largest
    first to the task with the fewest rows so far; returns per task a list of
    ``(partition values tuple, [DataFile, ...])``, partitions and files in a stable order."""
    by_part: dict[tuple, list[DataFile]] = {}
    for f in files:
        by_part.setdefault(tuple(f.partition_values.get(c) for c in partition_by), []).append(f)
    sizes = {k: sum((f.rows if f.rows is not None else 1) for f in v) for k, v in by_part.items()}
    n = max(1, min(tasks, len(by_part)))
    load = [0] * n
    dealt: list[list[tuple]] = [[] for _ in range(n)]
    for key in sorted(by_part, key=lambda k: (-sizes[k], k)):
        i = min(range(n), key=lambda j: (load[j], j))
        dealt[i].append((key, sorted(by_part[key], key=lambda f: f.path)))
        load[i] += sizes[key]
    return [sorted(d, key=lambda kv: kv[0]) for d in dealt if d]


def _conform(batch: pa.RecordBatch, f: DataFile, names: list[str], schema: pa.Schema) -> pa.RecordBatch:
    """A batch read from ``f`` with exactly the columns ``names`` of ``schema``: partition columns
    from the log when the file does not hold them, columns the file lacks (older schema) as nulls."""
    n = batch.num_rows
    cols = []
    for name in names:
        field = schema.field(name)
        if name in batch.schema.names:
            arr = batch.column(name)
        elif name in f.partition_values:
            arr = pa.repeat(pa.scalar(f.partition_values[name], pa.string()), n)
        else:
            arr = pa.nulls(n, field.type)
        cols.append(arr if arr.type == field.type else arr.cast(field.type))
    return pa.RecordBatch.from_arrays(cols, schema=pa.schema([schema.field(n) for n in names]))


def _task(parts: Iterable[tuple], *, grouper_args: dict, policy: GroupingPolicy, ship: bool, folder_uri: str,
          batch_rows: int) -> Iterator[PartitionResult]:
    """One task: read, group and write the given partitions (see the module docstring)."""
    target = CATALOGUE["grouped_claims"]
    claims_schema = to_arrow_schema(CATALOGUE["claims"].schema, timezone="UTC", prefers_large_types=False)
    in_names = passed_columns()
    grouper = BatchGrouper(scheme_dirs_here(grouper_args.pop("scheme_dirs"), ship), in_names=[*in_names, "scheme_id"],
                           **grouper_args)
    fs, root = pafs.FileSystem.from_uri(folder_uri)
    task_id = uuid.uuid4().hex[:12]
    writers: dict[tuple, pq.ParquetWriter] = {}
    paths: dict[tuple, str] = {}
    counts: dict[tuple, list[int]] = {}
    pending: list[tuple[tuple, pa.RecordBatch]] = []
    done: list[tuple] = []

    def flush() -> Iterator[PartitionResult]:
        if pending:
            table = pa.Table.from_batches([b for _, b in pending]).combine_chunks()
            batch = table.to_batches()[0] if table.num_rows else None
            if batch is not None:
                schemes = scheme_ids(policy, batch.column("region"), batch.column("discharge_date"))
                grouped = grouper(batch.append_column("scheme_id", schemes))
                offset = 0
                for key, piece in pending:
                    rows = grouped.slice(offset, piece.num_rows)
                    offset += piece.num_rows
                    if key not in writers:
                        values = dict(zip(target.partition_by, key))
                        rel = f"{partition_dir(target, values)}/part-{task_id}-{len(paths):05d}.parquet"
                        fs.create_dir(f"{root.rstrip('/')}/{rel.rsplit('/', 1)[0]}", recursive=True)
                        writers[key] = pq.ParquetWriter(f"{root.rstrip('/')}/{rel}", grouped.schema, filesystem=fs,
                                                        compression="snappy")
                        paths[key] = rel
                    writers[key].write_batch(rows)
                    counts[key][1] += rows.num_rows
            pending.clear()
        for key in done:
            if key in writers:
                writers.pop(key).close()
            yield PartitionResult(key, counts[key][0], counts[key][1], paths.get(key))
        done.clear()

    local = pafs.LocalFileSystem()
    try:
        buffered = 0
        for key, files in parts:
            counts[key] = [0, 0]
            for f in files:
                in_fs, in_path = pafs.FileSystem.from_uri(f.path) if "://" in f.path else (local, f.path)
                pf = pq.ParquetFile(in_fs.open_input_file(in_path))
                present = [n for n in in_names if n in pf.schema_arrow.names]
                for batch in pf.iter_batches(batch_size=batch_rows, columns=present):
                    if not batch.num_rows:
                        continue
                    pending.append((key, _conform(batch, f, in_names, claims_schema)))
                    counts[key][0] += batch.num_rows
                    buffered += batch.num_rows
                    if buffered >= batch_rows:
                        yield from flush()
                        buffered = 0
            done.append(key)
        yield from flush()
    finally:
        for w in writers.values():
            w.close()


def group_claim_files(spark: SparkSession, files: Sequence[DataFile], scheme_dirs: Mapping[str, str],
                      policy: GroupingPolicy, folder_uri: str, *, run_id: str, grouped_at: datetime,
                      model_versions: Mapping[str, str] | None = None, cache_dir: str | None = None,
                      batch_rows: int = DEFAULT_BATCH_ROWS, task_rows: int = DEFAULT_TASK_ROWS) -> list[PartitionResult]:
    """Group the ``claims`` data ``files`` into ``grouped_claims`` Parquet files under ``folder_uri``
    (one file per partition, in its :func:`partition_dir` sub-folder), one Spark task per group of
    partitions. Returns what happened to each partition; raises :class:`GroupingCountError` when the
    rows written differ from the rows read (or from the log's row counts)."""
    claims, target = CATALOGUE["claims"], CATALOGUE["grouped_claims"]
    if tuple(claims.partition_by) != tuple(target.partition_by):
        raise ValueError(f"claims is partitioned by {claims.partition_by}, grouped_claims by "
                         f"{target.partition_by}: the file-wise path needs the same partitions")
    missing = set(policy.schemes) - set(scheme_dirs)
    if missing:
        raise ValueError(f"no scheme folder for {sorted(missing)} (policy schemes {policy.schemes})")
    if not files:
        return []
    total = sum(f.rows or 0 for f in files)
    tasks = max(2 * spark.sparkContext.defaultParallelism, -(-total // task_rows))
    dealt = deal_partitions(files, claims.partition_by, tasks)
    ship = ship_schemes(spark, scheme_dirs)
    out_schema = to_arrow_schema(target.schema, timezone="UTC", prefers_large_types=False)
    grouper_args = dict(scheme_dirs=dict(scheme_dirs), versions=dict(model_versions or {}), run_id=run_id,
                        grouped_at=grouped_at, out_schema=out_schema, cache_dir=cache_dir)

    def run(parts):
        return _task(parts, grouper_args=dict(grouper_args), policy=policy, ship=ship, folder_uri=folder_uri,
                     batch_rows=batch_rows)

    results = (spark.sparkContext.parallelize(dealt, len(dealt))
               .mapPartitions(lambda it: run(p for task in it for p in task)).collect())
    bad = [r for r in results if r.rows_in != r.rows_out]
    expected = {key: sum(f.rows for f in fs) for task in dealt for key, fs in task
                if all(f.rows is not None for f in fs)}
    bad += [r for r in results if r.partition in expected and expected[r.partition] != r.rows_in]
    if bad or len(results) != sum(len(t) for t in dealt):
        raise GroupingCountError(
            f"claims read and grouped rows written differ in {len(bad)} partition(s) "
            f"(first: {bad[0] if bad else 'a partition without result'}); nothing committed")
    return results


def replace_grouped_claims(spark: SparkSession, store, files: Sequence[DataFile], months: Sequence[str],
                           scheme_dirs: Mapping[str, str], policy: GroupingPolicy, *, metadata=None,
                           **options) -> tuple[int, list[PartitionResult]]:
    """Group ``files`` (``claims`` files of ``months``) with :func:`group_claim_files` and replace those
    months of ``grouped_claims`` in ``store`` (a store that ``accepts_data_files``) with the files
    the tasks report: one new version. Returns it and what happened to each partition."""
    results: list[PartitionResult] = []

    def write(folder_uri: str) -> list[str]:
        results.extend(group_claim_files(spark, files, scheme_dirs, policy, folder_uri, **options))
        return [r.file for r in results if r.file]

    version = store.replace_partitions_with_files("grouped_claims", write, {"discharge_month": list(months)},
                                                  metadata=metadata)
    return version, results
