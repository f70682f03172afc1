"""The file-wise grouping path (casemix.grouping.direct): dealing partitions to tasks, choosing the
scheme per row in Arrow, files written by another Delta engine, and a count mismatch committing nothing."""
from __future__ import annotations

import dataclasses
import os
import re
import sys
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from casemix.grouping.direct import GroupingCountError, deal_partitions, replace_grouped_claims
from casemix.grouping.distributed import group_claims, scheme_column, scheme_ids
from casemix.policy import GroupingPolicy, SchemeRule
from casemix.storage.base import StorageError
from casemix.storage.deltars import DataFile, DeltaRsStore, partition_dir
from casemix.tables import CATALOGUE


def _file(region, month, rows, name):
    return DataFile(f"/t/{name}", {"region": region, "discharge_month": month}, rows)


def test_partitions_are_dealt_whole_largest_first_to_the_least_loaded_task():
    files = [_file("A", "01", 50, "a1"), _file("A", "01", 10, "a0"), _file("B", "01", 40, "b"),
             _file("C", "01", 30, "c"), _file("D", "01", 20, "d"), _file("E", "01", 5, "e")]
    dealt = deal_partitions(files, ("region", "discharge_month"), 2)
    # sizes A 60, B 40, C 30, D 20, E 5: A->t0 (60), B->t1 (40), C->t1 (70), D->t0 (80), E->t1 (75)
    assert [[k for k, _ in t] for t in dealt] == [[("A", "01"), ("D", "01")],
                                                 [("B", "01"), ("C", "01"), ("E", "01")]]
    assert [f.path for f in dealt[0][0][1]] == ["/t/a0", "/t/a1"]  # a partition's files stay together, sorted
    # more tasks than partitions: one partition each, no empty task
    assert len(deal_partitions(files[:2], ("region", "discharge_month"), 8)) == 1
    # a partition above split_rows with several files is cut into runs of files (never inside a file):
    # A -> [a0 10, a1 50] exceeds 40 -> runs [a0] (10) and [a1] (50); units A/a1 50, B 40, C 30, D 20,
    # A/a0 10, E 5 dealt to 3 tasks: a1->t0, B->t1, C->t2, D->t2 (50), A/a0->t1 (50), E->t0 (55)
    dealt = deal_partitions(files, ("region", "discharge_month"), 3, split_rows=40)
    assert [[(k[0], [f.path[3:] for f in fs]) for k, fs in t] for t in dealt] == [
        [("A", ["a1"]), ("E", ["e"])], [("A", ["a0"]), ("B", ["b"])], [("C", ["c"]), ("D", ["d"])]]


def test_default_tasks_are_a_whole_number_per_core():
    from casemix.grouping.direct import default_tasks

    assert default_tasks(10_000_000, 2, 2_000_000) == 6  # 3 per core, 1.67 M rows each (not 5 tasks)
    assert default_tasks(1_000_000, 2, 2_000_000) == 4  # at least 2 per core
    assert default_tasks(8_000_001, 2, 2_000_000) == 6
    assert default_tasks(8_000_000, 2, 2_000_000) == 4
    assert default_tasks(0, 0) == 2


def test_partition_folders_match_the_spark_writes_names(spark):
    from pyspark.sql import functions as F

    target = CATALOGUE["grouped_claims"]
    assert partition_dir(target, {"region": "530100", "discharge_month": "2024-03"}) == \
        "p_region=530100/p_discharge_month=2024-03"
    # values outside [A-Za-z0-9_.-] become h + 16 hex digits of their SHA-256, as the Spark write names them
    spark_name = spark.range(1).select(F.concat(F.lit("h"), F.substring(F.sha2(F.lit("昆明 1"), 256), 1, 16))).first()[0]
    assert partition_dir(target, {"region": "昆明 1", "discharge_month": "2024-03"}) == \
        f"p_region={spark_name}/p_discharge_month=2024-03"


def _loose(schema: pa.Schema) -> pa.Schema:
    """``schema`` with every column nullable: batches of a few columns pass the NOT NULL check."""
    return pa.schema([f.with_nullable(True) for f in schema])


def test_partition_values_come_from_the_log_not_from_the_file():
    from casemix.grouping.direct import _conform
    from casemix.grouping.distributed import passed_columns
    schema = _loose(CATALOGUE["claims"].arrow_schema)
    batch = pa.RecordBatch.from_pydict({"claim_id": ["c1", "c2"], "region": ["999999", "999999"]})
    f = DataFile("/t/x.parquet", {"region": "530100", "discharge_month": "2024-03"}, 2)
    out = _conform(batch, f, passed_columns(), schema)
    assert out.column("region").to_pylist() == ["530100", "530100"]
    assert out.column("discharge_month").to_pylist() == ["2024-03", "2024-03"]
    assert out.column("claim_id").to_pylist() == ["c1", "c2"]
    assert out.column("principal_dx").null_count == 2  # a column the file lacks: nulls


def test_text_columns_passed_as_codes_come_as_dictionaries_whatever_the_file_holds():
    from casemix.grouping.direct import CODE_COLUMNS, _conform, passed_as_codes
    from casemix.grouping.distributed import passed_columns
    coded = passed_as_codes()
    assert {"region", "hospital_id", "sex", "dept", "principal_dx", "secondary_dxs", "procedures"} <= coded
    assert set(CODE_COLUMNS) <= coded  # (the job reads the codes as dictionaries because of this)
    assert not coded & {"claim_id", "person_id", "national_id", "age_years"}
    schema = _loose(CATALOGUE["claims"].arrow_schema)
    lists = pa.array([["A", "B"], None, []], pa.list_(pa.string()))  # items nullable, as pyarrow reads Spark's
    batch = pa.RecordBatch.from_pydict({"claim_id": ["c1", "c2", "c3"], "sex": ["1", None, "2"],  # plain in the file
                                        "dept": pa.array(["A01", "A01", "B"]).dictionary_encode(),
                                        "secondary_dxs": lists, "hospital_id": [1, 2, 3]})  # (an older schema)
    f = DataFile("/t/x.parquet", {"region": "530100", "discharge_month": None}, 3)
    out = _conform(batch, f, passed_columns(), schema, coded)
    text_codes = pa.dictionary(pa.int32(), pa.string())
    for name in ("region", "discharge_month", "sex", "dept", "hospital_id"):
        assert out.column(name).type == text_codes, name
    coded_list = pa.list_(pa.field("element", text_codes, nullable=False))  # the table's item name and nullability
    assert out.column("secondary_dxs").type == coded_list and out.column("procedures").type == coded_list
    assert out.column("secondary_dxs").to_pylist() == [["A", "B"], None, []]
    assert out.column("procedures").null_count == 3 and out.column("insurance_scheme").null_count == 3  # lacking
    assert out.column("region").to_pylist() == ["530100"] * 3 and out.column("region").dictionary.to_pylist() == [
        "530100"]
    assert out.column("discharge_month").to_pylist() == [None] * 3
    assert out.column("sex").to_pylist() == ["1", None, "2"] and out.column("dept").to_pylist() == ["A01", "A01", "B"]
    assert out.column("hospital_id").to_pylist() == ["1", "2", "3"]  # numbers: as text
    assert out.column("claim_id").type == pa.string()  # not a code: as the schema says


@pytest.mark.parametrize("columns,says", [
    ({"procedures": pa.array([["A"], None], pa.list_(pa.string()))}, "procedures of claims is NOT NULL, but 1 of 2"),
    ({}, "secondary_dxs of claims is NOT NULL, but 2 of 2 rows read are null (no such column)"),
])
def test_a_claims_file_with_nulls_in_a_not_null_column_is_refused(columns, says):
    """(pyarrow would write a null list into a NOT NULL list column as [] without a word.)"""
    from casemix.grouping.direct import ClaimsFileError, _conform
    from casemix.grouping.distributed import passed_columns
    claims = CATALOGUE["claims"].arrow_schema
    full = {f.name: pa.array([{"string": "x", "int32": 1, "date32[day]": date(2024, 3, 1)}.get(str(f.type), None)] * 2,
                             f.type) for f in claims if not pa.types.is_list(f.type) and not pa.types.is_decimal(f.type)}
    full.update({f.name: pa.array([Decimal("1.00")] * 2, f.type) for f in claims if pa.types.is_decimal(f.type)})
    full["secondary_dxs"] = full["procedures"] = pa.array([["A"], []], pa.list_(pa.string()))
    if not columns:
        del full["secondary_dxs"]
    full.update(columns)
    batch = pa.RecordBatch.from_pydict(full)
    f = DataFile("/t/x.parquet", {"region": "530100", "discharge_month": "2024-03"}, 2)
    with pytest.raises(ClaimsFileError, match=re.escape(says)):
        _conform(batch, f, passed_columns(), claims)
    full.update({"secondary_dxs": pa.array([["A"], []], pa.list_(pa.string())),
                 "procedures": pa.array([["A"], []], pa.list_(pa.string()))})
    assert _conform(pa.RecordBatch.from_pydict(full), f, passed_columns(), claims).num_rows == 2


def test_scheme_per_row_in_arrow_is_the_spark_column_rule_including_ties(spark):
    policy = GroupingPolicy(default_scheme="chs-drg-1.1", rules=(
        SchemeRule(regions=("532300",), scheme="yunnan-2023", effective_from=date(2024, 1, 1)),
        SchemeRule(regions=("532300", "530100"), scheme="zhejiang-2022", effective_from=date(2024, 7, 1)),
        # same date as the rule above: the first listed wins in both implementations
        SchemeRule(regions=("530100",), scheme="yunnan-2023", effective_from=date(2024, 7, 1)),
    ))
    rows = [("532300", date(2023, 12, 31)), ("532300", date(2024, 1, 1)), ("532300", date(2024, 7, 1)),
            ("530100", date(2024, 6, 30)), ("530100", date(2024, 7, 1)), ("530600", date(2025, 1, 1)),
            (None, date(2025, 1, 1)), ("532300", None)]
    expected = ["chs-drg-1.1", "yunnan-2023", "zhejiang-2022", "chs-drg-1.1", "zhejiang-2022", "chs-drg-1.1",
                "chs-drg-1.1", "chs-drg-1.1"]
    region = pa.array([r for r, _ in rows], pa.string())
    when = pa.array([d for _, d in rows], pa.date32())
    assert scheme_ids(policy, region, when).to_pylist() == expected
    df = spark.createDataFrame(rows, "region string, discharge_date date")
    assert [r[0] for r in df.select(scheme_column(policy)).collect()] == expected


@pytest.fixture
def claims_store(spark, tmp_path, schemes_dir):
    """A claims table of five ingested records in three partitions."""
    from tests.test_grouping_job import ingest_sample_claims

    store = DeltaRsStore(spark, str(tmp_path / "warehouse"))
    ingest_sample_claims(spark, store, tmp_path, schemes_dir)
    return store


POLICY = GroupingPolicy(default_scheme="chs-drg-1.1", rules=(
    SchemeRule(regions=("532300",), scheme="yunnan-2023", effective_from=date(2024, 1, 1)),))
MONTHS = ["2023-12", "2024-03"]


def _dirs(schemes_dir: Path) -> dict[str, str]:
    return {s: str(schemes_dir / s) for s in POLICY.schemes}


def test_claims_files_written_by_another_engine_get_their_partition_columns_from_the_log(
        spark, claims_store, tmp_path, schemes_dir):
    from deltalake import write_deltalake

    # the same claims written by plain delta-rs: its files do not hold region / discharge_month
    foreign = DeltaRsStore(spark, str(tmp_path / "foreign"))
    arrow = pa.Table.from_pandas(claims_store.read("claims").toPandas(), preserve_index=False)
    write_deltalake(foreign.location("claims"), arrow.cast(CATALOGUE["claims"].arrow_schema),
                    partition_by=list(CATALOGUE["claims"].partition_by))
    files = foreign.data_files("claims")
    assert len(files) == 3 and not any({"region", "discharge_month"} & set(pq.read_schema(f.path).names) for f in files)

    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    version, results = replace_grouped_claims(spark, foreign, files, MONTHS, _dirs(schemes_dir), POLICY,
                                              run_id="r", grouped_at=at)
    assert version == 0 and sorted((r.partition, r.rows_logged, r.rows_in, r.rows_out) for r in results) == [
        (("530100", "2024-03"), 3, 3, 3), (("532300", "2023-12"), 1, 1, 1), (("532300", "2024-03"), 1, 1, 1)]
    by_files = foreign.read("grouped_claims")
    by_dataframe = group_claims(claims_store.read("claims"), _dirs(schemes_dir), POLICY, run_id="r", grouped_at=at)
    assert by_files.count() == 5
    assert by_files.exceptAll(by_dataframe).count() == 0 and by_dataframe.exceptAll(by_files).count() == 0
    got = {r.claim_id: (r.region, r.discharge_month, r.scheme_id, r.drg) for r in by_files.collect()}
    assert got == {"G1": ("530100", "2024-03", "chs-drg-1.1", "GD15"), "G2": ("530100", "2024-03", "chs-drg-1.1", "GD13"),
                   "G3": ("530100", "2024-03", "chs-drg-1.1", "0000"),
                   "Y0": ("532300", "2023-12", "chs-drg-1.1", "GD13"), "Y1": ("532300", "2024-03", "yunnan-2023", "GD11")}


def test_rows_missing_against_the_log_commit_nothing_and_leave_no_files(spark, claims_store, schemes_dir):
    files = claims_store.data_files("claims", where={"discharge_month": ["2024-03"]})
    assert sorted(f.partition_values["region"] for f in files) == ["530100", "532300"]
    # the log claims one row more than the file holds for one partition
    wrong = [dataclasses.replace(f, rows=f.rows + 1) if f.partition_values["region"] == "530100" else f for f in files]
    with pytest.raises(GroupingCountError, match="differ in 1 partition"):
        replace_grouped_claims(spark, claims_store, wrong, MONTHS, _dirs(schemes_dir), POLICY, run_id="r",
                               grouped_at=datetime.now(timezone.utc))
    assert not claims_store.exists("grouped_claims")
    table_dir = Path(claims_store.location("grouped_claims"))
    assert not table_dir.exists() or not any(p.suffix == ".parquet" for p in table_dir.rglob("*"))


def test_only_the_files_the_tasks_report_are_committed_and_strays_are_deleted(spark, claims_store, schemes_dir):
    """A failed or speculative task attempt can leave a file in the output folder: it is not committed."""
    from casemix.grouping.direct import group_claim_files

    files = claims_store.data_files("claims")
    at = datetime.now(timezone.utc)
    strays = []

    def write(folder):
        results = group_claim_files(spark, files, _dirs(schemes_dir), POLICY, folder, run_id="r", grouped_at=at)
        written = {r.file: r.rows_out for r in results if r.file}
        # a copy of one written file under another name, as a second attempt of that task would leave it
        src = Path(folder) / next(iter(written))
        stray = src.with_name("part-attempt2-00000.parquet")
        stray.write_bytes(src.read_bytes())
        strays.append(stray)
        return written

    claims_store.replace_partitions_with_files("grouped_claims", write, {"discharge_month": MONTHS})
    assert claims_store.read("grouped_claims").count() == 5  # not 5 + the stray's rows
    assert not strays[0].exists()

    with pytest.raises(StorageError, match="not there"):
        claims_store.replace_partitions_with_files("grouped_claims", lambda folder: {"p_region=x/missing.parquet": 1},
                                                   {"discharge_month": MONTHS})

    def miscounted(folder):  # a task that reports one row more than its file holds
        results = group_claim_files(spark, files, _dirs(schemes_dir), POLICY, folder, run_id="r", grouped_at=at)
        return {r.file: r.rows_out + (r.partition == ("530100", "2024-03")) for r in results if r.file}

    with pytest.raises(StorageError, match="do not hold the rows reported"):
        claims_store.replace_partitions_with_files("grouped_claims", miscounted, {"discharge_month": MONTHS})
    assert claims_store.version("grouped_claims") == 0


def test_grouped_files_layout_and_codes_read_as_dictionaries(spark, claims_store, schemes_dir):
    """The files the tasks write: decimals as INT64 (as Spark stores them), pseudonyms uncompressed and
    the per-row unique columns without dictionary, codes with one; what Spark reads back is the
    DataFrame path's rows (decimals included)."""
    files = claims_store.data_files("claims")
    at = datetime.now(timezone.utc)
    replace_grouped_claims(spark, claims_store, files, MONTHS, _dirs(schemes_dir), POLICY, run_id="r", grouped_at=at)
    written = claims_store.data_files("grouped_claims")
    assert len(written) == 3
    meta = pq.read_metadata(written[0].path)
    chunk = {meta.row_group(0).column(i).path_in_schema: meta.row_group(0).column(i) for i in range(meta.num_columns)}
    dictionary = {"PLAIN_DICTIONARY", "RLE_DICTIONARY"}
    assert chunk["total_cost"].physical_type == "INT64" and not dictionary & set(chunk["total_cost"].encodings)
    assert {chunk[c].compression for c in ("person_id", "national_id")} == {"UNCOMPRESSED"}
    assert chunk["claim_id"].compression == "SNAPPY" and not dictionary & set(chunk["claim_id"].encodings)
    assert dictionary & set(chunk["principal_dx"].encodings) and dictionary & set(chunk["drg"].encodings)
    assert dictionary & set(chunk["secondary_dxs.list.element"].encodings)
    assert {chunk[c].compression for c in ("secondary_dxs.list.element", "procedures.list.element", "trace")} == {
        "SNAPPY"}
    # the files read back as the table's types (not as the dictionary arrays they were written from) ...
    target = CATALOGUE["grouped_claims"]
    assert pq.read_schema(written[0].path) == target.arrow_schema
    assert all(chunk[c].physical_type == "BYTE_ARRAY" for c in ("hospital_id", "sex", "region"))
    # ... with statistics only for the table's stats columns and partition columns
    with_stats = {c for c, ch in chunk.items() if ch.is_stats_set}
    assert with_stats == {*target.stats_columns, *target.partition_by}
    assert chunk["hospital_id"].statistics.min <= chunk["hospital_id"].statistics.max
    config = DeltaTable(claims_store.location("grouped_claims")).metadata().configuration
    assert config["delta.dataSkippingStatsColumns"] == ",".join(target.stats_columns)
    by_files = claims_store.read("grouped_claims")
    by_dataframe = group_claims(claims_store.read("claims"), _dirs(schemes_dir), POLICY, run_id="r", grouped_at=at)
    assert by_files.exceptAll(by_dataframe).count() == 0 and by_dataframe.exceptAll(by_files).count() == 0
    assert by_files.count() == 5


def test_claims_files_of_several_row_groups_read_in_batches_across_them(spark, claims_store, tmp_path, schemes_dir):
    """Batches that would span row groups (1-row groups, 3-row batches): code lists read as
    dictionaries cannot cross a row group in pyarrow, so each is read on its own; same rows."""
    files = []
    for f in claims_store.data_files("claims"):
        copy = tmp_path / f"rg-{len(files)}.parquet"
        pq.write_table(pq.read_table(f.path), copy, row_group_size=1)
        files.append(dataclasses.replace(f, path=str(copy)))
    assert max(pq.read_metadata(f.path).num_row_groups for f in files) == 3
    at = datetime.now(timezone.utc)
    store = DeltaRsStore(spark, str(tmp_path / "out"))
    _, results = replace_grouped_claims(spark, store, files, MONTHS, _dirs(schemes_dir), POLICY, run_id="r",
                                        grouped_at=at, batch_rows=3)
    assert sum(r.rows_out for r in results) == 5
    by_files = store.read("grouped_claims")
    by_dataframe = group_claims(claims_store.read("claims"), _dirs(schemes_dir), POLICY, run_id="r", grouped_at=at)
    assert by_files.exceptAll(by_dataframe).count() == 0 and by_dataframe.exceptAll(by_files).count() == 0


def test_an_empty_batch_groups_to_empty_columns():
    from casemix.grouping.distributed import RESULT_COLUMNS, group_batch

    names = ["sex", "age_years", "age_days", "birth_weight_g", "dept", "los_days", "discharge_status",
             "principal_dx", "secondary_dxs", "procedures", "scheme_id"]
    schema = CATALOGUE["claims"].arrow_schema
    empty = pa.RecordBatch.from_arrays(
        [pa.array([], schema.field(n).type if n in schema.names else pa.string()) for n in names], names=names)
    out = group_batch(empty, lambda scheme: pytest.fail("no scheme is needed for no rows"))
    assert list(out) == list(RESULT_COLUMNS) and all(len(a) == 0 for a in out.values())
    assert out["has_mcc"].type == pa.bool_() and out["drg"].type == pa.string()


def test_a_grouped_batch_with_a_column_of_the_wrong_type_is_refused(schemes_dir):
    from casemix.grouping.distributed import BatchGrouper

    grouper = BatchGrouper(_dirs(schemes_dir), {}, "r", datetime.now(timezone.utc),
                           CATALOGUE["grouped_claims"].arrow_schema, None)
    claims = pa.RecordBatch.from_pylist([], schema=CATALOGUE["claims"].arrow_schema)
    added = {f.name: pa.array([], f.type) for f in CATALOGUE["grouped_claims"].arrow_schema
             if f.name not in CATALOGUE["claims"].columns}
    assert grouper.assemble(claims, added).schema == CATALOGUE["grouped_claims"].arrow_schema
    # lists whose items may be null (as Spark hands them to mapInArrow) are accepted
    loose = claims.set_column(claims.schema.get_field_index("procedures"), "procedures",
                              pa.array([], pa.list_(pa.string())))
    assert grouper.assemble(loose, added).num_rows == 0
    added["drg"] = pa.array([], pa.string()).dictionary_encode()
    with pytest.raises(TypeError, match="drg"):
        grouper.assemble(claims, added)
    # for a Parquet writer, a dictionary of the right text is accepted, and the batch's schema says so
    out = grouper.assemble(claims, added, dictionaries=True)
    assert out.schema.field("drg").type == pa.dictionary(pa.int32(), pa.string())
    assert out.schema.field("drg").nullable == CATALOGUE["grouped_claims"].arrow_schema.field("drg").nullable
    added["drg"] = pa.array([], pa.int64()).dictionary_encode()
    with pytest.raises(TypeError, match="drg"):
        grouper.assemble(claims, added, dictionaries=True)


def _task_parts(store):
    return [unit for task in deal_partitions(store.data_files("claims"), CATALOGUE["claims"].partition_by, 1)
            for unit in task]


def _run_task(parts, folder, schemes_dir):
    from casemix.grouping.direct import _task

    args = dict(scheme_dirs=_dirs(schemes_dir), versions={}, run_id="r", grouped_at=datetime.now(timezone.utc),
                out_schema=CATALOGUE["grouped_claims"].arrow_schema, cache_dir=None)
    return list(_task(parts, grouper_args=args, policy=POLICY, ship=False, folder_uri=str(folder), batch_rows=2))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/fd; posix_fadvise")
def test_a_task_ends_only_once_its_files_and_their_folders_are_synced(claims_store, tmp_path, schemes_dir, sync_calls):
    from casemix.storage.durable import FOOTER_READ_BYTES

    calls = sync_calls
    out = tmp_path / "out"
    results = _run_task(_task_parts(claims_store), out.as_uri(), schemes_dir)  # (a file:// URI)
    written = sorted(str(out / r.file) for r in results)
    assert len(written) == 3 and sum(r.rows_out for r in results) == 5
    # each file: its data on disk (these are smaller than the footer read, so none is released:
    # tests/test_storage_durable.py releases a larger one) ...
    assert all(os.path.getsize(p) < FOOTER_READ_BYTES for p in written)
    assert sorted(calls[:3]) == [("fdatasync", p) for p in written]
    # ... then every new folder, and the folder holding the one the task was given (its entry is new)
    region_month = {os.path.dirname(p) for p in written}
    assert len(region_month) == 3
    folders = region_month | {os.path.dirname(f) for f in region_month} | {str(out), str(tmp_path)}
    assert len(folders) == 7 and sorted(calls[3:]) == sorted(("fsync", f) for f in folders)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/fd")
def test_the_job_does_not_sync_again_what_its_tasks_synced(spark, claims_store, schemes_dir, sync_calls):
    # (sync_calls sees this process, the driver: the tasks run in Spark's Python workers)
    version, results = replace_grouped_claims(spark, claims_store, claims_store.data_files("claims"), MONTHS,
                                              _dirs(schemes_dir), POLICY, run_id="r", grouped_at=datetime.now(timezone.utc))
    assert len([r for r in results if r.file]) == 3
    log = f"{claims_store.location('grouped_claims')}/_delta_log"
    synced = [path for name, path, *_ in sync_calls if name == "fdatasync"]
    assert synced == [f"{log}/{version:020d}.json"]  # (the log only: the files were the tasks' to sync)


@pytest.mark.skipif(not hasattr(os, "fdatasync"), reason="no fdatasync here (the settler uses fsync)")
def test_a_file_that_cannot_be_synced_fails_the_task(claims_store, tmp_path, schemes_dir, monkeypatch):
    import errno

    def broken(fd):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fdatasync", broken)
    with pytest.raises(OSError, match="Input/output error"):
        _run_task(_task_parts(claims_store), tmp_path / "out", schemes_dir)
