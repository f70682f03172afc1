"""delta-spark engine (cluster): the same operations through ``format("delta")`` and ``DeltaTable``.

Needs the Delta jars on the classpath (``--packages io.delta:delta-spark_2.13:<version>`` or
pre-installed) and the Delta session extension (see ``conf/cluster.yaml``).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from casemix.storage.base import DeltaStore, MergeResult, StorageError, TableNotFoundError, conform, latest_per_key
from casemix.tables import TableDef


class DeltaSparkStore(DeltaStore):
    engine = "delta-spark"

    def _table(self, definition: TableDef):
        from delta.tables import DeltaTable

        return DeltaTable.forPath(self.spark, self.location(definition))

    def exists(self, table) -> bool:
        from delta.tables import DeltaTable

        return DeltaTable.isDeltaTable(self.spark, self.location(self.definition(table)))

    def version(self, table) -> Optional[int]:
        definition = self.definition(table)
        if not self.exists(definition):
            return None
        return int(self._table(definition).history(1).select("version").first()[0])

    def _writer(self, definition: TableDef, df: DataFrame, mode: str, metadata):
        w = df.write.format("delta").mode(mode)
        if definition.partition_by:
            w = w.partitionBy(*definition.partition_by)
        if metadata:
            import json

            w = w.option("userMetadata", json.dumps(dict(metadata), ensure_ascii=False))
        return w

    def _ensure(self, definition: TableDef) -> None:
        if self.exists(definition):
            return
        from delta.tables import DeltaTable

        builder = DeltaTable.createIfNotExists(self.spark).location(self.location(definition)).addColumns(definition.schema)
        if definition.partition_by:
            builder = builder.partitionedBy(*definition.partition_by)
        for key, value in definition.table_properties.items():
            builder = builder.property(key, value)
        builder.comment(definition.description).execute()

    def create(self, table) -> int:
        definition = self.definition(table)
        self._ensure(definition)
        return self.version(definition)

    def append(self, table, df, *, metadata=None) -> int:
        definition = self.definition(table)
        self._ensure(definition)
        self._writer(definition, conform(definition, df), "append", metadata).save(self.location(definition))
        return self.version(definition)

    def replace_partitions(self, table, df, where, *, metadata=None) -> int:
        definition = self.definition(table)
        where_s = self._check_where(definition, where)
        self._ensure(definition)
        predicate = " AND ".join(
            f"CAST({col} AS STRING) IN ({', '.join(repr(v) for v in values)})" for col, values in where_s.items()
        )
        (self._writer(definition, conform(definition, df), "overwrite", metadata)
         .option("replaceWhere", predicate).save(self.location(definition)))
        return self.version(definition)

    def merge(self, table, df, *, metadata=None) -> MergeResult:
        definition = self.definition(table)
        if not definition.merge_keys:
            raise StorageError(f"table {definition.name} has no merge keys")
        self._ensure(definition)
        keys, vcol = list(definition.merge_keys), definition.version_column
        source, source_dup = latest_per_key(definition, conform(definition, df))
        cond = " AND ".join(f"t.{k} = s.{k}" for k in keys)
        update_cond = f"s.{vcol} >= t.{vcol}" if vcol else None
        if definition.content_columns:  # identical rows (apart from audit columns) are left alone
            differs = " OR ".join(f"NOT (s.`{c}` <=> t.`{c}`)" for c in definition.content_columns)
            update_cond = f"({update_cond}) AND ({differs})" if update_cond else differs
        if metadata:
            import json

            self.spark.conf.set("spark.databricks.delta.commitInfo.userMetadata", json.dumps(dict(metadata)))
        (self._table(definition).alias("t").merge(source.alias("s"), cond)
         .whenMatchedUpdateAll(condition=update_cond).whenNotMatchedInsertAll().execute())
        self.spark.conf.unset("spark.databricks.delta.commitInfo.userMetadata")
        last = self._table(definition).history(1).first()
        m = last["operationMetrics"] or {}
        inserted, updated = int(m.get("numTargetRowsInserted", 0)), int(m.get("numTargetRowsUpdated", 0))
        source_rows = int(m.get("numSourceRows", inserted + updated))
        # rows matched but not updated are either older versions (superseded) or identical (unchanged)
        matched_not_updated = source_rows - inserted - updated
        older = 0
        if vcol and matched_not_updated:
            older = (source.alias("s").join(self.read(definition, version=int(last["version"]) - 1).alias("t"), keys)
                     .filter(f"s.{vcol} < t.{vcol}").count())
        return MergeResult(int(last["version"]), inserted, updated, superseded=source_dup + older,
                           unchanged=matched_not_updated - older,
                           files_rewritten=int(m.get("numTargetFilesRemoved", 0)))

    def read(self, table, *, version=None, timestamp=None) -> DataFrame:
        definition = self.definition(table)
        if not self.exists(definition):
            raise TableNotFoundError(f"table {definition.name} does not exist at {self.location(definition)}")
        reader = self.spark.read.format("delta")
        if version is not None:
            reader = reader.option("versionAsOf", version)
        if timestamp is not None:
            reader = reader.option("timestampAsOf", str(timestamp))
        return reader.load(self.location(definition)).select(*definition.columns)

    def history(self, table) -> list[dict[str, Any]]:
        import json

        definition = self.definition(table)
        if not self.exists(definition):
            return []
        out = []
        for row in self._table(definition).history().collect():
            meta = json.loads(row["userMetadata"]) if row["userMetadata"] else {}
            out.append({**meta, "version": int(row["version"]), "timestamp": row["timestamp"],
                        "operation": meta.get("casemix.operation", row["operation"])})
        return out

    def changes(self, table, start_version, end_version=None) -> DataFrame:
        definition = self.definition(table)
        reader = self.spark.read.format("delta").option("readChangeFeed", "true").option("startingVersion", start_version)
        if end_version is not None:
            reader = reader.option("endingVersion", end_version)
        return reader.load(self.location(definition))
