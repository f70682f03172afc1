"""The delta-spark engine (cluster). It needs the Delta jars, which this machine cannot download
(no Maven access); the tests run wherever the jars are on the classpath and are skipped otherwise."""
from __future__ import annotations

from decimal import Decimal

import pytest

from casemix.spark import delta_spark_available
from casemix.storage import StorageError, choose_engine


@pytest.fixture
def delta_spark_store(spark, tmp_path):
    if not delta_spark_available(spark):
        pytest.skip("delta-spark JVM classes are not on the classpath (start Spark with "
                    "--packages io.delta:delta-spark_2.13:<version> to run these tests)")
    from casemix.storage.deltaspark import DeltaSparkStore

    return DeltaSparkStore(spark, str(tmp_path / "warehouse"))


def test_auto_engine_falls_back_to_delta_rs_without_the_jars(spark):
    expected = "delta-spark" if delta_spark_available(spark) else "delta-rs"
    assert choose_engine(spark, "auto") == expected


def test_forcing_delta_spark_without_the_jars_says_how_to_get_them(spark):
    if delta_spark_available(spark):
        pytest.skip("the jars are present here")
    with pytest.raises(StorageError, match="--packages io.delta:delta-spark"):
        choose_engine(spark, "delta-spark")


def test_delta_spark_round_trip_replace_and_merge(spark, delta_spark_store):
    from tests.test_storage_deltars import EVENTS, frame, row

    store = delta_spark_store
    store.append(EVENTS, frame(spark, [row("a", 1, "R01", "2024-01", "1.00"), row("b", 1, "R02", "2024-01")]))
    store.replace_partitions(EVENTS, frame(spark, [row("c", 1, "R01", "2024-01")]), {"region": ["R01"]})
    result = store.merge(EVENTS, frame(spark, [row("b", 2, "R02", "2024-01", "5.00"), row("d", 1, "R03", "2024-01")]))
    assert (result.inserted, result.updated) == (1, 1)
    assert sorted((r.id, r.amount) for r in store.read(EVENTS).collect()) == [
        ("b", Decimal("5.00")), ("c", Decimal("1.00")), ("d", Decimal("1.00"))]
    assert sorted(r.id for r in store.read(EVENTS, version=1).collect()) == ["a", "b"]
