"""The delta-rs engine: Spark writes the files, delta-rs commits once per write; real tables in temp folders."""
from __future__ import annotations

import os
import sys
import threading
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
from deltalake import DeltaTable
from pyspark.sql import functions as F

from casemix.storage import (
    ConcurrentWriteError,
    ReplaceWhereError,
    SchemaMismatchError,
    StorageError,
    TableNotFoundError,
)
from casemix.storage.deltars import DeltaRsStore
from casemix.tables import CATALOGUE, MONEY, TableDef, _schema, S, I, L, D, T

EVENTS = TableDef(
    name="events",
    description="test table",
    schema=_schema(
        ("id", S, False), ("ver", I, False), ("region", S, False), ("month", S, False),
        ("amount", MONEY), ("day", D), ("at", T), ("codes", CATALOGUE["claims"].field("procedures").dataType, False),
        ("n", L),
    ),
    partition_by=("region", "month"),
    merge_keys=("id",),
    version_column="ver",
    change_feed=True,
)

AT = datetime(2024, 3, 1, 8, 30, tzinfo=timezone.utc)


def row(id, ver, region, month, amount="1.00", n=1, codes=("A",)):
    return (id, ver, region, month, Decimal(amount), date(2024, 3, 1), AT, list(codes), n)


def rows_of(df):
    return sorted(tuple(r) for r in df.select(*EVENTS.columns).collect())


def frame(spark, rows):
    return spark.createDataFrame(rows, EVENTS.schema)


def test_round_trip_keeps_exact_content_and_types(spark, store):
    data = [
        row("a", 1, "R01", "2024-01", "12.34", 7, ("36.1001", "88.5500")),
        row("b", 1, "R01", "2024-02", "0.01", None, ()),
        row("c", 1, "昆明市", "2024-01", "99999999.99", 3),
    ]
    store.append(EVENTS, frame(spark, data))
    back = store.read(EVENTS)
    assert [(f.name, f.dataType.simpleString()) for f in back.schema] == [
        (f.name, f.dataType.simpleString()) for f in EVENTS.schema]
    assert rows_of(back) == sorted(tuple(r) for r in frame(spark, data).collect())
    # a partition value with characters that need escaping in paths is stored under a safe folder name
    files = DeltaTable(store.location(EVENTS)).file_uris()
    assert all(uri.isascii() for uri in files)


def test_each_write_makes_exactly_one_new_version(spark, store):
    assert store.version(EVENTS) is None
    assert store.append(EVENTS, frame(spark, [row("a", 1, "R01", "2024-01"), row("b", 1, "R02", "2024-01")])) == 0
    assert store.replace_partitions(EVENTS, frame(spark, [row("c", 1, "R01", "2024-01")]), {"region": ["R01"]}) == 1
    assert store.merge(EVENTS, frame(spark, [row("b", 2, "R02", "2024-01")])).version == 2
    assert store.version(EVENTS) == 2
    assert [h["version"] for h in store.history(EVENTS)] == [2, 1, 0]
    assert [h["operation"] for h in store.history(EVENTS)] == ["MERGE", "REPLACE PARTITIONS", "APPEND"]


def test_time_travel_by_version_and_timestamp_returns_earlier_content(spark, store):
    store.append(EVENTS, frame(spark, [row("a", 1, "R01", "2024-01", "1.00")]))
    first_commit = store.history(EVENTS)[0]["timestamp"]
    store.replace_partitions(EVENTS, frame(spark, [row("a", 1, "R01", "2024-01", "2.00")]), {"region": ["R01"]})
    assert [r.amount for r in store.read(EVENTS).collect()] == [Decimal("2.00")]
    assert [r.amount for r in store.read(EVENTS, version=0).collect()] == [Decimal("1.00")]
    assert [r.amount for r in store.read(EVENTS, timestamp=first_commit).collect()] == [Decimal("1.00")]
    with pytest.raises(TableNotFoundError):
        store.read(EVENTS, version=7)


def test_replace_where_leaves_other_partitions_untouched(spark, store):
    store.append(EVENTS, frame(spark, [
        row("a", 1, "R01", "2024-01"), row("b", 1, "R01", "2024-02"), row("c", 1, "R02", "2024-01"),
    ]))
    untouched_files = {
        uri for uri in DeltaTable(store.location(EVENTS)).file_uris() if "p_month=2024-01" not in uri
    }
    store.replace_partitions(EVENTS, frame(spark, [row("d", 1, "R01", "2024-01"), row("e", 1, "R02", "2024-01")]),
                             {"month": ["2024-01"]})
    assert [r.id for r in store.read(EVENTS).orderBy("id").collect()] == ["b", "d", "e"]
    after = set(DeltaTable(store.location(EVENTS)).file_uris())
    assert untouched_files <= after  # the 2024-02 file is the very same file, not a rewrite


def test_replace_where_with_rows_outside_the_partitions_commits_nothing(spark, store):
    store.append(EVENTS, frame(spark, [row("a", 1, "R01", "2024-01")]))
    with pytest.raises(ReplaceWhereError, match="outside the partitions"):
        store.replace_partitions(EVENTS, frame(spark, [row("x", 1, "R09", "2024-01")]), {"region": ["R01"]})
    assert store.version(EVENTS) == 0
    with pytest.raises(ReplaceWhereError, match="partitioned by"):
        store.replace_partitions(EVENTS, frame(spark, [row("x", 1, "R01", "2024-01")]), {"id": ["x"]})


def test_replacing_a_partition_with_no_rows_empties_it(spark, store):
    store.append(EVENTS, frame(spark, [row("a", 1, "R01", "2024-01"), row("b", 1, "R02", "2024-01")]))
    store.replace_partitions(EVENTS, frame(spark, []), {"region": ["R01"]})
    assert [r.id for r in store.read(EVENTS).collect()] == ["b"]


def test_merge_replaces_corrected_rows_adds_new_ones_and_keeps_later_versions(spark, store):
    store.append(EVENTS, frame(spark, [
        row("a", 1, "R01", "2024-01", "10.00"), row("b", 3, "R01", "2024-01", "20.00"), row("c", 1, "R02", "2024-02", "30.00"),
    ]))
    result = store.merge(EVENTS, frame(spark, [
        row("a", 2, "R01", "2024-02", "11.00"),  # corrected, and moved to another month
        row("b", 2, "R01", "2024-01", "19.00"),  # older than the stored version 3: superseded
        row("d", 1, "R02", "2024-02", "40.00"),  # new
        row("d", 2, "R02", "2024-02", "41.00"),  # same key twice in the source: version 2 wins
    ]))
    assert (result.inserted, result.updated, result.superseded) == (1, 1, 2)
    got = {r.id: (r.ver, r.month, r.amount) for r in store.read(EVENTS).collect()}
    assert got == {
        "a": (2, "2024-02", Decimal("11.00")),
        "b": (3, "2024-01", Decimal("20.00")),
        "c": (1, "2024-02", Decimal("30.00")),
        "d": (2, "2024-02", Decimal("41.00")),
    }


def test_merge_of_the_same_rows_twice_is_idempotent(spark, store):
    data = frame(spark, [row("a", 1, "R01", "2024-01"), row("b", 1, "R02", "2024-01")])
    store.merge(EVENTS, data)
    first = rows_of(store.read(EVENTS))
    result = store.merge(EVENTS, data)
    assert (result.inserted, result.updated, result.superseded) == (0, 2, 0)
    assert rows_of(store.read(EVENTS)) == first


def test_merge_leaves_identical_rows_alone_when_only_audit_columns_differ(spark, store):
    from dataclasses import replace

    audited = replace(EVENTS, name="audited", audit_columns=("at",))
    store.merge(audited, frame(spark, [row("a", 1, "R01", "2024-01"), row("b", 1, "R02", "2024-01", "2.00")]))
    files_before = set(DeltaTable(store.location(audited)).file_uris())
    later = frame(spark, [row("a", 1, "R01", "2024-01"), row("b", 1, "R02", "2024-01", "2.00")]) \
        .withColumn("at", F.lit(datetime(2025, 1, 1, tzinfo=timezone.utc)))
    result = store.merge(audited, later)
    assert (result.inserted, result.updated, result.unchanged, result.superseded) == (0, 0, 2, 0)
    assert result.version == 1 and result.files_rewritten == 0
    assert set(DeltaTable(store.location(audited)).file_uris()) == files_before
    assert {r.at for r in store.read(audited).collect()} == {AT.replace(tzinfo=None)}  # collected in UTC
    # a real change with the same version is an update
    changed = frame(spark, [row("b", 1, "R02", "2024-01", "2.50")])
    result = store.merge(audited, changed)
    assert (result.updated, result.unchanged) == (1, 0)
    assert {r.id: r.amount for r in store.read(audited).collect()} == {"a": Decimal("1.00"), "b": Decimal("2.50")}


def test_change_feed_shows_inserts_and_deletes_per_version(spark, store):
    store.append(EVENTS, frame(spark, [row("a", 1, "R01", "2024-01"), row("b", 1, "R02", "2024-01")]))
    store.replace_partitions(EVENTS, frame(spark, [row("c", 1, "R01", "2024-01")]), {"region": ["R01"]})
    changes = store.changes(EVENTS, 0).select("id", "_change_type", "_commit_version").collect()
    assert sorted(tuple(r) for r in changes) == [
        ("a", "delete", 1), ("a", "insert", 0), ("b", "insert", 0), ("c", "insert", 1),
    ]
    only_v1 = store.changes(EVENTS, 1, 1).select("id", "_change_type").collect()
    assert sorted(tuple(r) for r in only_v1) == [("a", "delete"), ("c", "insert")]
    # delta-rs's own change-feed reader agrees
    cdf = DeltaTable(store.location(EVENTS)).load_cdf(starting_version=1).read_all()
    import pyarrow as pa

    t = pa.table(cdf).to_pandas()
    assert sorted(zip(t["id"], t["_change_type"])) == [("a", "delete"), ("c", "insert")]


def test_catalogue_tables_that_downstream_follows_have_change_feed_enabled(spark, store):
    store.create("claims")
    config = DeltaTable(store.location("claims")).metadata().configuration
    assert config.get("delta.enableChangeDataFeed") == "true"
    assert store.read("claims").count() == 0
    assert store.read("claims").columns == CATALOGUE["claims"].columns


def test_table_is_readable_by_plain_deltalake_and_pandas(spark, store):
    store.append(EVENTS, frame(spark, [row("a", 1, "R01", "2024-01", "12.34", 5, ("X", "Y"))]))
    df = DeltaTable(store.location(EVENTS)).to_pandas()
    assert len(df) == 1
    rec = df.iloc[0]
    assert (rec["id"], rec["region"], rec["month"], rec["amount"], list(rec["codes"]), rec["n"]) == (
        "a", "R01", "2024-01", Decimal("12.34"), ["X", "Y"], 5)
    # file statistics are written, so delta-rs can skip files
    import pyarrow as pa

    adds = pa.table(DeltaTable(store.location(EVENTS)).get_add_actions(flatten=True)).to_pylist()
    assert adds[0]["num_records"] == 1 and adds[0]["min.id"] == "a"
    filtered = DeltaTable(store.location(EVENTS)).to_pandas(filters=[("region", "=", "R01")])
    assert list(filtered["id"]) == ["a"]


def test_schema_mismatch_is_a_typed_error_listing_every_problem(spark, store):
    bad = frame(spark, [row("a", 1, "R01", "2024-01")]).withColumn("n", F.col("n").cast("int")).drop("day") \
        .withColumn("extra", F.lit(1))
    with pytest.raises(SchemaMismatchError) as err:
        store.append(EVENTS, bad)
    msg = str(err.value)
    assert "missing column day" in msg and "column n is int, expected bigint" in msg and "extra" in msg
    assert store.version(EVENTS) is None


def test_null_in_a_not_null_column_is_refused_before_commit(spark, store):
    df = frame(spark, [row("a", 1, "R01", "2024-01")]).withColumn("id", F.lit(None).cast("string"))
    with pytest.raises(StorageError, match="column id is NOT NULL"):
        store.append(EVENTS, df)
    assert not store.exists(EVENTS)


def _write_events_file(folder_uri, rows, *, statistics):
    """One file of EVENTS rows of partition R01/2024-01, written by pyarrow (as the file-wise grouping
    writes its files), with statistics for the ``statistics`` columns only."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from casemix.storage.deltars import partition_dir

    rel = f"{partition_dir(EVENTS, {'region': 'R01', 'month': '2024-01'})}/part-0.parquet"
    path = f"{folder_uri.removeprefix('file://')}/{rel}"
    os.makedirs(os.path.dirname(path), exist_ok=True)
    table = pa.Table.from_pylist([dict(zip(EVENTS.columns, r)) for r in rows], schema=EVENTS.arrow_schema)
    pq.write_table(table, path, write_statistics=statistics)
    return {rel: len(rows)}


def test_a_file_with_statistics_for_some_columns_only_commits_and_the_log_claims_none_for_the_others(spark, store):
    import pyarrow as pa

    rows = [row("a", 1, "R01", "2024-01"), row("b", 1, "R01", "2024-01", n=2)]
    version = store.replace_partitions_with_files(
        EVENTS, lambda uri: _write_events_file(uri, rows, statistics=["region", "month", "ver"]),
        {"month": ["2024-01"]})
    assert version == 0
    assert rows_of(store.read(EVENTS)) == rows_of(frame(spark, rows))
    [add] = pa.table(DeltaTable(store.location(EVENTS)).get_add_actions(flatten=True)).to_pylist()
    assert add.get("null_count.id") is None and add.get("min.id") is None  # no statistics for id: nothing claimed
    assert add["null_count.ver"] == 0 and (add["min.ver"], add["max.ver"]) == (1, 1)


def test_the_log_keeps_statistics_only_for_a_tables_stats_columns(spark, store):
    import dataclasses

    import pyarrow as pa

    narrow = dataclasses.replace(EVENTS, name="events_narrow", stats_columns=("ver", "day"))
    store.append(narrow, frame(spark, [row("a", 1, "R01", "2024-01"), row("b", 2, "R01", "2024-01")]))
    table = DeltaTable(store.location(narrow))
    assert table.metadata().configuration["delta.dataSkippingStatsColumns"] == "ver,day"
    [add] = pa.table(table.get_add_actions(flatten=True)).to_pylist()  # (Spark's file has statistics for all)
    assert (add["min.ver"], add["max.ver"], add["null_count.day"]) == (1, 2, 0)
    assert add.get("min.id") is None and add.get("null_count.amount") is None
    with pytest.raises(ValueError, match="stats column 'region' is a partition column"):
        dataclasses.replace(EVENTS, stats_columns=("region",))
    with pytest.raises(ValueError, match="stats column 'codes'"):
        dataclasses.replace(EVENTS, stats_columns=("codes",))
    with pytest.raises(ValueError, match="twice"):
        dataclasses.replace(EVENTS, stats_columns=("ver", "ver"))


class _BarrierStore(DeltaRsStore):
    """Holds each writer just before its commit until both are there, so the commits really race."""

    barrier: threading.Barrier

    def _commit(self, *args, **kwargs):
        self.barrier.wait(timeout=120)
        return super()._commit(*args, **kwargs)


def _race(spark, tmp_path, write_a, write_b):
    racer = _BarrierStore(spark, str(tmp_path / "warehouse"), commit_retries=3)
    outcomes = {}

    def go(name, fn):
        try:
            outcomes[name] = fn(racer)
        except Exception as exc:  # noqa: BLE001 - the outcome is what the test checks
            outcomes[name] = exc

    racer.barrier = threading.Barrier(2)
    threads = [threading.Thread(target=go, args=("a", write_a)), threading.Thread(target=go, args=("b", write_b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    return outcomes


def test_two_concurrent_replacements_of_one_partition_never_corrupt_the_table(spark, store, tmp_path):
    store.append(EVENTS, frame(spark, [row("a", 1, "R01", "2024-01"), row("z", 1, "R02", "2024-01")]))
    outcomes = _race(
        spark, tmp_path,
        lambda s: s.replace_partitions(EVENTS, frame(spark, [row("b", 1, "R01", "2024-01")]), {"region": ["R01"]}),
        lambda s: s.replace_partitions(EVENTS, frame(spark, [row("c", 1, "R01", "2024-01")]), {"region": ["R01"]}),
    )
    failed = [k for k, v in outcomes.items() if isinstance(v, Exception)]
    assert len(failed) == 1 and isinstance(outcomes[failed[0]], ConcurrentWriteError)
    winner = {"a": "b", "b": "c"}[next(k for k in outcomes if k not in failed)]
    assert sorted(r.id for r in store.read(EVENTS).collect()) == sorted([winner, "z"])
    assert store.version(EVENTS) == 1
    # the loser's staged files were removed and the table reads cleanly with plain delta-rs
    assert sorted(DeltaTable(store.location(EVENTS)).to_pandas()["id"]) == sorted([winner, "z"])


def test_two_concurrent_appends_both_land(spark, store, tmp_path):
    store.append(EVENTS, frame(spark, [row("a", 1, "R01", "2024-01")]))
    outcomes = _race(
        spark, tmp_path,
        lambda s: s.append(EVENTS, frame(spark, [row("b", 1, "R01", "2024-01")])),
        lambda s: s.append(EVENTS, frame(spark, [row("c", 1, "R01", "2024-01")])),
    )
    assert sorted(outcomes.values()) == [1, 2]
    assert sorted(r.id for r in store.read(EVENTS).collect()) == ["a", "b", "c"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/fd")
def test_the_files_are_on_disk_before_the_commit_names_them_and_the_commit_before_its_version_is_returned(
        spark, store, tmp_path, monkeypatch):
    warehouse = tmp_path / "warehouse"
    table = warehouse / EVENTS.name
    entry = table / "_delta_log" / f"{0:020d}.json"
    calls = []  # (call, path, whether the commit's log entry existed then)

    def spy(name, real):
        def call(fd, *args):
            calls.append((name, os.readlink(f"/proc/self/fd/{fd}"), entry.exists()))
            return real(fd, *args)
        return call

    monkeypatch.setattr(os, "fdatasync", spy("fdatasync", os.fdatasync))
    monkeypatch.setattr(os, "fsync", spy("fsync", os.fsync))
    assert store.append(EVENTS, frame(spark, [row("a", 1, "R01", "2024-01"), row("b", 1, "R02", "2024-01")])) == 0
    files = sorted(f.path for f in store.data_files(EVENTS))
    assert len(files) == 2
    before = [(name, path) for name, path, committed in calls if not committed]
    after = [(name, path) for name, path, committed in calls if committed]
    # before the commit: each data file, then every folder from each one's up to the warehouse
    # (partition folders, the write's folder, the table's, the warehouse's: all new)
    assert sorted(before[:2]) == [("fdatasync", f) for f in files]
    folders = {str(warehouse), str(table)} | {os.path.dirname(f) for f in files}
    folders |= {os.path.dirname(os.path.dirname(f)) for f in files} | {os.path.dirname(os.path.dirname(os.path.dirname(f))) for f in files}
    assert len(folders) == 7 and before[2:] == [("fsync", f) for f in sorted(folders, reverse=True)]
    # after it: the log entry, then its folder and those above it, before the version is returned
    assert after == [("fdatasync", str(entry)), ("fsync", str(table / "_delta_log")), ("fsync", str(table)),
                     ("fsync", str(warehouse))]


@pytest.mark.skipif(not hasattr(os, "fdatasync"), reason="no fdatasync here (the store uses fsync)")
def test_a_file_that_cannot_be_put_on_disk_is_not_committed(spark, store, monkeypatch):
    import errno

    store.append(EVENTS, frame(spark, [row("a", 1, "R01", "2024-01")]))

    def broken(fd):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fdatasync", broken)
    with pytest.raises(OSError, match="Input/output error"):
        store.append(EVENTS, frame(spark, [row("b", 1, "R01", "2024-01")]))
    assert store.version(EVENTS) == 0 and rows_of(store.read(EVENTS)) == rows_of(frame(spark, [row("a", 1, "R01", "2024-01")]))
    assert len([d for d in os.listdir(store.location(EVENTS)) if d.startswith("w-")]) == 1  # (the failed write's folder is gone)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/fd")
def test_a_commit_whose_log_entry_cannot_be_put_on_disk_is_reported_as_such(spark, store, monkeypatch):
    import errno

    real = os.fdatasync

    def broken_log(fd):
        if "_delta_log" in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.EIO, "Input/output error")
        return real(fd)

    monkeypatch.setattr(os, "fdatasync", broken_log)
    with pytest.raises(StorageError, match="version 0 of events was committed, but its log entry could not be put on disk"):
        store.append(EVENTS, frame(spark, [row("a", 1, "R01", "2024-01")]))
    assert store.version(EVENTS) == 0  # (committed: the error says so, nothing is taken back)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/fd")
def test_files_a_writer_hands_over_are_synced_by_the_store_unless_the_writer_says_it_did(spark, store, sync_calls):
    rows = [row("a", 1, "R01", "2024-01")]
    for version, writer_synced in ((0, False), (1, True)):
        sync_calls.clear()
        assert store.replace_partitions_with_files(
            EVENTS, lambda uri: _write_events_file(uri, rows, statistics=True), {"month": ["2024-01"]},
            synced=writer_synced) == version
        [data] = [f.path for f in store.data_files(EVENTS)]
        log = f"{store.location(EVENTS)}/_delta_log/{version:020d}.json"
        synced = [path for name, path, *_ in sync_calls if name == "fdatasync"]
        assert synced == ([log] if writer_synced else [data, log])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/fd")
def test_a_checkpoint_written_after_the_commit_and_entries_of_concurrent_writers_are_synced_too(
        spark, store, monkeypatch, sync_calls):
    import dataclasses

    checkpointed = dataclasses.replace(EVENTS, name="events_cp", properties={"delta.checkpointInterval": "3"})
    for i in range(2):
        store.append(checkpointed, frame(spark, [row(f"a{i}", 1, "R01", "2024-01")]))
    sync_calls.clear()
    # version 2 (delta-rs checkpoints after it: (2 + 1) % 3 == 0) is made on version 0, as if another writer
    # had committed version 1 meanwhile
    opened = DeltaRsStore._open
    monkeypatch.setattr(DeltaRsStore, "_open", lambda self, d, v=None: opened(self, d, 0 if v is None else v))
    assert store.append(checkpointed, frame(spark, [row("b", 1, "R01", "2024-01")])) == 2
    log = sorted(os.listdir(f"{store.location(checkpointed)}/_delta_log"))
    assert f"{2:020d}.checkpoint.parquet" in log and "_last_checkpoint" in log
    synced = [os.path.basename(path) for name, path, *_ in sync_calls if name == "fdatasync"]
    assert sorted(n for n in synced if not n.endswith(".parquet") or "checkpoint" in n) == sorted(
        [f"{1:020d}.json", f"{2:020d}.json", f"{2:020d}.checkpoint.parquet", "_last_checkpoint"])
