"""A calibration run end to end: inputs, run reuse, MLflow run, the three tables, metrics and artifacts.

:func:`run_calibration` is what the ``calibrate-weights`` job and the recalibration notebook call:

1. read ``grouped_claims`` (a given or the current Delta version) for the data years;
2. list the inputs: the regions (requested, or every region with cases), the scheme model versions in
   the rows read (``scheme_model_version`` per scheme), and, when the spec caps the yearly change, the
   promoted runs it caps against;
3. hash (spec, inputs, :data:`METHOD_VERSION`) and look for a FINISHED run of experiment
   ``weight-calibration`` tagged with that hash whose weights are still in ``relative_weights``: if
   there is one, return it (``reused=True``) and write nothing;
4. otherwise start a run (tags: git commit, config, input versions, scheme model versions, hash, target
   year, regions; params: every spec field), compute (:func:`~casemix.calibrate.calibration.calibrate`),
   replace the run's own partition (``calibration_run_id`` = the MLflow run id) of ``relative_weights``,
   ``hospital_indicators`` and ``calibration_quality``, log metrics per region
   (``<metric>.<region>``) and overall, and artifacts: the three tables as CSV, the spec and inputs as
   JSON, and plots.

``METHOD_VERSION`` is part of the hash: bump it when a formula changes, so old runs are not reused.
The ``synthetic_true_costs`` table (when present) only feeds quality metrics and is not part of the hash.
A run that fails after writing a table leaves that table's partition behind under its run id: it is
FAILED in MLflow, so it is never reused nor promotable (``promote_run`` requires FINISHED).
"""
from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from casemix.calibrate.calibration import calibrate
from casemix.calibrate.cases import calibration_cases, check_inflation
from casemix.calibrate.errors import CalibrationSpecError, NoCasesError
from casemix.calibrate.promotion import EXPERIMENT, TAG_REGIONS, TAG_TARGET_YEAR, promotions
from casemix.calibrate.trimming import mark_kept, trimming_bounds
from casemix.config import Settings
from casemix.policy import CalibrationPolicy
from casemix.storage import DeltaStore

__all__ = ["CalibrationRun", "run_calibration", "calibration_hash", "override_spec", "find_reusable_run",
           "spec_params", "METHOD_VERSION", "TAG_HASH"]

log = logging.getLogger(__name__)

#: version of the formulas; part of the run-reuse hash
METHOD_VERSION = "1"
TAG_HASH = "casemix.calibration.hash"
TAG_REUSED = "casemix.calibration.reused_by"
_OUTPUT_TABLES = ("relative_weights", "hospital_indicators", "calibration_quality")
#: spec fields that are mappings with free keys: ``override_spec`` may add entries to them
_OPEN_MAPPINGS = ("tilts", "inflation")


@dataclass
class CalibrationRun:
    """What :func:`run_calibration` did."""

    run_id: str
    reused: bool
    target_year: int
    regions: list[str]
    input_hash: str
    inputs: dict[str, Any]
    table_versions: dict[str, int] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "reused": self.reused, "target_year": self.target_year,
                "regions": self.regions, "input_hash": self.input_hash, "inputs": self.inputs,
                "table_versions": self.table_versions, "metrics": self.metrics}


def override_spec(spec: CalibrationPolicy, changes: Mapping[str, Any]) -> CalibrationPolicy:
    """``spec`` with dotted-key changes applied and validated, e.g.
    ``override_spec(spec, {"trimming.method": "percentile", "low_volume.method": "shrink"})``; an entry of
    ``tilts`` or ``inflation`` can be set (or added) by its own key: ``{"tilts.GD15": 1.1}``.
    Raises :class:`CalibrationSpecError` naming the key for an unknown key or invalid value."""
    doc = spec.model_dump()
    for dotted, value in changes.items():
        node = doc
        *parents, leaf = dotted.split(".")
        for key in parents:
            if not isinstance(node.get(key), dict):
                raise CalibrationSpecError(f"calibration spec has no section {key!r} (in {dotted!r}); "
                                           f"sections: {', '.join(k for k, v in doc.items() if isinstance(v, dict))}")
            node = node[key]
        if len(parents) == 1 and parents[0] in _OPEN_MAPPINGS:
            # an entry of a free-form mapping (tilts.GD15, inflation.2023) may be a new key; validation
            # checks it (an inflation year must be an integer)
            node[int(leaf) if parents[0] == "inflation" and leaf.isdigit() else leaf] = value
            continue
        if leaf not in node:
            raise CalibrationSpecError(f"calibration spec has no key {dotted!r}; keys here: {', '.join(node)}")
        node[leaf] = value
    return validate_spec(doc)


def validate_spec(spec: CalibrationPolicy | Mapping[str, Any]) -> CalibrationPolicy:
    """Validate a spec (or a dict of one); catches what ``model_copy(update=...)`` does not check."""
    from pydantic import ValidationError

    doc = spec.model_dump() if isinstance(spec, CalibrationPolicy) else dict(spec)
    try:
        return CalibrationPolicy.model_validate(doc)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'spec'}: {e['msg']}" for e in exc.errors())
        raise CalibrationSpecError(f"invalid calibration spec: {problems} (see conf/policy/default.yaml, "
                                   "section calibration)") from None


def spec_params(spec: CalibrationPolicy) -> dict[str, str]:
    """Every spec field as a flat MLflow parameter (``trimming.method`` ...; mappings and lists as JSON)."""
    out: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict) and value and all(isinstance(k, str) for k in value) and prefix not in ("tilts",):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else k, v)
        else:
            text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
            out[prefix] = text[:6000]

    walk("", spec.model_dump(mode="json"))
    return out


def calibration_hash(spec: CalibrationPolicy, inputs: Mapping[str, Any]) -> str:
    """SHA-256 of (formula version, spec, inputs) as canonical JSON."""
    doc = {"method_version": METHOD_VERSION, "spec": spec.model_dump(mode="json"), "inputs": dict(inputs)}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode("utf-8")).hexdigest()


def find_reusable_run(client, experiment_id: str, input_hash: str, store: DeltaStore) -> Optional[str]:
    """The oldest FINISHED run with this hash whose weights are still in ``relative_weights``."""
    runs = client.search_runs(
        [experiment_id], filter_string=f"tags.`{TAG_HASH}` = '{input_hash}' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time ASC"], max_results=20)
    if not runs or not store.exists("relative_weights"):
        return None
    ids = [r.info.run_id for r in runs]
    present = {r[0] for r in store.read("relative_weights").filter(F.col("calibration_run_id").isin(ids))
               .select("calibration_run_id").distinct().collect()}
    return next((i for i in ids if i in present), None)


def _inventory(cases: DataFrame) -> tuple[dict[str, int], dict[str, list[str]]]:
    """Usable cases per region and the scheme model versions in the data years (one aggregation over
    :func:`calibration_cases` output that kept ``scheme_model_version``)."""
    usable = ((F.col("group_status") == "grouped") & ~F.col("excluded")).cast("long")
    rows = (cases.groupBy("region", "scheme_id", F.coalesce(F.col("scheme_model_version"), F.lit("none")).alias("v"))
            .agg(F.sum(usable).alias("n")).collect())
    per_region: dict[str, int] = {}
    versions: dict[str, set] = {}
    for r in rows:
        per_region[r["region"]] = per_region.get(r["region"], 0) + int(r["n"])
        versions.setdefault(r["scheme_id"], set()).add(r["v"])
    return per_region, {s: sorted(v) for s, v in sorted(versions.items())}


def _previous(spark: SparkSession, store: DeltaStore, regions: Sequence[str], target_year: int):
    """The promoted weights of each region's latest promoted target year before ``target_year``:
    (frame region, scheme_id, drg, previous_weight | None, {region: {target_year, run_id}})."""
    rows = [r for r in promotions(store, region=list(regions)) if r["target_year"] < target_year]
    latest: dict[str, dict] = {}
    for r in rows:
        if r["region"] not in latest or r["target_year"] > latest[r["region"]]["target_year"]:
            latest[r["region"]] = {"target_year": int(r["target_year"]), "run_id": r["calibration_run_id"]}
    if not latest:
        return None, {}
    keys = spark.createDataFrame([(reg, v["target_year"], v["run_id"]) for reg, v in sorted(latest.items())],
                                 "region string, target_year int, calibration_run_id string")
    prev = (store.read("relative_weights")
            .filter(F.col("calibration_run_id").isin(sorted({v["run_id"] for v in latest.values()})))
            .join(F.broadcast(keys), ["region", "target_year", "calibration_run_id"], "left_semi")
            .select("region", "scheme_id", "drg", F.col("relative_weight").alias("previous_weight")))
    return prev, dict(sorted(latest.items()))


def _metrics(quality, weights) -> dict[str, float]:
    """Per-region metrics (``<name>.<region>``) and overall ones, from the collected quality and weights."""
    out: dict[str, float] = {}
    per_region = ("riv", "grouping_rate", "trimmed_share", "cv_ge_1_share", "low_volume_groups", "groups",
                  "groups_with_cases", "cases_grouped", "cases_after_trimming", "capped_groups", "budget_ratio",
                  "true_cost_groups", "true_cost_median_abs_error", "true_cost_weighted_abs_error")
    for row in quality.to_dict("records"):
        for name in per_region:
            value = row.get(name)
            if value is not None and value == value:
                out[f"{name}.{row['region']}"] = float(value)
    tot = quality[["cases_all", "cases_excluded", "cases_grouped", "cases_after_trimming"]].sum()
    out["cases_all"] = float(tot["cases_all"])
    out["cases_excluded"] = float(tot["cases_excluded"])
    out["cases_grouped"] = float(tot["cases_grouped"])
    base = tot["cases_all"] - tot["cases_excluded"]
    if base > 0:
        out["grouping_rate"] = float(tot["cases_grouped"] / base)
    if tot["cases_grouped"] > 0:
        out["trimmed_share"] = float(1 - tot["cases_after_trimming"] / tot["cases_grouped"])
    riv = quality["riv"].dropna().astype(float)
    if len(riv):
        out["riv_min"], out["riv_mean"] = float(riv.min()), float(riv.mean())
    out["regions"] = float(len(quality))
    out["groups"] = float(len(weights))
    out["low_volume_groups"] = float(quality["low_volume_groups"].sum())
    cv = weights["cv"].dropna().astype(float)
    if len(cv):
        out["cv_ge_1_share"] = float((cv >= 1).mean())
    out["capped_groups"] = float(quality["capped_groups"].sum())
    out["tilted_groups"] = float(quality["tilted_groups"].sum())
    err = quality["true_cost_weighted_abs_error"].dropna().astype(float)
    if len(err):
        out["true_cost_weighted_abs_error_mean"] = float(err.mean())
        out["true_cost_median_abs_error_max"] = float(quality["true_cost_median_abs_error"].dropna().astype(float).max())
    return out


def _trimming_samples(cases: DataFrame, spec: CalibrationPolicy, weights_pd, groups: int = 4,
                      per_group: int = 4000, seed: int = 7):
    """ln-cost samples (≤ ``per_group`` cases, kept flag by the run's own bounds) of the largest groups."""
    top = weights_pd.sort_values("cases_raw", ascending=False).head(groups)
    if top.empty:
        return None
    keys = cases.sparkSession.createDataFrame(
        [(r.region, r.scheme_id, r.drg, float(min(1.0, per_group / max(1, r.cases_raw)))) for r in top.itertuples()],
        "region string, scheme_id string, drg string, fraction double")
    chosen = (cases.filter((F.col("group_status") == "grouped") & ~F.col("excluded"))
              .join(F.broadcast(keys), ["region", "scheme_id", "drg"]))
    bounds = trimming_bounds(chosen, spec.trimming, ["region", "scheme_id", "drg"])
    marked = mark_kept(chosen, bounds, ["region", "scheme_id", "drg"])
    sample = marked.filter(F.rand(seed) < F.col("fraction")).select("region", "drg", "cost", "kept")
    return sample.toPandas()


def run_calibration(
    spark: SparkSession,
    store: DeltaStore,
    settings: Settings,
    spec: CalibrationPolicy,
    *,
    target_year: int,
    regions: Optional[str | Sequence[str]] = None,
    grouped_version: Optional[int] = None,
    reuse: bool = True,
    plots: bool = True,
    job: str = "calibrate-weights",
    run_name: Optional[str] = None,
    job_run_id: Optional[str] = None,
) -> CalibrationRun:
    """Calibrate ``regions`` (a code or codes; None: every region with cases in the data years) for
    ``target_year`` with ``spec`` (module docstring). Raises :class:`NoCasesError` /
    :class:`CalibrationSpecError`."""
    spec = validate_spec(spec)
    target_year = int(target_year)
    check_inflation(spec, target_year)
    if regions is not None:
        regions = [regions] if isinstance(regions, str) else list(regions)  # a code, not its characters
    if regions is not None and not regions:
        raise CalibrationSpecError("no region to calibrate (an empty list of regions): name at least one, or "
                                   "pass None (the command line: no --region) for every region with cases")
    years = spec.data_years(target_year)
    if not store.exists("grouped_claims"):
        raise NoCasesError("table grouped_claims does not exist: run group-claims first")
    version = grouped_version if grouped_version is not None else store.version("grouped_claims")
    grouped = store.read("grouped_claims", version=version)
    # read once: the inventory materialises the cache the calibration then uses
    cases = calibration_cases(grouped, spec, target_year, keep=("scheme_model_version",)) \
        .persist(StorageLevel.MEMORY_AND_DISK)
    try:
        return _run(spark, store, settings, spec, cases, target_year=target_year, regions=regions, version=version,
                    reuse=reuse, plots=plots, job=job, run_name=run_name, job_run_id=job_run_id)
    finally:
        cases.unpersist()


def _run(spark, store, settings, spec, cases, *, target_year, regions, version, reuse, plots, job, run_name,
         job_run_id) -> CalibrationRun:
    import mlflow

    from casemix.calibrate.plots import cmi_by_hospital, riv_by_region, rw_by_mdc, save_all, trimming_before_after
    from casemix.tracking import configure_tracking, ensure_experiment, start_run

    years = spec.data_years(target_year)
    per_region, scheme_versions = _inventory(cases)
    with_cases = sorted(r for r, n in per_region.items() if n > 0)
    if regions is None:
        chosen = with_cases
        if not chosen:
            raise NoCasesError(f"grouped_claims (version {version}) has no grouped, non-excluded case discharged in "
                               f"{years[0]}-{years[-1]} (the data years of target year {target_year}): check the "
                               "target year or group those months first")
    else:
        chosen = sorted(set(str(r) for r in regions))
        empty = [r for r in chosen if r not in with_cases]
        if empty:
            raise NoCasesError(f"region(s) {', '.join(empty)} have no grouped, non-excluded case in grouped_claims "
                               f"(version {version}) discharged in {years[0]}-{years[-1]}: check the region codes "
                               f"(regions with cases: {', '.join(with_cases) or 'none'}) or the target year")

    previous, cap_reference = (None, {})
    if spec.max_yearly_change is not None:
        previous, cap_reference = _previous(spark, store, chosen, target_year)
    inputs: dict[str, Any] = {"grouped_claims_version": version, "scheme_model_versions": scheme_versions,
                              "regions": chosen, "target_year": target_year}
    if spec.max_yearly_change is not None:
        inputs["cap_reference"] = cap_reference
    input_hash = calibration_hash(spec, inputs)

    client = configure_tracking(settings)
    experiment_id = ensure_experiment(client, settings, EXPERIMENT)
    if reuse:
        found = find_reusable_run(client, experiment_id, input_hash, store)
        if found:
            log.info("calibration %s reuses finished run %s (same spec and inputs)", input_hash[:12], found)
            if job_run_id:
                client.set_tag(found, TAG_REUSED + "." + job_run_id, datetime.now(timezone.utc).isoformat())
            run = client.get_run(found)
            return CalibrationRun(run_id=found, reused=True, target_year=target_year, regions=chosen,
                                  input_hash=input_hash, inputs=inputs, metrics=dict(run.data.metrics))

    truth = store.read("synthetic_true_costs") if store.exists("synthetic_true_costs") else None
    table_inputs = {"grouped_claims": version}
    if cap_reference:
        table_inputs["promoted_weights"] = store.version("promoted_weights")
    if truth is not None:
        table_inputs["synthetic_true_costs"] = store.version("synthetic_true_costs")
    tags = {
        TAG_HASH: input_hash, TAG_TARGET_YEAR: str(target_year), TAG_REGIONS: ",".join(chosen),
        **{f"casemix.scheme.{s}.model_version": ",".join(v) for s, v in scheme_versions.items()},
        **({"casemix.run_id": job_run_id} if job_run_id else {}),
    }
    calibrated_at = datetime.now(timezone.utc)
    with start_run(settings, EXPERIMENT, job=job, run_name=run_name, inputs=table_inputs, tags=tags) as active:
        run_id = active.info.run_id
        mlflow.log_params({
            **spec_params(spec), "target_year": str(target_year), "data_years": ",".join(map(str, years)),
            "normalised_year_weights": json.dumps(spec.normalised_year_weights(target_year)),
            "regions": ",".join(chosen)[:6000], "grouped_claims_version": str(version),
            "scheme_model_versions": json.dumps(scheme_versions, sort_keys=True),
            "cap_reference": json.dumps(cap_reference, sort_keys=True)[:6000],
        })
        result = calibrate(cases, spec, target_year, run_id=run_id, calibrated_at=calibrated_at, regions=chosen,
                           previous=previous, true_costs=truth, persist=True)
        try:
            meta = {"casemix.calibration_run_id": run_id, **({"casemix.run_id": job_run_id} if job_run_id else {})}
            where = {"calibration_run_id": [run_id]}
            versions = {
                "relative_weights": store.replace_partitions("relative_weights", result.relative_weights, where,
                                                             metadata=meta),
                "hospital_indicators": store.replace_partitions("hospital_indicators", result.hospital_indicators,
                                                                where, metadata=meta),
                "calibration_quality": store.replace_partitions("calibration_quality", result.quality, where,
                                                                metadata=meta),
            }
            for name, v in versions.items():
                mlflow.set_tag(f"casemix.output.{name}.version", str(v))
            own = {name: store.read(name, version=v).filter(F.col("calibration_run_id") == run_id).toPandas()
                   for name, v in versions.items()}
            metrics = _metrics(own["calibration_quality"], own["relative_weights"])
            mlflow.log_metrics(metrics)
            with tempfile.TemporaryDirectory() as tmp:
                folder = Path(tmp)
                for name, frame in own.items():
                    frame.sort_values([c for c in ("region", "scheme_id", "drg", "data_year", "hospital_id")
                                       if c in frame.columns]).to_csv(folder / f"{name}.csv", index=False)
                    mlflow.log_artifact(str(folder / f"{name}.csv"), artifact_path="tables")
                (folder / "spec.json").write_text(spec.model_dump_json(indent=2), encoding="utf-8")
                (folder / "inputs.json").write_text(json.dumps(inputs, indent=2, sort_keys=True, default=str),
                                                    encoding="utf-8")
                mlflow.log_artifact(str(folder / "spec.json"))
                mlflow.log_artifact(str(folder / "inputs.json"))
                if plots:
                    figures = {"rw_by_mdc": rw_by_mdc(own["relative_weights"]),
                               "riv_by_region": riv_by_region(own["calibration_quality"]),
                               "cmi_by_hospital": cmi_by_hospital(own["hospital_indicators"])}
                    samples = _trimming_samples(cases, spec, own["relative_weights"])
                    if samples is not None and len(samples):
                        figures["trimming_largest_groups"] = trimming_before_after(samples)
                    for path in save_all(figures, folder / "plots"):
                        mlflow.log_artifact(path, artifact_path="plots")
        finally:
            result.weights.unpersist()
    return CalibrationRun(run_id=run_id, reused=False, target_year=target_year, regions=chosen,
                          input_hash=input_hash, inputs=inputs, table_versions=versions, metrics=metrics)
