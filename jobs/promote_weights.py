"""Promote one calibration run's relative weights for its regions and target year.

Writes a row per region into `promoted_weights` (latest promotion wins) and sets the MLflow tag
`casemix.promoted.<region>.<year>=true` on the run. Scoring uses only promoted weights.

Examples:
  casemix promote-weights --run-id 3f2a...           # every region the run calibrated
  casemix promote-weights --run-id 3f2a... --region 530100 --note "approved by the bureau, 2024-12-20"
"""
from __future__ import annotations

from casemix.jobkit import JobError, job_main

NAME = "promote-weights"


def add_arguments(parser) -> None:
    parser.add_argument("--run-id", required=True, help="MLflow run id of the calibration (calibrate-weights prints it)")
    parser.add_argument("--region", action="append", dest="regions", metavar="CODE",
                        help="region to promote (repeatable; default: every region of the run)")
    parser.add_argument("--by", dest="promoted_by", help="who promotes (default: $CASEMIX_USER or the login name)")
    parser.add_argument("--note", help="why (approval reference, ...)")


def run(ctx, args) -> dict:
    from casemix.calibrate import CalibrationError, promote_run

    try:
        rows = promote_run(ctx.settings, ctx.store, args.run_id, regions=args.regions,
                           promoted_by=args.promoted_by, note=args.note)
    except CalibrationError as exc:
        raise JobError(str(exc)) from None
    return {"run_id": args.run_id, "promoted": rows, "promoted_weights_version": ctx.store.version("promoted_weights")}


main = job_main(__name__)

if __name__ == "__main__":
    raise SystemExit(main())
