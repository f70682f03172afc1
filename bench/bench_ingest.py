"""Generation and ingestion throughput: raw drops of N generated cases, then the ingestion job on them.

Rows of the table, per size N (records = drop rows, defects included):

- baseline: Spark only counting the drops' rows (CSV as text lines, Parquet rows): the cost of reading;
- generate drops: the generator writing the raw CSV/Parquet drops (and its `_defects` side file);
- ingest: `ingest_drops` into fresh delta-rs tables (read, validate, pseudonymise, merge `claims`,
  write `claims_rejected` and `ingest_quality`, and every count check).

  python bench/bench_ingest.py                      # 1 M and 10 M cases
  python bench/bench_ingest.py --sizes 200000
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "lib"))

from harness import machine, measure, print_table  # noqa: E402


def schemes_dir() -> Path:
    return Path(os.environ.get("CASEMIX_SCHEMES_DIR", ROOT.parent / "shared" / "schemes")).resolve()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--data", default=str(HERE / ".data"))
    args = parser.parse_args()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

    from pyspark.sql import functions as F

    from casemix.codes import load_codebook
    from casemix.config import SparkSettings
    from casemix.generate import GeneratorSpec, build_plan, load_province, write_drops
    from casemix.ingest import discover_drops, ingest_drops
    from casemix.ingest.pseudonym import DEMO_KEY, PseudonymKey
    from casemix.spark import build_session
    from casemix.storage.deltars import DeltaRsStore

    print(f"machine: {machine()}\n")
    spark = build_session(SparkSettings(master="local[2]", shuffle_partitions=8, driver_memory="8g"), "bench-ingest")
    book = load_codebook(schemes_dir() / "chs-drg-1.1")
    key = PseudonymKey(DEMO_KEY, "demo")
    data = Path(args.data)
    for n in args.sizes:
        root = data / f"drops-{n}"
        shutil.rmtree(root, ignore_errors=True)
        plan = build_plan(GeneratorSpec(seed=3, n_cases=n, outpatient_multiple=0), load_province(), str(schemes_dir()))
        with measure("generate drops", n) as gen:
            result = write_drops(spark, plan, str(root))
        files = discover_drops([str(root / "inpatient")])
        rows = result.summary.get("rows", n)
        gen.records = rows
        with measure("baseline: count drop rows", rows) as base:
            csv = [f.path for f in files if f.format == "csv"]
            pq = [f.path for f in files if f.format == "parquet"]
            counted = (spark.read.text(csv).filter(F.trim("value") != "").count() if csv else 0) + \
                (spark.read.parquet(*pq).count() if pq else 0)
        base.extra["files"] = len(files)
        warehouse = data / f"warehouse-{n}-{int(time.time())}"
        with measure("ingest", rows) as ing:
            res = ingest_drops(spark, DeltaRsStore(spark, str(warehouse)), files, book, key, f"bench-{n}")
        ing.extra["files"] = len(files)
        ing.extra["note"] = f"accepted {res.accepted:,}, rejected {res.rejected:,}"
        print_table(f"Generate and ingest {n:,} cases ({rows:,} drop rows, {counted:,} text lines and rows, CSV headers included)",
                    [base, gen, ing], baseline=base.name)
        print()
        shutil.rmtree(warehouse, ignore_errors=True)
    spark.stop()


if __name__ == "__main__":
    main()
