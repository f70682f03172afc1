"""Group the claims of a period into DRGs with the scheme each region uses, write `grouped_claims`
(the period's partitions replaced: one new version per run) and log the run in MLflow (`grouping`).

The scheme versions are the registered MLflow models the policy's alias names (see register-scheme).

How the rows move is `grouping.io` in the configuration: `files` (the default with the delta-rs engine)
has each Spark task read its claims partitions' files, group and write them with Arrow, no shuffle;
`dataframe` (the default with delta-spark) lets Spark read claims and write grouped_claims.
Both give the same rows.

Examples:
  casemix group-claims                              # every month in `claims`
  casemix group-claims --from-month 2023-01 --to-month 2023-12
"""
from __future__ import annotations

from casemix.jobkit import JobError, job_main

NAME = "group-claims"


def add_arguments(parser) -> None:
    parser.add_argument("--from-month", help="first discharge month, YYYY-MM (default: earliest in claims)")
    parser.add_argument("--to-month", help="last discharge month, YYYY-MM (default: latest in claims)")
    parser.add_argument("--claims-version", type=int, help="read this version of `claims` (default: current)")


def _months(first: str, last: str) -> list[str]:
    y, m = map(int, first.split("-"))
    out = []
    while f"{y:04d}-{m:02d}" <= last:
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def run(ctx, args) -> dict:
    from datetime import datetime, timezone

    import mlflow
    from pyspark.sql import functions as F

    from casemix.grouping.direct import replace_grouped_claims
    from casemix.grouping.distributed import group_claims
    from casemix.grouping.model import SchemeModelError, resolve_scheme
    from casemix.grouping.quality import grouping_metrics
    from casemix.policy import load_policy
    from casemix.tracking import configure_tracking, start_run

    settings, store = ctx.settings, ctx.store
    policy = load_policy(settings).grouping
    configure_tracking(settings)
    versions, dirs = {}, {}
    for scheme_id in policy.schemes:
        try:
            version, folder = resolve_scheme(scheme_id, policy.model_alias)
        except SchemeModelError as exc:
            raise JobError(str(exc)) from None
        versions[scheme_id], dirs[scheme_id] = version.version, folder

    claims_version = args.claims_version if args.claims_version is not None else store.version("claims")
    if claims_version is None:
        raise JobError("table claims does not exist yet: run ingest-claims first")
    io = settings.grouping.io
    if io == "auto":
        io = "files" if store.accepts_data_files else "dataframe"
    elif io == "files" and not store.accepts_data_files:
        raise JobError(f"grouping.io: files needs the delta-rs storage engine (this store is {store.engine})")
    if io == "files":
        files = store.data_files("claims", version=claims_version)
        present = sorted({f.partition_values["discharge_month"] for f in files if f.rows != 0})
    else:
        claims = store.read("claims", version=claims_version)
        present = None
    if args.from_month and args.to_month:
        months = _months(args.from_month, args.to_month)
    else:
        if present is None:
            present = sorted(r[0] for r in claims.select("discharge_month").distinct().collect())
        if not present:
            raise JobError("claims is empty: nothing to group")
        months = _months(args.from_month or present[0], args.to_month or present[-1])

    with start_run(settings, "grouping", job=NAME, run_name=ctx.run_id, inputs={"claims": claims_version},
                   tags={"casemix.run_id": ctx.run_id,
                         **{f"casemix.scheme.{s}.model_version": v for s, v in versions.items()}}):
        mlflow.log_params({"from_month": months[0], "to_month": months[-1], "model_alias": policy.model_alias,
                           "default_scheme": policy.default_scheme, "io": io,
                           **{f"scheme_version.{s}": v for s, v in versions.items()}})
        common = dict(run_id=ctx.run_id, grouped_at=datetime.now(timezone.utc), model_versions=versions,
                      cache_dir=settings.path(settings.schemes.cache_dir))
        meta = {"casemix.run_id": ctx.run_id}
        if io == "files":
            wanted = set(months)
            period = [f for f in files if f.partition_values["discharge_month"] in wanted]
            version, _ = replace_grouped_claims(ctx.spark, store, period, months, dirs, policy, metadata=meta,
                                                batch_rows=settings.spark.arrow_batch_size, **common)
        else:
            grouped = group_claims(claims.filter(F.col("discharge_month").isin(months)), dirs, policy, **common)
            version = store.replace_partitions("grouped_claims", grouped, {"discharge_month": months}, metadata=meta)
        written = store.read("grouped_claims", version=version).filter(F.col("discharge_month").isin(months))
        metrics = grouping_metrics(written)
        mlflow.log_metrics(metrics)
        mlflow.set_tag("casemix.output.grouped_claims.version", str(version))
    return {"run_id": ctx.run_id, "months": [months[0], months[-1]], "claims_version": claims_version, "io": io,
            "grouped_claims_version": version, "scheme_versions": versions, **metrics}


main = job_main(__name__)

if __name__ == "__main__":
    raise SystemExit(main())
