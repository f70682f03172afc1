"""Ingest raw inpatient claim drops: validate every record, merge the valid ones into `claims`,
quarantine the rest in `claims_rejected` with every reason code, and log a data-quality summary.

Records read = accepted + rejected (accepted = inserted + updated + unchanged + superseded); a run
where the counts do not add up fails. Re-ingesting the same drops leaves `claims` as it was.

Examples:
  casemix ingest-claims                         # every drop under <data_dir>/drops/inpatient
  casemix ingest-claims data/drops/inpatient/region=530100/month=2023-01
"""
from __future__ import annotations

from pathlib import Path

from casemix.jobkit import JobError, job_main

NAME = "ingest-claims"


def add_arguments(parser) -> None:
    parser.add_argument("paths", nargs="*", help="drops roots, drop folders or files (default: <data_dir>/drops/inpatient)")


def run(ctx, args) -> dict:
    import mlflow

    from casemix.codes import load_codebook
    from casemix.ingest import discover_drops, ingest_drops
    from casemix.ingest.pseudonym import MissingKeyError, load_key
    from casemix.tracking import start_run

    settings = ctx.settings
    try:
        key = load_key(settings)
    except MissingKeyError as exc:
        raise JobError(str(exc)) from None
    paths = args.paths or [str(Path(settings.data_path) / "drops" / "inpatient")]
    files = discover_drops(paths)
    if not files:
        raise JobError(f"no drop files (.csv / .parquet in region=<code>/month=<YYYY-MM> folders) under {paths}")
    book = load_codebook(Path(settings.schemes_path) / settings.schemes.dictionary)
    store = ctx.store
    inputs = {"claims": store.version("claims")}
    with start_run(settings, "ingest", job=NAME, run_name=ctx.run_id, inputs=inputs,
                   tags={"casemix.run_id": ctx.run_id, "casemix.pseudonym_key": key.label}):
        mlflow.log_params({"paths": ",".join(paths)[:500], "files": len(files), "dictionary": settings.schemes.dictionary,
                           "pseudonym_key": key.label})
        result = ingest_drops(ctx.spark, store, files, book, key, ctx.run_id)
        mlflow.log_metrics({k: getattr(result, k) for k in
                            ("read", "accepted", "rejected", "inserted", "updated", "unchanged", "superseded")})
        mlflow.log_metrics({f"reason.{code}": n for code, n in result.reasons.items()})
        mlflow.set_tags({f"casemix.output.{t}.version": v for t, v in result.versions.items()})
        quality = store.read("ingest_quality").filter(f"ingest_run_id = '{ctx.run_id}'").toPandas()
        mlflow.log_table(quality, "ingest_quality.json")
    summary = result.as_dict()
    if key.is_demo:
        summary["warning"] = "pseudonymised with the PUBLIC DEMO KEY: demo data only"
    return summary


main = job_main(__name__)

if __name__ == "__main__":
    raise SystemExit(main())
