"""Promoted weights: which calibration run's weights a region pays with in a target year.

A promotion is two things, written in this order:

1. a row (region, target_year, calibration_run_id, promoted_at, promoted_by, note) merged into the
   ``promoted_weights`` Delta table by (region, target_year); the latest promotion wins, earlier ones stay
   in the table's history (``store.read("promoted_weights", version=...)``). This table is what scoring
   reads, through :func:`promoted_weights`;
2. the MLflow tag ``casemix.promoted.<region>.<target_year> = true`` on the run (and ``false`` plus
   ``...superseded_by = <run id>`` on the run it replaces), so the MLflow UI shows it.
"""
from __future__ import annotations

import getpass
import os
from datetime import datetime, timezone
from typing import Optional, Sequence

from mlflow.exceptions import MlflowException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from casemix.calibrate.errors import NoPromotedWeightsError, PromotionError
from casemix.config import Settings
from casemix.storage import DeltaStore
from casemix.tables import table

__all__ = ["promote_run", "promoted_weights", "promotions", "promotion_tag", "EXPERIMENT",
           "TAG_TARGET_YEAR", "TAG_REGIONS"]

EXPERIMENT = "weight-calibration"
TAG_TARGET_YEAR = "casemix.calibration.target_year"
TAG_REGIONS = "casemix.calibration.regions"


def promotion_tag(region: str, target_year: int) -> str:
    return f"casemix.promoted.{region}.{int(target_year)}"


def promotions(store: DeltaStore, *, region: Optional[str | Sequence[str]] = None,
               target_year: Optional[int] = None) -> list[dict]:
    """The current rows of ``promoted_weights`` (a small table), optionally for some regions / a year,
    sorted by region and year."""
    if not store.exists("promoted_weights"):
        return []
    df = store.read("promoted_weights")
    if region is not None:
        df = df.filter(F.col("region").isin([region] if isinstance(region, str) else list(region)))
    if target_year is not None:
        df = df.filter(F.col("target_year") == int(target_year))
    return sorted((r.asDict() for r in df.collect()), key=lambda r: (r["region"], r["target_year"]))


def promoted_weights(spark: SparkSession, store: DeltaStore, region: Optional[str | Sequence[str]] = None,
                     target_year: Optional[int] = None, *, require: bool = True) -> DataFrame:
    """The ``relative_weights`` rows of the promoted run of each (region, target year), and only those.

    ``region``: a code or codes (None: every region with a promotion); ``target_year``: None = every
    promoted year. With ``require`` (default) a requested region without a promotion for the year, or
    no promotion at all, raises :class:`NoPromotedWeightsError` naming the command that fixes it.
    """
    rows = promotions(store, region=region, target_year=target_year)
    wanted = [region] if isinstance(region, str) else (list(region) if region is not None else None)
    if require:
        missing = sorted(set(wanted or []) - {r["region"] for r in rows}) if wanted else ([] if rows else ["any"])
        if missing:
            year = f" for target year {target_year}" if target_year is not None else ""
            raise NoPromotedWeightsError(
                f"no promoted relative weights for region(s) {', '.join(missing)}{year}: calibrate "
                "(casemix calibrate-weights --target-year YEAR) and promote a run "
                "(casemix promote-weights --run-id RUN_ID)"
            )
    definition = table("relative_weights")
    if not rows:
        return spark.createDataFrame([], definition.schema)
    keys = spark.createDataFrame(
        [(r["region"], int(r["target_year"]), r["calibration_run_id"]) for r in rows],
        "region string, target_year int, calibration_run_id string")
    run_ids = sorted({r["calibration_run_id"] for r in rows})
    weights = store.read("relative_weights").filter(F.col("calibration_run_id").isin(run_ids))
    return weights.join(F.broadcast(keys), ["region", "target_year", "calibration_run_id"], "left_semi") \
        .select(*definition.columns)


def _client(settings: Settings):
    from casemix.tracking import configure_tracking

    return configure_tracking(settings)


def promote_run(settings: Settings, store: DeltaStore, run_id: str, *,
                regions: Optional[str | Sequence[str]] = None,
                promoted_by: Optional[str] = None, note: Optional[str] = None,
                promoted_at: Optional[datetime] = None) -> list[dict]:
    """Promote the weights of calibration run ``run_id`` for ``regions`` (None: every region the run
    calibrated) and the run's target year; returns the promotion rows written (module docstring).

    Raises :class:`PromotionError` when the run is unknown, not a finished ``weight-calibration`` run, or
    has no weights for a requested region.
    """
    client = _client(settings)
    try:
        run = client.get_run(run_id)
    except MlflowException:
        raise PromotionError(
            f"no MLflow run {run_id!r} in {settings.tracking_uri}: use the run id calibrate-weights printed "
            "(or the MLflow UI, experiment weight-calibration)"
        ) from None
    experiment = client.get_experiment(run.info.experiment_id)
    if experiment is None or experiment.name != EXPERIMENT:
        raise PromotionError(f"run {run_id} belongs to experiment "
                             f"{experiment.name if experiment else '?'!r}, not {EXPERIMENT!r}: promote a calibration run")
    if run.info.status != "FINISHED":
        raise PromotionError(f"run {run_id} is {run.info.status}, not FINISHED: only a completed calibration "
                             "can be promoted; re-run calibrate-weights")
    tags = run.data.tags
    try:
        target_year = int(tags[TAG_TARGET_YEAR])
        run_regions = [r for r in tags[TAG_REGIONS].split(",") if r]
    except (KeyError, ValueError):
        raise PromotionError(f"run {run_id} has no {TAG_TARGET_YEAR}/{TAG_REGIONS} tags: it was not written by "
                             "casemix calibrate-weights") from None
    if isinstance(regions, str):  # one code, not its characters
        regions = [regions]
    chosen = list(dict.fromkeys(str(r) for r in regions)) if regions else run_regions  # each region once
    unknown = sorted(set(chosen) - set(run_regions))
    if unknown:
        raise PromotionError(f"run {run_id} did not calibrate region(s) {', '.join(unknown)} "
                             f"(it calibrated {', '.join(run_regions)}): calibrate them first")
    if not store.exists("relative_weights"):
        raise PromotionError("table relative_weights does not exist: run calibrate-weights first")
    present = {r["region"] for r in store.read("relative_weights")
               .filter((F.col("calibration_run_id") == run_id) & F.col("region").isin(chosen))
               .select("region").distinct().collect()}
    lacking = sorted(set(chosen) - present)
    if lacking:
        raise PromotionError(f"table relative_weights holds no weights of run {run_id} for region(s) "
                             f"{', '.join(lacking)}: re-run the calibration (it writes them) before promoting")

    when = promoted_at or datetime.now(timezone.utc)
    who = promoted_by or os.environ.get("CASEMIX_USER") or getpass.getuser()
    before = {r["region"]: r["calibration_run_id"] for r in promotions(store, region=chosen, target_year=target_year)}
    rows = [{"region": r, "target_year": target_year, "calibration_run_id": run_id, "promoted_at": when,
             "promoted_by": who, "note": note} for r in chosen]
    df = store.spark.createDataFrame([tuple(r.values()) for r in rows], table("promoted_weights").schema)
    store.merge("promoted_weights", df, metadata={"casemix.promoted_run": run_id})
    for r in chosen:
        tag = promotion_tag(r, target_year)
        client.set_tag(run_id, tag, "true")
        old = before.get(r)
        if old and old != run_id:
            try:
                client.set_tag(old, tag, "false")
                client.set_tag(old, tag + ".superseded_by", run_id)
            except MlflowException:  # the old run was deleted: the table keeps the history
                pass
    return rows
