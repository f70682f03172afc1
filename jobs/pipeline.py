"""Run the whole pipeline end to end on one configuration, stage after stage, and say where the results are.

Stages: generate-claims (a synthetic province as raw drops, years 2022..<year>) -> ingest-claims ->
register-scheme -> group-claims -> load-hospitals -> calibrate-weights (target <year>, from the three
years before) -> promote-weights (that run) -> score-cases (<year>) -> settle (<year>, HTML report).
On the embedded default (conf/local.yaml) this needs nothing but this package: local Spark, Delta
tables under data/warehouse, MLflow store under data/mlflow.

Example:
  casemix pipeline --cases 20000
"""
from __future__ import annotations

import importlib

from casemix.jobkit import JobContext, build_parser, job_main

NAME = "pipeline"

#: (job module, its arguments from the pipeline's arguments and the earlier stages' summaries), in order
STAGES = (
    ("casemix_jobs.generate_claims",
     lambda a, s: ["--cases", str(a.cases), "--seed", str(a.seed), "--years", f"{a.year - 3}-{a.year}"]),
    ("casemix_jobs.ingest_claims", lambda a, s: []),
    ("casemix_jobs.register_scheme", lambda a, s: []),
    ("casemix_jobs.group_claims", lambda a, s: []),
    ("casemix_jobs.load_hospitals", lambda a, s: []),
    ("casemix_jobs.calibrate_weights", lambda a, s: ["--target-year", str(a.year)]),
    ("casemix_jobs.promote_weights",
     lambda a, s: ["--run-id", s["calibrate-weights"]["run_id"], "--note", "promoted by casemix pipeline"]),
    ("casemix_jobs.score_cases", lambda a, s: ["--year", str(a.year)]),
    ("casemix_jobs.settle", lambda a, s: ["--year", str(a.year)]),
)


def add_arguments(parser) -> None:
    parser.add_argument("--cases", type=int, default=20_000, help="inpatient cases to generate (default 20000)")
    parser.add_argument("--seed", type=int, default=20240101, help="seed of the generated province")
    parser.add_argument("--year", type=int, default=2025,
                        help="settlement year (default 2025): claims are generated for it and the 3 years before")


def run(ctx, args) -> dict:
    from casemix.tables import CATALOGUE

    stages = {}
    for module_name, stage_args in STAGES:
        module = importlib.import_module(module_name)
        stage_ctx = JobContext.create(ctx.settings, module.NAME, spark=ctx.spark, store=ctx.store)
        parsed = build_parser(module).parse_args(stage_args(args, stages))
        stages[module.NAME] = module.run(stage_ctx, parsed)
    store = ctx.store
    return {
        "stages": stages,
        "tables": {name: {"location": store.location(name), "version": store.version(name)} for name in CATALOGUE},
        "mlflow_tracking_uri": ctx.settings.tracking_uri,
        "mlflow_ui": f"mlflow ui --backend-store-uri {ctx.settings.tracking_uri}",
        "report": stages["settle"]["report"],
    }


main = job_main(__name__)

if __name__ == "__main__":
    raise SystemExit(main())
