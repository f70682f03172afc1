"""Benchmark: scoring and settlement of one year of cases, 16 regions, at a configurable size.

Input: a synthetic ``grouped_claims`` year (:func:`casemix.calibrate.synthetic.synthetic_grouped_claims`,
years = (2025,), 600 DRGs, 60 hospitals per region), written once as Parquet; weights from the synthetic
groups' planted relative costs; a register giving each hospital a grade. Measured from the files, with
the process tree's peak RSS:

- ``baseline groupBy count``: ``groupBy(region, hospital_id, discharge_month).count()`` over the cases;
- ``score``: :func:`casemix.payment.score_cases` (weights join, coefficients, case types, the readmission
  window over person ids) written as Parquet (the Delta commit is one more metadata step);
- ``settle``: :func:`casemix.payment.rate.rate_cases` + the hospital-month aggregation (Spark), then
  :func:`casemix.payment.settle_region` for every region in exact decimals on the driver (point method
  everywhere, rate amounts for the simulation).

Usage::

    python bench/bench_payment.py                  # 1 M cases
    python bench/bench_payment.py --cases 10000000
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import add_spark_arguments, machine, measure, print_table, spark_session  # noqa: E402

YEAR = 2025


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1_000_000, help="cases in the settlement year (default 1 M)")
    parser.add_argument("--groups", type=int, default=600)
    parser.add_argument("--hospitals", type=int, default=60, help="hospitals per region (default 60)")
    add_spark_arguments(parser)
    args = parser.parse_args(argv)

    from pyspark.sql import functions as F

    from casemix.calibrate.synthetic import DEFAULT_REGIONS, synthetic_grouped_claims, synthetic_groups
    from casemix.payment import HospitalMonth, rate_cases, score_cases, settle_region
    from casemix.payment.rate import base_rates
    from casemix.payment.workflow import hospital_months
    from casemix.policy import load_policy
    from casemix.tables import table

    spark = spark_session(args, "bench-payment")
    policy = load_policy(Path(__file__).resolve().parents[1] / "conf" / "policy" / "default.yaml")
    regions = list(DEFAULT_REGIONS)
    params = {r: policy.payment.params(YEAR, r).model_copy(update={"method": "point"}) for r in regions}
    groups = synthetic_groups(args.groups, 20240101)
    mean_rel = float((groups["relative_cost"] * groups["share"]).sum())
    weights = spark.createDataFrame(
        [(r, YEAR, "chs-drg-1.1", d, float(rc / mean_rel), Decimal(str(round(4000 * rc / mean_rel, 2))),
          Decimal("4000.00"), "bench") for r in regions for d, rc in zip(groups["drg"], groups["relative_cost"])],
        "region string, target_year int, scheme_id string, drg string, relative_weight double, "
        "standard_cost decimal(18,2), all_case_mean_cost decimal(18,2), calibration_run_id string")
    when = datetime.now(timezone.utc)
    grades = ("三级", "二级", "一级")
    hospitals = spark.createDataFrame(
        [(f"H{r}{h:03d}", r, None, grades[h % 3], "general", "bench", when) for r in regions
         for h in range(args.hospitals)], table("hospitals").schema)
    rows = []
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        src, points_path = str(Path(tmp) / "grouped"), str(Path(tmp) / "case_points")
        with measure("prepare input (generate + write parquet)", args.cases) as prep:
            synthetic_grouped_claims(spark, cases=args.cases, regions=regions, years=(YEAR,), groups=args.groups,
                                     hospitals_per_region=args.hospitals).write.parquet(src)
        rows.append(prep)
        with measure("baseline groupBy count", args.cases) as base:
            base.extra["cells"] = spark.read.parquet(src).groupBy("region", "hospital_id", "discharge_month") \
                .count().count()
        rows.append(base)
        with measure("score", args.cases) as m:
            score_cases(spark.read.parquet(src), weights, hospitals, params, YEAR, run_id="bench",
                        scored_at=when).write.parquet(points_path)
        rows.append(m)
        with measure("settle", args.cases) as m:
            points = spark.read.parquet(points_path)
            budgets = {r["region"]: (r["fund"] * Decimal("1.02")).quantize(Decimal("0.01"))
                       for r in points.groupBy("region").agg(F.sum("fund_paid").alias("fund")).collect()}
            rates = base_rates(points, budgets, params)
            cells = hospital_months(rate_cases(points, rates, params), None, YEAR).collect()
            by_region: dict = {r: [] for r in budgets}
            for c in cells:
                by_region[c["region"]].append(HospitalMonth(c["hospital_id"], c["month"], c["cases"], c["points"],
                                                            c["patient"], c["ffs_fund"], Decimal(0), c["rate_fund"],
                                                            c["rate_points"], c["grade"]))
            settled = [settle_region(r, YEAR, params[r], budgets[r], by_region[r], base_rate=rates[r])
                       for r in sorted(by_region)]
            m.extra["hospital-months"] = len(cells)
            m.extra["rows written"] = sum(len(s.hospitals) + len(s.values) + len(s.simulation) for s in settled)
        rows.append(m)
    print()
    print(f"machine: {machine()}; Spark {spark.version}, master {args.master}, "
          f"shuffle partitions {args.shuffle_partitions}")
    print(f"input: {args.cases:,} cases of {YEAR}, {len(regions)} regions, {args.groups} DRGs, "
          f"{args.hospitals} hospitals per region\n")
    print_table("DRG payment: scoring and settlement", rows, baseline="baseline groupBy count")
    spark.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
