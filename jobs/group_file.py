"""Group a file of cases with a scheme, without Spark or Java (for people without a cluster).

Input: CSV (UTF-8, header) or Parquet with columns case_id, sex (1/2 or M/F), age_years, age_days,
birth_weight_g, dept, los_days, discharge_status, principal_dx, secondary_dxs, procedures; the last
two hold codes separated by | (principal procedure first) and may be empty.
Output: case_id, mdc, adrg, drg, status, trace (CSV or Parquet, by the output's extension).

Example:
  casemix group-file --scheme chs-drg-1.1 --input cases.csv --output grouped.csv
"""
from __future__ import annotations

from casemix.jobkit import JobError, job_main

NAME = "group-file"


def add_arguments(parser) -> None:
    parser.add_argument("--scheme", required=True, help="scheme id (a folder of schemes.dir) or a scheme folder path")
    parser.add_argument("--input", required=True, help="cases .csv or .parquet")
    parser.add_argument("--output", required=True, help="result .csv or .parquet")


def run(ctx, args) -> dict:
    from pathlib import Path

    from casemix.grouping.files import group_file

    folder = Path(args.scheme)
    if not (folder / "mdc.json").is_file():
        folder = Path(ctx.settings.schemes_path) / args.scheme
    if not (folder / "mdc.json").is_file():
        raise JobError(f"no scheme {args.scheme!r}: neither a scheme folder nor a folder of {ctx.settings.schemes_path}")
    try:
        return group_file(folder, args.input, args.output, cache_dir=ctx.settings.path(ctx.settings.schemes.cache_dir))
    except (ValueError, FileNotFoundError) as exc:
        raise JobError(str(exc)) from None


main = job_main(__name__)

if __name__ == "__main__":
    raise SystemExit(main())
