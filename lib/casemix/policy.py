"""Policy parameters per province (``conf/policy/<province>.yaml``), typed and validated.

Errors name the file and key, like :mod:`casemix.config`.
"""
from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from decimal import Decimal
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from casemix.codes import HOSPITAL_GRADES, INSURANCE_SCHEMES
from casemix.config import Settings, read_yaml_mapping, validation_error

__all__ = [
    "Policy",
    "GroupingPolicy",
    "SchemeRule",
    "CalibrationPolicy",
    "CalibrationExclusions",
    "TrimmingPolicy",
    "LowVolumePolicy",
    "PaymentPolicy",
    "PaymentParams",
    "PolicyError",
    "load_policy",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SchemeRule(_Strict):
    """Claims of ``regions`` discharged on or after ``effective_from`` are grouped with ``scheme``."""

    scheme: str
    regions: tuple[str, ...] = Field(..., min_length=1)
    effective_from: date

    @field_validator("regions", mode="before")
    @classmethod
    def _as_strings(cls, value):
        return tuple(str(v) for v in value) if isinstance(value, (list, tuple)) else value


class GroupingPolicy(_Strict):
    default_scheme: str = "chs-drg-1.1"
    model_alias: str = "production"
    rules: tuple[SchemeRule, ...] = ()

    def scheme_for(self, region: str, discharge: date) -> str:
        """The scheme of one claim (the same rule the grouping job applies as a column expression)."""
        best: Optional[SchemeRule] = None
        for rule in self.rules:
            if region in rule.regions and discharge >= rule.effective_from:
                if best is None or rule.effective_from > best.effective_from:
                    best = rule
        return best.scheme if best else self.default_scheme

    @property
    def schemes(self) -> list[str]:
        return sorted({self.default_scheme, *(r.scheme for r in self.rules)})


class CalibrationExclusions(_Strict):
    """Cases left out of the weights before anything else (剔除): stays longer than ``max_los_days``
    and cases whose total cost is below ``min_cost`` yuan (data errors, cancelled stays)."""

    max_los_days: int = Field(60, ge=0, description="exclude LOS > this many days")
    min_cost: Decimal = Field(Decimal("5"), ge=0, description="exclude total cost < this (yuan)")


class TrimmingPolicy(_Strict):
    """Per-group trimming of extreme costs before averaging (see casemix.calibrate.trimming).

    - ``iqr``: keep Q1 − k·IQR ≤ cost ≤ Q3 + k·IQR (quartiles by linear interpolation), k = ``iqr_k``
    - ``percentile``: keep P_lo ≤ cost ≤ P_hi (inverted-CDF percentiles: values of the data)
    - ``log_sd``: keep |ln cost − mean(ln cost)| ≤ k·SD(ln cost) (sample SD), k = ``log_sd_k``
    - ``none``: keep every case
    """

    method: Literal["iqr", "percentile", "log_sd", "none"] = "iqr"
    iqr_k: float = Field(1.5, gt=0)
    lower_percentile: float = Field(0.01, ge=0, lt=0.5)
    upper_percentile: float = Field(0.99, gt=0.5, le=1)
    log_sd_k: float = Field(3.0, gt=0)


class LowVolumePolicy(_Strict):
    """Groups with fewer than ``min_cases`` cases in a region (grouped, not excluded, all window years,
    before trimming) take the province-wide weight: ``borrow`` it, or ``shrink`` toward it with
    λ = n/(n + ``shrinkage_k``): RW = λ·RW_region + (1 − λ)·RW_province."""

    min_cases: int = Field(5, ge=0)
    method: Literal["borrow", "shrink"] = "borrow"
    shrinkage_k: float = Field(5.0, gt=0)


class CalibrationPolicy(_Strict):
    """How relative weights (相对权重) are calibrated per pooling region; see casemix.calibrate.

    A notebook overrides it with ``casemix.calibrate.override_spec(spec, {"trimming.method": ...})``
    (validated) or ``spec.model_copy(update=...)`` (re-validated when the calibration starts).
    """

    window_years: int = Field(3, ge=1, le=10, description="data years: the N years before the target year")
    year_weights: tuple[float, ...] = Field((2.0, 3.0, 5.0), description="per data year, oldest first")
    inflation: dict[int, float] = Field(
        default_factory=dict,
        description="discharge year -> factor bringing its costs to target-year prices; empty = no inflation",
    )
    exclusions: CalibrationExclusions = Field(default_factory=CalibrationExclusions)
    trimming: TrimmingPolicy = Field(default_factory=TrimmingPolicy)
    low_volume: LowVolumePolicy = Field(default_factory=LowVolumePolicy)
    tilts: dict[str, float] = Field(
        default_factory=dict, description="DRG or ADRG code -> policy tilt factor k_g (budget-neutral)"
    )
    max_yearly_change: Optional[float] = Field(
        None, gt=0, lt=1, description="cap on |RW / promoted RW of the previous year − 1|; null = no cap"
    )
    true_cost_min_cases: int = Field(
        30, ge=1, description="synthetic data only: groups with this many cases are compared with the true costs"
    )

    @field_validator("year_weights")
    @classmethod
    def _positive_weights(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if any(w <= 0 for w in v):
            raise ValueError(f"year weights must be > 0, got {list(v)}")
        return v

    @field_validator("inflation", "tilts")
    @classmethod
    def _positive_factors(cls, v: dict) -> dict:
        bad = {k: f for k, f in v.items() if not f > 0}
        if bad:
            raise ValueError(f"factors must be > 0, got {bad}")
        return v

    @model_validator(mode="after")
    def _weights_per_year(self) -> "CalibrationPolicy":
        if len(self.year_weights) != self.window_years:
            raise ValueError(
                f"year_weights has {len(self.year_weights)} values but window_years is {self.window_years}: "
                "give one weight per data year, oldest first (e.g. [2, 3, 5] for 3 years)"
            )
        if self.trimming.method == "log_sd" and self.exclusions.min_cost <= 0:
            # ln 0 = -inf would make the group's bounds NaN and the group would silently keep every case
            raise ValueError(
                "trimming.method log_sd takes ln cost: set exclusions.min_cost > 0 (default 5 yuan) so that "
                "no case of cost 0 is kept, or choose another trimming method"
            )
        return self

    def data_years(self, target_year: int) -> tuple[int, ...]:
        """The data years of a calibration for ``target_year``: the ``window_years`` years ending the
        year before it (target 2025, 3 years -> 2022, 2023, 2024)."""
        return tuple(range(target_year - self.window_years, target_year))

    def normalised_year_weights(self, target_year: int) -> dict[int, float]:
        """Year -> weight, scaled to sum to 1 (2:3:5 -> 0.2, 0.3, 0.5)."""
        total = sum(self.year_weights)
        return {y: w / total for y, w in zip(self.data_years(target_year), self.year_weights)}


class PolicyError(ValueError):
    """The policy has no parameters for what a job was asked to do (a year, a region)."""


_SHARE = dict(ge=0, le=1)


class BudgetPolicy(_Strict):
    """The inpatient fund budget (住院基金预算) of a region and year: a ``fixed`` amount in yuan, or the
    region's fund payments of the year before (``prior_year_fund``: Σ fund_paid of its claims) × (1 + growth),
    rounded to the fen."""

    basis: Literal["fixed", "prior_year_fund"] = "prior_year_fund"
    amount: Optional[Decimal] = Field(None, ge=0, description="yuan, basis fixed")
    growth: Decimal = Field(Decimal("0.05"), gt=-1, description="basis prior_year_fund")
    #: month 1..12 -> share of the year's budget for the monthly provisional settlement; empty = 1/12 each
    monthly_shares: tuple[Decimal, ...] = ()

    @model_validator(mode="after")
    def _complete(self) -> "BudgetPolicy":
        if self.basis == "fixed" and self.amount is None:
            raise ValueError("budget.basis fixed needs budget.amount (yuan)")
        if self.monthly_shares:
            if len(self.monthly_shares) != 12 or sum(self.monthly_shares) != 1 or min(self.monthly_shares) < 0:
                raise ValueError("budget.monthly_shares: give 12 shares >= 0 (January first) that sum to exactly 1")
        return self

    def month_share(self, month: int) -> Decimal:
        return self.monthly_shares[month - 1] if self.monthly_shares else Decimal(1) / Decimal(12)


class CoefficientPolicy(_Strict):
    """Hospital coefficient c_h (医院系数): from the hospital's ``grade``, or from ``history`` = its
    case-weighted cost-consumption index in the promoted calibration run, clamped to ``history_bounds``
    (a hospital without history gets its grade's coefficient). Cases of ``same_price_groups`` (同病同价,
    DRG or ADRG codes) get c = 1 everywhere."""

    source: Literal["grade", "history"] = "grade"
    grades: dict[str, Decimal] = Field(default_factory=lambda: {"三级": Decimal("1.0"), "二级": Decimal("0.9"),
                                                                "一级": Decimal("0.8")})
    history_bounds: tuple[Decimal, Decimal] = (Decimal("0.8"), Decimal("1.2"))
    same_price_groups: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> "CoefficientPolicy":
        missing = [g for g in HOSPITAL_GRADES if g not in self.grades]
        if missing:
            raise ValueError(f"coefficient.grades lacks grade(s) {missing}")
        lo, hi = self.history_bounds
        if not 0 < lo <= hi:
            raise ValueError(f"coefficient.history_bounds must be 0 < low <= high, got {[lo, hi]}")
        return self


class HighCostTier(_Strict):
    """Cases of groups with base points <= ``up_to_points`` (null: any) are high-cost above ``multiple`` ×
    the group mean cost."""

    up_to_points: Optional[Decimal] = None
    multiple: Decimal = Field(..., gt=0)


class BandPolicy(_Strict):
    """Zhejiang 2025: low-ratio band low_cost_ratio < ratio <= ``upper_ratio`` pays B × (ratio + ``add``)."""

    enabled: bool = False
    upper_ratio: Decimal = Field(Decimal("0.8"), gt=0)
    add: Decimal = Decimal("0.2")


class IncompleteStayPolicy(_Strict):
    """Incomplete stays (住院过程不完整): discharge status in ``statuses`` (2 transfer, 4 left against
    advice), or in ``death_statuses`` with LOS <= ``death_max_los_days`` (death within 24 h)."""

    statuses: tuple[str, ...] = ("2", "4")
    death_statuses: tuple[str, ...] = ("5",)
    death_max_los_days: int = Field(1, ge=0)


class BedDayPolicy(_Strict):
    """Bed-day groups (床日付费: long-stay psychiatry, rehabilitation): DRG or ADRG code -> points per day;
    a case of such a group with LOS >= ``min_los_days`` gets points_per_day × LOS."""

    points_per_day: dict[str, Decimal] = Field(default_factory=dict)
    min_los_days: int = Field(0, ge=0)


class ReadmissionPolicy(_Strict):
    """A stay followed by a readmission of the same person (any hospital) in the same DRG (``same: drg``)
    or ADRG within ``window_days`` days of its discharge has its points × ``factor`` (halved)."""

    window_days: int = Field(15, ge=0)
    factor: Decimal = Field(Decimal("0.5"), **_SHARE)
    same: Literal["drg", "adrg"] = "drg"


class SurplusPolicy(_Strict):
    """结余留用、超支分担: with S = budget − the cases' fee-for-service fund amounts, hospitals receive
    ``hospital_share_of_surplus`` of a surplus and bear ``hospital_share_of_overrun`` of an overrun; the
    fund keeps (bears) the rest."""

    hospital_share_of_surplus: Decimal = Field(Decimal("0.95"), **_SHARE)
    hospital_share_of_overrun: Decimal = Field(Decimal("0.95"), **_SHARE)


class BenefitPolicy(_Strict):
    """Insurance benefits per insurance scheme (employee 职工 / resident 居民) at one hospital grade."""

    deductible: dict[str, Decimal]
    reimbursement: dict[str, Decimal]


class RatePolicy(_Strict):
    """DRG rate method (费率法): base rate F = (budget / expected_reimbursement_ratio) / Σ RW·n;
    standard P_g = RW_g × F; fund payment = max(0, (P_g − 自费 − deductible) × reimbursement). Cases above
    ``high_cost_multiple[grade]`` × P_g are paid fee-for-service after review, at most
    ``high_cost_max_share`` of a hospital's cases in the year (the highest cost/P_g first); ungrouped cases
    are paid fee-for-service."""

    expected_reimbursement_ratio: Decimal = Field(Decimal("0.7"), gt=0, le=1)
    high_cost_multiple: dict[str, Decimal] = Field(default_factory=lambda: {
        "三级": Decimal(3), "二级": Decimal(2), "一级": Decimal(2)})
    high_cost_max_share: Decimal = Field(Decimal("0.05"), **_SHARE)
    benefits: dict[str, BenefitPolicy] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _grades(self) -> "RatePolicy":
        for name, mapping in (("high_cost_multiple", self.high_cost_multiple), ("benefits", self.benefits)):
            missing = [g for g in HOSPITAL_GRADES if g not in mapping]
            if missing:
                raise ValueError(f"rate.{name} lacks grade(s) {missing}")
        for grade, b in self.benefits.items():
            for field_name in ("deductible", "reimbursement"):
                lacking = [s for s in INSURANCE_SCHEMES if s not in getattr(b, field_name)]
                if lacking:
                    raise ValueError(f"rate.benefits.{grade}.{field_name} lacks scheme(s) {lacking}")
        return self


class PaymentParams(_Strict):
    """Every parameter of DRG payment in one region and year (see casemix.payment and domain.md)."""

    method: Literal["point", "rate"] = "point"
    budget: BudgetPolicy = Field(default_factory=BudgetPolicy)
    provisional_share: Decimal = Field(Decimal("0.85"), **_SHARE)
    surplus: SurplusPolicy = Field(default_factory=SurplusPolicy)
    coefficient: CoefficientPolicy = Field(default_factory=CoefficientPolicy)
    high_cost: tuple[HighCostTier, ...] = (
        HighCostTier(up_to_points=Decimal(100), multiple=Decimal(3)),
        HighCostTier(up_to_points=Decimal(300), multiple=Decimal(2)),
        HighCostTier(multiple=Decimal("1.5")),
    )
    low_cost_ratio: Decimal = Field(Decimal("0.4"), gt=0)
    band: BandPolicy = Field(default_factory=BandPolicy)
    incomplete_stay: IncompleteStayPolicy = Field(default_factory=IncompleteStayPolicy)
    bed_day: BedDayPolicy = Field(default_factory=BedDayPolicy)
    readmission: ReadmissionPolicy = Field(default_factory=ReadmissionPolicy)
    ungrouped_discount: Decimal = Field(Decimal("0.9"), ge=0)
    points_decimals: int = Field(4, ge=0, le=8)
    rate: RatePolicy

    @model_validator(mode="after")
    def _check(self) -> "PaymentParams":
        tiers = self.high_cost
        if not tiers or tiers[-1].up_to_points is not None:
            raise ValueError("high_cost: the last tier must have no up_to_points (it covers every group above)")
        bounds = [t.up_to_points for t in tiers[:-1]]
        if any(b is None for b in bounds) or bounds != sorted(bounds):
            raise ValueError("high_cost: up_to_points must ascend, and only the last tier may omit it")
        if self.band.enabled and self.band.upper_ratio <= self.low_cost_ratio:
            raise ValueError("band.upper_ratio must be above low_cost_ratio")
        return self


class PaymentPolicy(_Strict):
    """Payment parameters per settlement year; ``regions`` overrides any key for some regions, e.g.
    ``regions: {"532300": {method: rate}}``."""

    years: dict[int, dict] = Field(default_factory=dict)

    def params(self, year: int, region: str) -> PaymentParams:
        """The validated parameters of one region and year (year's keys, then the region's overrides)."""
        if year not in self.years:
            raise PolicyError(f"the policy has no payment parameters for year {year} (payment.years has "
                              f"{sorted(self.years) or 'none'}): add payment.years.{year}")
        base = {k: v for k, v in self.years[year].items() if k != "regions"}
        override = (self.years[year].get("regions") or {}).get(str(region), {})
        try:
            return PaymentParams(**_deep_merge(base, override))
        except ValidationError as exc:
            where = f"payment.years.{year}" + (f" (region {region})" if override else "")
            problems = "; ".join(f"key '{'.'.join(str(p) for p in e['loc']) or '(top)'}': {e['msg']}"
                                 for e in exc.errors())
            raise PolicyError(f"{where}: {problems}") from None

    def check(self) -> None:
        """Validate every year and region override now (a bad key fails at load time, not mid-job)."""
        for year, doc in self.years.items():
            for region in [None, *((doc.get("regions") or {}).keys())]:
                self.params(year, str(region) if region is not None else "")


def _deep_merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for k, v in override.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


class Policy(_Strict):
    province: str
    grouping: GroupingPolicy = Field(default_factory=GroupingPolicy)
    calibration: CalibrationPolicy = Field(default_factory=CalibrationPolicy)
    payment: PaymentPolicy = Field(default_factory=PaymentPolicy)


def load_policy(settings_or_path: Settings | str | os.PathLike) -> Policy:
    path = Path(settings_or_path.path(settings_or_path.policy)) if isinstance(settings_or_path, Settings) \
        else Path(settings_or_path)
    doc = read_yaml_mapping(path, "policy file not found")
    try:
        policy = Policy(**doc)
    except ValidationError as exc:
        raise validation_error(path, exc) from None
    try:
        policy.payment.check()
    except PolicyError as exc:
        from casemix.config import ConfigError

        raise ConfigError(path, [str(exc)]) from None
    return policy
