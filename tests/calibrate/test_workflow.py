"""The calibration run: tables, MLflow run, run reuse, all regions vs one, promotion, the two jobs."""
from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient
from pyspark.sql import functions as F

from casemix.calibrate import (
    CalibrationSpecError,
    NoCasesError,
    calibration_hash,
    NoPromotedWeightsError,
    PromotionError,
    promote_run,
    promoted_weights,
    run_calibration,
)
from casemix.jobkit import JobContext, JobError, build_parser
from casemix.policy import CalibrationPolicy
from casemix.tracking import configure_tracking, ensure_experiment
from tests.calibrate.conftest import spec

REGIONS = ["530100", "530300", "530400"]


def own_rows(store, name, run_id, *order):
    return (store.read(name).filter(F.col("calibration_run_id") == run_id).drop("calibrated_at", "calibration_run_id")
            .orderBy(*order).toPandas())


def job(module_name, ctx, argv):
    import importlib

    module = importlib.import_module(module_name)
    return module.run(ctx, build_parser(module).parse_args(argv))


def test_a_run_writes_its_tables_and_logs_spec_inputs_metrics_and_artifacts(spark, store, settings, write_grouped):
    version = write_grouped()
    run = run_calibration(spark, store, settings, CalibrationPolicy(), target_year=2025)
    assert not run.reused and run.regions == REGIONS
    client = MlflowClient(tracking_uri=settings.tracking_uri)
    logged = client.get_run(run.run_id)
    assert client.get_experiment(logged.info.experiment_id).name == "weight-calibration"
    assert logged.info.status == "FINISHED"
    params, tags, metrics = logged.data.params, logged.data.tags, logged.data.metrics
    assert params["trimming.method"] == "iqr" and params["trimming.iqr_k"] == "1.5"
    assert params["year_weights"] == "[2.0, 3.0, 5.0]" and params["data_years"] == "2022,2023,2024"
    assert params["low_volume.min_cases"] == "5" and params["exclusions.max_los_days"] == "60"
    assert tags["casemix.input.grouped_claims.version"] == str(version)
    assert tags["casemix.scheme.chs-drg-1.1.model_version"] == "1"
    assert tags["casemix.calibration.regions"] == ",".join(REGIONS)
    assert tags["casemix.git_commit"]
    assert {f"riv.{r}" for r in REGIONS} <= set(metrics) and "grouping_rate" in metrics
    artifacts = {a.path for a in client.list_artifacts(run.run_id)} | \
        {a.path for d in ("tables", "plots") for a in client.list_artifacts(run.run_id, d)}
    assert {"tables/relative_weights.csv", "tables/hospital_indicators.csv", "tables/calibration_quality.csv",
            "spec.json", "inputs.json", "plots/rw_by_mdc.png", "plots/riv_by_region.png",
            "plots/cmi_by_hospital.png", "plots/trimming_largest_groups.png"} <= artifacts

    weights = own_rows(store, "relative_weights", run.run_id, "region", "drg")
    quality = own_rows(store, "calibration_quality", run.run_id, "region")
    assert sorted(weights["region"].unique()) == REGIONS and list(quality["region"]) == REGIONS
    assert (weights["base_points"] == weights["relative_weight"] * 100).all()
    # the per-region metrics are the quality table's values
    for region, row in quality.set_index("region").iterrows():
        assert metrics[f"riv.{region}"] == pytest.approx(float(row["riv"]), rel=1e-12)
        assert metrics[f"grouping_rate.{region}"] == pytest.approx(float(row["grouping_rate"]), rel=1e-12)
    assert store.history("relative_weights")[0]["casemix.calibration_run_id"] == run.run_id


def test_an_all_regions_run_gives_each_region_what_a_single_region_run_gives(spark, store, settings, write_grouped):
    write_grouped()
    everything = run_calibration(spark, store, settings, CalibrationPolicy(), target_year=2025, plots=False)
    alone = run_calibration(spark, store, settings, CalibrationPolicy(), target_year=2025, regions=["530300"],
                            plots=False)
    assert alone.run_id != everything.run_id and alone.regions == ["530300"]
    for name, order in (("relative_weights", ("scheme_id", "drg")), ("calibration_quality", ("region",)),
                        ("hospital_indicators", ("data_year", "hospital_id"))):
        a = own_rows(store, name, alone.run_id, *order)
        e = own_rows(store, name, everything.run_id, *order)
        e = e[e["region"] == "530300"].reset_index(drop=True)
        assert len(a) == len(e) > 0
        for col in a.columns:
            if a[col].dtype.kind == "f":
                assert a[col].fillna(-1).to_numpy() == pytest.approx(e[col].fillna(-1).to_numpy(), rel=1e-12), col
            else:
                assert a[col].tolist() == e[col].tolist(), col


def test_an_identical_rerun_reuses_the_finished_run_and_writes_nothing(spark, store, settings, write_grouped):
    version = write_grouped()
    inputs = {"grouped_claims_version": version, "scheme_model_versions": {"chs-drg-1.1": ["1"]},
              "regions": REGIONS, "target_year": 2025}
    expected_hash = calibration_hash(CalibrationPolicy(), inputs)
    # a FAILED run with the same hash is never reused
    client = MlflowClient(tracking_uri=settings.tracking_uri)
    experiment = ensure_experiment(configure_tracking(settings), settings, "weight-calibration")
    failed = client.create_run(experiment, tags={"casemix.calibration.hash": expected_hash})
    client.set_terminated(failed.info.run_id, "FAILED")

    first = run_calibration(spark, store, settings, CalibrationPolicy(), target_year=2025, plots=False)
    assert (first.reused, first.input_hash, first.inputs) == (False, expected_hash, inputs)
    versions = {t: store.version(t) for t in ("relative_weights", "hospital_indicators", "calibration_quality")}
    again = run_calibration(spark, store, settings, CalibrationPolicy(), target_year=2025, plots=False)
    assert (again.reused, again.run_id, again.input_hash) == (True, first.run_id, first.input_hash)
    assert {t: store.version(t) for t in versions} == versions
    assert len(client.search_runs([experiment])) == 2  # the failed one and the first
    # (a changed spec is a new run: see the promotion test's second calibration and the hash test below)


def test_the_reuse_hash_changes_with_every_input_and_spec_field():
    inputs = {"grouped_claims_version": 3, "scheme_model_versions": {"chs-drg-1.1": ["1"]},
              "regions": REGIONS, "target_year": 2025}
    base = calibration_hash(CalibrationPolicy(), inputs)
    assert calibration_hash(CalibrationPolicy(), dict(inputs)) == base
    changed = [
        {**inputs, "grouped_claims_version": 4},
        {**inputs, "scheme_model_versions": {"chs-drg-1.1": ["2"]}},
        {**inputs, "regions": REGIONS[:1]},
        {**inputs, "target_year": 2026},
    ]
    assert len({calibration_hash(CalibrationPolicy(), c) for c in changed} | {base}) == 5
    for change in ({"trimming.iqr_k": 2.0}, {"year_weights": [1, 2, 7]}, {"low_volume.method": "shrink"},
                   {"tilts": {"GD15": 1.1}}, {"max_yearly_change": 0.1}, {"inflation": {2022: 1.1, 2023: 1.05,
                                                                                        2024: 1.0}}):
        assert calibration_hash(spec(**change), inputs) != base, change


def test_promoted_weights_are_the_latest_promoted_run_per_region_and_year(spark, store, settings, write_grouped):
    write_grouped()
    ctx = JobContext.create(settings, "test", spark=spark, store=store)
    with pytest.raises(NoPromotedWeightsError, match="promote-weights"):
        promoted_weights(spark, store, "530100", 2025)
    first = job("casemix_jobs.calibrate_weights", ctx, ["--target-year", "2025", "--no-plots"])
    second = job("casemix_jobs.calibrate_weights", ctx, ["--target-year", "2025", "--no-plots",
                                                         "--set", "trimming.method=percentile"])
    assert first["run_id"] != second["run_id"] and not second["reused"]
    job("casemix_jobs.promote_weights", ctx, ["--run-id", first["run_id"], "--by", "tester", "--note", "first"])
    done = job("casemix_jobs.promote_weights", ctx, ["--run-id", second["run_id"], "--region", "530100",
                                                    "--region", "530100", "--by", "tester"])  # named twice: once
    assert [r["region"] for r in done["promoted"]] == ["530100"]

    got = promoted_weights(spark, store, target_year=2025).toPandas()
    runs = got.groupby("region")["calibration_run_id"].unique().to_dict()
    assert {r: list(v) for r, v in runs.items()} == {"530100": [second["run_id"]], "530300": [first["run_id"]],
                                                     "530400": [first["run_id"]]}
    expected = store.read("relative_weights").filter(
        (F.col("calibration_run_id") == second["run_id"]) & (F.col("region") == "530100")).count()
    assert len(got[got["region"] == "530100"]) == expected
    assert promoted_weights(spark, store, "530300", 2025).count() == len(got[got["region"] == "530300"])
    with pytest.raises(NoPromotedWeightsError, match="530999"):
        promoted_weights(spark, store, ["530100", "530999"], 2025)

    client = MlflowClient(tracking_uri=settings.tracking_uri)
    tags1 = client.get_run(first["run_id"]).data.tags
    tags2 = client.get_run(second["run_id"]).data.tags
    assert tags2["casemix.promoted.530100.2025"] == "true"
    assert tags1["casemix.promoted.530100.2025"] == "false"
    assert tags1["casemix.promoted.530100.2025.superseded_by"] == second["run_id"]
    assert tags1["casemix.promoted.530300.2025"] == "true"
    # the earlier promotion stays in the table's history
    history = store.read("promoted_weights", version=store.version("promoted_weights") - 1)
    assert history.filter("region = '530100'").collect()[0]["calibration_run_id"] == first["run_id"]
    assert history.filter("region = '530100'").collect()[0]["note"] == "first"

    with pytest.raises(JobError, match="no MLflow run 'nope'"):
        job("casemix_jobs.promote_weights", ctx, ["--run-id", "nope"])
    with pytest.raises(PromotionError, match=r"did not calibrate region\(s\) 530999 "):
        promote_run(settings, store, first["run_id"], regions="530999")  # a code, not its characters


def test_the_cap_compares_with_the_promoted_weights_of_the_previous_target_year(spark, store, settings, write_grouped):
    write_grouped()
    base = run_calibration(spark, store, settings, spec(**{"window_years": 2, "year_weights": [1, 1]}),
                           target_year=2024, regions=["530100"], plots=False)
    promote_run(settings, store, base.run_id)
    capped_spec = spec(max_yearly_change=0.02)
    capped = run_calibration(spark, store, settings, capped_spec, target_year=2025, regions=["530100"], plots=False)
    assert capped.inputs["cap_reference"] == {"530100": {"target_year": 2024, "run_id": base.run_id}}
    prev = own_rows(store, "relative_weights", base.run_id, "drg").set_index("drg")["relative_weight"]
    now = own_rows(store, "relative_weights", capped.run_id, "drg").set_index("drg")
    assert (now["previous_weight"] == prev.reindex(now.index)).all()
    ratio = now["relative_weight"] / now["previous_weight"]
    assert ratio.between(0.98 - 1e-12, 1.02 + 1e-12).all()
    assert now["capped"].any()
    assert (now.loc[now["capped"], "relative_weight"] / now.loc[now["capped"], "previous_weight"] - 1).abs() \
        .to_numpy() == pytest.approx(0.02, rel=1e-9)


def test_unknown_regions_and_empty_years_fail_with_what_to_do(spark, store, settings, write_grouped):
    with pytest.raises(NoCasesError, match="run group-claims first"):
        run_calibration(spark, store, settings, CalibrationPolicy(), target_year=2025)
    write_grouped(cases=500)
    with pytest.raises(NoCasesError, match=r"530999 have no grouped.*regions with cases: 530100, 530300, 530400"):
        run_calibration(spark, store, settings, CalibrationPolicy(), target_year=2025, regions=["530999"])
    with pytest.raises(NoCasesError, match="2027-2029"):
        run_calibration(spark, store, settings, CalibrationPolicy(), target_year=2030)
    # one code is one region (not its characters); an empty list is a mistake, not an empty run
    with pytest.raises(NoCasesError, match=r"region\(s\) 530999 have no grouped"):
        run_calibration(spark, store, settings, CalibrationPolicy(), target_year=2025, regions="530999")
    with pytest.raises(CalibrationSpecError, match="no region to calibrate"):
        run_calibration(spark, store, settings, CalibrationPolicy(), target_year=2025, regions=[])
    assert not store.exists("relative_weights")


def test_writing_a_run_again_replaces_only_its_own_partition(spark, store):
    from casemix.calibrate import calibrate, calibration_cases
    from tests.calibrate.conftest import AT, claims

    rows = [("R1", "H1", "2024-06", 3, c, "AA11") for c in (100, 200, 300)] + \
           [("R1", "H1", "2024-06", 3, c, "BB11") for c in (400, 500)]
    s = spec(**{"low_volume.min_cases": 0})
    cases = calibration_cases(claims(spark, rows), s, 2025)

    def write(run_id):
        table = calibrate(cases, s, 2025, run_id=run_id, calibrated_at=AT).relative_weights
        return store.replace_partitions("relative_weights", table, {"calibration_run_id": [run_id]})

    write("run-a"), write("run-b")
    version = write("run-a")
    counts = {r["calibration_run_id"]: r["count"] for r in
              store.read("relative_weights").groupBy("calibration_run_id").count().collect()}
    assert counts == {"run-a": 2, "run-b": 2}
    assert version == 2 and store.history("relative_weights")[0]["operation"] == "REPLACE PARTITIONS"
