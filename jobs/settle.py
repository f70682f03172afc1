"""Settle a year: point values, monthly provisional and year-end payments per hospital, simulation, report.

Reads `case_points` of the year, the regions' budgets (payment.years.<year>.budget), `audit_deductions`
(when the table exists); writes `hospital_settlements`, `point_values` and `payment_simulation` (the
year's partitions of the regions), an HTML report under <data_dir>/reports/, and an MLflow run in
experiment `settlement`. Stops without writing when a region does not reconcile to the fen.

With --through MONTH it simulates January..MONTH only (模拟运行 of the year so far, budget = those months'
shares): it writes payment_simulation, the report and the MLflow run, not the settlement tables.

Examples:
  casemix settle --year 2025
  casemix settle --year 2025 --region 530100 --report /tmp/settlement-2025.html
  casemix settle --year 2025 --through 6            # simulate the first half year
"""
from __future__ import annotations

from casemix.jobkit import JobError, job_main

NAME = "settle"


def add_arguments(parser) -> None:
    parser.add_argument("--year", type=int, required=True, help="settlement year")
    parser.add_argument("--region", action="append", dest="regions", metavar="CODE",
                        help="pooling region (repeatable; default: every region with scored cases)")
    parser.add_argument("--report", default=None, help="HTML report path (default <data_dir>/reports/settlement-<year>.html)")
    parser.add_argument("--through", type=int, default=12, metavar="MONTH",
                        help="simulate January..MONTH only (模拟运行 of the year so far, with those months' budget): "
                             "writes payment_simulation and the report, not the settlement tables")


def run(ctx, args) -> dict:
    import mlflow

    from casemix.payment import SETTLEMENT_EXPERIMENT, PaymentError, settle_year, write_settlement
    from casemix.payment.report import write_report
    from casemix.policy import load_policy
    from casemix.tracking import start_run

    store = ctx.store
    inputs = {t: store.version(t) for t in ("case_points", "claims", "audit_deductions") if store.exists(t)}
    try:
        result = settle_year(ctx.spark, store, load_policy(ctx.settings), args.year, regions=args.regions,
                             run_id=ctx.run_id, through=args.through)
    except PaymentError as exc:
        raise JobError(str(exc)) from None
    simulation_only = args.through < 12
    period = f"{args.year}" if not simulation_only else f"{args.year}-01..{args.year}-{args.through:02d}"
    report = args.report or f"{ctx.settings.data_path}/reports/settlement-{period.replace('..', '_')}.html"
    values = [v for r in result.results for v in r.values]
    simulation = [s for r in result.results for s in r.simulation]
    with start_run(ctx.settings, SETTLEMENT_EXPERIMENT, job=NAME, run_name=ctx.run_id, inputs=inputs,
                   tags={"casemix.run_id": ctx.run_id, "casemix.settlement.year": str(args.year),
                         "casemix.settlement.period": period,
                         "casemix.settlement.simulation_only": str(simulation_only).lower()}) as run:
        try:
            versions = write_settlement(store, result, run_id=ctx.run_id, simulation_only=simulation_only)
        except PaymentError as exc:
            raise JobError(str(exc)) from None
        path = write_report(report, args.year, values, simulation, run_id=ctx.run_id,
                            title=f"DRG payment simulation {period}")
        year_values = [v for v in values if v["period_type"] == "year"]
        mlflow.log_params({"year": args.year, "regions": ",".join(result.regions)})
        mlflow.log_params({f"method.{v['region']}": v["method"] for v in year_values})
        metrics = {}
        for v in year_values:
            r = v["region"]
            metrics[f"budget.{r}"] = float(v["budget"])
            metrics[f"surplus.{r}"] = float(v["surplus"])
            metrics[f"settlement_total.{r}"] = float(v["settlement_total"])
            if v["point_value"] is not None:
                metrics[f"point_value.{r}"] = float(v["point_value"])
            if v["base_rate"] is not None:
                metrics[f"base_rate.{r}"] = float(v["base_rate"])
        metrics["ffs_fund"] = float(sum(s["ffs_fund"] for s in simulation))
        metrics["point_fund"] = float(sum(s["point_fund"] for s in simulation))
        metrics["rate_fund"] = float(sum(s["rate_fund"] for s in simulation))
        mlflow.log_metrics(metrics)
        mlflow.log_artifact(str(path))
        mlflow.log_dict({"budgets": {k: str(v) for k, v in result.budgets.items()},
                         "base_rates": {k: str(v) for k, v in result.base_rates.items()},
                         "regions": [{k: str(x) if x is not None else None for k, x in v.items()} for v in year_values]},
                        "settlement.json")
    return {"run_id": ctx.run_id, "mlflow_run_id": run.info.run_id, "year": args.year, "period": period,
            "simulation_only": simulation_only, "regions": result.regions,
            "report": str(path), "versions": versions,
            "point_values": {v["region"]: str(v["point_value"] if v["point_value"] is not None else v["base_rate"])
                             for v in year_values}}


main = job_main(__name__)

if __name__ == "__main__":
    raise SystemExit(main())
