"""Grouping throughput on generated cases: vectorised core vs Spark job vs per-record reference.

For each size N the same generated province (cases validated exactly as ingestion does, then kept
as a Parquet file of claims under bench/.data/) is grouped with chs-drg-1.1 by

  (a) the vectorised core on ONE core (process pinned to CPU 0, Arrow single-threaded), over batches of
      exactly 100 000 rows (the batch size of both grouping paths): ``group_arrow`` on Arrow batches
      whose code columns are dictionary-encoded as the file-wise job reads them from Parquet, the same
      on plain string columns (as Spark hands them to the DataFrame path), and ``group_frame`` on
      Arrow-backed pandas frames (warm: one untimed pass first, then the best of --repeat passes);
  (b) the Spark grouping job on ``local[2]``, reading a ``claims`` Delta table laid out as ingestion
      writes it (region x month partitions; made once under bench/.data/claims-table-N):
      the file-wise path (``casemix.grouping.direct``, the default with delta-rs: each task reads,
      groups and writes whole partitions with Arrow, one commit; best of --repeat, each run after an
      ``os.sync()`` so that it does not pay for writing back the previous run's files), and the DataFrame
      path (``group_claims``, mapInArrow) with a no-op sink (compute only; best of --repeat) and with
      the real ``grouped_claims`` Delta write (one run);
  (c) the straightforward per-record implementation, ``group_record``, on a sample of the same cases
      (its rate does not depend on N; best of --repeat passes);

and prints records/s, peak RSS of the process tree, and the ratios to (c). Unless --no-ceilings, these
ceilings for (b) are measured in the same session:

  ceiling: the same claim columns read and sent through an identity ``mapInArrow`` (JVM -> Arrow ->
      Python -> Arrow -> JVM), no-op sink: what any Python step over these rows costs on local[2];
  ceiling: the same rows with constant group columns (no Python) written to ``grouped_claims`` exactly
      as the DataFrame path writes them: what its Delta write alone costs;
  for comparison: the file-wise path writing to a warehouse on tmpfs (/dev/shm). No disk, but no
      ceiling either since the path releases each file it wrote from the page cache (on disk it
      then reuses those pages), which tmpfs cannot do: every page it writes there is new memory.

  python bench/bench_grouping.py                      # 1 M and 10 M cases
  python bench/bench_grouping.py --sizes 200000 --reference-sample 5000
  python bench/bench_grouping.py --sizes 10000000 --repeat 5 --no-dataframe   # the file-wise path only
  python bench/bench_grouping.py --task-costs 250000 --repeat 5   # one task on one core: cost per partition
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "lib"))

from harness import best_of, machine, measure, print_table  # noqa: E402

SCHEME = "chs-drg-1.1"


def schemes_dir() -> Path:
    return Path(os.environ.get("CASEMIX_SCHEMES_DIR", ROOT.parent / "shared" / "schemes")).resolve()


def spark_session(cores: int):
    from casemix.config import SparkSettings
    from casemix.spark import build_session

    return build_session(SparkSettings(master=f"local[{cores}]", shuffle_partitions=cores * 4,
                                       arrow_batch_size=100_000, driver_memory="8g"), "bench-grouping")


def prepare_claims(spark, n: int, data: Path) -> Path:
    """Generated clean cases of N claims, validated like ingestion, as Parquet (made once, then reused)."""
    from pyspark.sql import functions as F

    from casemix.codes import load_codebook
    from casemix.generate import GeneratorSpec, build_plan, generate_inpatient, load_province
    from casemix.ingest.pseudonym import DEMO_KEY, PseudonymKey
    from casemix.ingest.raw import RAW_COLUMNS
    from casemix.ingest.validate import validate
    from casemix.tables import CATALOGUE

    path = data / f"claims-{n}.parquet"
    if (path / "_SUCCESS").exists():
        return path
    plan = build_plan(GeneratorSpec(seed=42, n_cases=n, bad_record_share=0.0, outpatient_multiple=0),
                      load_province(), str(schemes_dir()))
    raw = generate_inpatient(spark, plan).filter("row_role = 'original'").select(
        *[F.col(f"`{zh}`").alias(en) for zh, en in RAW_COLUMNS.items()],
        F.lit("bench").alias("source_file"), F.lit("parquet").alias("source_format"),
        F.col("case_id").alias("source_line"), F.concat_ws("/", "drop_region", "drop_month").alias("drop_id"),
        "drop_region", F.lit(False).alias("_malformed"), F.lit(None).cast("string").alias("_raw_line"),
        F.col("case_id").alias("_order"))
    checked = validate(raw, load_codebook(schemes_dir() / SCHEME), PseudonymKey(DEMO_KEY, "demo"))
    claims = checked.filter(F.size("reason_codes") == 0).select(
        *[c for c in CATALOGUE["claims"].columns if c not in ("ingest_run_id", "ingested_at")],
        F.lit("bench").alias("ingest_run_id"), F.lit(datetime.now(timezone.utc)).alias("ingested_at"))
    claims.write.mode("overwrite").parquet(str(path))
    return path


def core_one_core(path: Path, n: int, repeat: int, form: str = "coded", batch_rows: int = 100_000):
    """(a): the core on ONE core, over batches of exactly ``batch_rows`` rows (as both job paths cut
    them), in one of three forms: ``coded``, Arrow batches whose code columns are dictionary-encoded
    as the file-wise job reads them from Parquet, grouped with ``group_arrow``; ``plain``, the same
    with plain string columns (as Spark hands them to the DataFrame path's ``mapInArrow``); ``pandas``,
    the plain batches converted to Arrow-backed pandas frames and grouped with ``group_frame`` (as a
    notebook calls it)."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from casemix.grouping import group_arrow, group_frame, load_compiled
    from casemix.grouping.direct import CODE_COLUMNS
    from casemix.grouping.distributed import GROUPER_INPUTS

    compiled = load_compiled(schemes_dir() / SCHEME)
    coded = list(CODE_COLUMNS.values()) if form == "coded" else None
    table = pa.concat_tables(pq.read_table(f, columns=list(GROUPER_INPUTS), read_dictionary=coded)
                             for f in sorted(path.glob("*.parquet")))
    batches = table.combine_chunks().to_batches(max_chunksize=batch_rows)  # (one dictionary per column)
    del table
    records = sum(b.num_rows for b in batches)

    def run():
        if form == "pandas":
            for b in batches:
                group_frame(compiled, pa.Table.from_batches([b]).to_pandas(types_mapper=pd.ArrowDtype))
        else:
            for b in batches:
                group_arrow(compiled, b)

    name = {"coded": "(a) vectorised core, 1 core, codes as read from Parquet",
            "plain": "(a) vectorised core, 1 core, plain strings",
            "pandas": "(a) group_frame, 1 core, pandas frames"}[form]
    return best_of(name, records, run, repeat, warmup=True), batches


def reference(batches, sample: int, repeat: int):
    import pyarrow as pa

    from casemix.grouping import group_record, load_scheme

    scheme = load_scheme(schemes_dir() / SCHEME)
    table = pa.Table.from_batches(batches).slice(0, sample).to_pylist()
    records = [{**r, "secondary_dxs": list(r["secondary_dxs"] or []), "procedures": list(r["procedures"] or [])}
               for r in table]
    def run():
        for r in records:
            group_record(scheme, r)

    m = best_of("(c) per-record reference", len(records), run, repeat)
    m.extra["note"] = f"sample of {len(records):,}, " + m.extra.get("note", "one run")
    return m


def _no_grouping(claims, policy, grouped_at):
    """The claims with the ``grouped_claims`` columns, group columns constant: no Python step."""
    from pyspark.sql import functions as F

    from casemix.grouping.distributed import scheme_column
    from casemix.tables import CATALOGUE

    const = {"scheme_id": scheme_column(policy), "scheme_model_version": F.lit(None).cast("string"),
             "mdc": F.lit("MDCR"), "adrg": F.lit("RR1"), "drg": F.lit("RR15"), "group_status": F.lit("grouped"),
             "has_mcc": F.lit(False), "has_cc": F.lit(False), "cc_code": F.lit(None).cast("string"),
             "invalid_reason": F.lit(None).cast("string"),
             "trace": F.lit("MDCR:entry=principal_dx_in(zd);ADRG=RR1(rule RR1):principal_dx_in(zd);DRG=RR15:always"),
             "group_run_id": F.lit("bench"), "grouped_at": F.lit(grouped_at)}
    return claims.select(*[const[c].alias(c) if c in const else F.col(c) for c in CATALOGUE["grouped_claims"].columns])


def _identity(batches):
    yield from batches


def claims_table(spark, path: Path, n: int, data: Path):
    """The claims as a Delta table laid out as ingestion writes it (partitioned by region and discharge
    month, one file per partition), made once from the Parquet file and then reused."""
    from casemix.storage.deltars import DeltaRsStore

    store = DeltaRsStore(spark, str(data / f"claims-table-{n}"))
    if not store.exists("claims"):
        store.append("claims", spark.read.parquet(str(path)))
    return store


def spark_job(spark, path: Path, n: int, tmp: Path, repeat: int, ceilings: bool, dataframe: bool = True):
    import shutil

    from casemix.grouping.direct import replace_grouped_claims
    from casemix.grouping.distributed import group_claims, scheme_column
    from casemix.policy import GroupingPolicy
    from casemix.storage.deltars import DeltaRsStore
    from casemix.tables import CATALOGUE

    policy = GroupingPolicy(default_scheme=SCHEME)
    claims_store = claims_table(spark, path, n, tmp)
    claims = claims_store.read("claims")
    records = claims.count()
    dirs = {SCHEME: str(schemes_dir() / SCHEME)}
    grouped_at = datetime.now(timezone.utc)

    def noop(df):
        df.write.format("noop").mode("overwrite").save()

    out = []
    if dataframe:
        out.append(best_of("(b) Spark job local[2], DataFrame path, no-op sink", records,
                           lambda: noop(group_claims(claims, dirs, policy, run_id="bench", grouped_at=grouped_at)),
                           repeat))
    if dataframe and ceilings:
        grouped = CATALOGUE["grouped_claims"].columns
        passed = claims.select(*[c for c in CATALOGUE["claims"].columns if c in grouped],
                               scheme_column(policy).alias("scheme_id"))
        out.append(best_of("ceiling: read + identity mapInArrow, no-op sink", records,
                           lambda: noop(passed.mapInArrow(_identity, passed.schema)), repeat))
    warehouse = tmp / f"warehouse-{n}-{int(time.time())}"
    store = DeltaRsStore(spark, str(warehouse))
    files = claims_store.data_files("claims")
    months = sorted({f.partition_values["discharge_month"] for f in files})

    def by_files():
        replace_grouped_claims(spark, store, files, months, dirs, policy, run_id="bench",
                               grouped_at=datetime.now(timezone.utc))

    # os.sync() before each run: a run does not pay for writing back the previous run's ~2 GB (at 10 M)
    m = best_of("(b) Spark job local[2], file-wise path, Delta write", records, by_files, repeat, before=os.sync)
    m.extra["note"] = f"{len(store.read('grouped_claims').inputFiles())} files written, " + m.extra.get("note", "")
    out.append(m)
    shm = Path("/dev/shm")
    if ceilings and shm.is_dir():
        memory = DeltaRsStore(spark, str(shm / f"casemix-bench-{n}-{int(time.time())}"))

        def in_memory():
            replace_grouped_claims(spark, memory, files, months, dirs, policy, run_id="bench",
                                   grouped_at=datetime.now(timezone.utc))

        try:
            out.append(best_of("for comparison: the same, warehouse on tmpfs (/dev/shm)", records, in_memory, repeat,
                               before=os.sync))
        finally:
            shutil.rmtree(memory.warehouse, ignore_errors=True)
    if dataframe:
        with measure("(b) Spark job local[2], DataFrame path, Delta write", records) as m:
            grouped = group_claims(claims, dirs, policy, run_id="bench", grouped_at=datetime.now(timezone.utc))
            store.replace_partitions("grouped_claims", grouped, {"discharge_month": months})
        m.extra["note"] = f"{len(store.read('grouped_claims').inputFiles())} files written"
        out.append(m)
    if dataframe and ceilings:
        with measure("ceiling: DataFrame Delta write without grouping", records) as m:
            store.replace_partitions("grouped_claims", _no_grouping(claims, policy, grouped_at),
                                     {"discharge_month": months})
        out.append(m)
    shutil.rmtree(warehouse, ignore_errors=True)
    return out


def _one_task(units, args, policy, data: Path, repeat: int, claims: int, cpu: int, name: str):
    """Best of ``repeat`` runs of one file-wise task over ``units`` on CPU ``cpu`` (see :func:`task_costs`)."""
    import shutil
    import tempfile

    import pyarrow as pa

    from casemix.grouping.direct import DEFAULT_BATCH_ROWS, _task

    folders: list[str] = []

    def clean():  # (untimed: the previous run's files)
        while folders:
            shutil.rmtree(folders.pop(), ignore_errors=True)
        os.sync()

    def run():
        folders.append(tempfile.mkdtemp(dir=data))
        list(_task(units, grouper_args=dict(args), policy=policy, ship=False, folder_uri=f"{folders[-1]}/w",
                   batch_rows=DEFAULT_BATCH_ROWS))

    all_cpus, arrow_cpus = os.sched_getaffinity(0), pa.cpu_count()
    os.sched_setaffinity(0, {cpu})
    pa.set_cpu_count(1)
    try:
        return best_of(name, claims, run, repeat, warmup=True, before=clean)
    finally:
        os.sched_setaffinity(0, all_cpus)
        pa.set_cpu_count(arrow_cpus)
        clean()


def task_costs(spark, paths: dict, data: Path, repeat: int, rows: int, cpu: int):
    """One task of the file-wise path (``casemix.grouping.direct._task``: read, group, write and sync
    whole partitions), run in this process on ONE core (the calling thread and the threads it starts
    pinned to ``cpu``; the kernel's writeback may run on the other core), over random samples of
    each size's partitions holding about ``rows`` and ``rows / 4`` claims (the time per partition
    shows what a partition costs at each layout, and whether it depends on the task's size); then
    the most the tasks can do on 2 cores: twice the one-core rate. (A least-squares split into costs
    per task, partition and claim was tried: on this machine the runs vary too much between
    invocations for it to be stable.)"""
    import random

    from casemix.grouping.direct import deal_partitions
    from casemix.policy import GroupingPolicy
    from casemix.tables import CATALOGUE

    policy = GroupingPolicy(default_scheme=SCHEME)
    args = dict(scheme_dirs={SCHEME: str(schemes_dir() / SCHEME)}, versions={}, run_id="bench",
                grouped_at=datetime.now(timezone.utc), out_schema=CATALOGUE["grouped_claims"].arrow_schema,
                cache_dir=None)
    out, layout = [], {}
    for n, path in paths.items():
        every = deal_partitions(claims_table(spark, path, n, data).data_files("claims"),
                                CATALOGUE["claims"].partition_by, 1)[0]
        layout[n] = len(every)
        for share in (1, 4):  # (about rows, then a quarter of that: tasks of two sizes per layout)
            k = max(1, min(len(every), round(len(every) * rows / share / n)))
            units = [every[i] for i in sorted(random.Random(42).sample(range(len(every)), k))]
            taken = sum(f.rows for _, unit in units for f in unit)
            m = _one_task(units, args, policy, data, repeat, taken, cpu,
                          f"one task, 1 core, {k} partitions of the {n:,} table")
            m.extra["note"] = (f"{k} of its {len(every)} partitions, ~{taken / k:,.0f} claims each: "
                               f"{1000 * m.seconds / k:.2f} ms per partition, best of {repeat}")
            out.append(m)
    lines = ["so the tasks alone, on 2 cores, allow at most (twice the one-core rate of the larger sample):"]
    lines += [f"  {n:,} claims in {layout[n]} partitions: {2 * m.rate:,.0f} records/s (before Spark's scheduling, "
              f"the driver's listing and the commit)" for n, m in zip(paths, out[::2])]
    print("\n".join(lines))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--reference-sample", type=int, default=20_000)
    parser.add_argument("--data", default=str(HERE / ".data"))
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of (a), (c) and the no-op Spark cases; the fastest is reported (default 3)")
    parser.add_argument("--no-ceilings", dest="ceilings", action="store_false",
                        help="skip the ceilings of the Spark job")
    parser.add_argument("--no-dataframe", dest="dataframe", action="store_false",
                        help="skip the DataFrame path of the Spark job (and its ceilings): file-wise path only")
    parser.add_argument("--task-costs", type=int, metavar="CLAIMS", default=0,
                        help="only time one task of the file-wise path on one core over about CLAIMS (and "
                             "CLAIMS / 4) claims of each size's table: its cost per partition at each layout")
    args = parser.parse_args()
    data = Path(args.data)
    data.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    print(f"machine: {machine()}\n")
    all_cpus = os.sched_getaffinity(0)
    spark = spark_session(2)
    paths = {n: prepare_claims(spark, n, data) for n in args.sizes}
    if args.task_costs:
        print_table("One task of the file-wise path on one core", task_costs(spark, paths, data, args.repeat,
                                                                              args.task_costs, min(all_cpus)))
        spark.stop()
        return
    for n in args.sizes:
        import pyarrow as pa

        os.sched_setaffinity(0, {min(all_cpus)})
        pa.set_cpu_count(1)
        a, _ = core_one_core(paths[n], n, args.repeat, "coded")
        a_plain, _ = core_one_core(paths[n], n, args.repeat, "plain")
        a_pandas, batches = core_one_core(paths[n], n, args.repeat, "pandas")
        c = reference(batches, args.reference_sample, args.repeat)
        del batches, _
        os.sched_setaffinity(0, all_cpus)
        pa.set_cpu_count(len(all_cpus))
        jobs = spark_job(spark, paths[n], n, data, args.repeat, args.ceilings, args.dataframe)
        rows = [a, a_plain, a_pandas, *jobs, c]
        print_table(f"Grouping {n:,} generated cases with {SCHEME}", rows, baseline=c.name)
        print()
    spark.stop()


if __name__ == "__main__":
    main()
