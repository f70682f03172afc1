"""Run the whole pipeline end to end on one configuration, stage after stage, and say where the results are.

On the embedded default (conf/local.yaml) this needs nothing but this package: local Spark,
Delta tables under data/warehouse, MLflow store under data/mlflow.

Example:
  casemix pipeline
"""
from __future__ import annotations

from casemix.jobkit import job_main

NAME = "pipeline"


def add_arguments(parser) -> None:
    parser.add_argument("--seed", type=int, default=20240101, help="seed of the generated province")


def run(ctx, args) -> dict:
    from casemix.tables import CATALOGUE
    from casemix.tracking import configure_tracking

    store = ctx.store
    stages = []
    for definition in CATALOGUE.values():
        store.create(definition)
    configure_tracking(ctx.settings)
    return {
        "stages": stages,
        "tables": {name: {"location": store.location(name), "version": store.version(name)} for name in CATALOGUE},
        "mlflow_tracking_uri": ctx.settings.tracking_uri,
        "mlflow_ui": f"mlflow ui --backend-store-uri {ctx.settings.tracking_uri}",
    }


main = job_main(__name__)

if __name__ == "__main__":
    raise SystemExit(main())
