"""Calibrate relative weights (相对权重) per pooling region for a target year from `grouped_claims`.

Writes `relative_weights`, `hospital_indicators` and `calibration_quality` (the run's own partition) and
logs the run in MLflow (`weight-calibration`). An identical earlier run (same spec and inputs) is reused.

The spec is the policy's `calibration` section; `--set KEY=VALUE` overrides a field for this run.

Examples:
  casemix calibrate-weights --target-year 2025
  casemix calibrate-weights --target-year 2025 --region 530100 --set trimming.method=percentile
"""
from __future__ import annotations

from casemix.jobkit import JobError, job_main

NAME = "calibrate-weights"


def add_arguments(parser) -> None:
    parser.add_argument("--target-year", type=int, required=True,
                        help="year the weights pay (data years: the policy's window_years before it)")
    parser.add_argument("--region", action="append", dest="regions", metavar="CODE",
                        help="pooling region to calibrate (repeatable; default: every region with cases)")
    parser.add_argument("--grouped-version", type=int, help="read this version of `grouped_claims` (default: current)")
    parser.add_argument("--set", action="append", dest="overrides", default=[], metavar="KEY=VALUE",
                        help="override a calibration spec field, e.g. trimming.method=log_sd, "
                             "max_yearly_change=0.1 or tilts.GD15=1.1 (VALUE is YAML)")
    parser.add_argument("--no-reuse", action="store_true", help="always start a new run, even for identical inputs")
    parser.add_argument("--no-plots", action="store_true", help="do not draw the run's plots")


def _overrides(pairs) -> dict:
    import yaml

    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise JobError(f"--set {pair!r}: write KEY=VALUE, e.g. --set trimming.method=percentile")
        out[key.strip()] = yaml.safe_load(value)
    return out


def run(ctx, args) -> dict:
    from casemix.calibrate import CalibrationError, load_calibration_spec, override_spec, run_calibration

    try:
        spec = load_calibration_spec(ctx.settings)
        if args.overrides:
            spec = override_spec(spec, _overrides(args.overrides))
        result = run_calibration(ctx.spark, ctx.store, ctx.settings, spec, target_year=args.target_year,
                                 regions=args.regions, grouped_version=args.grouped_version,
                                 reuse=not args.no_reuse, plots=not args.no_plots, job=NAME,
                                 run_name=ctx.run_id, job_run_id=ctx.run_id)
    except CalibrationError as exc:
        raise JobError(str(exc)) from None
    return {"job_run_id": ctx.run_id, **result.summary()}


main = job_main(__name__)

if __name__ == "__main__":
    raise SystemExit(main())
