"""Generate a synthetic province: raw inpatient and outpatient drops, planted defects and the true DRG costs.

Writes <out>/inpatient/region=<code>/month=<YYYY-MM>/ (CSV or Parquet per region, as conf/province.yaml
says), <out>/inpatient/_defects/, <out>/outpatient/region=<code>/month=<YYYY-MM>/ and the hospital
register <out>/hospitals.csv (for load-hospitals), replaces the
scheme's partition of the synthetic_true_costs table, and logs a run in the MLflow experiment "generate".

Examples:
  casemix generate-claims --cases 100000 --seed 7
  casemix generate-claims --cases 20000 --years 2023-2024 --bad-share 0.05 --out /tmp/drops
  spark-submit jobs/generate_claims.py --conf conf/cluster.yaml --cases 100000000 --partitions 800
"""
from __future__ import annotations

from casemix.jobkit import JobError, job_main

NAME = "generate-claims"
EXPERIMENT = "generate"


def _years(text: str) -> tuple[int, ...]:
    text = text.strip()
    if "-" in text:
        first, last = (int(x) for x in text.split("-", 1))
        return tuple(range(first, last + 1))
    return tuple(int(x) for x in text.split(","))


def add_arguments(parser) -> None:
    parser.add_argument("--cases", type=int, default=100_000, help="inpatient cases (default 100000)")
    parser.add_argument("--seed", type=int, default=20240101, help="seed of the generated province")
    parser.add_argument("--years", default="2022-2024", help="discharge years: 2022-2024 or 2022,2023,2024")
    parser.add_argument("--partitions", type=int, default=None, help="Spark partitions (default: ~250k cases each)")
    parser.add_argument("--out", default=None, help="drops root (default <data_dir>/drops)")
    parser.add_argument("--bad-share", type=float, default=0.01, help="share of cases with a planted defect")
    parser.add_argument("--outpatient-multiple", type=float, default=10.0, help="outpatient visits per case")
    parser.add_argument("--scheme", default="chs-drg-1.1", help="grouping scheme id under schemes.dir")
    parser.add_argument("--regions", default=None, help="comma-separated region codes (default: all)")
    parser.add_argument("--province", default=None, help="province file (default conf/province.yaml)")


def run(ctx, args) -> dict:
    import mlflow

    from casemix.config import ConfigError
    from casemix.generate import GeneratorSpec, SpecError, build_plan, generate_province, load_province
    from casemix.generate.truth import hospital_register
    from casemix.payment import write_register
    from casemix.tracking import start_run

    settings = ctx.settings
    try:
        spec = GeneratorSpec.parse(
            seed=args.seed, n_cases=args.cases, years=_years(args.years), partitions=args.partitions,
            bad_record_share=args.bad_share, outpatient_multiple=args.outpatient_multiple, scheme_id=args.scheme,
            regions=tuple(r.strip() for r in args.regions.split(",")) if args.regions else None,
        )
        province = load_province(args.province or settings.path("conf/province.yaml"))
        plan = build_plan(spec, province, settings.schemes_path)
    except (SpecError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise JobError(str(exc)) from None
    out = (args.out or f"{settings.data_path}/drops").rstrip("/")

    with start_run(settings, EXPERIMENT, job=NAME, run_name=ctx.run_id, tags={"casemix.run_id": ctx.run_id}) as run:
        mlflow.log_params({k: str(v)[:500] for k, v in spec.model_dump().items()})
        mlflow.log_params({"out": out, "partitions_used": plan.partitions, "province_file": province.source_file})
        result = generate_province(ctx.spark, plan, out, run_id=ctx.run_id)
        register = write_register(f"{out}/hospitals.csv", hospital_register(plan))
        result.paths["hospitals"] = str(register)
        version = ctx.store.replace_partitions(
            "synthetic_true_costs", result.truth, where={"scheme_id": [spec.scheme_id]},
            metadata={"casemix.run_id": ctx.run_id, "casemix.job": NAME},
        )
        summary = {
            "run_id": ctx.run_id,
            "mlflow_run_id": run.info.run_id,
            "seed": spec.seed,
            "paths": result.paths,
            "synthetic_true_costs_version": version,
            **result.summary,
        }
        mlflow.log_metrics({"cases": summary["cases"], "rows": summary["rows"],
                            "readmissions": summary["readmissions"],
                            "outpatient_visits": summary["outpatient_visits"],
                            **{f"defects.{k}": v for k, v in summary["defects"].items()},
                            **{f"clean.{k}": v for k, v in summary["clean_cases_by_status"].items()}})
        mlflow.log_dict(summary, "summary.json")
    return summary


main = job_main(__name__)

if __name__ == "__main__":
    raise SystemExit(main())
