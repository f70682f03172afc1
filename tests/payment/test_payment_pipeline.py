"""The README's first command end to end on a small generated province (all 16 regions, 2022-2025):
generate → ingest → group → load hospitals → calibrate → promote → score → settle; then the settlement
reconciles to the fen in every region, monthly payments plus the year-end release equal the final
payment, and policy switches (audit deductions, rate vs point method) change exactly what they should."""
from __future__ import annotations

import importlib
from decimal import Decimal

import pytest
import yaml
from pyspark.sql import functions as F

from casemix.jobkit import JobContext, build_parser

YEAR = 2025


def run_job(module_name, ctx, argv, settings=None):
    module = importlib.import_module(module_name)
    stage = JobContext.create(settings or ctx.settings, module.NAME, spark=ctx.spark, store=ctx.store)
    return module.run(stage, build_parser(module).parse_args(argv))


@pytest.fixture(scope="module")
def paid(spark, tmp_path_factory, schemes_dir):
    from casemix.storage.deltars import DeltaRsStore
    from tests.conftest import isolated_settings

    tmp = tmp_path_factory.mktemp("payment")
    settings = isolated_settings(tmp, schemes_dir)
    ctx = JobContext.create(settings, "test", spark=spark, store=DeltaRsStore(spark, str(tmp / "warehouse")))
    summary = run_job("casemix_jobs.pipeline", ctx, ["--cases", "4000", "--seed", "3", "--year", str(YEAR)])
    return ctx, summary, tmp


def year_rows(store, name, **filters):
    df = store.read(name).filter(F.col("settlement_year") == YEAR)
    for k, v in filters.items():
        df = df.filter(F.col(k) == v)
    return [r.asDict() for r in df.collect()]


def test_the_pipeline_runs_through_settlement_and_writes_the_report(paid):
    ctx, summary, tmp = paid
    stages = summary["stages"]
    assert list(stages) == ["generate-claims", "ingest-claims", "register-scheme", "group-claims", "load-hospitals",
                            "calibrate-weights", "promote-weights", "score-cases", "settle"]
    report = stages["settle"]["report"]
    assert summary["report"] == report
    html = open(report, encoding="utf-8").read()
    assert html.count("data:image/png;base64,") == 4 and "532300" in html
    grouped = ctx.store.read("grouped_claims").filter(F.col("discharge_month").startswith(f"{YEAR}-")).count()
    assert stages["score-cases"]["cases"] == grouped == ctx.store.read("case_points").count()
    assert len(stages["settle"]["regions"]) == 16
    register = (tmp / "data" / "drops" / "hospitals.csv").read_text(encoding="utf-8").strip().splitlines()
    assert stages["load-hospitals"]["rows"] == len(register) - 1 == ctx.store.read("hospitals").count()
    from casemix.tracking import configure_tracking

    client = configure_tracking(ctx.settings)
    run = client.get_run(stages["settle"]["mlflow_run_id"])
    assert client.get_experiment(run.info.experiment_id).name == "settlement"
    assert run.data.params["method.532300"] == "rate" and "point_value.530100" in run.data.metrics
    assert {a.path for a in client.list_artifacts(run.info.run_id)} >= {f"settlement-{YEAR}.html", "settlement.json"}


def test_every_region_reconciles_to_the_fen(paid):
    ctx, _, _ = paid
    store = ctx.store
    values = {v["region"]: v for v in year_rows(store, "point_values", period_type="year")}
    hospitals = year_rows(store, "hospital_settlements", period_type="year")
    assert len(values) == 16
    prior = {r["region"]: r["fund"] for r in store.read("claims").filter(F.col("discharge_month").startswith(f"{YEAR - 1}-"))
             .groupBy("region").agg(F.sum("fund_paid").alias("fund")).collect()}
    points = {r["region"]: (r["patient"], r["ffs"], r["points"]) for r in store.read("case_points")
              .groupBy("region").agg(F.sum("patient_paid").alias("patient"), F.sum("fund_paid").alias("ffs"),
                                     F.sum("points").alias("points")).collect()}
    for region, v in values.items():
        assert v["method"] == ("rate" if region == "532300" else "point")
        assert v["budget"] == (prior[region] * Decimal("1.05")).quantize(Decimal("0.01"))
        assert (v["patient_payments"], v["ffs_fund"]) == points[region][:2]
        paid_out = sum(h["final_fund_payment"] + h["patient_payments"] + h["audit_deductions"]
                       for h in hospitals if h["region"] == region)
        assert paid_out == v["settlement_total"], region
        if v["method"] == "point":
            assert v["settlement_total"] == v["budget"] + v["patient_payments"] - v["fund_retained"]
            assert v["total_points"] == points[region][2]
            share = Decimal("0.95") * v["surplus"]
            assert abs(v["hospital_share"] - share) <= Decimal("0.005")
            assert sum(h["surplus_share"] for h in hospitals if h["region"] == region) == v["hospital_share"]


def test_monthly_provisional_payments_plus_the_release_equal_the_final_payment(paid):
    ctx, _, _ = paid
    months = year_rows(ctx.store, "hospital_settlements", period_type="month")
    years = year_rows(ctx.store, "hospital_settlements", period_type="year")
    paid_by = {}
    for m in months:
        key = (m["region"], m["hospital_id"])
        paid_by[key] = paid_by.get(key, Decimal(0)) + m["provisional_paid"]
        assert m["provisional_paid"] + m["withheld"] == m["fund_due"]
    for y in years:
        assert paid_by[(y["region"], y["hospital_id"])] + y["released"] == y["final_fund_payment"]
    sim = year_rows(ctx.store, "payment_simulation")
    assert sum(s["ffs_fund"] for s in sim) == ctx.store.read("case_points").agg(F.sum("fund_paid")).first()[0]


def test_policy_switches_change_exactly_what_they_should(paid, tmp_path):
    ctx, _, _ = paid
    store = ctx.store
    before = {(r["region"], r["hospital_id"], r["period"]): r for r in year_rows(store, "hospital_settlements")}
    # an audit deduction of 1 234.56 for one hospital in March; 532300 switched to the point method
    target = next(r for r in before.values() if r["region"] == "530100" and r["period_type"] == "year")
    deductions = tmp_path / "deductions.csv"
    deductions.write_text("deduction_id,region,hospital_id,month,amount,reason\n"
                          f"D-1,530100,{target['hospital_id']},{YEAR}-03,1234.56,upcoding\n", encoding="utf-8")
    run_job("casemix_jobs.load_deductions", ctx, ["--input", str(deductions)])
    doc = yaml.safe_load(open(ctx.settings.path(ctx.settings.policy), encoding="utf-8"))
    del doc["payment"]["years"][YEAR]["regions"]
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    run_job("casemix_jobs.settle", ctx, ["--year", str(YEAR), "--report", str(tmp_path / "r.html")],
            settings=ctx.settings.model_copy(update={"policy": str(policy)}))
    after = {(r["region"], r["hospital_id"], r["period"]): r for r in year_rows(store, "hospital_settlements")}
    assert set(after) >= set(before)
    changed = {k for k in before if {c: v for c, v in before[k].items() if c not in ("settle_run_id", "settled_at")}
               != {c: v for c, v in after[k].items() if c not in ("settle_run_id", "settled_at")}}
    hospital = target["hospital_id"]
    assert {k for k in changed if k[0] != "532300"} <= {("530100", hospital, str(YEAR)), ("530100", hospital, f"{YEAR}-03")}
    y = after[("530100", hospital, str(YEAR))]
    assert y["audit_deductions"] == Decimal("1234.56")
    assert y["final_fund_payment"] == target["final_fund_payment"] - Decimal("1234.56")
    assert y["gross_amount"] == target["gross_amount"]
    assert {r["method"] for k, r in after.items() if k[0] == "532300"} == {"point"}
    assert any(k[0] == "532300" for k in changed)


def test_a_simulation_of_the_first_half_year_writes_only_the_simulation(paid, tmp_path):
    ctx, _, _ = paid
    store = ctx.store
    settled = {t: store.version(t) for t in ("hospital_settlements", "point_values")}
    out = run_job("casemix_jobs.settle", ctx, ["--year", str(YEAR), "--through", "6",
                                              "--report", str(tmp_path / "h1.html")])
    assert out["simulation_only"] and out["period"] == f"{YEAR}-01..{YEAR}-06"
    assert {t: store.version(t) for t in settled} == settled
    sim = year_rows(store, "payment_simulation")
    assert {s["simulated_through"] for s in sim} == {f"{YEAR}-06"}
    assert max(s["month"] for s in sim) <= f"{YEAR}-06"
    half = store.read("case_points").filter(F.col("discharge_month") <= f"{YEAR}-06")
    assert sum(s["ffs_fund"] for s in sim) == half.agg(F.sum("fund_paid")).first()[0]
    assert sum(s["cases"] for s in sim) == half.count()
    assert (tmp_path / "h1.html").read_text(encoding="utf-8").count("data:image/png") == 4


def test_a_deduction_for_a_hospital_outside_its_region_stops_the_settlement(paid, tmp_path):
    from casemix.jobkit import JobError

    ctx, _, _ = paid
    bad = tmp_path / "bad.csv"
    bad.write_text("deduction_id,region,hospital_id,month,amount,reason\n"
                   f"D-X,530100,NOT-A-HOSPITAL,{YEAR}-02,10.00,typo\n", encoding="utf-8")
    run_job("casemix_jobs.load_deductions", ctx, ["--input", str(bad)])
    before = ctx.store.version("hospital_settlements")
    with pytest.raises(JobError, match="D-X .530100/NOT-A-HOSPITAL."):
        run_job("casemix_jobs.settle", ctx, ["--year", str(YEAR), "--report", str(tmp_path / "x.html")])
    assert ctx.store.version("hospital_settlements") == before
