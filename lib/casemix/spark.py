"""The one place that builds a Spark session, for every job and for the tests.

Library code never creates a session: it receives one as an argument.
"""
from __future__ import annotations

import os
import sys

from pyspark.sql import SparkSession

from casemix.config import Settings, SparkSettings

__all__ = ["build_session", "session_conf", "delta_spark_available"]

#: settings that make results reproducible and pandas UDFs fast; cluster conf may add to them
_BASE_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.execution.arrow.pyspark.fallback.enabled": "false",
    # delta-rs and downstream readers expect microsecond timestamps, not INT96
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.sources.partitionOverwriteMode": "dynamic",
    "spark.sql.ansi.enabled": "false",
}


def session_conf(settings: SparkSettings) -> dict[str, str]:
    """The Spark configuration a session gets from these settings (later keys win)."""
    conf = dict(_BASE_CONF)
    conf["spark.sql.shuffle.partitions"] = str(settings.shuffle_partitions)
    conf["spark.sql.execution.arrow.maxRecordsPerBatch"] = str(settings.arrow_batch_size)
    conf["spark.ui.enabled"] = "true" if settings.ui else "false"
    if settings.driver_memory and (settings.master or "").startswith("local"):
        conf["spark.driver.memory"] = settings.driver_memory
    conf.update(settings.conf)
    return conf


def _launched_by_spark_submit() -> bool:
    # spark-submit starts the JVM first and hands its gateway to the Python driver
    return "PYSPARK_GATEWAY_PORT" in os.environ


def build_session(settings: Settings | SparkSettings, job: str = "casemix") -> SparkSession:
    """Create (or return the running) Spark session configured from ``settings``.

    Under ``spark-submit`` the master and resources given on the command line win; locally the
    configured master (default ``local[*]``) is used. Workers use this interpreter unless
    ``PYSPARK_PYTHON`` is already set, so the virtual environment's packages are found.
    """
    spark_settings = settings.spark if isinstance(settings, Settings) else settings
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(f"{spark_settings.app_name}-{job}")
    if spark_settings.master and not _launched_by_spark_submit():
        builder = builder.master(spark_settings.master)
    for key, value in session_conf(spark_settings).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


def delta_spark_available(spark: SparkSession) -> bool:
    """True when the delta-spark JVM classes are on the session's classpath."""
    try:
        jvm = spark.sparkContext._jvm  # noqa: SLF001 - py4j is the only way to ask the JVM
        jvm.java.lang.Class.forName(
            "io.delta.tables.DeltaTable", True, jvm.Thread.currentThread().getContextClassLoader()
        )
        return True
    except Exception:  # py4j raises Py4JJavaError for ClassNotFoundException; Spark Connect has no _jvm
        return False
