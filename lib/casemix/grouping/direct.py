"""Grouping the ``claims`` table's files directly on the executors (delta-rs engine).

The DataFrame path (:func:`casemix.grouping.distributed.group_claims`) lets Spark read the claims,
convert every row to Arrow for the Python grouper, convert the result back to rows, shuffle them by
partition and write them with Spark's Parquet writer. On 10 M claims on ``local[2]`` that is about
134 s, against about 9 s for this path (bench/RESULTS.md), which keeps every row in Arrow:

* the driver takes the snapshot's file list from the Delta log (no Spark read) and deals the
  ``claims`` partitions of the period out to tasks, balanced by rows (whole partitions, unless a
  partition holds more than ``task_rows`` rows in several files: then runs of its files);
* each task reads its files with Arrow (in batches; the code columns and the other texts stored
  dictionary-encoded as their Parquet dictionaries, so the grouper looks each distinct code of a
  batch up once and the writer takes the texts' dictionary indices as they are), groups them with the same
  :class:`~casemix.grouping.distributed.BatchGrouper` as the DataFrame path (only the grouper's
  columns are gathered into the batch it groups), and writes the rows of each partition (or run of
  files) as one Parquet file (:func:`parquet_options`) into the folder the store gave it, in the
  partition's sub-folder (``claims`` and ``grouped_claims`` have the same partition columns, so no row moves
  between tasks: there is no shuffle); as each file is closed, a thread makes it durable and drops it
  from the page cache but for its footer (:class:`~casemix.storage.durable.FileSettler`), and the
  task ends only once all its files are on disk;
* the store reads the new files' footers and commits them in one version
  (:meth:`casemix.storage.deltars.DeltaRsStore.replace_partitions_with_files`), after the job
  checked that every claim read came out as one grouped row and that each file read held the rows
  the Delta log counts for it (where the log has counts); the store then checks that each file
  committed holds the rows its task reported.

Spark still schedules the tasks (``spark-submit`` on a cluster, ``local[*]`` here), so executors
need read and write access to the warehouse through ``pyarrow.fs`` (local paths, HDFS, S3).
The rows are the same as the DataFrame path's, column for column (tests/test_generated_province.py).
"""
from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Iterator, Mapping, Sequence

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from pyspark.sql import SparkSession

from casemix.grouping.distributed import (GROUPER_INPUTS, BatchGrouper, _decoded_type, _same_type,
                                          check_scheme_dirs, passed_columns, scheme_dirs_here, scheme_ids,
                                          ship_schemes)
from casemix.policy import GroupingPolicy
from casemix.storage.deltars import DataFile, partition_dir
from casemix.storage.durable import FileSettler
from casemix.tables import CATALOGUE, TableDef

__all__ = ["replace_grouped_claims", "group_claim_files", "deal_partitions", "default_tasks", "parquet_options",
           "PartitionResult", "GroupingCountError", "ClaimsFileError", "CODE_COLUMNS", "passed_as_codes"]

#: rows read per task before the buffered claims are grouped together (Spark's Arrow batch size)
DEFAULT_BATCH_ROWS = 100_000
#: rows one task should take on at most (many more partitions than tasks: they are dealt out by size)
DEFAULT_TASK_ROWS = 2_000_000


class GroupingCountError(RuntimeError):
    """Claims read and grouped rows written do not match: nothing is committed."""


class ClaimsFileError(RuntimeError):
    """A ``claims`` data file breaks the table's schema (a NOT NULL column missing or holding nulls):
    the claims table itself is damaged, not one record; nothing is committed."""


@dataclass(frozen=True)
class PartitionResult:
    """What a task did with one unit of work (a ``claims`` partition, or some of a large partition's
    files): rows the log says the files hold (None if it lacks a count), rows read and rows written,
    the file written (relative to the output folder; None when there were no rows), and the files
    whose rows read differ from their count in the log."""

    partition: tuple
    rows_logged: int | None
    rows_in: int
    rows_out: int
    file: str | None
    #: files of the unit whose rows read differ from the log's count: (path, rows in log, rows read)
    unlike_log: tuple = ()


def default_tasks(rows: int, cores: int, task_rows: int = DEFAULT_TASK_ROWS) -> int:
    """How many tasks to deal ``rows`` rows to on ``cores`` cores: the same number per core (at least
    2), and at most about ``task_rows`` rows per task. (A count that is not a multiple of the cores
    leaves cores idle at the end: 5 tasks of 2 M rows on 2 cores took 17.5 s where 4 took 14 s.)"""
    cores = max(1, cores)
    return cores * max(2, -(-rows // (task_rows * cores)))


def deal_partitions(files: Sequence[DataFile], partition_by: Sequence[str], tasks: int,
                    split_rows: int | None = None) -> list[list[tuple]]:
    """The files grouped by partition and dealt out to at most ``tasks`` tasks, largest first to the
    task with the fewest rows so far. A partition stays in one task unless it holds more than
    ``split_rows`` rows in several files: then its files are cut into runs of about ``split_rows``
    rows, dealt separately (each becomes its own output file). Returns per task a list of
    ``(partition values tuple, [DataFile, ...])``, in a stable order."""
    by_part: dict[tuple, list[DataFile]] = {}
    for f in files:
        by_part.setdefault(tuple(f.partition_values.get(c) for c in partition_by), []).append(f)
    size = lambda f: f.rows if f.rows is not None else 1  # noqa: E731
    units: list[tuple[tuple, list[DataFile]]] = []
    rows: list[int] = []  # per unit
    for key in sorted(by_part):
        run: list[DataFile] = []
        run_rows = 0
        for f in sorted(by_part[key], key=lambda f: f.path):
            if run and split_rows and run_rows + size(f) > split_rows:
                units.append((key, run))
                rows.append(run_rows)
                run, run_rows = [], 0
            run.append(f)
            run_rows += size(f)
        units.append((key, run))
        rows.append(run_rows)
    n = max(1, min(tasks, len(units)))
    load = [0] * n
    dealt: list[list[int]] = [[] for _ in range(n)]
    for i_unit in sorted(range(len(units)), key=lambda u: (-rows[u], u)):
        i = min(range(n), key=lambda j: (load[j], j))
        dealt[i].append(i_unit)
        load[i] += rows[i_unit]
    return [[units[u] for u in sorted(d)] for d in dealt if d]


_TEXT_CODES = pa.dictionary(pa.int32(), pa.string())  # (the type pyarrow reads a dictionary-encoded text as)


def _conform(batch: pa.RecordBatch, f: DataFile, names: list[str], schema: pa.Schema,
             coded: frozenset = frozenset()) -> pa.RecordBatch:
    """A batch read from ``f`` with exactly the columns ``names`` of ``schema``: partition columns from
    the log (authoritative, whether or not the file holds them), columns the file lacks (older schema)
    as nulls; :class:`ClaimsFileError` for nulls in a NOT NULL column. The text columns (and lists of
    texts) named in ``coded`` come as dictionary arrays (:func:`_coded_type`), whatever the file
    holds; the other columns as ``schema`` says."""
    n = batch.num_rows
    cols = []
    for name in names:
        field = schema.field(name)
        want = _coded_type(field.type) if name in coded else field.type
        if name in f.partition_values:
            value = f.partition_values[name]
            if value is None:
                arr = pa.nulls(n, want)
            elif name in coded:
                arr = pa.DictionaryArray.from_arrays(pa.nulls(n, pa.int32()).fill_null(0), pa.array([value]))
            else:
                arr = pa.repeat(pa.scalar(value, pa.string()), n)
        elif name in batch.schema.names:
            arr = batch.column(name)
        else:
            arr = pa.nulls(n, want)
        if not field.nullable and arr.null_count:  # (pyarrow would write a null list as [] without a word)
            why = (" (its partition value in the log is null)" if name in f.partition_values else
                   "" if name in batch.schema.names else " (no such column)")
            raise ClaimsFileError(f"{f.path}: column {name} of claims is NOT NULL, but {arr.null_count} of "
                                  f"{n} rows read are null{why}")
        if arr.type != want and name in coded and not _same_type(_decoded_type(arr.type), field.type):
            arr = arr.cast(field.type)  # (e.g. numbers in a file of an older schema: as text first)
        cols.append(arr if arr.type == want else arr.cast(want))
    return pa.RecordBatch.from_arrays(cols, names=names)


def _coded_type(t: pa.DataType) -> pa.DataType:
    """The dictionary-encoded form of a text type (``_TEXT_CODES``, as pyarrow reads a dictionary-encoded
    text column), of a list of texts (the same list, items dictionary-encoded)."""
    if pa.types.is_list(t):
        return pa.list_(t.value_field.with_type(_coded_type(t.value_type)))
    return _TEXT_CODES


def parquet_options(definition: TableDef) -> dict:
    """pyarrow Parquet writer options for a table's files: snappy (as Spark) except for the table's
    ``incompressible_columns``; decimals that fit stored as INT64 (as Spark stores decimals of
    precision <= 18); dictionary encoding for every column but decimals (amounts) and the table's
    ``plain_columns``, which have about one distinct value per row; statistics only for the table's
    ``stats_columns`` and partition columns. (On 1 M grouped claims, one core, this writes ~25 % faster
    than pyarrow's defaults, into files ~5 % smaller, and the statistics save another ~10 %;
    bench/RESULTS.md.)"""
    plain, raw = set(definition.plain_columns), set(definition.incompressible_columns)
    fields = definition.arrow_schema
    dictionary = [_leaf(f) for f in fields if f.name not in plain and not pa.types.is_decimal(f.type)]
    compression = {_leaf(f): "none" if f.name in raw else "snappy" for f in fields}
    statistics = True if definition.stats_columns is None else [
        _leaf(f) for f in fields if f.name in definition.partition_by or definition.keeps_stats(f.name)]
    # store_schema=False: readers take the types from the Parquet schema (text, not the dictionary
    # arrays some columns are written from)
    return dict(compression=compression, use_dictionary=dictionary, write_statistics=statistics,
                store_decimal_as_integer=True, store_schema=False)


def _leaf(field: pa.Field) -> str:
    """The Parquet leaf column holding ``field``'s values, as pyarrow's writer and reader options name
    it: the field's name, ``<name>.list.element`` for a list."""
    return f"{field.name}.list.element" if pa.types.is_list(field.type) else field.name


#: claim columns of codes -> their Parquet leaf column (all of them :func:`passed_as_codes`, so the job
#: reads them as Arrow dictionary arrays and the grouper looks each distinct code of a batch up once;
#: the benchmark reads them so for the core alone)
CODE_COLUMNS = {c: _leaf(CATALOGUE["claims"].arrow_schema.field(c)) for c in ("principal_dx", "secondary_dxs",
                                                                             "procedures")}


def passed_as_codes() -> frozenset:
    """The text (and list of text) columns of ``claims`` that ``grouped_claims`` carries over and
    stores dictionary-encoded (all but its ``plain_columns``): read as dictionary arrays and written as
    such, the Parquet reader hands over each value's dictionary index and the writer takes it as it is
    (no text is copied, hashed or compared per row; bench/RESULTS.md)."""
    target = CATALOGUE["grouped_claims"]
    schema = target.arrow_schema

    def text(t: pa.DataType) -> bool:
        return pa.types.is_string(t) or (pa.types.is_list(t) and text(t.value_type))

    return frozenset(c for c in passed_columns() if text(schema.field(c).type) and c not in target.plain_columns)


def _task(parts: Iterable[tuple], *, grouper_args: dict, policy: GroupingPolicy, ship: bool, folder_uri: str,
          batch_rows: int) -> Iterator[PartitionResult]:
    """One task: read, group and write the given partitions (see the module docstring)."""
    target = CATALOGUE["grouped_claims"]
    claims_schema = CATALOGUE["claims"].arrow_schema
    in_names = passed_columns()
    # what the grouper reads: only these columns of the buffered pieces are concatenated
    grouped_by = list(dict.fromkeys([*GROUPER_INPUTS, "region", "discharge_date"]))
    coded = passed_as_codes()
    read_dictionary = [_leaf(claims_schema.field(c)) for c in sorted(coded)]
    grouper = BatchGrouper(scheme_dirs_here(grouper_args.pop("scheme_dirs"), ship), **grouper_args)
    options = parquet_options(target)
    fs, root = pafs.FileSystem.from_uri(folder_uri)
    root = root.rstrip("/")
    # (the folder the store gave is new, so is its entry in the table's folder above it)
    settler = FileSettler(fs, top=os.path.dirname(root))
    task_id = uuid.uuid4().hex[:12]
    writers: dict[int, pq.ParquetWriter] = {}  # per unit of work (index in ``parts``)
    paths: dict[int, str] = {}
    counts: dict[int, list] = {}  # unit -> [partition, rows in log, rows in, rows out]
    unlike: dict[int, list] = {}
    pending: list[tuple[int, pa.RecordBatch]] = []  # (unit, the claim columns of a piece read)
    done: list[int] = []

    def flush() -> Iterator[PartitionResult]:
        if pending:
            # only the grouper's columns are gathered (one schema: _conform gives every piece the same
            # types; concat unifies their dictionaries)
            inputs = pa.concat_batches([piece.select(grouped_by) for _, piece in pending])
            schemes = scheme_ids(policy, inputs.column("region"), inputs.column("discharge_date"))
            added = grouper.added(inputs.append_column("scheme_id", schemes))
            offset = 0
            for unit, piece in pending:
                rows = grouper.assemble(piece, {k: v.slice(offset, piece.num_rows) for k, v in added.items()},
                                        dictionaries=True)
                offset += piece.num_rows
                if unit not in writers:
                    values = dict(zip(target.partition_by, counts[unit][0]))
                    rel = f"{partition_dir(target, values)}/part-{task_id}-{len(paths):05d}.parquet"
                    fs.create_dir(f"{root}/{rel.rsplit('/', 1)[0]}", recursive=True)
                    writers[unit] = pq.ParquetWriter(f"{root}/{rel}", rows.schema, filesystem=fs,
                                                     **options)
                    paths[unit] = rel
                writers[unit].write_batch(rows)
                counts[unit][3] += rows.num_rows
            pending.clear()
        for unit in done:
            if unit in writers:
                writers.pop(unit).close()
                settler.add(f"{root}/{paths[unit]}")
            yield PartitionResult(*counts[unit], paths.get(unit), tuple(unlike[unit]))
        done.clear()

    local = pafs.LocalFileSystem()
    try:
        buffered = 0
        for unit, (key, files) in enumerate(parts):
            logged = None if any(f.rows is None for f in files) else sum(f.rows for f in files)
            counts[unit] = [key, logged, 0, 0]
            unlike[unit] = []
            for f in files:
                in_fs, in_path = pafs.FileSystem.from_uri(f.path) if "://" in f.path else (local, f.path)
                read = 0
                with in_fs.open_input_file(in_path) as handle:
                    meta = pq.read_metadata(handle)
                    names = meta.schema.to_arrow_schema().names
                    pf = pq.ParquetFile(handle, metadata=meta,
                                        read_dictionary=[leaf for leaf in read_dictionary
                                                         if leaf.split(".", 1)[0] in names])
                    present = [n for n in in_names if n in names]
                    # one row group at a time: pyarrow cannot read a list of dictionaries across row groups
                    batches = (batch for group in range(meta.num_row_groups)
                               for batch in pf.iter_batches(batch_size=batch_rows, row_groups=[group],
                                                            columns=present, use_threads=False))
                    for batch in batches:
                        if not batch.num_rows:
                            continue
                        claims = _conform(batch, f, in_names, claims_schema, coded)
                        pending.append((unit, claims))
                        read += batch.num_rows
                        buffered += batch.num_rows
                        if buffered >= batch_rows:
                            yield from flush()
                            buffered = 0
                counts[unit][2] += read
                if f.rows is not None and f.rows != read:
                    unlike[unit].append((f.path, f.rows, read))
            done.append(unit)
        yield from flush()
        settler.finish()  # (the task ends, and its results count, only once its files are on disk)
    finally:
        try:
            for w in writers.values():
                w.close()
        finally:
            settler.finish(check=False)


def group_claim_files(spark: SparkSession, files: Sequence[DataFile], scheme_dirs: Mapping[str, str],
                      policy: GroupingPolicy, folder_uri: str, *, run_id: str, grouped_at: datetime,
                      model_versions: Mapping[str, str] | None = None, cache_dir: str | None = None,
                      batch_rows: int = DEFAULT_BATCH_ROWS, task_rows: int = DEFAULT_TASK_ROWS,
                      tasks: int | None = None) -> list[PartitionResult]:
    """Group the ``claims`` data ``files`` into ``grouped_claims`` Parquet files under ``folder_uri``
    (one file per unit of work of :func:`deal_partitions`, in its :func:`partition_dir` sub-folder),
    in ``tasks`` Spark tasks (default: :func:`default_tasks`),
    grouping ``batch_rows`` rows at a time. Returns what happened to each unit; raises
    :class:`GroupingCountError` when the rows written differ from the rows read, or the rows read
    from the rows the log says the files hold."""
    claims, target = CATALOGUE["claims"], CATALOGUE["grouped_claims"]
    if tuple(claims.partition_by) != tuple(target.partition_by):
        raise ValueError(f"claims is partitioned by {claims.partition_by}, grouped_claims by "
                         f"{target.partition_by}: the file-wise path needs the same partitions")
    check_scheme_dirs(policy, scheme_dirs)
    if not files:
        return []
    total = sum(f.rows or 0 for f in files)
    if tasks is None:
        tasks = default_tasks(total, spark.sparkContext.defaultParallelism, task_rows)
    dealt = deal_partitions(files, claims.partition_by, tasks, split_rows=task_rows)
    ship = ship_schemes(spark, scheme_dirs)
    out_schema = target.arrow_schema
    grouper_args = dict(scheme_dirs=dict(scheme_dirs), versions=dict(model_versions or {}), run_id=run_id,
                        grouped_at=grouped_at, out_schema=out_schema, cache_dir=cache_dir)

    def run(parts):
        return _task(parts, grouper_args=dict(grouper_args), policy=policy, ship=ship, folder_uri=folder_uri,
                     batch_rows=batch_rows)

    results = (spark.sparkContext.parallelize(dealt, len(dealt))
               .mapPartitions(lambda it: run([unit for task in it for unit in task])).collect())
    bad = [r for r in results if r.rows_in != r.rows_out or r.unlike_log]
    units = sum(len(t) for t in dealt)
    if bad or len(results) != units:
        raise GroupingCountError(
            f"claims read and grouped rows written differ in {len(bad)} partition(s) "
            f"(first: {bad[0] if bad else f'{len(results)} results for {units} units of work'}); nothing committed")
    return results


def replace_grouped_claims(spark: SparkSession, store, files: Sequence[DataFile], months: Sequence[str],
                           scheme_dirs: Mapping[str, str], policy: GroupingPolicy, *, metadata=None,
                           **options) -> tuple[int, list[PartitionResult]]:
    """Group ``files`` (``claims`` files of ``months``) with :func:`group_claim_files` and replace those
    months of ``grouped_claims`` in ``store`` (a store that ``accepts_data_files``) with the files
    the tasks report: one new version. Returns it and what happened to each partition."""
    results: list[PartitionResult] = []

    def write(folder_uri: str) -> dict[str, int]:
        results.extend(group_claim_files(spark, files, scheme_dirs, policy, folder_uri, **options))
        return {r.file: r.rows_out for r in results if r.file}

    # (synced: each task put its files and their folders on disk before it ended)
    version = store.replace_partitions_with_files("grouped_claims", write, {"discharge_month": list(months)},
                                                  metadata=metadata, synced=True)
    return version, results
