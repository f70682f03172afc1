"""The storage interface both Delta engines implement, and what they share."""
from __future__ import annotations

import abc
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Mapping, Optional, Sequence

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, StructType

from casemix.tables import CATALOGUE, TableDef, table as catalogue_table

__all__ = [
    "DeltaStore",
    "MergeResult",
    "StorageError",
    "SchemaMismatchError",
    "ConcurrentWriteError",
    "ReplaceWhereError",
    "TableNotFoundError",
    "conform",
    "partition_value_string",
    "latest_per_key",
    "classify_merge",
    "refine_unchanged",
    "FILE_COLUMN",
]

#: column carrying each target row's data file during a merge
FILE_COLUMN = "_casemix_file"


class StorageError(RuntimeError):
    """Base class of the storage layer's errors."""


class SchemaMismatchError(StorageError):
    """A DataFrame does not have the columns and types its catalogue table requires."""


class ConcurrentWriteError(StorageError):
    """Another writer committed a conflicting change first; nothing of this write was committed.
    Re-run the job: it reads the new table version and writes again."""


class ReplaceWhereError(StorageError):
    """A replace-partitions write contained rows outside the partitions it was asked to replace."""


class TableNotFoundError(StorageError):
    """The table (or the requested version of it) does not exist yet."""


@dataclass(frozen=True)
class MergeResult:
    """What a merge by key did, and the table version it created. Every source row is counted once:

    - ``inserted``: new key;
    - ``updated``: replaced the table's row with the same key (equal or later version, other content);
    - ``unchanged``: same key, same version and same content (apart from the table's audit columns)
      as the table's row, which is kept as it is (so re-loading the same data changes nothing);
    - ``superseded``: lost to a later version of the same key, in the source or already in the table.
    """

    version: int
    inserted: int
    updated: int
    superseded: int
    unchanged: int = 0
    files_rewritten: int = 0

    @property
    def source_rows(self) -> int:
        return self.inserted + self.updated + self.unchanged + self.superseded


def _types_match(expected, actual) -> bool:
    """Same Spark type, ignoring nullability (which the catalogue, not the DataFrame, decides)."""
    if isinstance(expected, StructType) and isinstance(actual, StructType):
        return len(expected.fields) == len(actual.fields) and all(
            e.name == a.name and _types_match(e.dataType, a.dataType) for e, a in zip(expected.fields, actual.fields)
        )
    if isinstance(expected, ArrayType) and isinstance(actual, ArrayType):
        return _types_match(expected.elementType, actual.elementType)
    return expected == actual


def conform(definition: TableDef, df: DataFrame) -> DataFrame:
    """Select the table's columns in catalogue order; raise :class:`SchemaMismatchError` listing every
    missing, surplus or mistyped column (nothing is cast silently)."""
    actual = {f.name: f.dataType for f in df.schema.fields}
    problems = []
    for f in definition.schema.fields:
        if f.name not in actual:
            problems.append(f"missing column {f.name} ({f.dataType.simpleString()})")
        elif not _types_match(f.dataType, actual[f.name]):
            problems.append(
                f"column {f.name} is {actual[f.name].simpleString()}, expected {f.dataType.simpleString()}"
            )
    surplus = sorted(set(actual) - set(definition.columns))
    if surplus:
        problems.append(f"columns not in the table: {', '.join(surplus)}")
    if problems:
        raise SchemaMismatchError(
            f"cannot write to table {definition.name}: " + "; ".join(problems)
            + " (see casemix.tables for its schema)"
        )
    return df.select(*definition.columns)


def latest_per_key(definition: TableDef, source: DataFrame) -> tuple[DataFrame, int]:
    """One source row per merge key: the highest version (ties broken by a hash of the row, so the
    choice is deterministic); returns the rows and how many were dropped."""
    keys = list(definition.merge_keys)
    vcol = definition.version_column
    order = ([F.col(vcol).desc()] if vcol else []) + [F.xxhash64(*definition.columns).desc()]
    ranked = source.withColumn("_rank", F.row_number().over(Window.partitionBy(*keys).orderBy(*order)))
    dropped = ranked.filter("_rank > 1").count()
    return ranked.filter("_rank = 1").drop("_rank"), dropped


def classify_merge(definition: TableDef, source: DataFrame, target: DataFrame) -> DataFrame:
    """Per source key: ``_outcome`` insert / update / superseded and the target row's file
    (``FILE_COLUMN``), from the keys and versions only. ``target`` must carry ``FILE_COLUMN``."""
    keys = list(definition.merge_keys)
    vcol = definition.version_column
    tkeys = target.select(*keys, *([F.col(vcol).alias("_tver")] if vcol else []), FILE_COLUMN)
    skeys = source.select(*keys, *([F.col(vcol).alias("_sver")] if vcol else []))
    outcome = F.when(F.col(FILE_COLUMN).isNull(), "insert")
    if vcol:
        outcome = outcome.when(F.col("_sver") >= F.col("_tver"), "update").otherwise("superseded")
    else:
        outcome = outcome.otherwise("update")
    extra = ["_sver", "_tver"] if vcol else []
    return skeys.join(tkeys, keys, "left").withColumn("_outcome", outcome).select(*keys, *extra, FILE_COLUMN, "_outcome")


def _content_hash(definition: TableDef) -> Column:
    cols = [c for c in definition.content_columns]
    return F.sha2(F.to_json(F.struct(*cols)), 256)


def refine_unchanged(definition: TableDef, source: DataFrame, touched_target: DataFrame,
                     classified: DataFrame) -> DataFrame:
    """Turn ``update`` into ``unchanged`` where the source row equals the target row on the table's
    content columns (same version and same values)."""
    keys = list(definition.merge_keys)
    shash = source.select(*keys, _content_hash(definition).alias("_shash"))
    thash = touched_target.select(*keys, _content_hash(definition).alias("_thash"))
    same = F.col("_shash") == F.col("_thash")
    if definition.version_column:
        same = same & (F.col("_sver") == F.col("_tver"))
    refined = (classified.join(shash, keys, "left").join(thash, keys, "left")
               .withColumn("_outcome", F.when((F.col("_outcome") == "update") & same, "unchanged")
                           .otherwise(F.col("_outcome"))))
    return refined.select(*classified.columns)


def partition_value_string(value: Any) -> Optional[str]:
    """A partition value as the Delta log writes it."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


class DeltaStore(abc.ABC):
    """Delta tables of the catalogue, under one warehouse root.

    Every write is one commit, so one job run makes exactly one new version of each table it writes.
    """

    engine: str = "abstract"
    #: whether :meth:`replace_partitions_with_files` and :meth:`data_files` exist (callers writing the
    #: Parquet files themselves, see :mod:`casemix.grouping.direct`)
    accepts_data_files: bool = False

    def __init__(self, spark: SparkSession, warehouse: str, catalogue: Mapping[str, TableDef] = CATALOGUE):
        self.spark = spark
        self.warehouse = warehouse.rstrip("/")
        self.catalogue = catalogue

    # -- naming ---------------------------------------------------------------------------------
    def definition(self, table: str | TableDef) -> TableDef:
        if isinstance(table, TableDef):
            return table
        if table in self.catalogue:
            return self.catalogue[table]
        return catalogue_table(table)

    def location(self, table: str | TableDef) -> str:
        return f"{self.warehouse}/{self.definition(table).name}"

    # -- operations -----------------------------------------------------------------------------
    @abc.abstractmethod
    def exists(self, table: str | TableDef) -> bool: ...

    @abc.abstractmethod
    def version(self, table: str | TableDef) -> Optional[int]:
        """Current version, or None when the table does not exist."""

    @abc.abstractmethod
    def create(self, table: str | TableDef) -> int:
        """Create the table empty if it does not exist; return its current version."""

    @abc.abstractmethod
    def append(self, table: str | TableDef, df: DataFrame, *, metadata: Mapping[str, str] | None = None) -> int:
        """Add rows; return the new version."""

    @abc.abstractmethod
    def replace_partitions(
        self,
        table: str | TableDef,
        df: DataFrame,
        where: Mapping[str, Sequence[Any]],
        *,
        metadata: Mapping[str, str] | None = None,
    ) -> int:
        """Atomically replace every partition matching ``where`` (partition column -> allowed values,
        all columns must match) by the rows of ``df``; other partitions are untouched. Rows outside
        ``where`` raise :class:`ReplaceWhereError` and nothing is committed."""

    @abc.abstractmethod
    def merge(
        self, table: str | TableDef, df: DataFrame, *, metadata: Mapping[str, str] | None = None
    ) -> MergeResult:
        """Upsert by the table's merge keys; with a version column the latest version wins."""

    @abc.abstractmethod
    def read(
        self, table: str | TableDef, *, version: int | None = None, timestamp: datetime | str | None = None
    ) -> DataFrame:
        """The table (current, or as of a version or a timestamp) as a Spark DataFrame."""

    @abc.abstractmethod
    def history(self, table: str | TableDef) -> list[dict[str, Any]]:
        """Commits, newest first: version, timestamp, operation, and the casemix metadata of each."""

    @abc.abstractmethod
    def changes(self, table: str | TableDef, start_version: int, end_version: int | None = None) -> DataFrame:
        """Change data feed between two versions (inclusive): the table's columns plus
        ``_change_type`` (insert / delete / update_preimage / update_postimage), ``_commit_version``,
        ``_commit_timestamp``."""

    # -- shared helpers -------------------------------------------------------------------------
    def _check_where(self, definition: TableDef, where: Mapping[str, Sequence[Any]]) -> dict[str, list[str]]:
        if not where:
            raise ReplaceWhereError(f"replace_partitions on {definition.name} needs at least one partition column")
        bad = sorted(set(where) - set(definition.partition_by))
        if bad:
            raise ReplaceWhereError(
                f"table {definition.name} is partitioned by {list(definition.partition_by)}; "
                f"cannot replace by {bad}"
            )
        out = {}
        for col, values in where.items():
            if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
                values = [values]
            if not values:
                raise ReplaceWhereError(f"replace_partitions on {definition.name}: no values given for {col}")
            out[col] = [partition_value_string(v) for v in values]
        return out

    @staticmethod
    def _where_condition(where: Mapping[str, list[str]]):
        cond = F.lit(True)
        for col, values in where.items():
            cond = cond & F.col(col).cast("string").isin(values)
        return cond
