"""Storage: the catalogue's Delta tables behind one small interface, with two engines.

``open_store(spark, settings)`` returns the engine the configuration asks for:
``storage.engine: auto`` picks delta-spark when its JVM classes are on the session's classpath
and delta-rs otherwise (the embedded default; see design.md for why there are two).
"""
from __future__ import annotations

from pyspark.sql import SparkSession

from casemix.config import Settings
from casemix.storage.base import (
    ConcurrentWriteError,
    DeltaStore,
    MergeResult,
    ReplaceWhereError,
    SchemaMismatchError,
    StorageError,
    TableNotFoundError,
    conform,
)

__all__ = [
    "open_store",
    "choose_engine",
    "DeltaStore",
    "MergeResult",
    "StorageError",
    "SchemaMismatchError",
    "ConcurrentWriteError",
    "ReplaceWhereError",
    "TableNotFoundError",
    "conform",
]


def choose_engine(spark: SparkSession, configured: str) -> str:
    from casemix.spark import delta_spark_available

    if configured == "auto":
        return "delta-spark" if delta_spark_available(spark) else "delta-rs"
    if configured == "delta-spark" and not delta_spark_available(spark):
        raise StorageError(
            "storage.engine is delta-spark but the Delta jars are not on the classpath: start Spark with "
            "--packages io.delta:delta-spark_2.13:<version> (see conf/cluster.yaml) or set storage.engine: delta-rs"
        )
    return configured


def open_store(spark: SparkSession, settings: Settings, warehouse: str | None = None) -> DeltaStore:
    """The store for this configuration (``warehouse`` overrides the configured root, e.g. in tests)."""
    root = warehouse or settings.warehouse_path
    engine = choose_engine(spark, settings.storage.engine)
    if engine == "delta-spark":
        from casemix.storage.deltaspark import DeltaSparkStore

        return DeltaSparkStore(spark, root)
    from casemix.storage.deltars import DeltaRsStore

    return DeltaRsStore(spark, root, commit_retries=settings.storage.commit_retries)
