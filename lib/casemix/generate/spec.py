"""What to generate: :class:`GeneratorSpec`, the validated parameters of one generator run.

The spec says how much (cases, years, outpatient multiple), how dirty (defect share and kinds,
source-format quirks) and how clinically eventful (readmissions, transfers, deaths, long stays,
deliberately ungroupable and ambiguous stays) the generated drops are, with which seed and grouping
scheme. The world itself (regions, hospitals, costs) is :class:`~casemix.generate.province.Province`.
The same spec and province always give the same records, whatever the number of partitions.
"""
from __future__ import annotations

from typing import Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from casemix.ingest.raw import DEFECT_KINDS

__all__ = ["GeneratorSpec", "SpecError", "DEFAULT_DEFECT_WEIGHTS"]

#: every defect kind of casemix.ingest.raw.DEFECT_KINDS, equally likely
DEFAULT_DEFECT_WEIGHTS: dict[str, float] = {kind: 1.0 for kind in DEFECT_KINDS}


class SpecError(ValueError):
    """Invalid generator parameters; the message names the parameter and what is allowed."""


class GeneratorSpec(BaseModel):
    """Parameters of one generator run (all shares are fractions of inpatient cases)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = Field(20240101, ge=0, lt=2**63, description="seed of every random quantity")
    n_cases: int = Field(10_000, ge=1, le=10**11, description="inpatient cases (distinct claim ids)")
    years: tuple[int, ...] = Field((2022, 2023, 2024), description="consecutive discharge years")
    outpatient_multiple: float = Field(10.0, ge=0, le=1000, description="outpatient visits per inpatient case")
    bad_record_share: float = Field(0.01, ge=0, le=0.5, description="share of cases planted with a defect")
    defect_weights: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_DEFECT_WEIGHTS),
        description="relative weight of each defect kind; kinds not listed get 0",
    )
    readmission_share: float = Field(0.03, ge=0, le=0.3, description="cases that readmit an earlier case's person")
    readmission_within_15_days_share: float = Field(
        0.7, ge=0, le=1, description="of readmissions: share admitted 1-15 days after the earlier discharge"
    )
    transfer_share: float = Field(0.02, ge=0, le=0.3, description="离院方式 2 (transfer, 医嘱转院)")
    community_transfer_share: float = Field(0.005, ge=0, le=0.3, description="离院方式 3")
    against_advice_share: float = Field(0.01, ge=0, le=0.3, description="离院方式 4")
    death_share: float = Field(0.006, ge=0, le=0.3, description="离院方式 5")
    other_discharge_share: float = Field(0.003, ge=0, le=0.3, description="离院方式 9")
    long_stay_share: float = Field(0.004, ge=0, le=0.3, description="stays longer than 60 days")
    ungroupable_share: float = Field(0.004, ge=0, le=0.2, description="stays whose principal dx enters no MDC (0000)")
    ambiguous_share: float = Field(
        0.004, ge=0, le=0.2, description="stays with an unrelated operating-room procedure (QY where the scheme checks)"
    )
    quirk_share: float = Field(0.2, ge=0, le=1, description="records whose codes carry source-format quirks")
    partitions: Optional[int] = Field(None, ge=1, le=1_000_000, description="Spark partitions (None: automatic)")
    scheme_id: str = Field("chs-drg-1.1", min_length=1, description="grouping scheme folder under schemes.dir")
    regions: Optional[tuple[str, ...]] = Field(None, description="region codes to generate (None: all)")

    @field_validator("years")
    @classmethod
    def _consecutive(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v:
            raise ValueError("give at least one year")
        if len(v) > 20:
            raise ValueError("at most 20 years")
        if list(v) != list(range(v[0], v[0] + len(v))):
            raise ValueError(f"years must be consecutive and ascending, e.g. (2022, 2023, 2024); got {v}")
        if not 1990 <= v[0] <= 2100:
            raise ValueError(f"years out of range: {v}")
        return v

    @field_validator("defect_weights")
    @classmethod
    def _kinds(cls, v: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(v) - set(DEFECT_KINDS))
        if unknown:
            raise ValueError(f"unknown defect kind(s) {unknown}; known kinds: {', '.join(DEFECT_KINDS)}")
        if any(w < 0 for w in v.values()):
            raise ValueError("defect weights must be >= 0")
        return {k: float(v.get(k, 0.0)) for k in DEFECT_KINDS}

    @model_validator(mode="after")
    def _shares(self) -> "GeneratorSpec":
        if self.bad_record_share > 0 and sum(self.defect_weights.values()) <= 0:
            raise ValueError("bad_record_share > 0 but every defect weight is 0")
        status = (self.transfer_share + self.community_transfer_share + self.against_advice_share
                  + self.death_share + self.other_discharge_share)
        if status > 0.5:
            raise ValueError(f"non-routine discharge shares add up to {status:.3f}; keep them <= 0.5")
        if self.ungroupable_share + self.ambiguous_share > 0.2:
            raise ValueError("ungroupable_share + ambiguous_share must be <= 0.2")
        if self.regions is not None and not self.regions:
            raise ValueError("regions: give at least one region code, or null for all")
        return self

    @classmethod
    def parse(cls, **values) -> "GeneratorSpec":
        """Like the constructor, but raises :class:`SpecError` with one line per problem."""
        try:
            return cls(**values)
        except ValidationError as exc:
            lines = []
            for e in exc.errors():
                key = ".".join(str(p) for p in e["loc"]) or "(spec)"
                lines.append(f"{key}: {e['msg']}" + ("" if e["type"] == "missing" else f" (got {e.get('input')!r})"))
            raise SpecError("invalid generator spec:\n  - " + "\n  - ".join(lines)) from None

    @property
    def n_visits(self) -> int:
        """Outpatient visits: ``round(outpatient_multiple x n_cases)``."""
        return int(round(self.outpatient_multiple * self.n_cases))
