"""Score a year's inpatient cases under the DRG point method into `case_points`.

Reads `grouped_claims` (the year, plus the readmission window into the next year), the promoted weights
of each region for the year (`promote-weights`) and the hospital register (`load-hospitals`); replaces
the year's partitions of the regions in `case_points`. Parameters: payment.years.<year> of the policy.

Examples:
  casemix score-cases --year 2025
  casemix score-cases --year 2025 --region 530100 --region 532300
"""
from __future__ import annotations

from casemix.jobkit import JobError, job_main

NAME = "score-cases"


def add_arguments(parser) -> None:
    parser.add_argument("--year", type=int, required=True, help="settlement year (discharge year of the cases)")
    parser.add_argument("--region", action="append", dest="regions", metavar="CODE",
                        help="pooling region (repeatable; default: every region with cases in the year)")


def run(ctx, args) -> dict:
    from casemix.calibrate import CalibrationError
    from casemix.payment import PaymentError, score_year
    from casemix.payment.scoring import ScoringError
    from casemix.policy import load_policy

    try:
        summary = score_year(ctx.spark, ctx.store, load_policy(ctx.settings), args.year, regions=args.regions,
                             run_id=ctx.run_id)
    except (PaymentError, CalibrationError, ScoringError) as exc:
        raise JobError(str(exc)) from None
    return {"run_id": ctx.run_id, **summary}


main = job_main(__name__)

if __name__ == "__main__":
    raise SystemExit(main())
