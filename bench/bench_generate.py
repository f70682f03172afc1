"""Benchmark the claims generator: rows/s, driver memory, and the ratio to a plain Spark write.

For each size it measures, in the same Spark session:

* ``baseline``   ``spark.range(n).write.parquet`` (what writing n trivial rows costs on this machine);
* ``wide``       n rows of 27 string columns written as Parquet into 16 x 36 folders (the cost of a
  drop-shaped output alone);
* ``generate``   generating the inpatient rows without writing them (``noop`` sink);
* ``drops``      generating and writing the inpatient drops + ``_defects`` (CSV and Parquet regions) and
  counting them (:func:`casemix.generate.write_drops`: four passes over the regenerated cases);
* ``outpatient`` (``--outpatient``) generating and writing ``outpatient_multiple x n`` visits.

and prints a table: seconds, rows/s, ratio to the baseline, and the peak resident memory of the driver's
Python process and of the Spark JVM (in local mode the JVM also runs the executors; the Python workers
that run the vectorised generation are separate processes and not counted). The point of the driver
column: it stays flat from 1 M to 10 M cases, because no case ever reaches the driver.

Usage::

    python bench/bench_generate.py                 # 1 M cases
    python bench/bench_generate.py --with-10m      # 1 M and 10 M cases
    python bench/bench_generate.py --cases 200000 --outpatient
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class PeakMemory:
    """Samples the RSS of this process and of the Spark JVM (a child process) every 0.2 s."""

    def __init__(self):
        import psutil

        self.psutil = psutil
        self.me = psutil.Process()
        self.peak_python = 0
        self.peak_jvm = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _jvms(self):
        return [p for p in self.me.children(recursive=True) if "java" in (p.name() or "")]

    def _run(self):
        while not self._stop.is_set():
            try:
                self.peak_python = max(self.peak_python, self.me.memory_info().rss)
                self.peak_jvm = max(self.peak_jvm, sum(p.memory_info().rss for p in self._jvms()))
            except self.psutil.Error:
                pass
            time.sleep(0.2)

    def __enter__(self):
        self.peak_python = self.peak_jvm = 0
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def _wide_baseline(spark, n: int, partitions: int, path: str) -> None:
    """n rows shaped like a drop (27 string columns of 4-24 characters) written as Parquet into 576
    region/month folders: the cost of the output itself, without generating anything."""
    from pyspark.sql import functions as F

    cols = [F.concat(F.lit("v" * (4 + (i * 7) % 20)), F.col("id").cast("string")).alias(f"c{i}") for i in range(27)]
    (spark.range(0, n, 1, partitions)
     .select(*cols, F.floor(F.col("id") * 16 / n).cast("string").alias("region"),
             (F.floor(F.col("id") * 576 / n) % 36).cast("string").alias("month"))
     .write.mode("overwrite").partitionBy("region", "month").parquet(path))


def _mb(n: int) -> str:
    return f"{n / 2**20:,.0f}"


def run(args) -> None:
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from casemix.config import SparkSettings
    from casemix.generate import (GeneratorSpec, build_plan, generate_inpatient, load_province, write_drops,
                                  write_outpatient_drops)
    from casemix.spark import build_session

    spark = build_session(SparkSettings(master=args.master, driver_memory=args.driver_memory, shuffle_partitions=8,
                                        arrow_batch_size=args.batch), "bench-generate")
    province = load_province(ROOT / "conf" / "province.yaml")
    schemes = os.environ.get("CASEMIX_SCHEMES_DIR", str(ROOT.parent / "shared" / "schemes"))
    sizes = [args.cases] + ([10_000_000] if args.with_10m else [])
    work = Path(tempfile.mkdtemp(prefix="bench-generate-", dir=args.tmp))
    results = []
    print(f"spark {spark.version}, master {args.master}, {os.cpu_count()} cores; scratch {work}", flush=True)
    # warm up the JVM and the Python workers, so the first baseline does not pay for them
    spark.range(0, 100_000, 1, 2).write.mode("overwrite").parquet(str(work / "warmup"))
    warm = build_plan(GeneratorSpec(seed=1, n_cases=2_000, partitions=2), province, schemes)
    generate_inpatient(spark, warm).write.format("noop").mode("overwrite").save()
    try:
        for n in sizes:
            spec = GeneratorSpec(seed=20240101, n_cases=n, partitions=args.partitions, outpatient_multiple=args.multiple)
            t = time.perf_counter()
            plan = build_plan(spec, province, schemes)
            plan_s = time.perf_counter() - t
            p = plan.partitions

            def measure(name, rows, action):
                with PeakMemory() as mem:
                    t0 = time.perf_counter()
                    action()
                    secs = time.perf_counter() - t0
                results.append({"cases": n, "step": name, "rows": rows, "seconds": secs, "python": mem.peak_python,
                                "jvm": mem.peak_jvm, "partitions": p})
                print(f"  {n:>11,} {name:<10} {secs:8.1f} s", flush=True)

            measure("baseline", n, lambda: spark.range(0, n, 1, p).write.mode("overwrite").parquet(str(work / "baseline")))
            measure("wide", n, lambda: _wide_baseline(spark, n, p, str(work / "wide")))
            measure("generate", n, lambda: generate_inpatient(spark, plan).write.format("noop").mode("overwrite").save())
            measure("drops", n, lambda: write_drops(spark, plan, str(work / "drops")))
            if args.outpatient:
                measure("outpatient", spec.n_visits, lambda: write_outpatient_drops(spark, plan, str(work / "drops")))
            print(f"  (plan built in {plan_s:.1f} s on the driver)", flush=True)
            shutil.rmtree(work / "drops", ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    base = {r["cases"]: r["seconds"] for r in results if r["step"] == "baseline"}
    print()
    wide = {r["cases"]: r["seconds"] for r in results if r["step"] == "wide"}
    print("| cases | step | rows | partitions | seconds | rows/s | x baseline | x wide | driver python RSS MB | "
          "JVM RSS MB |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['cases']:,} | {r['step']} | {r['rows']:,} | {r['partitions']} | {r['seconds']:.1f} | "
              f"{r['rows'] / r['seconds']:,.0f} | {r['seconds'] / base[r['cases']]:.1f} | "
              f"{r['seconds'] / wide[r['cases']]:.1f} | {_mb(r['python'])} | {_mb(r['jvm'])} |")
    print(f"\nmax RSS of the driver's Python process over the whole run: "
          f"{_mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)} MB")
    spark.stop()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1_000_000, help="inpatient cases (default 1 M)")
    parser.add_argument("--with-10m", action="store_true", help="also run 10 M cases")
    parser.add_argument("--outpatient", action="store_true", help="also generate and write outpatient visits")
    parser.add_argument("--multiple", type=float, default=10.0, help="outpatient visits per case")
    parser.add_argument("--partitions", type=int, default=None, help="Spark partitions (default: automatic)")
    parser.add_argument("--master", default="local[*]")
    parser.add_argument("--driver-memory", default="4g")
    parser.add_argument("--batch", type=int, default=100_000, help="Arrow batch size (rows)")
    parser.add_argument("--tmp", default=None, help="scratch folder (default: system temp)")
    run(parser.parse_args(argv))


if __name__ == "__main__":
    main()
