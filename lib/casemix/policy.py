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

from casemix.config import Settings, read_yaml_mapping, validation_error

__all__ = [
    "Policy",
    "GroupingPolicy",
    "SchemeRule",
    "CalibrationPolicy",
    "CalibrationExclusions",
    "TrimmingPolicy",
    "LowVolumePolicy",
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
        return self

    def data_years(self, target_year: int) -> tuple[int, ...]:
        """The data years of a calibration for ``target_year``: the ``window_years`` years ending the
        year before it (target 2025, 3 years -> 2022, 2023, 2024)."""
        return tuple(range(target_year - self.window_years, target_year))

    def normalised_year_weights(self, target_year: int) -> dict[int, float]:
        """Year -> weight, scaled to sum to 1 (2:3:5 -> 0.2, 0.3, 0.5)."""
        total = sum(self.year_weights)
        return {y: w / total for y, w in zip(self.data_years(target_year), self.year_weights)}


class Policy(_Strict):
    province: str
    grouping: GroupingPolicy = Field(default_factory=GroupingPolicy)
    calibration: CalibrationPolicy = Field(default_factory=CalibrationPolicy)


def load_policy(settings_or_path: Settings | str | os.PathLike) -> Policy:
    path = Path(settings_or_path.path(settings_or_path.policy)) if isinstance(settings_or_path, Settings) \
        else Path(settings_or_path)
    doc = read_yaml_mapping(path, "policy file not found")
    try:
        return Policy(**doc)
    except ValidationError as exc:
        raise validation_error(path, exc) from None
