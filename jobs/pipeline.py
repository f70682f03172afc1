"""Run the whole pipeline end to end on one configuration, stage after stage, and say where the results are.

Stages: generate-claims (a synthetic province as raw drops) -> ingest-claims -> register-scheme ->
group-claims. On the embedded default (conf/local.yaml) this needs nothing but this package: local
Spark, Delta tables under data/warehouse, MLflow store under data/mlflow.

Example:
  casemix pipeline --cases 20000
"""
from __future__ import annotations

import importlib

from casemix.jobkit import JobContext, build_parser, job_main

NAME = "pipeline"

#: (job module, its arguments) in data-flow order
STAGES = (
    ("casemix_jobs.generate_claims", lambda a: ["--cases", str(a.cases), "--seed", str(a.seed)]),
    ("casemix_jobs.ingest_claims", lambda a: []),
    ("casemix_jobs.register_scheme", lambda a: []),
    ("casemix_jobs.group_claims", lambda a: []),
)


def add_arguments(parser) -> None:
    parser.add_argument("--cases", type=int, default=20_000, help="inpatient cases to generate (default 20000)")
    parser.add_argument("--seed", type=int, default=20240101, help="seed of the generated province")


def run(ctx, args) -> dict:
    from casemix.tables import CATALOGUE

    stages = {}
    for module_name, stage_args in STAGES:
        module = importlib.import_module(module_name)
        stage_ctx = JobContext.create(ctx.settings, module.NAME, spark=ctx.spark, store=ctx.store)
        parsed = build_parser(module).parse_args(stage_args(args))
        stages[module.NAME] = module.run(stage_ctx, parsed)
    store = ctx.store
    return {
        "stages": stages,
        "tables": {name: {"location": store.location(name), "version": store.version(name)} for name in CATALOGUE},
        "mlflow_tracking_uri": ctx.settings.tracking_uri,
        "mlflow_ui": f"mlflow ui --backend-store-uri {ctx.settings.tracking_uri}",
    }


main = job_main(__name__)

if __name__ == "__main__":
    raise SystemExit(main())
