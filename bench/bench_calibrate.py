"""Benchmark: relative-weight calibration of 3 years × 16 regions at a configurable size.

The input is a synthetic ``grouped_claims``-shaped table (:func:`casemix.calibrate.synthetic.synthetic_grouped_claims`,
``spark.range`` + column expressions), written once as Parquet to a temporary folder so every case reads
files as the job does. Measured (each from the files, the process tree's peak RSS sampled):

- ``baseline groupBy count``: ``groupBy(region, scheme_id, drg).count()`` over the same rows;
- ``calibrate (<method>)``: :func:`casemix.calibrate.calibrate` for every region at once (cases cached,
  trimming bounds, group statistics, province weights, per-region finishing, hospital indicators and
  quality, all materialised), per trimming method asked for. MLflow and Delta commits are not included
  (they do not depend on the data size).

Usage::

    python bench/bench_calibrate.py                       # 10 M cases, IQR trimming
    python bench/bench_calibrate.py --cases 1000000 --methods iqr percentile log_sd
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import add_spark_arguments, machine, measure, print_table, spark_session  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000_000, help="cases over the 3 data years (default 10 M)")
    parser.add_argument("--regions", type=int, default=16, help="pooling regions (default 16)")
    parser.add_argument("--groups", type=int, default=600, help="DRGs (default 600)")
    parser.add_argument("--hospitals", type=int, default=60, help="hospitals per region (default 60)")
    parser.add_argument("--methods", nargs="+", default=["iqr"], choices=["iqr", "percentile", "log_sd", "none"])
    add_spark_arguments(parser)
    args = parser.parse_args(argv)

    from casemix.calibrate import calibrate, calibration_cases, override_spec
    from casemix.calibrate.cases import INPUT_COLUMNS
    from casemix.calibrate.synthetic import DEFAULT_REGIONS, synthetic_grouped_claims
    from casemix.policy import CalibrationPolicy

    spark = spark_session(args, "bench-calibrate")
    regions = list(DEFAULT_REGIONS[: args.regions]) if args.regions <= len(DEFAULT_REGIONS) else \
        [f"5{i:05d}" for i in range(args.regions)]
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        path = str(Path(tmp) / "grouped_claims")
        with measure("prepare input (generate + write parquet)", args.cases) as prep:
            # only the columns the calibration reads (it prunes the others anyway)
            synthetic_grouped_claims(spark, cases=args.cases, regions=regions, groups=args.groups,
                                     hospitals_per_region=args.hospitals).select(
                *INPUT_COLUMNS, "scheme_model_version").write.parquet(path)
        rows = [prep]
        with measure("baseline groupBy count", args.cases) as base:
            base.extra["groups"] = spark.read.parquet(path).groupBy("region", "scheme_id", "drg").count().count()
        rows.append(base)
        for method in args.methods:
            spec = override_spec(CalibrationPolicy(), {"trimming.method": method})
            with measure(f"calibrate ({method})", args.cases) as m:
                cases = calibration_cases(spark.read.parquet(path), spec, 2025).persist()
                result = calibrate(cases, spec, 2025, run_id="bench", calibrated_at=datetime.now(timezone.utc),
                                   persist=True)
                weights = result.relative_weights.toPandas()
                hospitals = result.hospital_indicators.count()
                quality = result.quality.toPandas()
                m.extra["groups"] = len(weights)
                m.extra["hospital-years"] = hospitals
                m.extra["min RIV"] = f"{quality['riv'].min():.3f}"
                result.weights.unpersist()
                cases.unpersist()
            rows.append(m)
    print()
    print(f"machine: {machine()}; Spark {spark.version}, master {args.master}, "
          f"shuffle partitions {args.shuffle_partitions}")
    print(f"input: {args.cases:,} cases, {len(regions)} regions, 3 data years, {args.groups} DRGs\n")
    print_table("Relative-weight calibration", rows, baseline="baseline groupBy count")
    spark.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
