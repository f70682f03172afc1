"""Scoring and settlement runs end to end (what the ``score-cases`` and ``settle`` jobs call).

:func:`score_year`: grouped_claims of the year (+ the readmission window) × promoted weights × hospital
register → ``case_points`` (the year's partitions of the regions replaced, one version per run).

:func:`settle_year`: ``case_points`` of the year → budgets (:func:`budgets`), base rates and per-case
rate amounts (Spark) → hospital-month aggregates (a few rows per hospital, the only thing collected) →
:func:`~casemix.payment.settlement.settle_region` per region in exact decimals (checks reconciliation) →
``hospital_settlements``, ``point_values``, ``payment_simulation`` (the year's partitions of the regions
replaced) → an HTML report and an MLflow run in experiment ``settlement``. A simulation of the year so far
(``through`` < 12) settles January..through with those months' budget and writes only ``payment_simulation``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Optional, Sequence

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from casemix.calibrate.promotion import promoted_weights
from casemix.config import Settings
from casemix.payment.money import to_fen
from casemix.payment.rate import base_rates, rate_cases
from casemix.payment.scoring import score_cases, scoring_window
from casemix.payment.settlement import (HospitalMonth, RegionSettlement, SettlementError, monthly_budgets,
                                        settle_region)
from casemix.policy import PaymentParams, Policy, PolicyError
from casemix.storage import DeltaStore
from casemix.tables import table

__all__ = ["score_year", "settle_year", "budgets", "hospital_months", "payment_params", "PaymentError",
           "SETTLEMENT_EXPERIMENT"]

log = logging.getLogger(__name__)
SETTLEMENT_EXPERIMENT = "settlement"


class PaymentError(RuntimeError):
    """Scoring or settlement cannot run on these inputs; the message says what to do."""


def payment_params(policy: Policy, year: int, regions: Sequence[str]) -> dict[str, PaymentParams]:
    try:
        return {r: policy.payment.params(year, r) for r in sorted(regions)}
    except PolicyError as exc:
        raise PaymentError(str(exc)) from None


def _regions_with_cases(df: DataFrame, year: int, regions: Optional[Sequence[str]]) -> list[str]:
    if regions:
        return sorted(set(regions))
    found = [r["region"] for r in df.filter(_in_year("discharge_month", year))
             .select("region").distinct().collect()]
    if not found:
        raise PaymentError(f"no cases discharged in {year}")
    return sorted(found)


def _in_year(month_column: str, year: int) -> Column:
    """Rows whose ``YYYY-MM`` month column falls in ``year``."""
    return F.col(month_column).startswith(f"{year:04d}-")


def _months(year: int) -> list[str]:
    return [f"{year:04d}-{m:02d}" for m in range(1, 13)]


def score_year(spark: SparkSession, store: DeltaStore, policy: Policy, year: int, *,
               regions: Optional[Sequence[str]] = None, run_id: str) -> dict[str, Any]:
    """Score the cases of ``year`` (module docstring); returns a summary (counts per case type, versions)."""
    for name, hint in (("grouped_claims", "casemix group-claims"), ("hospitals", "casemix load-hospitals")):
        if not store.exists(name):
            raise PaymentError(f"table {name} does not exist: run {hint} first")
    grouped_version = store.version("grouped_claims")
    grouped = store.read("grouped_claims", version=grouped_version)
    regions = _regions_with_cases(grouped, year, regions)
    params = payment_params(policy, year, regions)
    first, last, _ = scoring_window(year, params)
    grouped = grouped.filter((F.col("discharge_month") >= first) & (F.col("discharge_month") <= last))
    weights = promoted_weights(spark, store, regions, year)
    indicators = None
    if any(p.coefficient.source == "history" for p in params.values()) and store.exists("hospital_indicators"):
        runs = [r["calibration_run_id"] for r in weights.select("calibration_run_id").distinct().collect()]
        indicators = store.read("hospital_indicators").filter(F.col("calibration_run_id").isin(runs))
    scored_at = datetime.now(timezone.utc)
    points = score_cases(grouped, weights, store.read("hospitals"), params, year, run_id=run_id,
                         scored_at=scored_at, indicators=indicators).filter(F.col("region").isin(regions))
    version = store.replace_partitions(
        "case_points", points, where={"region": regions, "discharge_month": _months(year)},
        metadata={"casemix.run_id": run_id, "casemix.input.grouped_claims.version": str(grouped_version)})
    written = store.read("case_points", version=version).filter(
        _in_year("discharge_month", year) & F.col("region").isin(regions))
    per_type = written.groupBy("case_type").agg(
        F.count("*").alias("n"), F.sum(F.col("readmission_halved").cast("int")).alias("halved"),
        F.sum(F.when(F.col("coefficient_source") == "unregistered", 1).otherwise(0)).alias("unreg"),
        F.sum("points").alias("points")).collect()
    cases = sum(r["n"] for r in per_type)
    source = grouped.filter(_in_year("discharge_month", year) & F.col("region").isin(regions)).count()
    if cases != source:
        raise PaymentError(f"case_points has {cases} cases of {year} but grouped_claims has {source}")
    return {"year": year, "regions": regions, "cases": cases,
            "case_types": dict(sorted((r["case_type"], r["n"]) for r in per_type)),
            "readmissions_halved": sum(r["halved"] for r in per_type),
            "unregistered_hospital_cases": sum(r["unreg"] for r in per_type),
            "total_points": str(sum((r["points"] for r in per_type), Decimal("0.0000"))),
            "case_points_version": version, "grouped_claims_version": grouped_version}


def budgets(store: DeltaStore, year: int, params: dict[str, PaymentParams]) -> dict[str, Decimal]:
    """The inpatient fund budget per region: fixed, or Σ fund_paid of the region's ``claims`` discharged in
    the year before × (1 + growth), to the fen."""
    need = [r for r, p in params.items() if p.budget.basis == "prior_year_fund"]
    prior: dict[str, Decimal] = {}
    if need:
        if not store.exists("claims"):
            raise PaymentError("budget basis prior_year_fund needs the claims table: ingest claims first")
        prior = {r["region"]: r["fund"] for r in store.read("claims")
                 .filter(_in_year("discharge_month", year - 1) & F.col("region").isin(need))
                 .groupBy("region").agg(F.sum("fund_paid").alias("fund")).collect()}
    out = {}
    for region, p in params.items():
        if p.budget.basis == "fixed":
            out[region] = to_fen(p.budget.amount)
        elif region not in prior:
            raise PaymentError(f"region {region}: budget basis prior_year_fund but no claims discharged in "
                               f"{year - 1}; set payment.years.{year}.regions.\"{region}\".budget to "
                               "{basis: fixed, amount: <yuan>}")
        else:
            out[region] = to_fen(prior[region] * (1 + p.budget.growth))
    return out


def hospital_months(points: DataFrame, deductions: Optional[DataFrame], year: int) -> DataFrame:
    """Per region, hospital and month: cases, points, patients' payments, FFS fund, rate amounts, and
    the month's audit deductions (a hospital-month with deductions but no cases is kept)."""
    agg = points.groupBy("region", "hospital_id", F.col("discharge_month").alias("month")).agg(
        F.count("*").alias("cases"), F.sum("points").alias("points"), F.sum("patient_paid").alias("patient"),
        F.sum("fund_paid").alias("ffs_fund"), F.sum("rate_fund").alias("rate_fund"),
        F.sum("rate_points").alias("rate_points"), F.first("grade", ignorenulls=True).alias("grade"))
    if deductions is None:
        return agg.withColumn("deductions", F.lit(0).cast("decimal(28,2)"))
    ded = deductions.filter(_in_year("month", year)) \
        .groupBy("region", "hospital_id", "month").agg(F.sum("amount").alias("deductions"))
    return agg.join(ded, ["region", "hospital_id", "month"], "full")


def _check_deductions(deductions: DataFrame, hospitals: Optional[DataFrame]) -> None:
    """Every deduction of the period names a registered hospital in its own region: a typo in the region
    would silently drop a deduction, one in the hospital id would charge a hospital nobody pays."""
    if hospitals is None:
        return
    bad = deductions.join(hospitals.select("hospital_id", "region"), ["hospital_id", "region"], "left_anti") \
        .select("deduction_id", "region", "hospital_id").limit(20).collect()
    if bad:
        listed = ", ".join(f"{r['deduction_id']} ({r['region']}/{r['hospital_id']})" for r in bad)
        raise PaymentError(f"audit deductions name hospitals that are not in the register under that region: "
                           f"{listed}; correct the deduction file and load it again (casemix load-deductions)")


@dataclass
class SettlementRun:
    year: int
    regions: list[str]
    results: list[RegionSettlement]
    budgets: dict[str, Decimal]
    base_rates: dict[str, Decimal]
    frames: dict[str, DataFrame] = field(default_factory=dict)


def settle_year(spark: SparkSession, store: DeltaStore, policy: Policy, year: int, *,
                regions: Optional[Sequence[str]] = None, run_id: str, through: int = 12) -> SettlementRun:
    """Settle ``year`` for ``regions`` (default: every region with scored cases): compute and check; the
    caller writes :attr:`SettlementRun.frames` (see :func:`write_settlement`). ``through`` < 12 settles
    January..``through`` only, with the budget of those months (a simulation of the year so far)."""
    if not store.exists("case_points"):
        raise PaymentError("table case_points does not exist: run casemix score-cases first")
    if not 1 <= through <= 12:
        raise PaymentError(f"the period's last month must be 1..12, got {through}")
    last = f"{year:04d}-{through:02d}"
    points = store.read("case_points").filter(_in_year("discharge_month", year)
                                              & (F.col("discharge_month") <= last))
    regions = _regions_with_cases(points, year, regions)
    points = points.filter(F.col("region").isin(regions))
    params = payment_params(policy, year, regions)
    budget = {r: sum(monthly_budgets(b, params[r])[:through], Decimal("0.00"))
              for r, b in budgets(store, year, params).items()}
    try:
        rates = base_rates(points, budget, params)
    except SettlementError as exc:
        raise PaymentError(str(exc)) from None
    with_rate = rate_cases(points, rates, params)
    deductions = None
    if store.exists("audit_deductions"):
        year_deductions = store.read("audit_deductions").filter(
            _in_year("month", year) & (F.col("month") <= last))
        _check_deductions(year_deductions, store.read("hospitals") if store.exists("hospitals") else None)
        deductions = year_deductions.filter(F.col("region").isin(regions))
    cells = hospital_months(with_rate, deductions, year).collect()   # hospital-month aggregates only
    by_region: dict[str, list[HospitalMonth]] = {r: [] for r in regions}
    zero = Decimal("0")
    for rec in cells:
        by_region[rec["region"]].append(HospitalMonth(
            hospital_id=rec["hospital_id"], month=rec["month"], cases=rec["cases"] or 0,
            points=rec["points"] or zero, patient=rec["patient"] or zero, ffs_fund=rec["ffs_fund"] or zero,
            deductions=rec["deductions"] or zero, rate_fund=rec["rate_fund"] or zero,
            rate_points=rec["rate_points"] or zero, grade=rec["grade"]))
    results = []
    for region in regions:
        try:
            results.append(settle_region(region, year, params[region], budget[region], by_region[region],
                                         base_rate=rates.get(region), last_month=through))
        except SettlementError as exc:
            raise PaymentError(str(exc)) from exc
    settled_at = datetime.now(timezone.utc)
    frames = {}
    for name, attr in (("hospital_settlements", "hospitals"), ("point_values", "values"),
                       ("payment_simulation", "simulation")):
        definition = table(name)
        extra = {"settle_run_id": run_id, "settled_at": settled_at, "simulated_through": last}
        rows = [{**row, **extra} for res in results for row in getattr(res, attr)]
        frames[name] = spark.createDataFrame([tuple(r[c] for c in definition.columns) for r in rows], definition.schema)
    return SettlementRun(year, regions, results, budget, rates, frames)


def write_settlement(store: DeltaStore, run: SettlementRun, *, run_id: str, simulation_only: bool = False) \
        -> dict[str, int]:
    """Replace the year's partitions of the run's regions in the three settlement tables (only
    ``payment_simulation`` with ``simulation_only``), then check the written tables reconcile (the fund +
    patient + deduction amounts of the year rows equal each region's settlement total); returns the new
    versions."""
    versions = {}
    for name, df in run.frames.items():
        if simulation_only and name != "payment_simulation":
            continue
        versions[name] = store.replace_partitions(name, df, where={"settlement_year": [run.year], "region": run.regions},
                                                  metadata={"casemix.run_id": run_id})
    if simulation_only:
        return versions
    hs = store.read("hospital_settlements", version=versions["hospital_settlements"]) \
        .filter((F.col("settlement_year") == run.year) & (F.col("period_type") == "year")) \
        .groupBy("region").agg(F.sum(F.col("final_fund_payment") + F.col("patient_payments")
                                     + F.col("audit_deductions")).alias("paid"))
    pv = store.read("point_values", version=versions["point_values"]) \
        .filter((F.col("settlement_year") == run.year) & (F.col("period_type") == "year")) \
        .select("region", "settlement_total")
    bad = hs.join(pv, "region", "full").filter(
        F.col("paid").isNull() | F.col("settlement_total").isNull() | (F.col("paid") != F.col("settlement_total"))).collect()
    if bad:
        raise PaymentError(f"written settlement does not reconcile for region(s) {[r['region'] for r in bad]}: "
                           f"{[r.asDict() for r in bad][:5]}")
    return versions
