"""The synthetic province: regions, hospitals, insured people and the hidden cost model, as typed data.

``conf/province.yaml`` holds every geography and case-mix number of the generated world (Yunnan's 16
prefectures by default); :func:`load_province` reads it into a frozen :class:`Province`. An unknown key,
a wrong type or an inconsistent value raises :class:`~casemix.config.ConfigError` naming the file, the key
and what was expected. Nothing here is Spark: the objects are small and live on the driver (and in the
closure of the generating tasks).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from casemix.codes import HOSPITAL_GRADES, HOSPITAL_TYPES, INSURANCE_SCHEMES
from casemix.config import read_yaml_mapping, validation_error

__all__ = [
    "Province",
    "Region",
    "GradePolicy",
    "AgeBand",
    "CaseMix",
    "CostModel",
    "OutpatientModel",
    "load_province",
    "default_province_path",
    "GRADES",
    "HOSPITAL_TYPES",
    "ADRG_TYPES",
    "INSURANCE_SCHEMES",
]

#: hospital grades (等级), highest first; hospital types (casemix.codes)
GRADES = HOSPITAL_GRADES
#: ADRG types by the 2nd character of the ADRG code: A-J surgical (外科手术), K-Q non-operating-room
#: procedure (非手术室操作), R-Z medical (内科)
ADRG_TYPES = ("surgical", "procedure", "medical")

Grade = Literal[GRADES]
HospitalType = Literal[HOSPITAL_TYPES]
AdrgType = Literal[ADRG_TYPES]
Scheme = Literal[INSURANCE_SCHEMES]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HospitalCounts(_Strict):
    general: int = Field(0, ge=0)
    tcm: int = Field(0, ge=0)
    specialty: int = Field(0, ge=0)

    @property
    def total(self) -> int:
        return self.general + self.tcm + self.specialty


class Region(_Strict):
    """One pooling region (统筹区)."""

    code: str = Field(..., pattern=r"^\d{6}$", description="6-digit administrative code, e.g. 530100")
    name: str
    population_10k: float = Field(..., gt=0, description="resident population, 万人")
    insured_persons: int = Field(..., ge=1, le=2**40 - 1)
    employee_share: float = Field(..., ge=0, le=1)
    price_level: float = Field(..., gt=0)
    drop_format: Literal["csv", "parquet"]
    family_doctor_signed_share: float = Field(..., ge=0, le=1)
    hospitals: dict[Grade, HospitalCounts]

    @model_validator(mode="after")
    def _has_hospitals(self) -> "Region":
        if sum(c.total for c in self.hospitals.values()) == 0:
            raise ValueError(f"region {self.code} has no hospital; give it at least one under 'hospitals'")
        return self


class GradePolicy(_Strict):
    cost_multiplier: float = Field(..., gt=0)
    inpatient_share: float = Field(..., ge=0)
    outpatient_share: float = Field(..., ge=0)
    case_mix_tilt: dict[AdrgType, float]
    mdc_tilt: dict[str, float] = Field(default_factory=dict)
    secondary_dx_multiplier: float = Field(1.0, ge=0)
    deductible: dict[Scheme, float]
    reimbursement: dict[Scheme, float]
    outpatient_reimbursement: dict[Scheme, float]
    outpatient_mean_cost: float = Field(..., gt=0)

    @field_validator("reimbursement", "outpatient_reimbursement")
    @classmethod
    def _ratios(cls, v: dict) -> dict:
        for k, r in v.items():
            if not 0 <= r <= 1:
                raise ValueError(f"reimbursement ratio for {k} must be within [0, 1], got {r}")
        if set(v) != set(INSURANCE_SCHEMES):
            raise ValueError(f"give a ratio for each of {INSURANCE_SCHEMES}, got {sorted(v)}")
        return v


class HospitalTypePolicy(_Strict):
    cost_multiplier: float = Field(..., gt=0)


class AgeBand(_Strict):
    min_age: int = Field(..., ge=1, le=120)
    max_age: int = Field(..., ge=1, le=120)
    population_share: float = Field(..., ge=0)
    inpatient_rate: float = Field(..., ge=0)
    outpatient_rate: float = Field(..., ge=0)


class CaseMix(_Strict):
    mdc_weights: dict[str, float] = Field(default_factory=dict)
    type_weights: dict[AdrgType, float]
    adrg_zipf: float = Field(0.9, ge=0)
    template_zipf: float = Field(0.8, ge=0)
    templates_per_adrg: int = Field(24, ge=1, le=500)
    secondary_dx_base: float = Field(0.6, ge=0)
    secondary_dx_per_decade: float = Field(0.35, ge=0)
    mcc_share: float = Field(0.06, ge=0, le=1)
    cc_share: float = Field(0.26, ge=0, le=1)
    diagnosis_letter_weights: dict[str, float] = Field(default_factory=dict)
    extra_procedure_chapters: tuple[str, ...] = Field(
        ("87", "88", "89", "90", "91", "92", "93", "94", "95", "96", "97", "98", "99"), min_length=1)
    extra_procedures: dict[AdrgType, float]


class CostModel(_Strict):
    base_cost: dict[AdrgType, float]
    mdc_multiplier: dict[str, float] = Field(default_factory=dict)
    adrg_sigma: float = Field(0.45, ge=0)
    split_multiplier: dict[str, float]
    ungrouped_cost: float = Field(..., gt=0)
    case_sigma: float = Field(0.3, ge=0, le=2)
    los_cost_elasticity: float = Field(0.6, ge=0, le=2)
    mean_los: dict[AdrgType, float]
    mdc_los_multiplier: dict[str, float] = Field(default_factory=dict)
    adrg_los_sigma: float = Field(0.3, ge=0)
    split_los_multiplier: dict[str, float]
    case_los_sigma: float = Field(0.45, ge=0, le=2)
    status_cost_factor: dict[Literal["2", "3", "4", "5", "9"], float]
    status_los_factor: dict[Literal["2", "3", "4", "5", "9"], float]
    out_of_pocket_share: float = Field(0.06, ge=0, lt=0.5)
    out_of_pocket_spread: float = Field(0.6, ge=0, le=1)
    drug_share: dict[AdrgType, float]
    consumable_share: dict[AdrgType, float]
    exam_share: dict[AdrgType, float]
    category_spread: float = Field(0.3, ge=0, le=1)


class OutpatientModel(_Strict):
    cost_sigma: float = Field(0.8, ge=0, le=2)
    out_of_pocket_share: float = Field(0.1, ge=0, lt=0.5)
    service_items_mean: float = Field(1.4, ge=0, le=10)
    signed_visits_at_contracted: float = Field(0.6, ge=0, le=1)


class ProvinceId(_Strict):
    code: str = Field(..., pattern=r"^\d{6}$")
    name: str


class Province(_Strict):
    """A parsed ``conf/province.yaml`` (see that file for the meaning of every key)."""

    province: ProvinceId
    reference_year: int
    inflation: dict[int, float]
    yearly_volume_growth: float = Field(1.0, gt=0)
    seasonality: tuple[float, ...] = Field(..., min_length=12, max_length=12)
    regions: tuple[Region, ...] = Field(..., min_length=1)
    grades: dict[Grade, GradePolicy]
    hospital_types: dict[HospitalType, HospitalTypePolicy]
    age_bands: tuple[AgeBand, ...] = Field(..., min_length=1)
    case_mix: CaseMix
    costs: CostModel
    outpatient: OutpatientModel
    departments: dict[str, tuple[str, str]]

    source_file: str | None = Field(None, exclude=True)

    @model_validator(mode="after")
    def _consistent(self) -> "Province":
        codes = [r.code for r in self.regions]
        dup = sorted({c for c in codes if codes.count(c) > 1})
        if dup:
            raise ValueError(f"region code(s) {dup} listed twice")
        if self.inflation.get(self.reference_year) != 1.0:
            raise ValueError(f"inflation[{self.reference_year}] (the reference year) must be 1.0")
        if set(self.grades) != set(GRADES):
            raise ValueError(f"grades must define exactly {GRADES}, got {sorted(self.grades)}")
        if set(self.hospital_types) != set(HOSPITAL_TYPES):
            raise ValueError(f"hospital_types must define exactly {HOSPITAL_TYPES}")
        if "other" not in self.departments:
            raise ValueError("departments needs an 'other' entry (used for stays outside the listed MDCs)")
        for band in self.age_bands:
            if band.max_age < band.min_age:
                raise ValueError(f"age band {band.min_age}-{band.max_age}: max_age is below min_age")
        if sum(b.population_share for b in self.age_bands) <= 0:
            raise ValueError("age_bands: population shares sum to 0")
        return self

    def region(self, code: str) -> Region:
        for r in self.regions:
            if r.code == code:
                return r
        raise KeyError(f"no region {code!r} in the province; known: {', '.join(r.code for r in self.regions)}")

    def inflation_index(self, year: int) -> float:
        try:
            return self.inflation[year]
        except KeyError:
            raise KeyError(
                f"no inflation index for {year} in {self.source_file or 'the province file'}; add it under 'inflation'"
            ) from None


def default_province_path() -> Path:
    """``<project root>/conf/province.yaml``."""
    from casemix.config import project_root

    return project_root() / "conf" / "province.yaml"


def load_province(path: str | os.PathLike | None = None) -> Province:
    """Load and validate a province file (default ``conf/province.yaml``); raises ConfigError."""
    file = Path(path) if path is not None else default_province_path()
    doc = read_yaml_mapping(file, "province file not found; pass its path")
    try:
        return Province(**doc, source_file=str(file))
    except ValidationError as exc:
        raise validation_error(file, exc) from None
