"""delta-rs engine: Spark writes the data files in parallel, the driver commits them once with delta-rs.

How a write works (one job run = one commit = one new version):

1. Spark writes the rows as Parquet into a fresh folder ``<table>/w-<time>-<id>/`` inside the table,
   partitioned by the table's partition columns. Unlike a plain partitioned write, the partition
   columns are also kept inside the files (the Delta protocol allows it; readers take partition
   values from the log), and the folder names use ``p_<column>=<value>`` with values reduced to
   ``[A-Za-z0-9_.-]`` (other values become ``h<hash>``), so no path needs URI escaping.
2. The driver lists the new files and reads only their Parquet footers (row counts, null counts,
   min/max): no row of data passes through the driver. A file's partition values are its
   footer's min = max of each partition column; a footer with min != max, or nulls in a column the
   catalogue declares NOT NULL, aborts the write. A column without statistics is not checked: a
   column the file declares REQUIRED cannot hold a null (casemix's own pyarrow writer keeps no
   statistics for most columns, and refuses nulls in NOT NULL ones), and for an OPTIONAL one Spark's
   writer drops them only for texts whose min and max exceed 4 KB.
   The log's statistics cover the table's ``stats_columns`` only (all columns if it has none).
3. On a local file system the files, and the new folders above them, are synced to disk
   (:mod:`casemix.storage.durable`; files handed over by a writer that synced them itself, as the
   grouping tasks do, are not synced again); then one delta-rs commit adds the files (and, for
   replace-where and merge, removes the replaced ones). delta-rs checks the commit against
   concurrent ones: a conflicting commit raises :class:`ConcurrentWriteError` after the staged
   files are deleted; appends are retried. The log up to the new version is synced before the
   version is returned.

Reading goes the other way: the snapshot's file list comes from delta-rs, Spark reads the files.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, Callable, Mapping, Optional, Sequence

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from deltalake import DeltaTable, Schema
from deltalake.exceptions import CommitFailedError, TableNotFoundError as DeltaTableNotFound
from deltalake.transaction import AddAction, CommitProperties, RemoveAction, create_table_with_add_actions
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from casemix.storage.base import (
    FILE_COLUMN,
    ConcurrentWriteError,
    DeltaStore,
    MergeResult,
    ReplaceWhereError,
    StorageError,
    TableNotFoundError,
    classify_merge,
    conform,
    latest_per_key,
    partition_value_string,
    refine_unchanged,
)
from casemix.storage.durable import sync_files
from casemix.tables import TableDef

log = logging.getLogger(__name__)

WRITER = "casemix-deltars/1"
_META_WRITER = "casemix.writer"
_META_COMMIT = "casemix.commit_id"
_SAFE = r"^[A-Za-z0-9_.-]{1,64}$"
_FILE_COL = FILE_COLUMN


def _plain_path(uri: str) -> str:
    """A local path or URI in the form Spark's ``_metadata.file_path`` and delta-rs agree on."""
    if uri.startswith("file://"):
        return uri[len("file://"):]
    if uri.startswith("file:"):
        return uri[len("file:"):]
    return uri


def _footer(fs: pafs.FileSystem, path: str) -> dict[str, Any]:
    with fs.open_input_file(path) as handle:
        size = handle.size()
        meta = pq.ParquetFile(handle).metadata
    columns: dict[str, dict[str, Any]] = {}
    for rg in range(meta.num_row_groups):
        group = meta.row_group(rg)
        for ci in range(group.num_columns):
            chunk = group.column(ci)
            name = chunk.path_in_schema
            if "." in name:  # nested (lists): no usable min/max
                continue
            entry = columns.setdefault(name, {"nulls": 0, "min": None, "max": None, "exact": True})
            st = chunk.statistics
            if st is None or not st.has_null_count:
                entry["exact"] = False
                continue
            entry["nulls"] += st.null_count
            if st.has_min_max:
                entry["min"] = st.min if entry["min"] is None else min(entry["min"], st.min)
                entry["max"] = st.max if entry["max"] is None else max(entry["max"], st.max)
    return {"path": path, "size": size, "rows": meta.num_rows, "columns": columns}


def _stat_value(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (int, float, str, bool)):
        return value
    return None  # decimals, binary: left out of the stats (allowed by the protocol)


@dataclass(frozen=True)
class DataFile:
    """One data file of a table snapshot: its path (local path or URI that ``pyarrow.fs`` opens), its
    partition values as the log writes them (they, not the file's contents, are the rows' partition
    values), and its row count (None when the log has no stats)."""

    path: str
    partition_values: dict[str, Optional[str]]
    rows: Optional[int]


def partition_dir(definition: TableDef, values: Mapping[str, Any]) -> str:
    """The sub-folder this engine writes a partition's files into: ``p_<col>=<value>/...``, values
    outside ``[A-Za-z0-9_.-]{1,64}`` replaced by ``h`` + the first 16 hex digits of their SHA-256
    (the same names the Spark write gives them)."""
    parts = []
    for col in definition.partition_by:
        text = partition_value_string(values[col])
        if text is None:
            raise StorageError(f"table {definition.name}: a partition value of {col} is null")
        if not re.match(_SAFE, text):
            text = "h" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
        parts.append(f"p_{col}={text}")
    return "/".join(parts)


class DeltaRsStore(DeltaStore):
    """Delta tables committed with delta-rs; data files written and read by Spark."""

    engine = "delta-rs"
    accepts_data_files = True

    def __init__(self, spark: SparkSession, warehouse: str, *, commit_retries: int = 3, **kwargs):
        super().__init__(spark, warehouse, **kwargs)
        self.commit_retries = commit_retries
        self._fs, self._root = pafs.FileSystem.from_uri(warehouse if "://" in warehouse else "file://" + warehouse)

    # -- snapshot access ----------------------------------------------------------------------------
    def _uri(self, definition: TableDef) -> str:
        return self.location(definition)

    def _table_dir(self, definition: TableDef) -> str:
        """The table's folder as a path of the warehouse's ``pyarrow.fs`` filesystem."""
        return f"{self._root.rstrip('/')}/{definition.name}"

    def _open(self, definition: TableDef, version: int | None = None) -> DeltaTable:
        try:
            return DeltaTable(self._uri(definition), version=version)
        except DeltaTableNotFound as exc:
            raise TableNotFoundError(f"table {definition.name} does not exist at {self._uri(definition)}") from exc
        except Exception as exc:  # a missing version raises a generic DeltaError
            if version is not None and DeltaTable.is_deltatable(self._uri(definition)):
                raise TableNotFoundError(f"table {definition.name} has no version {version}: {exc}") from exc
            raise

    def exists(self, table) -> bool:
        return DeltaTable.is_deltatable(self._uri(self.definition(table)))

    def version(self, table) -> Optional[int]:
        definition = self.definition(table)
        return self._open(definition).version() if self.exists(definition) else None

    def _delta_schema(self, definition: TableDef) -> Schema:
        return Schema.from_arrow(definition.arrow_schema)

    # -- writing --------------------------------------------------------------------------------------
    @staticmethod
    def _new_folder() -> str:
        return f"w-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:12]}"

    def _spark_write(self, definition: TableDef, df: DataFrame, folder: str) -> None:
        """Write ``df`` (already conformed) with Spark as Parquet into ``folder`` of the table."""
        out = df
        for col in definition.partition_by:
            text = F.col(col).cast("string")
            out = out.withColumn(
                f"p_{col}",
                F.when(text.rlike(_SAFE), text).otherwise(F.concat(F.lit("h"), F.substring(F.sha2(text, 256), 1, 16))),
            )
        if definition.partition_by:
            # one task per table partition: a few large files instead of one per task and partition
            out = out.repartition(*[F.col(f"p_{c}") for c in definition.partition_by])
        writer = out.write.mode("errorifexists").option("compression", "snappy")
        if definition.partition_by:
            writer = writer.partitionBy(*[f"p_{c}" for c in definition.partition_by])
        writer.parquet(f"{self._uri(definition)}/{folder}")

    def _footers(self, definition: TableDef, folder: str, only: Optional[Sequence[str]] = None) -> list[dict[str, Any]]:
        """The Parquet footers of the data files under ``folder`` of the table (read in parallel): every
        one found there, or exactly the files ``only`` names (paths relative to the folder); then the
        folder's other files (left by failed or speculative task attempts) are deleted."""
        base = f"{self._table_dir(definition)}/{folder}"
        try:
            infos = self._fs.get_file_info(pafs.FileSelector(base, recursive=True))
        except FileNotFoundError:  # nothing written (no rows)
            infos = []
        found = [i.path for i in infos if i.type == pafs.FileType.File]
        if only is None:  # data files only: no hidden or "_" file or folder (e.g. _temporary, _SUCCESS)
            paths = [p for p in found if p.endswith(".parquet")
                     and not any(part.startswith((".", "_")) for part in p[len(base) + 1:].split("/"))]
        else:
            paths = [f"{base}/{rel.lstrip('/')}" for rel in only]
            missing = sorted(set(paths) - set(found))
            if missing:
                raise StorageError(f"{len(missing)} file(s) reported written to {definition.name} are not there, "
                                   f"e.g. {missing[0]}; nothing committed")
            for stray in sorted(set(found) - set(paths)):
                self._fs.delete_file(stray)
        with ThreadPoolExecutor(max_workers=16) as pool:
            return list(pool.map(lambda p: _footer(self._fs, p), paths))

    def _discard(self, definition: TableDef, folder: str) -> None:
        try:
            self._fs.delete_dir(f"{self._table_dir(definition)}/{folder}")
        except OSError:  # pragma: no cover - best effort; vacuum removes leftovers
            log.warning("could not delete staged folder %s of %s", folder, definition.name)

    def _add_actions(self, definition: TableDef, footers: list[dict[str, Any]]) -> list[AddAction]:
        table_root = f"{self._table_dir(definition)}/"
        now = int(time.time() * 1000)
        actions = []
        for foot in footers:
            rows = foot["rows"]
            if rows == 0:
                continue
            cols = foot["columns"]
            partition_values: dict[str, Optional[str]] = {}
            for col in definition.partition_by:
                st = cols.get(col)
                if st is None or not st["exact"]:
                    raise StorageError(f"{foot['path']}: no statistics for partition column {col}")
                if st["nulls"] == rows:
                    partition_values[col] = None
                elif st["nulls"] == 0 and st["min"] == st["max"]:
                    partition_values[col] = partition_value_string(st["min"])
                else:
                    raise StorageError(
                        f"{foot['path']}: file mixes partition values of {col} ({st['min']} .. {st['max']}, "
                        f"{st['nulls']} nulls); refusing to commit"
                    )
            for f in definition.schema.fields:
                st = cols.get(f.name)
                # (no statistics: see the module docstring; lists have none, theirs are per element)
                if not f.nullable and st is not None and st["exact"] and st["nulls"] > 0:
                    raise StorageError(
                        f"cannot write to table {definition.name}: column {f.name} is NOT NULL but "
                        f"{st['nulls']} rows of {foot['path']} are null"
                    )
            stats = {"numRecords": rows, "nullCount": {}, "minValues": {}, "maxValues": {}}
            for f in definition.schema.fields:
                st = cols.get(f.name)
                if st is None or not st["exact"] or not definition.keeps_stats(f.name):
                    continue
                stats["nullCount"][f.name] = st["nulls"]
                lo, hi = _stat_value(st["min"]), _stat_value(st["max"])
                if lo is not None and hi is not None and not isinstance(st["min"], (bytes, bytearray)):
                    stats["minValues"][f.name] = lo
                    stats["maxValues"][f.name] = hi
            actions.append(
                AddAction(
                    path=foot["path"][len(table_root):],
                    size=foot["size"],
                    partition_values=partition_values,
                    modification_time=now,
                    data_change=True,
                    stats=json.dumps(stats, default=str),
                )
            )
        return actions

    def _commit(
        self,
        definition: TableDef,
        actions: list,
        mode: str,
        operation: str,
        metadata: Mapping[str, str] | None,
        partition_filters=None,
        create_if_missing: bool = True,
    ) -> tuple[str, int]:
        """Commit ``actions``; returns the commit's id (:meth:`_version_of` finds its version) and the
        version it was made on (-1 when it created the table)."""
        commit_id = uuid.uuid4().hex
        custom = {_META_WRITER: WRITER, _META_COMMIT: commit_id, "casemix.operation": operation}
        custom.update({k: str(v) for k, v in (metadata or {}).items()})
        props = CommitProperties(custom_metadata=custom)
        if not self.exists(definition):
            if not create_if_missing:
                raise TableNotFoundError(f"table {definition.name} does not exist")
            try:
                create_table_with_add_actions(
                    self._uri(definition),
                    self._delta_schema(definition),
                    [a for a in actions if isinstance(a, AddAction)],
                    mode="error",
                    partition_by=list(definition.partition_by) or None,
                    name=definition.name,
                    description=definition.description,
                    configuration=definition.table_properties or None,
                    commit_properties=props,
                )
                return commit_id, -1
            except Exception:
                if not self.exists(definition):
                    raise
                # another writer created it first: commit against its version below
        dt = self._open(definition)
        dt.create_write_transaction(
            actions,
            mode,
            definition.arrow_schema,
            partition_by=list(definition.partition_by) or None,
            partition_filters=partition_filters,
            commit_properties=props,
        )
        return commit_id, dt.version()

    def _version_of(self, definition: TableDef, commit_id: str) -> int:
        """The version our commit got: read from the log files themselves, newest first (delta-rs's
        history can misnumber entries right after a conflict was resolved by a concurrent writer)."""
        log_dir = f"{self._table_dir(definition)}/_delta_log"
        names = sorted((i.path for i in self._fs.get_file_info(pafs.FileSelector(log_dir))
                        if i.base_name.endswith(".json") and i.base_name[:-5].isdigit()), reverse=True)
        for path in names[:200]:
            with self._fs.open_input_stream(path) as handle:
                if commit_id.encode() in handle.read():
                    return int(path.rsplit("/", 1)[-1][:-5])
        raise StorageError(f"commit {commit_id} of {definition.name} not found in its log")

    def _write(self, definition, df, *, mode, operation, metadata, partition_filters=None, extra_actions=(),
               check_where=None, retries=0) -> int:
        """Write ``df`` with Spark into a new folder of the table, then commit its files (see :meth:`_commit_written`)."""
        return self._commit_written(definition, lambda folder: self._spark_write(definition, df, folder), mode=mode,
                                    operation=operation, metadata=metadata, partition_filters=partition_filters,
                                    extra_actions=extra_actions, check_where=check_where, retries=retries)

    def _commit_written(self, definition, write: Callable[[str], Optional[Mapping[str, int]]], *, mode, operation,
                        metadata, partition_filters=None, extra_actions=(), check_where=None, retries=0,
                        synced=False) -> int:
        """``write(folder)`` writes Parquet files into a new folder of the table and returns their paths
        relative to it with the rows each must hold (or None: every Parquet file in the folder); their
        footers become the commit's add actions; the files are on disk before the commit (``synced``:
        ``write`` saw to it), and its log entries before the version is returned. Whatever fails, from
        the write up to the commit, deletes the folder; once the commit has landed, nothing is deleted."""
        folder = self._new_folder()
        try:
            written = write(folder)
            footers = self._footers(definition, folder, None if written is None else list(written))
            if written is not None:
                base = f"{self._table_dir(definition)}/{folder}/"
                reported = [(f["path"][len(base):], f["rows"]) for f in footers]
                wrong = [(rel, rows, written[rel]) for rel, rows in reported if rows != written[rel]]
                if wrong:
                    raise StorageError(f"{len(wrong)} file(s) written to {definition.name} do not hold the rows "
                                       f"reported (file, rows, reported), e.g. {wrong[0]}; nothing committed")
            actions = self._add_actions(definition, footers)
            if check_where:
                for a in actions:
                    for col, allowed in check_where.items():
                        if a.partition_values.get(col) not in allowed:
                            raise ReplaceWhereError(
                                f"replace_partitions on {definition.name}: rows with {col}="
                                f"{a.partition_values.get(col)!r} are outside the partitions being replaced {allowed}"
                            )
            if not synced:  # (the files on disk before the log names them; see casemix.storage.durable)
                sync_files(self._fs, [f["path"] for f in footers if f["rows"]], top=self._root)
            attempt = 0
            while True:
                try:
                    commit_id, read = self._commit(definition, list(extra_actions) + actions, mode, operation,
                                                   metadata, partition_filters)
                    break
                except CommitFailedError as exc:
                    if attempt < retries:
                        attempt += 1
                        log.warning("commit to %s conflicted (%s); retry %d", definition.name, exc, attempt)
                        continue
                    raise ConcurrentWriteError(
                        f"{operation} on table {definition.name} conflicted with a concurrent commit and was not "
                        f"applied: {exc}. Re-run the job."
                    ) from exc
        except BaseException:
            self._discard(definition, folder)
            raise
        version = self._version_of(definition, commit_id)
        self._sync_log(definition, version, since=read)
        return version

    def _sync_log(self, definition: TableDef, version: int, since: int) -> None:
        """Put the log on disk up to ``version`` before it is reported: the entries after ``since`` (the
        version the commit was made on; those before ours are concurrent writers', which a crash must
        not empty either), a checkpoint delta-rs wrote after our commit, ``_last_checkpoint``, and the
        folders holding them up to the warehouse (the table's own, and the warehouse's entry for it, are
        new at the first commit)."""
        if not isinstance(self._fs, pafs.LocalFileSystem):
            return
        log_dir = f"{self._table_dir(definition)}/_delta_log"
        entries = [f"{log_dir}/{v:020d}.json" for v in range(since + 1, version + 1)]
        checkpoint = re.compile(rf"{version:020d}\.checkpoint(\.\d+\.\d+)?\.parquet|_last_checkpoint")
        try:
            written = [i.path for i in self._fs.get_file_info(pafs.FileSelector(log_dir))
                       if i.type == pafs.FileType.File and checkpoint.fullmatch(i.base_name)]
            sync_files(self._fs, entries + written, top=self._root)
        except OSError as exc:
            raise StorageError(f"version {version} of {definition.name} was committed, but its log entry could not "
                               f"be put on disk: {exc}") from exc

    def create(self, table) -> int:
        definition = self.definition(table)
        if self.exists(definition):
            return self._open(definition).version()
        empty = self.spark.createDataFrame([], definition.schema)
        return self._write(definition, empty, mode="append", operation="CREATE", metadata=None)

    def append(self, table, df, *, metadata=None) -> int:
        definition = self.definition(table)
        return self._write(definition, conform(definition, df), mode="append", operation="APPEND",
                           metadata=metadata, retries=self.commit_retries)

    def replace_partitions(self, table, df, where, *, metadata=None) -> int:
        definition = self.definition(table)
        where_s = self._check_where(definition, where)
        filters = [(col, "in", values) for col, values in where_s.items()]
        return self._write(definition, conform(definition, df), mode="overwrite", operation="REPLACE PARTITIONS",
                           metadata={**(metadata or {}), "casemix.replace_where": json.dumps(where_s, ensure_ascii=False)},
                           partition_filters=filters, check_where=where_s)

    # -- data files written by the caller (executors writing Parquet with Arrow, no Spark writer) -------
    def replace_partitions_with_files(self, table, write_files: Callable[[str], Mapping[str, int]], where, *,
                                      metadata=None, synced: bool = False) -> int:
        """Like :meth:`replace_partitions`, but the rows are Parquet files that ``write_files(folder_uri)``
        writes under ``folder_uri`` (a new, empty folder inside the table), each file in the
        sub-folder :func:`partition_dir` names for its partition values and holding every column of the
        table, partition columns included; it returns the files to commit, as paths relative to
        ``folder_uri`` with the rows each holds (other files found there, e.g. from a failed task
        attempt, are deleted). A file whose footer holds other rows than reported stops the commit.
        The footers are checked and committed exactly as for a Spark write: one new version; nothing
        committed, and the folder deleted, if anything fails before the commit. With ``synced``, the
        writer has already put the files, and every folder above them up to the table's, on disk
        (as :class:`~casemix.storage.durable.FileSettler` does), and the store does not sync them again."""
        definition = self.definition(table)
        where_s = self._check_where(definition, where)
        filters = [(col, "in", values) for col, values in where_s.items()]
        return self._commit_written(
            definition, lambda folder: write_files(f"{self._uri(definition)}/{folder}"), mode="overwrite",
            operation="REPLACE PARTITIONS",
            metadata={**(metadata or {}), "casemix.replace_where": json.dumps(where_s, ensure_ascii=False)},
            partition_filters=filters, check_where=where_s, synced=synced)

    def data_files(self, table, *, version: int | None = None,
                   where: Mapping[str, Sequence[Any]] | None = None) -> list[DataFile]:
        """The data files of a snapshot (current, or ``version``), optionally only those whose partition
        values are in ``where`` (partition column -> allowed values), for readers outside Spark."""
        definition = self.definition(table)
        dt = self._open(definition, version)
        allowed = self._check_where(definition, where) if where else {}
        return [DataFile(f["abs"], dict(f["partition_values"]), None if f["rows"] is None else int(f["rows"]))
                for f in self._snapshot_files(dt)
                if all(f["partition_values"].get(col) in values for col, values in allowed.items())]

    def merge(self, table, df, *, metadata=None) -> MergeResult:
        definition = self.definition(table)
        if not definition.merge_keys:
            raise StorageError(f"table {definition.name} has no merge keys; use append or replace_partitions")
        keys = list(definition.merge_keys)
        source, source_dup = latest_per_key(definition, conform(definition, df))

        if not self.exists(definition):
            version = self._write(definition, source, mode="append", operation="MERGE", metadata=metadata)
            return MergeResult(version, inserted=self._count_version(definition, version), updated=0,
                               superseded=source_dup, unchanged=0, files_rewritten=0)

        dt = self._open(definition)
        read_version = dt.version()
        snapshot = self._snapshot_files(dt)
        in_file = self._written_by_us(dt)
        # 1. keys (and versions) only: which source rows are new, which lose to a later version,
        #    which replace a target row, and in which files those target rows are
        target_keys = self._read_files(definition, snapshot, in_file, with_file=True)
        classified = classify_merge(definition, source, target_keys).cache()
        try:
            candidates = sorted(
                r[0] for r in classified.filter("_outcome = 'update'").select(_FILE_COL).distinct().collect()
            )
            # 2. only the files holding candidates are read in full: identical rows are left alone
            if candidates and definition.content_columns:
                touched_target = self._read_files(
                    definition, [f for f in snapshot if f["abs"] in candidates], in_file, with_file=True)
                classified_final = refine_unchanged(definition, source, touched_target, classified).cache()
                classified.unpersist()
                classified = classified_final
            counts = {r["_outcome"]: r["n"] for r in classified.groupBy("_outcome").agg(F.count("*").alias("n")).collect()}
            touched = sorted(r[0] for r in classified.filter("_outcome = 'update'").select(_FILE_COL).distinct().collect())
            skipped = classified.filter("_outcome IN ('superseded', 'unchanged')").select(*keys)
            winners = source.join(skipped, keys, "left_anti")
            replaced = classified.filter("_outcome = 'update'").select(*keys)
            kept = (self._read_files(definition, [f for f in snapshot if f["abs"] in touched], in_file)
                    .join(replaced, keys, "left_anti")) if touched else None
            rows = winners.unionByName(kept) if kept is not None else winners
            now = int(time.time() * 1000)
            removes = [RemoveAction(f["path"], True, now, f["size"], dict(f["partition_values"]))
                       for f in snapshot if f["abs"] in touched]
            summary = {k: counts.get(k, 0) for k in ("insert", "update", "unchanged", "superseded")}
            meta = {**(metadata or {}), "casemix.read_version": str(read_version), "casemix.merge": json.dumps(summary)}
            version = self._write(definition, rows, mode="append", operation="MERGE", metadata=meta,
                                  extra_actions=removes)
        finally:
            classified.unpersist()
        return MergeResult(version, inserted=summary["insert"], updated=summary["update"],
                           superseded=summary["superseded"] + source_dup, unchanged=summary["unchanged"],
                           files_rewritten=len(removes))

    def _count_version(self, definition: TableDef, version: int) -> int:
        dt = self._open(definition, version)
        return sum(int(n) for n in pa.table(dt.get_add_actions(flatten=True)).column("num_records").to_pylist() if n)

    # -- reading --------------------------------------------------------------------------------------
    def _snapshot_files(self, dt: DeltaTable) -> list[dict[str, Any]]:
        actions = pa.table(dt.get_add_actions(flatten=True)).to_pylist()
        uris = dt.file_uris()
        by_rel = {}
        for a in actions:
            pv = {k[len("partition."):]: v for k, v in a.items() if k.startswith("partition.")}
            by_rel[a["path"]] = {"path": a["path"], "size": a["size_bytes"], "partition_values": pv,
                                 "rows": a.get("num_records")}
        out = []
        root = dt.table_uri.rstrip("/")
        for uri in uris:
            plain = _plain_path(uri)
            rel = plain[len(_plain_path(root)) + 1:] if plain.startswith(_plain_path(root)) else plain
            entry = by_rel.get(rel) or next((v for k, v in by_rel.items() if plain.endswith("/" + k)), None)
            if entry is None:
                raise StorageError(f"file {uri} of {dt.table_uri} has no add action")
            out.append({**entry, "abs": plain, "uri": uri})
        return out

    def _written_by_us(self, dt: DeltaTable) -> bool:
        """True when every commit that added files came from this engine (partition columns in files)."""
        history = dt.history()
        if not history or history[-1].get("version") != 0:
            return False  # expired log entries: cannot tell
        return all(h.get(_META_WRITER) == WRITER for h in history if h.get("operation") != "VACUUM START"
                   and not str(h.get("operation", "")).startswith(("VACUUM", "SET TBLPROPERTIES")))

    def _read_files(self, definition: TableDef, files: list[dict[str, Any]], in_file: bool,
                    with_file: bool = False) -> DataFrame:
        if not files:
            df = self.spark.createDataFrame([], definition.schema)
            return df.withColumn(_FILE_COL, F.lit(None).cast("string")) if with_file else df
        reader = self.spark.read.option("mergeSchema", "false")
        file_col = [F.regexp_replace(F.col("_metadata.file_path"), r"^file:(//)?", "").alias(_FILE_COL)] if with_file else []
        if in_file or not definition.partition_by:
            df = reader.schema(definition.schema).parquet(*[f["uri"] for f in files])
            return df.select(*definition.columns, *file_col)
        # files written by another engine do not hold their partition columns: add them per partition
        data_schema = definition.schema.__class__([definition.field(c) for c in definition.data_columns])
        groups: dict[tuple, list[str]] = {}
        for f in files:
            groups.setdefault(tuple(f["partition_values"].get(c) for c in definition.partition_by), []).append(f["uri"])
        parts = []
        for values, uris in groups.items():
            part = reader.schema(data_schema).parquet(*uris)
            for col, value in zip(definition.partition_by, values):
                part = part.withColumn(col, F.lit(value).cast(definition.field(col).dataType))
            parts.append(part.select(*definition.columns, *file_col))
        out = parts[0]
        for part in parts[1:]:
            out = out.unionByName(part)
        return out

    def _read_snapshot(self, definition: TableDef, dt: DeltaTable, with_file: bool = False) -> DataFrame:
        return self._read_files(definition, self._snapshot_files(dt), self._written_by_us(dt), with_file)

    def read(self, table, *, version=None, timestamp=None) -> DataFrame:
        definition = self.definition(table)
        if not self.exists(definition):
            raise TableNotFoundError(f"table {definition.name} does not exist at {self._uri(definition)}")
        dt = self._open(definition, version)
        if timestamp is not None:
            if isinstance(timestamp, str):
                timestamp = datetime.fromisoformat(timestamp)
            if timestamp.tzinfo is None:
                timestamp = timestamp.replace(tzinfo=timezone.utc)
            dt.load_as_version(timestamp)
        return self._read_snapshot(definition, dt)

    def history(self, table) -> list[dict[str, Any]]:
        definition = self.definition(table)
        if not self.exists(definition):
            return []
        return [
            {**{k: v for k, v in h.items() if k.startswith("casemix.")},
             "version": h.get("version"), "timestamp": datetime.fromtimestamp(h["timestamp"] / 1000, timezone.utc),
             "operation": h.get("casemix.operation") or h.get("operation")}
            for h in self._open(definition).history()
        ]

    def changes(self, table, start_version, end_version=None) -> DataFrame:
        definition = self.definition(table)
        if not definition.change_feed:
            raise StorageError(f"table {definition.name} does not keep a change data feed")
        dt = self._open(definition)
        end = dt.version() if end_version is None else end_version
        in_file = self._written_by_us(dt)
        root = self._uri(definition)
        parts = []
        for v in range(start_version, end + 1):
            log_file = f"{self._table_dir(definition)}/_delta_log/{v:020d}.json"
            with self._fs.open_input_stream(log_file) as handle:
                lines = [json.loads(x) for x in handle.read().decode("utf-8").splitlines() if x.strip()]
            stamp = next((x["commitInfo"].get("timestamp") for x in lines if "commitInfo" in x), None)
            ts = datetime.fromtimestamp((stamp or 0) / 1000, timezone.utc)
            cdc = [x["cdc"] for x in lines if "cdc" in x]
            if cdc:  # written by an engine that records change files (delta-spark): use them
                files = [{"uri": f"{root}/{c['path']}", "partition_values": c.get("partitionValues", {})} for c in cdc]
                df = self.spark.read.parquet(*[f["uri"] for f in files])
                parts.append(df.withColumn("_commit_version", F.lit(v)).withColumn("_commit_timestamp", F.lit(ts)))
                continue
            for kind, change in (("add", "insert"), ("remove", "delete")):
                files = [{"uri": f"{root}/{x[kind]['path']}", "partition_values": x[kind].get("partitionValues") or {}}
                         for x in lines if kind in x and x[kind].get("dataChange", True)]
                if files:
                    df = self._read_files(definition, files, in_file)
                    parts.append(df.withColumn("_change_type", F.lit(change))
                                 .withColumn("_commit_version", F.lit(v).cast("long"))
                                 .withColumn("_commit_timestamp", F.lit(ts)))
        if not parts:
            empty = self.spark.createDataFrame([], definition.schema)
            return (empty.withColumn("_change_type", F.lit(None).cast("string"))
                    .withColumn("_commit_version", F.lit(None).cast("long"))
                    .withColumn("_commit_timestamp", F.lit(None).cast("timestamp")))
        out = parts[0]
        for p in parts[1:]:
            out = out.unionByName(p, allowMissingColumns=True)
        return out
