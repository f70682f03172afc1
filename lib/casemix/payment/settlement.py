"""Settlement of one pooling region and year, in exact decimals (pure Python, no Spark).

The settle job aggregates ``case_points`` to one :class:`HospitalMonth` per hospital and month (a few
thousand rows per region: hospital-level aggregates, never cases) and calls :func:`settle_region`.

DRG point method (病组点数法), per region r and year y
-----------------------------------------------------
- B: the inpatient fund budget (``payment.budget``); P: patients' payments of the year's cases (total −
  fund); A: what fee-for-service paid from the fund for them (Σ ``fund_paid``).
- Surplus/overrun S = B − A. Hospitals take the share h of a surplus (h = ``hospital_share_of_surplus``)
  or bear h of an overrun (``hospital_share_of_overrun``): their part H = to_fen(h × S), the fund's part
  (kept surplus, or borne overrun with the sign of S) R = S − H.
- Year settlement total T = B + P − R; point value PV = T / Σ points.
- Each hospital's gross amount = its share of T by points (:func:`~casemix.payment.money.allocate`: the
  largest-remainder rule, so the parts sum to T to the fen); final fund payment = gross − patients'
  payments − audit deductions; its share of H is allocated by points the same way (shown, already
  inside the gross amount).
- Monthly provisional: the budget's monthly shares B_m (allocated from B, so Σ B_m = B), T_m = B_m + P_m,
  PV_m = T_m / points of the month; due = allocated gross − patients' payments − deductions of the month;
  paid = max(0, to_fen(due × ``provisional_share``)); withheld = due − paid. At year end each hospital is
  released final − Σ paid (negative: it pays back). A month with audit deductions but no case in the region
  splits nothing (its total is 0, no point value; its budget share is paid at the year end): the
  deductions make its due negative, withheld until the year end.
- Reconciliation, checked by :func:`check_region` (the job fails when it does not hold):
  Σ final fund payments + Σ patients' payments + Σ audit deductions = B + P − R = T, to the fen; per
  hospital Σ monthly paid + released = final; per month Σ gross = T_m.

DRG rate method (费率法), when ``method: rate``
---------------------------------------------
Per-case fund amounts come from :mod:`casemix.payment.rate` (unrounded decimals). The year's total
per hospital is rounded once, to_fen(Σ), and split over its months by the same largest-remainder rule;
gross = fund + patients' payments; deductions, provisional share, withheld and released as above. The
fund outcome S = B − Σ rate fund payments is reported, not shared (the rate method pays per case).

Simulation (模拟运行), for every region and both methods, for a year or the year so far
-------------------------------------------------------------------------------------
The period is January..``last_month`` (default the whole year); for a shorter period the budget is the
sum of its months' shares and everything above is computed on the period's cells.

Per hospital and month, before audit deductions: fee-for-service = Σ fund_paid; point method = the
hospital-month's share of T by points (allocated over all hospital-months of the year) − patients'
payments; rate method = the rate amounts above. Differences are point − FFS and rate − FFS.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Iterable, Optional, Sequence

from casemix.payment.money import FEN, AllocationError, allocate, to_fen
from casemix.policy import PaymentParams

__all__ = ["HospitalMonth", "RegionSettlement", "settle_region", "monthly_budgets", "check_region", "SettlementError",
           "ReconciliationError", "PV_QUANTUM"]

ZERO = Decimal("0.00")
#: point values and base rates are shown with 10 decimals (the amounts use the exact ratio)
PV_QUANTUM = Decimal("1e-10")


class SettlementError(ValueError):
    """A region cannot be settled (no points to pay a budget with, a negative weight, ...)."""


class ReconciliationError(SettlementError):
    """The settlement does not reconcile to the fen: a bug, never expected; the job stops before writing."""


@dataclass(frozen=True)
class HospitalMonth:
    hospital_id: str
    month: str                      # YYYY-MM
    cases: int
    points: Decimal                 # Σ final case points (point method)
    patient: Decimal                # Σ patients' payments (total − fund)
    ffs_fund: Decimal               # Σ fund_paid
    deductions: Decimal = ZERO      # audit deductions settled this month
    rate_fund: Decimal = ZERO       # Σ per-case rate-method fund amounts (unrounded)
    rate_points: Decimal = ZERO     # Σ RW × 100 (rate method's case-mix points)
    grade: Optional[str] = None


@dataclass
class RegionSettlement:
    region: str
    year: int
    method: str
    hospitals: list[dict] = field(default_factory=list)     # hospital_settlements rows
    values: list[dict] = field(default_factory=list)        # point_values rows
    simulation: list[dict] = field(default_factory=list)    # payment_simulation rows


def _sum(values: Iterable[Decimal]) -> Decimal:
    return sum(values, ZERO)


def _pv(total: Decimal, points: Decimal) -> Optional[Decimal]:
    return (total / points).quantize(PV_QUANTUM) if points else None


def _split(amount: Decimal, weights: Sequence[Decimal], keys: Sequence[str], what: str) -> list[Decimal]:
    try:
        return allocate(amount, weights, keys)
    except AllocationError as exc:
        raise SettlementError(f"{what}: {exc}") from None


def monthly_budgets(budget: Decimal, params: PaymentParams, months: int = 12) -> list[Decimal]:
    """The budget's shares of months 1..``months`` (allocated from the shares of those months, so they sum
    to ``budget`` exactly)."""
    return allocate(budget, [params.budget.month_share(m) for m in range(1, months + 1)],
                    [f"{m:02d}" for m in range(1, months + 1)])


def settle_region(region: str, year: int, params: PaymentParams, budget: Decimal, cells: Sequence[HospitalMonth],
                  base_rate: Optional[Decimal] = None, *, last_month: int = 12) -> RegionSettlement:
    """The settlement of one region and year from its hospital-month aggregates (module docstring).

    ``last_month`` < 12 settles the period January..last_month (a simulation of the year so far):
    ``budget`` is then the period's budget (Σ :func:`monthly_budgets` of those months) and every cell
    must fall in the period."""
    if budget != to_fen(budget):
        raise SettlementError(f"region {region}: budget {budget} is not in whole fen")
    if not 1 <= last_month <= 12:
        raise SettlementError(f"last_month must be 1..12, got {last_month}")
    cells = sorted(cells, key=lambda c: (c.month, c.hospital_id))
    seen = set()
    for c in cells:
        if (c.hospital_id, c.month) in seen:
            raise SettlementError(f"region {region}: hospital {c.hospital_id} month {c.month} given twice")
        seen.add((c.hospital_id, c.month))
        if not c.month.startswith(f"{year:04d}-"):
            raise SettlementError(f"region {region}: month {c.month} is not in settlement year {year}")
        if int(c.month[5:7]) > last_month:
            raise SettlementError(f"region {region}: month {c.month} is after the period's last month {last_month}")
    out = RegionSettlement(region, year, params.method)
    hospitals = sorted({c.hospital_id for c in cells})
    months = sorted({c.month for c in cells})
    P = _sum(c.patient for c in cells)
    A = _sum(c.ffs_fund for c in cells)
    total_points = _sum(c.points for c in cells)
    cases = sum(c.cases for c in cells)

    # -- point method, year: T = B + P − R, split by points
    S = budget - A
    h = params.surplus.hospital_share_of_surplus if S >= 0 else params.surplus.hospital_share_of_overrun
    H = to_fen(h * S)
    R = S - H
    T = budget + P - R
    by_h: dict[str, list[HospitalMonth]] = defaultdict(list)
    by_m: dict[str, list[HospitalMonth]] = defaultdict(list)
    for c in cells:
        by_h[c.hospital_id].append(c)
        by_m[c.month].append(c)
    h_points = [_sum(c.points for c in by_h[hid]) for hid in hospitals]
    keys = [f"{c.month}|{c.hospital_id}" for c in cells]
    if T and not total_points and params.method == "rate":  # nothing to simulate the point method with
        gross_year, share_year, sim_point_gross = [ZERO] * len(hospitals), [ZERO] * len(hospitals), [ZERO] * len(cells)
    elif T and not total_points:
        raise SettlementError(f"region {region} {year}: settlement total {T} but no points to pay it by")
    else:
        gross_year = _split(T, h_points, hospitals, f"region {region} {year}")
        share_year = _split(H, h_points, hospitals, f"region {region} {year} surplus share")
        # point method, simulation: the year's T over every hospital-month by points
        sim_point_gross = _split(T, [c.points for c in cells], keys, f"region {region} {year} simulation")

    # -- rate method: a hospital's year total rounded once, split over its months
    rate_cell: dict[tuple[str, str], Decimal] = {}
    for hid in hospitals:
        own = by_h[hid]
        parts = _split(to_fen(_sum(c.rate_fund for c in own)), [c.rate_fund for c in own],
                       [c.month for c in own], f"region {region} hospital {hid} rate amounts")
        for c, part in zip(own, parts):
            rate_cell[(hid, c.month)] = part
    rate_total = _sum(rate_cell.values())

    for c, pg in zip(cells, sim_point_gross):
        point_fund = pg - c.patient
        rate_fund = rate_cell[(c.hospital_id, c.month)]
        out.simulation.append({
            "settlement_year": year, "region": region, "month": c.month, "hospital_id": c.hospital_id,
            "grade": c.grade, "cases": c.cases, "points": c.points, "ffs_fund": c.ffs_fund,
            "point_fund": point_fund, "rate_fund": rate_fund, "point_minus_ffs": point_fund - c.ffs_fund,
            "rate_minus_ffs": rate_fund - c.ffs_fund,
        })

    # -- the selected method's monthly provisional and year-end rows
    share = params.provisional_share
    try:
        month_budget = dict(zip([f"{year:04d}-{m:02d}" for m in range(1, last_month + 1)],
                                monthly_budgets(budget, params, last_month)))
    except AllocationError as exc:
        raise SettlementError(f"region {region} monthly budget: {exc}") from None
    paid: dict[str, Decimal] = defaultdict(lambda: ZERO)
    withheld: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for month in months:
        mc = by_m[month]
        m_points = _sum(c.points for c in mc)
        m_patient = _sum(c.patient for c in mc)
        if params.method == "point" and not m_points and not any(c.cases for c in mc):
            # only audit deductions this month, no case: nothing of the month's budget share can be split
            # (it is paid at the year end); the deductions are withheld (due < 0, nothing paid)
            gross_m, pv_m, total_m, points_m = [ZERO] * len(mc), None, ZERO, ZERO
        elif params.method == "point":
            t_m = month_budget[month] + m_patient
            if t_m and not m_points:
                raise SettlementError(f"region {region} {month}: monthly total {t_m} but no points")
            gross_m = _split(t_m, [c.points for c in mc], [c.hospital_id for c in mc], f"region {region} {month}")
            pv_m, total_m, points_m = _pv(t_m, m_points), t_m, m_points
        else:
            gross_m = [rate_cell[(c.hospital_id, month)] + c.patient for c in mc]
            total_m = _sum(gross_m)
            points_m = _sum(c.rate_points for c in mc)
            pv_m = None
        for c, g in zip(mc, gross_m):
            due = g - c.patient - c.deductions
            p = max(ZERO, to_fen(due * share))
            paid[c.hospital_id] += p
            withheld[c.hospital_id] += due - p
            out.hospitals.append(_hospital_row(year, region, month, "month", c.hospital_id, params.method, c.cases,
                                               c.points if params.method == "point" else c.rate_points, pv_m, g,
                                               c.patient, c.deductions, due, p, due - p, ZERO, p, ZERO, c.ffs_fund))
        out.values.append(_value_row(year, region, month, "month", params.method, sum(c.cases for c in mc),
                                     month_budget[month], m_patient, _sum(c.ffs_fund for c in mc), ZERO, ZERO, ZERO,
                                     total_m, points_m, pv_m, base_rate if params.method == "rate" else None))

    for i, hid in enumerate(hospitals):
        own = by_h[hid]
        patient = _sum(c.patient for c in own)
        deductions = _sum(c.deductions for c in own)
        if params.method == "point":
            gross, pts, pv, surplus_share = gross_year[i], h_points[i], _pv(T, total_points), share_year[i]
        else:
            gross = _sum(rate_cell[(hid, c.month)] for c in own) + patient
            pts, pv, surplus_share = _sum(c.rate_points for c in own), None, ZERO
        final = gross - patient - deductions
        out.hospitals.append(_hospital_row(year, region, f"{year:04d}", "year", hid, params.method,
                                           sum(c.cases for c in own), pts, pv, gross, patient, deductions, final,
                                           paid[hid], withheld[hid], final - paid[hid], final, surplus_share,
                                           _sum(c.ffs_fund for c in own)))
    if params.method == "point":
        out.values.append(_value_row(year, region, f"{year:04d}", "year", "point", cases, budget, P, A, S, R, H, T,
                                     total_points, _pv(T, total_points), None))
    else:
        rate_s = budget - rate_total
        out.values.append(_value_row(year, region, f"{year:04d}", "year", "rate", cases, budget, P, A, rate_s,
                                     rate_s, ZERO, rate_total + P, _sum(c.rate_points for c in cells), None, base_rate))
    check_region(out)
    return out


def _hospital_row(year, region, period, period_type, hospital_id, method, cases, points, pv, gross, patient,
                  deductions, due, paid, withheld, released, final, surplus_share, ffs) -> dict:
    return {"settlement_year": year, "region": region, "period": period, "period_type": period_type,
            "hospital_id": hospital_id, "method": method, "cases": int(cases), "points": points, "point_value": pv,
            "gross_amount": gross, "patient_payments": patient, "audit_deductions": deductions, "fund_due": due,
            "provisional_paid": paid, "withheld": withheld, "released": released, "final_fund_payment": final,
            "surplus_share": surplus_share, "ffs_fund": ffs}


def _value_row(year, region, period, period_type, method, cases, budget, patient, ffs, surplus, retained, share,
               total, points, pv, base_rate) -> dict:
    return {"settlement_year": year, "region": region, "period": period, "period_type": period_type,
            "method": method, "cases": int(cases), "budget": budget, "patient_payments": patient, "ffs_fund": ffs,
            "surplus": surplus, "fund_retained": retained, "hospital_share": share, "settlement_total": total,
            "total_points": points, "point_value": pv, "base_rate": base_rate}


def check_region(result: RegionSettlement) -> None:
    """The reconciliation identities of the module docstring; raises :class:`ReconciliationError`."""
    where = f"region {result.region} {result.year}"
    year_rows = [r for r in result.hospitals if r["period_type"] == "year"]
    month_rows = [r for r in result.hospitals if r["period_type"] == "month"]
    value = next(v for v in result.values if v["period_type"] == "year")
    problems = []
    for r in result.hospitals + result.values:
        for k, v in r.items():
            if isinstance(v, Decimal) and k not in ("points", "total_points", "point_value", "base_rate") \
                    and v != v.quantize(FEN):
                problems.append(f"{k}={v} of {r.get('hospital_id', 'the region')} is not in whole fen")
    paid_out = _sum(r["final_fund_payment"] + r["patient_payments"] + r["audit_deductions"] for r in year_rows)
    if paid_out != value["settlement_total"]:
        problems.append(f"Σ fund + patient payments + deductions = {paid_out} != settlement total "
                        f"{value['settlement_total']}")
    if result.method == "point":
        expected = value["budget"] + value["patient_payments"] - value["fund_retained"]
        if value["settlement_total"] != expected:
            problems.append(f"settlement total {value['settlement_total']} != budget + patient payments − fund's "
                            f"share of the surplus/overrun = {expected}")
        if value["fund_retained"] + value["hospital_share"] != value["surplus"]:
            problems.append("fund's part + hospitals' part of the surplus != the surplus")
        if _sum(r["surplus_share"] for r in year_rows) != value["hospital_share"]:
            problems.append("hospitals' surplus shares do not sum to the hospitals' part")
        gross_by: dict[str, Decimal] = defaultdict(lambda: ZERO)
        for r in month_rows:
            gross_by[r["period"]] += r["gross_amount"]
        for mv in (v for v in result.values if v["period_type"] == "month"):
            gross = gross_by[mv["period"]]
            if gross != mv["settlement_total"]:
                problems.append(f"month {mv['period']}: Σ gross {gross} != monthly total {mv['settlement_total']}")
    paid_by: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for m in month_rows:
        paid_by[m["hospital_id"]] += m["provisional_paid"]
    for r in year_rows:
        months_paid = paid_by[r["hospital_id"]]
        if months_paid + r["released"] != r["final_fund_payment"] or months_paid != r["provisional_paid"]:
            problems.append(f"hospital {r['hospital_id']}: Σ monthly paid {months_paid} + released {r['released']} "
                            f"!= final {r['final_fund_payment']}")
    if problems:
        raise ReconciliationError(f"{where} does not reconcile: " + "; ".join(problems[:10]))
