"""Load audit deductions (审核扣款) into `audit_deductions`, which `settle` subtracts from hospital payments.

The CSV file (UTF-8, header deduction_id,region,hospital_id,month,amount,reason; amount in yuan, month
YYYY-MM = the month the deduction is settled in) is merged by deduction id, so a corrected file replaces
earlier amounts; a file with any bad row is refused with every problem listed.

Example:
  casemix load-deductions --input /data/audit/deductions-2025-03.csv
"""
from __future__ import annotations

from casemix.jobkit import JobError, job_main

NAME = "load-deductions"


def add_arguments(parser) -> None:
    parser.add_argument("--input", required=True, help="deduction CSV file")


def run(ctx, args) -> dict:
    from dataclasses import asdict

    from casemix.payment import RegisterError, read_deductions

    try:
        df = read_deductions(ctx.spark, args.input)
    except RegisterError as exc:
        raise JobError(str(exc)) from None
    result = ctx.store.merge("audit_deductions", df, metadata={"casemix.run_id": ctx.run_id,
                                                               "casemix.source": str(args.input)})
    return {"run_id": ctx.run_id, "input": str(args.input), "merge": asdict(result),
            "audit_deductions_version": result.version}


main = job_main(__name__)

if __name__ == "__main__":
    raise SystemExit(main())
