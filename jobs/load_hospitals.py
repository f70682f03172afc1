"""Load the hospital register (定点医疗机构: region, grade, type) into the `hospitals` table.

The CSV file (UTF-8, header hospital_id,region,name,grade,hospital_type) is merged by hospital id; a file
with any bad row is refused with every problem listed. `generate-claims` writes the synthetic province's
register to <data_dir>/drops/hospitals.csv, the default input.

Examples:
  casemix load-hospitals
  casemix load-hospitals --input /data/register/hospitals-2025.csv
"""
from __future__ import annotations

from casemix.jobkit import JobError, job_main

NAME = "load-hospitals"


def add_arguments(parser) -> None:
    parser.add_argument("--input", default=None, help="register CSV (default <data_dir>/drops/hospitals.csv)")


def run(ctx, args) -> dict:
    from dataclasses import asdict

    from casemix.payment import RegisterError, read_register

    path = args.input or f"{ctx.settings.data_path}/drops/hospitals.csv"
    try:
        df = read_register(ctx.spark, path)
    except RegisterError as exc:
        raise JobError(str(exc)) from None
    result = ctx.store.merge("hospitals", df, metadata={"casemix.run_id": ctx.run_id, "casemix.source": str(path)})
    return {"run_id": ctx.run_id, "input": str(path), "rows": result.source_rows, "merge": asdict(result),
            "hospitals_version": result.version}


main = job_main(__name__)

if __name__ == "__main__":
    raise SystemExit(main())
